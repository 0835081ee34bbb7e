"""The small exception tree every obliviate error belongs to; the CLI maps each to a one-line message."""


class ObliviateError(Exception):
    """Base class: a problem the user can fix, with a message that says how."""


class ConfigError(ObliviateError):
    """A setting is invalid or two settings contradict each other."""


class TaskFormatError(ObliviateError):
    """A data file is missing, malformed or has the wrong columns."""


class UnknownNameError(ObliviateError, KeyError):
    """A method, metric, attack or task name is not registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ModelLoadError(ObliviateError):
    """A model could not be found or loaded."""


class TrainingCollapseError(ObliviateError):
    """Training diverged (NaN / exploding loss) or the model's outputs turned to gibberish."""
