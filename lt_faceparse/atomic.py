"""File I/O: atomic writes (temporary file in the target folder, fsync, rename), folders whose files
change together (:func:`atomic_folder`) and JSON reads whose errors name the file.

A reader (or a resumed run) never sees a half-written result or checkpoint, and a write that fails
(a full disk) leaves what was there before.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from lt_faceparse.errors import DataError


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise _naming(err, path) from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        try:
            yield tmp_path
            with open(tmp_path, "rb+") as fh:
                os.fsync(fh.fileno())
        except OSError as err:
            raise _naming(err, path) from None
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _naming(err: OSError, path: Path, temp: Path | None = None) -> OSError:
    """``err`` naming ``path`` rather than the temporary file (or folder ``temp``) written for it."""
    name = err.filename
    if name is not None and temp is not None and Path(name).is_relative_to(temp):
        name = str(path / Path(name).relative_to(temp))
    elif name is None or Path(name).name.endswith(".tmp"):
        name = str(path)
    else:
        return err
    return type(err)(err.errno, err.strerror or str(err), name)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


FIGURE_FORMATS = ("png", "pdf")


def atomic_save_figure(fig: Any, stem: str | Path, *, dpi: float | None = None,
                       png_compress_level: int | None = None, bbox_inches: Any = "tight",
                       formats: Sequence[str] = FIGURE_FORMATS) -> list[Path]:
    """Write a matplotlib figure as ``stem.png`` and ``stem.pdf``, each atomically, tightly cropped.

    The PDF carries no creation date, so re-rendering an unchanged figure rewrites the same bytes (a
    regenerated ``reports/`` folder differs only where its numbers do). ``png_compress_level`` (0-9,
    None: Pillow's 6) trades PNG size for time (same pixels). ``bbox_inches``: the crop, in inches
    (``"tight"``: measured for each file, which lays out every text twice more). ``formats``: a
    part of :data:`FIGURE_FORMATS` (e.g. each drawn by another process)."""
    unknown = set(formats) - set(FIGURE_FORMATS)
    if unknown:
        raise ValueError(f"atomic_save_figure: unknown formats {sorted(unknown)} (known: {FIGURE_FORMATS})")
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    written = []
    png = {} if png_compress_level is None else {"pil_kwargs": {"compress_level": png_compress_level}}
    options_by_format = {"png": {"metadata": None, **png}, "pdf": {"metadata": {"CreationDate": None}}}
    for ext in formats:
        options = options_by_format[ext]
        path = stem.with_name(f"{stem.name}.{ext}")
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=ext, dpi=dpi, bbox_inches=bbox_inches, **options)
        written.append(path)
    return written


def atomic_write_json(path: str | Path, obj: Any, *, indent: int = 2) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=indent, sort_keys=False, allow_nan=True) + "\n")


def read_json(path: str | Path, what: str, *, kind: str | None = None,
              required: tuple[str, ...] = ()) -> Any:
    """Parse the JSON file ``path`` (a ``what``, e.g. "result record"); every error names the file.

    With ``kind``, the document must be an object whose ``"kind"`` is ``kind``; ``required`` lists
    keys it must hold.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(path, f"{what} not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(path, f"not a readable {what} ({err})") from None
    if kind is not None and (not isinstance(data, dict) or data.get("kind") != kind):
        raise DataError(path, f'not a {what} (missing "kind": "{kind}")')
    missing = [k for k in required if k not in data]
    if missing:
        raise DataError(path, f"{what} lacks {missing}")
    return data


def atomic_save_npz(path: str | Path, **arrays: Any) -> Path:
    """``numpy.savez_compressed`` made atomic (keeps the exact file name, no ``.npz`` appended)."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return atomic_write_bytes(path, buf.getvalue())


def atomic_torch_save(obj: Any, path: str | Path) -> Path:
    """``torch.save`` made atomic. torch reports a failed write (a full disk) as a RuntimeError
    ("unexpected pos", "file write failed"); it is raised as the ``OSError`` it is, naming ``path``."""
    import torch  # lazy: torch, only for checkpoints (freq and the CLI import this module without it)

    with atomic_path(path) as tmp:
        try:
            torch.save(obj, tmp)
        except RuntimeError as err:
            if "unexpected pos" not in str(err) and "write failed" not in str(err):
                raise
            full = shutil.disk_usage(tmp.parent).free < _NEARLY_FULL_BYTES
            raise OSError(errno.ENOSPC if full else errno.EIO,
                          os.strerror(errno.ENOSPC) if full else f"write failed ({err})", str(path)) from None
    return Path(path)


_NEARLY_FULL_BYTES = 1 << 20  # a torch write that failed with less free space than this ran out of space


@contextlib.contextmanager
def atomic_folder(folder: str | Path, *, swap: bool = True) -> Iterator[Path]:
    """Files of ``folder`` that change together or not at all: yield an empty temporary folder beside
    it; the block writes the new files there (names relative to it, subfolders allowed). When the
    block succeeds, the entries of ``folder`` that it did not write are carried over (hard links,
    else copies), and the new folder replaces the old by two renames; the old folder is deleted only
    after the swap. A failing block (a full disk) leaves ``folder`` as it was.

    With ``swap=False``, and for a folder that holds the working directory, nothing is carried over:
    the new files replace the old ones one rename each (every file was complete before the first
    rename, so a full disk still changes nothing; only a kill between two renames could mix them).
    Use it for a folder shared with files of other owners (a record's ``.json`` beside others).
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "a file is in the way of this output folder", str(folder))
    folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        new = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".new", dir=folder.parent))
    except OSError as err:
        raise type(err)(err.errno, err.strerror, str(folder)) from None
    try:
        try:
            yield new
            swap = swap and not (folder.is_dir() and _holds_cwd(folder))
            if swap and folder.is_dir():
                _carry_over(folder, new)
        except OSError as err:
            raise _naming(err, folder, new) from None
        if swap:
            _swap(new, folder)
        else:
            _replace_one_by_one(new, folder)
    finally:
        shutil.rmtree(new, ignore_errors=True)


def _carry_over(old: Path, new: Path) -> None:
    for entry in old.iterdir():
        target = new / entry.name
        if entry.is_dir() and not entry.is_symlink():
            target.mkdir(exist_ok=True)
            _carry_over(entry, target)
        elif not target.exists() and not target.is_symlink():
            _link_or_copy(entry, target)


def _link_or_copy(source: Path, target: Path) -> None:
    if source.is_symlink():
        target.symlink_to(os.readlink(source))
        return
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _holds_cwd(folder: Path) -> bool:
    cwd, resolved = Path.cwd().resolve(), folder.resolve()
    return cwd == resolved or resolved in cwd.parents


def _swap(new: Path, folder: Path) -> None:
    if not folder.exists():
        os.rename(new, folder)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".old", dir=folder.parent))
    os.rename(folder, old / folder.name)
    try:
        os.rename(new, folder)
    except OSError:
        os.rename(old / folder.name, folder)
        old.rmdir()
        raise
    shutil.rmtree(old, ignore_errors=True)


def _replace_one_by_one(new: Path, folder: Path) -> None:
    for source in sorted(p for p in new.rglob("*") if not p.is_dir()):
        target = folder / source.relative_to(new)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)

