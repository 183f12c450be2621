"""Chaos at small scale: real worker processes killed with SIGKILL at the claim, between a
provider's answer and our commit, and after the commit, restarted each time, with Redis flushed
mid-run, one action enqueued two hundred times at once and half the actions booked twice by
two schedulers, over Xero and QuickBooks organisations, texted reminders (Twilio's answers
lost on the way back) and card payments (Stripe's webhooks twice, out of order, workers killed
between taking a stored event and booking its payment); and the faults of issue 30: providers
that forgot idempotency keys, one worker's clock three minutes fast, a worker paused past its
lease and resumed, Redis killed and started again empty, PostgreSQL backends terminated under
jobs, two first syncs interrupted by a provider 500 and retried. The books end with every effect
once (one text at the Twilio emulator per texted reminder, one payment and one fee in the
books per card payment), every action done or skipped with a reason, no invoice without its
next-action time, no sync record running and every worker still running.
(benchmarks/chaos.py runs the same at the issue's scale.)"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

# It once ended with an action still open at its deadline: the worker that held RQ's
# scheduler lock had been killed, and the survivors slept in Redis for RQ's default ~400 s
# instead of taking the scheduler over (fixed in jobs/worker.py; tests/integration/
# test_worker_scheduler.py pins it). And once, on a slower machine, with seven actions, a card
# payment and a first sync open at its deadline. The workers' log of a passing run shows the
# likely cause: each worker that took the scheduler's lock was killed soon after, and booked
# jobs (retries, the second booking) waited the lock's 61 s each time; RQ's scheduler ran for
# about 1 s of the run's first 90. Any worker's beat now queues a booked job 10 s past its
# time (jobs/queues.py queue_overdue_jobs).
# First: minutes of mostly waiting on real processes (leases, retries, RQ's scheduler lock), so
# it runs from the start beside the rest of the parallel part, not alone after it. Load only
# stretches it: a paused worker stays stopped until another worker has carried its action out
# (or a third of the deadline has passed), and every figure is counted at the end. (Beside
# other load it once found a sync lease left behind by a release whose backend was terminated,
# which turned every retry of a first sync away: jobs/tasks.py _release_sync_lease.)
pytestmark = [pytest.mark.db, pytest.mark.first]
PROGRESS = re.compile(r"\s*\d+\.\d s  ")  # benchmarks/chaos.py's progress lines on stderr


def test_faults_leave_no_duplicate_no_lost_action_and_no_worker_down(database_url: str) -> None:
    """Run as its own process, as benchmarks/chaos.py is: nothing an earlier test left in this
    interpreter (connector caches, SDK state, engines) can reach the experiment. It starts a
    Redis server of its own (killed and started again empty along the way)."""
    # Retries come at a tenth of their real intervals (3 s, then 12 s: DUNWELL_RETRY_SCALE),
    # as leases (3 s) and the sweeper's beat (2 s) are short here: the same recovery, sooner.
    # A worker killed while it held RQ's scheduler lock leaves booked jobs to the other
    # workers' beats (2 s) once 10 s late; a run that finishes sooner than the deadline ends
    # sooner. `make chaos` keeps the real intervals.
    answer = subprocess.run(
        [sys.executable, "-m", "benchmarks.chaos", "--orgs", "3", "--invoices", "6",
         "--workers", "2", "--crash", "claimed=0.2,answered=0.1,committed=0.2",
         "--card-crash", "card_received=0.3,card_claimed=0.2,card_answered=0.3",
         "--lost-texts", "0.5",
         "--storm", "200", "--timeout", "300", "--lease-seconds", "3", "--redis-down", "4",
         "--clock-offset", "180", "--backend-bursts", "1", "--first-syncs", "2"],
        env={**os.environ, "DATABASE_URL": database_url, "DUNWELL_RETRY_SCALE": "0.1"},
        capture_output=True, text=True, timeout=420, check=False)
    assert answer.returncode == 0, answer.stderr[-3000:]
    figures = json.loads(answer.stdout.strip().splitlines()[-1])
    # Every figure in a failure's message, not pytest's abridged dict, and the run's progress
    # lines (what it waited for, each open action's state and job); `workers_log` names the
    # file with what the workers logged, kept for a failed run and removed once all passed.
    progress = [line for line in answer.stderr.splitlines() if PROGRESS.match(line)]
    said = json.dumps(figures) + "\nthe run's progress:\n" + "\n".join(progress)[-6000:]
    # 1 Xero and 2 QuickBooks organisations, 6 invoices each: 5 actions and a card payment.
    assert figures["writebacks"] == 15
    assert (figures["duplicates_by_kind"], figures["lost"], figures["states"],
            figures["missing_effects"], figures["skipped_without_reason"]) == (
        {"email": 0, "note": 0, "fee_line": 0, "fee_invoice": 0, "credit_note": 0, "text": 0},
        0, {"done": 15}, {}, 0), said
    # Per effect kind: as many as expected, none twice; texts sent in the customers' hours
    # (none fell back to email), every card payment booked once with its fee.
    effects = figures["effects"]
    assert all(e["duplicates"] == 0 and e["done"] == e["expected"] for e in effects.values()), \
        said
    assert (effects["text"]["expected"], effects["card_payment"]["expected"],
            effects["card_fee"]["expected"], figures["sms_fallbacks"]) == (3, 3, 3, 0), said
    assert figures["card_payment_states"] == {"paid": 3}, said
    assert (figures["card_payments_unbooked"], figures["stripe_events_unapplied"],
            figures["card_fees_refused"]) == (0, 0, []), said
    assert figures["webhook_posts"] >= 2 * figures["stripe_events"], said  # each twice
    assert figures["worker_kills"] >= 1, said  # the crash points did fire
    assert figures["redis_flushes"] == 1
    # The faults of issue 30, and what they must not leave behind.
    assert (figures["double_ledger_entries"], figures["stuck_actions"],
            figures["stuck_sync_runs"], figures["invoices_unplanned"]) == (0, 0, 0, 0), said
    assert figures["workers_running_at_end"] == figures["workers_started"] == 2, said
    assert figures["workers_exited_cleanly"] == 0, said
    assert figures["redis_kills"] == 1 and figures["keys_forgotten"] >= 1, said
    # Both first syncs failed part-way with their invoices stored, and completed as first
    # syncs on a later try, each organisation's daily run booked.
    assert figures["first_sync_orgs"] == 2 and figures["first_sync_tries"] >= 4, said
    assert figures["first_sync_invoices"] == 40, said
    assert figures["first_sync_modes"].count("full") == 2, said
    assert figures["first_sync_daily_runs_booked"] == 2, said
    assert figures["actions_beyond_the_experiment"] == {}, said
    if figures["paused_workers"]:  # a claim was caught held: it passed to another worker
        assert figures["paused_action_taken_over"] is True, said
    if figures["database"] == "postgresql":
        assert figures["backends_terminated"] >= 1, said
    os.unlink(figures["workers_log"])
