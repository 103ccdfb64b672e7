"""The trainer's hook points: called in order, each seeing the run in the state its docstring promises."""

from __future__ import annotations

from engine_testdata import MemoryFaces, tiny_config
from safetensors.torch import load_file

from lt_faceparse.engine.checkpoint import list_checkpoints
from lt_faceparse.engine.config import validate_config
from lt_faceparse.engine.hooks import Hook, StepInfo
from lt_faceparse.engine.train import train


class Recorder(Hook):
    def __init__(self):
        self.calls: list[tuple] = []
        self.closed = 0

    def before_train(self, trainer) -> None:
        self.calls.append(("before_train", trainer.start.global_step, trainer.sampler is not None))

    def before_epoch(self, trainer, epoch: int, start_step: int, n_steps: int) -> None:
        self.calls.append(("before_epoch", epoch, start_step, n_steps))

    def after_step(self, trainer, step: StepInfo) -> None:
        self.calls.append(("after_step", step.epoch, step.step_in_epoch, step.global_step, step.last_of_epoch))

    def after_epoch(self, trainer, epoch: int, global_step: int) -> None:
        newest = list_checkpoints(trainer.out)[-1].name  # the epoch's checkpoint is already written
        self.calls.append(("after_epoch", epoch, global_step, trainer.scheduler.last_epoch, newest))

    def after_train(self, trainer, global_step: int) -> None:
        self.calls.append(("after_train", global_step, (trainer.out / "final.safetensors").exists()))

    def close(self) -> None:
        self.closed += 1


def test_hooks_are_called_in_order_around_the_loop(tmp_path):
    recorder = Recorder()
    run = train(tiny_config(tmp_path / "run", checkpoint={"keep_last": 5}), train_dataset=MemoryFaces(16),
                hooks=[recorder])
    steps = [("after_step", e, s, 2 * e + s + 1, s == 1) for e in range(2) for s in range(2)]
    assert recorder.calls == [
        ("before_train", 0, True),
        ("before_epoch", 0, 0, 2), *steps[:2], ("after_epoch", 1, 2, 1, "ckpt_e0001_s000000002.pt"),
        ("before_epoch", 1, 0, 2), *steps[2:], ("after_epoch", 2, 4, 2, "ckpt_e0002_s000000004.pt"),
        ("after_train", 4, False),  # before the final weights are saved
    ]
    assert recorder.closed == 1 and (run / "final.safetensors").exists()


def test_a_typed_config_trains_as_its_dict(tmp_path):
    config = tiny_config(tmp_path / "a")
    train(config, train_dataset=MemoryFaces(16))
    typed = validate_config({**config, "out": str(tmp_path / "b")})
    train(typed, train_dataset=MemoryFaces(16))
    a, b = load_file(str(tmp_path / "a" / "final.safetensors")), load_file(str(tmp_path / "b" / "final.safetensors"))
    assert a.keys() == b.keys() and all(a[k].equal(b[k]) for k in a)
