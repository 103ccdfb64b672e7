"""Cases of the bad-input catalogue on the engine side: weight files, records, checkpoints, ``eval``,
``train`` and ``compare`` (see test_bad_inputs.py)."""

from __future__ import annotations

import errno
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from bad_input_data import (error_line, fill_disk, folder_set, run, run_process, small_tmpfs, tiny_weights, truncate,
                            write_image)

from lt_faceparse.engine.checkpoint import list_checkpoints, load_checkpoint, save_checkpoint
from lt_faceparse.errors import DataError
from lt_faceparse.records import load_record

sys.path.insert(0, str(Path(__file__).resolve().parent / "engine"))  # engine_testdata, as the engine tests do


def _eval(capsys, weights: Path, root: Path, out: Path, *extra: str) -> tuple[int, str]:
    return run(capsys, "eval", "--checkpoint", weights, "--dataset", "folder", "--root", root, "--split", "test",
               "--bootstrap", "0", "--device", "cpu", "--out", out, *extra)


def _record_still_works(capsys, out: Path, before: bytes, tables: Path) -> None:
    assert (out / "record.json").read_bytes() == before
    record = load_record(out)
    assert record.per_image.num_images == 4  # its per_image.npz still matches its checksum
    assert run(capsys, "leaderboard", "--results", out, "--out", tables)[0] == 0
    assert run(capsys, "compare", out, out, "--bootstrap", "10")[0] == 0


def record_full_disk_injected(tmp_path, capsys, monkeypatch):
    import lt_faceparse.records.io as records

    root = folder_set(tmp_path / "set")
    weights, out = tiny_weights(tmp_path / "w.safetensors", root), tmp_path / "results" / "rec"
    assert _eval(capsys, weights, root, out)[0] == 0
    before = (out / "record.json").read_bytes()

    def full(path, data, **kwargs):  # the disk fills between per_image.npz and record.json
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(records, "atomic_write_json", full)
    code, err = _eval(capsys, weights, root, out, "--protocol", "native")
    assert code == 2 and error_line(err).endswith(f"{out}: no space left on device")
    monkeypatch.undo()
    _record_still_works(capsys, out, before, tmp_path / "tables")
    assert sorted(p.name for p in out.parent.iterdir()) == ["rec"]  # no temporary folder left


def full_disk_tmpfs(tmp_path, capsys, monkeypatch):
    root = folder_set(tmp_path / "set")
    weights = tiny_weights(tmp_path / "w.safetensors", root)
    with small_tmpfs(tmp_path / "disk", "2m") as disk:
        out = disk / "rec"
        assert _eval(capsys, weights, root, out)[0] == 0
        before = (out / "record.json").read_bytes()
        state = _checkpoint_state(step=1, size=100_000)
        first = save_checkpoint(disk / "run", state, keep_last=5)
        fill_disk(disk)
        code, err = _eval(capsys, weights, root, out, "--protocol", "native")
        assert code == 2 and "no space left on device" in error_line(err)
        _record_still_works(capsys, out, before, tmp_path / "tables")
        with pytest.raises(OSError) as caught:
            save_checkpoint(disk / "run", _checkpoint_state(step=2, size=100_000), keep_last=5)
        assert caught.value.errno == errno.ENOSPC and caught.value.filename.endswith("ckpt_e0001_s000000002.pt")
        assert list_checkpoints(disk / "run") == [first] and load_checkpoint(first)["global_step"] == 1


def _checkpoint_state(step: int, size: int = 64) -> dict:
    return {"model": {"w": torch.arange(size, dtype=torch.float32) * 1.2345}, "optimizer": {}, "scheduler": {},
            "epoch": 1, "step_in_epoch": 0, "global_step": step, "rng": {}, "config": {"resume": True}}


def checkpoint_full_disk_injected(tmp_path, capsys, monkeypatch):
    import lt_faceparse.atomic as atomic
    from lt_faceparse.cli import describe_os_error

    first = save_checkpoint(tmp_path, _checkpoint_state(1), keep_last=3)

    def torch_full(obj, f, *args, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 4480 vs 4374")

    monkeypatch.setattr(torch, "save", torch_full)
    monkeypatch.setattr(atomic.shutil, "disk_usage", lambda path: SimpleNamespace(total=1, used=1, free=0))
    with pytest.raises(OSError) as caught:
        save_checkpoint(tmp_path, _checkpoint_state(2), keep_last=3)
    second = tmp_path / "checkpoints" / "ckpt_e0001_s000000002.pt"
    assert describe_os_error(caught.value) == f"{second}: no space left on device"
    assert list_checkpoints(tmp_path) == [first] and not list((tmp_path / "checkpoints").glob(".*tmp"))


def corrupt_checkpoint_is_skipped(tmp_path, capsys, monkeypatch):
    from lt_faceparse.engine.resume import plan_resume

    older = save_checkpoint(tmp_path, _checkpoint_state(1), keep_last=3)
    newer = save_checkpoint(tmp_path, _checkpoint_state(2), keep_last=3)
    data = bytearray(newer.read_bytes())
    at = bytes(data).find((torch.arange(64, dtype=torch.float32) * 1.2345).numpy().tobytes())
    data[at + 40] ^= 0xFF  # one flipped byte inside the weights: the size is unchanged
    newer.write_bytes(bytes(data))
    with pytest.raises(DataError, match="checksum does not match"):
        load_checkpoint(newer)
    plan, state = plan_resume(tmp_path, {"resume": True}, final_name="final.safetensors", changed_keys=lambda a, b: [])
    assert plan.checkpoint == older and state["global_step"] == 1 and plan.unreadable[0][0] == newer.name


def code_running_pickles(tmp_path, capsys, monkeypatch):
    from lt_faceparse.pretrained import load_state_file

    class Runs:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "ran"),))

    for path in (tmp_path / "checkpoints" / "ckpt_e0001_s000000001.pt", tmp_path / "weights.pth"):
        path.parent.mkdir(exist_ok=True)
        torch.save({**_checkpoint_state(1), "model": Runs()}, path)
    with pytest.raises(DataError, match="not a readable training checkpoint"):
        load_checkpoint(tmp_path / "checkpoints" / "ckpt_e0001_s000000001.pt")
    with pytest.raises(DataError, match="not a loadable weight file"):
        load_state_file(tmp_path / "weights.pth")
    assert not (tmp_path / "ran").exists()


def loader_workers_truncated_image(tmp_path, capsys, monkeypatch):
    root = folder_set(tmp_path / "set")
    weights = tiny_weights(tmp_path / "w.safetensors", root)
    bad = truncate(sorted((root / "test" / "images").iterdir())[2], 0.4)
    code, err = _eval(capsys, weights, root, tmp_path / "rec", "--num-workers", "1")
    assert code == 2 and str(bad) in error_line(err) and len(err.strip().splitlines()) == 1


def train_workers_bad_label(tmp_path, capsys, monkeypatch):
    root = folder_set(tmp_path / "set")
    bad = sorted((root / "train" / "labels").iterdir())[1]
    write_image(bad, np.full((16, 16), 9, np.uint8))
    start = time.monotonic()
    done = run_process("train", "--config", "synth_tiny", "data.dataset=folder", f"data.root={root}",
                       "data.resolution=16", "data.synthetic=null", "data.num_workers=1", "data.val_split=null", "optim.epochs=1",
                       "batch.global=2", "--out", tmp_path / "run", timeout=120)
    assert time.monotonic() - start < 90
    assert done.returncode == 2 and f"{bad}: label ids [9]" in error_line(done.stderr), done.stderr


def nan_weights_warn(tmp_path, capsys, monkeypatch):
    root = folder_set(tmp_path / "set")
    weights = tiny_weights(tmp_path / "nan.safetensors", root, fill=float("nan"))
    with pytest.warns(UserWarning, match=r"nan.safetensors: .* weights are NaN or infinite"):
        assert _eval(capsys, weights, root, tmp_path / "rec")[0] == 0


def failed_first_start_resumes(tmp_path, capsys, monkeypatch):
    from engine_testdata import MemoryFaces, tiny_config

    from lt_faceparse.engine import train as train_module
    from lt_faceparse.engine.config import ConfigError
    from lt_faceparse.engine.resume import run_finished

    def refuse(self, *args, **kwargs):
        raise ConfigError("resolution 65 is not a multiple of the model's stride 32")

    monkeypatch.setattr(train_module.Trainer, "_train_epoch", refuse)
    with pytest.raises(ConfigError):
        train_module.train(tiny_config(tmp_path / "run", optim={"epochs": 1}), train_dataset=MemoryFaces(8))
    assert (tmp_path / "run" / "config.yaml").is_file() and not list_checkpoints(tmp_path / "run")
    monkeypatch.undo()
    fixed = tiny_config(tmp_path / "run", resume="auto", optim={"epochs": 1, "lr": 5e-3})
    assert run_finished(train_module.train(fixed, train_dataset=MemoryFaces(8)), "final.safetensors")


def torch_file_as_weights(tmp_path, capsys, monkeypatch):
    root = folder_set(tmp_path / "set")
    torch.save({"model": {"w": torch.zeros(3)}}, tmp_path / "ckpt.pt")
    for command in ("eval", "parse"):
        args = ("--dataset", "folder", "--root", root, "--split", "test") if command == "eval" else (root,)
        code, err = run(capsys, command, "--checkpoint", tmp_path / "ckpt.pt", *args, "--out", tmp_path / "o")
        assert code == 2 and "a PyTorch checkpoint, not a weight file" in error_line(err)
        assert "header too large" not in err


def run_folder_as_weights(tmp_path, capsys, monkeypatch):
    root = folder_set(tmp_path / "set")
    tiny_weights(tmp_path / "run" / "final.safetensors", root)
    assert _eval(capsys, tmp_path / "run", root, tmp_path / "rec")[0] == 0
    code, err = _eval(capsys, tmp_path / "set", root, tmp_path / "rec2")
    assert code == 2 and "holds no weight file (final.safetensors or model.safetensors" in error_line(err)


def compare_hint_has_no_force(tmp_path, capsys, monkeypatch):
    root = folder_set(tmp_path / "set")
    weights = tiny_weights(tmp_path / "w.safetensors", root)
    for protocol in ("input", "native"):
        assert _eval(capsys, weights, root, tmp_path / protocol, "--protocol", protocol)[0] == 0
    code, err = run(capsys, "compare", tmp_path / "input", tmp_path / "native")
    assert code == 2 and "protocol" in error_line(err) and "force" not in err


def overrides_around_resume(tmp_path, capsys, monkeypatch):
    import lt_faceparse.engine.train as train_module

    seen = {}
    monkeypatch.setattr(train_module, "train", lambda config: seen.update(config) or tmp_path)
    assert run(capsys, "train", "--config", "synth_tiny", "optim.epochs=1", "--resume", "auto", "optim.lr=0.5",
               "--out", tmp_path / "run")[0] == 0
    assert seen["optim"]["epochs"] == 1 and seen["optim"]["lr"] == 0.5 and seen["resume"] == "auto"
    code, err = run(capsys, "train", "--config", "synth_tiny", "--resume", "auto", "--no-such-flag")
    assert code == 2 and "unrecognized arguments: --no-such-flag" in err


def taxonomy_mismatch(tmp_path, capsys, monkeypatch):
    root = folder_set(tmp_path / "set")
    weights = tiny_weights(tmp_path / "w.safetensors", root)
    (root / "classes.txt").write_text("background\nskin\nhair\nmouth\n")
    code, err = _eval(capsys, weights, root, tmp_path / "rec")
    assert code == 2 and "classes.txt" in error_line(err) and "mouth" in err


def bad_safetensors(tmp_path, capsys, monkeypatch):
    root = folder_set(tmp_path / "set")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    code, err = _eval(capsys, bad, root, tmp_path / "rec")
    assert code == 2 and error_line(err).split(": error: ")[1].startswith(f"{bad}: not a readable safetensors file")
