"""Training configs: YAML files with a fixed schema, dotted ``key=value`` overrides, validation.

A config file may start from another one with ``base: other.yaml`` (a path relative to the file);
its keys are merged over the base's, section by section (``model.kwargs`` and ``data.synthetic`` are
replaced as a whole). The schema (every key, its default and meaning)
is :data:`DEFAULTS` below; the shipped files in ``lt_faceparse/configs/`` document it again in
YAML. :func:`load_config` returns a plain dict of plain types, ready for :func:`train` and for
saving as the run's ``config.yaml``.
"""

from __future__ import annotations

import copy
import os
import re
from importlib import resources
from pathlib import Path
from typing import Any, Iterable

import yaml

from lt_faceparse.engine.compile import check_compile_setting
from lt_faceparse.errors import DataError, LTFaceParseError
from lt_faceparse.longtail.spec import validate_longtail

# key -> default. ``None`` in a default means "unset" (see the comment of each key).
DEFAULTS: dict[str, Any] = {
    "model": {
        "name": None,  # registry name: segface | bisenet | fcn | segformer | tiny
        "kwargs": {},  # constructor kwargs; num_classes defaults to the dataset taxonomy's
    },
    "data": {
        "dataset": None,  # celebamask-hq | lapa | helen | folder
        "root": None,  # dataset root; with ``synthetic`` the cache folder of SynthFace-LT
        "train_split": "train",
        "val_split": "val",  # validation runs on this split (never on test)
        "resolution": 512,  # square network input side
        "merge": "segface",  # CelebAMask-HQ paint order preset (or list of part names)
        "augment": False,  # dataset-specific training augmentation (LaPa: random affine)
        "flip": False,  # random horizontal flip with left/right class swap
        "warp": None,  # None | "tanh" (RoI tanh-warp from 5 landmarks, LaPa)
        # data-loader workers per rank: an integer, or auto (this machine's CPUs per local rank, less one; at most 16)
        "num_workers": "auto",
        # None | {num_images, size, seed[, presence, splits]}: generate SynthFace-LT (data.dataset's format) under root
        "synthetic": None,
    },
    "optim": {
        "name": "adamw",  # one parameter group
        "lr": 1.0e-4,
        "weight_decay": 1.0e-5,
        "betas": [0.9, 0.999],
        "epochs": 300,
        "milestones": [80, 200],  # MultiStepLR, stepped once per epoch
        "gamma": 0.1,
    },
    "batch": {
        "global": 32,  # images per optimizer step = per_gpu x world size x accumulation
        "per_gpu": None,  # None: global / (world size x accumulation)
        "accumulation": None,  # None: global / (world size x per_gpu), or 1 when per_gpu is None
    },
    "val": {
        "every_epochs": 1,  # validate every N epochs (and always after the last); 0: only after the last
        "batch_size": 8,  # per rank
        "protocol": "input",  # input | native
    },
    "checkpoint": {
        "every_steps": 0,  # also checkpoint every N optimizer steps (0: only at epoch ends)
        "keep_last": 2,  # training checkpoints kept (the final weights are kept apart)
    },
    "precision": "fp32",  # fp32 | bf16 | fp16 (autocast on CUDA only; fp16 adds a GradScaler)
    "channels_last": False,  # NHWC memory format for model and batches (any device; measured 1.65x faster CPU steps)
    # torch.compile of the training forward: false | true | auto (on CUDA only) | a torch.compile mode
    # (default, reduce-overhead, max-autotune, max-autotune-no-cudagraphs); see lt_faceparse.engine.compile
    "compile": "auto",
    # SegFace's exact formulation: auto (per device and grad mode) | literal | cpu | gpu; see segface.formulation
    "formulation": "auto",
    "grad_clip": None,  # max global grad norm, or None
    "sync_bn": False,  # convert BatchNorm to SyncBatchNorm under DDP
    "precise_bn_batches": 0,  # >0: re-estimate BN running stats of the final weights over N train batches
    "find_unused_parameters": True,  # DDP: allow parameters without gradients (Swin's final norm)
    "seed": 0,
    "deterministic": False,  # torch.use_deterministic_algorithms + seeded everything
    "device": "auto",  # auto | cpu | cuda
    "log_every": 20,  # optimizer steps between step lines in log.jsonl
    "out": None,  # run folder (on several nodes: on a filesystem every node sees)
    # false: start fresh (a folder with checkpoints is refused) | true: continue from the newest complete
    # checkpoint in ``out`` | "auto": as true, and a finished run is left as it is (elastic / requeued jobs)
    "resume": False,
    "tensorboard": True,  # TensorBoard event files in ``out/tb`` (global rank 0)
    # long-tail remedies (lt_faceparse.longtail.spec); the defaults train exactly as without them
    "longtail": {
        "loss": "plain",  # plain | weighted_ce | focal | logit_adjusted | seesaw (bare name or {name, params})
        "sampler": "uniform",  # uniform | repeat_factor (bare name or {name: repeat_factor, threshold, epoch_size})
        "copy_paste": None,  # None | {classes: [names] or null (accessories), prob, jitter}
        "priors": None,  # None: class counts of the training split (cached) | class_frequencies.csv path | mapping
        # None | {epochs, sampler: class_balanced | repeat_factor, threshold, lws}: cRT / LWS second stage
        "retrain_classifier": None,
    },
}



class _Loader(yaml.SafeLoader):
    """YAML loader that also reads ``1e-4`` (no dot) as a float, as users write learning rates."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                   |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                   |\.[0-9_]+(?:[eE][-+][0-9]+)?
                   |[-+]?\.(?:inf|Inf|INF)
                   |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."),
)


def parse_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)


class ConfigError(LTFaceParseError, ValueError):
    """A config that cannot run as asked (e.g. a global batch that does not split over the world)."""


PRECISIONS = ("fp32", "bf16", "fp16")
PROTOCOLS = ("input", "native")
# keys inside these are not checked here (the longtail ones by lt_faceparse.longtail.spec)
FREE_DICTS = {("model", "kwargs"), ("data", "synthetic"), ("longtail", "loss"), ("longtail", "sampler"),
              ("longtail", "copy_paste"), ("longtail", "priors"), ("longtail", "retrain_classifier")}


def config_dir() -> Path:
    """Folder of the YAML configs shipped with the package."""
    return Path(str(resources.files("lt_faceparse") / "configs"))


def list_configs() -> list[Path]:
    return sorted(config_dir().glob("*.yaml"))


def resolve_config_path(path: str | Path) -> Path:
    """``path`` itself if it exists, else a shipped config of that name (with or without ``.yaml``)."""
    path = Path(path)
    if path.exists():
        return path
    for candidate in (config_dir() / path, config_dir() / f"{path}.yaml",
                      config_dir() / path.name, config_dir() / f"{path.name}.yaml"):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"{path}: no such config file (shipped configs: "
                            f"{', '.join(p.stem for p in list_configs())})")


def load_config(path: str | Path, overrides: Iterable[str] = ()) -> dict[str, Any]:
    """Read a YAML config (following ``base:``), apply ``key.sub=value`` overrides, fill defaults, validate."""
    path = resolve_config_path(path)
    raw = _read_with_bases(path, seen=())
    config = merge_dicts(DEFAULTS, raw)
    for item in overrides:
        apply_override(config, item, source=path)
    validate_config(config, source=path)
    return config


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The keys a config file sets, its ``base:`` chain merged in (no defaults filled, not validated)."""
    return _read_with_bases(Path(path), seen=())


def _read_with_bases(path: Path, seen: tuple[Path, ...]) -> dict[str, Any]:
    path = path.resolve()
    if path in seen:
        raise DataError(path, f"config 'base' chain loops: {' -> '.join(map(str, seen + (path,)))}")
    try:
        raw = parse_yaml(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise DataError(path, f"not valid YAML ({err})") from None
    if not isinstance(raw, dict):
        raise DataError(path, f"a config must be a mapping, got {type(raw).__name__}")
    base = raw.pop("base", None)
    if base is None:
        return raw
    base_path = (path.parent / base) if not Path(base).is_absolute() else Path(base)
    if not base_path.exists():
        raise DataError(path, f"base config {base!r} not found (looked at {base_path})")
    return merge_dicts(_read_with_bases(base_path, seen + (path,)), raw)


def merge_dicts(base: dict[str, Any], update: dict[str, Any], _prefix: tuple[str, ...] = ()) -> dict[str, Any]:
    """Deep copy of ``base`` with ``update`` merged in, section by section. Other values, and the free
    mappings ``model.kwargs`` and ``data.synthetic``, replace the base's as a whole."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        path = _prefix + (key,)
        if isinstance(value, dict) and isinstance(out.get(key), dict) and path not in FREE_DICTS:
            out[key] = merge_dicts(out[key], value, path)
        else:
            out[key] = copy.deepcopy(value)
    return out


def apply_override(config: dict[str, Any], item: str, *, source: str | Path | None = None) -> None:
    """Set ``a.b.c=value`` in place; the value is parsed as YAML (``3``, ``1e-4``, ``[1, 2]``, ``null``)."""
    key, sep, text = item.partition("=")
    if not sep or not key:
        raise DataError(source, f"override {item!r} is not of the form key.sub=value")
    try:
        value = parse_yaml(text)
    except yaml.YAMLError as err:
        raise DataError(source, f"override {item!r}: value is not valid YAML ({err})") from None
    parts = key.split(".")
    node = config
    for depth, part in enumerate(parts[:-1]):
        if not isinstance(node.get(part), dict):
            if node.get(part) is None and tuple(parts[:depth + 1]) in FREE_DICTS:
                node[part] = {}
            else:
                raise DataError(source, f"override {item!r}: {'.'.join(parts[:depth + 1])} is not a section")
        node = node[part]
    node[parts[-1]] = value


def validate_config(config: dict[str, Any], *, source: str | Path | None = None) -> None:
    """Raise :class:`DataError` naming ``source`` and the key for any unknown key or bad value."""
    _check_keys(config, DEFAULTS, (), source)

    def fail(key: str, problem: str) -> None:
        raise DataError(source, f"config key {key}: {problem}")

    model, data, optim, batch = config["model"], config["data"], config["optim"], config["batch"]
    if not isinstance(model["name"], str):
        fail("model.name", "a registered model name is required")
    if not isinstance(model["kwargs"], dict):
        fail("model.kwargs", "must be a mapping")
    if not isinstance(data["dataset"], str):
        fail("data.dataset", "a dataset name is required")
    if data["root"] is None:
        fail("data.root", "a dataset root (or the SynthFace-LT cache folder) is required")
    if data["resolution"] is not None and (not isinstance(data["resolution"], int) or data["resolution"] <= 0):
        fail("data.resolution", f"must be a positive integer, got {data['resolution']!r}")
    if data["warp"] not in (None, "tanh"):
        fail("data.warp", f"must be null or 'tanh', got {data['warp']!r}")
    if data["val_split"] == "test":
        fail("data.val_split", "validation during training never uses the test split")
    synthetic = data["synthetic"]
    if synthetic is not None:
        if not isinstance(synthetic, dict):
            fail("data.synthetic", "must be null or a mapping {num_images, size, seed}")
        unknown = set(synthetic) - {"num_images", "size", "seed", "presence", "splits"}
        if unknown:
            fail("data.synthetic", f"unknown keys {sorted(unknown)} (allowed: num_images, size, seed, presence, "
                                   f"splits)")
        splits = synthetic.get("splits")
        if splits is not None and (not isinstance(splits, list) or len(splits) != 3
                                   or not all(isinstance(v, (int, float)) and v >= 0 for v in splits)
                                   or sum(splits) <= 0):
            fail("data.synthetic.splits", f"must be three non-negative train/val/test fractions, got {splits!r}")
    if optim["name"] != "adamw":
        fail("optim.name", f"only 'adamw' is supported, got {optim['name']!r}")
    for key in ("lr", "weight_decay", "gamma"):
        if not isinstance(optim[key], (int, float)) or optim[key] < 0:
            fail(f"optim.{key}", f"must be a non-negative number, got {optim[key]!r}")
    if not isinstance(optim["epochs"], int) or optim["epochs"] < 1:
        fail("optim.epochs", f"must be a positive integer, got {optim['epochs']!r}")
    milestones = optim["milestones"]
    if not isinstance(milestones, list) or any(not isinstance(m, int) for m in milestones) \
            or milestones != sorted(milestones):
        fail("optim.milestones", f"must be an increasing list of epochs, got {milestones!r}")
    for key in ("global", "per_gpu", "accumulation"):
        value = batch[key]
        if value is not None and (not isinstance(value, int) or value < 1):
            fail(f"batch.{key}", f"must be a positive integer or null, got {value!r}")
    if batch["global"] is None:
        fail("batch.global", "the global batch size is required")
    if config["precision"] not in PRECISIONS:
        fail("precision", f"must be one of {PRECISIONS}, got {config['precision']!r}")
    if config["val"]["protocol"] not in PROTOCOLS:
        fail("val.protocol", f"must be one of {PROTOCOLS}, got {config['val']['protocol']!r}")
    if config["grad_clip"] is not None and (not isinstance(config["grad_clip"], (int, float))
                                            or config["grad_clip"] <= 0):
        fail("grad_clip", f"must be a positive number or null, got {config['grad_clip']!r}")
    ckpt = config["checkpoint"]
    if not isinstance(ckpt["every_steps"], int) or ckpt["every_steps"] < 0:
        fail("checkpoint.every_steps", f"must be an integer >= 0, got {ckpt['every_steps']!r}")
    if not isinstance(ckpt["keep_last"], int) or ckpt["keep_last"] < 1:
        fail("checkpoint.keep_last", f"must be an integer >= 1, got {ckpt['keep_last']!r}")
    if data["num_workers"] != "auto" and (isinstance(data["num_workers"], bool) or not isinstance(data["num_workers"], int)
                                          or data["num_workers"] < 0):
        fail("data.num_workers", f"must be an integer >= 0 or auto, got {data['num_workers']!r}")
    try:
        check_compile_setting(config["compile"])
    except ValueError as err:
        fail("compile", str(err))
    from segface.formulation import CHOICES as FORMULATIONS  # SegFace's key; imported when a config is checked

    if config["formulation"] not in FORMULATIONS:
        fail("formulation", f"must be one of {list(FORMULATIONS)}, got {config['formulation']!r}")
    for key in ("channels_last", "sync_bn", "find_unused_parameters", "deterministic", "tensorboard"):
        if not isinstance(config[key], bool):
            fail(key, f"must be true or false, got {config[key]!r}")
    if not isinstance(config["resume"], bool) and config["resume"] != "auto":
        fail("resume", f"must be true, false or auto, got {config['resume']!r}")
    for key in ("log_every", "seed", "precise_bn_batches"):
        if not isinstance(config[key], int) or config[key] < (1 if key == "log_every" else 0):
            fail(key, f"must be an integer, got {config[key]!r}")
    if config["out"] is None:
        fail("out", "a run folder is required")
    if config["device"] not in ("auto", "cpu", "cuda") and not str(config["device"]).startswith("cuda:"):
        fail("device", f"must be auto, cpu or cuda[:N], got {config['device']!r}")
    validate_longtail(config["longtail"], source=source)


def _check_keys(node: dict[str, Any], schema: dict[str, Any], prefix: tuple[str, ...],
                source: str | Path | None) -> None:
    for key, value in node.items():
        path = prefix + (key,)
        if key not in schema:
            raise DataError(source, f"unknown config key {'.'.join(path)} "
                                    f"(allowed here: {', '.join(sorted(schema))})")
        if isinstance(schema[key], dict) and path not in FREE_DICTS:
            if not isinstance(value, dict):
                raise DataError(source, f"config key {'.'.join(path)} must be a mapping")
            _check_keys(value, schema[key], path, source)


def resolve_batch(batch: dict[str, Any], world_size: int) -> tuple[int, int, int]:
    """(global, per_gpu, accumulation) with ``global == per_gpu * world_size * accumulation`` checked."""
    total, per_gpu, accum = batch["global"], batch["per_gpu"], batch["accumulation"]
    if per_gpu is None:
        accum = accum or 1
        per_gpu, rest = divmod(total, world_size * accum)
        if rest or per_gpu == 0:
            raise ConfigError(f"batch.global={total} is not divisible by world size {world_size} "
                             f"x accumulation {accum}")
    elif accum is None:
        accum, rest = divmod(total, world_size * per_gpu)
        if rest or accum == 0:
            raise ConfigError(f"batch.global={total} is not a multiple of batch.per_gpu={per_gpu} "
                             f"x world size {world_size}")
    if per_gpu * world_size * accum != total:
        raise ConfigError(f"batch.global={total} != per_gpu {per_gpu} x world size {world_size} "
                         f"x accumulation {accum} = {per_gpu * world_size * accum}")
    return total, per_gpu, accum


def expand_path(path: str | Path) -> Path:
    """``~`` and ``$VARS`` expanded."""
    return Path(os.path.expandvars(os.path.expanduser(str(path))))


def dump_config(config: dict[str, Any]) -> str:
    """YAML text of a config (what the run folder's ``config.yaml`` holds)."""
    return yaml.safe_dump(config, sort_keys=False, default_flow_style=None)
