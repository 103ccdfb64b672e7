"""`lt-faceparse` subcommands of the engine layer: ``train`` and ``eval``.

Both run unchanged under ``torchrun --nproc_per_node=N`` and ``torchrun --nnodes=N ...`` (the process
group comes from its environment). ``train`` exits 0 when the run finished (or had finished, with
``--resume auto``), 2 on an error, and ``128 + signal`` (143 for SIGTERM, 138 for SIGUSR1) when a
preemption signal stopped it after a checkpoint: rerun the same command to continue.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from lt_faceparse.cli.zoo import add_weights_arguments, weights_of

COMMANDS = ("train", "eval")  # the subcommands register() adds


def register(sub: argparse._SubParsersAction) -> None:
    """Add this layer's subcommands to ``sub``."""
    p = sub.add_parser(
        "train", help="train a model from a YAML config (also under torchrun)",
        description="Train a registered model from a YAML config (a path, or the name of a shipped config "
                    "such as synth_tiny). Overrides are dotted keys with YAML values, e.g. "
                    "optim.epochs=2 batch.per_gpu=4 data.root=/data/CelebAMask-HQ.")
    p.add_argument("--config", required=True, help="YAML config file or shipped config name")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides (dotted keys)")
    p.add_argument("--out", help="run folder (same as out=DIR)")
    p.add_argument("--resume", nargs="?", const="true", metavar="{true,false,auto}",
                   help="continue from the newest complete checkpoint in the run folder (--resume = --resume true); "
                        "auto: the same, a finished run is left as it is, a fresh folder starts fresh (for "
                        "torchrun --max-restarts and requeued jobs)")
    p.set_defaults(func=_train)

    p = sub.add_parser(
        "eval", help="score a weight file on a dataset split and write a result record",
        description="Score a weight file (lt-faceparse safetensors) on every image of a split; writes "
                    "record.json and per_image.npz to --out. Scores come from one global confusion matrix.")
    add_weights_arguments(p, "weight file (e.g. RUN/final.safetensors)")
    p.add_argument("--dataset", required=True, help="celebamask-hq | lapa | helen | folder")
    p.add_argument("--root", required=True, help="dataset root folder")
    p.add_argument("--split", required=True, choices=("val", "test"))
    p.add_argument("--protocol", default="input", choices=("input", "native"),
                   help="input: at network resolution (SegFace release); native: at original label size")
    p.add_argument("--merge", help="CelebAMask-HQ paint-order preset (default: the weight file's)")
    p.add_argument("--resolution", type=int, help="network input side (default: the weight file's)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--num-workers", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--bootstrap", type=int, default=1000, metavar="N",
                   help="95%% percentile-bootstrap intervals over images from N resamples (default 1000; 0 = none)")
    p.add_argument("--bootstrap-seed", type=int, default=0, help="seed of the bootstrap resamples (default 0)")
    p.add_argument("--out", required=True, help="folder for record.json + per_image.npz")
    add_posthoc_arguments(p)
    p.set_defaults(func=_eval)


def add_posthoc_arguments(p: argparse.ArgumentParser) -> None:
    """``--tau-norm TAU``, ``--logit-adjust TAU``, ``--tta flip``, ``--priors CSV``, ``--target-priors CSV``
    (eval and parse)."""
    add_tau_norm_argument(p)
    p.add_argument("--logit-adjust", type=float, metavar="TAU", default=None,
                   help="post-hoc logit adjustment: predict argmax(z - TAU * log prior), pixel priors of the "
                        "training split (from --priors, else the weight file's metadata, else the train split)")
    p.add_argument("--tta", choices=("flip",), default=None,
                   help="flip: average the logits of the image and its mirror (left/right classes swapped)")
    p.add_argument("--priors", default=None, metavar="CSV",
                   help="class_frequencies.csv (lt-faceparse freq) whose pixel counts give the priors")
    p.add_argument("--target-priors", default=None, metavar="CSV",
                   help="with --logit-adjust: class_frequencies.csv of the images to be scored; subtract "
                        "TAU * (log prior - log target prior) instead (label-shift correction; TAU 1 = Bayes)")


def _unit_interval(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {text}")
    return value


def add_tau_norm_argument(p: argparse.ArgumentParser) -> None:
    """``--tau-norm TAU`` (eval, parse, sweep)."""
    p.add_argument("--tau-norm", type=_unit_interval, metavar="TAU", default=None,
                   help="post-hoc tau-normalisation (Kang et al. 2020): each class vector w_c of the classifier "
                        "becomes w_c / ||w_c||^TAU, bias kept; TAU in [0, 1] (0: unchanged)")


def _train(args: argparse.Namespace) -> int:
    from lt_faceparse.engine.config import load_config  # lazy: torch, on use
    from lt_faceparse.engine.preemption import Preempted  # lazy: torch, on use
    from lt_faceparse.engine.train import train  # lazy: torch, on use

    overrides = list(args.overrides)
    resume = args.resume
    if resume is not None and "=" in resume:  # `--resume key=value ...`: the flag alone, then overrides
        overrides.insert(0, resume)
        resume = "true"
    if resume not in (None, "true", "false", "auto"):
        raise ValueError(f"--resume takes true, false or auto, got {resume!r}")
    if args.out:
        overrides.append(f"out={args.out}")
    if resume is not None:
        overrides.append(f"resume={resume}")
    if _is_rank0():
        _show_engine_notes()
    try:
        run_dir = train(load_config(args.config, overrides))
    except Preempted as stop:
        if _is_rank0():
            print(f"lt-faceparse train: {stop}", file=sys.stderr)
        return stop.exit_code
    if _is_rank0():
        print(run_dir)
    return 0


def _eval(args: argparse.Namespace) -> int:
    from lt_faceparse.engine.evaluate import evaluate_checkpoint  # lazy: torch, on use
    from lt_faceparse.records import posthoc_label, record_merge_text  # lazy: torch, on use

    record = evaluate_checkpoint(weights_of(args), args.dataset, args.root, args.split, args.protocol, args.out,
                                 merge=args.merge, resolution=args.resolution, batch_size=args.batch_size,
                                 device=args.device, num_workers=args.num_workers, n_resamples=args.bootstrap,
                                 seed=args.bootstrap_seed, logit_adjust=args.logit_adjust, tta=args.tta,
                                 priors=args.priors, tau_norm=args.tau_norm, target_priors=args.target_priors,
                                 provenance={"zoo_model": args.model} if args.model else None)
    if _is_rank0():
        prov = record.provenance
        ci = record.ci
        ci_text = ("" if not ci or ci["mean_f1"]["lower"] is None else
                   f" [95% CI {100 * ci['mean_f1']['lower']:.2f}, {100 * ci['mean_f1']['upper']:.2f}: percentile "
                   f"bootstrap over images, {ci['n_resamples']} resamples, seed {ci['seed']}]")
        posthoc = posthoc_label(prov.posthoc)
        priors, target = ((prov.posthoc or {}).get(key) for key in ("priors", "target_priors"))
        sources = (f"priors: {priors}" if priors else "") + (f"; target priors: {target}" if target else "")
        posthoc = f", {posthoc}" + (f" ({sources})" if sources else "") if posthoc else ""
        print(f"{args.dataset} {args.split} ({record.num_images} images, merge {record_merge_text(record)}, resolution "
              f"{prov.resolution}, protocol {args.protocol}{posthoc}, one confusion matrix over the split): "
              f"mean F1 {100 * record.mean_f1:.2f}{ci_text} (foreground classes), mean IoU "
              f"{100 * record.mean_iou_with_bg:.2f} (all classes incl. background) -> {args.out}")
    return 0


class _StderrNotes(logging.Handler):
    """Writes records to whatever ``sys.stderr`` is at the time (not the stream of the first call)."""

    def emit(self, record: logging.LogRecord) -> None:
        print(f"lt-faceparse train: {self.format(record)}", file=sys.stderr)


def _show_engine_notes() -> None:
    """Print the engine's notes (where a run starts, skipped checkpoints, a finished run) on stderr."""
    log = logging.getLogger("lt_faceparse.engine")
    if not any(isinstance(h, _StderrNotes) for h in log.handlers):
        log.addHandler(_StderrNotes())
    log.setLevel(logging.INFO)


def _is_rank0() -> bool:
    return int(os.environ.get("RANK", "0")) == 0
