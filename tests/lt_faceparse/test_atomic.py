"""lt_faceparse.atomic: whole files or nothing, and figures that re-render to the same bytes."""

from __future__ import annotations

import errno
import hashlib
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from lt_faceparse.atomic import atomic_folder, atomic_path, atomic_save_figure, atomic_write_json  # noqa: E402


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


def test_a_figure_can_be_saved_one_format_at_a_time(tmp_path):
    fig = _figure()
    both = atomic_save_figure(fig, tmp_path / "both" / "f", dpi=50)
    (pdf,) = atomic_save_figure(fig, tmp_path / "one" / "f", dpi=50, formats=("pdf",))
    with pytest.raises(ValueError, match="unknown formats"):
        atomic_save_figure(fig, tmp_path / "bad" / "f", formats=("svg",))
    plt.close(fig)
    assert [p.name for p in (tmp_path / "one").iterdir()] == ["f.pdf"]
    assert pdf.read_bytes() == both[1].read_bytes()
    assert not (tmp_path / "bad").exists()


def _tree(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_folder_changes_together_and_keeps_the_files_it_did_not_write(tmp_path):
    out = tmp_path / "rec"
    with atomic_folder(out) as tmp:
        (tmp / "a.txt").write_text("old a")
        (tmp / "b.txt").write_text("old b")
    (out / "sub").mkdir()
    (out / "sub" / "notes.txt").write_text("the user's")
    with atomic_folder(out) as tmp:
        (tmp / "a.txt").write_text("new a")
    assert _tree(out) == {"a.txt": b"new a", "b.txt": b"old b", "sub/notes.txt": b"the user's"}
    with pytest.raises(OSError) as caught:
        with atomic_folder(out) as tmp:
            (tmp / "a.txt").write_text("newer a")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert caught.value.filename == str(out)
    assert _tree(out) == {"a.txt": b"new a", "b.txt": b"old b", "sub/notes.txt": b"the user's"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rec"]


def test_a_folder_holding_the_working_directory_is_updated_file_by_file(tmp_path, monkeypatch):
    (tmp_path / "keep.txt").write_text("kept")
    monkeypatch.chdir(tmp_path)
    with atomic_folder(tmp_path) as tmp:
        (tmp / "table.csv").write_text("x")
    assert _tree(tmp_path) == {"keep.txt": b"kept", "table.csv": b"x"}
    assert os.getcwd() == str(tmp_path)


def test_a_file_in_the_way_of_a_folder_is_refused(tmp_path):
    (tmp_path / "out").write_text("a file")
    with pytest.raises(NotADirectoryError, match="a file is in the way"):
        with atomic_folder(tmp_path / "out"):
            pass
    assert (tmp_path / "out").read_text() == "a file"
