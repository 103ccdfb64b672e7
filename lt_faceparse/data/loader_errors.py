"""A DataLoader whose worker processes' errors of this library reach the caller as themselves.

torch re-raises an error from a loader worker as ``RuntimeError("Caught DataError in DataLoader
worker process 0. Original Traceback ...")`` (60 lines) when the error's class cannot be built from
that text alone, as :class:`~lt_faceparse.errors.DataError` cannot. With 0 workers the same bad
image gives the one-line ``DataError``; :class:`WorkerErrorLoader` gives that one line with any
number of workers (the CLI prints it and exits 2).
"""

from __future__ import annotations

import re
from typing import Any, Iterator

from torch.utils.data import DataLoader

from lt_faceparse.errors import DataError, LTFaceParseError

_CAUGHT = re.compile(r"^Caught (\w+) in DataLoader worker process \d+")


def unwrap_worker_error(err: BaseException) -> LTFaceParseError | None:
    """The library error a loader worker raised, rebuilt from torch's wrapped report ``err``; None
    when ``err`` is not such a report. The rebuilt error is a :class:`DataError` (path None) whose
    text is the worker's one-line message."""
    text = str(err)
    caught = _CAUGHT.match(text)
    if caught is None:
        return None
    name = caught.group(1)
    if not any(cls.__name__ == name for cls in _library_error_classes()):
        return None
    last = text.rstrip("\n").rsplit("\n", 1)[-1]
    _, sep, message = last.partition(f"{name}: ")
    return DataError(None, message.strip() if sep else last.strip())


def _library_error_classes() -> list[type[LTFaceParseError]]:
    found, todo = [], [LTFaceParseError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


class WorkerErrorLoader(DataLoader):
    """``torch.utils.data.DataLoader`` that re-raises a worker's library error as one line (see the module doc)."""

    def __iter__(self) -> Iterator[Any]:
        batches = super().__iter__()
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                return
            except Exception as err:
                original = unwrap_worker_error(err)
                if original is None:
                    raise
                raise original from None
            yield batch
