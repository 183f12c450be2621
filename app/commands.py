"""The commands of the app itself (`dunwell db|sync|plan|worker|web|user|plans|...`),
registered on each app it makes; the `dunwell` program around them is app/cli.py."""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from sqlalchemy import select
from werkzeug.serving import run_simple

from app.auth.views import hash_password
from app.customers.cli import customers_group
from app.health.cli import serve_worker_metrics, workers_command
from app.setup.cli import rates_group, setup_group
from collect.payment_plans import PlanRefused, agree_payment_plan
from collect.plan import dry_run
from jobs.tasks import sync_org
from jobs.worker import run_worker
from migrations import upgrade
from store import clock
from store.db import db
from store.models import Invoice, Organisation, User


def register(app: Flask) -> None:
    """Commands that need the app (and its database) are registered per app."""
    app.cli.add_command(db_group)
    app.cli.add_command(sync_command)
    app.cli.add_command(plan_command)
    app.cli.add_command(worker_command)
    app.cli.add_command(workers_command)
    app.cli.add_command(web_command)
    app.cli.add_command(user_group)
    app.cli.add_command(plans_group)
    app.cli.add_command(customers_group)
    app.cli.add_command(setup_group)
    app.cli.add_command(rates_group)


@click.group("db", help="Database schema (Alembic).")
def db_group() -> None:
    pass


@db_group.command("upgrade", help="Migrate the database to the newest schema.")
@click.argument("revision", default="heads")
@with_appcontext
def db_upgrade(revision: str) -> None:
    upgrade(revision)
    click.echo(f"database at {revision}")


@click.command("sync", help="Sync one organisation now, in this process, and plan what is due.")
@click.argument("org_id", type=int)
@with_appcontext
def sync_command(org_id: int) -> None:
    click.echo(json.dumps(sync_org(org_id, plan_after=False), indent=2))


@click.command("plan", help="Show what Dunwell would do for an organisation on a day (dry run).")
@click.argument("org_id", type=int)
@click.option("--as-of", "as_of", default=None, help="YYYY-MM-DD (default: today, local)")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per line.")
@with_appcontext
def plan_command(org_id: int, as_of: str | None, as_json: bool) -> None:
    org = db.session.get(Organisation, org_id)
    if org is None:
        raise click.ClickException(f"no organisation {org_id}")
    day = date.fromisoformat(as_of) if as_of else None
    actions = dry_run(db.session(), org, day or clock.now().date())
    db.session.rollback()
    if as_json:
        for item in actions:
            click.echo(json.dumps(item, default=_json_default, sort_keys=True))
        return
    for item in actions:
        when = item.get("scheduled_for") or ""
        click.echo(f"{when!s:<25}  {item['invoice_number']:<12} {item['kind']:<16}"
                   f" {item['reason']}")
    click.echo(f"{len(actions)} action(s)")


def _json_default(value: object) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


@click.command("worker", help="Run an RQ worker (with RQ's scheduler: one is active at a time).")
@click.option("--burst", is_flag=True, help="Stop when the queue is empty.")
@with_appcontext
def worker_command(burst: bool) -> None:
    serve_worker_metrics()
    run_worker(burst=burst)


@click.command("web", help="Serve the web app with the development server (use gunicorn in "
                           "production).")
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=5000, type=int)
@with_appcontext
def web_command(host: str, port: int) -> None:
    run_simple(host, port, current_app._get_current_object(), threaded=True)  # type: ignore[attr-defined]


@click.group("user", help="Users.")
def user_group() -> None:
    pass


@user_group.command("create")
@click.argument("email")
@click.password_option()
@with_appcontext
def user_create(email: str, password: str) -> None:
    db.session.add(User(email=email.strip().lower(), password_hash=hash_password(password)))
    db.session.commit()
    click.echo(f"user {email} created")


@click.group("plans", help="Payment plans agreed with customers.")
def plans_group() -> None:
    pass


@plans_group.command("add", help="Agree a payment plan for an invoice, e.g. --instalment "
                     "2026-12-01:250.00 --instalment 2027-01-01:250.00 (they must add up to "
                     "the amount due).")
@click.argument("org_id", type=int)
@click.argument("invoice_number")
@click.option("--instalment", "instalments", multiple=True, required=True,
              help="DATE:AMOUNT")
@with_appcontext
def plans_add(org_id: int, invoice_number: str, instalments: tuple[str, ...]) -> None:
    org = db.session.get(Organisation, org_id)
    if org is None:
        raise click.ClickException(f"no organisation {org_id}")
    invoice = db.session.scalar(select(Invoice).where(Invoice.org_id == org.id,
                                                      Invoice.number == invoice_number))
    if invoice is None:
        raise click.ClickException(f"no invoice {invoice_number} in organisation {org_id}")
    parsed = []
    for text in instalments:
        day, _, amount = text.partition(":")
        try:
            parsed.append((date.fromisoformat(day), Decimal(amount)))
        except (ValueError, InvalidOperation) as exc:
            raise click.ClickException(f"--instalment {text!r}: give DATE:AMOUNT, e.g."
                                       " 2026-12-01:250.00") from exc
    try:
        plan = agree_payment_plan(db.session(), org, invoice, parsed, clock.now())
    except PlanRefused as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from exc
    db.session.commit()
    click.echo(f"plan {plan.id} for {invoice.number}: {len(parsed)} instalments")
