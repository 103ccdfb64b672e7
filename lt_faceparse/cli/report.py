"""`lt-faceparse` subcommands of the report layer: leaderboard, compare, report, speed, sweep, benchmark."""

from __future__ import annotations

import argparse
from pathlib import Path

from lt_faceparse.cli.engine import add_tau_norm_argument

COMMANDS = ("leaderboard", "compare", "report", "speed", "sweep", "benchmark")  # the subcommands register() adds


def _ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def _names(text: str) -> list[str]:
    values = [v.strip() for v in text.split(",") if v.strip()]
    if not values:
        raise argparse.ArgumentTypeError("expected a comma-separated list of names")
    return values


def register(sub: argparse._SubParsersAction) -> None:
    """Add this layer's subcommands to ``sub``."""
    _add_leaderboard(sub)
    _add_compare(sub)
    _add_report(sub)
    _add_speed(sub)
    _add_sweep(sub)
    _add_benchmark(sub)


def _add_leaderboard(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("leaderboard", help="Table-1-style leaderboard over result records, grouped by protocol",
                       description="Collect result records (record.json, recursively) and optionally the published "
                       "rows, group them by comparable protocol (dataset, taxonomy, split, merge preset, scoring "
                       "protocol) and write Markdown, CSV and LaTeX tables (+ a Δ view vs --reference).")
    p.add_argument("--results", type=Path, help="folder searched recursively for record.json files")
    p.add_argument("--dataset", help="keep only records of this dataset (provenance.dataset)")
    p.add_argument("--split", help="keep only records of this split (e.g. test)")
    p.add_argument("--include-reported", action="store_true", help="add the published (reported) rows")
    p.add_argument("--reference", help="row label to compare every other row of its group against (Δ view)")
    p.add_argument("--speed", type=Path, help="folder of speed records (default: --results)")
    p.add_argument("--mixed", action="store_true", help="one table per dataset and split even where merge preset "
                   "or scoring protocol differ (shown in columns and noted), as the papers print them")
    p.add_argument("--out", type=Path, required=True, help="output folder for the tables")
    p.set_defaults(func=_leaderboard)


def _add_compare(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="paired per-class bootstrap test of two result records on the same images",
                       description="Test record B against record A: per foreground class F1 of both, Δ F1 = B − A "
                       "with its paired-bootstrap interval, p-value and Holm-adjusted p-value, and the same for the "
                       "mean F1. Both records must score the same images of the same dataset, taxonomy, split, "
                       "merge preset and protocol. Prints the table; --out writes compare.md/.csv/.tex/.json.")
    p.add_argument("record_a", type=Path, metavar="RECORD_A", help="record.json (or its folder): the reference")
    p.add_argument("record_b", type=Path, metavar="RECORD_B", help="record.json (or its folder): compared with A")
    p.add_argument("--bootstrap", type=int, default=1000, metavar="N", help="bootstrap resamples (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--confidence", type=float, default=0.95, help="interval level (default 0.95)")
    p.add_argument("--out", type=Path, help="output folder for the tables (printed only when omitted)")
    p.set_defaults(func=_compare)


def _add_report(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="paper-style tables and figures from a results folder",
                       description="Leaderboard, Figure 1 (presence vs F1), F1 vs log presence with CIs, confusion "
                       "heatmaps, Tables 2a/2b, FPS vs resolution, qualitative grid and token-attention figures.")
    p.add_argument("--results", type=Path, required=True, help="folder with record.json / speed-*.json / sweep.json")
    p.add_argument("--freq", type=Path, help="class-frequency report folder (lt-faceparse freq --out)")
    p.add_argument("--speed", type=Path, help="folder of speed records (default: --results)")
    p.add_argument("--split", default="test", help="split of the records to report (default: test)")
    p.add_argument("--reference", help="row label for the Δ view (default: the first SegFace record)")
    p.add_argument("--no-reported", action="store_true", help="leave the published rows out")
    p.add_argument("--data-root", help="dataset root for the qualitative/token figures (default: from the records)")
    p.add_argument("--examples", type=int, default=4, help="images in the qualitative grid (default: 4)")
    p.add_argument("--device", default="cpu", help="device for the example predictions (default: cpu)")
    p.add_argument("--out", type=Path, default=Path("reports"), help="output folder (default: reports/)")
    p.set_defaults(func=_report)


def _add_speed(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("speed", help="time a model: latency, images/s, params, FLOPs, peak memory",
                       description="Warm-up, device synchronisation, median and IQR latency over --runs passes, "
                       "images/s, parameters, FLOPs (torch.utils.flop_counter) and peak CUDA memory, for every "
                       "resolution x batch size; one JSON speed record per setting under --out.")
    p.add_argument("--model", required=True, help="registered model name (segface, fcn, segformer, bisenet, tiny)")
    p.add_argument("--backbone", help="backbone passed to the model constructor")
    p.add_argument("--num-classes", type=int, default=19)
    p.add_argument("--res", type=_ints, default=[512], help="comma-separated square input sides, e.g. 64,128,256")
    p.add_argument("--batch", type=_ints, default=[1], help="comma-separated batch sizes, e.g. 1,8")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--dtype", default="fp32", choices=("fp32", "bf16", "fp16"))
    p.add_argument("--compile", nargs="?", const=True, default=False, metavar="MODE",
                   help="time the model under torch.compile (CUDA graphs on CUDA, Inductor's default mode on "
                        "the CPU), or in the torch.compile mode given")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--out", type=Path, help="folder for the speed records (printed only when omitted)")
    p.set_defaults(func=_speed)


def _add_sweep(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="train, evaluate and time a config over resolutions, backbones or remedies",
                       description="One setting per resolution (--res), backbone (--backbones) and/or long-tail remedy "
                       "(--remedies): train (resumed if interrupted), score the evaluation split with bootstrap CIs, "
                       "time at batch 1; settings this machine already finished with the same config (weights present) "
                       "are skipped. Rows feed Tables 2a/2b and the remedy comparison of `lt-faceparse report`; "
                       "`lt-faceparse leaderboard` shows each remedy against plain.")
    p.add_argument("--config", required=True, help="training config (file or shipped name)")
    p.add_argument("--res", type=_ints, default=[], help="comma-separated resolutions (multiples of 32 for SegFace)")
    p.add_argument("--backbones", type=_names, default=[], help="comma-separated backbones")
    p.add_argument("--remedies", type=_names, default=[],
                   help="comma-separated long-tail remedies: plain, shipped names (lt_faceparse/configs/longtail/), "
                        "YAML files with a longtail section, or 'all' (plain + every shipped remedy)")
    p.add_argument("--split", default="test", choices=("val", "test"))
    p.add_argument("--runs-dir", type=Path, help="where training runs go (default: OUT/<setting>/run-<config fingerprint>)")
    p.add_argument("--speed-runs", type=int, default=10)
    p.add_argument("--out", type=Path, required=True)
    add_tau_norm_argument(p)
    p.add_argument("overrides", nargs="*", help="config overrides key=value")
    p.set_defaults(func=_sweep)


def _add_benchmark(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("benchmark", help="the whole SynthFace-LT benchmark (CPU or one GPU), report under --out",
                       description="Generate SynthFace-LT (cached) -> class frequencies -> train SegFace, its long-tail "
                       "remedies and the baselines (side by side in worker processes) -> evaluate with CIs -> "
                       "resolution sweep and speed -> leaderboard, long-tail analysis, tables, figures and README "
                       "under --out. Settings are trained unless this machine trained them already (their weights "
                       "are in the run cache); --reuse-results re-renders the report from the results under --out "
                       "without training. --quick is a smoke run (about 3 minutes).")
    p.add_argument("--quick", action="store_true", help="tiny smoke run (numbers are meaningless)")
    p.add_argument("--plan", choices=("quick", "default", "gpu"),
                   help="benchmark plan (default: quick with --quick, gpu with --device cuda, else default)")
    p.add_argument("--device", choices=("cpu", "cuda"), help="train on this device (cuda selects the gpu plan)")
    p.add_argument("--workers", type=int, help="settings trained side by side (default: the plan's)")
    p.add_argument("--reuse-results", action="store_true",
                   help="train nothing: re-render the report from the finished results under --out, with the "
                        "plan recorded in its benchmark.json")
    p.add_argument("--cache", type=Path, help="cache folder for data and runs (default: ~/.cache/lt_faceparse)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads per process (default: 1; 0 = torch's default)")
    p.add_argument("--out", type=Path, default=Path("reports"))
    p.set_defaults(func=_benchmark)


def _leaderboard(args: argparse.Namespace) -> int:
    from lt_faceparse.reporting.leaderboard import run_leaderboard  # lazy: torch, on use

    if args.results is None and not args.include_reported:
        raise SystemExit("lt-faceparse leaderboard: error: give --results and/or --include-reported")
    run_leaderboard(args.results, args.out, dataset=args.dataset, include_reported=args.include_reported,
                    reference=args.reference, split=args.split, speed_dir=args.speed, mixed=args.mixed)
    return 0


def _compare(args: argparse.Namespace) -> int:
    from lt_faceparse.reporting.compare import run_compare  # lazy: torch, on use

    run_compare(args.record_a, args.record_b, args.out, n_resamples=args.bootstrap, confidence=args.confidence,
                seed=args.seed)
    if args.out is not None:
        print(f"wrote {args.out}/compare.{{md,csv,tex,json}}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from lt_faceparse.reporting.readme import write_readme  # lazy: torch, on use
    from lt_faceparse.reporting.report import run_report  # lazy: torch, on use

    outputs = run_report(args.results, args.out, freq=args.freq, speed=args.speed, split=args.split,
                         include_reported=not args.no_reported, reference=args.reference,
                         data_root=args.data_root, examples=args.examples, device=args.device)
    command = " ".join(["lt-faceparse report", f"--results {args.results}",
                        *([f"--freq {args.freq}"] if args.freq else []),
                        *([f"--data-root {args.data_root}"] if args.data_root else []), f"--out {args.out}"])
    write_readme(args.out, outputs, {"command": command})
    for note in outputs.skipped:
        print(f"not produced: {note}")
    print(f"report written to {args.out}")
    return 0


def _speed(args: argparse.Namespace) -> int:
    from lt_faceparse.models import build_model  # lazy: torch, on use
    from lt_faceparse.reporting.sweep_tables import speed_table  # lazy: torch, on use
    from lt_faceparse.reporting.tables import to_rich  # lazy: torch, on use
    from rich.console import Console  # lazy: rich, on use

    from lt_faceparse.speed.harness import speed_sweep  # lazy: torch, on use

    kwargs = {"num_classes": args.num_classes}
    if args.backbone:
        kwargs["backbone"] = args.backbone
    results = speed_sweep(lambda: build_model(args.model, **kwargs), args.res, args.batch, device=args.device,
                          dtype=args.dtype, compile=args.compile, warmup=args.warmup, runs=args.runs,
                          info={"model": args.model, "backbone": args.backbone}, out_dir=args.out)
    Console().print(to_rich(speed_table(results)))
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from lt_faceparse.engine.config import load_config  # lazy: torch, on use
    from lt_faceparse.experiments.parallel import run_sweep  # lazy: torch, on use

    if not args.res and not args.backbones and not args.remedies:
        raise SystemExit("lt-faceparse sweep: error: give --res, --backbones and/or --remedies")
    config = load_config(args.config, args.overrides)
    rows = run_sweep(config, args.out, resolutions=args.res, backbones=args.backbones, remedies=args.remedies,
                     split=args.split, speed_runs=args.speed_runs, runs_dir=args.runs_dir, log=print,
                     tau_norm=args.tau_norm)
    print(f"{len(rows)} settings finished; rows under {args.out}")
    return 0


def _benchmark(args: argparse.Namespace) -> int:
    from lt_faceparse.experiments.benchmark import run_benchmark  # lazy: torch, on use
    from lt_faceparse.experiments.plans import select_plan  # lazy: torch, on use

    plan = select_plan(name=args.plan) if args.plan else None  # else run_benchmark picks one
    run_benchmark(args.out, quick=args.quick, cache_dir=args.cache, plan=plan, threads=args.threads or None,
                  workers=args.workers, device=args.device, reuse_results=args.reuse_results)
    return 0
