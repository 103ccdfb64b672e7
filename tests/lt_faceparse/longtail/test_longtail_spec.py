"""The ``longtail:`` config section: canonical form, labels, validation errors that name file and key."""

from __future__ import annotations

import pytest

from lt_faceparse.engine.config import DEFAULTS, dump_config, load_config
from lt_faceparse.errors import DataError
from lt_faceparse.longtail.spec import canonical_longtail, default_longtail, is_plain, needs_priors, remedy_label


def test_defaults_are_plain_and_need_nothing():
    assert DEFAULTS["longtail"] == default_longtail() == {"loss": "plain", "sampler": "uniform", "copy_paste": None,
                                                          "priors": None, "retrain_classifier": None}
    section = canonical_longtail(default_longtail())
    assert section == default_longtail() and is_plain(section) and not needs_priors(section)
    assert remedy_label(section) == "plain"
    # a priors file alone switches nothing on
    assert is_plain(canonical_longtail({"priors": "freq/class_frequencies.csv"}))


def test_bare_names_expand_to_the_published_defaults():
    section = canonical_longtail({"loss": "focal", "sampler": "repeat_factor", "copy_paste": {}})
    assert section["loss"] == {"name": "focal", "gamma": 2.0, "weights": "none", "beta": 0.999, "counts": "pixels"}
    assert section["sampler"] == {"name": "repeat_factor", "threshold": 0.001, "epoch_size": "expanded"}
    assert section["copy_paste"] == {"classes": None, "prob": 0.5, "jitter": 0.02}
    assert canonical_longtail({"loss": "seesaw"})["loss"] == {"name": "seesaw", "p": 0.8, "q": 2.0}
    assert canonical_longtail({"loss": "logit_adjusted"})["loss"] == {"name": "logit_adjusted", "tau": 1.0}
    assert canonical_longtail({"loss": "weighted_ce"})["loss"] == {
        "name": "weighted_ce", "weights": "effective_number", "beta": 0.999, "counts": "pixels"}
    assert canonical_longtail({"loss": {"name": "plain"}})["loss"] == "plain"
    assert canonical_longtail(section) == section  # idempotent


def test_labels_name_every_remedy_and_its_parameters():
    assert remedy_label({"loss": {"name": "focal", "gamma": 2}}) == "focal(γ=2)"
    assert remedy_label({"loss": {"name": "focal", "gamma": 1.5, "weights": "effective_number", "beta": 0.99,
                                  "counts": "images"}}) == "focal(γ=1.5, α: effective number β=0.99, images)"
    assert remedy_label({"loss": {"name": "weighted_ce", "weights": "inverse_freq", "counts": "images"}}) \
        == "wce(inverse image freq)"
    assert remedy_label({"loss": {"name": "logit_adjusted", "tau": 0.5}}) == "LA(τ=0.5)"
    assert remedy_label({"loss": "seesaw"}) == "seesaw(p=0.8, q=2)"
    assert remedy_label({"sampler": {"name": "repeat_factor", "threshold": 0.3, "epoch_size": "dataset"},
                         "copy_paste": {"classes": ["hat", "neck_l"], "prob": 0.5}}) \
        == "RFS(t=0.3, same epoch size) + copy-paste(p=0.5, hat,neck_l)"


@pytest.mark.parametrize("override,key,problem", [
    ("longtail.loss=focl", "longtail.loss", "unknown loss 'focl'"),
    ("longtail.loss={name: focal, gama: 1}", "longtail.loss", "unknown parameters ['gama']"),
    ("longtail.loss={name: focal, gamma: -1}", "longtail.loss.gamma", "must be a number in [0, inf]"),
    ("longtail.loss={name: weighted_ce, beta: 1.0}", "longtail.loss.beta", "[0, 1)"),
    ("longtail.loss={name: weighted_ce, weights: median}", "longtail.loss.weights", "inverse_freq, effective_number"),
    ("longtail.loss={name: weighted_ce, counts: boxes}", "longtail.loss.counts", "pixels, images"),
    ("longtail.sampler={name: repeat_factor, threshold: 0}", "longtail.sampler.threshold", "(0, 1]"),
    ("longtail.sampler={name: repeat_factor, epoch_size: short}", "longtail.sampler.epoch_size", "expanded, dataset"),
    ("longtail.sampler=balanced", "longtail.sampler", "unknown sampler 'balanced'"),
    ("longtail.copy_paste={prob: 2}", "longtail.copy_paste.prob", "[0, 1]"),
    ("longtail.copy_paste={classes: []}", "longtail.copy_paste.classes", "list of distinct class names"),
    ("longtail.copy_paste={scale: 1}", "longtail.copy_paste", "unknown keys ['scale']"),
    ("longtail.copy_paste=yes", "longtail.copy_paste", "must be null or a mapping"),
    ("longtail.priors={class_names: [a]}", "longtail.priors", "missing ['pixel_counts'"),
    ("longtail.priors=3", "longtail.priors", "class_frequencies.csv path"),
])
def test_bad_values_name_the_key_and_its_origin(override, key, problem):
    with pytest.raises(DataError) as err:
        load_config("synth_tiny", [override, "out=/tmp/x"])
    message = str(err.value)
    assert message.startswith(f"config error: {key}: ") and message.endswith("(from command line)") and problem in message


def test_unknown_longtail_key_is_refused(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("base: " + str(load_config.__globals__["config_dir"]() / "synth_tiny.yaml")
                    + "\nlongtail: {loss: focal, sampling: uniform}\nout: /tmp/x\n")
    with pytest.raises(DataError, match=r"config error: longtail.sampling: unknown key .*\(from .*c.yaml\)"):
        load_config(path)


def test_a_derived_config_replaces_a_remedy_as_a_whole(tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text(dump_config({**load_config("synth_tiny", ["out=/tmp/x"]),
                                 "longtail": {"loss": {"name": "focal", "gamma": 1.0}}}))
    child = tmp_path / "child.yaml"
    child.write_text("base: base.yaml\nlongtail:\n  loss: {name: seesaw}\n")
    config = load_config(child)  # focal's gamma must not leak into seesaw's parameters
    assert config["longtail"]["loss"] == {"name": "seesaw"}
    assert canonical_longtail(config["longtail"])["loss"] == {"name": "seesaw", "p": 0.8, "q": 2.0}


def test_inline_priors_are_validated():
    good = {"class_names": ["a", "b"], "pixel_counts": [10, 2], "images_with_class": [3, 1], "num_images": 3,
            "source": "x"}
    assert canonical_longtail({"priors": good})["priors"] == good
    with pytest.raises(DataError, match="priors.pixel_counts: must be 2 non-negative integers"):
        canonical_longtail({"priors": {**good, "pixel_counts": [1, -1]}})
    with pytest.raises(DataError, match="priors.num_images"):
        canonical_longtail({"priors": {**good, "num_images": 2}})


def test_synthetic_splits_are_a_validated_data_key():
    config = load_config("longtail/base")
    assert config["data"]["synthetic"]["splits"] == [0.4, 0.35, 0.25]
    with pytest.raises(DataError, match="config error: data.synthetic.splits: must be three non-negative"):
        load_config("longtail/base", ["data.synthetic.splits=[0.5, 0.5]"])
