"""Preemption: SIGTERM / SIGUSR1 make a training run checkpoint the current step and stop.

Cluster schedulers announce the end of a job with a signal: SLURM sends SIGTERM when it cancels,
preempts or requeues a job (and ``--signal=USR1@T`` sends SIGUSR1 ``T`` seconds before the time
limit); Kubernetes sends SIGTERM to a pod it evicts; torchrun's agent forwards the signals it
handles to its workers. :class:`PreemptionGuard` turns these signals into a flag; the training
loop asks :meth:`PreemptionGuard.stop_at_this_step` at every optimizer-step boundary, writes a
checkpoint of that step and raises :class:`Preempted`. The process then exits with
``128 + signal number`` (143 for SIGTERM, 138 for SIGUSR1), the code a process killed by that
signal would have: schedulers and launchers read it as "terminated", and the run resumes from the
checkpoint with ``resume: auto``.

Ranks must stop at the same step: one rank may get the signal before another, or alone. The flag
is agreed with an all-reduce (MAX of the signal numbers) over a gloo group made once for this
purpose, whatever the training backend: the flag is a CPU tensor, so agreeing never waits for the
GPU (no host synchronisation of the CUDA stream). The all-reduce of step ``k`` is asynchronous and
read at the boundary of step ``k + 1``: ranks stop one step after the first rank saw the signal,
all at the same step, and the step loop never blocks on it. At an epoch end
(:meth:`stop_now`) the agreement is synchronous.

Schedulers signal every process of a job, data-loader workers included. A worker that died would
make the training process fail (the data loader raises on a dead worker) before it checkpoints, so
workers forked while the guard is on (they inherit its handler; ``data.build.make_loader``'s
worker set-up re-installs it over torch's own SIGTERM handler) ignore these signals as long as
the training runs; the training process shuts them down when it stops. Once the guard is left, an
inherited handler re-raises the signal with the handler that was there before (the default:
terminate), so that, e.g., ``multiprocessing``'s clean-up at exit can still stop a worker.
(Workers started with the ``spawn`` / ``forkserver`` methods do not inherit handlers and die on
the signal.)
"""

from __future__ import annotations

import mmap
import os
import signal
import threading
from types import FrameType
from typing import Any

import torch
import torch.distributed as dist

from lt_faceparse.errors import LTFaceParseError

PREEMPTION_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGUSR1)


def exit_code_for(signum: int) -> int:
    """Exit status of a run stopped by ``signum``: ``128 + signum``, as if the signal had killed it."""
    return 128 + int(signum)


class Preempted(LTFaceParseError):
    """The run stopped on a preemption signal after checkpointing; rerun it with ``resume: auto``.

    ``signal``: the agreed signal; ``exit_code``: ``128 + signal``; ``checkpoint``: the file written.
    """

    def __init__(self, message: str, *, signum: int, checkpoint: str):
        super().__init__(message)
        self.signal = signal.Signals(signum)
        self.exit_code = exit_code_for(signum)
        self.checkpoint = checkpoint


class PreemptionGuard:
    """Catches preemption signals while a run trains; every rank learns of them at the same step.

    A context manager: entering it installs handlers for ``signals`` (main thread only; elsewhere
    signals keep their handlers and only :meth:`request` stops the run) and, in a process group of
    more than one rank, makes the gloo group used to agree; leaving it restores the previous
    handlers. Every rank must call :meth:`stop_at_this_step` and :meth:`stop_now` at the same
    points, in the same order (they are collectives in a group of more than one rank).
    """

    def __init__(self, signals: tuple[signal.Signals, ...] = PREEMPTION_SIGNALS):
        self.signals = tuple(signals)
        self.received: signal.Signals | None = None  # first signal seen by this rank
        self.agreed: signal.Signals | None = None  # the signal every rank stops on
        self._previous: dict[signal.Signals, Any] = {}
        self._pid = os.getpid()  # the process that entered the guard
        self._training = mmap.mmap(-1, 1)  # shared with forked children: 1 while the guard is on
        self._group: Any = None
        self._pending: tuple[Any, torch.Tensor] | None = None  # (async work, its flag) of the last step

    def __enter__(self) -> "PreemptionGuard":
        self._pid = os.getpid()
        self._training[0] = 1
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            self._group = dist.new_group(backend="gloo")  # a collective: every rank enters together
        if threading.current_thread() is threading.main_thread():
            for sig in self.signals:
                self._previous[sig] = signal.signal(sig, self._on_signal)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._training[0] = 0
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
        if exc_type is None and self._pending is not None:
            self._pending[0].wait()  # issued by every rank; completes
        self._pending = None
        if exc_type is None and self._group is not None:
            dist.destroy_process_group(self._group)
        self._group = None

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if os.getpid() == self._pid:
            self.request(signum)
            return
        # a process forked while the guard was on, which inherited this handler
        if self._training[0] and torch.utils.data.get_worker_info() is not None:
            return  # a data-loader worker of the running training: keep serving until shut down
        previous = self._previous.get(signal.Signals(signum))
        signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    def request(self, signum: int = signal.SIGTERM) -> None:
        """Ask this rank to stop (what the signal handler does); the first request counts."""
        if self.received is None:
            self.received = signal.Signals(signum)

    def _local_flag(self) -> torch.Tensor:
        return torch.tensor([int(self.received or 0)], dtype=torch.int32)

    def _take_pending(self) -> bool:
        """Wait for the previous step's all-reduce (issued by every rank) and adopt its verdict."""
        if self._pending is None:
            return False
        work, flag = self._pending
        self._pending = None
        work.wait()
        if int(flag.item()):  # a CPU tensor: no device synchronisation
            self.agreed = signal.Signals(int(flag.item()))
        return self.agreed is not None

    def _settled(self) -> bool:
        """Whether the answer is known without a new agreement: already agreed, a single process (its own
        signal decides), or the previous step's all-reduce carried a signal."""
        if self.agreed is not None:
            return True
        if self._group is None:
            self.agreed = self.received
            return True
        return self._take_pending()

    def stop_at_this_step(self) -> bool:
        """Whether every rank stops after the optimizer step that just ended (call at every step)."""
        if self._settled():
            return self.agreed is not None
        flag = self._local_flag()
        self._pending = (dist.all_reduce(flag, op=dist.ReduceOp.MAX, group=self._group, async_op=True), flag)
        return False

    def stop_now(self) -> bool:
        """Whether every rank stops here (a synchronous agreement, for epoch ends)."""
        if self._settled():
            return self.agreed is not None
        flag = self._local_flag()
        dist.all_reduce(flag, op=dist.ReduceOp.MAX, group=self._group)
        if int(flag.item()):
            self.agreed = signal.Signals(int(flag.item()))
        return self.agreed is not None
