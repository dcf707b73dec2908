"""One exception tree: each class knows its HTTP status, SCIM scimType and CLI exit code."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Exit codes of the `scim` CLI (documented in README.md)."""

    OK = 0
    ERROR = 1  # unexpected internal error
    USAGE = 2  # bad flag, argument or value (Click's own usage errors use 2 too)
    CONFIG = 3  # settings file or environment is invalid, or the key file is unsafe
    NOT_FOUND = 4  # the named token, user, group or mapping does not exist
    CONFLICT = 5  # the change conflicts with the current state (e.g. already revoked)
    ABORTED = 6  # the user answered "no" at a confirmation prompt
    NOT_INITIALISED = 7  # no database or key file yet: run `scim init`
    DATABASE = 8  # the database is unreachable, corrupt or from a newer version
    LISTEN = 9  # `scim serve` cannot listen: the port is in use, not permitted, or the address is not this box's
    CHECK_FAILED = 10  # `scim status --check` found problems (one line each on stdout)


class SkilljarError(Exception):
    """Base of every error the domain raises; edges translate it."""

    status: int = 500
    scim_type: str | None = None
    exit_code: ExitCode = ExitCode.ERROR

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail


class ConfigError(SkilljarError):
    exit_code = ExitCode.CONFIG


class ListenError(SkilljarError):
    exit_code = ExitCode.LISTEN


class NotInitialised(SkilljarError):
    exit_code = ExitCode.NOT_INITIALISED


class DatabaseError(SkilljarError):
    exit_code = ExitCode.DATABASE


class StoreBusy(DatabaseError):
    """Other writes held the store's write lock for longer than busy_timeout: retry shortly."""

    status = 503
    retry_after = 1


class DeadlineExceeded(SkilljarError):
    """503: the request ran past limits.request_deadline_seconds; its transaction was rolled back."""

    status = 503


class Unsupported(SkilljarError):
    """The command does not apply to this kind of database (e.g. `scim db backup` on PostgreSQL)."""

    exit_code = ExitCode.USAGE


class Aborted(SkilljarError):
    exit_code = ExitCode.ABORTED


class BadRequest(SkilljarError):
    """RFC 7644 §3.12: 400 with an optional scimType."""

    status = 400
    exit_code = ExitCode.USAGE


class InvalidValue(BadRequest):
    scim_type = "invalidValue"


class InvalidSyntax(BadRequest):
    scim_type = "invalidSyntax"


class InvalidFilter(BadRequest):
    scim_type = "invalidFilter"


class InvalidPath(BadRequest):
    scim_type = "invalidPath"


class NoTarget(BadRequest):
    scim_type = "noTarget"


class Mutability(BadRequest):
    scim_type = "mutability"


class TooMany(BadRequest):
    scim_type = "tooMany"


class Unauthorized(SkilljarError):
    status = 401
    exit_code = ExitCode.USAGE


class TokenRefused(Unauthorized):
    """401 for a genuine token (signature and secret match) that is revoked or expired."""

    def __init__(self, detail: str, token_id: str, token_name: str | None = None):
        super().__init__(detail)
        self.token_id = token_id
        self.token_name = token_name  # for the access log: a genuine token's name is known


class Forbidden(SkilljarError):
    """403: authenticated, but the token's scope does not allow this (RFC 7644 §3.12: no scimType)."""

    status = 403
    exit_code = ExitCode.USAGE


class NotFound(SkilljarError):
    status = 404
    exit_code = ExitCode.NOT_FOUND


class MethodNotAllowed(SkilljarError):
    status = 405


class Conflict(SkilljarError):
    """409 uniqueness: the resource (or change) clashes with an existing one."""

    status = 409
    scim_type = "uniqueness"
    exit_code = ExitCode.CONFLICT


class Gone(SkilljarError):
    """410: what the request points at is no longer kept (an events cursor past retention)."""

    status = 410
    exit_code = ExitCode.NOT_FOUND


class PreconditionFailed(SkilljarError):
    status = 412
    exit_code = ExitCode.CONFLICT


class PayloadTooLarge(SkilljarError):
    status = 413


class RateLimited(SkilljarError):
    status = 429

    def __init__(self, detail: str, retry_after: int, token_name: str | None = None):
        super().__init__(detail)
        self.retry_after = retry_after
        self.token_name = token_name  # a refused genuine token's name, for the access log

