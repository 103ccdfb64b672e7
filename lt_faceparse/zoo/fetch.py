"""Released models by name: find or download the released file, convert it once, cache the result.

- **Hub files** (the SegFace release) are fetched with ``huggingface_hub.hf_hub_download`` into the
  Hugging Face cache (``$HF_HUB_CACHE``, default ``$HF_HOME/hub`` = ``~/.cache/huggingface/hub``)
  and read from there later. With ``HF_HUB_OFFLINE=1`` (or this library's ``LT_FACEPARSE_OFFLINE=1``)
  nothing is downloaded; a file that is not cached raises a :class:`~lt_faceparse.errors.DataError`
  naming the file, its URL and where to put it.
- **User-supplied files** (face-parsing.PyTorch's ``79999_iter.pth``, which has no stable URL) are
  read from ``<zoo home>/<name>/<file>``, zoo home being ``$LT_FACEPARSE_ZOO`` (default
  ``~/.cache/lt-faceparse/zoo``); their SHA-256 is checked when the registry knows it.

The released file is converted without unpickling code (:func:`segface.convert.convert_official`,
:func:`baselines.convert_zll.convert_zll`) into one of our weight files (:mod:`lt_faceparse.weights`:
safetensors, taxonomy embedded), whose metadata also holds the licence terms and the zoo entry. It
is cached beside the download: ``<HF cache>/models--<owner>--<repo>/lt-faceparse/`` for Hub files
(deleting the repo from the Hugging Face cache deletes it too), the user's folder otherwise. Its
name carries the identity of the released file (the Hub blob name, else the file's SHA-256), so
a new upstream revision is converted anew and an unchanged one never again.
"""

from __future__ import annotations

import hashlib
import os
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from rich.console import Console

from baselines.convert_zll import convert_zll, zll_metadata
from lt_faceparse.errors import DataError
from lt_faceparse.pretrained import DOWNLOAD_ERRORS, OFFLINE_VARIABLES, offline
from lt_faceparse.weights import save_model
from lt_faceparse.zoo.registry import SEGFACE_RELEASE, ZLL_CHECKPOINT, ZooEntry, get_entry
from segface.convert import convert_official

ZOO_HOME_VARIABLE = "LT_FACEPARSE_ZOO"
CONVERTED_FOLDER = "lt-faceparse"


def zoo_home() -> Path:
    """Folder of user-supplied released files (``$LT_FACEPARSE_ZOO``, default ``~/.cache/lt-faceparse/zoo``)."""
    return Path(os.environ.get(ZOO_HOME_VARIABLE) or Path.home() / ".cache" / "lt-faceparse" / "zoo")


def hub_cache_dir() -> Path:
    """The Hugging Face hub cache in use (``huggingface_hub.constants.HF_HUB_CACHE``)."""
    from huggingface_hub import constants  # lazy: read at call time (HF_HUB_CACHE may be set after import)

    return Path(constants.HF_HUB_CACHE)


def user_file_path(entry: ZooEntry) -> Path:
    """Where the user puts the file of an entry without a Hub repo."""
    return zoo_home() / entry.name / entry.file


def cached_source(entry: ZooEntry) -> Path | None:
    """The released file if it is on this machine already (no network access), else None."""
    if entry.hub_repo is None:
        path = user_file_path(entry)
        return path if path.is_file() else None
    import huggingface_hub  # lazy: optional heavy import, only for Hub entries (tests replace its functions)

    hit = huggingface_hub.try_to_load_from_cache(entry.hub_repo, entry.file, cache_dir=hub_cache_dir())
    return Path(hit) if isinstance(hit, str) else None


def _missing_message(entry: ZooEntry, why: str) -> str:
    if entry.hub_repo is None:
        return (f"released model {entry.name}: {entry.file} is not at {user_file_path(entry)} ({why}); it has no "
                f"stable download URL: get it from {entry.url} and put it there (or set {ZOO_HOME_VARIABLE} to the "
                f"folder that holds {entry.name}/{entry.file})")
    return (f"released model {entry.name}: {entry.file} is not in the Hugging Face cache {hub_cache_dir()} ({why}): "
            f"fetch {entry.url} on a connected machine (hf download {entry.hub_repo} {entry.file}) and copy that "
            f"machine's Hugging Face cache here, or set HF_HUB_CACHE to a cache that holds it")


def source_file(entry: ZooEntry) -> Path:
    """The released file on this machine: cached, else downloaded (Hub entries, when not offline)."""
    cached = cached_source(entry)
    if cached is not None:
        return cached
    if entry.hub_repo is None:
        raise DataError(None, _missing_message(entry, "no such file"))
    if offline():
        switches = ", ".join(f"{v}={os.environ[v]}" for v in OFFLINE_VARIABLES if os.environ.get(v))
        raise DataError(None, _missing_message(entry, f"offline mode {switches}: nothing is downloaded"))
    import huggingface_hub  # lazy: looked up at call time (tests replace hf_hub_download)
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError  # lazy: with the download

    try:
        return Path(huggingface_hub.hf_hub_download(entry.hub_repo, entry.file, cache_dir=hub_cache_dir()))
    except (LocalEntryNotFoundError, HfHubHTTPError, *DOWNLOAD_ERRORS) as err:
        reason = " ".join(str(err).split())[:200]
        raise DataError(None, _missing_message(entry, f"the download failed: {type(err).__name__}: {reason}")) from None


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in 16 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(16 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def source_identity(entry: ZooEntry, source: Path) -> str:
    """What names the released file's version: its Hub blob name (the file's hash), else its SHA-256
    (checked against the registry's when known)."""
    if entry.hub_repo is not None:
        return source.resolve().name
    digest = sha256_of(source)
    if entry.sha256 is not None and digest != entry.sha256.lower():
        raise DataError(source, f"SHA-256 {digest} differs from the known {entry.sha256} of {entry.name}'s "
                                f"{entry.file}: not the released file (or a damaged copy)")
    return digest


def converted_path(entry: ZooEntry, source: Path, identity: str) -> Path:
    """Where the converted weight file of ``entry`` (released file ``source``) is cached."""
    stem = f"{entry.name.replace('/', '--')}-{identity[:16]}.safetensors"
    if entry.hub_repo is None:
        return source.parent / stem
    repo_dir = hub_cache_dir() / f"models--{entry.hub_repo.replace('/', '--')}"
    return repo_dir / CONVERTED_FOLDER / stem


def zoo_metadata(entry: ZooEntry, identity: str) -> dict[str, Any]:
    """What a converted weight file says about its zoo entry, beyond the converter's metadata."""
    return {
        "licence": entry.licence.to_dict(),
        "merge": entry.merge,
        "train_data": entry.train_data,
        "checkpoint_rule": entry.checkpoint_rule,
        "zoo": {"name": entry.name, "file": entry.file, "url": entry.url, "source_identity": identity,
                "published_mean_f1": entry.published_mean_f1, "published_source": entry.published_source,
                "published_id": entry.published_id},
    }


def convert_entry(entry: ZooEntry, source: Path, out: Path, identity: str) -> Path:
    """Convert the released file ``source`` of ``entry`` (no pickled code runs) and write ``out``."""
    if entry.format == SEGFACE_RELEASE:
        model = convert_official(source, entry.backbone, entry.taxonomy, resolution=entry.resolution)
        meta = dict(model.metadata)
    elif entry.format == ZLL_CHECKPOINT:
        model = convert_zll(source)
        meta = zll_metadata(model, source)
    else:  # register_entry admits known formats only
        raise ValueError(f"released model {entry.name}: no converter for format {entry.format!r}")
    return save_model(model, out, {**meta, **zoo_metadata(entry, identity)})


def pretrained_weights(name: str) -> Path:
    """Our weight file of released model ``name`` (see ``lt-faceparse zoo list``): read from the cache,
    or made once from the released file (downloaded first when needed and allowed)."""
    entry = get_entry(name)
    source = source_file(entry)
    identity = source_identity(entry, source)
    target = converted_path(entry, source, identity)
    if target.is_file():
        return target
    status = _status(f"converting {entry.name} ({entry.file}) to {target.name}")
    with status:
        return convert_entry(entry, source, target, identity)


def cache_state(entry: ZooEntry) -> str:
    """``"converted"`` (ready to use), ``"downloaded"`` (released file present, not yet converted) or
    ``"no"``; reads the cache only (a user file's SHA-256 is not computed for this)."""
    source = cached_source(entry)
    if source is None:
        return "no"
    if entry.hub_repo is not None:
        return "converted" if converted_path(entry, source, source.resolve().name).is_file() else "downloaded"
    return "converted" if any(source.parent.glob(f"{entry.name.replace('/', '--')}-*.safetensors")) else "downloaded"


def _status(text: str):
    """A rich spinner on stderr in a terminal; nothing otherwise."""
    if not sys.stderr.isatty():
        return nullcontext()
    return Console(stderr=True).status(text)
