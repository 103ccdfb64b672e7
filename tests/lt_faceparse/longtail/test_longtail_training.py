"""Remedies in training: the default section trains bit for bit as before, every remedy trains
through the CLI with every registered model, stateful remedies resume exactly (one process and
under DDP), and the run's config, weight file and records state the remedies and the priors."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import torch
from default_reference import MODELS, digest, reference_weights
from engine_testdata import cut_copy, torchrun_command
from safetensors.torch import load_file

from lt_faceparse.cli import main as cli_main
from lt_faceparse.engine.checkpoint import list_checkpoints, load_checkpoint
from lt_faceparse.engine.config import dump_config, load_config
from lt_faceparse.engine.progress import read_log
from lt_faceparse.engine.train import train
from lt_faceparse.records import load_record
from lt_faceparse.weights import read_metadata

HERE = Path(__file__).resolve().parent
REFERENCE = json.loads((HERE / "default_reference.json").read_text())

REMEDIES = {
    "weighted_ce": {"loss": {"name": "weighted_ce", "weights": "effective_number", "beta": 0.999, "counts": "images"}},
    "focal": {"loss": "focal"},
    "logit_adjusted": {"loss": {"name": "logit_adjusted", "tau": 1.0}},
    "seesaw": {"loss": "seesaw"},
    "repeat_factor": {"sampler": {"name": "repeat_factor", "threshold": 0.3}},
    "copy_paste": {"copy_paste": {"prob": 1.0}},
}
# registry name -> small constructor kwargs (every registered model)
SMALL_MODELS = {
    "tiny": {"width": 8},
    "segface": {"backbone": "mobilenet", "dim": 32},
    "fcn": {"backbone": "mobilenet", "channels": 16},
    "segformer": {"backbone": "mobilenet", "dim": 32},
    "bisenet": {},
}


# ---- the defaults change nothing ----------------------------------------------------------------

def _reference() -> dict:
    """The reference recorded with this torch on this CPU's instruction set, else the one whose machine
    was not noted (the first recorded); CPU kernels of another instruction set round differently."""
    capability = torch.backends.cpu.get_cpu_capability()
    refs = REFERENCE["references"]
    return next((r for r in refs if r["torch"] == torch.__version__ and r["cpu_capability"] == capability),
                next(r for r in refs if r["cpu_capability"] is None))


def _check_reference(model: str, tmp_path: Path) -> None:
    reference = _reference()
    expected = reference["models"][model]
    got = digest(reference_weights(model, tmp_path / model))
    assert got["num_tensors"] == expected["num_tensors"]
    if torch.__version__ == reference["torch"]:
        assert got["sha256"] == expected["sha256"], (
            f"{model}: the default config no longer trains bit for bit like {reference['library_commit'][:8]}")
    else:  # another torch may round differently; the weights must still agree closely
        assert got["float_sum"] == pytest.approx(expected["float_sum"], rel=1e-5)


def test_default_schema_trains_the_tiny_model_bit_for_bit_as_before_remedies(tmp_path):
    _check_reference("tiny", tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("model", [m for m in MODELS if m != "tiny"])
def test_default_schema_trains_segface_and_bisenet_bit_for_bit_as_before_remedies(model, tmp_path):
    _check_reference(model, tmp_path)


def test_the_reference_check_can_fail(tmp_path, monkeypatch):
    """The digest sees a change as small as one step of a slightly different loss."""
    from lt_faceparse.engine import tiny

    original = tiny.TinyParser.loss
    monkeypatch.setattr(tiny.TinyParser, "loss", lambda self, logits, target: original(self, logits, target) * 1.0001)
    got = digest(reference_weights("tiny", tmp_path / "changed"))
    assert got["sha256"] != _reference()["models"]["tiny"]["sha256"]


# ---- every remedy, every model, through the CLI ----------------------------------------------------

def _config_file(tmp_path: Path, synth_root: Path, model: str, longtail: dict, **extra) -> Path:
    config = load_config("synth_tiny", ["out=/unused"])
    config["model"] = {"name": model, "kwargs": dict(SMALL_MODELS[model])}
    config["data"].update(root=str(synth_root), resolution=32, synthetic=None, num_workers=0)
    config["optim"].update(epochs=1, milestones=[1])
    config["longtail"].update(longtail)
    config["find_unused_parameters"] = model == "segface"
    for key, value in extra.items():
        config[key] = value
    path = tmp_path / f"{model}.yaml"
    path.write_text(dump_config(config))
    return path


def _train_cli(path: Path, out: Path, *overrides: str) -> None:
    assert cli_main(["train", "--config", str(path), "--out", str(out), *overrides]) == 0


@pytest.mark.parametrize("remedy", list(REMEDIES))
def test_each_remedy_trains_the_tiny_model_through_the_cli(remedy, synth_root, tmp_path):
    path = _config_file(tmp_path, synth_root, "tiny", REMEDIES[remedy])
    _train_cli(path, tmp_path / "run")
    meta = read_metadata(tmp_path / "run" / "final.safetensors")
    assert meta["longtail"]["label"] not in (None, "plain")
    effective = load_config(tmp_path / "run" / "config.yaml")  # reloads: every remedy expanded, priors inline
    assert effective["longtail"]["priors"] == meta["longtail"]["priors"]
    if remedy != "seesaw":
        assert effective["longtail"]["priors"]["num_images"] == 24
    record = load_record(tmp_path / "run" / "val")
    assert record.provenance.longtail["label"] == meta["longtail"]["label"]
    assert meta["longtail"]["label"] in record.label


@pytest.mark.slow
@pytest.mark.parametrize("model", [m for m in SMALL_MODELS if m != "tiny"])
def test_every_remedy_trains_every_registered_model_through_the_cli(model, synth_root, tmp_path):
    for remedy, section in REMEDIES.items():
        path = _config_file(tmp_path, synth_root, model, section)
        _train_cli(path, tmp_path / remedy, "val.every_epochs=0", "data.val_split=null")
        meta = read_metadata(tmp_path / remedy / "final.safetensors")
        assert meta["longtail"]["label"] != "plain"
        if "loss" in section:
            assert meta["longtail"]["loss_combination"]
            if model == "bisenet":
                assert "OHEM" in meta["longtail"]["loss_combination"]
            else:
                assert "Dice is kept" in meta["longtail"]["loss_combination"]


def test_a_model_without_a_replaceable_ce_is_refused(synth_root, tmp_path):
    from lt_faceparse.engine.config import ConfigError
    from lt_faceparse.models import register_model

    class NoCE(torch.nn.Module):
        def __init__(self, num_classes: int = 19):
            super().__init__()
            self.build_kwargs = {"num_classes": num_classes}
            self.conv = torch.nn.Conv2d(3, num_classes, 1)

        def forward(self, x):
            return self.conv(x)

        def loss(self, logits, target):
            return logits.mean()

    register_model("no_ce_test", NoCE, overwrite=True)
    SMALL_MODELS["no_ce_test"] = {}
    try:
        config = load_config(_config_file(tmp_path, synth_root, "no_ce_test", REMEDIES["focal"]),
                             [f"out={tmp_path / 'run'}"])
        with pytest.raises(ConfigError, match="longtail.loss: model NoCE has no replaceable cross-entropy"):
            train(config)
    finally:
        del SMALL_MODELS["no_ce_test"]


# ---- state survives a resume --------------------------------------------------------------------

STATEFUL = {"loss": "seesaw", "sampler": {"name": "repeat_factor", "threshold": 0.5}, "copy_paste": {"prob": 0.7}}


def test_seesaw_repeat_factor_and_copy_paste_resume_exactly_mid_epoch(synth_root, tmp_path):
    path = _config_file(tmp_path, synth_root, "tiny", STATEFUL, deterministic=True)
    overrides = ["optim.epochs=3", "checkpoint={every_steps: 1, keep_last: 100}", "data.val_split=null",
                 "data.flip=true"]
    whole = tmp_path / "whole"
    _train_cli(path, whole, *overrides)
    starts = [r for r in read_log(whole / "log.jsonl") if r["event"] in ("start", "epoch")]
    steps = [r["steps"] for r in starts if r["event"] == "epoch"]
    assert max(steps) > 3 and min(steps) >= 3  # 24 images with repeats: epochs longer than uniform's 3 steps
    total = sum(steps)
    cut = cut_copy(whole, tmp_path / "cut", keep_until_step=steps[0] + 2)  # mid-epoch 1
    state = load_checkpoint(list_checkpoints(cut)[-1])
    assert (state["epoch"], state["step_in_epoch"]) == (1, 2)
    assert state["longtail"]["loss"]["accumulated"].sum() > 0
    _train_cli(path, cut, *overrides, "resume=true")
    a, b = load_file(str(whole / "final.safetensors")), load_file(str(cut / "final.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    last_a = load_checkpoint(list_checkpoints(whole)[-1])["longtail"]["loss"]["accumulated"]
    last_b = load_checkpoint(list_checkpoints(cut)[-1])["longtail"]["loss"]["accumulated"]
    assert torch.equal(last_a, last_b)
    assert [r["global_step"] for r in read_log(cut / "log.jsonl") if r["event"] == "end"][-1] == total


@pytest.mark.slow
def test_stateful_remedies_under_two_rank_ddp_match_one_process(synth_root, tmp_path):
    # epoch_size: dataset keeps 24 samples per epoch, a multiple of the global batch: with a varying epoch
    # length DistributedSampler's padding would add a step on 2 ranks that one process does not take
    section = {**STATEFUL, "sampler": {"name": "repeat_factor", "threshold": 0.5, "epoch_size": "dataset"}}
    path = _config_file(tmp_path, synth_root, "tiny", section)
    overrides = ["optim.epochs=2", "data.val_split=null", "log_every=1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}
    script = HERE.parents[2] / "scripts" / "train.py"
    result = subprocess.run(torchrun_command(2, "script", str(script), "--config", str(path), "--out",
                                             str(tmp_path / "ddp"), *overrides),
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    _train_cli(path, tmp_path / "single", *overrides)
    start = read_log(tmp_path / "ddp" / "log.jsonl")[0]
    assert start["world_size"] == 2
    ddp = load_file(str(tmp_path / "ddp" / "final.safetensors"))
    single = load_file(str(tmp_path / "single" / "final.safetensors"))
    assert max(float((ddp[k] - single[k]).abs().max()) for k in ddp) < 1e-5
    counts = [load_checkpoint(list_checkpoints(d)[-1])["longtail"]["loss"]["accumulated"]
              for d in (tmp_path / "ddp", tmp_path / "single")]
    assert torch.equal(counts[0], counts[1])  # seesaw's counts are summed over the ranks every step
