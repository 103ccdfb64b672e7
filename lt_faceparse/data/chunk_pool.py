"""Run one function over chunks of work in worker processes, results in chunk order.

A worker's error ends the whole map at once, as an error of the caller's process: a
:class:`~lt_faceparse.errors.DataError` is sent back as its path and problem (whether or not the
exception class itself survives pickling), any other exception as itself when it survives pickling
and as its traceback text otherwise; a worker that dies (killed, out of memory) ends the map with
an error too. No outcome leaves the caller waiting on a result that never comes.
"""

from __future__ import annotations

import multiprocessing as mp
import pickle
import sys
import traceback
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence, TypeVar

from lt_faceparse.errors import DataError, LTFaceParseError

C = TypeVar("C")
R = TypeVar("R")


@dataclass(frozen=True)
class _Failure:
    """What a worker sends back instead of a result."""

    data_error: type | None = None  # the DataError class, rebuilt from (path, problem)
    path: str | None = None
    problem: str = ""
    error: BaseException | None = None  # any other exception that survives pickling
    text: str = ""  # the traceback of one that does not

    def reraise(self) -> None:
        if self.data_error is not None:
            raise self.data_error(self.path, self.problem)
        if self.error is not None:
            raise self.error
        raise LTFaceParseError(f"a worker process failed:\n{self.text}")


def _run_guarded(work: Callable[[Any], Any], chunk: Any) -> Any:
    try:
        return work(chunk)
    except DataError as err:
        return _Failure(data_error=type(err), path=err.path, problem=err.problem)
    except Exception as err:  # noqa: BLE001 (any error goes back to the caller)
        try:
            pickle.loads(pickle.dumps(err))
        except Exception:  # noqa: BLE001 (an exception that cannot travel as itself)
            return _Failure(text="".join(traceback.format_exception(err)))
        return _Failure(error=err)


def _mp_context() -> mp.context.BaseContext:
    return mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")


def map_chunks(work: Callable[[C], R], chunks: Sequence[C], num_workers: int, *,
               initializer: Callable[..., None] | None = None, initargs: tuple = (),
               while_running: Callable[[], None] | None = None) -> Iterator[R]:
    """Yield ``work(chunk)`` for every chunk, in order; ``num_workers`` processes (0: this process).

    ``initializer(*initargs)`` runs once in each worker (in this process too when there are none).
    ``while_running`` is called once in this process after the workers have started, to do this
    process's own work (imports, say) while they compute.
    """
    if num_workers <= 0 or len(chunks) < 2:
        if initializer is not None:
            initializer(*initargs)
        if while_running is not None:
            while_running()
        for chunk in chunks:
            yield work(chunk)
        return
    pool = ProcessPoolExecutor(max_workers=min(num_workers, len(chunks)), mp_context=_mp_context(),
                               initializer=initializer, initargs=initargs)
    try:
        futures = [pool.submit(_run_guarded, work, chunk) for chunk in chunks]
        if while_running is not None:
            while_running()
        for future in futures:
            try:
                outcome = future.result()
            except BrokenProcessPool:
                raise LTFaceParseError("a worker process ended without a result (killed, or out of memory?)") \
                    from None
            if isinstance(outcome, _Failure):
                outcome.reraise()
            yield outcome
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def split_even(items: Sequence[C], num_chunks: int) -> list[Sequence[C]]:
    """``items`` cut into at most ``num_chunks`` consecutive, non-empty runs of near-equal length."""
    n = len(items)
    k = max(1, min(num_chunks, n))
    return [items[i * n // k:(i + 1) * n // k] for i in range(k)] if n else []


def chunk_count(num_items: int, num_workers: int, *, per_worker: int = 4, max_items: int = 8) -> int:
    """How many chunks to cut ``num_items`` into: at least ``per_worker`` per worker, none longer than
    ``max_items``, and a multiple of the workers, so that the last chunks end together (load
    balance: a worker left alone with a chunk of 16 CelebAMask-HQ images idles the other core for
    about 0.2 s); with fewer items, one each."""
    if num_items == 0:
        return 0
    workers = max(num_workers, 1)
    count = max(per_worker * workers, -(-num_items // max_items))
    return min(num_items, -(-count // workers) * workers)
