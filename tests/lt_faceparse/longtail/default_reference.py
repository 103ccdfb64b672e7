"""Reference runs for "the default ``longtail`` section trains bit for bit as before remedies existed".

``python default_reference.py OUT.json`` trains each model below for a few deterministic steps and
writes a digest of its final weights (SHA-256 of every tensor's bytes, sorted by name). The
committed ``default_reference.json`` holds one entry per machine: the first was written with the
library as it was before the long-tail remedies (commit in the entry) on a machine whose CPU instruction
set was not noted; the ``AVX2`` entry with 9204aca on an AVX2 machine.
``test_longtail_training.py`` reruns the same function with the current code and
compares with the entry of this torch and CPU capability (``torch.backends.cpu.get_cpu_capability()``).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "engine"))

# model -> (registry name, constructor kwargs, input side)
MODELS = {
    "tiny": ("tiny", {"width": 8}, 16),
    "segface": ("segface", {"backbone": "mobilenet", "fusion": True, "pretrained": False, "dim": 32}, 32),
    "bisenet": ("bisenet", {}, 32),
}


def reference_weights(model: str, out: Path) -> dict[str, torch.Tensor]:
    """Final weights of a 4-step deterministic run (2 epochs x 2 steps of 8 images) on MemoryFaces."""
    from engine_testdata import MemoryFaces
    from safetensors.torch import load_file

    from lt_faceparse.engine.config import DEFAULTS, merge_dicts, validate_config
    from lt_faceparse.engine.train import train

    name, kwargs, size = MODELS[model]
    config = merge_dicts(DEFAULTS, {
        "model": {"name": name, "kwargs": kwargs},
        "data": {"dataset": "memory", "root": "unused", "resolution": size, "num_workers": 0, "val_split": None},
        "optim": {"lr": 1e-3, "epochs": 2, "milestones": [1], "gamma": 0.5},
        "batch": {"global": 8},
        "device": "cpu",
        "deterministic": True,
        "find_unused_parameters": False,
        "log_every": 1,
        "out": str(out),
    })
    validate_config(config)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run = train(config, train_dataset=MemoryFaces(16, size=size, seed=3, used=7))
    finally:
        torch.set_num_threads(threads)
    return load_file(str(run / "final.safetensors"))


def digest(weights: dict[str, torch.Tensor]) -> dict:
    """SHA-256 over (name, dtype, shape, bytes) of every tensor in name order, plus readable checks."""
    h = hashlib.sha256()
    for key in sorted(weights):
        t = weights[key].contiguous()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.numpy().tobytes())
    floats = [weights[k].double().sum().item() for k in sorted(weights) if weights[k].is_floating_point()]
    return {"sha256": h.hexdigest(), "num_tensors": len(weights), "float_sum": float(np.sum(floats))}


def main(out_json: str) -> None:
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                            cwd=Path(__import__("lt_faceparse").__file__).parent).stdout.strip()
    result = {"library_commit": commit, "torch": torch.__version__,
              "cpu_capability": torch.backends.cpu.get_cpu_capability(), "models": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for model in MODELS:
            result["models"][model] = digest(reference_weights(model, Path(tmp) / model))
    Path(out_json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
