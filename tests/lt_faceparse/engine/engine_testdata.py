"""Helpers of the engine tests: a small in-memory dataset, test configs, and a script entry point
(``python engine_testdata.py train|eval JSON`` or ``script PATH ARGS``) for runs in subprocesses and under torchrun."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from lt_faceparse.data.sample import Sample
from lt_faceparse.engine.checkpoint import list_checkpoints, load_checkpoint
from lt_faceparse.engine.config import DEFAULTS, merge_dicts, validate_config
from lt_faceparse.engine.tiny import TinyParser
from lt_faceparse.taxonomy import get_taxonomy

HERE = Path(__file__).resolve().parent


class MemoryFaces(Dataset):
    """``n`` random ``size`` x ``size`` images (drawn from ``seed``); the label of a pixel is a fixed
    function of its colour, the same for every seed (argmax of a linear map over the first ``used``
    classes), so a model can learn it."""

    dataset_name = "memory"

    def __init__(self, n: int, size: int = 16, *, split: str = "train", seed: int = 0, used: int = 5):
        self.taxonomy = get_taxonomy("celebamask-hq")
        self.split = split
        self.merge = None
        self.resolution = size
        self.names = [f"{split}_{i:03d}" for i in range(n)]
        self.images = torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))
        mixing = torch.randn(used, 3, generator=torch.Generator().manual_seed(1234))  # same rule for every split
        self.labels = torch.einsum("kc,nchw->nkhw", mixing, self.images).argmax(1)  # n x H x W in 0..used-1

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, index: int) -> Sample:
        return Sample(image=self.images[index], label=self.labels[index], name=self.names[index],
                      orig_size=tuple(self.labels.shape[1:]), index=index, taxonomy=self.taxonomy.name)

    def read_label(self, index: int) -> np.ndarray:
        return self.labels[index].numpy().astype(np.uint8)


def tiny_config(out: str | Path, **sections) -> dict:
    """A validated config for TinyParser on MemoryFaces; ``sections`` are merged over the defaults."""
    base = {
        "model": {"name": "tiny", "kwargs": {"width": 8}},
        "data": {"dataset": "memory", "root": "unused", "resolution": 16, "num_workers": 0, "val_split": None},
        "optim": {"lr": 1e-2, "epochs": 2, "milestones": [1], "gamma": 0.5},
        "batch": {"global": 8},
        "device": "cpu",
        "deterministic": False,
        "log_every": 1,
        "out": str(out),
    }
    config = merge_dicts(merge_dicts(DEFAULTS, base), sections)
    validate_config(config)
    return config


def cut_in_place(run: Path, step: int) -> None:
    """Make the finished ``run`` look killed after ``step`` steps (later checkpoints and the final weights removed)."""
    for path in list_checkpoints(run):
        if load_checkpoint(path)["global_step"] > step:
            path.unlink()
    (run / "final.safetensors").unlink()


def cut_copy(whole: Path, folder: Path, keep_until_step: int) -> Path:
    """A copy of the finished run ``whole`` at ``folder``, as a run killed after ``keep_until_step`` steps."""
    shutil.copytree(whole, folder)
    cut_in_place(folder, keep_until_step)
    return folder


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun_command(nproc: int, *args: str, launcher: tuple[str, ...] | None = None) -> list[str]:
    """This file run as a script by ``nproc`` torchrun workers rendezvousing on 127.0.0.1
    (``launcher``: torchrun options replacing the single-node static rendezvous)."""
    if launcher is None:
        launcher = ("--nnodes=1", "--master_addr=127.0.0.1", f"--master_port={free_port()}")
    return [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}", *launcher,
            str(HERE / "engine_testdata.py"), *args]


class TinyWithUnused(TinyParser):
    """TinyParser plus a layer that never runs (like torchvision Swin's final norm in SegFace):
    DDP must tolerate parameters without gradients."""

    def __init__(self, num_classes: int = 19, width: int = 8):
        super().__init__(num_classes, width)
        self.unused = torch.nn.Linear(2, 2)


class TinyNaNLoss(TinyParser):
    """TinyParser whose loss is NaN from its ``nan_at``-th call on (``once``: at that call only)."""

    def __init__(self, num_classes: int = 19, width: int = 8, nan_at: int = 6, once: bool = False):
        super().__init__(num_classes, width)
        self.build_kwargs.update(nan_at=nan_at, once=once)
        self.calls = 0

    def loss(self, logits, target):
        self.calls += 1
        loss = super().loss(logits, target)
        at, once = self.build_kwargs["nan_at"], self.build_kwargs["once"]
        return loss * float("nan") if (self.calls == at if once else self.calls >= at) else loss


class TinySignalling(TinyParser):
    """TinyParser that, in one chosen process, sends itself a signal during its ``at``-th loss call
    and then sleeps ``delay`` seconds per call: a preemption notice arriving mid-step on one rank.

    The process and the moment come from the environment, so that the config, and thus the run, is
    the same with and without them: ``LTFP_TEST_SIGNAL="SIGNAME:RANK:AT"``, or
    ``"SIGNAME:RANK:AT:CHILDREN_AT"`` to signal its child processes (the data-loader workers) too, at
    call ``CHILDREN_AT``, as a scheduler signals every process of a job; ``LTFP_TEST_STEP_DELAY``
    seconds."""

    def __init__(self, num_classes: int = 19, width: int = 8):
        super().__init__(num_classes, width)
        self.calls = 0

    def loss(self, logits, target):
        self.calls += 1
        plan = os.environ.get("LTFP_TEST_SIGNAL")
        if plan:
            name, rank, at, *children_at = plan.split(":")
            if int(os.environ.get("RANK", "0")) == int(rank):
                if children_at and self.calls == int(children_at[0]):
                    for pid in child_pids(os.getpid()):
                        os.kill(pid, getattr(signal, name))
                if self.calls == int(at):
                    os.kill(os.getpid(), getattr(signal, name))
        time.sleep(float(os.environ.get("LTFP_TEST_STEP_DELAY", "0")))
        return super().loss(logits, target)


def child_pids(parent: int) -> list[int]:
    """Pids of the live child processes of ``parent`` (Linux /proc)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == parent:
                    pids.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue  # exited meanwhile
    return pids


def register_test_models() -> None:
    from lt_faceparse.models import register_model

    register_model("tiny_unused_test", TinyWithUnused, overwrite=True)
    register_model("tiny_signalling_test", TinySignalling, overwrite=True)
    register_model("tiny_nan_test", TinyNaNLoss, overwrite=True)


def eval_model(seed: int = 0) -> TinyParser:
    torch.manual_seed(seed)
    return TinyParser(num_classes=19, width=8).eval()


def _main(argv: list[str]) -> None:
    torch.set_num_threads(1)
    mode = argv[0]
    if mode == "script":  # scripts/train.py with this file's test models registered
        import runpy

        register_test_models()
        sys.argv = argv[1:]
        runpy.run_path(sys.argv[0], run_name="__main__")
        return
    spec = json.loads(argv[1])
    if mode == "train":
        from lt_faceparse.engine.preemption import Preempted
        from lt_faceparse.engine.train import train

        register_test_models()
        try:
            train(spec["config"], train_dataset=MemoryFaces(**spec["dataset"]))
        except Preempted as stop:
            raise SystemExit(stop.exit_code) from None
    elif mode == "eval":
        from lt_faceparse.engine.distributed import barrier, init_distributed, shutdown_distributed
        from lt_faceparse.engine.evaluate import evaluate_model
        from lt_faceparse.records import save_record

        info = init_distributed("cpu")
        record = evaluate_model(eval_model(), MemoryFaces(**spec["dataset"]), batch_size=spec["batch_size"],
                                protocol=spec["protocol"])
        if info.is_main:
            save_record(record, spec["out"])
        barrier()
        shutdown_distributed()
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    _main(sys.argv[1:])
