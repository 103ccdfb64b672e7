"""Where a training run starts: fresh, from its newest complete checkpoint, or not at all (finished).

``resume`` (config key) decides:

- ``false``: start fresh; a run folder that already holds checkpoints is refused.
- ``true``: continue from the newest complete checkpoint, or start fresh when there is none.
- ``"auto"``: as ``true``, and a run that already finished (final weights written and ``end``
  logged after its last start) is left as it is. This is the mode for elastic and preemptible
  jobs: the first start of a run begins fresh; a restart of the same run (torchrun
  ``--max-restarts``, a SLURM requeue, the same command again) continues where it stopped.

Either resuming mode refuses a run folder made by another config, naming the folder and the keys
that differ (the same comparison as a plain resume: ``changed_keys``); the reference is the
checkpoint's config, or, before the first checkpoint, the folder's ``config.yaml`` (unless that
start failed with an error, logged as ``failed``: a fixed config then starts the run over).

"Complete": checkpoints are written atomically, but a file can still be truncated (a filesystem
without atomic rename, a partial copy). The newest checkpoint that loads is used; newer ones
that do not are reported (with a warning) and left in place, to be overwritten or pruned as the
run goes on. Temporary files left by a write that was killed are deleted. Global rank 0 inspects
the folder and decides; every rank then reads the chosen checkpoint itself, which requires the run
folder to be on a filesystem that every node sees.
"""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import yaml

from lt_faceparse.engine.checkpoint import CHECKPOINT_DIR, list_checkpoints, load_checkpoint
from lt_faceparse.engine.config import parse_yaml
from lt_faceparse.engine.distributed import DistInfo, all_gather_objects, broadcast_object
from lt_faceparse.engine.preemption import Preempted
from lt_faceparse.engine.progress import JsonlLog
from lt_faceparse.errors import DataError, LTFaceParseError

_LOG = logging.getLogger(__name__)
ChangedKeys = Callable[[dict[str, Any], dict[str, Any]], list[str]]  # (saved, current) -> differing dotted keys


class ResumeRefused(LTFaceParseError):
    """The run folder cannot be continued by this config (another run's folder, unreadable checkpoints)."""


@dataclass(frozen=True)
class ResumePlan:
    """Rank 0's decision. ``checkpoint``: the file to continue from (None: start fresh);
    ``finished``: the run already ended (``resume: auto`` only); ``unreadable``: newer checkpoints
    skipped, as ``(file name, reason)``; ``removed``: temporary files of killed writes deleted."""

    checkpoint: Path | None = None
    finished: bool = False
    unreadable: tuple[tuple[str, str], ...] = ()
    removed: tuple[str, ...] = ()


def run_finished(run_dir: str | Path, final_name: str) -> bool:
    """Whether the run in ``run_dir`` ended: final weights present and an ``end`` record in
    ``log.jsonl`` after its last ``start`` (a line cut short by a kill is skipped)."""
    run_dir = Path(run_dir)
    return (run_dir / final_name).is_file() and _last_event(run_dir, ("start", "end")) == "end"


def _last_event(run_dir: Path, events: tuple[str, ...]) -> str | None:
    """The last of ``events`` in ``run_dir/log.jsonl`` (None: no log, or none of them)."""
    if not (run_dir / "log.jsonl").is_file():
        return None
    last = None
    for line in (run_dir / "log.jsonl").read_text(encoding="utf-8").splitlines():
        try:
            event = json.loads(line).get("event")
        except (json.JSONDecodeError, AttributeError):
            continue  # a line cut short by a kill
        if event in events:
            last = event
    return last


def log_failed_start(log: JsonlLog, run_dir: str | Path, err: Exception) -> None:
    """Log ``failed`` when a start that logged ``start`` raised ``err`` before the run's first
    checkpoint: its ``config.yaml`` then no longer binds a resume (a fixed config starts the run over)."""
    if not isinstance(err, Preempted) and not list_checkpoints(run_dir):
        with contextlib.suppress(OSError):  # a full disk: the error raised says so
            log.write("failed", error=f"{type(err).__name__}: {err}")


def plan_resume(run_dir: str | Path, config: dict[str, Any], *, final_name: str, changed_keys: ChangedKeys,
                may_change: Iterable[str] = ()) -> tuple[ResumePlan, dict[str, Any] | None]:
    """Rank 0: inspect ``run_dir`` and decide (see the module docstring); returns the plan and the
    loaded checkpoint state (or None). ``final_name``: the final weights' file name;
    ``changed_keys(saved, current)``: the config keys that differ and may not; ``may_change``: the
    keys that may (named in the refusal)."""
    run_dir = Path(run_dir)
    mode = config["resume"]
    found = list_checkpoints(run_dir)
    if mode is False:
        if found:
            raise ResumeRefused(f"{run_dir}: the run folder already holds checkpoints ({found[-1].name}); "
                                "resume it (--resume / resume=true, or resume=auto) or choose another out")
        return ResumePlan(), None
    removed = tuple(sorted(p.name for p in (run_dir / CHECKPOINT_DIR).glob(".ckpt_*.tmp")))
    for name in removed:
        (run_dir / CHECKPOINT_DIR / name).unlink(missing_ok=True)
        _LOG.info("%s: deleted %s, left by a checkpoint write that was killed", run_dir / CHECKPOINT_DIR, name)
    unreadable: list[tuple[str, str]] = []
    for path in reversed(found):
        try:
            state = load_checkpoint(path, map_location="cpu")
        except DataError as err:
            unreadable.append((path.name, err.problem))
            _LOG.warning("%s: skipped, %s; trying the previous checkpoint", path, err.problem)
            continue
        _refuse_other_config(run_dir, path.name, state.get("config", {}), config, changed_keys, may_change)
        finished = mode == "auto" and run_finished(run_dir, final_name)
        return ResumePlan(checkpoint=path, finished=finished, unreadable=tuple(unreadable), removed=removed), state
    if unreadable:
        raise ResumeRefused(f"{run_dir}: no checkpoint can be read ({'; '.join(f'{n}: {r}' for n, r in unreadable)}); "
                            "move them away to start this run over")
    saved = run_dir / "config.yaml"
    # started, killed before its first checkpoint (a start that failed with an error binds nothing)
    if saved.is_file() and _last_event(run_dir, ("start", "failed")) != "failed":
        try:
            saved_config = parse_yaml(saved.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as err:
            raise DataError(saved, f"not valid YAML ({err})") from None
        _refuse_other_config(run_dir, saved.name, saved_config, config, changed_keys, may_change)
    return ResumePlan(removed=removed), None


def _refuse_other_config(run_dir: Path, source: str, saved: dict[str, Any], config: dict[str, Any],
                         changed_keys: ChangedKeys, may_change: Iterable[str]) -> None:
    changed = changed_keys(saved, config)
    if changed:
        raise ResumeRefused(f"{run_dir}: this run folder holds a run with another config ({source} differs in "
                            f"{', '.join(changed)}); use another out, or delete the folder to start over "
                            f"(a resumed run may change only {', '.join(sorted(may_change))})")


def agree_on_resume(run_dir: str | Path, config: dict[str, Any], info: DistInfo, *, final_name: str,
                    changed_keys: ChangedKeys, may_change: Iterable[str] = ()) -> tuple[ResumePlan, dict[str, Any] | None]:
    """Every rank: rank 0 plans (:func:`plan_resume`), every rank gets the plan and loads the chosen
    checkpoint itself. A refusal on rank 0, or a rank that cannot read the checkpoint, raises on
    every rank (so that none waits for the others forever)."""
    plan: ResumePlan | str | None = None
    state = None
    if info.is_main:
        try:
            plan, state = plan_resume(run_dir, config, final_name=final_name, changed_keys=changed_keys,
                                      may_change=may_change)
        except LTFaceParseError as err:
            broadcast_object(str(err))
            raise
    plan = broadcast_object(plan)
    if isinstance(plan, str):
        raise ResumeRefused(plan)
    problem = None
    if plan.checkpoint is not None and not plan.finished and not info.is_main:
        try:
            state = load_checkpoint(plan.checkpoint, map_location="cpu")
        except FileNotFoundError:
            problem = (f"{plan.checkpoint}: rank {info.rank} cannot see this checkpoint, which rank 0 found; the "
                       "run folder must be on a filesystem shared by every node")
        except DataError as err:
            problem = f"rank {info.rank}: {err}"
    problems = [p for p in all_gather_objects(problem) if p]
    if problems:
        raise ResumeRefused("; ".join(problems))
    return plan, state
