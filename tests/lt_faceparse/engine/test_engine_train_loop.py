"""The training loop's speed machinery: deferred host reads with the divergence guard, one loader with
persistent workers (same epochs, same augmentation, exact resume), the formulation setting."""

from __future__ import annotations


import pytest
import torch
from engine_testdata import MemoryFaces, TinyNaNLoss, cut_copy, tiny_config
from safetensors.torch import load_file

from lt_faceparse.data.sample import Sample
from lt_faceparse.engine import optim
from lt_faceparse.engine.checkpoint import list_checkpoints, load_checkpoint
from lt_faceparse.engine.config import ConfigError
from lt_faceparse.engine.progress import read_log
from lt_faceparse.engine.tiny import TinyParser
from lt_faceparse.engine.train import TrainingDiverged, train
from lt_faceparse.models import register_model


def _weights(run_dir) -> dict[str, torch.Tensor]:
    return load_file(str(run_dir / "final.safetensors"))


@pytest.fixture
def fused_on_cpu(monkeypatch):
    """Run the CUDA path's optimizer (fused AdamW, deferred reads) on the CPU, which has the kernel."""
    monkeypatch.setattr(optim, "use_fused", lambda device: True)


def test_deferred_reads_stop_a_diverged_run_at_the_next_read_with_no_checkpoint_after_it(tmp_path, fused_on_cpu):
    register_model("tiny_nan_test", TinyNaNLoss, overwrite=True)
    nan_once_at_5 = {"name": "tiny_nan_test", "kwargs": {"width": 8, "nan_at": 5, "once": True}}
    config = tiny_config(tmp_path / "run", model=nan_once_at_5,
                         optim={"epochs": 3}, log_every=3, checkpoint={"every_steps": 0, "keep_last": 5})
    with pytest.raises(TrainingDiverged) as err:
        train(config, train_dataset=MemoryFaces(32))  # 4 steps per epoch: NaN at epoch 1, step 1
    assert str(err.value).startswith(
        "loss is nan at epoch 1, step 1 of the epoch (global step 5); the update was skipped on the device, and so "
        "were the 1 later step(s) up to global step 6, when the host read the values. Last good checkpoint: ")
    assert str(err.value).endswith("ckpt_e0001_s000000004.pt")
    checkpoints = list_checkpoints(tmp_path / "run")
    assert [p.name for p in checkpoints] == ["ckpt_e0001_s000000004.pt"]
    assert all(torch.isfinite(v).all() for v in load_checkpoint(checkpoints[-1])["model"].values())
    log = read_log(tmp_path / "run" / "log.jsonl")
    assert [r["step"] for r in log if r["event"] == "step"] == [3]  # the read at step 6 found the NaN
    assert log[-1]["event"] == "diverged" and log[-1]["step"] == 5
    assert not (tmp_path / "run" / "final.safetensors").exists()


def test_deferred_reads_log_the_same_values_as_reads_every_step(tmp_path, monkeypatch):
    every = train(tiny_config(tmp_path / "every", log_every=2, optim={"epochs": 2}), train_dataset=MemoryFaces(32))
    monkeypatch.setattr(optim, "use_fused", lambda device: True)
    deferred = train(tiny_config(tmp_path / "deferred", log_every=2, optim={"epochs": 2}),
                     train_dataset=MemoryFaces(32))
    logs = [read_log(run / "log.jsonl") for run in (every, deferred)]
    for event in ("step", "epoch"):
        a, b = ([r for r in log if r["event"] == event] for log in logs)
        assert [r["step"] for r in a] == [r["step"] for r in b] == ([2, 4, 6, 8] if event == "step" else [4, 8])
        # fused AdamW and the default loop round differently; the values and the epoch means over all 4 steps agree
        assert [r["loss"] for r in b] == pytest.approx([r["loss"] for r in a], rel=1e-4)
    assert all(r["images_per_s"] > 0 for r in logs[1] if r["event"] == "step")


class _FlippedFaces(MemoryFaces):
    """MemoryFaces with a random flip and random noise per item: what a loader worker draws depends on the epoch."""

    def __getitem__(self, index: int) -> Sample:
        sample = super().__getitem__(index)
        image, label = sample.image, sample.label
        if torch.rand(()) < 0.5:
            image, label = image.flip(-1), label.flip(-1)
        image = image + 0.3 * torch.randn(image.shape)
        return Sample(image=image, label=label, name=sample.name, orig_size=sample.orig_size, index=index,
                      taxonomy=sample.taxonomy)


def test_persistent_workers_draw_the_same_augmentation_per_epoch_as_the_main_process(tmp_path):
    sections = dict(optim={"epochs": 3}, deterministic=True)
    main = train(tiny_config(tmp_path / "main", **sections), train_dataset=_FlippedFaces(16))
    workers = train(tiny_config(tmp_path / "workers", data={"num_workers": 2}, **sections),
                    train_dataset=_FlippedFaces(16))
    a, b = _weights(main), _weights(workers)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_with_persistent_workers_equals_the_uninterrupted_run(tmp_path):
    sections = dict(optim={"epochs": 3}, checkpoint={"every_steps": 1, "keep_last": 100}, deterministic=True,
                    data={"num_workers": 2})
    whole = train(tiny_config(tmp_path / "whole", **sections), train_dataset=_FlippedFaces(16))
    cut = cut_copy(whole, tmp_path / "cut", keep_until_step=3)
    assert (load_checkpoint(list_checkpoints(cut)[-1])["step_in_epoch"]) == 1  # 2 steps per epoch: mid-epoch 1
    train(tiny_config(cut, resume=True, **sections), train_dataset=_FlippedFaces(16))
    a, b = _weights(whole), _weights(cut)
    assert all(torch.equal(a[k], b[k]) for k in a)


class _Formulated(TinyParser):
    """TinyParser with a ``formulation`` setting, as SegFace has."""

    seen: list[str] = []

    def __init__(self, num_classes: int = 19, width: int = 8):
        super().__init__(num_classes, width)
        self.formulation = "auto"

    def forward(self, images):
        _Formulated.seen.append(self.formulation)
        return super().forward(images)


def test_formulation_setting_reaches_the_model_and_only_models_that_have_one(tmp_path):
    register_model("tiny_formulated_test", _Formulated, overwrite=True)
    _Formulated.seen = []
    train(tiny_config(tmp_path / "a", model={"name": "tiny_formulated_test", "kwargs": {}}, formulation="literal",
                      optim={"epochs": 1}), train_dataset=MemoryFaces(8))
    assert _Formulated.seen and set(_Formulated.seen) == {"literal"}
    with pytest.raises(ConfigError, match="formulation='gpu': model 'tiny' has only one"):
        train(tiny_config(tmp_path / "b", formulation="gpu"), train_dataset=MemoryFaces(8))


class _SeesLayout(TinyParser):
    """TinyParser recording whether its input batches arrive in channels-last memory."""

    seen: list[bool] = []

    def forward(self, images):
        _SeesLayout.seen.append(images.is_contiguous(memory_format=torch.channels_last) and images.shape[1] > 1)
        return super().forward(images)


@pytest.mark.parametrize("channels_last", [False, True])
def test_channels_last_applies_on_the_cpu_too(tmp_path, channels_last):
    register_model("tiny_layout_test", _SeesLayout, overwrite=True)
    _SeesLayout.seen = []
    train(tiny_config(tmp_path / "run", model={"name": "tiny_layout_test", "kwargs": {}}, optim={"epochs": 1},
                      channels_last=channels_last), train_dataset=MemoryFaces(8))
    assert _SeesLayout.seen and set(_SeesLayout.seen) == {channels_last}
