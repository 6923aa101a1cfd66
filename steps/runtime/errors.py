"""Errors the runtime raises, and the exit codes they end a step with. Each carries a message a
user can act on."""

# Exit codes of `python -m steps`. Both runners decide retries from them: the local runner in
# workflows/local/runner.py, Argo through the retryStrategy expression built in workflows/argo/step_templates.py.
EXIT_FAILED = 1  # the step failed in a way a retry may cure (a crash, an unexpected error)
EXIT_NOT_RETRYABLE = 2  # bad input or a deterministic failure: the same arguments fail again
EXIT_STORE_UNAVAILABLE = 3  # the store did not answer: retried


class PipelineError(Exception):
    """Base class for errors that end a command with a clear message and non-zero exit."""


class Deterministic(PipelineError):
    """Fails the same way on every attempt with the same inputs, so it is never retried."""


class InvalidPartition(Deterministic, ValueError):
    """A partition value is malformed or could escape its key prefix."""


class StoreError(PipelineError):
    """The store could not be opened or reached."""


class StoreUnavailable(StoreError):
    """The store did not answer (network, restart): transient, worth retrying."""


class ObjectNotFound(PipelineError, KeyError):
    """No object at that key."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "object not found"


class PreconditionFailed(PipelineError):
    """A conditional write lost: the object changed (If-Match) or already exists (If-None-Match)."""


class CorruptObject(Deterministic):
    """An object exists but cannot be decoded (e.g. a truncated or non-parquet file)."""


class ManifestError(Deterministic):
    """A manifest is missing, unreadable, or does not validate."""


class PointerRefused(Deterministic):
    """A pointer update was refused (no success manifest, or it would move the pointer back)."""


class PointerContended(PipelineError):
    """A pointer update lost every race for it while others kept moving the pointer: nothing
    refused it, so it is retried (a promote that ends so fails, never not_promoted)."""


class ContractBroken(Deterministic):
    """A data frame broke its pandera contract at a step boundary."""


class MissingInput(Deterministic):
    """An input the step needs does not exist (no snapshot at or before as-of, no upstream run)."""


class IdentityMismatch(Deterministic):
    """A manifest under the same run id was made for a different partition (another as-of,
    profile, worlds ...): reusing or overwriting it would mix two runs."""


class CheckFailed(Deterministic):
    """A critical check failed; the partition must not be promoted."""
