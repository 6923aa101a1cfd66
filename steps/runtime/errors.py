"""Errors the runtime raises. Each carries a message a user can act on."""


class PipelineError(Exception):
    """Base class for errors that end a command with a clear message and non-zero exit."""


class InvalidPartition(PipelineError, ValueError):
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


class CorruptObject(PipelineError):
    """An object exists but cannot be decoded (e.g. a truncated or non-parquet file)."""


class ManifestError(PipelineError):
    """A manifest is missing, unreadable, or does not validate."""


class PointerRefused(PipelineError):
    """A pointer update was refused (no success manifest, or it would move the pointer back)."""


class ContractBroken(PipelineError):
    """A data frame broke its pandera contract at a step boundary."""


class MissingInput(PipelineError):
    """An input the step needs does not exist (no snapshot at or before as-of, no upstream run)."""


class CheckFailed(PipelineError):
    """A critical check failed; the partition must not be promoted."""
