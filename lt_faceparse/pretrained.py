"""Pretrained ImageNet weights of the backbones: downloaded once into torchvision's and timm's usual
caches, then read from there; nothing is fetched when a cached copy exists or in offline mode.

- **torchvision backbones** (SegFace's and the baselines' ``swin_base``, ``resnet101``, ``mobilenet``,
  ..., and BiSeNet's ResNet-18): the file of the torchvision weights enum (``IMAGENET1K_V1`` ...),
  kept where torchvision keeps it, ``torch.hub.get_dir()/checkpoints/<file>`` (``$TORCH_HOME/hub``,
  default ``~/.cache/torch/hub``; ``torch.hub.set_dir`` moves it). A missing file is fetched with
  torchvision's own mechanism (``WeightsEnum.get_state_dict``: ``torch.hub.load_state_dict_from_url``
  with the SHA-256 prefix of the file name checked) and read with ``weights_only=True``.
- **timm backbones** (``timm/<name>``): the model's file on the Hugging Face Hub (its
  ``hf_hub_id``), fetched with ``huggingface_hub.hf_hub_download`` into the Hugging Face cache
  (``$HF_HUB_CACHE``, default ``$HF_HOME/hub`` = ``~/.cache/huggingface/hub``); timm models that
  only have a URL go to the torch hub cache as above.
- **Offline**: with ``HF_HUB_OFFLINE=1`` (the Hugging Face switch, honoured for both kinds) or
  ``LT_FACEPARSE_OFFLINE=1`` (this library's, for machines where only torchvision weights matter:
  torch hub has no offline switch of its own), nothing is downloaded; a file that is not cached
  raises ``FileNotFoundError`` saying what is missing and where to put it. A failed download says
  the same.
- ``pretrained="/path/to/file"`` (``.pth``/``.pt``/``.bin`` read with ``weights_only=True``, or
  ``.safetensors``) uses that file and nothing else.
"""

from __future__ import annotations

import contextlib
import os
import sys
import urllib.error
from pathlib import Path
from typing import Iterator

import torch
from safetensors.torch import load_file

from lt_faceparse.errors import DataError

OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "LT_FACEPARSE_OFFLINE")
_TRUE = {"1", "true", "yes", "on"}
# connection failures of a download (urllib raises URLError, sockets TimeoutError / ConnectionError)
DOWNLOAD_ERRORS = (urllib.error.URLError, ConnectionError, TimeoutError)


def offline() -> bool:
    """True when an offline switch (:data:`OFFLINE_VARIABLES`) is set to 1/true/yes/on."""
    return any(os.environ.get(name, "").strip().lower() in _TRUE for name in OFFLINE_VARIABLES)


def torch_hub_checkpoint(url: str) -> Path:
    """Where torch hub (and so torchvision) caches the file of ``url``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


def load_state_file(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from a local weight file, without executing pickled code."""
    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            return load_file(str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises UnpicklingError, RuntimeError, EOFError; safetensors its own
        raise DataError(path, f"not a loadable weight file ({type(err).__name__}: {_one_line(err)})") from None
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    return state


@contextlib.contextmanager
def pretrained_file_errors(pretrained: bool | str, what: str) -> Iterator[None]:
    """Loading the pretrained weights ``pretrained`` into ``what`` (e.g. "backbone resnet101"): a
    file that does not fit (shapes, names) or cannot be read raises a one-line :class:`DataError`
    naming the file, not a RuntimeError or SafetensorError."""
    try:
        yield
    except (DataError, FileNotFoundError, KeyError):
        raise
    except Exception as err:  # load_state_dict's RuntimeError, safetensors' and timm's own errors
        source = _local_file(pretrained) or f"pretrained={pretrained!r}"
        raise DataError(source, f"pretrained weights do not fit {what} ({type(err).__name__}: "
                                f"{_one_line(err)})") from None


def _one_line(err: BaseException, limit: int = 300) -> str:
    text = "; ".join(line.strip() for line in str(err).splitlines() if line.strip())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _local_file(pretrained: bool | str) -> Path | None:
    return Path(pretrained) if isinstance(pretrained, str) and Path(pretrained).is_file() else None


def _offline_hint() -> str:
    switches = [f"{name}={os.environ[name]}" for name in OFFLINE_VARIABLES
                if os.environ.get(name, "").strip().lower() in _TRUE]
    return f"offline mode ({', '.join(switches)})" if switches else "the download failed"


def torchvision_state(builder: str, pretrained: bool | str) -> dict[str, torch.Tensor]:
    """ImageNet state dict of torchvision model ``builder`` (e.g. ``"swin_b"``, ``"resnet18"``).

    ``pretrained``: True (the enum's ``DEFAULT``), a weight name such as ``"IMAGENET1K_V1"``, or the
    path of a local file. Cached files are read; missing ones are downloaded unless offline."""
    from torchvision.models import get_model_weights  # lazy: torchvision models only for ImageNet weights

    local = _local_file(pretrained)
    if local is not None:
        return load_state_file(local)
    enum = get_model_weights(builder)
    if pretrained is True:
        weights = enum.DEFAULT
    else:
        try:
            weights = enum[str(pretrained)]
        except KeyError:
            raise FileNotFoundError(f"pretrained={pretrained!r} is neither a file nor a weight name of torchvision "
                                    f"{builder!r} (names: {[w.name for w in enum]})") from None
    cached = torch_hub_checkpoint(weights.url)
    if cached.is_file():
        return load_state_file(cached)
    missing = (f"ImageNet weights {weights} for torchvision {builder!r} are not in the torch hub cache ({cached})")
    where = (f"fetch {weights.url} on a connected machine and place it at {cached} (or set TORCH_HOME to a cache "
             f"that has it), or pass pretrained='/path/to/file.pth'")
    if offline():
        raise FileNotFoundError(f"{missing}; nothing is downloaded in {_offline_hint()}: {where}")
    try:
        return weights.get_state_dict(progress=sys.stderr.isatty(), check_hash=True, weights_only=True)
    except DOWNLOAD_ERRORS as err:
        raise FileNotFoundError(f"{missing}, and downloading it failed ({err}): {where}") from err


def timm_pretrained_file(name: str, pretrained: bool | str) -> Path:
    """The local file of timm model ``name``'s pretrained weights (see the module docstring)."""
    local = _local_file(pretrained)
    if local is not None:
        return local
    import timm  # lazy: timm (~1 s) only for timm backbones and weights

    cfg = timm.models.get_pretrained_cfg(name)
    if cfg is None:
        raise KeyError(f"timm has no pretrained weights for {name!r}")
    cfg = cfg.to_dict()
    if cfg.get("hf_hub_id"):
        return _hf_hub_file(name, cfg)
    if cfg.get("url"):
        return _url_file(name, cfg["url"])
    raise FileNotFoundError(f"timm model {name!r} names no download location for its pretrained weights; "
                            "pass pretrained='/path/to/weights.safetensors'")


def _hf_hub_file(name: str, cfg: dict) -> Path:
    import huggingface_hub  # lazy: optional, only to download weights
    from huggingface_hub import constants  # lazy: optional, only to download weights
    from huggingface_hub.errors import LocalEntryNotFoundError, RemoteEntryNotFoundError  # lazy: optional download

    repo, _, revision = cfg["hf_hub_id"].partition("@")
    preferred = cfg.get("hf_hub_filename")
    filenames = [f for f in (preferred, "model.safetensors", "pytorch_model.bin") if f]
    filenames = list(dict.fromkeys(filenames))
    for filename in filenames:
        hit = huggingface_hub.try_to_load_from_cache(repo, filename, revision=revision or None)
        if isinstance(hit, str):
            return Path(hit)
    cache = constants.HF_HUB_CACHE
    where = (f"download {filenames[0]} of https://huggingface.co/{repo} on a connected machine into the Hugging "
             f"Face cache (`huggingface-cli download {repo}`, then copy {cache}), or pass "
             f"pretrained='/path/to/weights.safetensors'")
    missing = f"pretrained weights of timm model {name!r} are not in the Hugging Face cache ({cache}, repo {repo})"
    if offline():
        raise FileNotFoundError(f"{missing}; nothing is downloaded in {_offline_hint()}: {where}")
    for filename in filenames:
        try:
            return Path(huggingface_hub.hf_hub_download(repo, filename, revision=revision or None))
        except RemoteEntryNotFoundError:
            continue  # the repo holds the weights under another of the usual names
        except (LocalEntryNotFoundError, *DOWNLOAD_ERRORS) as err:  # no connection
            raise FileNotFoundError(f"{missing}, and downloading it failed ({err}): {where}") from err
    raise FileNotFoundError(f"{missing}, and the repo holds none of {filenames}: {where}")


def _url_file(name: str, url: str) -> Path:
    cached = torch_hub_checkpoint(url)
    if cached.is_file():
        return cached
    missing = f"pretrained weights of timm model {name!r} are not in the torch hub cache ({cached})"
    where = f"fetch {url} on a connected machine and place it at {cached}, or pass pretrained='/path/to/file'"
    if offline():
        raise FileNotFoundError(f"{missing}; nothing is downloaded in {_offline_hint()}: {where}")
    cached.parent.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(url, str(cached), progress=sys.stderr.isatty())
    except DOWNLOAD_ERRORS as err:
        raise FileNotFoundError(f"{missing}, and downloading it failed ({err}): {where}") from err
    return cached
