"""The part of Xero's `where` and `order` that integrations use."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sandboxes.wire import field_at
from sandboxes.xero.errors import query_parse_error, validation_error
from sandboxes.xero.formats import MS_DATE, UUID_TEXT, to_decimal

_TOKEN = re.compile(r'\s*(?:(?P<str>"(?:[^"\\]|\\.)*")|(?P<op>==|!=|>=|<=|&&|\|\||[=<>(),!])'
                    r"|(?P<num>-?\d+(?:\.\d+)?)|(?P<word>[A-Za-z_][A-Za-z0-9_.]*))")
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq, "=": operator.eq, "!=": operator.ne, ">": operator.gt,
    "<": operator.lt, ">=": operator.ge, "<=": operator.le}
Predicate = Callable[[dict[str, Any]], bool]


# Field names in `where` and `order` are case-insensitive, as in Xero.
_lookup = field_at


def _as_moment(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    match = MS_DATE.match(value)
    if match:
        return datetime.fromtimestamp(int(match.group(1)) / 1000, tz=UTC)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


class WhereClause:
    """Xero's `where` is a .NET LINQ dialect: comparisons, AND/OR/NOT, brackets, Guid(...),
    DateTime(y,m,d[,h,m,s]), DateTime.Parse("...") (github.com/waynerobinson/xeroizer/issues/164,
    XeroAPI/xero-node#456), null, and the string methods Contains/StartsWith/EndsWith.
    Whatever does not parse is a QueryParseException; the messages follow System.Linq.Dynamic,
    whose parser Xero's messages match ("Syntax error", "Expression expected"); UNVERIFIED:
    the wording of the others ("No property or field ...", "Operator ... incompatible ...")."""

    def __init__(self, text: str, kind: str, fields: set[str]) -> None:
        self.text, self.kind, self.fields = text, kind, {f.lower() for f in fields}
        self.tokens: list[tuple[str, str]] = []
        position = 0
        while position < len(text):
            match = _TOKEN.match(text, position)
            if match is None or match.end() == position:
                if text[position:].strip():
                    self.fail("Syntax error")
                break
            found = match.lastgroup or ""
            self.tokens.append((found, match.group(found)))
            position = match.end()
        self.at = 0
        self.predicate = self.disjunction()
        if self.at != len(self.tokens):
            self.fail("Syntax error")

    def fail(self, why: str) -> None:
        raise query_parse_error(why)

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.at] if self.at < len(self.tokens) else ("end", "")

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token[0] == "end":
            self.fail("Expression expected")
        self.at += 1
        return token

    def accept(self, *texts: str) -> bool:
        kind, text = self.peek()
        if kind in ("op", "word") and text.upper() in texts:
            self.at += 1
            return True
        return False

    def expect(self, text: str) -> None:
        if not self.accept(text):
            self.fail(f"'{text}' expected")

    def disjunction(self) -> Predicate:
        parts = [self.conjunction()]
        while self.accept("OR", "||"):
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else lambda r: any(p(r) for p in parts)

    def conjunction(self) -> Predicate:
        parts = [self.negation()]
        while self.accept("AND", "&&"):
            parts.append(self.negation())
        return parts[0] if len(parts) == 1 else lambda r: all(p(r) for p in parts)

    def negation(self) -> Predicate:
        if self.accept("NOT", "!"):
            inner = self.negation()
            return lambda r: not inner(r)
        if self.accept("("):
            inner = self.disjunction()
            self.expect(")")
            return inner
        return self.comparison()

    def check_field(self, path: str) -> None:
        top = path.split(".")[0]
        if self.fields and top.lower() not in self.fields:
            self.fail(f"No property or field '{top}' exists in type '{self.kind}'")

    def comparison(self) -> Predicate:
        kind, name = self.take()
        if kind != "word":
            self.fail("Expression expected")
        path, _, method = name.rpartition(".")
        if path and method.lower() in ("contains", "startswith", "endswith") \
                and self.peek() == ("op", "("):
            self.expect("(")
            needle = self.value()
            self.expect(")")
            if not isinstance(needle, str):
                self.fail(f"{method} takes a string")
            self.check_field(path)
            test: Callable[[str, str], bool] = {
                "contains": lambda h, n: n in h, "startswith": str.startswith,
                "endswith": str.endswith}[method.lower()]
            folded = str(needle).casefold()
            return lambda r: isinstance(v := _lookup(r, path), str) and test(v.casefold(),
                                                                             folded)
        self.check_field(name)
        op_kind, op = self.take()
        if op_kind != "op" or op not in _COMPARE:
            self.fail("Syntax error")
        wanted = self.value()
        if (wanted is None or isinstance(wanted, bool)) and op not in ("==", "=", "!="):
            self.fail("null, true and false can only be compared with == or !=")
        return lambda r: self.compare(_lookup(r, name), op, wanted)

    def value(self) -> Any:
        kind, text = self.take()
        if kind == "str":
            return re.sub(r"\\(.)", r"\1", text[1:-1])
        if kind == "num":
            return Decimal(text)
        word = text.lower() if kind == "word" else ""
        if word in ("true", "false"):
            return word == "true"
        if word == "null":
            return None
        if word == "guid":
            self.expect("(")
            guid = self.value()
            self.expect(")")
            if not isinstance(guid, str) or not UUID_TEXT.match(guid):
                self.fail("Guid(...) needs a GUID in quotes")
            return guid
        if word == "datetime.parse":
            self.expect("(")
            given = self.value()
            self.expect(")")
            try:
                parsed = datetime.fromisoformat(given) if isinstance(given, str) else None
            except ValueError:
                parsed = None
            if parsed is None:
                self.fail("String was not recognized as a valid DateTime.")  # UNVERIFIED
            assert parsed is not None
            return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed
        if word == "datetime":
            self.expect("(")
            parts = [self.value()]
            while self.accept(","):
                parts.append(self.value())
            self.expect(")")
            if len(parts) not in (3, 6) or not all(isinstance(p, Decimal) for p in parts):
                self.fail("DateTime takes (year, month, day[, hour, minute, second])")
            try:
                y, mo, d, h, mi, sec = ([int(p) for p in parts] + [0, 0, 0])[:6]
                return datetime(y, mo, d, h, mi, sec, tzinfo=UTC)
            except ValueError:
                self.fail("DateTime is not a real date")
        self.fail("Expression expected")
        return None  # fail() always raises

    def compare(self, value: Any, op: str, wanted: Any) -> bool:
        if wanted is None:
            return (value is None) == (op != "!=")
        if value is None:
            return op == "!="
        try:
            if isinstance(wanted, bool):
                if not isinstance(value, bool):
                    raise TypeError
                return bool(_COMPARE[op](value, wanted))
            if isinstance(wanted, datetime):
                moment = _as_moment(value)
                if moment is None:
                    raise TypeError
                return bool(_COMPARE[op](moment, wanted))
            if isinstance(wanted, Decimal):
                return bool(_COMPARE[op](to_decimal(value), wanted))
            if isinstance(value, bool | dict | list):
                raise TypeError
            text = str(value)
            if UUID_TEXT.match(wanted) and UUID_TEXT.match(text):
                text, wanted = text.lower(), wanted.lower()
            return bool(_COMPARE[op](text, wanted))
        except (TypeError, InvalidOperation) as exc:
            raise query_parse_error(f"Operator '{op}' incompatible with operand types") \
                from exc

    def __call__(self, record: dict[str, Any]) -> bool:
        return bool(self.predicate(record))


def _sort_value(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, 0)
    if isinstance(value, bool):
        return (1, int(value))
    if isinstance(value, int | Decimal):
        return (1, value)
    if isinstance(value, str):
        match = MS_DATE.match(value)
        return (1, int(match.group(1))) if match else (2, value.casefold())
    return (3, 0)


def order_records(records: list[dict[str, Any]], order: str, id_key: str, kind: str,
                  fields: set[str]) -> list[dict[str, Any]]:
    """`order=Field [ASC|DESC][, ...]`; ties fall back to the ID so paging is stable."""
    clauses = []
    known = {f.lower() for f in fields}
    for part in order.split(","):
        words = part.split()
        if not words:
            continue
        if len(words) > 2 or (len(words) == 2 and words[1].upper() not in ("ASC", "DESC")):
            raise validation_error(f"The order clause '{order}' is not valid")
        if known and words[0].split(".")[0].lower() not in known:
            raise validation_error(f"No property or field '{words[0]}' exists in type "
                                   f"'{kind}'")
        clauses.append((words[0], len(words) == 2 and words[1].upper() == "DESC"))
    ordered = sorted(records, key=lambda r: str(r.get(id_key, "")))
    for name, descending in reversed(clauses):
        ordered.sort(key=lambda r, n=name: _sort_value(_lookup(r, n)),  # type: ignore[misc]
                     reverse=descending)
    return ordered
