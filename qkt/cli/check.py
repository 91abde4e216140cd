"""`qkt check FILE...`: parse and compile only."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from qkt.errors import UserError


def check_command(
    files: Annotated[list[Path], typer.Argument(help="The .qkt files to check.")],
) -> None:
    """Parse and compile FILEs; print every error as file:line:col: message."""
    raise UserError("qkt check is not implemented yet")
