"""`lt-faceparse synth` and `lt-faceparse check-dataset`."""

from __future__ import annotations

import json

from lt_faceparse.cli import main


def test_synth_then_check(tmp_path, capsys):
    out = tmp_path / "s"
    rc = main(["synth", "--format", "helen", "--out", str(out), "--num-images", "6", "--size", "48",
               "--seed", "3", "--workers", "0", "--presence", "eye_g=0.5", "--splits", "0.5,0.25,0.25"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "6 images" in text and "seed 3" in text and "eye_g 0.500" in text
    info = json.loads((out / "presence.json").read_text())
    assert info["presence"]["eye_g"] == 0.5 and info["splits"] == [0.5, 0.25, 0.25]
    assert len((out / "val.txt").read_text().split()) == 2

    assert main(["check-dataset", "--dataset", "helen", "--root", str(out)]) == 0  # warnings only
    text = capsys.readouterr().out
    assert "0 error(s), 3 warning(s)" in text

    (out / "landmarks.txt").write_text("")
    assert main(["check-dataset", "--dataset", "helen", "--root", str(out), "--json"]) == 1
    problems = json.loads(capsys.readouterr().out)
    assert sum(p["level"] == "error" for p in problems) == 6  # every image lacks its landmarks line
    assert main(["check-dataset", "--dataset", "helen", "--root", str(out), "--quick"]) == 1  # no decoding
    assert "6 error(s)" in capsys.readouterr().out

    # a non-empty output folder is refused with a clear error (exit code 2)
    assert main(["synth", "--out", str(out), "--num-images", "2"]) == 2
    assert "not empty" in capsys.readouterr().err
