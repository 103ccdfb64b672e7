"""Training checkpoints: everything needed to continue a run exactly where it stopped.

A checkpoint holds model, optimizer, scheduler and grad-scaler state, the position in the run
(``epoch``: the epoch the run continues in; ``step_in_epoch``: optimizer steps already done in it;
``global_step``) and every rank's random-number states of python, numpy and torch (CPU and CUDA).
Everything is stored as tensors and plain Python types so that it loads with
``torch.load(weights_only=True)``: nothing pickled is executed on load.

Files are ``checkpoints/ckpt_e{epoch}_s{step}.pt`` inside the run folder, written atomically; only
the newest ``keep_last`` are kept. (The final model is a separate ``final.safetensors``.)

Each checkpoint carries ``checksum``: the SHA-256 of everything else it holds (:func:`state_digest`),
verified on load, so that a file whose bytes changed after it was written (flipped bits, a bad copy)
is refused like a truncated one rather than trained on. Checkpoints written before the checksum
existed load without the check.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lt_faceparse.atomic import atomic_torch_save
from lt_faceparse.errors import DataError

CHECKPOINT_DIR = "checkpoints"
_NAME = re.compile(r"^ckpt_e(\d+)_s(\d+)\.pt$")


def checkpoint_name(global_step: int, epoch: int) -> str:
    """File name of the checkpoint taken after ``global_step`` optimizer steps, continuing in ``epoch``."""
    return f"ckpt_e{epoch:04d}_s{global_step:09d}.pt"


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """Training checkpoints of a run, oldest first (ordered by global step)."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    if not folder.is_dir():
        return []
    found = [(int(m.group(2)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def save_checkpoint(run_dir: str | Path, state: dict[str, Any], *, keep_last: int) -> Path:
    """Write ``state`` atomically as the newest checkpoint, then delete all but the newest ``keep_last``."""
    path = Path(run_dir) / CHECKPOINT_DIR / checkpoint_name(state["global_step"], state["epoch"])
    atomic_torch_save({**state, CHECKSUM_KEY: state_digest(state)}, path)
    for old in list_checkpoints(run_dir)[:-keep_last]:
        old.unlink(missing_ok=True)
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a training checkpoint without unpickling code; errors name the file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such checkpoint")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # truncated file, foreign pickle, ...
        raise DataError(path, f"not a readable training checkpoint ({err})") from None
    if not isinstance(state, dict):
        raise DataError(path, f"not a training checkpoint (holds a {type(state).__name__})")
    missing = {"model", "optimizer", "scheduler", "epoch", "step_in_epoch", "global_step", "rng"} - set(state)
    if missing:
        raise DataError(path, f"training checkpoint lacks {sorted(missing)}")
    stored = state.pop(CHECKSUM_KEY, None)
    if stored is not None and stored != state_digest(state):
        raise DataError(path, "corrupt training checkpoint (its checksum does not match its content)")
    return state


CHECKSUM_KEY = "checksum"


def state_digest(state: Any) -> str:
    """SHA-256 over a checkpoint state (nested dicts, lists, tensors, plain values) in a fixed order:
    every tensor's dtype, shape and bytes, every other value's ``repr``."""
    digest = hashlib.sha256()
    _feed(digest, state)
    return digest.hexdigest()


def _feed(digest: Any, value: Any) -> None:
    if isinstance(value, torch.Tensor):
        tensor = value.detach().cpu().contiguous().reshape(-1)
        digest.update(f"T{tensor.dtype}{tuple(value.shape)}".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes())
    elif isinstance(value, dict):
        digest.update(f"D{len(value)}".encode())
        for key in sorted(value, key=repr):
            digest.update(repr(key).encode())
            _feed(digest, value[key])
    elif isinstance(value, (list, tuple)):
        digest.update(f"L{len(value)}".encode())
        for item in value:
            _feed(digest, item)
    else:
        digest.update(f"V{value!r}".encode())


def scheduler_state(scheduler: torch.optim.lr_scheduler.LRScheduler) -> dict[str, Any]:
    """Scheduler state with its ``Counter`` of milestones made a plain dict."""
    state = scheduler.state_dict()
    if isinstance(state.get("milestones"), Counter):
        state["milestones"] = {int(k): int(v) for k, v in state["milestones"].items()}
    return state


def restore_scheduler(scheduler: torch.optim.lr_scheduler.LRScheduler, state: dict[str, Any]) -> None:
    state = dict(state)
    if isinstance(state.get("milestones"), dict):
        state["milestones"] = Counter({int(k): int(v) for k, v in state["milestones"].items()})
    scheduler.load_state_dict(state)


def capture_rng() -> dict[str, Any]:
    """Random-number states of python, numpy, torch CPU and every CUDA device, as tensors."""
    version, mt, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": {"version": int(version), "mt": torch.tensor(mt, dtype=torch.int64),
                   "gauss": None if gauss is None else float(gauss)},
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng`."""
    py = state["python"]
    random.setstate((py["version"], tuple(int(x) for x in py["mt"].tolist()), py["gauss"]))
    npy = state["numpy"]
    np.random.set_state((npy["kind"], npy["keys"].numpy().astype(np.uint32), npy["pos"],
                         npy["has_gauss"], npy["cached"]))
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
