"""The error types every boundary maps once: CLI -> `qkt: error: ...`, HTTP -> 4xx JSON envelope."""

from __future__ import annotations

from typing import Any, ClassVar


class QktError(Exception):
    """A failure with a stable snake_case code, an HTTP status and a CLI exit code."""

    code: ClassVar[str] = "error"
    http_status: ClassVar[int] = 400
    exit_code: ClassVar[int] = 1

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_json(self) -> dict[str, Any]:
        """The `{"error": {"code", "message", ...}}` envelope used by every API."""
        return {"error": {"code": self.code, "message": self.message, **self.details}}


class UserError(QktError):
    """The user asked for something that cannot be done as asked (bad input, bad state)."""

    code = "bad_request"


class InvalidNameError(UserError):
    code = "invalid_name"


class NotFoundError(UserError):
    code = "not_found"
    http_status = 404


class ConflictError(UserError):
    code = "conflict"
    http_status = 409


class NoDaemonError(UserError):
    code = "no_daemon"
    http_status = 503


class UnauthorizedError(UserError):
    code = "unauthorized"
    http_status = 401


class InternalError(QktError):
    """Something qkt itself got wrong; reported, never blamed on the user."""

    code = "internal"
    http_status = 500
