"""Data-subject request errors, each with a stable code (messages never hold personal data)."""

from __future__ import annotations

from core.errors import DomainError

__all__ = ["AlreadyExtended", "DeadlinePassed", "InvalidExtension", "RequestClosed", "RequestError", "RequestNotFound"]


class RequestError(DomainError):
    code = "REQUEST_ERROR"


class RequestNotFound(RequestError):
    code = "NOT_FOUND"
    field = ("requestId",)

    def __init__(self) -> None:
        super().__init__("No such data-subject request.")


class AlreadyExtended(RequestError):
    code = "ALREADY_EXTENDED"
    field = ("requestId",)

    def __init__(self) -> None:
        super().__init__("The deadline was already extended once (GDPR Art. 12(3) allows one extension).")


class DeadlinePassed(RequestError):
    code = "DEADLINE_PASSED"
    field = ("requestId",)

    def __init__(self) -> None:
        super().__init__(
            "The deadline has passed: an extension must be made within it (GDPR Art. 12(3)); answer the request now."
        )


class RequestClosed(RequestError):
    code = "REQUEST_CLOSED"
    field = ("requestId",)

    def __init__(self) -> None:
        super().__init__("The request is already completed or rejected: its deadline no longer runs.")


class InvalidExtension(RequestError):
    code = "INVALID_REASON"
    field = ("reason",)

    def __init__(self, maximum: int) -> None:
        super().__init__(f"Give the reason for the extension (1 to {maximum} characters); the person is told it.")
