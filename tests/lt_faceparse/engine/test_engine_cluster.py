"""Cluster behaviour on one machine (torchrun, gloo, 127.0.0.1): two "nodes" with a c10d rendezvous,
an elastic restart after a worker is SIGKILLed, and a SIGTERM that reaches one rank only.

The multi-process tests are marked slow: each starts torchrun agents and workers that import torch.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from engine_testdata import HERE, MemoryFaces, free_port, register_test_models, tiny_config, torchrun_command
from safetensors.torch import load_file
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from lt_faceparse.data.synthetic import COMPLETE_MARKER
from lt_faceparse.engine.checkpoint import list_checkpoints, load_checkpoint
from lt_faceparse.engine.config import load_config
from lt_faceparse.engine.distributed import shared_store_breaks_restarts
from lt_faceparse.engine.progress import read_log
from lt_faceparse.engine.train import train

REPO = HERE.parents[2]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}
# synth_tiny on 40 generated 32 px faces (32 train): global batch 8, 4 steps per epoch on 1 or 2 ranks
SYNTH = "{num_images: 40, size: 32, seed: 0}"
OVERRIDES = ["data.resolution=32", f"data.synthetic={SYNTH}", "model.name=tiny_signalling_test",
             "model.kwargs={width: 8}", "optim.epochs=3", "batch.global=8", "log_every=1"]
TRAIN_SCRIPT = ("script", str(REPO / "scripts" / "train.py"), "--config", "synth_tiny")


def _max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def _finish(proc: subprocess.Popen, timeout: float = 240) -> tuple[int, str]:
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"torchrun did not finish in {timeout} s:\n{out[-4000:]}")
    return proc.returncode, out


def _start(cmd: list[str], **env: str) -> subprocess.Popen:
    """torchrun in its own session (so that a failed test can kill the agent and its workers at once)."""
    return subprocess.Popen(cmd, env={**ENV, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


@pytest.fixture(scope="module")
def single_synth(tmp_path_factory):
    """The reference: one process, the same config and global batch, SynthFace-LT generated in-process."""
    register_test_models()
    root = tmp_path_factory.mktemp("cluster")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run = train(load_config("synth_tiny", [*OVERRIDES, f"data.root={root / 'synth'}", f"out={root / 'single'}"]))
    finally:
        torch.set_num_threads(threads)
    return run


def _generated_files(folder: Path) -> dict[str, str]:
    """Relative path -> digest of a SynthFace-LT set's files (the label cache that each node fills with
    the images it reads is left out)."""
    return {str(p.relative_to(folder)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and ".lt_faceparse_cache" not in p.parts}


@pytest.mark.slow
def test_two_nodes_with_a_c10d_rendezvous_match_one_process(tmp_path, single_synth):
    """Two torchrun agents (--nnodes=2, one process each) on 127.0.0.1; each "node" has its own
    (node-local) SynthFace-LT cache, the run folder is shared."""
    endpoint, run = f"127.0.0.1:{free_port()}", tmp_path / "two_nodes"
    nodes = []
    for node_rank in (0, 1):
        launcher = ("--nnodes=2", f"--node_rank={node_rank}", "--rdzv_backend=c10d", f"--rdzv_endpoint={endpoint}",
                    "--rdzv_id=two-nodes-test", "--max-restarts=0")
        cmd = torchrun_command(1, *TRAIN_SCRIPT, "--out", str(run), "data.root=$LTFP_TEST_NODE_CACHE", *OVERRIDES,
                               launcher=launcher)
        nodes.append(_start(cmd, LTFP_TEST_NODE_CACHE=str(tmp_path / f"node{node_rank}_cache")))
    for proc in nodes:
        code, out = _finish(proc)
        assert code == 0, out[-4000:]

    start = read_log(run / "log.jsonl")[0]
    assert (start["world_size"], start["local_world_size"], start["node_rank"]) == (2, 1, 0)
    assert (start["per_gpu"], start["accumulation"], start["steps_per_epoch"]) == (4, 1, 4)
    assert _max_diff(load_file(str(run / "final.safetensors")), load_file(str(single_synth / "final.safetensors"))) < 1e-5
    two = [r["loss"] for r in read_log(run / "log.jsonl") if r["event"] == "step"]
    one = [r["loss"] for r in read_log(single_synth / "log.jsonl") if r["event"] == "step"]
    assert len(two) == 12 and two == pytest.approx(one, rel=1e-5)
    # one writer: a single event file, a single start line; each node generated its own data set
    assert len(list((run / "tb").glob("events.out.tfevents.*"))) == 1
    assert [r["event"] for r in read_log(run / "log.jsonl")].count("start") == 1
    caches = [next((tmp_path / f"node{k}_cache").iterdir()) for k in (0, 1)]
    assert all((c / COMPLETE_MARKER).is_file() for c in caches)
    assert _generated_files(caches[0]) == _generated_files(caches[1])


def _worker_pids(agent_pid: int) -> dict[int, int]:
    """Global rank -> pid of the agent's worker processes (from /proc)."""
    workers = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            environ = (entry / "environ").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue  # exited meanwhile
        if ppid == agent_pid:
            rank = [v for v in environ if v.startswith(b"RANK=")]
            if rank:
                workers[int(rank[0][5:])] = int(entry.name)
    return workers


@pytest.mark.slow
def test_elastic_restart_after_a_worker_is_killed_resumes_by_itself(tmp_path, single_synth):
    """`torchrun --max-restarts=1 lt-faceparse train ... resume=auto`; rank 1 is SIGKILLed after the first
    checkpoint: the agent restarts both workers, which continue from the newest checkpoint."""
    run = tmp_path / "elastic"
    launcher = ("--nnodes=1", "--rdzv_backend=c10d", f"--rdzv_endpoint=127.0.0.1:{free_port()}",
                "--rdzv_id=elastic-test", "--max-restarts=1", "--monitor-interval=0.1")
    cmd = torchrun_command(2, *TRAIN_SCRIPT, "--out", str(run), "--resume", "auto",
                           f"data.root={single_synth.parent / 'synth'}", *OVERRIDES,
                           "checkpoint.every_steps=2", "checkpoint.keep_last=10", launcher=launcher)
    # slow steps: time to kill mid-run; a fresh rendezvous store per attempt (see shared_store_breaks_restarts)
    agent = _start(cmd, LTFP_TEST_STEP_DELAY="0.15", TORCH_DISABLE_SHARE_RDZV_TCP_STORE="1")
    deadline = time.monotonic() + 180
    while not list_checkpoints(run):
        assert agent.poll() is None, agent.communicate()[0][-4000:]
        assert time.monotonic() < deadline, "no checkpoint within 180 s"
        time.sleep(0.01)
    victim = _worker_pids(agent.pid)[1]
    os.kill(victim, signal.SIGKILL)
    code, out = _finish(agent)
    assert code == 0, out[-4000:]

    log = read_log(run / "log.jsonl")
    starts = [r for r in log if r["event"] == "start"]
    assert [s["restart_count"] for s in starts] == [0, 1] and starts[0]["resumed_from"] is None
    resumed = Path(starts[1]["resumed_from"])
    assert starts[1]["global_step"] == load_checkpoint(run / "checkpoints" / resumed.name)["global_step"] >= 2
    assert starts[1]["global_step"] < 12  # killed before the end
    assert log[-1]["event"] == "end"
    assert _max_diff(load_file(str(run / "final.safetensors")), load_file(str(single_synth / "final.safetensors"))) < 1e-5
    acc = EventAccumulator(str(run / "tb"), size_guidance={"scalars": 0})
    acc.Reload()  # what the killed attempt logged after its checkpoint is hidden: every step once
    assert [e.step for e in acc.Scalars("train/loss")] == list(range(1, 13))


@pytest.mark.slow
def test_sigterm_to_one_rank_stops_every_rank_at_the_same_step_and_the_run_resumes(tmp_path):
    """Rank 1 alone gets SIGTERM during step 5: both ranks agree one step later, rank 0 checkpoints
    step 6, every worker exits 143; the same command with resume=auto then finishes the run."""
    register_test_models()
    sections = dict(model={"name": "tiny_signalling_test", "kwargs": {"width": 8}}, optim={"epochs": 3})
    dataset = {"n": 32}  # 2 ranks x per_gpu 4: 4 steps per epoch
    run = tmp_path / "ddp"
    spec = {"config": tiny_config(run, **sections), "dataset": dataset}
    code, out = _finish(_start(torchrun_command(2, "train", json.dumps(spec)), LTFP_TEST_SIGNAL="SIGTERM:1:5"))
    assert code != 0 and "exitcode  : 143" in out, out[-4000:]
    log = read_log(run / "log.jsonl")
    assert log[-1]["event"] == "preempted" and log[-1]["signal"] == "SIGTERM"
    assert (log[-1]["epoch"], log[-1]["step_in_epoch"], log[-1]["step"]) == (1, 2, 6)
    assert [r["step"] for r in log if r["event"] == "step"][-1] == 6
    state = load_checkpoint(list_checkpoints(run)[-1])
    assert (state["epoch"], state["step_in_epoch"], state["global_step"]) == (1, 2, 6)
    assert len(state["rng"]) == 2  # both ranks' generator states

    spec = {"config": tiny_config(run, resume="auto", **sections), "dataset": dataset}
    code, out = _finish(_start(torchrun_command(2, "train", json.dumps(spec))))
    assert code == 0, out[-4000:]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        single = train(tiny_config(tmp_path / "single", **sections), train_dataset=MemoryFaces(**dataset))
    finally:
        torch.set_num_threads(threads)
    assert _max_diff(load_file(str(run / "final.safetensors")), load_file(str(single / "final.safetensors"))) < 1e-5
    starts = [r for r in read_log(run / "log.jsonl") if r["event"] == "start"]
    assert starts[-1]["resumed_from"].endswith("ckpt_e0001_s000000006.pt") and starts[-1]["world_size"] == 2


def test_restarts_with_a_shared_rendezvous_store_are_flagged(monkeypatch):
    monkeypatch.delenv("TORCHELASTIC_MAX_RESTARTS", raising=False)
    monkeypatch.delenv("TORCH_DISABLE_SHARE_RDZV_TCP_STORE", raising=False)
    assert not shared_store_breaks_restarts()  # not under torchrun
    monkeypatch.setenv("TORCHELASTIC_MAX_RESTARTS", "0")
    assert not shared_store_breaks_restarts()  # no restarts
    monkeypatch.setenv("TORCHELASTIC_MAX_RESTARTS", "3")
    assert shared_store_breaks_restarts()
    monkeypatch.setenv("TORCH_DISABLE_SHARE_RDZV_TCP_STORE", "1")
    assert not shared_store_breaks_restarts()
