"""Domain errors carrying the contract's business codes (10001 ... 40002).

Raised by services and edges alike; the HTTP edge renders them in the response envelope and
the signaling edge as `error` (type 13) messages, so both speak the same codes.
"""

from __future__ import annotations


class ErrorCode:
    INVALID_CREDENTIALS = 10001
    USER_NOT_FOUND = 10002
    USER_EXISTS = 10003
    TOKEN_INVALID = 10004
    TOKEN_EXPIRED = 10005
    MEETING_NOT_FOUND = 20001
    MEETING_ENDED = 20002
    MEETING_FULL = 20003
    MEETING_PASSWORD = 20004
    UPLOAD_FAILED = 30001
    FILE_TYPE = 30002
    FILE_TOO_LARGE = 30003
    AI_UNAVAILABLE = 40001
    AI_FAILED = 40002


class AppError(Exception):
    """An error with an HTTP status, an envelope `code`, an `error.type` and details."""

    status = 400
    type = "BadRequest"
    code: int | None = None  # business code; the HTTP status is used when None

    def __init__(
        self,
        message: str,
        *,
        details: object = None,
        code: int | None = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details if details is not None else message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.headers = headers or {}

    @property
    def envelope_code(self) -> int:
        return self.code if self.code is not None else self.status


class ValidationFailed(AppError):
    status, type = 400, "ValidationError"


class Unauthorized(AppError):
    status, type = 401, "AuthenticationError"


class Forbidden(AppError):
    status, type = 403, "PermissionDenied"


class NotFound(AppError):
    status, type = 404, "NotFound"


class Conflict(AppError):
    status, type = 409, "Conflict"


class PayloadTooLarge(AppError):
    status, type = 413, "PayloadTooLarge"


class UnsupportedMedia(AppError):
    status, type = 415, "UnsupportedMediaType"


class RateLimited(AppError):
    status, type = 429, "RateLimited"


class Unavailable(AppError):
    status, type = 503, "ServiceUnavailable"


def invalid_credentials() -> Unauthorized:
    return Unauthorized("Invalid username or password", code=ErrorCode.INVALID_CREDENTIALS)


def token_invalid(details: str = "Token is invalid") -> Unauthorized:
    return Unauthorized("Token invalid", details=details, code=ErrorCode.TOKEN_INVALID)


def token_expired() -> Unauthorized:
    return Unauthorized("Token expired", code=ErrorCode.TOKEN_EXPIRED)


def meeting_not_found() -> NotFound:
    return NotFound("Meeting not found", code=ErrorCode.MEETING_NOT_FOUND)


def meeting_ended() -> AppError:
    return AppError("Meeting has ended", code=ErrorCode.MEETING_ENDED, status=400)
