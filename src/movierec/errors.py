"""Errors a user can cause and fix: the command line and the service turn them
into a clear message (exit code 2 or a 4xx), never a traceback."""

from __future__ import annotations

from pathlib import Path


class MovierecError(Exception):
    """Base class for problems caused by input, not by a bug."""


class DataError(MovierecError):
    """A data file is missing or malformed; names the file and, if known, the line."""

    def __init__(self, message: str, path: str | Path | None = None, line: int | None = None):
        self.path = str(path) if path is not None else None
        self.line = line
        where = ""
        if self.path is not None:
            where = self.path + (f", line {line}" if line is not None else "") + ": "
        super().__init__(where + message)


class UnknownIdError(MovierecError, KeyError):
    """A user or movie id that the model or data set does not know."""

    def __init__(self, kind: str, raw_id: object):
        self.kind = kind
        self.raw_id = raw_id
        super().__init__(f"unknown {kind} id {raw_id!r}")

    def with_hint(self, hint: str) -> UnknownIdError:
        """The same error with a sentence on how to pick a valid id."""
        self.args = (f"{self.args[0]}; {hint}",)
        return self

    def __str__(self) -> str:  # KeyError would quote the message again
        return self.args[0]


class ModelError(MovierecError):
    """A saved model directory is missing, incomplete or incompatible."""
