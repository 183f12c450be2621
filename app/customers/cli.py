"""`dunwell customers`: risk scores, the pay-date backtest and credit holds from the command
line."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal, InvalidOperation

import click
from flask.cli import with_appcontext
from flask_babel import force_locale

from app.customers.risk_text import risk_reasons
from app.settings.credit_sections import SettingRefused, update_credit_settings
from app.settings.services import save_credit_sections
from collect.customers import (
    CreditRefused,
    backtest_org,
    contact_of,
    customer_credit,
    org_today,
    put_on_hold,
    record_top_up,
    release_hold,
    retainer_view,
    set_credit_limit,
    set_default_credit_limit,
    set_retainer,
    signal_hold,
)
from jobs.tasks import enqueue_action, plan_statements
from rules import PolicyError
from rules.statutory import round_money
from store import clock
from store.db import db
from store.models import Organisation


def _org(org_id: int):  # type: ignore[no-untyped-def]
    org = db.session.get(Organisation, org_id)
    if org is None:
        raise click.ClickException(f"no organisation {org_id}")
    return org


@click.group("customers", help="Credit control: customer risk, pay-date forecasts, holds.")
def customers_group() -> None:
    pass


@customers_group.command("risk", help="Each customer's risk score (0-100) with its reasons, "
                         "predicted days late and the struggling flag, riskiest first.")
@click.argument("org_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per line.")
@with_appcontext
def risk_command(org_id: int, as_json: bool) -> None:
    customers = customer_credit(db.session(), _org(org_id), clock.now())
    db.session.rollback()
    with force_locale("en"):  # the command line's reasons in English
        for customer in customers:
            if as_json:
                click.echo(json.dumps(customer.as_json(), sort_keys=True))
            else:
                flag = " STRUGGLING" if customer.struggling else ""
                click.echo(f"{customer.risk.score:>3}  {customer.contact.name:<32}"
                           f" ~{customer.lateness.expected:+d}d{flag}"
                           f"  {risk_reasons(customer.risk)}")
    if not as_json:
        click.echo(f"{len(customers)} customer(s)")


@customers_group.command("backtest", help="Walk forward through the books a month at a time: "
                         "predict each open invoice's pay date and score its customer from what "
                         "was known then, against what happened; print the errors and the AUC.")
@click.argument("org_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def backtest_command(org_id: int, as_json: bool) -> None:
    result = backtest_org(db.session(), _org(org_id), clock.now())
    db.session.rollback()
    if as_json:
        click.echo(json.dumps(result.as_json(), sort_keys=True))
        return
    click.echo(f"pay dates off by {result.model.mean} days on average (median"
               f" {result.model.median}) over {result.predictions} predictions at"
               f" {result.cutoffs} cut-offs; paid on the due date: {result.due_date.mean};"
               f" due date + the customer's median lateness: {result.customer_median.mean};"
               f" risk score AUC for paid > 30 days late: {result.auc} over {result.scored}")


@customers_group.command("hold", help="Put a customer on credit hold, or release them.")
@click.argument("org_id", type=int)
@click.argument("contact_id", type=int)
@click.option("--reason", default=None, help="Why (required to put on hold).")
@click.option("--release", is_flag=True, help="Release the hold.")
@with_appcontext
def hold_command(org_id: int, contact_id: int, reason: str | None, release: bool) -> None:
    org = _org(org_id)
    signal = None
    try:
        contact = contact_of(db.session(), org, contact_id)
        if release:
            release_hold(db.session(), contact)
        else:
            put_on_hold(db.session(), contact, reason or "", clock.now())
            signal = signal_hold(db.session(), org, contact, clock.now())
    except CreditRefused as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from exc
    db.session.commit()
    if not release and signal is not None:
        enqueue_action(signal)
    click.echo(f"{contact.name}: {'released' if release else 'on hold'}")


@customers_group.command("limit", help="Set a customer's credit limit (or the organisation's "
                         "default with --default); 'none' clears it.")
@click.argument("org_id", type=int)
@click.argument("amount")
@click.option("--contact", "contact_id", type=int, default=None)
@click.option("--default", "is_default", is_flag=True)
@with_appcontext
def limit_command(org_id: int, amount: str, contact_id: int | None, is_default: bool) -> None:
    org = _org(org_id)
    if is_default == (contact_id is not None):
        raise click.ClickException("give either --contact ID or --default")
    try:
        value = None if amount.lower() == "none" else Decimal(amount)
    except InvalidOperation as exc:
        raise click.ClickException(f"{amount!r} is not an amount") from exc
    try:
        if is_default:
            set_default_credit_limit(db.session(), org, value)
        else:
            set_credit_limit(db.session(), contact_of(db.session(), org, contact_id or 0), value)
    except CreditRefused as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from exc
    db.session.commit()
    click.echo(f"credit limit {'cleared' if value is None else value}")


@customers_group.command("settings", help="Credit-control settings: the statement day and "
                         "time, and whether a hold signals stop-service.")
@click.argument("org_id", type=int)
@click.option("--statement-day", type=click.IntRange(0, 28), default=None,
              help="Day of month (1-28); 0 turns statements off.")
@click.option("--statement-time", default=None, help="Local time, HH:MM.")
@click.option("--stop-service-on-hold/--no-stop-service-on-hold", default=None)
@click.option("--webhook-url", default=None, help="Told (signed POST) when a hold stops service.")
@with_appcontext
def settings_command(org_id: int, statement_day: int | None, statement_time: str | None,
                     stop_service_on_hold: bool | None, webhook_url: str | None) -> None:
    try:
        # The settings page's own function: the same checks, the same meaning of each value.
        settings = update_credit_settings(
            db.session(), _org(org_id), statement_day=statement_day,
            statement_time=statement_time, stop_service_on_hold=stop_service_on_hold,
            webhook_url=webhook_url)
    except SettingRefused as exc:
        db.session.rollback()
        option = {"statement_time": "--statement-time", "statement_day": "--statement-day",
                  "stop_service_webhook_url": "--webhook-url"}[exc.field]
        raise click.ClickException(f"{option}: {exc}") from exc
    db.session.commit()
    click.echo(json.dumps({
        "statement_day": settings.statement_day, "statement_time": settings.statement_time,
        "stop_service_on_hold": settings.stop_service_on_hold,
        "webhook_url": settings.stop_service_webhook_url}, sort_keys=True))


@customers_group.command("statements", help="Plan this month's statements that are due now "
                         "and queue them for sending.")
@click.argument("org_id", type=int)
@with_appcontext
def statements_command(org_id: int) -> None:
    _org(org_id)  # a clear error for an unknown organisation
    click.echo(f"{plan_statements(org_id)} statement(s) planned")


def _decimal(value: str | None, what: str) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(value)
    except InvalidOperation as exc:
        raise click.ClickException(f"{value!r} is not an amount ({what})") from exc


@customers_group.command("retainer", help="Start or change a customer's retainer: invoices "
                         "from --start draw on it; below --threshold a top-up is asked for.")
@click.argument("org_id", type=int)
@click.argument("contact_id", type=int)
@click.option("--threshold", required=True, help="Ask for a top-up below this balance.")
@click.option("--top-up-to", "top_up_to", required=True, help="The balance a top-up restores.")
@click.option("--start", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="The first day invoices draw on it (default: today).")
@click.option("--currency", default=None, help="Default: the organisation's base currency.")
@with_appcontext
def retainer_command(org_id: int, contact_id: int, threshold: str, top_up_to: str,
                     start: object, currency: str | None) -> None:
    org = _org(org_id)
    started = start.date() if isinstance(start, datetime) else org_today(org, clock.now())
    try:
        set_retainer(db.session(), org, contact_of(db.session(), org, contact_id),
                     threshold=_decimal(threshold, "threshold"),
                     top_up_to=_decimal(top_up_to, "top-up level"), started_on=started,
                     currency=currency)
    except CreditRefused as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from exc
    db.session.commit()
    click.echo(f"retainer from {started.isoformat()}: top-up below {threshold} to {top_up_to}")


@customers_group.command("top-up", help="Record money paid into a customer's retainer.")
@click.argument("org_id", type=int)
@click.argument("contact_id", type=int)
@click.argument("amount")
@click.option("--received", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="The day it came in (default: today).")
@with_appcontext
def top_up_command(org_id: int, contact_id: int, amount: str, received: object) -> None:
    org = _org(org_id)
    day = received.date() if isinstance(received, datetime) else org_today(org, clock.now())
    try:
        contact = contact_of(db.session(), org, contact_id)
        record_top_up(db.session(), org, contact, _decimal(amount, "top-up"), day)
    except CreditRefused as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from exc
    db.session.commit()
    view = retainer_view(db.session(), org, contact)
    assert view is not None
    click.echo(f"balance {view.retainer.currency}"
               f" {round_money(view.balance, view.retainer.currency)}")


def _section(value: str | None) -> object:
    """A JSON section from the command line; 'none' turns it off."""
    if value is None or value.lower() == "none":
        return None
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise click.ClickException(f"not JSON: {exc.msg}") from exc


@customers_group.command("credit-policy", help="Deposits and milestones, shorter terms for "
                         "customers over the limit or on hold, and the new-customer variant "
                         "(each a JSON section of the policy; 'none' turns it off).")
@click.argument("org_id", type=int)
@click.option("--deposits", default=None, help='e.g. {"threshold": "5000", "currency": "GBP",'
              ' "schedule": [{"percent": "30"}, {"percent": "70", "due_offset_days": 30}]}')
@click.option("--terms-on-hold", "terms", default=None,
              help='e.g. {"due_in_days": 7, "when": "either"}')
@click.option("--new-customer", "newcomer", default=None,
              help='e.g. {"paid_on_time": 3, "policy": {"reminder_steps": [...]}}')
@with_appcontext
def credit_policy_command(org_id: int, deposits: str | None, terms: str | None,
                          newcomer: str | None) -> None:
    org = _org(org_id)
    sections = {name: _section(value) for name, value in (
        ("deposits", deposits), ("terms_on_hold", terms), ("new_customer_policy", newcomer))
        if value is not None}
    if not sections:
        raise click.ClickException("give --deposits, --terms-on-hold or --new-customer")
    try:
        # The settings page's own saving path: the next policy version, in the activity log.
        policy, _version = save_credit_sections(org, "the command line", sections, clock.now())
    except PolicyError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from exc
    for name in sorted(sections):
        value = getattr(policy, name)
        shown = "off" if value is None else json.dumps(value.model_dump(mode="json"),
                                                       sort_keys=True)
        click.echo(f"{name}: {shown}")
