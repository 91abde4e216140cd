"""One validating parser per user input, used by the API and the CLI alike.

Each input is checked here, once, with one error code and one message, whoever asks: the
control plane (its pydantic schema refuses first, then `qkt.control.app` answers with the
parser's own message), `qkt deploy` / `qkt stop` (which pass the daemon's answer on), and the
commands that run without a daemon (`qkt run`, `qkt backtest`). The caller names the input as
its user spelled it (`balance` in JSON, `--balance` on a command line). Strategy names are
`qkt.paths.check_name`.
"""

from __future__ import annotations

import os
import re
import stat
from decimal import Decimal, InvalidOperation
from typing import Final

from qkt.errors import NotFoundError, UserError

MAX_BALANCE: Final = Decimal("1e15")
MAX_BPS: Final = Decimal("10000")  # 100 %
MAX_TIMEOUT_MS: Final = 3_600_000  # an hour
MAX_SOURCE_BYTES: Final = 1024 * 1024  # a strategy is a page or two; this is a lot of pages
# A plain decimal: no exponent, no NaN/Infinity, at most a sign (a `-` is refused as negative).
_PLAIN: Final = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)")


class InvalidInputError(UserError):
    """A value that is not what its input takes (the API's 422 `invalid_request`)."""

    code = "invalid_request"
    http_status = 422


def parse_money(value: object, name: str, *, most: Decimal, positive: bool = False) -> Decimal:
    """`value` (a decimal string, or a JSON number) as an exact Decimal within 0..`most`
    (greater than 0 if `positive`)."""
    text = str(value).strip() if isinstance(value, str | int | float) else None
    if isinstance(value, bool) or text is None or not _PLAIN.fullmatch(text):
        raise InvalidInputError(f"{name} must be a decimal number, got {value!r}")
    try:
        number = Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern admits only plain decimals
        raise InvalidInputError(f"{name} must be a decimal number, got {value!r}") from None
    if number < 0:
        raise InvalidInputError(f"{name} must not be negative, got {text}")
    if positive and number == 0:
        raise InvalidInputError(f"{name} must be greater than 0, got {text}")
    if number > most:
        raise InvalidInputError(f"{name} must be at most {most:f}, got {text}")
    return number


def parse_balance(value: object, name: str = "balance") -> Decimal:
    """A starting balance: greater than 0, at most 1e15."""
    return parse_money(value, name, most=MAX_BALANCE, positive=True)


def parse_bps(value: object, name: str) -> Decimal:
    """A fee or slippage in basis points: 0 to 10000."""
    return parse_money(value, name, most=MAX_BPS)


def parse_timeout_ms(value: object, name: str = "timeout") -> int:
    """A grace period in whole milliseconds, 0 to an hour."""
    if isinstance(value, str) and re.fullmatch(r"[+-]?[0-9]{1,19}", value.strip()):
        value = int(value.strip())  # a query string's text
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidInputError(f"{name} must be a whole number of milliseconds, got {value!r}")
    if not 0 <= value <= MAX_TIMEOUT_MS:
        raise InvalidInputError(f"{name} must be 0 to {MAX_TIMEOUT_MS} ms, got {value}")
    return value


def check_strategy_file(file: str) -> None:
    """Refuse what is not a regular file before anything reads it: a path that does not exist,
    cannot exist (too long, a NUL, unspellable here) or is a folder, FIFO or device is 404."""
    try:
        mode = os.stat(file).st_mode
    except FileNotFoundError:
        raise NotFoundError(f"no such file: {file}") from None
    except (OSError, ValueError, UnicodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else error
        raise NotFoundError(f"cannot read {file!r}: {reason}") from None
    if stat.S_ISDIR(mode):
        raise NotFoundError(f"{file} is a directory, not a .qkt file")
    if not stat.S_ISREG(mode):
        raise NotFoundError(f"{file} is not a regular file")


def read_strategy_file(file: str) -> bytes:
    """The bytes of a strategy file, checked by `check_strategy_file` first.

    The read is bounded: a path to a huge file must not cost the daemon its memory."""
    check_strategy_file(file)
    try:
        with open(file, "rb") as handle:
            data = handle.read(MAX_SOURCE_BYTES + 1)
    except OSError as error:
        raise NotFoundError(f"cannot read {file!r}: {error.strerror or error}") from None
    if len(data) > MAX_SOURCE_BYTES:
        raise UserError(
            f"{file} is larger than {MAX_SOURCE_BYTES // 1024} KiB: not a .qkt strategy"
        )
    return data
