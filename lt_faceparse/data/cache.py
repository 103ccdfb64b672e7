"""On-disk cache of merged label maps (CelebAMask-HQ: up to 18 mask decodes per image otherwise).

One cache directory per (dataset root, merge order), one file per image in ``labels/``
(``<name>.runs``): the merged label map as runs of equal values (:class:`LabelRuns`, about 2.8 KB
for a 512 px map, written in a fraction of a millisecond) behind a JSON header that carries the
*fingerprint* of the source files it was built from (names, sizes and modification times of the
image's mask files), the merge order and the map's size. An entry is used only when its fingerprint
and merge order equal the current ones, so a changed, added or removed mask file (stale entry) is
detected on read and rebuilt, never silently used. Entries are written to a temporary name and
renamed, without fsync: a file that a crash left incomplete fails zlib's checksum, the run count or
the map size on read and is rebuilt. (Version 1 stored PNGs; its folders are simply not used.)

``manifest.json`` records the key (root, merge order, cache version) and, after a complete pass,
every entry's fingerprint. A manifest whose key differs from the requested one (another root or
another merge order in a user-chosen directory) makes the cache refuse to open.

Location: ``cache_dir`` if given; else ``ROOT/.lt_faceparse_cache/`` when the dataset root is
writable, else ``$LT_FACEPARSE_CACHE`` or ``~/.cache/lt_faceparse/``.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

from lt_faceparse.atomic import atomic_write_json
from lt_faceparse.data.label_runs import LabelRuns
from lt_faceparse.errors import DataError

CACHE_VERSION = 2  # 1: PNG entries
ENTRY_SUFFIX = ".runs"
ENTRY_MAGIC = b"LTFP-RUNS\n"


def default_cache_base(root: str | Path) -> Path:
    """``ROOT/.lt_faceparse_cache`` if the dataset root is writable, else the user cache folder."""
    root = Path(root)
    if os.access(root, os.W_OK):
        return root / ".lt_faceparse_cache"
    env = os.environ.get("LT_FACEPARSE_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "lt_faceparse"


def cache_key(root: str | Path, dataset: str, merge_order: Iterable[str]) -> str:
    """Directory name of the cache for (root, merge order): readable prefix + hash of the key."""
    text = json.dumps([str(Path(root).resolve()), dataset, list(merge_order), CACHE_VERSION])
    return f"{dataset}-{hashlib.sha1(text.encode()).hexdigest()[:16]}"


def files_fingerprint(paths: Iterable[Path]) -> str:
    """Hash of the names, sizes and modification times of ``paths`` (order-independent)."""
    rows = []
    for p in paths:
        st = os.stat(p)
        rows.append(f"{os.path.basename(p)}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha1("\n".join(sorted(rows)).encode()).hexdigest()


def _entry_bytes(runs: LabelRuns, header: Mapping[str, str]) -> bytes:
    """An entry: magic, header length (uint32, little-endian), the JSON header, the runs' bytes."""
    payload = runs.to_bytes()
    text = json.dumps({**header, "height": runs.shape[0], "width": runs.shape[1], "runs": len(runs.values),
                       "bytes": len(payload)}).encode()
    return ENTRY_MAGIC + struct.pack("<I", len(text)) + text + payload


def _split_entry(data: bytes) -> tuple[dict, bytes]:
    """(header, the runs' bytes) of an entry; ValueError if it is not one or was cut short."""
    start = len(ENTRY_MAGIC) + 4
    if not data.startswith(ENTRY_MAGIC) or len(data) < start:
        raise ValueError("not a label cache entry")
    (size,) = struct.unpack_from("<I", data, len(ENTRY_MAGIC))
    if len(data) < start + size:
        raise ValueError("label cache entry header cut short")
    header = json.loads(data[start:start + size])
    if not isinstance(header, dict) or not isinstance(header.get("source"), str):
        raise ValueError("label cache entry header without a source fingerprint")
    if len(data) != start + size + header.get("bytes", -1):
        raise ValueError("label cache entry cut short")
    return header, data[start + size:]


@dataclass(frozen=True)
class CacheStatus:
    """State of a cache against the current source tree."""

    valid: int  # entries present with the current fingerprint
    stale: int  # entries present but built from other source files
    missing: int  # entries never written (or unreadable)
    complete: bool  # the manifest records a finished pass with the current fingerprints

    @property
    def state(self) -> str:
        if self.complete and self.stale == 0 and self.missing == 0:
            return "complete"
        if self.valid == 0 and self.stale == 0:
            return "empty"
        return "stale" if self.stale else "partial"


class LabelCache:
    """A directory of merged label maps keyed by (root, dataset, merge order)."""

    def __init__(self, directory: str | Path, *, root: str | Path, dataset: str, merge_order: Iterable[str]):
        self.directory = Path(directory)
        self.root = str(Path(root).resolve())
        self.dataset = dataset
        self.merge_order = list(merge_order)
        self._merge_text = ",".join(self.merge_order)
        self.manifest_path = self.directory / "manifest.json"
        self._folder_made = False  # the entries' folder exists (made on the first write)
        self._check_manifest_key()

    @classmethod
    def for_dataset(cls, root: str | Path, dataset: str, merge_order: Iterable[str],
                    cache_dir: str | Path | None = None) -> "LabelCache":
        """The cache of ``root`` under ``cache_dir`` (or the default base), one subfolder per key."""
        merge_order = list(merge_order)
        base = Path(cache_dir) if cache_dir is not None else default_cache_base(root)
        return cls(base / cache_key(root, dataset, merge_order), root=root, dataset=dataset,
                   merge_order=merge_order)

    # ---- manifest -----------------------------------------------------------------------------
    def _read_manifest(self) -> dict | None:
        if not self.manifest_path.is_file():
            return None
        try:
            return json.loads(self.manifest_path.read_text())
        except (OSError, ValueError) as err:
            raise DataError(self.manifest_path, f"unreadable cache manifest ({err}); delete the cache folder") from None

    def _check_manifest_key(self) -> None:
        m = self._read_manifest()
        if m is None:
            return
        want = {"version": CACHE_VERSION, "dataset": self.dataset, "root": self.root, "merge_order": self.merge_order}
        for key, value in want.items():
            if m.get(key) != value:
                raise DataError(
                    self.manifest_path,
                    f"this label cache was built for {key}={m.get(key)!r}, not {value!r}; refusing to use "
                    "it (choose another cache_dir or delete this folder)",
                )

    def write_manifest(self, fingerprints: Mapping[str, str]) -> None:
        """Record a finished pass over ``fingerprints`` (name -> source fingerprint), after all those
        entries were written. Entries of other splits already recorded are kept."""
        m = self._read_manifest() or {}
        entries = dict(m.get("entries", {}))
        entries.update(fingerprints)
        atomic_write_json(self.manifest_path, {
            "version": CACHE_VERSION,
            "dataset": self.dataset,
            "root": self.root,
            "merge_order": self.merge_order,
            "num_entries": len(entries),
            "entries": dict(sorted(entries.items())),
        })

    # ---- entries ------------------------------------------------------------------------------
    def entry_path(self, name: str) -> Path:
        return self.directory / "labels" / f"{name}{ENTRY_SUFFIX}"

    def _entry_fingerprint(self, name: str) -> str | None:
        try:
            with open(self.entry_path(name), "rb") as fh:
                header, _ = _split_entry(fh.read())
        except (OSError, ValueError, TypeError):
            return None
        return header["source"] if header.get("merge") == self._merge_text else None

    def get(self, name: str, fingerprint: str) -> LabelRuns | None:
        """The cached label map of ``name`` (as runs) if it was built from sources with ``fingerprint``."""
        try:
            with open(os.path.join(self.directory, "labels", f"{name}{ENTRY_SUFFIX}"), "rb") as fh:
                header, payload = _split_entry(fh.read())
            if header["source"] != fingerprint or header["merge"] != self._merge_text:
                return None
            return LabelRuns.from_bytes(payload, (header["height"], header["width"]), header["runs"])
        except (OSError, ValueError, KeyError, TypeError, zlib.error):  # missing, truncated or corrupt: rebuild
            return None

    def put(self, name: str, fingerprint: str, runs: LabelRuns) -> None:
        """Write one entry under a temporary name, then rename it (safe from several processes)."""
        data = _entry_bytes(runs, {"source": fingerprint, "merge": self._merge_text})
        folder = os.path.join(self.directory, "labels")
        if not self._folder_made:
            os.makedirs(folder, exist_ok=True)
            self._folder_made = True
        path = os.path.join(folder, f"{name}{ENTRY_SUFFIX}")
        tmp = os.path.join(folder, f".{name}{ENTRY_SUFFIX}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except OSError:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def status(self, fingerprints: Mapping[str, str]) -> CacheStatus:
        """Compare every entry with the current source fingerprints (checks each entry's header and
        length, not its runs)."""
        valid = stale = missing = 0
        for name, fp in fingerprints.items():
            have = self._entry_fingerprint(name)
            if have is None:
                missing += not self.entry_path(name).is_file()
                stale += self.entry_path(name).is_file()
            elif have == fp:
                valid += 1
            else:
                stale += 1
        m = self._read_manifest()
        recorded = (m or {}).get("entries", {})
        complete = all(recorded.get(name) == fp for name, fp in fingerprints.items())
        return CacheStatus(valid=valid, stale=stale, missing=missing, complete=complete)
