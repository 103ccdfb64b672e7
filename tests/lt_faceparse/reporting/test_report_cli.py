import json

import numpy as np
import pytest

from lt_faceparse.cli import main
from lt_faceparse.records import build_record, save_record
from lt_faceparse.taxonomy import get_taxonomy

TAX = get_taxonomy("celebamask-hq")


def _save(tmp_path, name, protocol, wrong=0):
    cm = np.eye(TAX.num_classes, dtype=np.int64) * 50
    cm[2, 2] -= wrong
    cm[2, 1] += wrong
    record = build_record(cm, TAX, {"model": name, "dataset": "synthface-lt", "split": "test", "merge": "segface",
                                    "protocol": protocol, "resolution": 64}, num_images=3)
    save_record(record, tmp_path / "runs" / name)


def test_speed_command_writes_one_record_per_setting(tmp_path, capsys):
    code = main(["speed", "--model", "tiny", "--res", "16,32", "--batch", "1,2", "--runs", "2", "--warmup", "0",
                 "--out", str(tmp_path)])
    assert code == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["speed-tiny-default-r16-b1-cpu-fp32.json", "speed-tiny-default-r16-b2-cpu-fp32.json",
                     "speed-tiny-default-r32-b1-cpu-fp32.json", "speed-tiny-default-r32-b2-cpu-fp32.json"]
    record = json.loads((tmp_path / names[0]).read_text())
    assert record["model"] == "tiny" and record["params"] > 0 and record["fps"] > 0
    assert "Latency" in capsys.readouterr().out


def test_speed_command_rejects_bad_resolutions():
    with pytest.raises(SystemExit) as err:
        main(["speed", "--model", "tiny", "--res", "64,abc"])
    assert err.value.code == 2


def test_leaderboard_command(tmp_path, capsys):
    _save(tmp_path, "a", "input")
    _save(tmp_path, "b", "input", wrong=10)
    _save(tmp_path, "c", "native")
    code = main(["leaderboard", "--results", str(tmp_path / "runs"), "--reference", "a @64",
                 "--out", str(tmp_path / "out")])
    assert code == 0
    text = (tmp_path / "out" / "leaderboard.md").read_text()
    assert "2 protocol group(s)" in text
    assert "Δ F1 vs a @64" in text
    printed = " ".join(capsys.readouterr().out.split())
    assert "input scoring" in printed and "native scoring" in printed


def test_leaderboard_command_errors_name_the_folder(tmp_path, capsys):
    assert main(["leaderboard", "--results", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    assert "nope" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["report", "--results", str(tmp_path / "empty"), "--out", str(tmp_path / "o")]) == 2
    assert "no result records" in capsys.readouterr().err


def test_benchmark_command_gpu_plan_needs_cuda(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present: the gpu plan would run")
    assert main(["benchmark", "--device", "cuda", "--out", str(tmp_path / "o"), "--cache", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert "plan 'gpu'" in err and "CUDA" in err
    assert not (tmp_path / "c").exists()  # refused before generating anything
    with pytest.raises(SystemExit):
        main(["benchmark", "--plan", "huge"])
