"""Decoupled classifier learning: the classifier of every registered model, τ-normalisation (τ = 0
changes nothing, τ = 1 gives unit-norm class vectors, SegFace's per image), cRT changes only the
classifier, LWS learns only its scales, and both run through the CLI for SegFace and a baseline with
what they did in the run config, the weight file and the records."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lt_faceparse.cli import main as cli_main
from lt_faceparse.engine.config import dump_config, load_config
from lt_faceparse.longtail.classifier import ClassVectorScaling, NoClassifier, find_classifier
from lt_faceparse.longtail.decoupled import class_balanced_draws, retrain_classifier
from lt_faceparse.records import load_record
from lt_faceparse.taxonomy import get_taxonomy
from lt_faceparse.weights import read_metadata

TAX = get_taxonomy("celebamask-hq")
SMALL = {"tiny": {"width": 8}, "segface": {"backbone": "mobilenet", "dim": 32},
         "fcn": {"backbone": "mobilenet", "channels": 16}, "segformer": {"backbone": "mobilenet", "dim": 32},
         "bisenet": {}}


def _model(name: str):
    from lt_faceparse.models import build_model

    torch.manual_seed(0)
    return build_model(name, num_classes=TAX.num_classes, **SMALL[name]).eval()


@pytest.mark.parametrize("name", list(SMALL))
def test_tau_zero_leaves_the_logits_unchanged_bit_for_bit(name):
    model = _model(name)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        before = model(x)
        hooks = ClassVectorScaling(find_classifier(model), TAX.num_classes, tau=0.0)
        after = model(x)
    hooks.remove()
    assert torch.equal(before, after)


def test_tau_one_gives_unit_norm_class_vectors_of_a_convolution():
    model = _model("segformer")
    layer = model.classifier
    with torch.no_grad():
        layer.weight.mul_(torch.arange(1, TAX.num_classes + 1, dtype=torch.float32).view(-1, 1, 1, 1))
    scaling = ClassVectorScaling(find_classifier(model), TAX.num_classes, tau=1.0)
    factors = scaling.conv_factors()
    norms = (layer.weight.flatten(1) * factors.view(-1, 1)).norm(dim=1)
    assert torch.allclose(norms, torch.ones(TAX.num_classes), atol=1e-5)
    # the bias is kept: a zero input gives the bias as logits, before and after
    feats = torch.zeros(1, layer.in_channels, 2, 2)
    assert torch.allclose(layer(feats)[0, :, 0, 0], layer.bias, atol=1e-6)


def test_tau_one_normalises_segface_class_vectors_per_image():
    model = _model("segface")
    mlp = model.face_decoder.output_hypernetwork_mlps
    seen = []
    ClassVectorScaling(find_classifier(model), TAX.num_classes, tau=1.0)
    handle = mlp.register_forward_hook(lambda m, i, o: seen.append(o.detach()))  # runs after the scaling's hook
    with torch.no_grad():
        model(torch.randn(2, 3, 32, 32))
    handle.remove()
    norms = seen[0].norm(dim=-1)
    assert norms.shape == (2, TAX.num_classes)
    assert torch.allclose(norms, torch.ones_like(norms), atol=1e-5)


def test_half_tau_divides_by_the_square_root_of_the_norm():
    model = _model("tiny")
    scaling = ClassVectorScaling(find_classifier(model), TAX.num_classes, tau=0.5)
    norms = model.classifier.weight.flatten(1).norm(dim=1)
    assert torch.allclose(scaling.conv_factors(), norms.pow(-0.5), rtol=1e-6)


def test_fcn_class_vectors_span_its_three_score_layers():
    model = _model("fcn")
    classifier = find_classifier(model)
    assert classifier.layers == (model.score32, model.score16, model.score8)
    scaling = ClassVectorScaling(classifier, TAX.num_classes, tau=1.0)
    rows = torch.cat([m.weight.flatten(1) for m in classifier.layers], dim=1) * scaling.conv_factors().view(-1, 1)
    assert torch.allclose(rows.norm(dim=1), torch.ones(TAX.num_classes), atol=1e-5)


def test_an_unknown_model_has_no_classifier():
    with pytest.raises(NoClassifier, match="no known classifier"):
        find_classifier(torch.nn.Conv2d(3, 19, 1))


def test_class_balanced_draws_make_each_present_class_equally_likely():
    presence = np.zeros((100, 3), dtype=bool)
    presence[:, 0] = True  # every image
    presence[:5, 1] = True  # 5 images hold class 1; class 2 never occurs
    draws = class_balanced_draws(presence, 20_000, np.random.default_rng(0))
    share = presence[draws, 1].mean()
    assert 0.49 < share < 0.53  # half the draws pick class 1 (plus class-0 draws of those 5 images)


def _presence(dataset) -> np.ndarray:
    from lt_faceparse.longtail.priors import split_statistics

    return split_statistics(dataset, cache=False).presence


@pytest.mark.parametrize("lws", [False, True])
def test_crt_changes_only_the_classifier_and_lws_only_its_scales(lws, synth_root):
    from lt_faceparse.data import build_dataset

    dataset = build_dataset("celebamask-hq", synth_root, "train", resolution=32, train=True)
    model = _model("segformer")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    spec = {"epochs": 1, "sampler": "class_balanced", "threshold": 0.5, "lws": lws}
    optim = load_config("synth_tiny", ["out=/unused"])["optim"]
    from lt_faceparse.engine.sampling import EpochSeededDataset

    done = retrain_classifier(model, model, EpochSeededDataset(dataset, 0), _presence(dataset), spec, optim=optim,
                              batch_size=4, seed=0, device=torch.device("cpu"))
    after = model.state_dict()
    classifier = {"classifier.weight", "classifier.bias"}
    for key, value in before.items():
        if key in classifier and not lws:
            assert not torch.equal(value, after[key]), key
        else:
            assert torch.equal(value, after[key]), key  # bit for bit, buffers (BN statistics) included
    assert done["kind"] == ("LWS" if lws else "cRT")
    assert (done["scales"] is not None) == lws
    if lws:
        assert any(abs(s - 1.0) > 1e-6 for s in done["scales"])
    assert all(p.requires_grad for p in model.parameters())  # the freezing is undone


def _config(tmp_path, synth_root, model: str, retrain: dict) -> str:
    config = load_config("synth_tiny", ["out=/unused"])
    config["model"] = {"name": model, "kwargs": dict(SMALL[model])}
    config["data"].update(root=str(synth_root), resolution=32, synthetic=None, num_workers=0)
    config["optim"].update(epochs=1, milestones=[1])
    config["longtail"]["retrain_classifier"] = retrain
    config["find_unused_parameters"] = model == "segface"
    path = tmp_path / f"{model}.yaml"
    path.write_text(dump_config(config))
    return str(path)


@pytest.mark.parametrize("model,lws", [("segface", False), ("segface", True), ("bisenet", False)])
def test_crt_and_lws_train_eval_and_parse_through_the_cli(model, lws, synth_root, tmp_path, capsys):
    from PIL import Image

    retrain = {"epochs": 1, "sampler": "repeat_factor" if lws else "class_balanced", "lws": lws}
    run = tmp_path / "run"
    assert cli_main(["train", "--config", _config(tmp_path, synth_root, model, retrain), "--out", str(run)]) == 0
    meta = read_metadata(run / "final.safetensors")
    stage = meta["longtail"]["classifier_stage"]
    assert stage["kind"] == ("LWS" if lws else "cRT")
    assert meta["longtail"]["label"].startswith("LWS(1 ep, RFS t=0.5)" if lws else "cRT(1 ep, class-balanced)")
    assert load_config(run / "config.yaml")["longtail"]["retrain_classifier"]["lws"] is lws
    val = load_record(run / "val")
    assert val.provenance.longtail["classifier_stage"] == stage
    out = tmp_path / "eval"
    assert cli_main(["eval", "--checkpoint", str(run / "final.safetensors"), "--dataset", "celebamask-hq",
                     "--root", str(synth_root), "--split", "val", "--device", "cpu", "--bootstrap", "0",
                     "--out", str(out)]) == 0
    record = load_record(out)
    assert record.mean_f1 == pytest.approx(val.mean_f1, abs=1e-9)  # LWS scales re-applied from the weight file
    tau = tmp_path / "eval_tau"
    assert cli_main(["eval", "--checkpoint", str(run / "final.safetensors"), "--dataset", "celebamask-hq",
                     "--root", str(synth_root), "--split", "val", "--device", "cpu", "--bootstrap", "0",
                     "--tau-norm", "1", "--out", str(tau)]) == 0
    assert load_record(tau).provenance.posthoc["tau_norm"] == 1.0
    assert "τ-norm(τ=1)" in load_record(tau).label
    Image.fromarray(np.zeros((32, 32, 3), dtype=np.uint8)).save(tmp_path / "face.png")
    assert cli_main(["parse", "--checkpoint", str(run / "final.safetensors"), str(tmp_path / "face.png"),
                     "--out", str(tmp_path / "parsed"), "--tau-norm", "0.5"]) == 0
    assert "tau-normalised" in capsys.readouterr().out


def test_a_bad_retrain_section_names_the_key(tmp_path):
    from lt_faceparse.errors import DataError
    from lt_faceparse.longtail.spec import canonical_longtail

    with pytest.raises(DataError, match="longtail.retrain_classifier.sampler"):
        canonical_longtail({"retrain_classifier": {"sampler": "uniform"}}, source="x.yaml")
    with pytest.raises(DataError, match="longtail.retrain_classifier.epochs"):
        canonical_longtail({"retrain_classifier": {"epochs": 0}}, source="x.yaml")


def test_an_unset_retrain_section_keeps_the_sweep_fingerprints_of_earlier_runs():
    from lt_faceparse.experiments.sweep import config_fingerprint

    config = load_config("synth_tiny", ["out=/unused"])
    config["longtail"]["loss"] = "focal"
    before = {**config, "longtail": {k: v for k, v in config["longtail"].items() if k != "retrain_classifier"}}
    assert config_fingerprint(config) == config_fingerprint(before)
    config["longtail"]["retrain_classifier"] = {"epochs": 1}
    assert config_fingerprint(config) != config_fingerprint(before)


def test_a_run_killed_before_the_classifier_stage_resumes_to_the_same_weights(synth_root, tmp_path):
    from engine_testdata import cut_copy
    from safetensors.torch import load_file

    from lt_faceparse.engine.train import train

    config = load_config(_config(tmp_path, synth_root, "tiny", {"epochs": 2, "lws": True}),
                         [f"out={tmp_path / 'whole'}", "data.val_split=null"])
    whole = train(config)
    cut = cut_copy(whole, tmp_path / "cut", keep_until_step=10**9)  # every checkpoint kept, final weights gone
    resumed = train({**config, "out": str(cut), "resume": True})
    a, b = load_file(str(whole / "final.safetensors")), load_file(str(resumed / "final.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert read_metadata(whole / "final.safetensors")["longtail"]["classifier_stage"] == \
        read_metadata(resumed / "final.safetensors")["longtail"]["classifier_stage"]


def test_a_bad_retrain_override_names_the_key_and_the_command_line():
    from lt_faceparse.engine.config_schema import TrainConfig
    from lt_faceparse.errors import ConfigKeyError

    with pytest.raises(ConfigKeyError) as err:
        load_config("synth_tiny", ["out=/unused", "longtail.retrain_classifier={epochs: 0}"])
    assert str(err.value) == ("config error: longtail.retrain_classifier.epochs: must be a positive integer, got 0 "
                              "(from command line)")
    config = load_config("synth_tiny", ["out=/unused", "longtail.retrain_classifier={epochs: 2, lws: true}"])
    assert TrainConfig.from_dict(config).longtail.retrain_classifier["lws"] is True
