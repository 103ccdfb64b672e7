"""The training config's schema as dataclasses: every key, its type, its default, its meaning.

:class:`TrainConfig` is the typed config; :meth:`TrainConfig.from_dict` checks a plain nested dict (as YAML
gives it) against the field types and the checks declared here, and every error names the dotted key and
where its value came from (:class:`ConfigOrigins`: the YAML file that set it, or the command line).
``None`` in a default means "unset" (see the comment of each key). The free mappings ``model.kwargs``,
``data.synthetic`` and the ``longtail`` settings are checked by their own rules (``data.synthetic``
here, the remedies by :mod:`lt_faceparse.longtail.spec`).
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from types import UnionType
from typing import Any, Callable, Literal, Union

from lt_faceparse.engine.compile import check_compile_setting
from lt_faceparse.errors import ConfigKeyError
from lt_faceparse.longtail.spec import default_longtail, validate_longtail
from lt_faceparse.metrics.protocol import PROTOCOLS
from segface.formulation import CHOICES

COMMAND_LINE = "command line"
SYNTHETIC_KEYS = ("num_images", "size", "seed", "presence", "splits")
# a value's problem, or None when it is fine; (sub.key, problem) names a key inside a free mapping
Check = Callable[[Any], "str | tuple[str, str] | None"]


class ConfigOrigins:
    """Where each key's value came from: ``set(key, origin)`` as files and overrides are read;
    :meth:`of` answers for a key with the origin of the key itself or of its nearest section."""

    def __init__(self, default: str | None = None):
        self.default = default
        self._by_key: dict[str, str] = {}

    def set(self, key: str, origin: str) -> None:
        self._by_key[key] = origin

    def set_tree(self, node: Any, origin: str, prefix: str = "") -> None:
        """``origin`` for every key of the nested mapping ``node`` (and the sections holding them)."""
        if not isinstance(node, dict):
            return
        for key, value in node.items():
            path = f"{prefix}{key}"
            self.set(path, origin)
            self.set_tree(value, origin, f"{path}.")

    def update(self, other: "ConfigOrigins") -> None:
        self._by_key.update(other._by_key)

    def of(self, key: str) -> str | None:
        parts = key.split(".")
        for end in range(len(parts), 0, -1):
            origin = self._by_key.get(".".join(parts[:end]))
            if origin is not None:
                return origin
        return self.default


def _key(default: Any = None, check: Check | None = None, *, name: str | None = None) -> Any:
    """A config key: its default (copied per instance when mutable), an extra value check, and its name in
    the YAML file when that is no Python name (``batch.global``)."""
    metadata = {"check": check, "key": name}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def _at_least(low: int) -> Check:
    return lambda value: None if value >= low else f"must be >= {low}, got {value!r}"


def _non_negative(value: Any) -> str | None:
    return None if value >= 0 and math.isfinite(value) else f"must be a non-negative number, got {value!r}"


def _positive(value: Any) -> str | None:
    return None if value is None or value > 0 else f"must be a positive number or null, got {value!r}"


def _increasing(value: list[int]) -> str | None:
    return None if value == sorted(value) else f"must be an increasing list of epochs, got {value!r}"


def _required(what: str) -> Check:
    return lambda value: f"{what} is required" if value is None else None


def _not_test(value: Any) -> str | None:
    return "validation during training never uses the test split" if value == "test" else None


def _compile_setting(value: Any) -> str | None:
    try:
        check_compile_setting(value)
    except ValueError as err:
        return str(err)
    return None


def _formulation(value: Any) -> str | None:
    # segface's package init builds its model (timm); only the names of the formulations are needed here

    return None if value in CHOICES else f"must be one of {list(CHOICES)}, got {value!r}"


def _device(value: str) -> str | None:
    ok = value in ("auto", "cpu", "cuda") or value.startswith("cuda:")
    return None if ok else f"must be auto, cpu or cuda[:N], got {value!r}"


def _synthetic(value: dict[str, Any] | None) -> str | tuple[str, str] | None:
    if value is None:
        return None
    unknown = set(value) - set(SYNTHETIC_KEYS)
    if unknown:
        return f"unknown keys {sorted(unknown)} (allowed: {', '.join(SYNTHETIC_KEYS)})"
    splits = value.get("splits")
    ok = isinstance(splits, list) and len(splits) == 3 and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in splits) and sum(splits) > 0
    if splits is not None and not ok:
        return "splits", f"must be three non-negative train/val/test fractions, got {splits!r}"
    return None


@dataclass
class ModelConfig:
    name: str | None = _key(check=_required("a registered model name"))  # registry name (lt_faceparse.models)
    kwargs: dict[str, Any] = _key({})  # constructor kwargs; num_classes defaults to the dataset taxonomy's


@dataclass
class DataConfig:
    dataset: str | None = _key(check=_required("a dataset name"))  # celebamask-hq | lapa | helen | folder
    # dataset root; with ``synthetic`` the cache folder of SynthFace-LT
    root: str | None = _key(check=_required("a dataset root (or the SynthFace-LT cache folder)"))
    train_split: str = "train"
    val_split: str | None = _key("val", _not_test)  # validation runs on this split (never on test)
    resolution: int | None = _key(512, lambda v: None if v is None or v > 0 else f"must be positive, got {v!r}")
    merge: str | list[str] | None = "segface"  # CelebAMask-HQ paint order preset (or list of part names)
    augment: bool = False  # dataset-specific training augmentation (LaPa: random affine)
    flip: bool = False  # random horizontal flip with left/right class swap
    warp: Literal["tanh"] | None = None  # None | "tanh" (RoI tanh-warp from 5 landmarks, LaPa)
    # data-loader workers per rank: an integer, or auto (this machine's CPUs per local rank, less one; at most 16)
    num_workers: Literal["auto"] | int = _key("auto", lambda v: None if v == "auto" or v >= 0 else
                                              f"must be an integer >= 0 or auto, got {v!r}")
    # None | {num_images, size, seed[, presence, splits]}: generate SynthFace-LT (data.dataset's format) under root
    synthetic: dict[str, Any] | None = _key(None, _synthetic)


@dataclass
class OptimConfig:
    name: Literal["adamw"] = "adamw"  # one parameter group
    lr: float = _key(1.0e-4, _non_negative)
    weight_decay: float = _key(1.0e-5, _non_negative)
    betas: list[float] = _key([0.9, 0.999])
    epochs: int = _key(300, _at_least(1))
    milestones: list[int] = _key([80, 200], _increasing)  # MultiStepLR, stepped once per epoch
    gamma: float = _key(0.1, _non_negative)


@dataclass
class BatchConfig:
    # images per optimizer step = per_gpu x world size x accumulation
    global_: int | None = _key(32, lambda v: "the global batch size is required" if v is None else _at_least(1)(v),
                               name="global")
    per_gpu: int | None = _key(None, lambda v: None if v is None else _at_least(1)(v))  # None: global / (world x accum)
    # None: global / (world size x per_gpu), or 1 when per_gpu is None
    accumulation: int | None = _key(None, lambda v: None if v is None else _at_least(1)(v))


@dataclass
class ValConfig:
    every_epochs: int = _key(1, _at_least(0))  # validate every N epochs (and always after the last); 0: only after
    batch_size: int = _key(8, _at_least(1))  # per rank
    protocol: str = _key("input", lambda v: None if v in PROTOCOLS else f"must be one of {', '.join(PROTOCOLS)}, "
                                                                        f"got {v!r}")  # metrics.protocol


@dataclass
class CheckpointConfig:
    every_steps: int = _key(0, _at_least(0))  # also checkpoint every N optimizer steps (0: only at epoch ends)
    keep_last: int = _key(2, _at_least(1))  # training checkpoints kept (the final weights are kept apart)


@dataclass
class LongtailConfig:
    """Long-tail remedies (:mod:`lt_faceparse.longtail.spec`); the defaults train exactly as without them."""

    loss: Any = "plain"  # plain | weighted_ce | focal | logit_adjusted | seesaw (bare name or {name, params})
    sampler: Any = "uniform"  # uniform | repeat_factor (bare name or {name: repeat_factor, threshold, epoch_size})
    copy_paste: Any = None  # None | {classes: [names] or null (accessories), prob, jitter}
    priors: Any = None  # None: class counts of the training split (cached) | class_frequencies.csv path | mapping
    # None | {epochs, sampler: class_balanced | repeat_factor, threshold, lws}: cRT / LWS second stage
    retrain_classifier: Any = None


@dataclass
class TrainConfig:
    """A whole training config (``lt_faceparse/configs/*.yaml`` document it again in YAML)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    batch: BatchConfig = field(default_factory=BatchConfig)
    val: ValConfig = field(default_factory=ValConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"  # autocast on CUDA only; fp16 adds a GradScaler
    channels_last: bool = False  # NHWC memory format for model and batches (any device; measured 1.65x faster CPU steps)
    # torch.compile of the training forward: false | true | auto (on CUDA only) | a torch.compile mode
    # (default, reduce-overhead, max-autotune, max-autotune-no-cudagraphs); see lt_faceparse.engine.compile
    compile: bool | str = _key("auto", _compile_setting)
    # SegFace's exact formulation: auto (per device and grad mode) | literal | cpu | gpu; see segface.formulation
    formulation: str = _key("auto", _formulation)
    grad_clip: float | None = _key(None, _positive)  # max global grad norm, or None
    sync_bn: bool = False  # convert BatchNorm to SyncBatchNorm under DDP
    precise_bn_batches: int = _key(0, _at_least(0))  # >0: re-estimate BN running stats of the final weights over N batches
    find_unused_parameters: bool = True  # DDP: allow parameters without gradients (Swin's final norm)
    seed: int = _key(0, _at_least(0))
    deterministic: bool = False  # torch.use_deterministic_algorithms + seeded everything
    device: str = _key("auto", _device)  # auto | cpu | cuda[:N]
    log_every: int = _key(20, _at_least(1))  # optimizer steps between step lines in log.jsonl
    out: str | None = _key(check=_required("a run folder"))  # run folder (on several nodes: one every node sees)
    # false: start fresh (a folder with checkpoints is refused) | true: continue from the newest complete
    # checkpoint in ``out`` | "auto": as true, and a finished run is left as it is (elastic / requeued jobs)
    resume: bool | Literal["auto"] = False
    tensorboard: bool = True  # TensorBoard event files in ``out/tb`` (global rank 0)
    longtail: LongtailConfig = field(default_factory=LongtailConfig)

    @classmethod
    def from_dict(cls, config: dict[str, Any], origins: ConfigOrigins | None = None) -> "TrainConfig":
        """The typed config of a nested dict; :class:`~lt_faceparse.errors.ConfigKeyError` naming the key and its
        origin for an unknown key, a missing required value or a value of the wrong type."""
        origins = origins or ConfigOrigins()
        typed = _build(cls, config, "", origins)
        try:
            validate_longtail(config.get("longtail", {}))
        except ConfigKeyError as err:  # the remedies' rules know the key, the origins know where it came from
            raise ConfigKeyError(err.key, err.problem, origins.of(err.key)) from None
        return typed

    def to_dict(self) -> dict[str, Any]:
        """The plain nested dict (YAML keys) of this config."""
        return _plain(self)


def defaults_dict() -> dict[str, Any]:
    """Every key with its default, as a plain nested dict."""
    config = TrainConfig().to_dict()
    config["longtail"] = default_longtail()
    return config


def _fields(cls: type) -> list[tuple[str, dataclasses.Field, Any]]:
    """(YAML key, field, type) of each field of the dataclass ``cls``."""
    hints = typing.get_type_hints(cls)
    return [(f.metadata.get("key") or f.name, f, hints[f.name]) for f in dataclasses.fields(cls)]


def _build(cls: type, node: Any, prefix: str, origins: ConfigOrigins) -> Any:
    if not isinstance(node, dict):
        raise ConfigKeyError(prefix.rstrip("."), f"expected a mapping, got {node!r}", origins.of(prefix.rstrip(".")))
    fields = _fields(cls)
    names = [key for key, _, _ in fields]
    for key in node:
        if key not in names:
            path = f"{prefix}{key}"
            raise ConfigKeyError(path, f"unknown key (allowed here: {', '.join(sorted(names))})", origins.of(path))
    values = {}
    for key, f, hint in fields:
        path = f"{prefix}{key}"
        if dataclasses.is_dataclass(hint):
            values[f.name] = _build(hint, node.get(key, {}), f"{path}.", origins)
            continue
        value = node[key] if key in node else _default(f)
        _check_value(path, value, hint, f.metadata.get("check"), origins)
        values[f.name] = value
    return cls(**values)


def _default(f: dataclasses.Field) -> Any:
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def _check_value(path: str, value: Any, hint: Any, check: Check | None, origins: ConfigOrigins) -> None:
    if not _matches(value, hint):
        raise ConfigKeyError(path, f"expected {_describe(hint)}, got {value!r}", origins.of(path))
    problem = check(value) if check is not None else None
    if isinstance(problem, tuple):
        sub_key, problem = problem
        path = f"{path}.{sub_key}"
    if problem is not None:
        raise ConfigKeyError(path, problem, origins.of(path))


def _matches(value: Any, hint: Any) -> bool:
    """True when ``value`` (parsed YAML) is of the type ``hint``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return True
    if hint is type(None):
        return value is None
    if origin is Union or origin is UnionType:
        return any(_matches(value, arg) for arg in args)
    if origin is Literal:
        return any(value == arg and type(value) is type(arg) for arg in args)
    if origin is list:
        return isinstance(value, list) and all(_matches(item, args[0]) for item in value)
    if origin is dict or hint is dict:
        return isinstance(value, dict)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _describe(hint: Any) -> str:
    """``hint`` in words, for an error message."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Union or origin is UnionType:
        return " or ".join(_describe(arg) for arg in args)
    if origin is Literal:
        return " or ".join(repr(arg) for arg in args)
    if origin is list:
        return f"a list of {_describe(args[0]).removeprefix('a ').removeprefix('an ')}s"
    words = {type(None): "null", float: "a number", int: "an integer", bool: "true or false", str: "a string",
             dict: "a mapping"}
    return words.get(origin or hint, getattr(hint, "__name__", str(hint)))


def _plain(config: Any) -> dict[str, Any]:
    out = {}
    for key, f, _ in _fields(type(config)):
        value = getattr(config, f.name)
        out[key] = _plain(value) if dataclasses.is_dataclass(value) else value
    return out
