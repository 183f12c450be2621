"""The export writes each kind's rows as a JSON array one record at a time: the bytes must be
exactly those of `json.dumps(rows, indent=1)`, which the export wrote before it streamed."""

from __future__ import annotations

import io
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from app.connections.services import write_json_array

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.text(),
                    st.floats(allow_nan=False))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=8)
records = st.lists(st.dictionaries(st.text(max_size=8), values, max_size=5), max_size=6)


def streamed(rows: list[dict[str, Any]]) -> bytes:
    out = io.BytesIO()
    write_json_array(out, iter(rows))
    return out.getvalue()


@given(records)
def test_the_streamed_array_is_byte_for_byte_json_dumps(rows: list[dict[str, Any]]) -> None:
    assert streamed(rows) == json.dumps(rows, indent=1).encode()


def test_literal_cases() -> None:
    assert streamed([]) == b"[]"
    assert streamed([{}]) == b"[\n {}\n]"
    rows = [{"id": 1, "message": "line one\nline two", "data": {"a": [1, 2]}},
            {"id": 2, "name": "Zo\u00eb \u05e9\u05dc\u05d5\u05dd", "data": None}]
    assert streamed(rows) == json.dumps(rows, indent=1).encode()
    assert json.loads(streamed(rows)) == rows
