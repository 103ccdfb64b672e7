"""`lt-faceparse train` and `lt-faceparse eval` end to end on a small SynthFace-LT set."""

from __future__ import annotations

import pytest

from lt_faceparse.cli import main
from lt_faceparse.data import build_dataset
from lt_faceparse.data.synthetic import ensure_synthface
from lt_faceparse.engine.evaluate import evaluate_checkpoint
from lt_faceparse.engine.progress import read_log
from lt_faceparse.records import load_record
from lt_faceparse.taxonomy import LAPA
from lt_faceparse.weights import read_metadata

SYNTH = {"num_images": 20, "size": 32, "seed": 0}


def test_train_then_eval_from_the_command_line(tmp_path, capsys):
    cache, run = tmp_path / "synth", tmp_path / "run"
    args = ["train", "--config", "synth_tiny", "--out", str(run), f"data.root={cache}", "data.resolution=32",
            "data.synthetic={num_images: 20, size: 32, seed: 0}", "optim.epochs=2", "batch.global=4"]
    assert main(args) == 0
    assert capsys.readouterr().out.strip() == str(run)
    root = ensure_synthface(cache, **SYNTH)  # the set the run generated (reused, not regenerated)
    meta = read_metadata(run / "final.safetensors")
    assert (meta["dataset"], meta["merge"], meta["resolution"], meta["checkpoint_rule"]) == \
        ("synthface-lt", "segface", 32, "last epoch")  # generated data is named as such
    val = load_record(run / "val")
    assert val.provenance.split == "val" and val.num_images == len(build_dataset("celebamask-hq", root, "val"))
    # training's validation record says where its images are, for `report`
    assert (val.provenance.data_root, val.provenance.data_format) == (str(root.resolve()), "celebamask-hq")

    assert main(args) == 2  # the folder holds a run: refuse to start over without --resume
    assert "--resume" in capsys.readouterr().err
    # `--resume KEY=VALUE ...` is the bare flag followed by overrides; a finished run: final weights rewritten
    assert main([*args[:5], "--resume", *args[5:]]) == 0
    starts = [r for r in read_log(run / "log.jsonl") if r["event"] == "start"]
    assert starts[-1]["epoch"] == 2 and starts[-1]["resumed_from"].endswith("ckpt_e0002_s000000008.pt")
    assert starts[-1]["resume"] is True
    capsys.readouterr()
    assert main(args + ["--resume", "auto"]) == 0  # finished: left as it is
    printed = capsys.readouterr()
    assert "this run already finished" in printed.err and printed.out.strip() == str(run)
    assert read_log(run / "log.jsonl")[-1]["event"] == "already_finished"
    assert main(args + ["--resume", "sometimes"]) == 2
    assert "--resume takes true, false or auto" in capsys.readouterr().err

    out = tmp_path / "eval"
    assert main(["eval", "--checkpoint", str(run / "final.safetensors"), "--dataset", "celebamask-hq",
                 "--root", str(root), "--split", "test", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    record = load_record(out)
    test_set = build_dataset("celebamask-hq", root, "test", resolution=32)
    assert record.num_images == len(test_set) > 0
    assert record.provenance.split == "test" and record.provenance.checkpoint_rule == "last epoch"
    assert f"mean F1 {100 * record.mean_f1:.2f}" in printed and "merge segface" in printed

    native = evaluate_checkpoint(run / "final.safetensors", "celebamask-hq", root, "test", "native")
    assert native.provenance.protocol == "native" and native.num_images == record.num_images
    assert int(native.per_image.gt.sum()) == sum(test_set.read_label(i).size for i in range(len(test_set)))
    with pytest.raises(ValueError, match="split"):
        evaluate_checkpoint(run / "final.safetensors", "celebamask-hq", root, "train")


def test_lapa_config_trains_and_scores_through_the_tanh_warp(tmp_path):
    from lt_faceparse.engine.config import load_config
    from lt_faceparse.engine.train import train

    synth = {"num_images": 20, "size": 48, "seed": 1}
    config = load_config("lapa_segface_swinb_512", [
        "model.name=tiny", "model.kwargs={width: 4}", f"data.root={tmp_path / 'synth'}",
        f"data.synthetic={synth}", "data.resolution=48", "data.num_workers=0", "optim.epochs=1",
        "batch.global=4", "batch.per_gpu=null", "device=cpu", f"out={tmp_path / 'run'}"])
    assert config["data"]["augment"] and config["data"]["warp"] == "tanh"
    run = train(config)
    meta = read_metadata(run / "final.safetensors")
    assert (meta["warp"], meta["taxonomy"], meta["model_kwargs"]) == ("tanh", LAPA.to_dict(), {"num_classes": 11, "width": 4})
    root = ensure_synthface(tmp_path / "synth", fmt="lapa", **synth)
    record = evaluate_checkpoint(run / "final.safetensors", "lapa", root, "test")
    assert record.provenance.warp == "tanh" and record.taxonomy == "lapa"
    assert record.num_images == len(build_dataset("lapa", root, "test"))


def test_validation_refuses_a_val_split_made_of_test_images(tmp_path):
    """Helen without val.txt: its ``val`` split is the test set, so training validation must refuse it."""
    from lt_faceparse.engine.config import load_config
    from lt_faceparse.engine.train import train
    from lt_faceparse.errors import DataError

    root = ensure_synthface(tmp_path / "synth", fmt="helen", num_images=20, size=48, seed=0)
    overrides = ["model.name=tiny", "model.kwargs={width: 4}", f"data.root={root}", "data.resolution=48",
                 "data.num_workers=0", "optim.epochs=1", "batch.global=4", "batch.per_gpu=null", "device=cpu"]
    run = train(load_config("helen_segface_swinb_512", [*overrides, "data.val_split=val", f"out={tmp_path / 'a'}"]))
    assert load_record(run / "val").num_images == len(build_dataset("helen", root, "val"))  # val.txt present
    (root / "val.txt").unlink()
    with pytest.raises(DataError, match="shares .* with the test split"):
        train(load_config("helen_segface_swinb_512", [*overrides, "data.val_split=val", f"out={tmp_path / 'b'}"]))
    run = train(load_config("helen_segface_swinb_512", [*overrides, f"out={tmp_path / 'c'}"]))  # shipped: no val
    assert not (run / "val").exists() and (run / "final.safetensors").exists()
