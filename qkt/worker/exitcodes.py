"""A worker's exit codes, and what each means in words (the daemon's crash reasons use them).

Apart from the worker's code so that the supervisor can name an exit without importing it.
"""

from __future__ import annotations

from typing import Final

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1  # a crash, or a problem found at start (bad file, no hub, bad journal)
EXIT_BAD_SPEC: Final = 2  # `python -m qkt.worker` could not read its spec
EXIT_ALREADY_RUNNING: Final = 3  # another worker holds this strategy's lock
EXIT_NO_SPACE: Final = 4  # the disk is full: the journal or the log could not be written

MEANING: Final = {
    EXIT_BAD_SPEC: "its spec could not be read",
    EXIT_ALREADY_RUNNING: "another worker holds this strategy's lock",
    EXIT_NO_SPACE: "no space left on device (the journal or the log could not be written)",
}
