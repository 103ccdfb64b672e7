"""Independent sweep settings in parallel worker processes, one torch thread each.

Small models on a CPU gain little from a second intra-op thread, but two settings trained side by
side use both cores fully: on the 2-core benchmark machine two one-thread processes finish two
SegFace-MobileNet trainings in about 1.15x the time of one (measured: 37 against 32 ms per image
at 64 px). Each worker is a fresh ``spawn``ed interpreter (no fork of a process whose OpenMP pool
is already running) that runs :func:`lt_faceparse.experiments.sweep.run_setting` exactly as the
serial path does, with the thread count set before anything else, so a setting's weights do not
depend on where it ran (tested: the same SHA-256 serially and in a worker).

Jobs are handed out in the order given, so put the longest first (longest-processing-time
scheduling keeps the last worker from finishing alone). A job may have *followers*: settings that
need its finished run (a second stage started from its checkpoint) and run right after it, in the
same worker, each prepared by ``prepare(follower_run_dir, leader_run_dir)`` (not None: the leader's
last checkpoint was copied, which is logged); the other workers meanwhile go on with the next jobs
instead of waiting for every job to finish. Workers never draw progress bars; the parent shows one
bar per setting and logs each finished epoch, both read from the epoch lines of each run's
``log.jsonl``, and prints each worker's log lines when its setting is done.
"""

from __future__ import annotations

import multiprocessing as mp
import sys
from concurrent.futures import FIRST_EXCEPTION, Future, ProcessPoolExecutor, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

import torch
from rich.progress import Progress

from lt_faceparse.engine.train import train
from lt_faceparse.experiments.sweep import TRAIN_ONLY, SweepSetting, plan_sweep, run_folder, run_setting
from lt_faceparse.terminal import progress_bar

R = TypeVar("R")
Job = tuple[SweepSetting, dict[str, Any]]
Prepare = Callable[[Path, Path], Any]


class _NotATerminal:
    """A stream that says it is no terminal (so rich stays quiet in a worker) and passes writes on."""

    def __init__(self, stream: Any):
        self._stream = stream

    def isatty(self) -> bool:
        return False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _init_worker(threads: int | None) -> None:
    if threads is not None:
        torch.set_num_threads(threads)
    sys.stderr = _NotATerminal(sys.stderr)
    sys.stdout = _NotATerminal(sys.stdout)


def _run_one(setting: SweepSetting, config: dict[str, Any], out_dir: str | Path, log: Callable[[str], None] | None,
             kwargs: dict[str, Any]) -> dict[str, Any]:
    """:func:`run_setting`, or for a :data:`TRAIN_ONLY` job its training (resumed, or kept when finished)."""
    if setting.axis == TRAIN_ONLY:
        train({**config, "resume": "auto"})
        return {"name": setting.name, "axis": TRAIN_ONLY, "run_dir": config["out"]}
    return run_setting(setting, config, out_dir, log=log, **kwargs)


def _run_chain(setting: SweepSetting, config: dict[str, Any], out_dir: str | Path, log: Callable[[str], None] | None,
               kwargs: dict[str, Any], followers: Sequence[Job] = (), prepare: Prepare | None = None
               ) -> list[dict[str, Any]]:
    """The job's row, then each follower's (prepared from the job's run folder, then run)."""
    rows = [_run_one(setting, config, out_dir, log, kwargs)]
    leader_dir = run_folder(setting, config, out_dir, kwargs.get("runs_dir"))
    for follower, follower_cfg in followers:
        run_dir = run_folder(follower, follower_cfg, out_dir, kwargs.get("runs_dir"))
        if prepare is not None and prepare(run_dir, leader_dir) is not None and log is not None:
            log(f"{follower.name}: first stage shared with {setting.name} (its last checkpoint copied)")
        rows.append(_run_one(follower, follower_cfg, out_dir, log, kwargs))
    return rows


def _work(setting: SweepSetting, config: dict[str, Any], out_dir: str, kwargs: dict[str, Any],
          followers: Sequence[Job] = (), prepare: Prepare | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    lines: list[str] = []
    rows = _run_chain(setting, config, out_dir, lines.append, kwargs, followers, prepare)
    return rows, lines


def _epochs_done(run_dir: Path) -> int:
    log = run_dir / "log.jsonl"
    try:
        with open(log, encoding="utf-8") as fh:
            return sum('"event": "epoch"' in line for line in fh)
    except FileNotFoundError:
        return 0


def _run_serially(jobs: Sequence[Job], out_dir: Path, threads: int | None, log: Callable[[str], None] | None,
                  kwargs: dict[str, Any], chains: dict[str, Sequence[Job]], prepare: Prepare | None
                  ) -> list[dict[str, Any]]:
    """The jobs (each followed by its followers) one after the other in this process."""
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    rows = []
    try:
        with progress_bar("settings", len(jobs)) as bar:
            for setting, config in jobs:
                bar.describe(setting.name)
                rows += _run_chain(setting, config, out_dir, log, kwargs, chains.get(setting.name, ()), prepare)
                bar.advance()
    finally:
        torch.set_num_threads(previous)
    return rows


def run_settings(jobs: Sequence[Job], out_dir: str | Path, *, workers: int = 1,
                 threads: int | None = 1, runs_dir: str | Path | None = None,
                 log: Callable[[str], None] | None = None, poll_s: float = 2.0,
                 followers: dict[str, Sequence[Job]] | None = None, prepare: Prepare | None = None,
                 **setting_kwargs: Any) -> list[dict[str, Any]]:
    """Run :func:`run_setting` for every (setting, config) of ``jobs`` (a :data:`TRAIN_ONLY` job: its
    training only), each job's ``followers`` (by setting name) right after it in the same worker
    (see the module docstring); return the rows in job order, each job's followers after it.

    ``workers`` <= 1 runs them one after the other in this process, more starts that many worker
    processes; either way each setting trains with ``threads`` torch threads (None: leave torch's
    setting alone). The thread count changes the order of floating-point reductions, so the same
    count gives the same weights serially and in a worker. ``setting_kwargs``
    (split, speed_runs, n_resamples, reuse, ...) go to every :func:`run_setting` call. The first
    failure cancels the settings not yet started and is raised once the running ones stop.
    """
    out_dir = Path(out_dir)
    kwargs = dict(setting_kwargs, runs_dir=None if runs_dir is None else str(runs_dir))
    chains = dict(followers or {})
    if workers <= 1 or len(jobs) <= 1:
        return _run_serially(jobs, out_dir, threads, log, kwargs, chains, prepare)

    context = mp.get_context("spawn")  # a spawned child gets the parent's sys.path and environment
    rows: list[list[dict[str, Any]] | None] = [None] * len(jobs)
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=context,
                             initializer=_init_worker, initargs=(threads,)) as pool, \
            Progress(disable=not sys.stderr.isatty(), transient=True) as progress:
        futures: dict[Future, int] = {}
        tasks, totals = [], []
        for i, (setting, config) in enumerate(jobs):
            futures[pool.submit(_work, setting, config, str(out_dir), kwargs, chains.get(setting.name, ()),
                                prepare)] = i
            totals.append(max(int(config["optim"]["epochs"]), 1))
            tasks.append(progress.add_task(setting.name, total=totals[i]))
        pending = set(futures)
        seen = [0] * len(jobs)
        failure: BaseException | None = None
        while pending:
            done, pending = wait(pending, timeout=poll_s, return_when=FIRST_EXCEPTION)
            for future in done:
                i = futures[future]
                try:
                    row, lines = future.result()
                except BaseException as err:  # noqa: BLE001 -- re-raised below, after the pool stops
                    failure = failure or err
                    continue
                rows[i] = row
                progress.update(tasks[i], completed=totals[i])
                for line in lines:
                    if log:
                        log(line)
            if failure is not None:
                for future in pending:
                    future.cancel()
                break
            for future in pending:
                i = futures[future]
                setting, config = jobs[i]
                epochs = _epochs_done(run_folder(setting, config, out_dir, runs_dir))
                if epochs > seen[i] and log:
                    log(f"{setting.name}: epoch {epochs}/{totals[i]} done")
                seen[i] = max(seen[i], epochs)
                progress.update(tasks[i], completed=epochs)
        if failure is not None:
            pool.shutdown(wait=True, cancel_futures=True)
            raise failure
    return [row for chain in rows if chain is not None for row in chain]


def run_calls(calls: Sequence[Callable[[], R]], workers: int) -> list[R]:
    """Every call, ``workers`` at a time in threads of this process; results in call order. For scoring
    several weight files or options: torch releases the GIL in its kernels, so two one-thread scorings use
    two cores (1.8x on the 2-core machine), and each gives the numbers it gives alone (same thread setting;
    tested). Progress bars must be off in the calls (one live display at a time)."""
    if workers <= 1 or len(calls) <= 1:
        return [call() for call in calls]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda call: call(), calls))


def run_sweep(config: dict[str, Any], out_dir: str | Path, *, resolutions: Sequence[int] = (),
              backbones: Sequence[str] = (), remedies: Sequence[str] = (), split: str = "test", speed_runs: int = 10,
              n_resamples: int = 1000, runs_dir: str | Path | None = None,
              log: Callable[[str], None] | None = None, tau_norm: float | None = None) -> list[dict[str, Any]]:
    """Run every setting of :func:`plan_sweep` one after the other (settings this machine finished
    are skipped; each is timed right after its training); return the rows (``tau_norm``: post-hoc
    τ-normalisation of every scored model)."""
    plan = plan_sweep(config, resolutions=resolutions, backbones=backbones, remedies=remedies)
    return run_settings(plan, out_dir, workers=1, threads=None, runs_dir=runs_dir, log=log, split=split,
                        speed_runs=speed_runs, n_resamples=n_resamples, tau_norm=tau_norm)
