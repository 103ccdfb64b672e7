"""CSV text of column tables: byte for byte what pandas writes, and read back exactly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lt_faceparse.analysis.table_csv import columns_to_csv, read_csv_columns
from lt_faceparse.errors import DataError


def _columns() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    floats = np.concatenate([rng.random(6), [0.0, 1.0, np.nan, 1e-7, 123456789.125, 2.5e16, 1 / 3, 5e-324]])
    n = len(floats)
    names = ["skin", "a,b", 'say "hi"', "two\nlines", "", "  spaced ", "nan", "NA", "ü", "x", "y", "z", "1", "-"]
    return {
        "class_id": np.arange(n, dtype=np.int64),
        "class_name": np.array(names, dtype=object),
        "pixel_count": (rng.random(n) * 1e12).astype(np.int64),
        "presence_prob": floats,
        "flag": rng.random(n) > 0.5,
    }


def test_csv_text_is_what_pandas_writes():
    cols = _columns()
    assert columns_to_csv(cols) == pd.DataFrame({k: list(v) if v.dtype == object else v
                                                 for k, v in cols.items()}).to_csv(index=False)


def test_csv_round_trip_is_exact(tmp_path):
    cols = _columns()
    path = tmp_path / "t.csv"
    path.write_text(columns_to_csv(cols), encoding="utf-8")
    back = read_csv_columns(path, ints=("class_id", "pixel_count"), floats=("presence_prob",))
    assert list(back) == list(cols)
    np.testing.assert_array_equal(back["class_id"], cols["class_id"])
    np.testing.assert_array_equal(back["pixel_count"], cols["pixel_count"])
    assert back["class_name"].tolist() == cols["class_name"].tolist()  # "nan", "NA" and "" stay text
    # every float comes back bit for bit (NaN as NaN)
    assert back["presence_prob"].tobytes() == cols["presence_prob"].tobytes()
    assert back["flag"].tolist() == [str(v) for v in cols["flag"].tolist()]


def test_unequal_columns_are_refused():
    with pytest.raises(ValueError, match="differ in length"):
        columns_to_csv({"a": [1, 2], "b": [1]})


@pytest.mark.parametrize("text, problem", [
    ("", "empty CSV"),
    ("a,b\n1,2\n3\n", "header's 2 fields"),
    ("a,b\n1,x\n", "column 'b'"),
])
def test_bad_csv_is_one_error_naming_the_file(tmp_path, text, problem):
    path = tmp_path / "bad.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataError, match=problem) as err:
        read_csv_columns(path, ints=("a", "b"))
    assert err.value.path == str(path)
