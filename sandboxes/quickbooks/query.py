"""QBO's query language (`SELECT ... FROM Entity WHERE ...`): parsed, matched, ordered and
paged as QBO does; POST or GET .../query."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from flask import request

from sandboxes.quickbooks.api import Resource, link_base
from sandboxes.quickbooks.books import Company
from sandboxes.quickbooks.company_info import company_info, preferences
from sandboxes.quickbooks.errors import QboFault, parse_error, query_invalid
from sandboxes.quickbooks.records import render
from sandboxes.quickbooks.schema import ENTITIES, FIELDS, SINGLETONS
from sandboxes.wire import field_at

if TYPE_CHECKING:
    from sandboxes.quickbooks.sandbox import QuickBooksSandbox

_QUERY_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^'\\]|\\.)*')|(?P<op><=|>=|!=|<>|=|<|>)|(?P<punct>[(),*])"
    r"|(?P<num>-?\d+(?:\.\d+)?(?![A-Za-z_]))|(?P<word>[A-Za-z_][A-Za-z0-9_.]*))")
KEYWORDS = {"SELECT", "FROM", "WHERE", "AND", "OR", "IN", "LIKE", "ORDERBY", "ORDER", "BY",
            "ASC", "DESC", "STARTPOSITION", "MAXRESULTS", "COUNT", "NOT", "ITERATOR"}


@dataclass
class Token:
    kind: str
    text: str
    column: int

    def describe(self) -> str:
        if self.kind == "end":
            return '"<EOF>"'
        label = {"str": "STRING_LITERAL", "num": "INTEGER", "word": "IDENTIFIER"}.get(
            self.kind, "")
        if self.kind == "word" and self.text.upper() in KEYWORDS:
            label = self.text.upper()
        return f'" <{label}> "{self.text} ""' if label else f'" "{self.text} ""'


@dataclass
class Condition:
    path: str
    op: str
    values: list[Any]


@dataclass
class Query:
    entity: str
    count: bool
    fields: list[str] | None
    conditions: list[Condition]
    order: list[tuple[str, bool]]
    start: int
    limit: int


class QueryParser:
    """QBO's SQL subset: SELECT */COUNT(*)/fields FROM Entity [WHERE a op v AND ...]
    [ORDERBY f [ASC|DESC], ...] [STARTPOSITION n] [MAXRESULTS m]. No OR, no brackets."""

    def __init__(self, text: str, max_results: int) -> None:
        self.text = text
        self.max_results = max_results
        self.tokens: list[Token] = []
        position = 0
        while position < len(text):
            match = _QUERY_TOKEN.match(text, position)
            if match is None or match.end() == position:
                rest = text[position:]
                if not rest.strip():
                    break
                offset = len(rest) - len(rest.lstrip())
                bad = rest.lstrip()[0]
                raise parse_error(f"Invalid content. Lexical error at line 1, column "
                                  f"{position + offset + 1}.  Encountered: \"{bad}\" "
                                  f"({ord(bad)}), after : \"\"")
            kind = match.lastgroup or ""
            self.tokens.append(Token(kind, match.group(kind), match.start(kind) + 1))
            position = match.end()
        self.at = 0

    def peek(self) -> Token:
        if self.at < len(self.tokens):
            return self.tokens[self.at]
        return Token("end", "", len(self.text) + 1)

    def fail(self, expected: str) -> QboFault:
        token = self.peek()
        return parse_error(f"Encountered {token.describe()} at line 1, column {token.column}."
                           f"\nWas expecting one of:\n    {expected}")

    def keyword(self, *words: str) -> bool:
        token = self.peek()
        if token.kind == "word" and token.text.upper() in words:
            self.at += 1
            return True
        return False

    def expect_keyword(self, word: str) -> None:
        if not self.keyword(word):
            raise self.fail(f'"{word.lower()}" ...')

    def punct(self, char: str) -> bool:
        token = self.peek()
        if token.kind == "punct" and token.text == char:
            self.at += 1
            return True
        return False

    def name(self, what: str = "<IDENTIFIER> ...") -> str:
        token = self.peek()
        if token.kind != "word" or token.text.upper() in KEYWORDS:
            raise self.fail(what)
        self.at += 1
        return token.text

    def integer(self) -> int:
        token = self.peek()
        if token.kind != "num" or not token.text.lstrip("-").isdigit():
            raise self.fail("<INTEGER> ...")
        self.at += 1
        return int(token.text)

    def value(self) -> Any:
        token = self.peek()
        if token.kind == "str":
            self.at += 1
            return re.sub(r"\\(.)", r"\1", token.text[1:-1])
        if token.kind == "num":
            self.at += 1
            return Decimal(token.text)
        if token.kind == "word" and token.text.lower() in ("true", "false"):
            self.at += 1
            return token.text.lower() == "true"
        raise self.fail("<STRING_LITERAL> ...\n    <INTEGER> ...")

    def parse(self) -> Query:
        self.expect_keyword("SELECT")
        count = False
        fields: list[str] | None = None
        if self.keyword("COUNT"):
            if not (self.punct("(") and self.punct("*") and self.punct(")")):
                raise self.fail('"(*)" ...')
            count = True
        elif self.punct("*"):
            while self.punct(","):
                self.name()  # "SELECT *, Sku FROM Item": the extra fields change nothing
        else:
            fields = [self.name('"*" ...\n    <IDENTIFIER> ...')]
            while self.punct(","):
                fields.append(self.name())
        self.expect_keyword("FROM")
        entity = self.name()
        conditions: list[Condition] = []
        if self.keyword("WHERE"):
            conditions.append(self.condition())
            while True:
                if self.keyword("AND"):
                    conditions.append(self.condition())
                    continue
                if self.peek().kind == "word" and self.peek().text.upper() == "OR":
                    raise self.fail('<EOF> \n    <AND> ...\n    "orderby" ...\n    '
                                    '"startposition" ...\n    "maxresults" ...')
                break
        order: list[tuple[str, bool]] = []
        if self.keyword("ORDERBY") or (self.keyword("ORDER") and self.keyword("BY")):
            while True:
                path = self.name()
                descending = False
                if self.keyword("DESC"):
                    descending = True
                else:
                    self.keyword("ASC")
                order.append((path, descending))
                if not self.punct(","):
                    break
        start, limit = 1, 100
        if self.keyword("STARTPOSITION"):
            start = max(1, self.integer())
        if self.keyword("MAXRESULTS"):
            limit = self.integer()
            if limit < 1:
                raise query_invalid("MAXRESULTS must be a positive number")
            limit = min(limit, self.max_results)
        if self.peek().kind != "end":
            raise self.fail('<EOF> \n    <AND> ...\n    "orderby" ...\n    "startposition" ...'
                            '\n    "maxresults" ...')
        return Query(entity, count, fields, conditions, order, start, limit)

    def condition(self) -> Condition:
        path = self.name()
        if self.keyword("IN"):
            if not self.punct("("):
                raise self.fail('"(" ...')
            values = [self.value()]
            while self.punct(","):
                values.append(self.value())
            if not self.punct(")"):
                raise self.fail('")" ...\n    "," ...')
            return Condition(path, "IN", values)
        if self.keyword("LIKE"):
            pattern = self.value()
            if not isinstance(pattern, str):
                raise self.fail("<STRING_LITERAL> ...")
            return Condition(path, "LIKE", [pattern])
        token = self.peek()
        if token.kind != "op":
            raise self.fail('"=" ...\n    "<" ...\n    ">" ...\n    "<=" ...\n    ">=" ...'
                            '\n    "in" ...\n    "like" ...')
        self.at += 1
        return Condition(path, "!=" if token.text == "<>" else token.text, [self.value()])


def _lookup(record: Any, path: str) -> Any:
    """Dotted paths, case-insensitive; a ReferenceType compares by its value."""
    value = field_at(record, path)
    if isinstance(value, dict) and "value" in value:
        return value["value"]
    return value


_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_moment(text: str, company: Company) -> datetime:
    """ISO 8601 with or without offset (without: company time), or a bare date."""
    cleaned = text.strip().replace("Z", "+00:00")
    parsed = datetime.fromisoformat(cleaned)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=company.tz)
    return parsed.astimezone(UTC)


class Matcher:
    """Type-directed comparison: numbers as numbers, dates as dates, times as instants."""

    def __init__(self, company: Company, condition: Condition) -> None:
        self.company, self.condition = company, condition

    def key(self, value: Any, sample: Any) -> Any:
        """Converts a literal to the type of the field's value (`sample`)."""
        name = self.condition.path
        try:
            if isinstance(sample, bool):
                if isinstance(value, bool):
                    return value
                if str(value).lower() in ("true", "false"):
                    return str(value).lower() == "true"
                raise ValueError
            if isinstance(sample, Decimal | int):
                return Decimal(str(value))
            if isinstance(sample, str) and _DATETIME.match(sample):
                return parse_moment(str(value), self.company)
            if isinstance(sample, str) and _DATE.match(sample):
                return date.fromisoformat(str(value)[:10])
            if isinstance(sample, str) and sample.isdigit() and str(value).strip().isdigit():
                return int(str(value))
            if isinstance(value, bool | Decimal):
                raise ValueError
            return str(value).casefold()
        except (ValueError, InvalidOperation) as exc:
            raise query_invalid(f"value {value} is not valid for property {name}") from exc

    def field(self, sample: Any) -> Any:
        if isinstance(sample, bool | Decimal | int):
            return sample
        if isinstance(sample, str) and _DATETIME.match(sample):
            return parse_moment(sample, self.company)
        if isinstance(sample, str) and _DATE.match(sample):
            return date.fromisoformat(sample)
        if isinstance(sample, str) and sample.isdigit():
            return int(sample)
        return str(sample).casefold()

    def __call__(self, record: dict[str, Any]) -> bool:
        sample = _lookup(record, self.condition.path)
        if sample is None or isinstance(sample, dict | list):
            return False
        op, values = self.condition.op, self.condition.values
        if op == "LIKE":
            pattern = "^" + ".*".join(re.escape(p) for p in str(values[0]).split("%")) + "$"
            return re.match(pattern, str(sample), re.IGNORECASE | re.DOTALL) is not None
        have = self.field(sample)
        wanted = [self.key(v, sample) for v in values]
        if isinstance(have, int) and not isinstance(have, bool) and \
                any(not isinstance(w, int) for w in wanted):
            have, wanted = str(sample).casefold(), [str(v).casefold() for v in values]
        if op == "IN":
            return have in wanted
        target = wanted[0]
        try:
            return bool({"=": have == target, "!=": have != target, "<": have < target,
                         ">": have > target, "<=": have <= target, ">=": have >= target}[op])
        except TypeError as exc:
            raise query_invalid(f"value {values[0]} is not valid for property "
                                f"{self.condition.path}") from exc


def _sort_key(value: Any, company: Company) -> tuple[int, Any]:
    if value is None or isinstance(value, dict | list):
        return (2, 0)
    if isinstance(value, bool):
        return (0, int(value))
    if isinstance(value, Decimal | int):
        return (0, value)
    text = str(value)
    if _DATETIME.match(text):
        return (0, parse_moment(text, company).timestamp())
    if text.isdigit():
        return (0, int(text))
    return (1, text.casefold())


def run_query(box: QuickBooksSandbox, company: Company, text: str, link_base: str | None = None
          ) -> dict[str, Any]:
    parsed = QueryParser(text or "", box.config.query_max_results).parse()
    entity = next((e for e in (*ENTITIES, *SINGLETONS)
                   if e.lower() == parsed.entity.lower()), None)
    if entity is None:
        raise query_invalid(f"Invalid entity name: {parsed.entity}")
    known = FIELDS[entity]
    for path in [c.path for c in parsed.conditions] + [p for p, _ in parsed.order] + \
            (parsed.fields or []):
        top = path.split(".")[0]
        if top.lower() not in {f.lower() for f in known}:
            raise query_invalid(f"property '{top}' is not queryable")
    if entity == "CompanyInfo":
        rows = [company_info(company)]
    elif entity == "Preferences":
        rows = [preferences(company)]
    else:
        rows = [render(company, entity, r, link_base) for r in company.live(entity)]
    if entity in ("Customer", "Item", "Account") and not any(
            c.path.lower() == "active" for c in parsed.conditions):
        rows = [r for r in rows if r.get("Active", True)]
    for condition in parsed.conditions:
        matcher = Matcher(company, condition)
        rows = [r for r in rows if matcher(r)]
    if parsed.count:
        return {"totalCount": len(rows)}
    rows.sort(key=lambda r: int(r["Id"]) if str(r["Id"]).isdigit() else 0)
    for path, descending in reversed(parsed.order):
        rows.sort(key=lambda r, p=path: _sort_key(_lookup(r, p), company),  # type: ignore[misc]
                  reverse=descending)
    chunk = rows[parsed.start - 1:parsed.start - 1 + parsed.limit]
    if parsed.fields is not None:
        wanted = {f.lower() for f in parsed.fields} | {"id"}
        chunk = [{**{k: v for k, v in r.items() if k.lower() in wanted},
                  "domain": "QBO", "sparse": True} for r in chunk]
    if not chunk:
        return {}
    return {entity: chunk, "startPosition": parsed.start, "maxResults": len(chunk)}


bp = Resource("quickbooks_query", __name__)


@bp.operation("query", methods=None)
def answer_query(box: QuickBooksSandbox, company: Company, parts: list[str]) -> dict[str, Any]:
    """The query in `?query=` (GET) or the body (POST; `?query=` when the body is empty)."""
    text = request.args.get("query") if request.method == "GET" else \
        request.get_data(as_text=True)
    if not text and request.method == "POST":
        text = request.args.get("query", "")
    return {"QueryResponse": box.query(company, text or "", link_base())}
