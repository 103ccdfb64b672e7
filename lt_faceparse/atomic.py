"""File I/O: atomic writes (temporary file in the target folder, fsync, rename) and JSON reads whose
errors name the file.

A reader (or a resumed run) never sees a half-written result or checkpoint.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_save_figure(fig: Any, stem: str | Path, *, dpi: float | None = None,
                       png_compress_level: int | None = None, bbox_inches: Any = "tight") -> list[Path]:
    """Write a matplotlib figure as ``stem.png`` and ``stem.pdf``, each atomically, tightly cropped.

    The PDF carries no creation date, so re-rendering an unchanged figure rewrites the same bytes (a
    regenerated ``reports/`` folder differs only where its numbers do). ``png_compress_level`` (0-9,
    None: Pillow's 6) trades PNG size for time (same pixels). ``bbox_inches``: the crop, in inches
    (``"tight"``: measured for each file, which lays out every text twice more)."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    written = []
    png = {} if png_compress_level is None else {"pil_kwargs": {"compress_level": png_compress_level}}
    for ext, options in (("png", {"metadata": None, **png}), ("pdf", {"metadata": {"CreationDate": None}})):
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
    from lt_faceparse.errors import DataError

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
    import numpy as np

    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return atomic_write_bytes(path, buf.getvalue())


def atomic_torch_save(obj: Any, path: str | Path) -> Path:
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)
