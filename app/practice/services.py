"""The accountant's view of every book they can see: a few figures per book, read per book
with the same queries the dashboard uses."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from app.dashboard.services import aging, dso, overdue_count
from app.organisations.services import organisations_of, role_of
from store.db import db
from store.models import Invoice, Membership, Organisation, User

SORTS = ("name", "overdue", "dso", "over_60", "due_today")


@dataclass(frozen=True)
class PracticeAccess:
    """Who sees the practice view: an accountant in at least one book, or an owner of several
    books (a practice of their own). Anyone else has no practice: one book leads straight to
    it, none to the list of books (where one is connected), several without such a role to
    a 404, as for any page that is not theirs."""

    allowed: bool
    only_book: Organisation | None = None
    no_books: bool = False


def practice_access(user: User) -> PracticeAccess:
    roles = db.session.execute(select(Membership.role, Organisation).join(
        Organisation, Organisation.id == Membership.org_id).where(
        Membership.user_id == user.id)).all()
    if any(role == "accountant" for role, _ in roles) or \
            sum(1 for role, _ in roles if role == "owner") >= 2:
        return PracticeAccess(allowed=True)
    if not roles:
        return PracticeAccess(allowed=False, no_books=True)
    if len(roles) == 1:
        return PracticeAccess(allowed=False, only_book=roles[0][1])
    return PracticeAccess(allowed=False)


@dataclass(frozen=True)
class BookRow:
    org: Organisation
    role: str
    currency: str
    overdue: Decimal  # in `currency`, the book's largest (what the list is sorted by)
    dso: int | None
    over_60: int
    due_today: int
    health: str  # active | needs_reconnect | disconnected | none
    # Every currency the book is owed in, one figure each: never added across currencies.
    overdue_by_currency: tuple[tuple[str, Decimal], ...] = ()


def practice_rows(user: User, now: datetime, query: str = "", health: str = "",
                  sort: str = "overdue") -> list[BookRow]:
    rows = []
    for org in organisations_of(user):
        if query and query.lower() not in org.name.lower():
            continue
        state = org.connection.status if org.connection else "none"
        if health and state != health:
            continue
        zone = ZoneInfo(org.timezone)
        today = now.astimezone(zone).date()
        end_of_day = datetime.combine(today + timedelta(days=1), time(0), zone)
        books = aging(org, today)
        main = books[0] if books else None
        due_today = db.session.scalar(select(func.count()).select_from(Invoice).where(
            Invoice.org_id == org.id, Invoice.next_action_at.is_not(None),
            Invoice.next_action_at < end_of_day)) or 0
        rows.append(BookRow(
            org=org, role=role_of(user, org) or "", currency=main.currency if main
            else org.base_currency, overdue=main.overdue if main else Decimal(0),
            dso=dso(org, today, main.currency) if main else None,
            over_60=overdue_count(org, today, 60), due_today=due_today, health=state,
            overdue_by_currency=tuple((row.currency, row.overdue) for row in books)))
    key = sort if sort in SORTS else "overdue"
    if key == "name":
        rows.sort(key=lambda r: r.org.name.lower())
    else:
        rows.sort(key=lambda r: (-(getattr(r, key) or 0), r.org.name.lower()))
    return rows
