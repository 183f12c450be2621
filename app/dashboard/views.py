"""The dashboard and the invoice page."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from app.dashboard import services
from app.events import SMS_REASONS, task_title
from app.formatting import day, money
from app.organisations.services import may_in, organisation_for
from collect import approvals, invoice_actions, one_off
from collect.book import calendar_for
from collect.customers import dashboard_credit
from collect.payment_plans import PlanRefused
from collect.plan import refresh_next_action
from jobs.tasks import enqueue_action
from rules.messages import TONES
from store import clock
from store.db import db
from store.models import Action, Invoice, Organisation, User

blueprint = Blueprint("dashboard", __name__)


@blueprint.route("/orgs/<int:org_id>/dashboard")
@login_required
def show(org_id: int) -> str:
    org = organisation_for(current_user, org_id)
    now = clock.now()
    today = now.astimezone(ZoneInfo(org.timezone)).date()
    aging = services.aging(org, today)
    main = aging[0] if aging else None
    return render_template(
        "dashboard/show.html", org=org, aging=aging, main=main,
        bars=services.chart_bars(main) if main else [], buckets=services.BUCKETS,
        chart_height=services.CHART_HEIGHT + services.TOP + 40,
        chart_width=len(services.BUCKETS) * (services.BAR_WIDTH + services.GAP)
        + services.GAP, bar_width=services.BAR_WIDTH,
        dso=services.dso(org, today, main.currency) if main else None,
        dso_chart=services.dso_chart(services.dso_history(org, today, main.currency))
        if main else None, dso_days=services.DSO_DAYS,
        collected={days: services.collected_after_reminder(org, today, days)
                   for days in services.COLLECTION_WINDOWS},
        attribution_days=services.ATTRIBUTION_DAYS,
        upcoming=services.upcoming_actions(org, now),
        next_due=services.next_due_invoices(org, now),
        tasks=services.open_tasks(org), disputed=services.disputed_invoices(org),
        **dashboard_credit(db.session(), org, now))


@blueprint.route("/orgs/<int:org_id>/tasks/<int:task_id>/done", methods=["POST"])
@login_required
def task_done(org_id: int, task_id: int) -> Response:
    org = organisation_for(current_user, org_id)
    try:
        task = services.complete_task(org, task_id, current_user,
                                      request.form.get("note", ""), clock.now())
    except LookupError:
        abort(404)
    except services.TaskNoteTooLong as exc:
        flash(str(exc), "error")
        return redirect(url_for("dashboard.show", org_id=org.id))
    flash(_("Task done: %(title)s", title=task_title(task, org)), "success")
    return redirect(url_for("dashboard.show", org_id=org.id))


@blueprint.route("/orgs/<int:org_id>/invoices/<int:invoice_id>")
@login_required
def invoice(org_id: int, invoice_id: int) -> str:
    org = organisation_for(current_user, org_id)
    try:
        found, timeline, actions = services.invoice_timeline(org, invoice_id)
    except LookupError:
        abort(404)
    today = calendar_for(org).today(clock.now())
    may_act = may_in(org, "dashboard.invoice_note")
    return render_template("dashboard/invoice.html", org=org, invoice=found, timeline=timeline,
                           **(_one_off_form(org, found) if may_act else {}),
                           actions=actions, reference=services.provider_reference,
                           own=services.own_documents_of(org, found),
                           may_act=may_act, promise_max_days=invoice_actions.PROMISE_MAX_DAYS,
                           pause_max_days=invoice_actions.PAUSE_MAX_DAYS,
                           pause=invoice_actions.pause_in_force(db.session(), found, today),
                           next_step=services.next_step(org, found, clock.now()),
                           titles=TIMELINE_TITLES,
                           plan=services.active_plan(org, found),
                           nonce=secrets.token_hex(16), plan_rows=PLAN_ROWS,
                           first_pause_day=today + timedelta(days=1),
                           last_pause_day=today + timedelta(days=invoice_actions.PAUSE_MAX_DAYS),
                           today=today)


def _one_off_form(org: Organisation, invoice: Invoice) -> dict[str, object]:
    """The one-off reminder's form: whether a text can reach the customer (or why not), the
    choice as asked (`?one_off=preview&channel=…&tone=…&line=…`) and its preview: the exact
    words, a text's segments and cost, and when it would go. Nothing is planned; the only
    write is the customer's portal key, made on its first use as any message makes it."""
    session = db.session()
    number, reason = one_off.text_reach(session, org, invoice)
    chosen = {"channel": request.args.get("channel") or "dunwell_email",
              "tone": request.args.get("tone") or "friendly",
              "line": request.args.get("line") or ""}
    found, refused = None, None
    if request.args.get("one_off") == "preview":
        try:
            found = one_off.compose(session, org, invoice, chosen["channel"], chosen["tone"],
                                    chosen["line"], clock.now())
            session.commit()  # the customer's portal key, if this made it: the link shown
        except one_off.Refused as exc:
            session.rollback()
            refused = refusal(exc.code)
    local = found.send_at.astimezone(ZoneInfo(found.zone)) if found else None
    return {"one_off": found, "one_off_refused": refused, "one_off_chosen": chosen,
            "one_off_local": local, "one_off_later": bool(found and found.send_at > clock.now()),
            "one_off_line_chars": one_off.MAX_LINE_CHARS, "tones": TONES,
            "no_text_because": None if number else str(SMS_REASONS[reason])}


PLAN_ROWS = 6  # instalment rows the page offers (the command line takes up to 60)

# What the timeline calls an entry of the activity log (an action is called by its kind,
# app/events.py; an unknown kind is shown as stored).
TIMELINE_TITLES = {
    "payment": _l("Payment"), "note": _l("Note"), "issued": _l("Issued in the books"),
    "synced": _l("Last changed in the books, as synced"), "paused": _l("Chasing paused"),
    "resumed": _l("Chasing resumed"), "reminder_requested": _l("Reminder asked for now"),
    "promise_recorded": _l("Promise to pay recorded"), "promise_made": _l("Promise to pay"),
    "dispute_marked": _l("Marked disputed"), "dispute_opened": _l("Dispute"),
    "dispute_resolved": _l("Dispute resolved"), "plan_requested": _l("Plan asked for"),
    "payment_plan": _l("Payment plan agreed"), "action_planned": _l("Planned"),
    "action_done": _l("Done"), "action_skipped": _l("Skipped"), "action_failed": _l("Failed"),
    "action_dead": _l("Given up"), "action_approved": _l("Approved"),
    "action_awaiting": _l("Waiting for approval"), "action_replanned": _l("Planned again"),
    "needs_attention": _l("Needs attention"), "task_done": _l("Task done"),
}


# What an invoice's actions say when they will not take the input (nothing is saved).
REFUSALS = {
    "not_open": _l("This invoice has nothing left to pay."),
    "no_customer": _l("This invoice has no customer in the books."),
    "bad_date": _l("Please give the day the customer promised to pay by."),
    "pause_bad_date": _l("Please give the day chasing resumes, or choose until resumed."),
    "date_past": _l("The promised day is in the past: choose today or a later day."),
    "date_far": _l("A promise may be at most %(days)s days ahead: agree a payment plan "
                   "instead."),
    "bad_amount": _l("Please give an amount greater than zero and no more than what is due."),
    "reason_missing": _l("Please say why the invoice is disputed."),
    "reason_long": _l("Please keep the reason shorter."),
    "note_missing": _l("Please write the note."),
    "note_long": _l("A note may hold at most %(chars)s characters."),
    "pause_reason_missing": _l("Please say why chasing is paused."),
    "pause_past": _l("Chasing can only be paused until a day after today."),
    "pause_far": _l("A pause may last at most %(pause_days)s days: exclude the customer "
                    "instead."),
    "not_paused": _l("Chasing of this invoice is not paused."),
    "excluded": _l("The customer is excluded from collection: no reminder goes."),
    "disputed": _l("The invoice is disputed: resolve the dispute before reminding."),
    "own_document": _l("Dunwell does not chase a document it made."),
    "paused": _l("Chasing is paused: resume it before sending a reminder."),
    "promised": _l("The customer promised a day to pay: reminders wait until then."),
    "closing": _l("A discount is being credited on this invoice: nothing is chased."),
    "plan": _l("The invoice has a payment plan: its instalments are reminded on their days."),
    "reminder_waiting": _l("A reminder for this invoice is already on its way."),
    "no_step": _l("The policy has no further reminder that can reach this customer."),
    "one_off_channel": _l("Please choose email or text message."),
    "one_off_template": _l("Please choose one of the organisation's reminder texts."),
    "one_off_line_long": _l("A personal line may hold at most %(line_chars)s characters."),
    "one_off_taken": _l("This reminder was asked for already."),
    "one_off_changed": _l("What would go out is not what the preview showed: preview it "
                          "again before sending."),
    "no_email": _l("The customer has no email address in the books."),
    "no_window": _l("The policy's send window has no moment in the coming weeks."),
    "sms_no_hours": _l("The customer's hours have no moment in the coming weeks."),
}


def refusal(code: str) -> str:
    """Refused input in the reader's words (a text that cannot reach the customer says why,
    as the customer's page does)."""
    if code.startswith("sms_") and code[4:] in SMS_REASONS:
        return _("No text can go to this customer: %(why)s.", why=SMS_REASONS[code[4:]])
    if code in SMS_REASONS:
        return _("No text can go to this customer: %(why)s.", why=SMS_REASONS[code])
    return str(REFUSALS.get(code, REFUSALS["bad_amount"])) % {
        "days": invoice_actions.PROMISE_MAX_DAYS, "chars": invoice_actions.MAX_NOTE_CHARS,
        "pause_days": invoice_actions.PAUSE_MAX_DAYS, "line_chars": one_off.MAX_LINE_CHARS}
PLAN_REFUSALS = {
    "not_open": _l("This invoice has nothing left to pay."),
    "plan_row": _l("Each instalment needs a day and an amount."),
    "plan_empty": _l("Please give at least one instalment."),
    "plan_count": _l("A plan has at most %(most)s instalments."),
    "plan_order": _l("The instalments' days must be different and in order."),
    "plan_past": _l("The first instalment cannot be before today."),
    "plan_amount": _l("Each instalment must be an amount above zero in the invoice's currency."),
    "plan_sum": _l("The instalments add up to %(total)s, but %(due)s is due: nothing was "
                   "saved."),
}
DONE = {"promise": _l("Promise recorded: reminders wait until the promised day."),
        "dispute": _l("Invoice marked disputed: reminders and fees stop until it is resolved."),
        "note": _l("Note added. It is written to the invoice's history in the books."),
        "pause": _l("Chasing paused."),
        "resume": _l("Chasing resumed: the reminders go on from where they were."),
        "remind": _l("The next reminder goes out now."),
        "remind_held": _l("The next reminder waits for approval (safe mode)."),
        "one_off_held": _l("The one-off reminder waits for approval (safe mode)."),
        "plan": _l("Payment plan agreed: its instalments are chased from now on.")}

Act = Callable[[Session, Organisation, Invoice, User, date, datetime], list[Action] | None]


def _act(org_id: int, invoice_id: int, done: str, act: Act,
         said_when: Callable[[datetime], str | None] | None = None) -> Response:
    """The common frame of an invoice action: the invoice, the input, the ledger's next
    action, one commit, then a job for each action it planned (an action held for approval
    in safe mode gets none); refused input is rolled back and said in plain words.
    `said_when` words what was done, where that depends on the input (when it goes out)."""
    org = organisation_for(current_user, org_id)
    session = db.session()
    found = session.scalar(select(Invoice).where(Invoice.org_id == org.id,
                                                 Invoice.id == invoice_id))
    if found is None:
        abort(404)
    now = clock.now()
    back = url_for("dashboard.invoice", org_id=org.id, invoice_id=invoice_id)
    try:
        planned = act(session, org, found, current_user, calendar_for(org).today(now), now)
    except invoice_actions.ActionRefused as refused:
        session.rollback()
        flash(refusal(refused.code), "error")
        return redirect(back + "#act", code=303)
    except PlanRefused as refused:
        session.rollback()
        params = dict(refused.params)
        for key in ("total", "due"):
            if key in params:
                params[key] = money(params[key], found.currency)  # type: ignore[arg-type]
        flash(str(PLAN_REFUSALS.get(refused.code, PLAN_REFUSALS["plan_row"])) % params,
              "error")
        return redirect(back + "#plan-form", code=303)
    to_send = approvals.hold_in_safe_mode(session, org, planned or [], now) \
        if done in ("remind", "one_off") else list(planned or [])
    refresh_next_action(session, org, now, [found.id])
    said = said_when(now) if said_when is not None else None
    session.commit()
    for action in to_send:
        enqueue_action(action)  # one booked for later waits in its job (collect/one_off.py)
    if done in ("remind", "one_off") and planned and not to_send:
        flash(str(DONE[f"{done}_held"]), "success")
    else:
        flash(said or str(DONE[done]), "success")
    return redirect(back, code=303)


@blueprint.route("/orgs/<int:org_id>/invoices/<int:invoice_id>/promise", methods=["POST"])
@login_required
def invoice_promise(org_id: int, invoice_id: int) -> Response:
    def act(session: Session, _org: Organisation, invoice: Invoice, user: User, today: date,
            now: datetime) -> None:
        invoice_actions.record_promise(session, invoice, user, request.form.get("pay_by"),
                                       request.form.get("amount"), today, now)
    return _act(org_id, invoice_id, "promise", act)


@blueprint.route("/orgs/<int:org_id>/invoices/<int:invoice_id>/dispute", methods=["POST"])
@login_required
def invoice_dispute(org_id: int, invoice_id: int) -> Response:
    def act(session: Session, _org: Organisation, invoice: Invoice, user: User, _today: date,
            now: datetime) -> None:
        invoice_actions.mark_disputed(session, invoice, user, request.form.get("reason"), now)
    return _act(org_id, invoice_id, "dispute", act)


@blueprint.route("/orgs/<int:org_id>/invoices/<int:invoice_id>/note", methods=["POST"])
@login_required
def invoice_note(org_id: int, invoice_id: int) -> Response:
    def act(session: Session, _org: Organisation, invoice: Invoice, user: User, _today: date,
            now: datetime) -> list[Action]:
        action = invoice_actions.add_note(session, invoice, user, request.form.get("note"),
                                          now, request.form.get("nonce"))
        return [action] if action is not None else []
    return _act(org_id, invoice_id, "note", act)


@blueprint.route("/orgs/<int:org_id>/invoices/<int:invoice_id>/pause", methods=["POST"])
@login_required
def invoice_pause(org_id: int, invoice_id: int) -> Response:
    def act(session: Session, _org: Organisation, invoice: Invoice, user: User, today: date,
            now: datetime) -> None:
        until = request.form.get("until") if request.form.get("how") != "resumed" else ""
        invoice_actions.pause(session, invoice, user, until, request.form.get("reason"),
                              today, now)
    return _act(org_id, invoice_id, "pause", act)


@blueprint.route("/orgs/<int:org_id>/invoices/<int:invoice_id>/resume", methods=["POST"])
@login_required
def invoice_resume(org_id: int, invoice_id: int) -> Response:
    def act(session: Session, _org: Organisation, invoice: Invoice, user: User, today: date,
            now: datetime) -> None:
        invoice_actions.resume(session, invoice, user, today, now)
    return _act(org_id, invoice_id, "resume", act)


@blueprint.route("/orgs/<int:org_id>/invoices/<int:invoice_id>/remind", methods=["POST"])
@login_required
def invoice_remind(org_id: int, invoice_id: int) -> Response:
    def act(session: Session, org: Organisation, invoice: Invoice, user: User, _today: date,
            now: datetime) -> list[Action]:
        return [invoice_actions.send_next_reminder(session, org, invoice, user, now)]
    return _act(org_id, invoice_id, "remind", act)


@blueprint.route("/orgs/<int:org_id>/invoices/<int:invoice_id>/plan", methods=["POST"])
@login_required
def invoice_plan(org_id: int, invoice_id: int) -> Response:
    def act(session: Session, org: Organisation, invoice: Invoice, user: User, _today: date,
            now: datetime) -> None:
        invoice_actions.agree_plan(session, org, invoice, user,
                                   request.form.getlist("instalment_day"),
                                   request.form.getlist("instalment_amount"), now)
    return _act(org_id, invoice_id, "plan", act)


@blueprint.route("/orgs/<int:org_id>/invoices/<int:invoice_id>/one-off", methods=["POST"])
@login_required
def invoice_one_off(org_id: int, invoice_id: int) -> Response:
    booked: list[tuple[one_off.OneOff, Organisation]] = []

    def act(session: Session, org: Organisation, invoice: Invoice, user: User, _today: date,
            now: datetime) -> list[Action]:
        action, found = one_off.plan(session, org, invoice, user, request.form.get("channel"),
                                     request.form.get("tone"), request.form.get("line"),
                                     request.form.get("nonce"), now,
                                     request.form.get("previewed") or None,
                                     request.form.get("link") or None)
        booked.append((found, org))
        return [action]

    def said(now: datetime) -> str | None:
        found, org = booked[0]
        if found.send_at <= now:
            return _("The one-off reminder goes out now.")
        local = found.send_at.astimezone(ZoneInfo(found.zone))
        return _("Outside the allowed hours: the one-off reminder goes out on %(day)s at "
                 "%(time)s (%(zone)s).", day=day(local.date(), org), time=local.strftime("%H:%M"),
                 zone=found.zone)
    return _act(org_id, invoice_id, "one_off", act, said)
