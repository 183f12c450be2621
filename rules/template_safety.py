"""A Jinja sandbox with a budget, for the texts an owner writes.

Jinja's sandbox already keeps a template away from Python's internals (`''.__class__`,
`cycler.__init__.__globals__`) and makes objects read-only. It does not keep a template from
spending the worker: `range(10**5)` nested three deep, a macro calling itself twice per call,
`'x' * 10**9`, `'x'.center(10**9)` or a `9 ** 9 ** 9` would each hang a worker or fill its
memory. This environment counts the work of one render (loop turns and calls), caps the output,
the numbers that size things, the nesting of calls and the wall time, and stops with
TemplateBudgetExceeded, a Jinja TemplateError, so the one place that renders
(rules/messages.render, in the web and in the worker) reports it to the owner as any other
template problem when the template is saved.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from jinja2 import TemplateRuntimeError, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

MAX_OUTPUT_CHARS = 100_000  # a reminder is a few hundred words
MAX_STEPS = 50_000  # loop turns plus calls in one render
MAX_RANGE = 1_000  # the longest range() a template may make
MAX_SIZE_ARGUMENT = 10_000  # widths, counts and repeats handed to calls and filters
MAX_CALL_DEPTH = 20  # macros within macros
MAX_POWER_EXPONENT = 64
MAX_NUMBER_BITS = 256  # arithmetic results; far beyond any amount, far below a slow one
# CPU time of one render: the step budget bounds the count of costly filters, not their cost
# (50,000 `title` calls on long text take seconds). A message renders in milliseconds. The
# thread's own CPU time, not the wall clock: a worker on a busy machine, waiting for a core,
# must not refuse an ordinary letter, and a runaway template spends CPU all the same.
MAX_RENDER_SECONDS = 0.5
_BUDGET_FILTER = "_budgeted_loop"
_CONCAT_FILTER = "_budgeted_concat"
# What a message needs; `replace`, `join`, `format`, `indent`... can multiply text and are left
# out. Environments add their own (money, date) after construction.
ALLOWED_FILTERS = frozenset({
    "abs", "capitalize", "count", "d", "default", "e", "escape", "first", "int", "join", "last",
    "length", "lower", "map", "round", "string", "title", "trim", "truncate", "upper",
    "wordcount"})
# String methods that can multiply their input (width is bounded by the size check instead).
REFUSED_STR_METHODS = frozenset({"expandtabs", "format", "format_map", "join", "replace",
                                 "translate"})
# Globals a message does not need: namespace() would carry text from one loop turn to the
# next (doubling it each turn), lipsum() writes paragraphs by the thousand.
REFUSED_GLOBALS = ("namespace", "lipsum")


class TemplateBudgetExceeded(SecurityError):
    """The template asked for more work or output than a message can need."""


class TemplateSandbox(ImmutableSandboxedEnvironment):
    """ImmutableSandboxedEnvironment with a per-environment budget; make one per render."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        # The clock starts at the render's first step, not here: making the environment,
        # compiling its templates and a process's first-use work (Jinja's lexer, locale data)
        # are not the template's doing. A letter's first render in a cold worker process,
        # under coverage on a busy machine, once went over the budget before its first line.
        self.deadline: float | None = None
        self.steps = 0
        self.depth = 0
        self.output_chars = 0
        self.globals["range"] = self._range
        for name in REFUSED_GLOBALS:
            self.globals.pop(name, None)
        self.filters = {name: self._bounded(f) for name, f in self.filters.items()
                        if name in ALLOWED_FILTERS}
        self.filters["join"] = self._bounded_join(self.filters["join"])
        self.filters[_BUDGET_FILTER] = self._budgeted_loop
        self.filters[_CONCAT_FILTER] = self._budgeted_concat

    # -- the budget ------------------------------------------------------------------------

    def _spend(self, steps: int = 1) -> None:
        self.steps += steps
        if self.steps > MAX_STEPS:
            raise TemplateBudgetExceeded(
                f"the template does too much work (more than {MAX_STEPS:,} loop turns and "
                "calls); a message needs far fewer")
        if self.deadline is None:
            self.deadline = time.thread_time() + MAX_RENDER_SECONDS
        elif time.thread_time() > self.deadline:
            raise TemplateBudgetExceeded(
                f"the template takes too long to write (more than {MAX_RENDER_SECONDS} s); "
                "a message needs a few milliseconds")

    @staticmethod
    def _check_sizes(args: Iterable[Any]) -> None:
        for value in args:
            if isinstance(value, int) and not isinstance(value, bool) and \
                    abs(value) > MAX_SIZE_ARGUMENT:
                raise TemplateBudgetExceeded(
                    f"the number {value} is too large here (at most {MAX_SIZE_ARGUMENT:,})")

    def _range(self, *args: int) -> range:
        made = range(*args)
        if len(made) > MAX_RANGE:
            raise TemplateBudgetExceeded(
                f"range() may count at most {MAX_RANGE:,} numbers, not {len(made):,}")
        return made

    def _budgeted_loop(self, iterable: Any) -> Iterator[Any]:
        for item in iterable:
            self._spend()
            yield item

    def _budgeted_concat(self, parts: list[Any]) -> str:
        """`a ~ b ~ c`: the lengths are added up before the text is made."""
        texts = [str(part) for part in parts]
        if sum(map(len, texts)) > MAX_OUTPUT_CHARS:
            raise TemplateBudgetExceeded(
                f"joining text makes more than {MAX_OUTPUT_CHARS:,} characters")
        self._spend()
        return "".join(texts)

    def _bounded_join(self, join: Callable[..., Any]) -> Callable[..., Any]:
        """`join` with its length added up before the text is made."""

        def bounded_join(eval_ctx: Any, value: Any, d: str = "", attribute: Any = None) -> Any:
            items = list(self._budgeted_loop(value))
            if attribute is None and sum(len(str(item)) for item in items) + \
                    len(d) * max(len(items) - 1, 0) > MAX_OUTPUT_CHARS:
                raise TemplateBudgetExceeded(
                    f"joining text makes more than {MAX_OUTPUT_CHARS:,} characters")
            return join(eval_ctx, items, d, attribute)

        bounded_join.jinja_pass_arg = join.jinja_pass_arg  # type: ignore[attr-defined]
        return bounded_join

    def _bounded(self, function: Callable[..., Any]) -> Callable[..., Any]:
        passes_first = hasattr(function, "jinja_pass_arg")  # context/environment comes first

        def bounded(*args: Any, **kwargs: Any) -> Any:
            self._check_sizes(args[2 if passes_first else 1:])
            self._check_sizes(kwargs.values())
            self._spend()
            return function(*args, **kwargs)

        if passes_first:
            bounded.jinja_pass_arg = function.jinja_pass_arg  # type: ignore[attr-defined]
        return bounded

    # -- the sandbox's hooks -----------------------------------------------------------------

    def call(__self, __context: Any, __obj: Any, *args: Any,
             **kwargs: Any) -> Any:
        __self._check_sizes(args)
        __self._check_sizes(kwargs.values())
        __self._spend()
        method = getattr(__obj, "__wrapped__", __obj)  # the sandbox wraps str.format
        if isinstance(getattr(method, "__self__", None), str) and \
                getattr(method, "__name__", "") in REFUSED_STR_METHODS:
            raise TemplateBudgetExceeded(
                f"the text method {method.__name__}() is not available in messages")
        if __self.depth >= MAX_CALL_DEPTH:
            raise TemplateBudgetExceeded(
                f"calls are nested more than {MAX_CALL_DEPTH} deep (a macro calling itself?)")
        __self.depth += 1
        try:
            return super().call(__context, __obj, *args, **kwargs)
        finally:
            __self.depth -= 1

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int | float) and \
                abs(right) > MAX_POWER_EXPONENT:
            raise TemplateBudgetExceeded(f"powers above {MAX_POWER_EXPONENT} are not allowed")
        if operator == "**" and isinstance(left, int) and isinstance(right, int) and \
                abs(left) > 1 and right * abs(left).bit_length() > MAX_NUMBER_BITS:
            raise TemplateBudgetExceeded("the template makes a number too large to write")
        if operator == "*":
            for sized, count in ((left, right), (right, left)):
                if isinstance(sized, str | list | tuple) and isinstance(count, int) and \
                        len(sized) * count > MAX_OUTPUT_CHARS:
                    raise TemplateBudgetExceeded(
                        f"repeating makes more than {MAX_OUTPUT_CHARS:,} characters")
        if operator == "+" and isinstance(left, str | list | tuple) and \
                isinstance(right, str | list | tuple) and \
                len(left) + len(right) > MAX_OUTPUT_CHARS:
            raise TemplateBudgetExceeded(
                f"joining text makes more than {MAX_OUTPUT_CHARS:,} characters")
        if operator == "%" and isinstance(left, str):
            raise TemplateBudgetExceeded("'%' formatting of text is not available in messages")
        result = super().call_binop(context, operator, left, right)
        if isinstance(result, int) and result.bit_length() > MAX_NUMBER_BITS:
            raise TemplateBudgetExceeded("the template makes a number too large to write")
        return result

    def concat(self, pieces: Iterable[str]) -> str:  # type: ignore[override]
        """Every rendered piece passes here (the body and each macro's output): count it."""
        out: list[str] = []
        try:
            for piece in pieces:
                self.output_chars += len(piece)
                if self.output_chars > MAX_OUTPUT_CHARS:
                    raise TemplateBudgetExceeded(
                        f"the template writes more than {MAX_OUTPUT_CHARS // 1000} kB")
                out.append(piece)
        except (ArithmeticError, LookupError, RecursionError, TypeError, ValueError) as exc:
            # `{{ 1 / 0 }}`, `{{ 'a' * 'b' }}`: the owner's mistake, reported like any other.
            raise TemplateRuntimeError(f"{exc.__class__.__name__}: {exc}") from exc
        return "".join(out)

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        """Every `for` loop and every `~` goes through the budget (Jinja has no hook for them)."""
        tree = super()._parse(source, name, filename)
        for loop in tree.find_all(nodes.For):
            loop.iter = nodes.Filter(loop.iter, _BUDGET_FILTER, [], [], None, None,
                                     lineno=loop.lineno)
        for joined in list(tree.find_all(nodes.Concat)):
            # `~` becomes a filter over the list of its parts; the parts keep their own nodes.
            parts = nodes.List(joined.nodes, lineno=joined.lineno)
            joined.nodes = [nodes.Filter(parts, _CONCAT_FILTER, [], [], None, None,
                                         lineno=joined.lineno)]
        return tree
