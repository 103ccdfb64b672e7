"""Sweeps: train, evaluate and time one model config over resolutions, backbones or long-tail
remedies (Tables 2a/2b, the remedy comparison).

Each setting lives in its own folder ``OUT/<model>-<backbone>-r<res>[-<remedy>]/`` (the remedy's
name only when it is not ``plain``)::

    run-<fingerprint>/  the training run (lt_faceparse.engine.train: final.safetensors, log.jsonl, ...);
                        under ``runs_dir/<name>/`` instead when a runs folder is given
    test/           the result record on the evaluation split, with bootstrap CIs
    val/            the training run's validation record (choices between settings are made on it)
    speed/          the speed record (batch 1, the run's resolution and device)
    sweep.json      one summary row (written last, atomically: its presence means "finished")

A rerun reuses a finished setting only when *this machine trained it*: its ``sweep.json`` was
written for the same training config (fingerprint) and the run folder still holds the final weights
whose SHA-256 the row names. A row without its weights (a results folder copied from elsewhere, e.g.
committed to git) is trained again; a row whose weights are present but differ is re-evaluated from
those weights. ``reuse="results"`` (the benchmark's ``--reuse-results``) instead takes every finished
row with the same fingerprint as it is, training nothing. Interrupted training resumes from its
newest checkpoint, so a sweep can be stopped and restarted at any point. Runs are keyed by a
fingerprint of the config (``run-<fingerprint>``): after a config change (more epochs, another
learning rate, other data) the setting is trained again, never silently reused.
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import torch

from lt_faceparse.atomic import atomic_write_json
from lt_faceparse.data.synthetic import ensure_synthface
from lt_faceparse.engine.config import expand_path
from lt_faceparse.engine.evaluate import evaluate_checkpoint, load_runner
from lt_faceparse.engine.progress import read_log
from lt_faceparse.engine.remedies import resolve_remedies, with_remedy
from lt_faceparse.engine.train import train
from lt_faceparse.longtail.spec import default_longtail
from lt_faceparse.records import ResultRecord, head_tail_means, load_record, remedy_of, save_record
from lt_faceparse.reporting.sweep_rows import SWEEP_FILE, load_sweep_row
from lt_faceparse.speed.harness import TemplateFace, measure_speed, save_speed
from lt_faceparse.taxonomy import get_taxonomy

REUSE_MODES = ("local", "results")


# keys that may differ between runs of the same setting without changing what is trained
_VOLATILE_KEYS = ("out", "resume", "device")


def config_fingerprint(config: dict[str, Any]) -> str:
    """Short hash of a training config, ignoring where the run lives and on which device it runs
    (and the ``longtail`` section when it holds the defaults, so runs from before remedies keep their hash).

    The dataset root enters by its folder name only (SynthFace-LT's cached folder names encode every
    generation parameter), so results copied to another machine or cache folder keep their
    fingerprints and can be matched there."""
    stable = {k: v for k, v in config.items() if k not in _VOLATILE_KEYS}
    longtail = stable.get("longtail")
    if isinstance(longtail, dict) and longtail.get("retrain_classifier") is None:  # unset: hashes as before the key
        stable["longtail"] = {k: v for k, v in longtail.items() if k != "retrain_classifier"}
    if stable.get("longtail") == {k: v for k, v in default_longtail().items() if k != "retrain_classifier"}:
        del stable["longtail"]
    data = stable.get("data")
    if isinstance(data, dict) and data.get("root"):
        stable["data"] = {**data, "root": Path(str(data["root"])).name}
    return hashlib.sha256(json.dumps(stable, sort_keys=True, default=str).encode()).hexdigest()[:12]


# the axis of a job that is trained only, into its config's ``out`` (neither scored nor given a results
# folder by the sweep: the benchmark's rarity control, which its own stage scores)
TRAIN_ONLY = "train-only"


@dataclass(frozen=True)
class SweepSetting:
    """One point of a sweep: ``axis`` says which knob varies (``resolution``, ``backbone``,
    ``remedy``, ``grid`` for several, or ``model`` for a plain comparison of configs; :data:`TRAIN_ONLY`
    for a run trained only); ``remedy`` names the long-tail remedy (:mod:`lt_faceparse.engine.remedies`),
    ``plain`` for none."""

    axis: str
    model: str
    backbone: str | None
    resolution: int
    remedy: str = "plain"  # long-tail remedy label; the folder name gets "-<remedy>" unless plain

    @property
    def name(self) -> str:
        backbone = (self.backbone or "default").replace("/", "_")
        suffix = "" if self.remedy == "plain" else f"-{self.remedy}"
        return f"{self.model}-{backbone}-r{self.resolution}{suffix}"


def main_job(jobs: Sequence[tuple[SweepSetting, dict[str, Any]]]) -> tuple[SweepSetting, dict[str, Any]]:
    """The main model's (setting, config) among ``jobs``: their first ``model`` setting (a benchmark plan
    lists it first, :func:`lt_faceparse.experiments.benchmark.plan_settings`)."""
    return next(job for job in jobs if job[0].axis == "model")


def setting_of(config: dict[str, Any], axis: str = "model", remedy: str = "plain") -> SweepSetting:
    return SweepSetting(axis, config["model"]["name"], config["model"]["kwargs"].get("backbone"),
                        int(config["data"]["resolution"]), remedy)


def plan_sweep(config: dict[str, Any], *, resolutions: Sequence[int] = (), backbones: Sequence[str] = (),
               remedies: Sequence[str] = ()) -> list[tuple[SweepSetting, dict[str, Any]]]:
    """The settings of a sweep and the config of each: ``resolutions`` x ``backbones`` x ``remedies``
    (each axis left empty keeps the config's value; the axis is the one that varies, ``"grid"`` when
    several do). ``remedies``: ``plain``, shipped remedy names, YAML files with a ``longtail``
    section, or ``all`` (see :func:`lt_faceparse.engine.remedies.resolve_remedies`)."""
    if not resolutions and not backbones and not remedies:
        raise ValueError("a sweep needs resolutions, backbones and/or remedies")
    varied = [name for name, values in (("resolution", resolutions), ("backbone", backbones), ("remedy", remedies))
              if values]
    axis = varied[0] if len(varied) == 1 else "grid"
    res_list = list(resolutions) or [int(config["data"]["resolution"])]
    bb_list = list(backbones) or [config["model"]["kwargs"].get("backbone")]
    remedy_list = resolve_remedies(remedies) if remedies else [("plain", None)]
    plan = []
    for backbone in bb_list:
        for res in res_list:
            for remedy, section in remedy_list:
                cfg = copy.deepcopy(config) if section is None else with_remedy(config, section)
                cfg["data"]["resolution"] = int(res)
                if backbone is not None:
                    cfg["model"]["kwargs"]["backbone"] = backbone
                plan.append((SweepSetting(axis, cfg["model"]["name"], backbone, int(res), remedy), cfg))
    return plan


def data_root(config: dict[str, Any]) -> Path:
    """The dataset root of a config, generating SynthFace-LT (cached, in the config's dataset format, as
    training does) when the config asks for it."""
    data = config["data"]
    root = expand_path(data["root"])
    if data.get("synthetic"):
        root = ensure_synthface(root, fmt=data["dataset"], **data["synthetic"])
    return Path(root)


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def evaluate_run(run_dir: Path, config: dict[str, Any], out_dir: Path, *, split: str = "test",
                 device: str = "cpu", n_resamples: int = 1000,
                 extra: dict[str, Any] | None = None, logit_adjust: float | None = None,
                 tta: str | None = None, tau_norm: float | None = None) -> ResultRecord:
    """Score a finished run's ``final.safetensors`` on ``split`` with bootstrap CIs and save the record:
    :func:`lt_faceparse.engine.evaluate.evaluate_checkpoint` with the config's dataset, merge,
    protocol and batch size (resolution, warp and taxonomy from the weight file, as ``eval`` does).

    ``logit_adjust`` / ``tta`` / ``tau_norm``: post-hoc options (:func:`lt_faceparse.longtail.posthoc.apply_posthoc`;
    priors from the weight file, else the run's training split)."""
    data = config["data"]
    return evaluate_checkpoint(run_dir / "final.safetensors", data["dataset"], data_root(config), split,
                               config["val"]["protocol"], out_dir, merge=data["merge"],
                               batch_size=config["val"]["batch_size"], device=device, provenance=extra,
                               n_resamples=n_resamples, logit_adjust=logit_adjust, tta=tta, tau_norm=tau_norm,
                               train_split=data["train_split"], show_progress=False)


class MissingResult(LookupError):
    """``reuse="results"`` asked for a setting that has no finished row with the same config."""


def weights_digest(path: str | Path) -> str:
    """SHA-256 (hex) of a weight file: ties a sweep row to the weights it was scored from."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def run_folder(setting: SweepSetting, config: dict[str, Any], out_dir: str | Path,
               runs_dir: str | Path | None = None) -> Path:
    """The training run folder of a setting: ``runs_dir/<name>/run-<fingerprint>`` (else under ``out_dir``);
    a :data:`TRAIN_ONLY` job's is its config's ``out``."""
    if setting.axis == TRAIN_ONLY:
        return Path(config["out"])
    run_name = f"run-{config_fingerprint(config)}"
    return Path(runs_dir) / setting.name / run_name if runs_dir is not None else Path(out_dir) / setting.name / run_name


def finished_row(setting: SweepSetting, config: dict[str, Any], out_dir: str | Path, *, reuse: str = "local",
                 runs_dir: str | Path | None = None) -> dict[str, Any] | None:
    """The setting's row when it may be reused as it is (see the module docstring), else None."""
    if reuse not in REUSE_MODES:
        raise ValueError(f"reuse must be one of {REUSE_MODES}, got {reuse!r}")
    row_path = Path(out_dir) / setting.name / SWEEP_FILE
    if not row_path.is_file():
        return None
    row = load_sweep_row(row_path)
    if row.get("config_fingerprint") != config_fingerprint(config):
        return None
    if reuse == "results":
        return row
    weights = run_folder(setting, config, out_dir, runs_dir) / "final.safetensors"
    if weights.is_file() and row.get("weights_sha256") == weights_digest(weights):
        return row
    return None


def run_setting(setting: SweepSetting, config: dict[str, Any], out_dir: str | Path, *, split: str = "test",
                speed_runs: int = 10, speed_warmup: int = 3, n_resamples: int = 1000,
                runs_dir: str | Path | None = None, reuse: str = "local",
                log: Callable[[str], None] | None = None, tau_norm: float | None = None) -> dict[str, Any]:
    """Train (or resume), evaluate and time one setting; return its summary row.

    A finished setting is skipped per :func:`finished_row` (``reuse="local"``: only when this machine
    trained it; ``"results"``: any finished row with the same config, and :class:`MissingResult`
    when there is none, never training). Results (record, speed, row) go to ``out_dir/<name>/``;
    the training run (weights, checkpoints) to ``runs_dir/<name>/`` when given (keeps heavy files
    out of a results folder), else ``out_dir/<name>/run-<fingerprint>/``. ``speed_runs=0`` skips
    the timing (the row's FPS is then None; time the setting apart, e.g. on a quiet machine).
    ``tau_norm``: post-hoc τ-normalisation of the scored model (a row scored with another τ is re-scored)."""
    folder = Path(out_dir) / setting.name
    row = _reusable_row(setting, config, out_dir, reuse, runs_dir, log, tau_norm)
    if row is not None:
        return row
    run_dir = run_folder(setting, config, out_dir, runs_dir)
    cfg = _run_config(setting, config, folder, run_dir, log)
    device = cfg["device"]

    tic = time.perf_counter()
    trained_here = not (run_dir / "final.safetensors").is_file()
    if trained_here:
        train(cfg)
    train_seconds = time.perf_counter() - tic
    tic = time.perf_counter()
    extra: dict[str, Any] = {"run": setting.name}
    if setting.remedy != "plain":  # the record's own label names the remedy and its parameters
        extra["remedy"] = setting.remedy
    record = evaluate_run(run_dir, cfg, folder / split, split=split, device=device,
                          n_resamples=n_resamples, extra=extra, tau_norm=tau_norm)
    eval_seconds = time.perf_counter() - tic
    speed = _time_run(setting, run_dir, folder / "speed", device, speed_warmup, speed_runs) if speed_runs > 0 else None
    row = {
        "kind": "sweep",
        "name": setting.name,
        "axis": setting.axis,
        "remedy": setting.remedy,
        "longtail": remedy_of(record),
        "model": setting.model,
        "backbone": setting.backbone,
        "resolution": setting.resolution,
        "dataset": record.provenance.dataset,
        "split": split,
        "protocol": cfg["val"]["protocol"],
        "epochs": cfg["optim"]["epochs"],
        "config_fingerprint": config_fingerprint(config),
        "tau_norm": tau_norm,
        "weights_sha256": weights_digest(run_dir / "final.safetensors"),
        "train_images": None,
        "num_images": record.num_images,
        "mean_f1": record.mean_f1,
        "mean_f1_ci": [record.ci["mean_f1"]["lower"], record.ci["mean_f1"]["upper"]] if record.ci else None,
        "mean_iou_with_bg": record.mean_iou_with_bg,
        "mean_iou_without_bg": record.mean_iou_without_bg,
        "fps": speed["fps"] if speed else None,
        "latency_ms_median": speed["latency_ms_median"] if speed else None,
        "latency_ms_iqr": speed["latency_ms_iqr"] if speed else None,
        "params": speed["params"] if speed else record.provenance.num_params,
        "gflops": speed["gflops"] if speed else None,
        "device": speed["device"] if speed else device,
        "device_name": speed["device_name"] if speed else None,
        "train_seconds": round(train_seconds, 2) if trained_here else None,
        "eval_seconds": round(eval_seconds, 2),
        "record": str((folder / split / "record.json").relative_to(folder)),
    }
    row.update(_training_log_fields(run_dir / "log.jsonl"))
    row["val"] = _copy_val_record(run_dir, folder, setting.name)
    atomic_write_json(folder / SWEEP_FILE, row)
    if log:
        timing = f"train {train_seconds:.0f} s" if trained_here else "weights found on this machine, not retrained"
        log(f"{setting.name}: mean F1 {100 * record.mean_f1:.2f}"
            + (f", {speed['fps']:.1f} FPS" if speed else "") + f" ({timing}, eval {eval_seconds:.0f} s)")
    return row


def _reusable_row(setting: SweepSetting, config: dict[str, Any], out_dir: str | Path, reuse: str,
                  runs_dir: str | Path | None, log: Callable[[str], None] | None,
                  tau_norm: float | None = None) -> dict[str, Any] | None:
    """The finished row :func:`run_setting` returns as it is (scored with the same ``tau_norm``), or None to
    train/score; with ``reuse="results"`` a missing row raises :class:`MissingResult`."""
    folder = Path(out_dir) / setting.name
    row = finished_row(setting, config, out_dir, reuse=reuse, runs_dir=runs_dir)
    if row is not None and row.get("tau_norm") != tau_norm:
        row = None
    if row is not None:
        if log:
            log(f"{setting.name}: " + ("finished result reused as it is (--reuse-results), not trained"
                                       if reuse == "results" else
                                       "trained earlier on this machine with the same config, skipped"))
        return row
    if reuse == "results":
        found = (f"holds another config (fingerprint {load_sweep_row(folder / SWEEP_FILE).get('config_fingerprint')}"
                 f", this one's is {config_fingerprint(config)})" if (folder / SWEEP_FILE).is_file() else "is missing")
        raise MissingResult(f"{folder / SWEEP_FILE} {found}: no finished result of this setting to reuse; "
                            "run without --reuse-results to train it")
    return None


def _run_config(setting: SweepSetting, config: dict[str, Any], folder: Path, run_dir: Path,
                log: Callable[[str], None] | None) -> dict[str, Any]:
    """The training config of the setting's run: in ``run_dir``, resumed when interrupted, on a resolved device."""
    cfg = copy.deepcopy(config)
    if (folder / SWEEP_FILE).is_file() and log:
        log(f"{setting.name}: the row on disk was not trained here with this config; "
            + ("re-scoring the weights of this machine's finished run" if (run_dir / "final.safetensors").is_file()
               else "training again (its weights are not in this machine's run folder)"))
    cfg["out"] = str(run_dir)
    cfg["resume"] = True  # continue an interrupted run; a fresh folder simply starts at epoch 0
    cfg["device"] = resolve_device(cfg["device"])
    return cfg


def _time_run(setting: SweepSetting, run_dir: Path, speed_dir: Path, device: str, warmup: int,
              runs: int) -> dict[str, Any]:
    """Time the run's final weights as they are evaluated (inside the weights' RoI warp, when they
    have one) at batch 1; save and return the speed record."""
    runner, _ = load_runner(run_dir / "final.safetensors", map_location=device)
    info = {"model": setting.model, "backbone": setting.backbone, **({"warp": runner.warp} if runner.warp else {})}
    speed = measure_speed(TemplateFace(runner), setting.resolution, 1, device, warmup=warmup, runs=runs, info=info)
    save_speed(speed, speed_dir)
    return speed


def _training_log_fields(log_path: Path) -> dict[str, Any]:
    """Training images, final loss and epoch times from a run's ``log.jsonl`` (nothing without one)."""
    if not log_path.is_file():
        return {}
    events = read_log(log_path)
    starts = [e for e in events if e.get("event") == "start"]
    epochs = [e for e in events if e.get("event") == "epoch"]
    return {"train_images": starts[-1].get("train_images") if starts else None,
            "final_train_loss": epochs[-1].get("loss") if epochs else None,
            "epoch_seconds": [e.get("seconds") for e in epochs]}


def _copy_val_record(run_dir: Path, folder: Path, name: str) -> dict[str, Any] | None:
    """Copy the run's validation record (written by training) next to the test record, tagged with
    the setting name; return its summary (mean, head and tail mean F1), or None without one."""
    path = run_dir / "val" / "record.json"
    if not path.is_file():
        return None
    record = load_record(path)
    record = replace(record, provenance=record.provenance.replace(run=name), _per_image=record.per_image)
    save_record(record, folder / "val")
    head, tail = head_tail_means(record, get_taxonomy(record.taxonomy))
    return {"split": record.provenance.split, "num_images": record.num_images, "mean_f1": record.mean_f1,
            "head_mean_f1": head, "tail_mean_f1": tail, "record": str((folder / "val" / "record.json").relative_to(folder))}


def speed_only_rows(builders: Iterable[tuple[str, str | None, Callable[[], Any]]], resolution: int, *,
                    device: str = "cpu", runs: int = 5, warmup: int = 2,
                    out_dir: str | Path | None = None) -> list[dict[str, Any]]:
    """Params, GFLOPs and FPS of untrained models (Table 2a rows for backbones we cannot train
    here): ``builders`` yields (model name, backbone, build function)."""
    rows = []
    for model_name, backbone, build in builders:
        model = build()
        speed = measure_speed(model, resolution, 1, device, warmup=warmup, runs=runs,
                              info={"model": model_name, "backbone": backbone, "trained": False})
        if out_dir is not None:
            save_speed(speed, out_dir)
        rows.append(speed)
        del model
    return rows
