"""Customer errors with stable codes; messages never repeat what the customer typed."""

from __future__ import annotations

from enum import StrEnum

from core.errors import DomainError

__all__ = [
    "CustomerError",
    "CustomerErrorCode",
    "CustomerNotFound",
    "EmailTaken",
    "InvalidAddress",
    "InvalidCredentials",
    "InvalidEmail",
    "InvalidName",
    "InvalidPhone",
    "PasswordTooLong",
    "PasswordTooShort",
    "ProfileConflict",
    "ResetTokenInvalid",
    "TooManyAddresses",
    "TooManyAttempts",
    "WrongPassword",
]


class CustomerErrorCode(StrEnum):
    """Every code an account operation reports."""

    CUSTOMER_ERROR = "CUSTOMER_ERROR"
    INVALID_EMAIL = "INVALID_EMAIL"
    PASSWORD_TOO_SHORT = "PASSWORD_TOO_SHORT"  # noqa: S105 - an error code, not a password
    PASSWORD_TOO_LONG = "PASSWORD_TOO_LONG"  # noqa: S105 - an error code, not a password
    EMAIL_TAKEN = "EMAIL_TAKEN"
    INVALID_NAME = "INVALID_NAME"
    INVALID_PHONE = "INVALID_PHONE"
    INVALID_ADDRESS = "INVALID_ADDRESS"
    TOO_MANY_ADDRESSES = "TOO_MANY_ADDRESSES"
    INVALID_CREDENTIALS = "INVALID_CREDENTIALS"
    TOO_MANY_ATTEMPTS = "TOO_MANY_ATTEMPTS"
    NOT_FOUND = "NOT_FOUND"
    CONFLICT = "CONFLICT"
    RESET_TOKEN_INVALID = "RESET_TOKEN_INVALID"  # noqa: S105 - an error code, not a token


class CustomerError(DomainError):
    code: str = CustomerErrorCode.CUSTOMER_ERROR


class InvalidEmail(CustomerError):
    code: str = CustomerErrorCode.INVALID_EMAIL
    field = ("input", "email")

    def __init__(self) -> None:
        super().__init__("Enter an email address like name@example.com.")


class PasswordTooShort(CustomerError):
    code: str = CustomerErrorCode.PASSWORD_TOO_SHORT
    field = ("input", "password")

    def __init__(self, minimum: int) -> None:
        super().__init__(f"The password needs at least {minimum} characters.")


class PasswordTooLong(CustomerError):
    code: str = CustomerErrorCode.PASSWORD_TOO_LONG
    field = ("input", "password")

    def __init__(self, maximum: int) -> None:
        super().__init__(f"The password can have at most {maximum} characters.")


class EmailTaken(CustomerError):
    code: str = CustomerErrorCode.EMAIL_TAKEN
    field = ("input", "email")

    def __init__(self) -> None:
        super().__init__("An account with this email already exists: sign in instead.")


class InvalidName(CustomerError):
    code: str = CustomerErrorCode.INVALID_NAME

    def __init__(self, field: str) -> None:
        super().__init__("Enter a name (1 to 100 characters).", ("input", field))


class InvalidPhone(CustomerError):
    code: str = CustomerErrorCode.INVALID_PHONE
    field = ("input", "phone")

    def __init__(self) -> None:
        super().__init__("Enter a phone number with 7 to 15 digits, e.g. +48 600 100 200.")


class InvalidAddress(CustomerError):
    code: str = CustomerErrorCode.INVALID_ADDRESS

    def __init__(self, field: str) -> None:
        super().__init__(f"The address's {field} is missing or too long.", ("input", field))


class TooManyAddresses(CustomerError):
    code: str = CustomerErrorCode.TOO_MANY_ADDRESSES

    def __init__(self, maximum: int) -> None:
        super().__init__(f"The address book is full: it holds at most {maximum} addresses.")


class InvalidCredentials(CustomerError):
    code: str = CustomerErrorCode.INVALID_CREDENTIALS

    def __init__(self) -> None:
        super().__init__("The email or password is not right.")


class TooManyAttempts(CustomerError):
    code: str = CustomerErrorCode.TOO_MANY_ATTEMPTS

    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__(f"Too many failed sign-ins: try again in {retry_after_seconds} seconds.")
        self.retry_after_seconds = retry_after_seconds


class CustomerNotFound(CustomerError):
    code: str = CustomerErrorCode.NOT_FOUND

    def __init__(self) -> None:
        super().__init__("No such customer.")


class ProfileConflict(CustomerError):
    code: str = CustomerErrorCode.CONFLICT

    def __init__(self) -> None:
        super().__init__("The profile changed meanwhile: try again.")


class WrongPassword(CustomerError):
    code: str = CustomerErrorCode.INVALID_CREDENTIALS
    field = ("currentPassword",)

    def __init__(self) -> None:
        super().__init__("The current password is not right.")


class ResetTokenInvalid(CustomerError):
    code: str = CustomerErrorCode.RESET_TOKEN_INVALID
    field = ("token",)

    def __init__(self) -> None:
        super().__init__("This reset link is not valid any more: it was used or has expired. Ask for a new one.")
