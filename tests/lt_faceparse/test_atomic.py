"""lt_faceparse.atomic: whole files or nothing, and figures that re-render to the same bytes."""

from __future__ import annotations

import hashlib
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from lt_faceparse.atomic import atomic_path, atomic_save_figure, atomic_write_json  # noqa: E402


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = atomic_write_json(tmp_path / "result.json", {"f1": 0.5})
    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            tmp.write_text("half a fi")
            raise RuntimeError("killed")
    assert json.loads(path.read_text()) == {"f1": 0.5}
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]


def _figure():
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.bar([0, 1, 2], [0.9, 0.3, 0.05])
    return fig


def test_figures_rerender_to_the_same_bytes(tmp_path):
    digests = []
    for run in ("a", "b"):
        fig = _figure()
        paths = atomic_save_figure(fig, tmp_path / run / "presence.v2", dpi=50)
        plt.close(fig)
        assert [p.name for p in paths] == ["presence.v2.png", "presence.v2.pdf"]
        assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and paths[1].read_bytes()[:5] == b"%PDF-"
        digests.append([hashlib.sha256(p.read_bytes()).hexdigest() for p in paths])
    assert digests[0] == digests[1]
    assert b"CreationDate" not in (tmp_path / "a" / "presence.v2.pdf").read_bytes()
