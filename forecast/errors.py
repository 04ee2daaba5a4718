"""Errors that mean "the user asked for something impossible".

Library code raises :class:`UserInputError` (or a subclass) for bad input: a missing
or unparsable file, an unknown data source, impossible hyper-parameters, a corrupt
checkpoint. ``cli.main`` turns each into one ``error: ...`` line on stderr and exit
status 2. Anything else escaping is a bug and keeps its traceback.
"""
from __future__ import annotations

__all__ = ["UserInputError", "DataError", "CheckpointError", "TrainingDiverged", "first_line"]


class UserInputError(Exception):
    """Bad input from the user; the message is one line that says what to do."""

    def __init__(self, message: str):
        # One line on stderr is the contract, so fold any newline a caller let in.
        super().__init__(" ".join(str(message).split()))


class DataError(UserInputError):
    """A data source cannot deliver a usable price series."""


class CheckpointError(UserInputError):
    """A checkpoint file is missing, corrupt, unsafe or does not fit the model."""


class TrainingDiverged(UserInputError):
    """Training produced a non-finite loss or forecast: the options or the data do not fit.

    A subclass of :class:`UserInputError` because the cure is the user's (a smaller
    learning rate, cleaner data) and the same run would diverge again.
    """


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, for quoting it inside a one-line error.

    ``KeyError`` quotes its message (``str(KeyError("x")) == "'x'"``); the quotes are
    dropped. An exception without a message is named by its type.
    """
    text = str(exc).strip().strip("'\"")
    return text.splitlines()[0] if text else type(exc).__name__
