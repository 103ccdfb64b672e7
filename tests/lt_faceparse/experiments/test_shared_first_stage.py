"""The decoupled remedies of the benchmark start from the plain run's last checkpoint: the weights equal
those of the same remedy trained from scratch, bit for bit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from lt_faceparse.engine.checkpoint import list_checkpoints
from lt_faceparse.engine.config import load_config
from lt_faceparse.engine.train import train
from lt_faceparse.errors import LTFaceParseError
from lt_faceparse.experiments.shared_first_stage import (run_with_shared_first_stage, shares_first_stage,
                                                         start_from_first_stage)
from lt_faceparse.experiments.sweep import SweepSetting, run_folder
from lt_faceparse.weights import read_metadata

STAGE = {"epochs": 1, "sampler": "class_balanced", "lws": False}


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    from lt_faceparse.data.synthetic import ensure_synthface

    return ensure_synthface(tmp_path_factory.mktemp("shared_stage"), num_images=40, size=32, seed=5,
                            splits=(0.6, 0.2, 0.2), num_workers=0)


def _config(root, out, retrain=None):
    config = load_config("synth_tiny", [f"out={out}"])
    config["model"] = {"name": "tiny", "kwargs": {"width": 8}}
    config["data"].update(root=str(root), resolution=32, synthetic=None, num_workers=0)
    config["optim"].update(epochs=2, milestones=[2])
    config["longtail"]["retrain_classifier"] = retrain
    return config


def _weights(run):
    return load_file(str(run / "final.safetensors"))


def test_a_second_stage_from_the_plain_checkpoint_equals_the_whole_run(synth_root, tmp_path, one_torch_thread):
    whole = train(_config(synth_root, tmp_path / "whole", STAGE))
    plain = train(_config(synth_root, tmp_path / "plain"))
    shared = tmp_path / "shared"
    copied = start_from_first_stage(shared, plain)
    assert copied is not None and copied.name == list_checkpoints(plain)[-1].name
    assert start_from_first_stage(shared, plain) is None  # holds a checkpoint now: resumes on its own
    train({**_config(synth_root, shared, STAGE), "resume": "auto"})
    a, b = _weights(whole), _weights(shared)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], _weights(plain)[k]) for k in a)  # the stage changed the classifier
    stage = read_metadata(shared / "final.safetensors")["longtail"]["classifier_stage"]
    assert stage == read_metadata(whole / "final.safetensors")["longtail"]["classifier_stage"]
    assert stage["kind"] == "cRT"


def test_only_a_second_stage_shares_the_first_stage(tmp_path):
    plain = _config(tmp_path, tmp_path / "a")
    assert shares_first_stage(_config(tmp_path, tmp_path / "b", STAGE), plain)
    assert not shares_first_stage(plain, plain)  # nothing to add
    other = _config(tmp_path, tmp_path / "c", STAGE)
    other["longtail"]["sampler"] = "repeat_factor"  # the first stage differs
    assert not shares_first_stage(other, plain)
    with pytest.raises(LTFaceParseError, match="has not finished"):
        start_from_first_stage(tmp_path / "d", tmp_path / "a")


@pytest.mark.parametrize("workers", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_the_benchmark_runs_second_stages_after_their_first(synth_root, tmp_path, one_torch_thread, workers):
    plain = _config(synth_root, tmp_path / "unused")
    jobs = [(SweepSetting("remedy", "tiny", None, 32, remedy="crt"), _config(synth_root, tmp_path / "unused", STAGE)),
            (SweepSetting("model", "tiny", None, 32), plain)]
    if workers > 1:  # another job beside the plain run: it starts while the plain run and its follower train
        other = _config(synth_root, tmp_path / "unused")
        other["optim"]["lr"] = plain["optim"]["lr"] / 2
        jobs.append((SweepSetting("model", "tiny", "other", 32), other))
    lines = []
    rows = run_with_shared_first_stage(jobs, tmp_path / "results", runs_dir=tmp_path / "runs", log=lines.append,
                                       workers=workers, speed_runs=0, n_resamples=0)
    assert [r["name"] for r in rows] == [s.name for s, _ in jobs]
    assert any("first stage shared with tiny-default-r32" in line for line in lines)
    crt = run_folder(*jobs[0], tmp_path / "results", tmp_path / "runs")
    events = [json.loads(line) for line in (crt / "log.jsonl").read_text().splitlines()]
    start = next(e for e in events if e["event"] == "start")
    assert Path(start["resumed_from"]).parent == crt / "checkpoints"  # the copy of the plain run's last checkpoint
    plain_dir = run_folder(*jobs[1], tmp_path / "results", tmp_path / "runs")
    assert [e["event"] for e in events].count("epoch") == 0 < [json.loads(line)["event"] for line in
                                                               (plain_dir / "log.jsonl").read_text().splitlines()].count("epoch")


def test_scorings_in_threads_give_the_numbers_they_give_alone(one_torch_thread):
    from functools import partial

    from lt_faceparse.experiments.parallel import run_calls

    conv = torch.nn.Conv2d(3, 8, 3)

    def score(seed):
        x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(seed))
        with torch.inference_mode():
            return conv(x)

    calls = [partial(score, seed) for seed in range(6)]
    alone, threaded = run_calls(calls, 1), run_calls(calls, 2)
    assert all(torch.equal(a, b) for a, b in zip(alone, threaded))
    assert not torch.equal(threaded[0], threaded[1])  # in call order, not all the same
