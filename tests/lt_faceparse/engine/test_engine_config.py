"""Training configs: every shipped file validates, overrides are typed, a config round-trips."""

from __future__ import annotations

import pytest
import yaml

from lt_faceparse.engine.config import (DEFAULTS, apply_override, config_dir, dump_config, list_configs, load_config,
                                        merge_dicts, resolve_batch, validate_config)
from lt_faceparse.engine.config_schema import TrainConfig
from lt_faceparse.errors import ConfigKeyError, DataError

PAPER_SETTINGS = {
    # name: (dataset, backbone, fusion, resolution, global batch, warp, augment)
    "celeba_segface_swinb_224": ("celebamask-hq", "swin_base", True, 224, 32, None, False),
    "celeba_segface_swinb_256": ("celebamask-hq", "swin_base", True, 256, 32, None, False),
    "celeba_segface_swinb_448": ("celebamask-hq", "swin_base", True, 448, 32, None, False),
    "celeba_segface_swinb_512": ("celebamask-hq", "swin_base", True, 512, 32, None, False),
    "celeba_segface_swinv2b_512": ("celebamask-hq", "swinv2_base", True, 512, 32, None, False),
    "celeba_segface_resnet101_512": ("celebamask-hq", "resnet101", True, 512, 32, None, False),
    "celeba_segface_efficientnet_512": ("celebamask-hq", "efficientnet", True, 512, 32, None, False),
    "celeba_segface_mobilenet_512": ("celebamask-hq", "mobilenet", True, 512, 32, None, False),
    "celeba_segface_convnext_512": ("celebamask-hq", "convnext_base", True, 512, 32, None, False),
    "celeba_segface_swinb_nofusion_512": ("celebamask-hq", "swin_base", False, 512, 32, None, False),
    "lapa_segface_swinb_512": ("lapa", "swin_base", True, 512, 32, "tanh", True),
    "helen_segface_swinb_512": ("helen", "swin_base", True, 512, 16, None, False),
}


def test_every_shipped_config_validates_and_paper_settings_match():
    shipped = {p.stem: load_config(p) for p in list_configs()}
    assert set(PAPER_SETTINGS) | {"synth_tiny", "synth_segface_mobilenet"} <= set(shipped)
    for name, (dataset, backbone, fusion, res, batch, warp, augment) in PAPER_SETTINGS.items():
        c = shipped[name]
        assert c["model"] == {"name": "segface", "kwargs": {"backbone": backbone, "fusion": fusion,
                                                            "pretrained": True}}, name
        assert (c["data"]["dataset"], c["data"]["resolution"], c["data"]["warp"], c["data"]["augment"]) == \
            (dataset, res, warp, augment), name
        assert c["batch"]["global"] == batch
        assert resolve_batch(c["batch"], 8) == (batch, batch // 8, 1)  # the paper's 8 GPUs
        assert c["optim"] == {"name": "adamw", "lr": 1e-4, "weight_decay": 1e-5, "betas": [0.9, 0.999],
                              "epochs": 300, "milestones": [80, 200], "gamma": 0.1}
        assert c["precision"] == "fp32"
        assert c["data"]["val_split"] == (None if dataset == "helen" else "val")  # Helen's tree has no val split
    for name in ("synth_tiny", "synth_segface_mobilenet"):
        c = shipped[name]
        assert c["data"]["synthetic"] and c["data"]["resolution"] <= 128 and c["optim"]["epochs"] <= 10


def test_config_round_trips_through_yaml(tmp_path):
    config = load_config("synth_tiny", ["optim.lr=3e-4", "batch.per_gpu=2", "out=/tmp/x"])
    path = tmp_path / "config.yaml"
    path.write_text(dump_config(config))
    assert load_config(path) == config
    assert yaml.safe_load(path.read_text()) == config


def test_overrides_are_yaml_typed():
    config = load_config("synth_tiny", ["optim.lr=3e-4", "optim.milestones=[2, 5]", "grad_clip=1.5",
                                        "data.synthetic.num_images=40", "model.kwargs.width=4", "data.warp=null"])
    assert config["optim"]["lr"] == pytest.approx(3e-4) and isinstance(config["optim"]["lr"], float)
    assert config["optim"]["milestones"] == [2, 5]
    assert config["grad_clip"] == 1.5
    assert config["data"]["synthetic"] == {"num_images": 40, "size": 64, "seed": 0}
    assert config["model"]["kwargs"] == {"width": 4}
    assert config["data"]["warp"] is None


def test_derived_config_replaces_model_kwargs_as_a_whole():
    # synth_tiny starts from the Swin-B file; the tiny parser must not inherit backbone/fusion kwargs
    assert load_config("synth_tiny")["model"]["kwargs"] == {"width": 16}


@pytest.mark.parametrize("override, key", [
    ("optim.lrr=1", "optim.lrr"),
    ("precision=fp8", "precision"),
    ("data.val_split=test", "data.val_split"),
    ("optim.milestones=[200, 80]", "optim.milestones"),
    ("batch.global=0", "batch.global"),
    ("compile=fast", "compile"),
    ("compile=1", "compile"),
    ("formulation=fast", "formulation"),
    ("data.num_workers=-1", "data.num_workers"),
    ("data.num_workers=many", "data.num_workers"),
])
def test_bad_overrides_name_the_key_and_the_command_line(override, key):
    with pytest.raises(ConfigKeyError) as err:
        load_config("synth_tiny", [override])
    assert err.value.key == key and err.value.origin == "command line"
    assert str(err.value).startswith(f"config error: {key}: ") and str(err.value).endswith("(from command line)")


def test_the_error_message_of_a_bad_number():
    with pytest.raises(ConfigKeyError) as err:
        load_config("synth_tiny", ["optim.lr=abc"])
    assert str(err.value) == "config error: optim.lr: expected a number, got 'abc' (from command line)"


def test_bad_values_in_files_name_the_file_of_the_base_chain_that_set_them(tmp_path):
    (tmp_path / "base.yaml").write_text("base: " + str(config_dir() / "synth_tiny.yaml") + "\noptim: {epochs: 2.5}\n")
    (tmp_path / "child.yaml").write_text("base: base.yaml\noptim: {lr: 0.1}\nseed: -3\n")
    with pytest.raises(ConfigKeyError) as err:
        load_config(tmp_path / "child.yaml")
    assert (err.value.key, err.value.origin) == ("optim.epochs", str(tmp_path / "base.yaml"))
    assert str(err.value) == f"config error: optim.epochs: expected an integer, got 2.5 (from {tmp_path / 'base.yaml'})"
    with pytest.raises(ConfigKeyError) as err:  # fixed in the child file: the next bad key is the child's own
        load_config(tmp_path / "child.yaml", ["optim.epochs=3"])
    assert (err.value.key, err.value.origin) == ("seed", str(tmp_path / "child.yaml"))
    with pytest.raises(ConfigKeyError) as err:  # a key of the shipped base file keeps that file as its origin
        load_config(tmp_path / "child.yaml", ["optim.epochs=3", "seed=1", "precision=fp8"])
    assert err.value.origin == "command line"
    (tmp_path / "typo.yaml").write_text("base: child.yaml\noptim: {epochs: 3}\nseed: 1\nvall: {every_epochs: 1}\n")
    with pytest.raises(ConfigKeyError, match=r"config error: vall: unknown key \(allowed here: .*\) \(from .*typo.yaml\)"):
        load_config(tmp_path / "typo.yaml")


def test_a_required_key_no_file_sets_names_the_config_asked_for(tmp_path):
    (tmp_path / "bare.yaml").write_text("model: {name: tiny}\n")
    with pytest.raises(ConfigKeyError) as err:
        load_config(tmp_path / "bare.yaml")
    assert (err.value.key, err.value.origin) == ("data.dataset", str(tmp_path / "bare.yaml"))
    assert "a dataset name is required" in str(err.value)


def test_typed_config_round_trips_and_is_typed():
    config = load_config("synth_tiny", ["out=/tmp/x"])
    typed = validate_config(config)
    assert isinstance(typed, TrainConfig) and typed.optim.lr == 1e-2 and typed.batch.global_ == 8
    assert typed.model.kwargs == {"width": 16} and typed.to_dict() == config
    assert TrainConfig().to_dict()["batch"] == {"global": 32, "per_gpu": None, "accumulation": None}


def test_base_loop_is_reported(tmp_path):
    (tmp_path / "a.yaml").write_text("base: b.yaml\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\n")
    with pytest.raises(DataError, match="loops"):
        load_config(tmp_path / "a.yaml")


def test_apply_override_rejects_non_sections():
    config = {"seed": 0, "model": {"name": "tiny", "kwargs": {}}}
    with pytest.raises(ConfigKeyError, match=r"config error: seed.x: seed is not a section \(from command line\)"):
        apply_override(config, "seed.x=1")
    with pytest.raises(ConfigKeyError, match="key.sub=value"):
        apply_override(config, "seed")


def test_old_run_configs_still_load(tmp_path):
    """A run's config.yaml written before a key existed loads with that key's default."""
    config = load_config("synth_tiny", ["out=/tmp/x"])
    old = {key: value for key, value in config.items() if key not in ("compile", "formulation", "longtail")}
    old["data"] = {key: value for key, value in config["data"].items() if key != "num_workers"}
    (tmp_path / "config.yaml").write_text(dump_config(old))
    assert load_config(tmp_path / "config.yaml") == merge_dicts(DEFAULTS, old)


def test_resolve_batch_known_answers():
    assert resolve_batch({"global": 32, "per_gpu": 4, "accumulation": None}, 8) == (32, 4, 1)
    assert resolve_batch({"global": 32, "per_gpu": 4, "accumulation": None}, 1) == (32, 4, 8)
    assert resolve_batch({"global": 32, "per_gpu": None, "accumulation": None}, 2) == (32, 16, 1)
    assert resolve_batch({"global": 32, "per_gpu": None, "accumulation": 4}, 2) == (32, 4, 4)
    assert resolve_batch({"global": 16, "per_gpu": 2, "accumulation": 1}, 8) == (16, 2, 1)
    with pytest.raises(ValueError, match="not a multiple"):
        resolve_batch({"global": 32, "per_gpu": 3, "accumulation": None}, 2)
    with pytest.raises(ValueError, match="!="):
        resolve_batch({"global": 32, "per_gpu": 4, "accumulation": 2}, 2)
    with pytest.raises(ValueError, match="not divisible"):
        resolve_batch({"global": 30, "per_gpu": None, "accumulation": None}, 4)


def test_defaults_are_the_papers():
    assert DEFAULTS["optim"]["lr"] == 1e-4 and DEFAULTS["optim"]["weight_decay"] == 1e-5
    assert DEFAULTS["optim"]["milestones"] == [80, 200] and DEFAULTS["optim"]["epochs"] == 300
    assert DEFAULTS["batch"]["global"] == 32 and DEFAULTS["precision"] == "fp32"


def test_baseline_configs_share_segface_data_and_schedule():
    segface = load_config("celeba_segface_swinb_512")
    expected = {"celeba_bisenet_512": ("bisenet", None), "celeba_fcn_swinb_512": ("fcn", "swin_base"),
                "celeba_segformer_swinb_512": ("segformer", "swin_base")}
    for name, (model, backbone) in expected.items():
        c = load_config(name)
        assert c["model"]["name"] == model and c["model"]["kwargs"].get("backbone") == backbone
        assert c["model"]["kwargs"]["pretrained"] is True
        for key in ("data", "optim", "batch", "precision"):
            assert c[key] == segface[key], (name, key)


def test_speed_settings_default_to_auto_and_accept_their_values():
    config = load_config("celeba_segface_swinb_512")
    assert (config["compile"], config["formulation"], config["data"]["num_workers"]) == ("auto", "auto", "auto")
    assert (DEFAULTS["compile"], DEFAULTS["formulation"], DEFAULTS["data"]["num_workers"]) == ("auto", "auto", "auto")
    config = load_config("synth_tiny", ["compile=max-autotune-no-cudagraphs", "formulation=literal",
                                        "data.num_workers=3"])
    assert (config["compile"], config["formulation"], config["data"]["num_workers"]) == \
        ("max-autotune-no-cudagraphs", "literal", 3)
    assert load_config("synth_tiny", ["compile=false"])["compile"] is False
