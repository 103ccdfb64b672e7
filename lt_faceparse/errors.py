"""Errors that name the offending file and the problem.

Every error here pickles and unpickles to an equal error (``__reduce__``), so that one raised in a
worker process (a ``multiprocessing`` pool, a DataLoader worker) reaches the parent intact.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class LTFaceParseError(Exception):
    """Base class of the library's own errors."""

    def __reduce__(self) -> tuple[Any, ...]:
        # rebuilt without calling ``__init__`` (subclasses take other arguments than the message)
        return _rebuild, (type(self), self.args, self.__dict__)


def _rebuild(cls: type[LTFaceParseError], args: tuple[Any, ...], state: dict[str, Any]) -> LTFaceParseError:
    err = cls.__new__(cls, *args)
    err.args = args
    err.__dict__.update(state)
    return err


class DataError(LTFaceParseError, ValueError):
    """Bad or missing input data. ``str(err)`` is ``"<path>: <problem>"``."""

    def __init__(self, path: str | Path | None, problem: str):
        self.path = None if path is None else str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path else problem)


class BatchIncomplete(LTFaceParseError):
    """A batch job did every item it could and reported each bad one; ``failures``: ``(item, problem)``
    of the items it could not do, ``done``: how many it did."""

    def __init__(self, message: str, *, failures: list[tuple[str, str]], done: int):
        super().__init__(message)
        self.failures = failures
        self.done = done


class IncomparableError(LTFaceParseError, ValueError):
    """Two results were asked to be compared although their protocols differ."""


class SplitNotFound(DataError):
    """The dataset tree has no such split at all (e.g. a LaPa tree without ``test/``). Only this
    documented absence may be tolerated by a caller; a split that exists but cannot be read raises
    :class:`DataError`."""


class ConfigKeyError(DataError):
    """A config key that is unknown or holds a bad value. ``str(err)`` is
    ``"config error: <key>: <problem> (from <origin>)"``; the origin is the YAML file that set the key, or
    ``command line`` for a ``key=value`` override (None: not known). ``path`` is the file, when it is one."""

    def __init__(self, key: str, problem: str, origin: str | Path | None = None):
        super().__init__(None if origin in (None, "command line") else origin, problem)
        self.key = key
        self.origin = None if origin is None else str(origin)
        where = f" (from {self.origin})" if self.origin else ""
        self.args = (f"config error: {key}: {problem}{where}",)

    def __str__(self) -> str:
        return self.args[0]
