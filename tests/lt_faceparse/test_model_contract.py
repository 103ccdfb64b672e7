"""The model contract (lt_faceparse.models): checked in one place, and a model added in one file plus one
registry line trains, evaluates and parses through the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
from PIL import Image

from lt_faceparse.models import (FaceParsingModel, build_model, check_model, model_capabilities,
                                 prepare_for_training, register_model)

FIXTURES = Path(__file__).resolve().parent / "fixtures"
# the new model's one registry line, run in each fresh CLI process before the command line
LAUNCH = ("import sys; from lt_faceparse.models import register_model; "
          "register_model('pooled', 'pooled_parser:PooledParser'); "
          "from lt_faceparse.cli import main; sys.exit(main(sys.argv[1:]))")


class _NoLoss(nn.Module):
    build_kwargs: dict = {}

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return images


class _WithHooks(_NoLoss):
    """Every optional hook: extras from forward and into loss, a formulation, a criterion with a pixel term."""

    def __init__(self):
        super().__init__()
        self.formulation = "auto"
        self.criterion = nn.Module()
        self.criterion.pixel_loss = None

    def forward(self, images: torch.Tensor, return_extras: bool = False):
        return (images, {}) if return_extras else images

    def loss(self, logits: torch.Tensor, target: torch.Tensor, extras: dict | None = None) -> torch.Tensor:
        return logits.mean()


def test_check_model_names_the_missing_member():
    with pytest.raises(TypeError, match="model 'noloss' lacks 'loss'"):
        check_model(_NoLoss(), "noloss")
    broken = _WithHooks()
    broken.build_kwargs = None
    with pytest.raises(TypeError, match="build_kwargs must be a dict"):
        check_model(broken, "broken")


def test_capabilities_of_shipped_and_new_models():
    sys.path.insert(0, str(FIXTURES))
    try:
        from pooled_parser import PooledParser
    finally:
        sys.path.remove(str(FIXTURES))
    pooled = PooledParser(num_classes=5)
    assert isinstance(pooled, FaceParsingModel)
    none = dict(returns_extras=False, loss_takes_extras=False, formulation=False, pixel_loss=False)
    assert vars(check_model(pooled)) == none
    assert vars(check_model(build_model("tiny", num_classes=5))) == none
    assert vars(model_capabilities(_WithHooks())) == dict(returns_extras=True, loss_takes_extras=True,
                                                          formulation=True, pixel_loss=True)
    assert not model_capabilities(object()).returns_extras  # anything may be asked; absent hooks count as absent


def test_prepare_for_training_sets_a_formulation_only_where_one_exists():
    model = _WithHooks()
    prepare_for_training(model, "hooks", formulation="literal")
    assert model.formulation == "literal"
    with pytest.raises(TypeError, match="formulation='gpu': model 'tiny' has only one"):
        prepare_for_training(build_model("tiny", num_classes=3), "tiny", formulation="gpu")


def test_register_model_refuses_a_taken_name():
    with pytest.raises(ValueError, match="already registered"):
        register_model("tiny", _NoLoss)


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(FIXTURES), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-c", LAUNCH, *args], cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.mark.slow
def test_a_model_in_one_file_trains_evaluates_and_parses_through_the_cli(tmp_path):
    data = tmp_path / "data"
    _cli("synth", "--format", "celebamask-hq", "--out", str(data), "--num-images", "16", "--size", "32",
         "--seed", "3", "--splits", "0.5,0.25,0.25", "--workers", "1", cwd=tmp_path)
    run = tmp_path / "run"
    _cli("train", "--config", "synth_tiny", "model.name=pooled", "model.kwargs={width: 6}", f"data.root={data}",
         "data.synthetic=null", "data.resolution=32", "optim.epochs=2", "optim.milestones=[2]", "batch.global=4",
         "log_every=1", "tensorboard=false", "--out", str(run), cwd=tmp_path)
    from lt_faceparse.weights import read_metadata

    meta = read_metadata(run / "final.safetensors")
    assert (meta["model"], meta["model_kwargs"]) == ("pooled", {"num_classes": 19, "width": 6, "stride": 2})
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["steps"] for r in log if r["event"] == "epoch"] == [2, 2]  # 8 training images / global batch 4
    assert json.loads((run / "val" / "record.json").read_text())["num_images"] == 4

    _cli("eval", "--checkpoint", str(run / "final.safetensors"), "--dataset", "celebamask-hq", "--root", str(data),
         "--split", "test", "--bootstrap", "0", "--device", "cpu", "--out", str(tmp_path / "eval"), cwd=tmp_path)
    record = json.loads((tmp_path / "eval" / "record.json").read_text())
    assert record["num_images"] == 4 and record["provenance"]["model"] == "pooled"

    images = sorted((data / "test" / "images").glob("*")) or sorted((data / "CelebA-HQ-img").glob("*"))[:4]
    _cli("parse", "--checkpoint", str(run / "final.safetensors"), str(images[0]), "--out", str(tmp_path / "parsed"),
         cwd=tmp_path)
    label = np.asarray(Image.open(tmp_path / "parsed" / f"{images[0].stem}_label.png"))
    assert label.shape == np.asarray(Image.open(images[0])).shape[:2] and label.max() < 19
