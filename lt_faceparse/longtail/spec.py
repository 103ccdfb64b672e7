"""The ``longtail:`` config section: validation, canonical form and the labels that name a remedy.

Schema (defaults reproduce the training without remedies bit for bit)::

    longtail:
      loss: plain          # plain | weighted_ce | focal | logit_adjusted | seesaw, bare or as a mapping:
                           #   {name: weighted_ce, weights: effective_number, beta: 0.999, counts: pixels}
                           #   {name: focal, gamma: 2.0, weights: none}
                           #   {name: logit_adjusted, tau: 1.0}
                           #   {name: seesaw, p: 0.8, q: 2.0}
      sampler: uniform     # uniform | repeat_factor | {name: repeat_factor, threshold: 0.001, epoch_size: expanded}
      copy_paste: null     # null | {classes: [eye_g, hat, ...] (null: the accessories), prob: 0.5, jitter: 0.02}
      priors: null         # null (from the training split) | path of a class_frequencies.csv | a mapping
                           #   {class_names, pixel_counts, images_with_class, num_images, source}
      retrain_classifier: null  # null | {epochs: 2, sampler: class_balanced | repeat_factor, threshold: 0.5,
                                #   lws: false}: the decoupled second stage (cRT, or LWS with lws: true;
                                #   lt_faceparse.longtail.decoupled); threshold: repeat_factor's t only

A bare name means the published defaults of that remedy (:data:`LOSS_DEFAULTS`,
:data:`SAMPLER_DEFAULTS`). :func:`canonical_longtail` expands every setting to its full parameter
set, which is what the run's ``config.yaml``, the weight file and the result records store, and
:func:`remedy_label` names it in tables (``focal(γ=2)``, ``RFS(t=0.05)`` ...).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from lt_faceparse.errors import ConfigKeyError

PLAIN = "plain"
UNIFORM = "uniform"

# loss name -> its parameters and their published defaults
LOSS_DEFAULTS: dict[str, dict[str, Any]] = {
    PLAIN: {},
    # Cui et al. 2019: beta in {0.9, 0.99, 0.999, 0.9999}; counts = what n_c counts (pixels or images)
    "weighted_ce": {"weights": "effective_number", "beta": 0.999, "counts": "pixels"},
    # Lin et al. 2017: gamma = 2; optional class-balanced alpha (Cui et al.'s CB focal)
    "focal": {"gamma": 2.0, "weights": "none", "beta": 0.999, "counts": "pixels"},
    # Menon et al. 2021: tau = 1, pixel priors
    "logit_adjusted": {"tau": 1.0},
    # Wang et al. 2021: p = 0.8, q = 2.0
    "seesaw": {"p": 0.8, "q": 2.0},
}
SAMPLER_DEFAULTS: dict[str, dict[str, Any]] = {
    UNIFORM: {},
    # Gupta et al. 2019 (LVIS): t = 0.001; epoch_size: expanded (every repeat, LVIS) | dataset (same
    # number of samples per epoch as uniform sampling: the same training budget)
    "repeat_factor": {"threshold": 0.001, "epoch_size": "expanded"},
}
COPY_PASTE_DEFAULTS: dict[str, Any] = {"classes": None, "prob": 0.5, "jitter": 0.02}
WEIGHT_KINDS = ("inverse_freq", "effective_number")
COUNT_UNITS = ("pixels", "images")
EPOCH_SIZES = ("expanded", "dataset")
PRIOR_KEYS = ("class_names", "pixel_counts", "images_with_class", "num_images", "source")
# Kang et al. 2020 retrain the classifier for a few epochs; t = 0.5: near a tail presence of SynthFace-LT
RETRAIN_DEFAULTS: dict[str, Any] = {"epochs": 2, "sampler": "class_balanced", "threshold": 0.5, "lws": False}
RETRAIN_SAMPLERS = ("class_balanced", "repeat_factor")


def default_longtail() -> dict[str, Any]:
    """The section as :data:`lt_faceparse.engine.config.DEFAULTS` holds it."""
    return {"loss": PLAIN, "sampler": UNIFORM, "copy_paste": None, "priors": None, "retrain_classifier": None}


def _fail(source: str | Path | None, key: str, problem: str) -> None:
    raise ConfigKeyError(f"longtail.{key}", problem, source)


def _named(value: Any, defaults: dict[str, dict[str, Any]], key: str, source) -> dict[str, Any]:
    """``{name, **params}`` from a bare name or a mapping, with defaults filled, unknown keys refused."""
    bare = isinstance(value, str)
    if bare:
        value = {"name": value}
    if not isinstance(value, dict):
        _fail(source, key, f"must be a name ({', '.join(defaults)}) or a mapping with 'name', got {value!r}")
    name = value.get("name")
    if name not in defaults:
        _fail(source, key if bare else f"{key}.name",
              f"unknown {key} {name!r} (one of {', '.join(defaults)})")
    unknown = sorted(set(value) - {"name", *defaults[name]})
    if unknown:
        _fail(source, key, f"unknown parameters {unknown} for {name!r} "
                           f"(allowed: {', '.join(defaults[name]) or 'none'})")
    return {"name": name, **defaults[name], **{k: v for k, v in value.items() if k != "name"}}


def _number(source, key: str, value: Any, *, low: float, high: float = math.inf, low_open: bool = False,
            high_open: bool = False) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        lo, hi = ("(" if low_open else "["), (")" if high_open else "]")
        _fail(source, key, f"must be a number in {lo}{low:g}, {high:g}{hi}, got {value!r}")
    return float(value)


def _choice(source, key: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        _fail(source, key, f"must be one of {', '.join(choices)}, got {value!r}")
    return value


def _canonical_loss(value: Any, source) -> str | dict[str, Any]:
    spec = _named(value, LOSS_DEFAULTS, "loss", source)
    name = spec["name"]
    if name == PLAIN:
        return PLAIN
    if name in ("weighted_ce", "focal"):
        kinds = WEIGHT_KINDS if name == "weighted_ce" else ("none", *WEIGHT_KINDS)
        spec["weights"] = _choice(source, "loss.weights", spec["weights"], kinds)
        spec["beta"] = _number(source, "loss.beta", spec["beta"], low=0.0, high=1.0, high_open=True)
        spec["counts"] = _choice(source, "loss.counts", spec["counts"], COUNT_UNITS)
    if name == "focal":
        spec["gamma"] = _number(source, "loss.gamma", spec["gamma"], low=0.0)
    if name == "logit_adjusted":
        spec["tau"] = _number(source, "loss.tau", spec["tau"], low=0.0)
    if name == "seesaw":
        spec["p"] = _number(source, "loss.p", spec["p"], low=0.0)
        spec["q"] = _number(source, "loss.q", spec["q"], low=0.0)
    return spec


def _canonical_sampler(value: Any, source) -> str | dict[str, Any]:
    spec = _named(value, SAMPLER_DEFAULTS, "sampler", source)
    if spec["name"] == UNIFORM:
        return UNIFORM
    spec["threshold"] = _number(source, "sampler.threshold", spec["threshold"], low=0.0, high=1.0, low_open=True)
    spec["epoch_size"] = _choice(source, "sampler.epoch_size", spec["epoch_size"], EPOCH_SIZES)
    return spec


def _canonical_copy_paste(value: Any, source) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        _fail(source, "copy_paste", f"must be null or a mapping {{classes, prob, jitter}}, got {value!r}")
    unknown = sorted(set(value) - set(COPY_PASTE_DEFAULTS))
    if unknown:
        _fail(source, "copy_paste", f"unknown keys {unknown} (allowed: {', '.join(COPY_PASTE_DEFAULTS)})")
    spec = {**COPY_PASTE_DEFAULTS, **value}
    classes = spec["classes"]
    if classes is not None and (not isinstance(classes, list) or not classes
                                or not all(isinstance(c, str) and c for c in classes)
                                or len(set(classes)) != len(classes)):
        _fail(source, "copy_paste.classes", f"must be null (the taxonomy's accessories) or a list of distinct "
                                            f"class names, got {classes!r}")
    spec["prob"] = _number(source, "copy_paste.prob", spec["prob"], low=0.0, high=1.0)
    spec["jitter"] = _number(source, "copy_paste.jitter", spec["jitter"], low=0.0, high=0.5)
    return spec


def _canonical_retrain(value: Any, source) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        _fail(source, "retrain_classifier", f"must be null or a mapping {{{', '.join(RETRAIN_DEFAULTS)}}}, "
                                            f"got {value!r}")
    unknown = sorted(set(value) - set(RETRAIN_DEFAULTS))
    if unknown:
        _fail(source, "retrain_classifier", f"unknown keys {unknown} (allowed: {', '.join(RETRAIN_DEFAULTS)})")
    spec = {**RETRAIN_DEFAULTS, **value}
    epochs = spec["epochs"]
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        _fail(source, "retrain_classifier.epochs", f"must be a positive integer, got {epochs!r}")
    spec["sampler"] = _choice(source, "retrain_classifier.sampler", spec["sampler"], RETRAIN_SAMPLERS)
    spec["threshold"] = _number(source, "retrain_classifier.threshold", spec["threshold"], low=0.0, high=1.0,
                                low_open=True)
    if not isinstance(spec["lws"], bool):
        _fail(source, "retrain_classifier.lws", f"must be true or false, got {spec['lws']!r}")
    return spec


def _canonical_priors(value: Any, source) -> str | dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, (str, Path)):
        return str(value)
    if not isinstance(value, dict):
        _fail(source, "priors", f"must be null, a class_frequencies.csv path or a mapping, got {value!r}")
    missing = [k for k in PRIOR_KEYS if k not in value]
    unknown = sorted(set(value) - set(PRIOR_KEYS) - {"counted"})
    if missing or unknown:
        _fail(source, "priors", f"a priors mapping needs exactly {', '.join(PRIOR_KEYS)} (+ counted); "
                                f"missing {missing}, unknown {unknown}")
    names = value["class_names"]
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        _fail(source, "priors.class_names", "must be a list of class names")
    for key in ("pixel_counts", "images_with_class"):
        counts = value[key]
        if (not isinstance(counts, list) or len(counts) != len(names)
                or not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts)):
            _fail(source, f"priors.{key}", f"must be {len(names)} non-negative integers (one per class)")
    n = value["num_images"]
    if not isinstance(n, int) or n < 1 or max(value["images_with_class"]) > n:
        _fail(source, "priors.num_images", f"must be a positive integer >= every images_with_class, got {n!r}")
    return dict(value)


def canonical_longtail(section: Any, *, source: str | Path | None = None) -> dict[str, Any]:
    """The section with every remedy expanded to its full parameters (bare ``plain``/``uniform``
    stay bare); raises :class:`~lt_faceparse.errors.ConfigKeyError` naming the key and ``source`` for any bad
    value."""
    if not isinstance(section, dict):
        raise ConfigKeyError("longtail", f"must be a mapping, got {section!r}", source)
    unknown = sorted(set(section) - set(default_longtail()))
    if unknown:
        raise ConfigKeyError(f"longtail.{unknown[0]}", f"unknown key (allowed here: {', '.join(default_longtail())})",
                             source)
    section = {**default_longtail(), **section}
    return {
        "loss": _canonical_loss(section["loss"], source),
        "sampler": _canonical_sampler(section["sampler"], source),
        "copy_paste": _canonical_copy_paste(section["copy_paste"], source),
        "priors": _canonical_priors(section["priors"], source),
        "retrain_classifier": _canonical_retrain(section["retrain_classifier"], source),
    }


def validate_longtail(section: Any, *, source: str | Path | None = None) -> None:
    canonical_longtail(section, source=source)


def loss_name(section: dict[str, Any]) -> str:
    loss = section["loss"]
    return loss if isinstance(loss, str) else loss["name"]


def sampler_name(section: dict[str, Any]) -> str:
    sampler = section["sampler"]
    return sampler if isinstance(sampler, str) else sampler["name"]


def is_plain(section: dict[str, Any] | None) -> bool:
    """True when no remedy is switched on (``priors`` alone changes nothing)."""
    if section is None:
        return True
    return loss_name(section) == PLAIN and sampler_name(section) == UNIFORM and section.get("copy_paste") is None \
        and section.get("retrain_classifier") is None


def needs_priors(section: dict[str, Any]) -> bool:
    """Whether training needs class priors (every remedy of the schedule but seesaw, which counts as it
    goes). The decoupled second stage needs only each training image's classes
    (:func:`needs_image_classes`), so a run that adds one to a plain schedule records the same priors."""
    return loss_name(section) not in (PLAIN, "seesaw") or sampler_name(section) != UNIFORM \
        or section.get("copy_paste") is not None


def needs_image_classes(section: dict[str, Any]) -> bool:
    """Whether training needs the classes of each training image (samplers, copy-paste, the second stage)."""
    return sampler_name(section) != UNIFORM or section.get("copy_paste") is not None \
        or section.get("retrain_classifier") is not None


def _g(value: float) -> str:
    return f"{value:g}"


def _weights_label(spec: dict[str, Any]) -> str:
    if spec["weights"] == "inverse_freq":
        return f"inverse {spec['counts'][:-1]} freq"
    return f"effective number β={_g(spec['beta'])}, {spec['counts']}"


def loss_label(loss: str | dict[str, Any]) -> str:
    """``focal(γ=2)``, ``wce(effective number β=0.999, pixels)``, ``LA(τ=1)``, ``seesaw(p=0.8, q=2)``;
    ``''`` for plain."""
    if isinstance(loss, str):
        loss = _canonical_loss(loss, None)
        if isinstance(loss, str):
            return ""
    name = loss["name"]
    if name == "weighted_ce":
        return f"wce({_weights_label(loss)})"
    if name == "focal":
        extra = "" if loss["weights"] == "none" else f", α: {_weights_label(loss)}"
        return f"focal(γ={_g(loss['gamma'])}{extra})"
    if name == "logit_adjusted":
        return f"LA(τ={_g(loss['tau'])})"
    return f"seesaw(p={_g(loss['p'])}, q={_g(loss['q'])})"


def sampler_label(sampler: str | dict[str, Any]) -> str:
    if isinstance(sampler, str):
        sampler = _canonical_sampler(sampler, None)
        if isinstance(sampler, str):
            return ""
    same = ", same epoch size" if sampler["epoch_size"] == "dataset" else ""
    return f"RFS(t={_g(sampler['threshold'])}{same})"


def copy_paste_label(copy_paste: dict[str, Any] | None) -> str:
    if copy_paste is None:
        return ""
    classes = ",".join(copy_paste["classes"]) if copy_paste["classes"] else "accessories"
    return f"copy-paste(p={_g(copy_paste['prob'])}, {classes})"


def retrain_label(retrain: dict[str, Any] | None) -> str:
    """``cRT(2 ep, class-balanced)``, ``LWS(2 ep, RFS t=0.5)``; ``''`` when off."""
    if retrain is None:
        return ""
    sampler = "class-balanced" if retrain["sampler"] == "class_balanced" else f"RFS t={_g(retrain['threshold'])}"
    return f"{'LWS' if retrain['lws'] else 'cRT'}({retrain['epochs']} ep, {sampler})"


def remedy_label(section: dict[str, Any] | None) -> str:
    """Every remedy of a (canonical or raw) section joined with ``+``; ``plain`` when none is on."""
    if section is None:
        return PLAIN
    section = canonical_longtail(section)
    if is_plain(section):
        return PLAIN
    parts = [loss_label(section["loss"]), sampler_label(section["sampler"]), copy_paste_label(section["copy_paste"]),
             retrain_label(section["retrain_classifier"])]
    return " + ".join(p for p in parts if p)
