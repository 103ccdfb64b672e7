"""Errors that name the offending file and the problem."""

from __future__ import annotations

from pathlib import Path


class LTFaceParseError(Exception):
    """Base class of the library's own errors."""


class DataError(LTFaceParseError, ValueError):
    """Bad or missing input data. ``str(err)`` is ``"<path>: <problem>"``."""

    def __init__(self, path: str | Path | None, problem: str):
        self.path = None if path is None else str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path else problem)


class IncomparableError(LTFaceParseError, ValueError):
    """Two results were asked to be compared although their protocols differ."""


class SplitNotFound(DataError):
    """The dataset tree has no such split at all (e.g. a LaPa tree without ``test/``). Only this
    documented absence may be tolerated by a caller; a split that exists but cannot be read raises
    :class:`DataError`."""
