"""Column tables as CSV text without pandas (``freq`` writes its report before pandas would load).

:func:`columns_to_csv` writes what ``pandas.DataFrame(columns).to_csv(index=False)`` writes, byte
for byte: integers as decimals, floats as numpy's shortest round-trip text (NaN as an empty field),
strings quoted only where CSV needs it, ``\\n`` line ends. :func:`read_csv_columns` reads such a file
back as typed columns.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from lt_faceparse.errors import DataError


def _texts(values: Sequence | np.ndarray) -> list[str]:
    arr = np.asarray(values)
    if arr.dtype.kind == "f":
        text = arr.astype(str)  # numpy's shortest round-trip repr, as pandas writes floats
        text[np.isnan(arr)] = ""
        return text.tolist()
    if arr.dtype.kind == "b":
        return ["True" if v else "False" for v in arr.tolist()]
    return ["" if v is None else str(v) for v in arr.tolist()]


def columns_to_csv(columns: Mapping[str, Sequence | np.ndarray]) -> str:
    """CSV text of equal-length ``columns`` (header row first), as pandas' ``to_csv(index=False)``."""
    lengths = {len(v) for v in columns.values()}
    if len(lengths) > 1:
        raise ValueError(f"columns_to_csv: columns differ in length: {sorted(lengths)}")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns.keys())
    writer.writerows(zip(*(_texts(v) for v in columns.values())))
    return out.getvalue()


def read_csv_columns(path: str | Path, *, ints: Sequence[str] = (), floats: Sequence[str] = ()) -> dict[str, np.ndarray]:
    """The columns of the CSV file ``path`` (header row first): ``ints`` as int64, ``floats`` as
    float64 (an empty field is NaN), every other column as text. Errors name the file."""
    path = Path(path)
    try:
        rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise DataError(path, f"unreadable CSV ({err})") from None
    if not rows:
        raise DataError(path, "empty CSV (no header row)")
    header, body = rows[0], [r for r in rows[1:] if r]
    if any(len(r) != len(header) for r in body):
        raise DataError(path, f"a row does not have the header's {len(header)} fields")
    columns: dict[str, np.ndarray] = {}
    for j, name in enumerate(header):
        values = [r[j] for r in body]
        try:
            if name in ints:
                columns[name] = np.array([int(v) for v in values], dtype=np.int64)
            elif name in floats:
                columns[name] = np.array([float(v) if v else np.nan for v in values], dtype=np.float64)
            else:
                columns[name] = np.array(values, dtype=object)
        except ValueError as err:
            raise DataError(path, f"column {name!r}: {err}") from None
    return columns
