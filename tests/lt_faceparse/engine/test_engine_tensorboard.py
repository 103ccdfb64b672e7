"""TensorBoard event files of a run, read back with TensorBoard's own event reader."""

from __future__ import annotations

import math

import pytest
from engine_testdata import MemoryFaces, cut_copy, tiny_config
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from lt_faceparse.engine.progress import read_log
from lt_faceparse.engine.train import train
from lt_faceparse.records import head_tail_means, load_record
from lt_faceparse.taxonomy import get_taxonomy

TRAIN_TAGS = ("train/loss", "train/lr", "train/images_per_s", "train/grad_norm")
VAL_TAGS = ("val/mean_f1", "val/mean_iou_with_bg", "val/mean_iou_without_bg", "val/pixel_accuracy",
            "val/head_f1", "val/tail_f1")


def _events(run) -> EventAccumulator:
    acc = EventAccumulator(str(run / "tb"), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return acc


def _series(acc: EventAccumulator, tag: str) -> list[tuple[int, float]]:
    return [(e.step, e.value) for e in acc.Scalars(tag)]


@pytest.mark.parametrize("grad_clip", [None, 1e-3])
def test_event_files_hold_the_training_and_validation_scalars(tmp_path, grad_clip):
    # 2 epochs x 4 steps, lr 1e-2 then 5e-3 (milestone 1, gamma 0.5); validation after each epoch
    config = tiny_config(tmp_path / "run", optim={"epochs": 2}, val={"every_epochs": 1}, grad_clip=grad_clip)
    # labels over all 19 classes, accessories (the tail) included
    run = train(config, train_dataset=MemoryFaces(32, used=19), val_dataset=MemoryFaces(7, split="val", seed=1, used=19))
    acc = _events(run)
    log = read_log(run / "log.jsonl")
    steps = [r for r in log if r["event"] == "step"]
    vals = [r for r in log if r["event"] == "val"]

    for tag in TRAIN_TAGS:  # every log_every (= 1) steps, the values of log.jsonl
        series = _series(acc, tag)
        assert [s for s, _ in series] == [r["step"] for r in steps] == list(range(1, 9))
        key = tag.split("/")[1]
        rounded = key == "images_per_s"  # log.jsonl rounds it to 2 decimals
        assert [v for _, v in series] == pytest.approx([r[key] for r in steps], rel=0 if rounded else 1e-6,
                                                       abs=0.0051 if rounded else 0)
    assert [v for _, v in _series(acc, "train/lr")] == pytest.approx([1e-2] * 4 + [5e-3] * 4, rel=1e-6)
    norms = [v for _, v in _series(acc, "train/grad_norm")]
    assert all(math.isfinite(v) and v > 0 for v in norms)
    if grad_clip:  # clip_grad_norm_'s value: the norm before clipping, far above the clip
        assert min(norms) > 10 * grad_clip

    record = load_record(run / "val")
    taxonomy = get_taxonomy(record.taxonomy)
    for tag in VAL_TAGS:  # after each validation, at the global step it ran
        assert [s for s, _ in _series(acc, tag)] == [4, 8]
    assert [v for _, v in _series(acc, "val/mean_f1")] == pytest.approx([r["mean_f1"] for r in vals], rel=1e-6)
    last = {tag: _series(acc, tag)[-1][1] for tag in acc.Tags()["scalars"] if tag.startswith("val/")}
    assert last["val/mean_f1"] == pytest.approx(record.mean_f1, rel=1e-6)
    assert last["val/mean_iou_with_bg"] == pytest.approx(record.mean_iou_with_bg, rel=1e-6)
    assert last["val/mean_iou_without_bg"] == pytest.approx(record.mean_iou_without_bg, rel=1e-6)
    head, tail = head_tail_means(record, taxonomy)
    assert last["val/head_f1"] == pytest.approx(head, rel=1e-6)
    assert last["val/tail_f1"] == pytest.approx(tail, rel=1e-6)
    defined = {name: f1 for name, f1 in record.per_class_f1().items() if not math.isnan(f1)}
    assert {t for t in last if t.startswith("val/f1/")} == {f"val/f1/{name}" for name in defined}
    assert {"val/f1/nose", "val/f1/hat", "val/f1/ear_r"} <= set(last)  # named by the taxonomy, tail included
    for name, f1 in defined.items():
        assert last[f"val/f1/{name}"] == pytest.approx(f1, rel=1e-6)
    assert "conventions/text_summary" in acc.Tags()["tensors"]


def test_a_resumed_run_hides_the_steps_logged_after_its_checkpoint(tmp_path):
    sections = dict(optim={"epochs": 2}, checkpoint={"every_steps": 1, "keep_last": 100}, deterministic=True)
    whole = train(tiny_config(tmp_path / "whole", **sections), train_dataset=MemoryFaces(32))
    # its event file holds steps 1..8: as if killed after step 8, with checkpoints up to step 5 only
    cut = cut_copy(whole, tmp_path / "cut", keep_until_step=5)
    train(tiny_config(cut, resume="auto", **sections), train_dataset=MemoryFaces(32))
    assert len(list((cut / "tb").glob("events.out.tfevents.*"))) == 2
    resumed, reference = _events(cut), _events(whole)
    assert [s for s, _ in _series(resumed, "train/loss")] == list(range(1, 9))  # steps 6..8 once, not twice
    assert _series(resumed, "train/loss") == _series(reference, "train/loss")


def test_tensorboard_false_writes_no_event_files(tmp_path):
    run = train(tiny_config(tmp_path / "run", optim={"epochs": 1}, tensorboard=False), train_dataset=MemoryFaces(8))
    assert not (run / "tb").exists() and (run / "final.safetensors").is_file()
