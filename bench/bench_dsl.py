"""How long compiling a .qkt file takes: the daemon compiles on deploy and each worker on start."""

from __future__ import annotations

import time
from pathlib import Path

from qkt.dsl import compile_source

SAMPLE = Path(__file__).resolve().parent.parent / "tests" / "dsl" / "data" / "valid"


def _per_compile_ms(text: str, repeat: int) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        compile_source(text)
    return (time.perf_counter() - start) * 1000 / repeat


def _big_strategy(rules: int) -> str:
    """A file with `rules` rules over ten streams, LETs and DEFAULTS: far beyond a real one."""
    streams = ",\n".join(f"    s{i} = SIM:SYM{i}USDT EVERY 1m" for i in range(10))
    lines = [
        "STRATEGY big VERSION 1",
        "DEFAULTS { SIZING = RISK 0.01 STOP_LOSS = BY ATR(SYMBOL, 14) * 2 TAKE_PROFIT = RR 3 }",
        f"SYMBOLS\n{streams}",
        "LET fast = EMA(s0.close, 12), slow = EMA(s0.close, 26)",
        "RULES",
    ]
    for i in range(rules):
        lines.append(
            f"WHEN fast CROSSES ABOVE slow AND RSI(s{i % 10}.close, 14) < {30 + i % 40}"
            f" AND POSITION.s{i % 10} == 0 THEN BUY s{i % 10}"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    every = (SAMPLE / "every_construct.qkt").read_text()
    print(f"every_construct.qkt (12 rules): {_per_compile_ms(every, 200):.2f} ms per compile")
    big = _big_strategy(500)
    print(f"500 rules over 10 streams:      {_per_compile_ms(big, 5):.1f} ms per compile")


if __name__ == "__main__":
    main()
