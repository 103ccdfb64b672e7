#!/usr/bin/env python
"""Before/after fingerprint of lt-faceparse results, for behaviour-preserving refactors.

Drives only the public CLI (``PYTHON -m lt_faceparse ...`` in subprocesses, cwd = the repository) and
reads only on-disk output formats (safetensors, record.json / per_image.npz, freq CSV / JSON), so the
same script runs unchanged on the code before and after a refactor:

    python scripts/fingerprint.py --repo /work/wt/X --python /work/wt/X/.venv/bin/python --out after.json
    python scripts/fingerprint.py --compare baseline.json after.json    # exit 1 on any difference

What is fingerprinted (sha256 of canonical JSON of parsed values, never of file bytes that carry dates,
paths or metadata): the bytes of three seeded SynthFace-LT trees (CelebAMask-HQ, LaPa, folder with its
own classes.txt); ``freq`` counts per merge preset and split; every tensor of ``final.safetensors``
(raw bytes + dtype + shape) and the logged losses of eight tiny CPU runs; the confusion matrix,
per-class scores, groups, CI and per-image counts of the run's val record and of ``eval`` on test.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

SYNTH = ["--num-images", "32", "--size", "48", "--seed", "7", "--splits", "0.5,0.25,0.25", "--workers", "0"]
TRAIN_COMMON = ["data.synthetic=null", "data.resolution=32", "data.num_workers=0", "optim.epochs=2",
                "optim.milestones=[1]", "batch.global=8", "batch.per_gpu=4", "val.every_epochs=0",
                "tensorboard=false", "log_every=1", "precise_bn_batches=2", "device=cpu", "seed=0"]
MOBILENET = "model.kwargs={backbone: mobilenet, fusion: true, pretrained: false}"
# name, dataset tree, shipped config, extra overrides
RUNS = [
    ("segface_mobilenet", "celebamask-hq", "synth_segface_mobilenet", []),
    ("bisenet_ohem", "celebamask-hq", "celeba_bisenet_512", ["model.kwargs={loss: ohem, pretrained: false}"]),
    ("fcn_mobilenet", "celebamask-hq", "celeba_fcn_swinb_512",
     ["model.kwargs={backbone: mobilenet, pretrained: false}"]),
    ("segformer_mobilenet", "celebamask-hq", "celeba_segformer_swinb_512",
     ["model.kwargs={backbone: mobilenet, pretrained: false}"]),
    ("longtail_repeat_factor", "celebamask-hq", "longtail/repeat_factor", []),
    ("longtail_copy_paste_weighted_ce", "celebamask-hq", "longtail/copy_paste",
     ["longtail.loss={name: weighted_ce, weights: effective_number, beta: 0.999}"]),
    ("lapa_segface_warp", "lapa", "lapa_segface_swinb_512", [MOBILENET]),
    ("folder_tiny", "folder", "synth_tiny", ["data.dataset=folder", "data.merge=null"]),
]
# dataset tree, split, merge presets (None: the dataset's own labels)
FREQS = [("celebamask-hq", "train", ["segface", "official", "zll"]), ("celebamask-hq", "test", ["segface"]),
         ("celebamask-hq", "all", ["official"]), ("lapa", "train", None), ("folder", "train", None)]
ACCESSORIES = {"eye_g", "hat", "ear_r", "neck_l"}


def digest(value: Any) -> str:
    """sha256 of the canonical JSON of ``value`` (floats rounded to 12 significant digits)."""
    def canon(v: Any) -> Any:
        if isinstance(v, float):
            return repr(float(f"{v:.12g}"))
        if isinstance(v, dict):
            return {str(k): canon(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [canon(x) for x in v]
        return v
    return hashlib.sha256(json.dumps(canon(value), sort_keys=True).encode()).hexdigest()


class Runner:
    """Runs ``PYTHON -m lt_faceparse ARGS`` in the repository with a pinned, isolated environment."""

    def __init__(self, python: str, repo: Path, work: Path) -> None:
        self.python, self.repo = python, repo
        self.env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONHASHSEED="0",
                        CUDA_VISIBLE_DEVICES="", LT_FACEPARSE_CACHE=str(work / "cache"), HF_HUB_OFFLINE="1",
                        TORCH_HOME=str(work / "torch"), MPLBACKEND="Agg")
        self.seconds: dict[str, float] = {}

    def __call__(self, label: str, *args: str) -> None:
        start = time.perf_counter()
        proc = subprocess.run([self.python, "-m", "lt_faceparse", *args], cwd=self.repo, env=self.env,
                              capture_output=True, text=True)
        self.seconds[label] = round(time.perf_counter() - start, 1)
        print(f"  {label}: {self.seconds[label]} s", file=sys.stderr)
        if proc.returncode != 0:
            sys.exit(f"fingerprint: `lt_faceparse {' '.join(args)}` failed ({proc.returncode}):\n"
                     f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")


def make_trees(run: Runner, work: Path, fp: dict[str, str]) -> dict[str, Path]:
    """Generate the three SynthFace-LT trees; the folder tree gets its own classes.txt (display names,
    kinds), so it trains on a ``folder:`` taxonomy of its own. Fingerprint every file's bytes."""
    trees = {}
    for fmt in ("celebamask-hq", "lapa", "folder"):
        trees[fmt] = work / "data" / fmt
        run(f"synth {fmt}", "synth", "--format", fmt, "--out", str(trees[fmt]), *SYNTH)
    names = (trees["folder"] / "classes.txt").read_text().split()
    kinds = ["background" if n == "background" else "accessory" if n in ACCESSORIES else "head" for n in names]
    (trees["folder"] / "classes.txt").write_text(
        "".join(f"{n}\t{n.replace('_', ' ').title()}\t{k}\n" for n, k in zip(names, kinds)))
    for fmt, root in trees.items():
        files = sorted(p for p in root.rglob("*") if p.is_file())
        fp[f"data/{fmt}/files"] = digest([(str(p.relative_to(root)), hashlib.sha256(p.read_bytes()).hexdigest())
                                          for p in files])
    return trees


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def number(text: str) -> Any:
    """A CSV cell as int, float or None (empty), else the text itself."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return None if text == "" else text


def freq_fingerprints(run: Runner, trees: dict[str, Path], work: Path, fp: dict[str, str]) -> None:
    """``freq`` per tree/split/preset: every column of class_frequencies.csv and the summary's numbers."""
    for fmt, split, merges in FREQS:
        out = work / "freq" / f"{fmt}-{split}"
        args = ["freq", "--dataset", fmt, "--root", str(trees[fmt]), "--split", split, "--out", str(out)]
        run(f"freq {fmt} {split}", *args, *(["--merge", *merges] if merges else []))
        for summary_path in sorted(out.rglob("summary.json")):
            summary = json.loads(summary_path.read_text())
            key = f"freq/{fmt}/{split}/{summary.get('merge') or 'none'}"
            rows = read_csv(summary_path.parent / "class_frequencies.csv")
            for column in rows[0]:
                fp[f"{key}/{column}"] = digest([number(r[column]) for r in rows])
            fp[f"{key}/summary"] = digest({k: summary[k] for k in ("num_images", "num_pixels", "gini_image",
                                                                   "gini_pixel", "thresholds", "taxonomy")})


def safetensors_fingerprints(path: Path) -> dict[str, str]:
    """name -> sha256 of the tensor's raw bytes, with dtype and shape (file metadata left out)."""
    blob = path.read_bytes()
    (size,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + size])
    data = blob[8 + size:]
    out = {}
    for name, info in sorted(header.items()):
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        out[name] = f"{hashlib.sha256(data[begin:end]).hexdigest()} {info['dtype']} {info['shape']}"
    return out


def record_fingerprints(folder: Path, key: str, fp: dict[str, str]) -> None:
    """Confusion matrix, per-class scores, means, groups, CI (record.json) and per-image counts (npz)."""
    record = json.loads((folder / "record.json").read_text())
    fp[f"{key}/confusion"] = digest(record["confusion"])
    fp[f"{key}/num_images"] = digest(record["num_images"])
    for row in record["per_class"]:
        fp[f"{key}/per_class/{row['name']}"] = digest(row)
    fp[f"{key}/means"] = digest({k: record[k] for k in ("mean_f1", "mean_iou_with_bg", "mean_iou_without_bg",
                                                        "pixel_accuracy", "undefined_classes")})
    fp[f"{key}/groups"] = digest(record["groups"])
    fp[f"{key}/ci"] = digest(record["ci"])
    with np.load(folder / "per_image.npz", allow_pickle=False) as arrays:
        for name in sorted(arrays.files):
            fp[f"{key}/per_image/{name}"] = digest(arrays[name].tolist())


def train_and_eval(run: Runner, trees: dict[str, Path], work: Path, fp: dict[str, str]) -> None:
    """Train each tiny run on CPU, fingerprint its weights and losses, evaluate it on test."""
    for name, fmt, config, extra in RUNS:
        out = work / "runs" / name
        run(f"train {name}", "train", "--config", config, f"data.root={trees[fmt]}", *TRAIN_COMMON, *extra,
            f"out={out}")
        for tensor, value in safetensors_fingerprints(out / "final.safetensors").items():
            fp[f"train/{name}/weights/{tensor}"] = value
        events = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines() if line.strip()]
        steps = [(e["step"], e["loss"], e.get("grad_norm")) for e in events if e.get("event") == "step"]
        fp[f"train/{name}/logged_steps"] = digest(steps)
        record_fingerprints(out / "val", f"train/{name}/val_record", fp)
        eval_dir = work / "eval" / name
        run(f"eval {name}", "eval", "--checkpoint", str(out / "final.safetensors"), "--dataset", fmt,
            "--root", str(trees[fmt]), "--split", "test", "--device", "cpu", "--bootstrap", "50",
            "--out", str(eval_dir))
        record_fingerprints(eval_dir, f"eval/{name}/test", fp)


def reuse_results_check(run: Runner, repo: Path) -> dict[str, Any]:
    """``benchmark --reuse-results`` into the repo's reports/: is ``git status`` of reports/ clean after?
    (At 9204aca it is not: README.md, benchmark.json and frequencies/summary.json carry dates, timings
    and load averages.) reports/ is restored either way (checkout + clean of untracked files)."""
    run("benchmark --reuse-results", "benchmark", "--reuse-results", "--out", "reports/")
    status = subprocess.run(["git", "status", "--porcelain", "reports/"], cwd=repo, capture_output=True,
                            text=True, check=True).stdout
    subprocess.run(["git", "checkout", "--", "reports/"], cwd=repo, check=True)
    subprocess.run(["git", "clean", "-fdq", "--", "reports/"], cwd=repo, check=True)
    return {"clean": status == "", "git_status": status.splitlines()}


def fingerprint(args: argparse.Namespace) -> int:
    repo = Path(args.repo).resolve()
    fp: dict[str, str] = {}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lt-fingerprint-") as tmp:
        work = Path(tmp)
        run = Runner(args.python, repo, work)
        trees = make_trees(run, work, fp)
        freq_fingerprints(run, trees, work, fp)
        train_and_eval(run, trees, work, fp)
        meta: dict[str, Any] = {"repo": str(repo), "python": args.python, "seconds_per_command": run.seconds}
        if args.reuse_results_check:
            meta["reuse_results_check"] = reuse_results_check(run, repo)
            fp["reuse_results/git_status"] = digest(meta["reuse_results_check"]["git_status"])
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    meta.update(git_commit=commit, total_seconds=round(time.perf_counter() - start, 1))
    Path(args.out).write_text(json.dumps({"meta": meta, "fingerprints": fp}, indent=1, sort_keys=True) + "\n")
    print(f"{len(fp)} fingerprints in {meta['total_seconds']} s -> {args.out}")
    if "reuse_results_check" in meta:
        print(f"benchmark --reuse-results left reports/ clean: {meta['reuse_results_check']['clean']}")
    return 0


def compare(path_a: str, path_b: str) -> int:
    """Print every key whose fingerprint differs (or exists on one side only); 1 if any, else 0."""
    a, b = (json.loads(Path(p).read_text())["fingerprints"] for p in (path_a, path_b))
    differing = 0
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key):
            differing += 1
            print(f"{key}: {a.get(key, '<missing>')} != {b.get(key, '<missing>')}")
    print(f"{differing} of {len(set(a) | set(b))} fingerprints differ ({path_a} vs {path_b})")
    return 1 if differing else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", default=sys.executable, help="interpreter that runs -m lt_faceparse")
    parser.add_argument("--repo", default=os.getcwd(), help="repository root (cwd of every command)")
    parser.add_argument("--out", help="fingerprint JSON to write")
    parser.add_argument("--reuse-results-check", action="store_true",
                        help="also run benchmark --reuse-results into REPO/reports/ and check git status there")
    parser.add_argument("--compare", nargs=2, metavar=("A", "B"), help="compare two fingerprint files")
    args = parser.parse_args()
    if args.compare:
        return compare(*args.compare)
    if not args.out:
        parser.error("--out FILE.json (or --compare A B) is required")
    return fingerprint(args)


if __name__ == "__main__":
    sys.exit(main())
