"""Full and incremental sync: provider records in, idempotent upserts out.

Each stream's cursor (the provider's updated-at of the newest record read) is committed with
every page, so an interrupted sync resumes where it stopped and a second sync of unchanged
books reads one empty page per stream and writes nothing.
"""

from __future__ import annotations

import json
import logging
import time
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ARRAY, JSON, String, bindparam, cast, func, insert, select, text, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from connectors.base import Connector, ContactRecord, InvoiceRecord, PaymentRecord, QuoteRecord
from observability.metrics import observe_sync
from store.models import Contact, Invoice, Organisation, Payment, Policy, Quote, SyncCursor
from sync.streams import STREAMS, Stream

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)

Progress = Callable[[dict[str, int]], None]


@dataclass
class SyncResult:
    mode: str
    counts: dict[str, int] = field(default_factory=dict)
    api_calls: int = 0
    changed_invoice_ids: set[int] = field(default_factory=set)


def _assign(row: Any, values: dict[str, Any]) -> bool:
    """Set only what differs, so an unchanged record issues no UPDATE."""
    changed = False
    for name, value in values.items():
        if getattr(row, name) != value:
            setattr(row, name, value)
            changed = True
    return changed


def _array_literal(values: Iterable[str]) -> str:
    """A PostgreSQL array literal of strings, each quoted: one text parameter the server
    parses, where psycopg would dump a list element by element in Python."""
    return "{" + ",".join('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
                          for v in values) + "}"


def _of_page(session: Session, query: Any, model: Any, provider_ids: list[str]) -> Any:
    """Restrict `query` to the page's provider ids. PostgreSQL gets them as one array joined
    as a table: with a list of a thousand values it falls to a scan comparing each row with
    each value once the table has grown and been analysed (seconds a page at 20,000 rows)."""
    if session.get_bind().dialect.name == "postgresql":
        ids = cast(bindparam("page_ids", _array_literal(provider_ids), type_=String),
                   ARRAY(String))
        page = func.unnest(ids).table_valued("provider_id").render_derived(name="page")
        return query.join(page, model.provider_id == page.c.provider_id)
    return query.where(model.provider_id.in_(provider_ids))


def _ids_by_provider_id(session: Session, model: Any, org_id: int,
                        provider_ids: Iterable[str | None]) -> dict[str, int]:
    ids = [p for p in set(provider_ids) if p]
    if not ids:
        return {}
    rows = session.execute(_of_page(
        session, select(model.provider_id, model.id).where(model.org_id == org_id), model,
        ids))
    return {provider_id: row_id for provider_id, row_id in rows}


@dataclass
class _Stored:
    """A stored row's id and synced values, read as plain columns (no ORM object per row)."""

    id: int
    values: dict[str, Any]


def _stored(session: Session, model: Any, org_id: int, provider_ids: Iterable[str],
            fields: Sequence[str]) -> dict[str, _Stored]:
    ids = list(set(provider_ids))
    if not ids:
        return {}
    columns = [getattr(model, name) for name in fields]
    rows = session.execute(_of_page(session, select(model.id, model.provider_id, *columns)
                                    .where(model.org_id == org_id), model, ids))
    return {row[1]: _Stored(row[0], dict(zip(fields, row[2:], strict=True))) for row in rows}


def _differs(stored: dict[str, Any], values: dict[str, Any]) -> bool:
    return any(stored[name] != value for name, value in values.items())


def column_arrays(session: Session, table: Any, rows: list[dict[str, Any]],
                  columns: Sequence[str]) -> tuple[dict[str, list[Any]], list[str]]:
    """Each column's values as one list, bound as SQLAlchemy would bind them one by one,
    with each one's SQL array type: a page travels as a few arrays, not thousands of
    placeholders for the driver to parse."""
    dialect = session.get_bind().dialect
    arrays: dict[str, list[Any]] = {}
    casts: list[str] = []
    for name in columns:
        column = table.c[name]
        bind = column.type.bind_processor(dialect)
        values = [row[name] for row in rows]
        arrays[name] = [bind(v) for v in values] if bind is not None else values
        casts.append(f"%({name})s::{column.type.compile(dialect=dialect)}[]")
    return arrays, casts


def _with_defaults(table: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """The rows with each missing column's scalar default, as Core's INSERT would add them;
    None if a missing column's default must be computed."""
    missing = {}
    for column in table.columns:
        if column.name in rows[0] or column.primary_key or column.default is None:
            continue
        if not column.default.is_scalar:
            return None
        missing[column.name] = column.default.arg
    return [{**missing, **row} for row in rows] if missing else rows


# From this many rows a page goes to PostgreSQL by COPY (text format, encoded by psycopg's C
# code) into a temporary table, instead of one array per column, which psycopg dumps value by
# value in Python; below it the extra round trips of the temporary table cost more than that.
COPY_FROM_ROWS = 50


def by_copy(session: Session, rows: int) -> bool:
    return rows >= COPY_FROM_ROWS and session.get_bind().dialect.name == "postgresql"


def copy_page(session: Session, table: Any, rows: list[tuple[int, dict[str, Any]]],
              columns: Sequence[str]) -> str:
    """COPY `rows` (each with an id: the row's own for an UPDATE, its place in the page for an
    INSERT) into this connection's temporary table shaped like `table`, emptied first; returns
    the temporary table's name. Values are bound as SQLAlchemy would bind them."""
    page = f"page_{table.name}"
    # Without parameters both statements go in one round trip. The table lives as long as
    # the connection, and ON COMMIT DELETE ROWS empties it at the end of each transaction.
    _driver(session).execute(
        f"CREATE TEMPORARY TABLE IF NOT EXISTS {page} "  # noqa: S608 - our own names
        f"ON COMMIT DELETE ROWS AS SELECT * FROM {table.name} WITH NO DATA; DELETE FROM {page}")
    copy_into(session, table, ({**row, "id": row_id} for row_id, row in rows), ["id", *columns],
              into=page)
    return page


def copy_into(session: Session, table: Any, rows: Iterable[Mapping[str, Any]],
              columns: Sequence[str], into: str | None = None) -> None:
    """COPY `rows` into `table` (or into the table named `into`, shaped like it), each value
    bound as SQLAlchemy would bind it: psycopg's C code encodes them, where an array or an
    executemany is dumped value by value in Python. JSON goes as its text."""
    dialect = session.get_bind().dialect
    serialise = getattr(dialect, "_json_serializer", None) or json.dumps
    binds = []
    for name in columns:
        column_type = table.c[name].type
        bind = column_type.bind_processor(dialect)
        if isinstance(column_type, JSON):
            bind = _json_text(serialise)
        binds.append((name, bind))
    with _driver(session).cursor() as cursor, cursor.copy(
            f"COPY {into or table.name} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([row[name] if bind is None else bind(row[name])
                            for name, bind in binds])


def _json_text(serialise: Callable[[Any], str]) -> Callable[[Any], str | None]:
    return lambda value: None if value is None else serialise(value)


def _driver(session: Session) -> psycopg.Connection[Any]:
    """The session's psycopg connection (COPY: PostgreSQL only)."""
    raw = session.connection().connection.dbapi_connection
    assert raw is not None
    return typing.cast("psycopg.Connection[Any]", raw)


def _insert_rows(session: Session, model: Any, rows: list[dict[str, Any]],
                 links: dict[str, tuple[Any, str]] | None = None) -> dict[str, int]:
    """One INSERT per page (RETURNING the new ids); a row another sync stored meanwhile is
    updated instead (ON CONFLICT), where the database can say so.

    `links` (column -> (model, column holding its provider id)): ids the caller left for the
    database to find, by joining the page with `model` in the INSERT, when the page goes by
    COPY (`by_copy`); otherwise the caller has found them."""
    if not rows:
        return {}
    table = model.__table__
    dialect = session.get_bind().dialect.name
    updated = [name for name in rows[0] if name not in ("org_id", "provider_id")]
    filled = _with_defaults(table, rows) if dialect == "postgresql" else None
    if filled is not None and by_copy(session, len(filled)):
        # PostgreSQL, a long page: COPY into a temporary table, one INSERT ... SELECT from it.
        columns = list(filled[0])
        page = copy_page(session, table, list(enumerate(filled)), columns)
        selected, joins = [], []
        for name in columns:
            if links and name in links:
                linked, provider_column = links[name]
                alias = f"link_{name}"
                selected.append(f"{alias}.id")
                joins.append(f" LEFT JOIN {linked.__table__.name} AS {alias} ON "
                             f"{alias}.org_id = page.org_id AND {alias}.provider_id = "
                             f"page.{provider_column} AND page.{provider_column} <> ''")
            else:
                selected.append(f"page.{name}")
        sql = (f"INSERT INTO {table.name} ({', '.join(columns)}) "  # noqa: S608 - our names
               f"SELECT {', '.join(selected)} FROM {page} AS page{''.join(joins)} "
               f"ORDER BY page.id ON CONFLICT (org_id, provider_id) DO UPDATE SET "
               + ", ".join(f"{name} = EXCLUDED.{name}" for name in updated)
               + " RETURNING provider_id, id")
        found = session.connection().exec_driver_sql(sql)
        return {provider_id: row_id for provider_id, row_id in found}
    if filled is not None:
        # PostgreSQL, a short page: the rows as arrays, unnested by the server.
        columns = list(filled[0])
        arrays, casts = column_arrays(session, table, filled, columns)
        sql = (f"INSERT INTO {table.name} ({', '.join(columns)}) "  # noqa: S608 - our names
               f"SELECT * FROM unnest({', '.join(casts)}) "
               f"ON CONFLICT (org_id, provider_id) DO UPDATE SET "
               + ", ".join(f"{name} = EXCLUDED.{name}" for name in updated)
               + " RETURNING provider_id, id")
        found = session.connection().exec_driver_sql(sql, arrays)
        return {provider_id: row_id for provider_id, row_id in found}
    statement: Any
    if dialect == "sqlite":
        statement = sqlite_insert(table)
        statement = statement.on_conflict_do_update(
            index_elements=["org_id", "provider_id"],
            set_={name: statement.excluded[name] for name in updated})
    else:
        statement = insert(table)
    returned = session.execute(statement.returning(table.c.provider_id, table.c.id), rows)
    return {provider_id: row_id for provider_id, row_id in returned}


def _update_rows(session: Session, model: Any, rows: list[tuple[int, dict[str, Any]]]) -> None:
    """Rows already in the session are changed through their objects (whoever holds them
    sees the new values); the others by one UPDATE per set of columns (PostgreSQL: from
    arrays; elsewhere an executemany)."""
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row_id, values in rows:
        loaded = session.identity_map.get(identity_key(model, row_id))
        if loaded is not None:
            _assign(loaded, values)
            continue
        by_columns.setdefault(tuple(values), []).append({"row_id": row_id, **values})
    for columns, params in by_columns.items():
        update_by_id(session, model.__table__, columns, params)


def update_by_id(session: Session, table: Any, columns: Sequence[str],
                 params: list[dict[str, Any]]) -> None:
    """One UPDATE of `columns` for many rows, each given by its id (`row_id`) and values:
    PostgreSQL joins them from a temporary table filled by COPY (a long page) or from
    arrays; elsewhere an executemany."""
    postgresql = session.get_bind().dialect.name == "postgresql"
    if postgresql and by_copy(session, len(params)):
        page = copy_page(session, table, [(p["row_id"], p) for p in params], columns)
        sql = (f"UPDATE {table.name} SET "  # noqa: S608 - our own names
               + ", ".join(f"{name} = page.{name}" for name in columns)
               + f" FROM {page} AS page WHERE {table.name}.id = page.id")
        session.connection().exec_driver_sql(sql)
        return
    if postgresql:
        arrays, casts = column_arrays(session, table, params, columns)
        arrays["row_id"] = [p["row_id"] for p in params]
        sql = (f"UPDATE {table.name} SET "  # noqa: S608 - our own names
               + ", ".join(f"{name} = page.{name}" for name in columns)
               + f" FROM unnest(%(row_id)s::integer[], {', '.join(casts)}) "
               f"AS page(row_id, {', '.join(columns)}) WHERE {table.name}.id = page.row_id")
        session.connection().exec_driver_sql(sql, arrays)
        return
    session.execute(update(table).where(table.c.id == bindparam("row_id"))
                    .values({name: bindparam(name) for name in columns}), params)


def upsert_contacts(session: Session, org_id: int, records: Sequence[ContactRecord]) -> set[int]:
    fields = ("name", "email", "is_customer", "archived", "provider_updated_at", "mobile",
              "phone", "country")
    existing = _stored(session, Contact, org_id, (r.provider_id for r in records), fields)
    new: dict[str, dict[str, Any]] = {}
    changed: list[tuple[int, dict[str, Any]]] = []
    for record in records:
        values = {"name": record.name, "email": record.email, "is_customer": record.is_customer,
                  "archived": record.archived, "provider_updated_at": record.updated_at,
                  "mobile": record.mobile, "phone": record.phone, "country": record.country}
        row = existing.get(record.provider_id)
        if row is None:
            new[record.provider_id] = {"org_id": org_id, "provider_id": record.provider_id,
                                       **values}
        elif _differs(row.values, values):
            row.values.update(values)
            changed.append((row.id, values))
    _insert_rows(session, Contact, list(new.values()))
    _update_rows(session, Contact, changed)
    return set()


INVOICE_FIELDS = ("number", "contact_provider_id", "contact_id", "currency", "issue_date",
                  "due_date", "total", "amount_paid", "amount_due", "status", "provider_status",
                  "provider_updated_at")


def upsert_invoices(session: Session, org_id: int, records: Sequence[InvoiceRecord]) -> set[int]:
    existing = _stored(session, Invoice, org_id, (r.provider_id for r in records),
                       INVOICE_FIELDS)
    # The contacts of stored invoices, to compare with; a new invoice's contact is found
    # below, by the INSERT itself where the page goes by COPY.
    contacts = _ids_by_provider_id(session, Contact, org_id,
                                   (r.contact_provider_id for r in records
                                    if r.provider_id in existing))
    new: dict[str, dict[str, Any]] = {}
    changed: dict[int, dict[str, Any]] = {}
    for record in records:
        values = {
            "number": record.number,
            "contact_provider_id": record.contact_provider_id,
            "contact_id": contacts.get(record.contact_provider_id or ""),
            "currency": record.currency,
            "issue_date": record.issue_date,
            "due_date": record.due_date,
            "total": record.total,
            "amount_paid": record.amount_paid,
            "amount_due": record.amount_due,
            "status": record.status,
            "provider_status": record.provider_status,
            "provider_updated_at": record.updated_at,
        }
        row = existing.get(record.provider_id)
        if record.status == "deleted" and not record.number:
            # A deletion may carry only the id (QuickBooks CDC): keep what we knew of it.
            values = {"status": "deleted", "provider_status": record.provider_status,
                      "provider_updated_at": record.updated_at}
            if row is None:
                if record.provider_id in new:  # read earlier in this page: now gone
                    new[record.provider_id].update(values)
                continue  # never seen, now gone: nothing to record
        if row is None:
            if record.provider_id in new:
                new[record.provider_id].update(values)
            else:
                new[record.provider_id] = {"org_id": org_id,
                                           "provider_id": record.provider_id, **values}
        elif _differs(row.values, values):
            row.values.update(values)
            changed[row.id] = {**changed.get(row.id, {}), **values}
    if new and not by_copy(session, len(new)):
        found = _ids_by_provider_id(session, Contact, org_id,
                                    (row["contact_provider_id"] for row in new.values()))
        for new_row in new.values():
            new_row["contact_id"] = found.get(new_row["contact_provider_id"] or "")
    inserted = _insert_rows(session, Invoice, list(new.values()),
                            links={"contact_id": (Contact, "contact_provider_id")})
    _update_rows(session, Invoice, list(changed.items()))
    return set(inserted.values()) | set(changed)


def _payment_of_allocation(session: Session) -> Any:
    """SQL for the payment part of an allocation's id (`<payment>:<invoice>` -> payment)."""
    if session.get_bind().dialect.name == "postgresql":
        return func.split_part(Payment.provider_id, ":", 1)
    return func.substr(Payment.provider_id, 1, func.instr(Payment.provider_id, ":") - 1)


def _allocations(session: Session, org_id: int, payment_ids: set[str]) -> list[Payment]:
    """Every stored allocation (`<payment>:<invoice>`) of the given payments: one IN over the
    payment part of the id, however many payments a page holds."""
    if not payment_ids:
        return []
    return list(session.scalars(select(Payment).where(
        Payment.org_id == org_id, Payment.status == "active",
        Payment.provider_id.contains(":", autoescape=True),
        _payment_of_allocation(session).in_(sorted(payment_ids)))))


PAYMENT_FIELDS = ("invoice_id", "invoice_provider_id", "amount", "currency", "paid_on",
                  "status", "provider_updated_at")


def upsert_payments(session: Session, org_id: int, records: Sequence[PaymentRecord]) -> set[int]:
    invoices = _ids_by_provider_id(session, Invoice, org_id,
                                   (r.invoice_provider_id for r in records))
    touched: set[int] = set()
    # A payment that settles several invoices arrives whole: allocations it no longer has
    # are gone, and a deleted payment (its bare id) takes all of them with it.
    whole = {r.provider_id.split(":", 1)[0] for r in records
             if ":" in r.provider_id or (r.status == "deleted" and r.invoice_provider_id is None)}
    current = {r.provider_id for r in records if r.status == "active"}
    for allocation in _allocations(session, org_id, whole):
        if allocation.provider_id not in current:
            allocation.status = "deleted"
            if allocation.invoice_id is not None:
                touched.add(allocation.invoice_id)
    records = [r for r in records if ":" in r.provider_id or r.invoice_provider_id is not None
               or r.status != "deleted"]
    existing = _stored(session, Payment, org_id, (r.provider_id for r in records),
                       PAYMENT_FIELDS)
    new: dict[str, dict[str, Any]] = {}
    changed: dict[int, dict[str, Any]] = {}
    for record in records:
        invoice_id = invoices.get(record.invoice_provider_id or "")
        values = {"invoice_id": invoice_id, "invoice_provider_id": record.invoice_provider_id,
                  "amount": record.amount, "currency": record.currency,
                  "paid_on": record.paid_on, "status": record.status,
                  "provider_updated_at": record.updated_at}
        row = existing.get(record.provider_id)
        if row is None:
            new[record.provider_id] = {"org_id": org_id, "provider_id": record.provider_id,
                                       **values}
        elif not _differs(row.values, values):
            continue
        else:
            row.values.update(values)
            changed[row.id] = {**changed.get(row.id, {}), **values}
        if invoice_id is not None:
            touched.add(invoice_id)
    _insert_rows(session, Payment, list(new.values()))
    _update_rows(session, Payment, list(changed.items()))
    return touched


UPSERTS: dict[str, Callable[[Session, int, Any], set[int]]] = {
    "contacts": upsert_contacts,
    "invoices": upsert_invoices,
    "payments": upsert_payments,
}


def _commit_without_flush_wait(session: Session) -> None:
    """PostgreSQL: this transaction's COMMIT returns before its WAL is flushed to disk. A page
    lost in a crash is lost with its bookmark (both are in the transaction), so the next sync
    reads it again; and whatever is later done with the page (planning, sending) commits
    after it, and a synchronous commit flushes the WAL of every earlier one."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL synchronous_commit TO OFF"))


def _cursor(session: Session, org_id: int, stream: Stream) -> SyncCursor:
    cursor = session.scalar(
        select(SyncCursor).where(SyncCursor.org_id == org_id, SyncCursor.stream == stream.name)
    )
    if cursor is None:
        cursor = SyncCursor(org_id=org_id, stream=stream.name, cursor=None)
        session.add(cursor)
    return cursor


def sync_organisation(session: Session, org: Organisation, connector: Connector,
                      on_progress: Progress | None = None, first: bool = False) -> SyncResult:
    """Bring the organisation's contacts, invoices and payments up to date with its books.

    A sync with no bookmark is full. So is one the caller says is `first`: the organisation's
    first sync, resumed after an interruption, reads on from its bookmarks but is still the
    sync that brings the books in (the caller computes every invoice's next action after it
    and books the organisation's daily run)."""
    cursors = {stream.name: _cursor(session, org.id, stream) for stream in STREAMS}
    # Each stream's bookmark as the sync starts, read now: read after a commit, it would be a
    # SELECT whose autoflush writes what the progress hook left pending, and the page's call
    # would then wait on the provider holding that write's lock (on SQLite every other
    # writer's). No write is pending while the provider is asked.
    since = {name: c.cursor for name, c in cursors.items()}
    full = first or all(bookmark is None for bookmark in since.values())
    result = SyncResult(mode="full" if full else "incremental")
    calls_before = connector.calls
    started = time.perf_counter()
    session.commit()  # a new bookmark's row, before any call
    if full:
        details = connector.organisation()
        _assign(org, {"name": details.name or org.name, "country": details.country,
                      "timezone": details.timezone, "base_currency": details.base_currency})
        session.commit()

    org_id = org.id  # read once: after each commit `org.id` would cost a SELECT
    quotes = wants_quotes(session, org_id)
    together = None if full else _changes_together(session, org_id, connector, since, quotes)
    for stream in STREAMS:
        cursor = cursors[stream.name]
        result.counts[stream.name] = 0
        pages, through = together[stream.name] if together and stream.name in together else \
            (getattr(connector, stream.connector_method)(since[stream.name]), None)
        for page in pages:
            result.changed_invoice_ids |= UPSERTS[stream.name](session, org_id, page)
            newest = _newest(page, cursor.cursor)
            if through is not None and (newest is None or through > newest):
                newest = through  # what the read covered, past this kind's own records
            if newest != cursor.cursor:
                cursor.cursor = newest
            _commit_without_flush_wait(session)
            session.commit()  # the bookmark lands with the page it covers
            result.counts[stream.name] += len(page)
            if on_progress is not None:
                on_progress(dict(result.counts))
    if quotes:
        sync_quotes(session, org, connector, result, on_progress,
                    *(together or {}).get(QUOTES_STREAM.name, (None, None)))
    result.api_calls = connector.calls - calls_before
    observe_sync(getattr(connector, "provider", "other"), result.mode,
                 time.perf_counter() - started, sum(result.counts.values()))
    log.info("org %s: %s sync read %s in %s API calls; %s invoices changed", org.id,
             result.mode, result.counts, result.api_calls, len(result.changed_invoice_ids))
    return result


Together = dict[str, tuple[Iterable[Sequence[Any]], datetime | None]]


def _changes_together(session: Session, org_id: int, connector: Connector,
                      bookmarks: dict[str, datetime | None], quotes: bool) -> Together | None:
    """Where the connector reads several record kinds' changes at once (`changes`: QuickBooks'
    CDC), each stream's pages from it, with the bookmark the read covers (None: the pages'
    newest record); None to read stream by stream. Quotes join while their stream has a
    bookmark (a first read of them is a full one, on its own)."""
    changes = getattr(connector, "changes", None)
    if changes is None:
        return None
    since = dict(bookmarks)
    if quotes:
        bookmark = _cursor(session, org_id, QUOTES_STREAM).cursor
        if bookmark is not None:
            since[QUOTES_STREAM.name] = bookmark
        session.commit()  # a new bookmark's row, before the call
    together: Together | None = changes(since)
    return together


# ------------------------------------------------------------------------------ quotes
# Read only for an organisation whose policy asks deposits on quotes: the others spend no
# calls of their provider budget on them. The stream's bookmark works as every other's.

QUOTES_STREAM = Stream("quotes", "quotes")


def wants_quotes(session: Session, org_id: int) -> bool:
    """Whether the organisation's policy has a deposit rule for quotes (or both)."""
    body = session.scalar(select(Policy.body).where(Policy.org_id == org_id))
    deposits = (body or {}).get("deposits") if isinstance(body, dict) else None
    return isinstance(deposits, dict) and deposits.get("applies_to") in ("quotes", "both")


def upsert_quotes(session: Session, org_id: int, records: Sequence[QuoteRecord]) -> set[int]:
    """Insert or update the page's quotes; the ids of those that changed.

    A quote's `accepted_on` is the provider's (QuickBooks' AcceptedDate); where there is none
    (Xero) it is the day of the change in which a sync first saw it accepted, kept while it
    stays accepted."""
    ids = [r.provider_id for r in records]
    existing = {q.provider_id: q for q in session.scalars(
        select(Quote).where(Quote.org_id == org_id, Quote.provider_id.in_(ids)))} if ids else {}
    contacts = _ids_by_provider_id(session, Contact, org_id,
                                   (r.contact_provider_id for r in records))
    changed: set[int] = set()
    for record in records:
        row = existing.get(record.provider_id)
        if record.status == "deleted" and not record.number:
            # A deletion may carry only the id (QuickBooks CDC): keep what we knew of it.
            if row is not None and _assign(row, {"status": "deleted",
                                                 "provider_status": record.provider_status,
                                                 "provider_updated_at": record.updated_at}):
                changed.add(row.id)
            continue
        accepted_on = record.accepted_on
        if record.status == "accepted" and accepted_on is None:
            kept = row.accepted_on if row is not None and row.status == "accepted" else None
            accepted_on = kept or (record.updated_at.date() if record.updated_at else None)
        values = {"number": record.number, "contact_provider_id": record.contact_provider_id,
                  "contact_id": contacts.get(record.contact_provider_id or ""),
                  "currency": record.currency, "issue_date": record.issue_date,
                  "expiry_date": record.expiry_date, "total": record.total,
                  "status": record.status, "provider_status": record.provider_status,
                  "accepted_on": accepted_on,
                  "invoice_provider_ids": list(record.invoice_provider_ids),
                  "provider_updated_at": record.updated_at}
        if row is None:
            row = Quote(org_id=org_id, provider_id=record.provider_id, **values)
            session.add(row)
            session.flush()
            existing[record.provider_id] = row
            changed.add(row.id)
        elif _assign(row, values):
            changed.add(row.id)
    session.flush()
    return changed


def sync_quotes(session: Session, org: Organisation, connector: Connector, result: SyncResult,
                on_progress: Progress | None = None,
                pages: Iterable[Sequence[QuoteRecord]] | None = None,
                through: datetime | None = None) -> None:
    """Quotes changed since the stream's bookmark (or the `pages` read with the other kinds'
    changes, covering changes up to `through`), committed page by page."""
    cursor = _cursor(session, org.id, QUOTES_STREAM)
    result.counts["quotes"] = 0
    for page in pages if pages is not None else connector.quotes(cursor.cursor):
        upsert_quotes(session, org.id, page)
        newest = _newest(page, cursor.cursor)
        if through is not None and (newest is None or through > newest):
            newest = through
        if newest != cursor.cursor:
            cursor.cursor = newest
        session.commit()
        result.counts["quotes"] += len(page)
        if on_progress is not None:
            on_progress(dict(result.counts))


def _newest(page: Sequence[Any], current: datetime | None) -> datetime | None:
    stamps = [r.updated_at for r in page if r.updated_at is not None]
    if current is not None:
        stamps.append(current)
    return max(stamps) if stamps else None
