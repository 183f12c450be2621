"""Owners' message templates: sandboxed, and refused at save time when they reach for Python's
internals or would spend a worker (long loops, runaway recursion, megabytes of text)."""

from __future__ import annotations

import time

import pytest

from rules.messages import SAMPLE, MessageTemplateError, render, shipped_template, validate_template

HEAD = "Subject: Invoice {{ invoice_number }}\n\n"

REFUSED = {
    # Python's internals
    "{{ ''.__class__ }}": "access to attribute '__class__' of 'str' object is unsafe",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}": "'__class__' of 'str' object is unsafe",
    "{{ cycler.__init__.__globals__ }}": "access to attribute '__init__' of 'type' object",
    "{{ contact_name.__len__() }}": "'__len__' of 'str' object is unsafe",
    "{{ (amount_due|string).__class__.__base__.__subclasses__() }}": "'__class__' of 'str'",
    "{{ self._TemplateReference__context }}": "is unsafe",
    # Work without end
    "{% for i in range(100000) %}x{% endfor %}": "the number 100000 is too large here",
    "{% for i in range(5000) %}x{% endfor %}": "range() may count at most 1,000 numbers",
    "{% for a in range(1000) %}{% for b in range(1000) %}{% endfor %}{% endfor %}":
        "the template does too much work (more than 50,000 loop turns and calls)",
    "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}": "calls are nested more than 20 deep",
    "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(19) }}":
        "the template does too much work",
    # Megabytes of text
    "{% for i in range(1000) %}{{ 'x' * 1000 }}{% endfor %}":
        "the template writes more than 100 kB",
    "{{ 'x' * 10000000 }}": "repeating makes more than 100,000 characters",
    "{{ contact_name.center(100000000) }}": "the number 100000000 is too large here",
    "{{ '{:>999999999}'.format(1) }}": "the text method format() is not available",
    "{{ '%999999999s' % 1 }}": "'%' formatting of text is not available",
    "{{ contact_name.replace('a', contact_name) }}": "the text method replace() is not available",
    "{% macro g(s, n) %}{% if n %}{{ g(s ~ s ~ s ~ s ~ s ~ s ~ s ~ s, n - 1) }}"
    "{% endif %}{% endmacro %}{{ g(contact_name, 15) }}":
        "joining text makes more than 100,000 characters",
    "{{ 9 ** 999 }}": "powers above 64 are not allowed",
    "{{ ((9 ** 64) ** 64) ** 64 }}": "the template makes a number too large to write",
    "{% set ns = namespace(s='x') %}{{ ns.s }}": "'namespace' is undefined",
    "{{ lipsum(5) }}": "'lipsum' is undefined",
    "{{ ([contact_name * 6] * 9000)|join }}": "joining text makes more than 100,000",
    "{{ (['x'] * 9000)|join(contact_name * 6) }}": "joining text makes more than 100,000",
    "{{ contact_name|indent(100000000) }}": "No filter named 'indent'",
    # Plain mistakes are errors too, never an exception from inside Python
    "{{ 1 / 0 }}": "ZeroDivisionError: division by zero",
    "{{ contact_name * contact_name }}": "TypeError: can't multiply sequence",
    "{{ contact_nme }}": "'contact_nme' is undefined",
}


@pytest.mark.parametrize("body", sorted(REFUSED))
def test_a_hostile_template_is_refused_at_save_time_with_a_clear_message(body: str) -> None:
    started = time.thread_time()  # the budget counts this thread's CPU, whatever the load
    with pytest.raises(MessageTemplateError) as refused:
        validate_template(HEAD + body)
    message = str(refused.value)
    assert message.startswith("the template cannot be rendered: ")
    # Too much work is stopped by whichever budget runs out first: steps, or CPU time
    # (rules/template_safety.MAX_RENDER_SECONDS).
    assert REFUSED[body] in message or (
        REFUSED[body].startswith("the template does too much work")
        and "the template takes too long to write" in message)
    assert time.thread_time() - started < 5  # refused quickly, not after the damage


def test_ordinary_templates_still_render() -> None:
    source = (HEAD + "Dear {{ contact_name|title }},\n\n"
              "{{ amount_due|money }} was due on {{ due_date|date }} "
              "({{ days_overdue }} days, {{ (days_overdue / 7)|round|int }} weeks).\n"
              "{% for line in ['One', 'Two'] %}{{ loop.index }}. {{ line ~ '.' }}\n{% endfor %}"
              "{% if fees %}Fees: {{ fees|money }}{% endif %}\n{{ signature|default('') }}\n"
              "{% for i in range(3) %}*{% endfor %}")
    message = validate_template(source)
    assert message.subject == "Invoice INV-0042"
    assert message.text == (
        "Dear Ada Lovelace Ltd,\n\n€1,234.50 was due on 31 January 2026 (12 days, 2 weeks).\n"
        "1. One.\n2. Two.\nFees: €40.00\nJo, Accounts\n***\n")
    for language in ("en", "de", "nb", "pl", "he"):
        for tone in ("friendly", "firm", "final"):
            validate_template(shipped_template(language, tone))


def test_the_budget_is_per_render_not_per_process() -> None:
    """A template near the limit renders again and again: nothing accumulates."""
    source = HEAD + "{% for a in range(200) %}{% for b in range(200) %}{% endfor %}{% endfor %}ok"
    for _ in range(5):
        assert render(source, SAMPLE).text == "ok\n"
