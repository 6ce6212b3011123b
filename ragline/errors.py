"""The one error tree of ragline. Adapters map these once: HTTP in api/, retries in
workers/, exit codes in indexer/."""

from __future__ import annotations


class RaglineError(Exception):
    """Base of every error ragline raises on purpose."""


class ConfigError(RaglineError):
    """The config or the environment is invalid; the process must not start."""


class InvalidInput(RaglineError):
    """The caller sent something ragline will not accept (HTTP 422)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class Unauthenticated(RaglineError):
    """No key, an unknown or wrong key, or a revoked or expired one (HTTP 401)."""


class Forbidden(RaglineError):
    """The key is valid but lacks the role the action needs (HTTP 403)."""


class RateLimited(RaglineError):
    """Too many requests for this key (HTTP 429); retry after `retry_after_s`."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Overloaded(RaglineError):
    """The backlog is at its bound; new work is refused for now (HTTP 503)."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class OverBudget(RaglineError):
    """A job would exceed a spending cap."""


class NotFound(RaglineError):
    """The thing asked for does not exist (or is not the caller's to see)."""


class Conflict(RaglineError):
    """The request contradicts an earlier one, e.g. an idempotency key reused (HTTP 409)."""


class TransientError(RaglineError):
    """Worth retrying later: a dependency is down or slow."""


class StoreBusy(TransientError):
    """The local knowledge store is open in another process (Qdrant local mode has one
    owner, usually the server)."""


class PermanentError(RaglineError):
    """Retrying will not help."""


class DatabaseUnavailable(TransientError):
    """The database cannot be reached, dropped the connection or is busy: the repositories
    raise this (ragline.db translates the driver's errors), so callers decide to retry on
    ragline's own type rather than on SQLAlchemy's. connection_lost: the pooled connection
    was found dead and discarded (a fresh one may well work: ragline.db.retry_stale)."""

    def __init__(self, message: str, *, connection_lost: bool = False) -> None:
        super().__init__(message)
        self.connection_lost = connection_lost


class StorageRefused(PermanentError):
    """The database refused a value it cannot store (e.g. a NUL in PostgreSQL text):
    the same write fails the same way every time."""


class ModelError(RaglineError):
    """The model provider failed; the job is escalated with reason model_error."""


class ModelTimeout(ModelError):
    """The model provider did not answer within the time budget; reason timeout."""


class DeadlineExceeded(RaglineError):
    """The job's own deadline passed between stages; reason timeout."""


class IndexNotReady(RaglineError):
    """No index version is behind the alias, or the version is not usable."""
