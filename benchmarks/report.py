"""Run every benchmark (or render what was run) into benchmarks/results.json and the table in
docs/performance.md.

`python -m benchmarks.report run` runs each script with `make bench`'s sizes (chosen so the
whole run fits in ten minutes on a 2-core machine), skipping any that does not exist with a
note; `python -m benchmarks.report run NAME...` runs only those and keeps the others' figures;
`python -m benchmarks.report render` rewrites the table from results.json alone.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results.json"
DOC = ROOT / "docs" / "performance.md"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"

# name -> arguments for `make bench` (full sizes unless said otherwise in docs/performance.md)
SCRIPTS: dict[str, list[str]] = {
    "sync_demo": [],
    "sync_full": ["--runs", "5", "--e2e-databases", "postgresql"],
    "sync_incremental": ["--runs", "5"],
    # Every organisation measured; 0.2 % and 20 % and --large (5M, 10,000) run by hand.
    "plan_daily": ["--fractions", "0.02", "--workers", "2", "--batch", "50"],
    "paid_race": [],
    "writeback": ["--tenants", "10", "--actions", "200"],
    "policy_engine": ["--invoices", "500000", "--next-action-only"],
    "webhooks": ["--seconds", "5"],
    "chaos": ["--orgs", "8"],
    "invoice_list": [],
    "risk_backtest": [],
}


# name -> runs whose figures are merged (medians; each run kept under "runs"): a script that
# measures one run of its own.
REPEATS: dict[str, int] = {"webhooks": 5}
WEBHOOK_P99_TARGET_MS = 20


def _one(name: str, args: list[str]) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", f"benchmarks.{name}", *args], cwd=ROOT,
                          capture_output=True, text=True, check=False, timeout=1800)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        return {"failed": done.returncode, "stderr": done.stderr[-2000:]}
    return dict(json.loads(lines[-1]))


def _webhooks(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The runs' medians, what was lost in all (their warm-ups' events too), and the target
    (p99 <= 20 ms at 500/s, in the steady state after the warm-up)."""
    def mid(key: str) -> float:
        return float(statistics.median(r[key] for r in runs))

    warm_ups = [r.get("warm_up", {}) for r in runs]
    lost = sum(r["lost_events"] + w.get("lost_events", 0) for r, w in zip(runs, warm_ups,
                                                                          strict=True))
    p99 = mid("p99_ms")
    return {"benchmark": "webhooks", "server": runs[0]["server"], "runs": runs,
            "target_rate": runs[0]["target_rate"], "median_requests_per_s": mid("requests_per_s"),
            "median_p50_ms": mid("p50_ms"), "median_p99_ms": p99,
            "median_p99_late_ms": mid("p99_late_ms"),
            "median_warm_up_p99_ms": float(statistics.median(w["p99_ms"] for w in warm_ups))
            if all("p99_ms" in w for w in warm_ups) else None,
            "lost_events": lost,
            "non_200": sum(n for r in [*runs, *warm_ups]
                           for code, n in r.get("statuses", {}).items() if code != "200"),
            "targets": {"p99_ms": {"target": WEBHOOK_P99_TARGET_MS, "actual": p99,
                                   "met": p99 <= WEBHOOK_P99_TARGET_MS
                                   and mid("requests_per_s") >= 0.98 * runs[0]["target_rate"]},
                        "lost_events": {"target": 0, "actual": lost, "met": lost == 0}}}


def run(only: list[str] | None = None) -> dict[str, Any]:
    """Every script, or only those named (their figures replace the old ones in
    results.json; each result keeps the machine it was measured on)."""
    from benchmarks.harness import machine

    results: dict[str, Any] = {"machine": machine(), "benchmarks": {}}
    if only:
        results = json.loads(RESULTS.read_text())
    for name, args in SCRIPTS.items():
        if only and name not in only:
            continue
        if not (ROOT / "benchmarks" / f"{name}.py").exists():
            results["benchmarks"][name] = {"skipped": f"benchmarks/{name}.py does not exist"}
            continue
        started = time.perf_counter()
        runs = [_one(name, args) for _ in range(REPEATS.get(name, 1))]
        failed = [r for r in runs if "failed" in r]
        if failed:
            results["benchmarks"][name] = failed[0]
        elif name == "webhooks":
            results["benchmarks"][name] = _webhooks(runs)
        else:
            results["benchmarks"][name] = runs[0]
        results["benchmarks"][name].setdefault("machine", machine())
        results["benchmarks"][name]["script_seconds"] = round(
            time.perf_counter() - started, 1)
        print(f"{name}: {results['benchmarks'][name]['script_seconds']} s", file=sys.stderr)
        RESULTS.write_text(json.dumps(results, indent=2) + "\n")  # what is done so far
        render(results)
    return results


def _met(flag: Any) -> str:
    return {True: "met", False: "**missed**", None: "n/a"}.get(flag, str(flag))


def rows(results: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """(figure, measured, target, floor, verdict) for the table."""
    out: list[tuple[str, str, str, str, str]] = []
    bench = results.get("benchmarks", {})
    full = bench.get("sync_full", {})
    for provider, data in full.get("providers", {}).items():
        for database, e2e in data.get("end_to_end", {}).items():
            reachable = e2e.get("api_call_floor_reachable", e2e["api_call_floor"])
            floor = str(e2e["api_call_floor"]) if reachable == e2e["api_call_floor"] else (
                f"{e2e['api_call_floor']}; reachable {reachable} (no total count in QBO "
                "answers: a short page ends each kind)")
            verdict = _met(e2e["calls_over_floor"] == 0)
            if reachable != e2e["api_call_floor"]:
                verdict += f" by the floor; {_met(e2e['api_calls'] == reachable)} by the " \
                    "reachable floor"
            out.append((f"sync_full {provider} {database}: API calls", str(e2e["api_calls"]),
                        "= floor", floor, verdict))
            out.append((f"sync_full {provider} {database}: wall time over HTTP (1 run)",
                        f"{e2e['seconds']} s ({e2e['invoices_per_second']} invoices/s; "
                        f"{e2e['waiting_seconds']} s waiting on the sandbox)", "-", "-",
                        "sandbox-bound"))
            out.append((f"sync_full {provider} {database}: peak RSS (1 run)",
                        f"{e2e['peak_rss_mib']} MiB", "<= 300 MiB", "-",
                        _met(e2e["peak_rss_mib"] <= 300)))
        for database, ing in data.get("ingest", {}).items():
            target = ">= 20,000/s" if database == "postgresql" else "-"
            verdict = _met(ing["invoices_per_second"] >= 20_000) \
                if database == "postgresql" else "-"
            out.append((f"sync_full {provider} {database}: ingest, median of {ing['runs']}",
                        f"{ing['invoices_per_second']} invoices/s "
                        f"({ing['records_per_second']} records/s)", target, "-", verdict))
            out.append((f"sync_full {provider} {database}: ingest peak RSS (max)",
                        f"{ing['max_peak_rss_mib']} MiB", "<= 300 MiB", "-",
                        _met(ing["max_peak_rss_mib"] <= 300)))
    inc = bench.get("sync_incremental", {})
    for provider, data in inc.get("providers", {}).items():
        out.append((f"sync_incremental {provider}: calls for {data['changed']} changed",
                    f"{data['api_calls']} (worst of {data['runs']}: +"
                    f"{data['worst_calls_over_floor']})", "<= floor + 1",
                    str(data["api_call_floor"]), _met(data["worst_calls_over_floor"] <= 1)))
        for settled in data.get("settled_rounds", []):
            out.append((f"sync_incremental {provider}: calls for {settled['changed']} changed "
                        "(settled bookmark)", str(settled["calls"]), "<= floor + 1",
                        str(settled["floor"]), _met(settled["calls"] <= settled["floor"] + 1)))
        for named, read in data.get("webhook_invoices_by_ids", {}).items():
            out.append((f"sync_incremental {provider}: webhook naming {named} invoices, read by "
                        "IDs", str(read["calls"]), "= ceil(n / 150)", str(read["floor"]),
                        _met(read["calls"] == read["floor"])))
    plan = bench.get("plan_daily", {})
    plan_size = f"{plan.get('invoices', 0):,} invoices in {plan.get('organisations', 0):,} orgs"
    for fraction, data in plan.get("fractions", {}).items():
        target = f"<= {plan['targets']['seconds_at_2_percent']['target']:g} s" \
            if fraction == "2%" else "proportional"
        note = " (extrapolated: does not count)" if data.get("extrapolated") else ""
        out.append((f"plan_daily {plan_size}, {fraction} due ({data['due']} invoices), the "
                    f"whole pass in {data.get('jobs', '?')} jobs",
                    f"{data['seconds']} s{note}; {data['rows_touched']['actions_written']} "
                    f"actions written; load average {plan['machine']['load_average_1min']}",
                    target, "-", _met(plan["targets"]["seconds_at_2_percent"]["met"])
                    if fraction == "2%" else "-"))
        for key in sorted(k for k in data if k.startswith("rq_workers_")):
            rq = data[key]
            out.append((f"plan_daily {plan_size}, {fraction} due, {rq['workers']} rq "
                        f"worker(s) ({rq['jobs']} jobs: {rq['jobs_per_worker']} per worker)",
                        f"{rq['seconds']} s; {rq['actions_written']} actions written",
                        target, "-", _met(plan["targets"].get(
                            f"seconds_at_2_percent_{key}", {}).get("met"))))
    if plan.get("idle"):
        idle = plan["targets"]["idle_ms_per_organisation"]
        out.append((f"plan_daily {plan_size}, nothing due: fixed cost per organisation",
                    f"{idle['actual']} ms", f"<= {idle['target']:g} ms", "-",
                    _met(idle["met"])))
        for name, target in plan["targets"].items():
            if name.startswith("idle_ms_per_organisation_rq"):
                out.append((f"plan_daily {plan_size}, nothing due, "
                            f"{name.rsplit('_', 1)[1]} rq workers: per organisation",
                            f"{target['actual']} ms", f"<= {target['target']:g} ms", "-",
                            _met(target["met"])))
    if plan.get("targets", {}).get("proportional_to_due"):
        prop = plan["targets"]["proportional_to_due"]
        out.append(("plan_daily: ms per due invoice", str(prop["ms_per_due_invoice"]),
                    "within 2x", "-", _met(prop["met"])))
    race = bench.get("paid_race", {})
    for run in race.get("runs", []):
        latency = run["webhook_to_cancelled_seconds"]
        out.append((f"paid_race ({run['mode']}): {run['invoices']} invoices paid within "
                    f"{run['window_seconds']:g} s of the send, {run['workers']} rq workers",
                    f"{run['sent_more_than_2s_after_payment']} reminders sent > 2 s after the "
                    f"payment ({run['sent_after_payment']} after it at all, latest "
                    f"{run['latest_send_after_payment_seconds']} s); {run['emails_sent']} sent",
                    "0 > 2 s after", "-", _met(run["sent_more_than_2s_after_payment"] == 0)))
        if latency["count"]:
            out.append((f"paid_race ({run['mode']}): payment webhook to its reminder closed "
                        f"({latency['count']} closed by webhooks)",
                        f"p50 {latency['p50']} s, p99 {latency['p99']} s; load average "
                        f"{race['machine']['load_average_1min']}", "p99 <= 2 s", "-",
                        _met(latency["p99"] <= 2.0)))
    wb = bench.get("writeback", {})
    for provider, data in wb.get("providers", {}).items():
        out.append((f"writeback {provider}: {data['tenants']} tenants x "
                    f"{data['actions_per_tenant']} actions",
                    f"{data['seconds']} s sandbox time; {data['provider_429s']} 429s; "
                    f"utilisation {data['utilisation']}", "0 429s, >= 90 %",
                    f"{data['floor_seconds']} s",
                    _met(data["provider_429s"] == 0 and (data["utilisation"] is None
                                                         or data["utilisation"] >= 0.9))))
    if wb.get("batching"):
        fees = wb["batching"]
        out.append(("writeback: 500 late fees on one Xero tenant",
                    f"{fees.get('batched_calls')} calls (one by one: "
                    f"{fees.get('one_by_one_calls')})", "<= 15 calls", "-",
                    _met(fees.get("met"))))
    pe = bench.get("policy_engine", {})
    if pe.get("next_action"):
        out.append((f"policy_engine next_action_at ({pe['invoices']} invoices)",
                    f"{pe['next_action']['invoices_per_second']} invoices/s",
                    ">= 200,000/s", "-",
                    _met(pe["targets"]["next_action_invoices_per_second"]["met"])))
    demo = bench.get("sync_demo", {})
    if "api_calls" in demo:
        out.append((f"sync_demo: first sync of the demo book ({demo['invoices']} invoices), "
                    f"median of {demo['runs']}",
                    f"{demo['median_seconds']} s, {demo['api_calls']} calls", "= floor",
                    str(demo["api_call_floor"]), _met(demo["api_calls"] == demo["api_call_floor"])))
    hooks = bench.get("webhooks", {})
    if "runs" in hooks:
        p99s = ", ".join(str(r["p99_ms"]) for r in hooks["runs"])
        out.append((f"webhooks: {hooks['server']}, {hooks['target_rate']:.0f} requests/s, "
                    f"median of {len(hooks['runs'])} runs",
                    f"p99 {hooks['median_p99_ms']} ms (runs: {p99s}); p50 "
                    f"{hooks['median_p50_ms']} ms; {hooks['median_requests_per_s']} requests/s "
                    "served", f"p99 <= {WEBHOOK_P99_TARGET_MS} ms at 500/s", "-",
                    _met(hooks["targets"]["p99_ms"]["met"])))
        if hooks.get("median_warm_up_p99_ms") is not None:
            firsts = ", ".join(str(r["warm_up"]["p99_ms"]) for r in hooks["runs"])
            out.append(("webhooks: the first second after the workers start (the warm-up, "
                        "one more organisation, not in the row above)",
                        f"p99 {hooks['median_warm_up_p99_ms']} ms (runs: {firsts})", "-", "-",
                        _met(None)))
        out.append(("webhooks: events lost (all runs)", f"{hooks['lost_events']} "
                    f"({hooks['non_200']} answers other than 200)", "0", "-",
                    _met(hooks["targets"]["lost_events"]["met"])))
    chaos = bench.get("chaos", {})
    if "duplicates" in chaos:
        out.append((f"chaos: {chaos['writebacks']} writebacks, {chaos['worker_kills']} worker "
                    f"kills, {chaos['redis_flushes']} Redis flush, "
                    f"{chaos['storm_enqueues']} enqueues of one action",
                    f"{chaos['duplicates']} effects twice, {chaos['lost']} lost, "
                    f"{chaos['skipped_without_reason']} skipped without a reason; "
                    f"{chaos['wall_seconds']} s", "0, 0, 0", "-",
                    _met(chaos["duplicates"] == 0 and chaos["lost"] == 0
                         and chaos["skipped_without_reason"] == 0)))
    listed = bench.get("invoice_list", {})
    if "p95_ms" in listed:
        slowest = max(listed["asks"].items(), key=lambda item: item[1]["p95_ms"])
        out.append((f"invoice_list: the organisation's invoice list, {listed['invoices']:,} "
                    f"invoices on {listed['database']}, {listed['requests']} requests "
                    f"({len(listed['asks'])} asks: search, filters, sorts, keyset pages)",
                    f"p95 {listed['p95_ms']} ms; p50 {listed['p50_ms']} ms; slowest ask "
                    f"\"{slowest[0]}\" p95 {slowest[1]['p95_ms']} ms; load average "
                    f"{listed['machine']['load_average_1min']}",
                    f"p95 < {listed['targets']['p95_ms']['target']:.0f} ms", "-",
                    _met(listed["targets"]["p95_ms"]["met"])))
    risk = bench.get("risk_backtest", {})
    if "runs" in risk:
        errors = risk["median_mean_error_days"]
        out.append((f"risk_backtest: pay-date error, mean absolute, median over "
                    f"{len(risk['runs'])} books of ~{risk['runs'][0]['invoices']:,} invoices "
                    "with per-customer habits, walked forward a month at a time",
                    f"model {errors['model_error_days']} days; paid on the due date "
                    f"{errors['due_date_error_days']}; due date + the customer's median "
                    f"{errors['customer_median_error_days']} (moved past the cut-off: "
                    f"{errors['due_date_after_cutoff_error_days']}, "
                    f"{errors['customer_median_after_cutoff_error_days']})",
                    "below both baselines on every book", "-",
                    _met(risk["targets"]["beats_both_baselines"]["met"])))
        out.append(("risk_backtest: AUC of the risk score for \"paid more than 30 days late\"",
                    f"worst {risk['targets']['auc_very_late']['actual']}, median "
                    f"{errors['auc_very_late']}",
                    f"> {risk['targets']['auc_very_late']['target']}", "-",
                    _met(risk["targets"]["auc_very_late"]["met"])))
        large = risk["large"]
        out.append((f"risk_backtest: one walk over {large['invoices']:,} invoices "
                    f"({large['cutoffs']} cut-offs)",
                    f"{large['cpu_seconds']} s of CPU ({large['seconds']} s wall)", "-", "-",
                    "cached for the day"))
    for name in ("webhooks", "chaos", "sync_demo", "invoice_list", "risk_backtest"):
        data = bench.get(name, {})
        if "skipped" in data or "failed" in data:
            out.append((name, data.get("skipped") or f"failed ({data['failed']})", "-", "-",
                        "n/a"))
    return out


def render(results: dict[str, Any]) -> None:
    m = results.get("machine", {})
    lines = [BEGIN, "",
             f"Measured on {m.get('cores')} cores ({m.get('cpu')}), Python {m.get('python')}, "
             f"SQLite {m.get('sqlite')}, PostgreSQL {m.get('postgresql')}, Redis "
             f"{m.get('redis')}; load average {m.get('load_average_1min')} at the start.",
             "", "| Figure | Measured | Target | Floor | Verdict |", "|---|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} | {e} |" for a, b, c, d, e in rows(results)]
    lines += ["", END]
    text = DOC.read_text() if DOC.exists() else f"# Performance\n\n{BEGIN}\n{END}\n"
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    DOC.write_text(head + "\n".join(lines) + tail)


def main() -> None:
    command = sys.argv[1] if len(sys.argv) > 1 else "render"
    results = run(sys.argv[2:]) if command == "run" else json.loads(RESULTS.read_text())
    render(results)


if __name__ == "__main__":
    main()
