"""Builders of the bad-input catalogue (test_bad_inputs.py): tiny folder datasets, a tiny weight file,
the command line in-process and in a fresh process, and a small tmpfs."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
from PIL import Image

from lt_faceparse.cli import main
from lt_faceparse.data.folder import taxonomy_for_folder
from lt_faceparse.engine.tiny import TinyParser
from lt_faceparse.weights import save_model

CLASSES = ["background", "skin", "hair", "nose"]
SIZE = 16


def folder_set(root: Path, *, per_split: int = 4, names: list[str] | None = None, seed: int = 0) -> Path:
    """A folder dataset: train/val/test, ``per_split`` random 16 x 16 RGB images each (named
    ``names`` when given) with labels in 0..3, and a 4-class ``classes.txt``."""
    rng = np.random.default_rng(seed)
    for split in ("train", "val", "test"):
        for i in range(per_split):
            stem = names[i] if names else f"{split}_{i:02d}"
            write_image(root / split / "images" / f"{stem}.png", rng.integers(0, 256, (SIZE, SIZE, 3), np.uint8))
            write_image(root / split / "labels" / f"{stem}.png", rng.integers(0, len(CLASSES), (SIZE, SIZE), np.uint8))
    (root / "classes.txt").write_text("\n".join(CLASSES) + "\n", encoding="utf-8")
    return root


def write_image(path: Path, pixels: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def truncate(path: Path, keep: float = 0.5) -> Path:
    """Cut ``path`` to ``keep`` of its bytes (a download or copy that stopped)."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def tiny_weights(path: Path, dataset_root: Path, *, seed: int = 0, fill: float | None = None) -> Path:
    """A weight file of the tiny parser for the folder dataset at ``dataset_root`` (``fill``: every
    weight set to that value, e.g. NaN)."""
    import torch

    torch.manual_seed(seed)
    model = TinyParser(num_classes=len(CLASSES), width=4)
    if fill is not None:
        with torch.no_grad():
            for p in model.parameters():
                p.fill_(fill)
    return save_model(model, path, {"model": "tiny", "model_kwargs": model.build_kwargs,
                                    "taxonomy": taxonomy_for_folder(dataset_root), "resolution": SIZE})


def run(capsys, *args: str) -> tuple[int, str]:
    """``lt-faceparse ARGS`` in this process: (exit code, stderr then stdout)."""
    capsys.readouterr()
    try:
        code = main([str(a) for a in args])
    except SystemExit as stop:  # argparse errors
        code = int(stop.code or 0)
    captured = capsys.readouterr()
    return code, captured.err + captured.out


def run_process(*args: str, timeout: float = 120, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``lt-faceparse ARGS`` in a fresh process, killed after ``timeout`` seconds (a hang fails the test)."""
    return subprocess.run([sys.executable, "-m", "lt_faceparse", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env={**os.environ, "OMP_NUM_THREADS": "1"})


def python_process(code: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


def error_line(stderr: str) -> str:
    """The one error line of a failed command (asserting there is exactly one, and no traceback)."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if ": error: " in line]
    assert "Traceback" not in stderr, stderr
    assert len(errors) == 1, stderr
    return errors[0]


@contextlib.contextmanager
def small_tmpfs(folder: Path, size: str = "2m") -> Iterator[Path]:
    """A ``size`` tmpfs mounted at ``folder`` (root with ``mount`` only; the test is skipped elsewhere)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("a real full disk needs root and mount (the injected ENOSPC case covers it elsewhere)")
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip()})")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill_disk(folder: Path) -> None:
    """Write zeros into ``folder`` until its filesystem is full."""
    with open(folder / "filler.bin", "wb") as fh, contextlib.suppress(OSError):
        while True:
            fh.write(b"\0" * 65536)
            fh.flush()
