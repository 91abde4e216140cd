"""The indicator and function reference, rendered from the catalog: docs/indicators.md is
`markdown()` (a test holds them equal) and `qkt check --list-indicators` prints `plain()`."""

from __future__ import annotations

from qkt.dsl.catalog import FUNCTIONS, INDICATORS, MA_TYPES, MAX_HISTORY, Args, Param, Spec

_INTRO = f"""\
# Indicators and functions

Every indicator a `.qkt` file can call, generated from the table the compiler itself uses
(`qkt check --list-indicators` prints the same list). Names, parameters, their order and their
defaults are TA-Lib's: a trader reading TA-Lib's documentation can write the call. Trailing
parameters may be left out; TA-Lib's MA-type parameters are the keyword `MATYPE=` instead
(one of {", ".join(MA_TYPES)}).

```
WHEN MACD(btc.close, 12, 26, 9).macd CROSSES ABOVE MACD(btc.close, 12, 26, 9).signal THEN ...
WHEN btc.close < BBANDS(btc.close, 20, 2, 2, MATYPE=EMA).lower THEN ...
WHEN STOCH(btc.candle, 14, 3, 3).k CROSSES ABOVE STOCH(btc.candle, 14, 3, 3).d THEN ...
WHEN ADX(btc.candle, 14) > 25 AND PLUS_DI(btc.candle) > MINUS_DI(btc.candle) THEN ...
```

- **Inputs.** A *series* is a stream field (`btc.close`, `btc.volume`, ...) or another
  indicator (`EMA(RSI(btc.close, 14), 5)`); a *candle* is `alias.candle` (or `SYMBOL` inside
  `DEFAULTS`); CORREL and BETA take two series, updated when the first one's stream closes,
  with the second one's latest value.
- **Outputs.** An indicator with several outputs needs one picked with a field:
  `MACD(...).signal`. Asking for none, or a field of a single-output indicator, is an error
  that lists the fields.
- **Warm-up.** An indicator is undefined (rules using it do not fire) until it has seen as many
  values as TA-Lib's lookback, given below as *lookback*; after that every value equals
  TA-Lib's to 1e-9 relative (the tests compare every value on a random walk, a gappy walk and a
  walk with flat stretches). Smoothed ones (EMA-based, Wilder's) keep a trace of where their
  history started: `Program.history_needed()` asks for enough candles for that trace to fall
  below 1e-9 (at most {MAX_HISTORY:,} a key; `WARMUP n` after the header raises it).
- **Precision.** Indicators compute in binary floats as TA-Lib does; a value enters the
  language rounded to 16 significant digits.

Where qkt's output differs from TA-Lib's on purpose:

- RSI is 50 when nothing moved over its window (TA-Lib prints 0).
- Where TA-Lib treats any |x| < 1e-8 as 0 (its `TA_IS_ZERO`: the DI and DX, CMO, ULTOSC,
  NATR, PPO, ROC denominators), qkt tests against exactly 0, so that assets priced below a cent
  are not silently 0. MFI is 0 when no money flowed (TA-Lib: whenever the flow is below 1).
- A window whose values are all equal has a standard deviation and variance of exactly 0, a
  STOCH/WILLR/STOCHRSI %K of 0 and a CCI of 0 (differences that are only rounding noise count
  as 0); CORREL and BETA are 0 when either series is flat over the window, where TA-Lib's
  output is rounding noise.
- OBV and AD are running totals from the first candle seen: their level depends on where the
  history started (their changes do not); ADOSC forgets it.
- SAR depends on its first candle until its first reversals; 200 candles of history are asked
  for.

## How much history: `WARMUP`

A strategy is warm when every indicator, `@T-N` lag, `SINCE T-N` window and `CROSSES` it reads
has a settled value. The compiled program knows how many closed candles of each key that takes
(`Program.history_needed()`, shown as `history` by `qkt check --json`-style summaries): a
field needs 1 candle; an indicator adds its lookback, plus for EMA-based and Wilder-smoothed
ones the candles it takes to forget its start to 1e-9 (about 10·(n+1) for an EMA, 21·n for
Wilder's); nested indicators add up; `x@T-N` adds N, `f(x) SINCE T-N` adds N − 1, `CROSSES`
adds 1. That count is capped at {MAX_HISTORY:,} candles a key. To ask for more (or for history
the rules do not show, e.g. for a `SINCE OPEN` aggregate), write `WARMUP n` after the header:

```
STRATEGY trend VERSION 3 WARMUP 2000
```

Every key then gets at least n candles (1 to 100,000). Files without `WARMUP` are unchanged.
"""


def _param(param: Param) -> str:
    default = f"{param.default:g}"
    return f"{param.name}={default}"


def _call(spec: Spec) -> str:
    first = {"series": "x", "candle": "a.candle", "two series": "x, y"}[spec.input]
    parts = [first, *(_param(p) for p in spec.params)]
    if spec.matype:
        parts.append(f"MATYPE={spec.matype}")
    if spec.name == "VWAP":
        parts.append("ANCHOR=1d")
    return f"{spec.name}({', '.join(parts)})"


def _lookback(spec: Spec) -> str:
    args = Args(tuple(p.default for p in spec.params), spec.matype or "SMA")
    return str(spec.lookback(args))


def markdown() -> str:
    """docs/indicators.md."""
    lines = [_INTRO]
    groups: dict[str, list[Spec]] = {}
    for spec in INDICATORS.values():
        groups.setdefault(spec.group, []).append(spec)
    for group, specs in groups.items():
        lines += [f"## {group.capitalize()}", ""]
        lines += ["| call (defaults) | outputs | lookback | what it is |", "|---|---|---|---|"]
        for spec in specs:
            outputs = " ".join(f"`.{o}`" for o in spec.outputs) or "value"
            what = spec.summary + ("" if spec.talib else " *(not in TA-Lib: defined here)*")
            lines.append(f"| `{_call(spec)}` | {outputs} | {_lookback(spec)} | {what} |")
        lines.append("")
    lines += [
        "## Functions",
        "",
        "Exact Decimal where the result is rational; SQRT, LN and EXP to 16 significant digits.",
        "Outside a function's domain (`SQRT(-1)`, `LN(0)`) the value is undefined, and the",
        "strategy's log says so once.",
        "",
        "| call | what it is |",
        "|---|---|",
    ]
    for function in FUNCTIONS.values():
        lines.append(f"| `{function.name}` | {function.summary} |")
    return "\n".join(lines) + "\n"


def plain() -> str:
    """What `qkt check --list-indicators` prints: one line per indicator and function."""
    width = max(len(_call(spec)) for spec in INDICATORS.values())
    lines = []
    for spec in INDICATORS.values():
        outputs = " ".join(f".{o}" for o in spec.outputs)
        summary = spec.summary + (f" [{outputs}]" if outputs else "")
        lines.append(f"{_call(spec):<{width}}  {summary}")
    lines.append("")
    for function in FUNCTIONS.values():
        lines.append(f"{function.name:<{width}}  {function.summary}")
    return "\n".join(lines) + "\n"
