"""Training configs: YAML files with a fixed schema, dotted ``key=value`` overrides, validation.

A config file may start from another one with ``base: other.yaml`` (a path relative to the file);
its keys are merged over the base's, section by section (``model.kwargs`` and ``data.synthetic`` are
replaced as a whole). The schema (every key, its type, default and meaning) is the typed config
:class:`lt_faceparse.engine.config_schema.TrainConfig`; :data:`DEFAULTS` is its plain dict, and the
shipped files in ``lt_faceparse/configs/`` document it again in YAML. :func:`load_config` returns a
plain dict of plain types, checked against the schema, ready for :func:`train` and for saving as the
run's ``config.yaml`` (old run configs load the same way: keys added since take their defaults).
"""

from __future__ import annotations

import copy
import os
import re
from importlib import resources
from pathlib import Path
from typing import Any, Iterable

import yaml

from lt_faceparse.engine.config_schema import COMMAND_LINE, ConfigOrigins, TrainConfig, defaults_dict
from lt_faceparse.errors import ConfigKeyError, DataError, LTFaceParseError

# key -> default: every key of the schema (lt_faceparse.engine.config_schema.TrainConfig) with its default
DEFAULTS: dict[str, Any] = defaults_dict()


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


# mappings replaced as a whole by a derived config or an override (their keys are checked by their own rules)
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
    """Read a YAML config (following ``base:``), apply ``key.sub=value`` overrides, fill defaults, validate.

    Errors (:class:`~lt_faceparse.errors.ConfigKeyError`) name the key and where its value came from:
    the file of the ``base:`` chain that set it, or the command line for an override."""
    path = resolve_config_path(path)
    raw, origins = _read_with_bases(path, seen=())
    origins.default = str(path.resolve())  # a key no file sets: the config file asked for lacks it
    config = merge_dicts(DEFAULTS, raw)
    for item in overrides:
        apply_override(config, item, origins=origins)
    validate_config(config, origins=origins)
    return config


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The keys a config file sets, its ``base:`` chain merged in (no defaults filled, not validated)."""
    return _read_with_bases(Path(path), seen=())[0]


def _read_with_bases(path: Path, seen: tuple[Path, ...]) -> tuple[dict[str, Any], ConfigOrigins]:
    """The merged keys of ``path`` and its ``base:`` chain, and the file each key's value came from."""
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
    origins = ConfigOrigins()
    if base is None:
        origins.set_tree(raw, str(path))
        return raw, origins
    base_path = (path.parent / base) if not Path(base).is_absolute() else Path(base)
    if not base_path.exists():
        raise DataError(path, f"base config {base!r} not found (looked at {base_path})")
    base_raw, origins = _read_with_bases(base_path, seen + (path,))
    origins.set_tree(raw, str(path))
    return merge_dicts(base_raw, raw), origins


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


def apply_override(config: dict[str, Any], item: str, *, origins: ConfigOrigins | None = None) -> None:
    """Set ``a.b.c=value`` in place; the value is parsed as YAML (``3``, ``1e-4``, ``[1, 2]``, ``null``).
    ``origins`` records that the key now comes from the command line."""
    key, sep, text = item.partition("=")
    if not sep or not key:
        raise ConfigKeyError(item, "an override must be of the form key.sub=value", COMMAND_LINE)
    try:
        value = parse_yaml(text)
    except yaml.YAMLError as err:
        raise ConfigKeyError(key, f"override {item!r}: value is not valid YAML ({err})", COMMAND_LINE) from None
    parts = key.split(".")
    node = config
    for depth, part in enumerate(parts[:-1]):
        if not isinstance(node.get(part), dict):
            if node.get(part) is None and tuple(parts[:depth + 1]) in FREE_DICTS:
                node[part] = {}
            else:
                raise ConfigKeyError(key, f"{'.'.join(parts[:depth + 1])} is not a section", COMMAND_LINE)
        node = node[part]
    node[parts[-1]] = value
    if origins is not None:
        origins.set(key, COMMAND_LINE)
        origins.set_tree(value, COMMAND_LINE, f"{key}.")


def validate_config(config: dict[str, Any], *, origins: ConfigOrigins | None = None) -> TrainConfig:
    """The typed config of ``config``; :class:`~lt_faceparse.errors.ConfigKeyError` naming the key and its
    origin (``origins``) for any unknown key or bad value."""
    return TrainConfig.from_dict(config, origins)


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
