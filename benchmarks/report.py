"""Run every benchmark (or render what was run) into benchmarks/results.json and the table in
docs/performance.md.

`python -m benchmarks.report run` runs each script with `make bench`'s sizes (chosen so the
whole run fits in ten minutes on a 2-core machine), skipping any that does not exist with a
note; `python -m benchmarks.report render` rewrites the table from results.json alone.
"""

from __future__ import annotations

import json
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
    "plan_daily": ["--sample-orgs", "4", "--sample-orgs-20", "1"],
    "writeback": ["--tenants", "10", "--actions", "200"],
    "policy_engine": ["--invoices", "200000"],
    "webhooks": [],
    "chaos": [],
}


def run() -> dict[str, Any]:
    from benchmarks.harness import machine

    results: dict[str, Any] = {"machine": machine(), "benchmarks": {}}
    for name, args in SCRIPTS.items():
        if not (ROOT / "benchmarks" / f"{name}.py").exists():
            results["benchmarks"][name] = {"skipped": f"benchmarks/{name}.py does not exist"}
            continue
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", f"benchmarks.{name}", *args], cwd=ROOT,
                              capture_output=True, text=True, check=False, timeout=1800)
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        if done.returncode != 0 or not lines:
            results["benchmarks"][name] = {"failed": done.returncode,
                                           "stderr": done.stderr[-2000:]}
        else:
            results["benchmarks"][name] = json.loads(lines[-1])
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
            out.append((f"sync_full {provider} {database}: API calls", str(e2e["api_calls"]),
                        "= floor", str(e2e["api_call_floor"]),
                        _met(e2e["calls_over_floor"] == 0)))
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
    plan = bench.get("plan_daily", {})
    for fraction, data in plan.get("fractions", {}).items():
        target = "<= 2 s" if fraction == "2%" else "proportional"
        note = " (extrapolated)" if data.get("extrapolated") else ""
        out.append((f"plan_daily {fraction} due ({data['due']} invoices)",
                    f"{data['seconds']} s{note}; {data['rows_touched']['actions_written']} "
                    "actions written", target, "-",
                    _met(data["seconds"] <= 2) if fraction == "2%" else "-"))
    if plan.get("targets"):
        prop = plan["targets"]["proportional_to_due"]
        out.append(("plan_daily: ms per due invoice", str(prop["ms_per_due_invoice"]),
                    "within 2x", "-", _met(prop["met"])))
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
    for name in ("webhooks", "chaos"):
        data = bench.get(name)
        if data is None:
            continue
        if "skipped" in data or "failed" in data:
            out.append((name, data.get("skipped") or f"failed ({data['failed']})", "-", "-",
                        "n/a"))
            continue
        for target, spec in (data.get("targets") or {}).items():
            shown = {k: v for k, v in spec.items() if k not in ("met", "target")} \
                if isinstance(spec, dict) else spec
            out.append((f"{name}: {target}", json.dumps(shown)[:120],
                        str(spec.get("target", "-")) if isinstance(spec, dict) else "-",
                        "-", _met(spec.get("met") if isinstance(spec, dict) else None)))
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
    results = run() if command == "run" else json.loads(RESULTS.read_text())
    render(results)


if __name__ == "__main__":
    main()
