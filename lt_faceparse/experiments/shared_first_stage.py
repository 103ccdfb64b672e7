"""Settings that share the plain main model's first stage: the decoupled remedies (cRT, LWS).

A setting whose config differs from the plain main model's only in ``longtail.retrain_classifier``
trains, up to its second stage, exactly the plain run: same config, seed and data, and the second
stage starts after the schedule from its final weights. So its run folder starts from a copy of the
plain run's last checkpoint (the one written after the last epoch), and the trainer resumes there
(``longtail.retrain_classifier`` may change on resume, :data:`~lt_faceparse.engine.run_state.RESUMABLE_CHANGES`):
precise BN, the second stage, validation and the final weights, a fraction of a run. The result is
the run trained from scratch, tensor for tensor (tested).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Callable, Sequence

from lt_faceparse.atomic import atomic_path
from lt_faceparse.engine.checkpoint import CHECKPOINT_DIR, latest_checkpoint, list_checkpoints
from lt_faceparse.engine.run_state import FINAL_WEIGHTS, changed_keys
from lt_faceparse.errors import LTFaceParseError
from lt_faceparse.experiments.parallel import Job, run_settings
from lt_faceparse.experiments.sweep import main_job


def shares_first_stage(config: dict[str, Any], first_stage: dict[str, Any]) -> bool:
    """Whether ``config`` is ``first_stage`` plus a second stage (and settings a resume may change)."""
    return (config.get("longtail") or {}).get("retrain_classifier") is not None and not changed_keys(first_stage,
                                                                                                        config)


def start_from_first_stage(run_dir: str | Path, first_stage_dir: str | Path) -> Path | None:
    """Copy the finished first stage's last checkpoint into ``run_dir`` (returned), unless ``run_dir``
    already holds checkpoints or final weights (None: it resumes or is done on its own)."""
    run_dir, first_stage_dir = Path(run_dir), Path(first_stage_dir)
    if list_checkpoints(run_dir) or (run_dir / FINAL_WEIGHTS).is_file():
        return None
    last = latest_checkpoint(first_stage_dir)
    if last is None or not (first_stage_dir / FINAL_WEIGHTS).is_file():
        raise LTFaceParseError(f"{first_stage_dir}: the first stage has not finished (no {FINAL_WEIGHTS} and last "
                               "checkpoint), so no second stage can start from it")
    target = run_dir / CHECKPOINT_DIR / last.name
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp:
        shutil.copyfile(last, tmp)
    return target


def run_with_shared_first_stage(jobs: Sequence[Job], out_dir: str | Path, *, runs_dir: str | Path | None,
                                log: Callable[[str], None], **run_kwargs: Any) -> list[dict[str, Any]]:
    """:func:`~lt_faceparse.experiments.parallel.run_settings` of ``jobs`` (rows in job order): the settings
    that share the first stage of the first ``model`` setting follow it in its worker, each started from
    its last checkpoint, while the other workers go on with the remaining jobs."""
    main, main_cfg = main_job(jobs)
    second = [job for job in jobs if job[0].model == main.model and shares_first_stage(job[1], main_cfg)]
    first = [job for job in jobs if job not in second]
    rows = run_settings(first, out_dir, runs_dir=runs_dir, log=log, followers={main.name: second},
                        prepare=start_from_first_stage, **run_kwargs)
    by_name = {row["name"]: row for row in rows}
    return [by_name[setting.name] for setting, _ in jobs]
