"""`dunwell setup`: an organisation's mode from the command line (review until go-live)."""

from __future__ import annotations

from datetime import timedelta

import click
from flask.cli import with_appcontext

from app.setup import services
from collect import review
from rules.rate_checks import check
from rules.statutory import default_tables, half_year
from store import clock
from store.db import db
from store.models import Organisation


@click.group("setup", help="An organisation's first hour: review, then go live.")
def setup_group() -> None:
    pass


def _org(org_id: int) -> Organisation:
    org = db.session.get(Organisation, org_id)
    if org is None:
        raise click.ClickException(f"no organisation {org_id}")
    return org


@setup_group.command("status", help="Say whether the organisation is in review or live.")
@click.argument("org_id", type=int)
@with_appcontext
def status(org_id: int) -> None:
    org = _org(org_id)
    if review.in_review(org):
        click.echo(f"{org.name}: in review (nothing is sent or written to the books)")
    else:
        click.echo(f"{org.name}: live since {org.live_since}"
                   + (" with approvals" if org.safe_mode else ""))


@setup_group.command("go-live", help="Go live: fees count lateness from today unless "
                     "--charge-earlier (see `dunwell plan` first).")
@click.argument("org_id", type=int)
@click.option("--fees-seen", is_flag=True, help="Confirm you have seen what the fees charge.")
@click.option("--charge-earlier", is_flag=True,
              help="Charge lateness from before today too.")
@click.option("--approvals", is_flag=True, help="Every action waits for approval.")
@with_appcontext
def go_live(org_id: int, fees_seen: bool, charge_earlier: bool, approvals: bool) -> None:
    org = _org(org_id)
    now = clock.now()
    if charge_earlier:
        for currency, amount in services.earlier_lateness(db.session(), org, now).items():
            click.echo(f"charging earlier lateness adds {currency} {amount} on the first day")
    try:
        services.go_live(db.session(), org, "the command line", now, fees_seen=fees_seen,
                         charge_earlier=charge_earlier, approvals=approvals)
    except services.SetupRefused as exc:
        db.session.rollback()
        raise click.ClickException(
            "already live" if str(exc) == "already live" else
            "the policy charges fees: look at them (`dunwell plan`), then pass --fees-seen"
        ) from exc
    click.echo(f"{org.name}: live")


@click.group("rates", help="Statutory rate tables.")
def rates_group() -> None:
    pass


@rates_group.command("status", help="List the statutory rate periods, in force now or in the "
                     "next half-year, that need a row or a check.")
@with_appcontext
def rates_status() -> None:
    today = clock.now().date()
    found = 0
    for jurisdiction, table in sorted(default_tables().items()):
        for day in (today, half_year(today)[1] + timedelta(days=1)):
            needed = check(table, day)
            if needed is None:
                continue
            found += 1
            what = ("needs a row" if needed.problem == "missing" else
                    f"needs a check: {needed.rate} % B2B rests on one source ({needed.source})")
            click.echo(f"{jurisdiction} {needed.start}..{needed.end}: {what}"
                       f" [{table.origin}]")
    click.echo(f"{found} period(s) need a row or a check")
