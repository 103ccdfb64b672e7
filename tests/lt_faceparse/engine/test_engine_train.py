"""Training in one process: run folder contents, accumulation, mid-epoch resume, NaN stop."""

from __future__ import annotations


import pytest
import torch
from engine_testdata import MemoryFaces, TinyNaNLoss, cut_copy, tiny_config
from safetensors.torch import load_file

from lt_faceparse.engine.checkpoint import list_checkpoints, load_checkpoint
from lt_faceparse.engine.config import load_config
from lt_faceparse.engine.progress import read_log
from lt_faceparse.engine.train import TrainingDiverged, train
from lt_faceparse.errors import LTFaceParseError
from lt_faceparse.models import register_model
from lt_faceparse.records import load_record
from lt_faceparse.taxonomy import get_taxonomy
from lt_faceparse.weights import load_model, read_metadata


def _weights(run_dir) -> dict[str, torch.Tensor]:
    return load_file(str(run_dir / "final.safetensors"))


def _max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def test_run_folder_holds_config_log_checkpoints_final_weights_and_val_record(tmp_path):
    config = tiny_config(tmp_path / "run", optim={"epochs": 3}, data={"val_split": "val"},
                         val={"every_epochs": 2})
    run = train(config, train_dataset=MemoryFaces(32), val_dataset=MemoryFaces(7, split="val", seed=1))

    effective = load_config(run / "config.yaml")
    assert effective["batch"] == {"global": 8, "per_gpu": 8, "accumulation": 1}
    assert {k: v for k, v in effective.items() if k != "batch"} == {k: v for k, v in config.items() if k != "batch"}

    log = read_log(run / "log.jsonl")
    events = [r["event"] for r in log]
    assert events.count("step") == 12 and events.count("epoch") == 3
    assert [r["epoch"] for r in log if r["event"] == "val"] == [2, 3]  # every 2 epochs + after the last
    assert [r["lr"] for r in log if r["event"] == "epoch"] == [1e-2, 5e-3, 5e-3]  # milestone 1, gamma 0.5
    losses = [r["loss"] for r in log if r["event"] == "step"]
    assert losses[-1] < losses[0]

    assert [p.name for p in list_checkpoints(run)] == ["ckpt_e0002_s000000008.pt", "ckpt_e0003_s000000012.pt"]
    last = load_checkpoint(list_checkpoints(run)[-1])
    assert (last["epoch"], last["step_in_epoch"], last["global_step"]) == (3, 0, 12)

    meta = read_metadata(run / "final.safetensors")
    assert meta["checkpoint_rule"] == "last epoch" and meta["epochs"] == 3
    assert meta["model"] == "tiny" and meta["model_kwargs"] == {"num_classes": 19, "width": 8}
    assert (meta["taxonomy"], meta["resolution"], meta["warp"], meta["dataset"]) == \
        (get_taxonomy("celebamask-hq").to_dict(), 16, None, "memory")
    model, _ = load_model(run / "final.safetensors")
    for k, v in model.state_dict().items():
        assert torch.equal(v, last["model"][k])

    record = load_record(run / "val")
    assert record.num_images == 7 and record.provenance.split == "val"
    assert record.provenance.checkpoint_rule == "last epoch"
    assert record.mean_f1 == pytest.approx([r for r in log if r["event"] == "val"][-1]["mean_f1"])


def test_gradient_accumulation_matches_the_full_batch(tmp_path):
    full = train(tiny_config(tmp_path / "full", batch={"global": 8, "per_gpu": 8}), train_dataset=MemoryFaces(32))
    accum = train(tiny_config(tmp_path / "accum", batch={"global": 8, "per_gpu": 2}), train_dataset=MemoryFaces(32))
    assert read_log(accum / "log.jsonl")[0]["accumulation"] == 4
    assert _max_diff(_weights(full), _weights(accum)) < 1e-5


def test_resume_from_a_mid_epoch_checkpoint_equals_the_uninterrupted_run(tmp_path):
    sections = dict(optim={"epochs": 3}, checkpoint={"every_steps": 1, "keep_last": 100}, deterministic=True)
    whole = train(tiny_config(tmp_path / "whole", **sections), train_dataset=MemoryFaces(32))
    cut = cut_copy(whole, tmp_path / "cut", keep_until_step=6)
    state = load_checkpoint(list_checkpoints(cut)[-1])
    assert (state["epoch"], state["step_in_epoch"]) == (1, 2)  # mid-epoch: 2 of 4 steps done
    with pytest.raises(LTFaceParseError, match="resume"):
        train(tiny_config(cut, **sections), train_dataset=MemoryFaces(32))
    train(tiny_config(cut, resume=True, **sections), train_dataset=MemoryFaces(32))
    assert _max_diff(_weights(whole), _weights(cut)) == 0.0
    resumed = [r for r in read_log(cut / "log.jsonl") if r["event"] == "start"][-1]
    assert resumed["resumed_from"].endswith("ckpt_e0001_s000000006.pt") and resumed["global_step"] == 6


def test_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path):
    register_model("tiny_nan_test", TinyNaNLoss, overwrite=True)
    config = tiny_config(tmp_path / "run", model={"name": "tiny_nan_test", "kwargs": {"width": 8, "nan_at": 6}},
                         checkpoint={"every_steps": 2, "keep_last": 5})
    with pytest.raises(TrainingDiverged) as err:
        train(config, train_dataset=MemoryFaces(32))
    message = str(err.value)
    assert "nan" in message and "epoch 1, step 2 of the epoch (global step 6)" in message
    assert "ckpt_e0001_s000000004.pt" in message
    assert [p.name for p in list_checkpoints(tmp_path / "run")] == [
        "ckpt_e0000_s000000002.pt", "ckpt_e0001_s000000004.pt"]  # epoch end at step 4 (same name as a step-4 one)
    state = load_checkpoint(list_checkpoints(tmp_path / "run")[-1])
    assert all(torch.isfinite(v).all() for v in state["model"].values())
    assert not (tmp_path / "run" / "final.safetensors").exists()
    assert read_log(tmp_path / "run" / "log.jsonl")[-1]["event"] == "diverged"


def test_resume_refuses_a_changed_config(tmp_path):
    run = train(tiny_config(tmp_path / "run"), train_dataset=MemoryFaces(32))
    with pytest.raises(LTFaceParseError, match="optim.lr"):
        train(tiny_config(run, resume=True, optim={"lr": 0.5}), train_dataset=MemoryFaces(32))
    # how the global batch is split, where data lives, how often to log may change
    train(tiny_config(run, resume=True, batch={"global": 8, "per_gpu": 4}, log_every=3), train_dataset=MemoryFaces(32))


class _TinyBN(torch.nn.Module):
    """conv -> BatchNorm -> 1x1 classifier: a model whose running statistics matter."""

    def __init__(self, num_classes: int = 19):
        super().__init__()
        self.build_kwargs = {"num_classes": num_classes}
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.norm = torch.nn.BatchNorm2d(4, momentum=0.01)
        self.classifier = torch.nn.Conv2d(4, num_classes, 1)

    def forward(self, images):
        return self.classifier(torch.relu(self.norm(self.conv(images))))

    def loss(self, logits, target):
        return torch.nn.functional.cross_entropy(logits, target, ignore_index=255)


@pytest.mark.parametrize("precise_bn_batches", [0, 1])
def test_precise_bn_sets_running_statistics_of_the_final_weights(tmp_path, precise_bn_batches):
    register_model("tiny_bn_test", _TinyBN, overwrite=True)
    data = MemoryFaces(16)
    config = tiny_config(tmp_path / "run", model={"name": "tiny_bn_test", "kwargs": {}}, batch={"global": 16},
                         optim={"epochs": 3}, precise_bn_batches=precise_bn_batches)
    run = train(config, train_dataset=data)
    model, meta = load_model(run / "final.safetensors")
    assert meta["precise_bn_batches"] == precise_bn_batches
    with torch.no_grad():
        features = model.conv(data.images)  # BN input over the whole training set (one batch of 16)
    mean, var = features.mean((0, 2, 3)), features.var((0, 2, 3), unbiased=True)
    matches = torch.allclose(model.norm.running_mean, mean, atol=1e-5) and \
        torch.allclose(model.norm.running_var, var, rtol=1e-4)
    assert matches == bool(precise_bn_batches)  # momentum 0.01 over 3 steps stays far from the batch statistics


def test_validation_guard_is_skipped_only_for_a_tree_without_a_test_split(tmp_path):
    from types import SimpleNamespace

    from lt_faceparse.engine.trainer_setup import check_not_test as _check_not_test
    from lt_faceparse.errors import DataError, SplitNotFound

    class Split(SimpleNamespace):
        def __len__(self):
            return len(self.names)

    val = Split(names=["a", "b"], split="val")

    def no_test_split(*args, **kwargs):
        raise SplitNotFound(tmp_path, "no split 'test'; this folder has ['train', 'val']")

    def unreadable_test_split(*args, **kwargs):
        raise DataError(tmp_path / "test" / "images", "permission denied")

    def overlapping(*args, **kwargs):
        return Split(names=["b", "c"], split="test")

    assert _check_not_test(val, no_test_split, "folder", tmp_path, {}) is None
    with pytest.raises(DataError, match="permission denied"):  # never read as "no test split"
        _check_not_test(val, unreadable_test_split, "folder", tmp_path, {})
    with pytest.raises(DataError, match="shares 1 of 2 images with the test split"):
        _check_not_test(val, overlapping, "folder", tmp_path, {})


def test_missing_splits_are_told_apart_from_broken_ones(tmp_path):
    from lt_faceparse.data import build_dataset
    from lt_faceparse.errors import DataError, SplitNotFound

    (tmp_path / "folder" / "train" / "images").mkdir(parents=True)
    (tmp_path / "folder" / "classes.txt").write_text("background\nskin\n")
    with pytest.raises(SplitNotFound, match="no split 'test'"):
        build_dataset("folder", tmp_path / "folder", "test")
    (tmp_path / "lapa" / "train" / "images").mkdir(parents=True)
    with pytest.raises(SplitNotFound, match="this LaPa tree has no test split"):
        build_dataset("lapa", tmp_path / "lapa", "test")
    (tmp_path / "lapa" / "test").mkdir()  # the split exists but its images folder does not
    with pytest.raises(DataError, match="LaPa test image folder not found") as err:
        build_dataset("lapa", tmp_path / "lapa", "test")
    assert not isinstance(err.value, SplitNotFound)
