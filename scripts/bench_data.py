"""Cold ``freq`` against its decode floors, measured in the same run (issue 24).

    python scripts/bench_data.py --work /tmp/bench_data --repeats 5 --out reports/cpu-speed/freq_decode_floor

Generates (once, cached under ``--work``) SynthFace-LT in CelebAMask-HQ's layout at the real sizes
(1024 px JPEG images, 512 px part masks), then times, as separate processes from start to exit:

- ``freq --split all`` with one preset and with three (``segface official zll``), ``--workers W``,
  each with no label cache (cold): the cache of the run before is moved out of the dataset's folder
  first and deleted after the last round. Deleting it just before would time a quirk of the
  filesystem instead: ext4 without a journal (this machine's) skips inodes freed in the last one
  to five minutes when it allocates new ones, at the cost of a look-up per skipped inode, so
  creating the next 900 cache files right after deleting 1,200 costs seconds of kernel time that a
  user's first run does not pay (measured: ``freq`` with three presets spent 1.0 to 1.6 s of system
  time that way, 0.5 to 0.9 s with the old cache moved aside);
- the floors (:file:`scripts/decode_floor.py`, ``W`` processes): every mask decoded once into a
  numpy array (one preset's floor), and decoded once then painted under the three orders (three
  presets' floor); for reference also Pillow's decode alone, no array.

The commands run interleaved, one of each per round, for ``--repeats`` rounds; each time is the
median over rounds and each ratio is the median of ``freq`` over the median of its floor. The load
average before and after is printed: the machine may be shared, which moves every time but much
less the ratios of one run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PRESETS3 = ["segface", "official", "zll"]


def _tree(work: Path, num_images: int) -> Path:
    from lt_faceparse.data.synthetic import ensure_synthface

    return ensure_synthface(work / "data", fmt="celebamask-hq", num_images=num_images, size=512, seed=0,
                            image_scale=2)


def _commands(root: Path, work: Path, workers: int) -> dict[str, list[str]]:
    from lt_faceparse.data.celebamask_layout import MERGE_PRESETS

    script = Path(sys.executable).parent / "lt-faceparse"  # the installed command, as a user runs it
    cli = [str(script)] if script.is_file() else [sys.executable, "-m", "lt_faceparse"]
    freq = [*cli, "freq", "--dataset", "celebamask-hq", "--root", str(root), "--split", "all",
            "--workers", str(workers)]
    floor = [sys.executable, str(REPO / "scripts" / "decode_floor.py"), str(root), "--workers", str(workers)]
    orders = json.dumps([list(MERGE_PRESETS[p]) for p in PRESETS3])
    return {
        "freq, 1 preset": [*freq, "--out", str(work / "out1")],
        "floor: decode to arrays": [*floor, "--mode", "array"],
        "freq, 3 presets": [*freq, "--merge", *PRESETS3, "--out", str(work / "out3")],
        "floor: decode to arrays, paint 3 orders": [*floor, "--mode", "merge", "--orders", orders],
        "reference: Pillow decode only": [*floor, "--mode", "load"],
    }


def _timed(cmd: list[str], root: Path, trash: Path) -> float:
    cache = root / ".lt_faceparse_cache"
    if "freq" in cmd and cache.exists():  # cold: no label cache (moved aside, deleted after the rounds)
        trash.mkdir(parents=True, exist_ok=True)
        cache.rename(trash / f"cache-{len(list(trash.iterdir()))}")
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, cwd=REPO)
    return time.perf_counter() - start


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def _commit() -> str:
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO, capture_output=True,
                           text=True)
    return head.stdout.strip() + (" (uncommitted changes)" if dirty.stdout.strip() else "")


def run(work: Path, num_images: int, workers: int, repeats: int) -> dict:
    commit = _commit()  # the code measured: the tree as the run starts
    root = _tree(work, num_images)
    commands = _commands(root, work, workers)
    load_before = _load()
    times: dict[str, list[float]] = {name: [] for name in commands}
    trash = work / "old-caches"
    shutil.rmtree(trash, ignore_errors=True)
    try:
        for _ in range(repeats):
            for name, cmd in commands.items():
                times[name].append(_timed(cmd, root, trash))
    finally:
        shutil.rmtree(trash, ignore_errors=True)
    median = {name: statistics.median(t) for name, t in times.items()}
    masks = sum(1 for _ in (root / "CelebAMask-HQ-mask-anno").rglob("*.png"))
    return {
        "commit": commit, "root": str(root), "num_images": num_images, "num_masks": masks, "workers": workers,
        "repeats": repeats, "load_before": load_before, "load_after": _load(), "cpus": os.cpu_count(),
        "machine": platform.processor() or platform.machine(), "python": platform.python_version(),
        "commands": {name: " ".join(cmd) for name, cmd in commands.items()},
        "times_s": times, "median_s": median,
        "ratio_1_preset": median["freq, 1 preset"] / median["floor: decode to arrays"],
        "ratio_3_presets": median["freq, 3 presets"] / median["floor: decode to arrays, paint 3 orders"],
        "paired_ratio_1_preset": _paired(times["freq, 1 preset"], times["floor: decode to arrays"]),
        "paired_ratio_3_presets": _paired(times["freq, 3 presets"], times["floor: decode to arrays, paint 3 orders"]),
    }


def _paired(ours: list[float], floor: list[float]) -> float:
    """Median over rounds of ``ours / floor`` of the same round (the two ran one after the other, so
    a slow spell of the shared machine moves both)."""
    return statistics.median(o / f for o, f in zip(ours, floor))


def markdown(r: dict) -> str:
    m = r["median_s"]
    lines = [
        f"# `freq` against its decode floor (commit {r['commit']})", "",
        f"SynthFace-LT in CelebAMask-HQ's layout at its real sizes: {r['num_images']} images (1024 px JPEG), "
        f"{r['num_masks']} part masks (512 px PNG); `--workers {r['workers']}`, floors in {r['workers']} processes. "
        f"Wall time of each command from process start to exit (start-up included), no label cache for "
        f"any `freq` (cold: the last run's cache moved out of the dataset's folder before it, deleted after "
        f"the last round); commands interleaved, median of {r['repeats']} rounds. "
        f"Machine: {r['cpus']} CPUs ({r['machine']}), Python {r['python']}; load average (1, 5, 15 min) "
        f"{r['load_before']} before, {r['load_after']} after.", "",
        "| work | ours (median s) | the floor, same run (median s) | ratio |", "|---|---:|---|---:|",
        f"| `freq --split all`, one preset, cold | {m['freq, 1 preset']:.2f} | every mask decoded once into a "
        f"numpy array: {m['floor: decode to arrays']:.2f} | {r['ratio_1_preset']:.2f}x |",
        f"| `freq --merge segface official zll`, cold | {m['freq, 3 presets']:.2f} | the same, then painted "
        f"under the 3 orders: {m['floor: decode to arrays, paint 3 orders']:.2f} | {r['ratio_3_presets']:.2f}x |",
        "", f"Paired: the median over rounds of each round's `freq` over the floor run just after it: "
        f"{r['paired_ratio_1_preset']:.2f}x (one preset), {r['paired_ratio_3_presets']:.2f}x (three presets).",
        "", f"Reference: Pillow's decode alone (`Image.load`, no array): {m['reference: Pillow decode only']:.2f} s "
        f"(one preset's `freq` is {m['freq, 1 preset'] / m['reference: Pillow decode only']:.2f}x that).", "",
        "Every time (s), in round order:", "",
    ]
    lines += [f"- {name}: {', '.join(f'{t:.2f}' for t in ts)}" for name, ts in r["times_s"].items()]
    lines += ["", "Commands:", ""] + [f"- {name}: `{cmd}`" for name, cmd in r["commands"].items()]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/lt_faceparse_bench_data"),
                        help="folder for the generated tree and the outputs")
    parser.add_argument("--num-images", type=int, default=300)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", type=Path, help="write OUT.md and OUT.json")
    args = parser.parse_args()
    result = run(args.work, args.num_images, args.workers, args.repeats)
    text = markdown(result)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".md").write_text(text)
        args.out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
