"""The checker's calls: indicators and math functions, from the one table (qkt.dsl.catalog).

Each mistake is one positioned error that says what to write instead: an unknown name (with the
closest known one), the number of arguments (with the signature), a series where a candle is
needed or the reverse, a parameter out of TA-Lib's range, an output field missing, unknown or
given to a single-output indicator, an unknown keyword or MA type.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qkt.dsl import nodes
from qkt.dsl.catalog import ANCHORS, FUNCTIONS, INDICATORS, MA_TYPES, Param, Spec
from qkt.dsl.scope import Context, Type, Where, resolve, suggest

if TYPE_CHECKING:
    from qkt.dsl.exprcheck import ExprChecker

_KNOWN = (*INDICATORS, *FUNCTIONS)


def check_call(checker: ExprChecker, expr: nodes.Call, ctx: Context) -> Type | None:
    """The type of a call (a number), or None after reporting what is wrong with it."""
    name = expr.name
    if name in FUNCTIONS:
        return _function(checker, expr, ctx)
    spec = INDICATORS.get(name)
    if spec is None:
        if name.upper() in _KNOWN:
            checker.error(
                expr.span, f"indicator names are upper case: write {name.upper()}, not {name}"
            )
        else:
            hint = suggest(name, _KNOWN) or " (qkt check --list-indicators lists them)"
            checker.error(expr.span, f"unknown indicator '{name}'{hint}")
        return None
    if not _output_ok(checker, spec, expr):
        return None
    inputs = 2 if spec.input == "two series" else 1
    count = len(expr.args)
    if not inputs <= count <= inputs + len(spec.params):
        most = inputs + len(spec.params)
        takes = f"{inputs}" if most == inputs else f"{inputs} to {most}"
        checker.error(expr.span, f"{name} takes {takes} arguments, {spec.signature()}; got {count}")
        return None
    if spec.input == "candle":
        _candle_source(checker, spec, expr.args[0], ctx)
    else:
        for source in expr.args[:inputs]:
            _series_source(checker, name, source, ctx)
    for param, value in zip(spec.params, expr.args[inputs:], strict=False):
        _parameter(checker, name, param, value, ctx)
    _keywords(checker, spec, expr)
    return Type.NUMBER


def _output_ok(checker: ExprChecker, spec: Spec, expr: nodes.Call) -> bool:
    name, field = spec.name, expr.field
    fields = ", ".join(f".{output}" for output in spec.outputs)
    if spec.multi and field is None:
        checker.error(
            expr.span,
            f"{name} has several outputs: pick one, e.g. {name}(...).{spec.outputs[0]} "
            f"(one of {fields})",
        )
        return False
    where = expr.field_span or expr.span
    if spec.multi and field not in spec.outputs:
        hint = suggest(field or "", spec.outputs)
        checker.error(where, f"unknown output '{field}' of {name}{hint}: use {fields}")
        return False
    if not spec.multi and field is not None:
        checker.error(where, f"{name} has a single output: remove '.{field}'")
        return False
    return True


def _candle_source(checker: ExprChecker, spec: Spec, source: nodes.Expr, ctx: Context) -> None:
    if isinstance(source, nodes.Field) and source.field == "candle":
        checker.alias(source.alias, source.span, ctx)
    elif isinstance(source, nodes.SymbolRef):
        if ctx.where is not Where.DEFAULTS:
            checker.symbol(source.span, ctx)
    else:
        alias = source.alias if isinstance(source, nodes.Field) else "btc"
        rest = "".join(f", {param.name}" for param in spec.params)
        checker.error(
            source.span,
            f"{spec.name} takes a stream's candle: write {spec.name}({alias}.candle{rest})",
        )


def _series_source(checker: ExprChecker, name: str, source: nodes.Expr, ctx: Context) -> None:
    if isinstance(source, nodes.Field) and source.field == "candle":
        checker.alias(source.alias, source.span, ctx)
        checker.error(
            source.span, f"{name} takes a series such as {source.alias}.close, not a candle"
        )
        return
    if checker.expr(source, ctx) is None:
        return
    target = resolve(source, checker.lets, checker.cyclic)
    ok = (isinstance(target, nodes.Call) and target.name in INDICATORS) or (
        isinstance(target, nodes.Field) and target.field != "candle"
    )
    if target is not None and not ok:
        checker.error(
            source.span,
            f"{name}'s first argument must be a stream field such as btc.close, "
            "or another indicator",
        )


def _parameter(
    checker: ExprChecker, name: str, param: Param, value: nodes.Expr, ctx: Context
) -> None:
    target = resolve(value, checker.lets, checker.cyclic)
    if target is None:  # an unknown, broken or cyclic name: `expr` says which, once
        checker.expr(value, ctx)
        return
    if (
        isinstance(target, nodes.Unary)
        and target.op == "-"
        and isinstance(target.operand, nodes.Num)
    ):
        number = -target.operand.value
    elif isinstance(target, nodes.Num):
        number = target.value
    else:
        number = None
    if number is not None and param.low <= number <= param.high:
        if not param.whole or number == number.to_integral_value():
            return
    what = "the period" if param.name == "timeperiod" else f"the {param.name}"
    kind = "a whole number" if param.whole else "a number"
    checker.error(
        value.span,
        f"{what} of {name} must be {kind} from {param.low:g} to {param.high:g} "
        "(or a LET that is one)",
    )


def _keywords(checker: ExprChecker, spec: Spec, expr: nodes.Call) -> None:
    allowed: dict[str, tuple[str, ...]] = {"MATYPE": MA_TYPES} if spec.matype else {}
    if spec.name == "VWAP":
        allowed = {"ANCHOR": ANCHORS}
    for keyword in expr.keywords:
        choices = allowed.get(keyword.name)
        if choices is None:
            takes = f": it takes {', '.join(f'{k}=' for k in allowed)}" if allowed else ""
            hint = suggest(keyword.name, allowed) if allowed else ""
            checker.error(keyword.span, f"{spec.name} has no keyword {keyword.name}{hint}{takes}")
        elif keyword.value not in choices:
            hint = suggest(keyword.value, choices)
            checker.error(
                keyword.value_span,
                f"unknown {keyword.name} '{keyword.value}'{hint}: use {', '.join(choices)}",
            )


def _function(checker: ExprChecker, expr: nodes.Call, ctx: Context) -> Type | None:
    function = FUNCTIONS[expr.name]
    least, most = function.arity
    count = len(expr.args)
    if expr.field is not None:
        checker.error(expr.field_span or expr.span, f"{expr.name} has no outputs to pick")
        return None
    if expr.keywords:
        checker.error(expr.keywords[0].span, f"{expr.name} takes no keywords")
        return None
    if count < least or (most is not None and count > most):
        if expr.name in ("MAX", "MIN") and count == 1:
            message = (
                f"{expr.name}(x) needs SINCE T-N or SINCE OPEN; "
                f"{expr.name}(a, b, ...) compares two or more values"
            )
        else:
            takes = f"{least}" if most == least else f"{least} to {most}"
            if most is None:
                takes = f"at least {least}"
            noun = "argument" if takes == "1" else "arguments"
            message = f"{expr.name} takes {takes} {noun}; got {count}"
        checker.error(expr.span, message)
        return None
    for arg in expr.args:
        checker.want(arg, ctx, Type.NUMBER)
    return Type.NUMBER
