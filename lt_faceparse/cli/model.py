"""`lt-faceparse` subcommands of the SegFace model layer: convert-official, parse, export-onnx."""

from __future__ import annotations

import argparse

from lt_faceparse.cli.engine import add_posthoc_arguments
from lt_faceparse.cli.zoo import add_weights_arguments, weights_of

COMMANDS = ("convert-official", "parse", "export-onnx")  # the subcommands register() adds


def register(sub: argparse._SubParsersAction) -> None:
    """Add this layer's subcommands to ``sub``."""
    p = sub.add_parser("convert-official", help="convert a released SegFace checkpoint (model_299.pt) to our weight file")
    p.add_argument("--src", required=True, help="the release's model_*.pt")
    p.add_argument("--backbone", required=True,
                   help="swin_base, swinv2_base, convnext_base, resnet101, mobilenet, efficientnet "
                        "(or the release's folder names: swinb, swinv2b, convnext, resnet)")
    p.add_argument("--taxonomy", required=True, help="celebamask-hq, lapa or helen")
    p.add_argument("--out", required=True, help="output .safetensors file or folder")
    p.add_argument("--resolution", type=int, default=None,
                   help="training resolution (default: from the release folder name, e.g. swinb_lapa_448)")
    p.set_defaults(func=_convert)

    p = sub.add_parser("parse", help="parse face images of any size with a trained model")
    add_weights_arguments(p, "our weight file (.safetensors or its folder)")
    p.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR")
    p.add_argument("--out", required=True, help="output folder for label PNGs and colour overlays")
    p.add_argument("--probs", action="store_true", help="also write per-class probability maps")
    p.add_argument("--landmarks", default=None,
                   help='JSON {"<image name>": 5 (or 106) [x, y] points}; required by tanh-warp (LaPa) models')
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--strict", action="store_true",
                   help="stop at the first image that cannot be read (default: report each, parse the rest, "
                        "then exit 2 with their count)")
    p.add_argument("--compile", nargs="?", const=True, default=False, metavar="MODE",
                   help="torch.compile the model (CUDA graphs on CUDA); optionally a torch.compile mode "
                        "(default, reduce-overhead, max-autotune, max-autotune-no-cudagraphs). Worth it for "
                        "many images: the first batch of each size pays the compilation")

    add_posthoc_arguments(p)
    p.set_defaults(func=_parse)

    p = sub.add_parser("export-onnx", help="export a trained model to ONNX (dynamic batch, fixed resolution)")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out", required=True, help="output .onnx file")
    p.add_argument("--resolution", type=int, default=None, help="default: the checkpoint's training resolution")
    p.add_argument("--opset", type=int, default=17)
    p.set_defaults(func=_export)


def _convert(args: argparse.Namespace) -> int:
    from segface.convert import convert_official  # lazy: torch, on use

    model = convert_official(args.src, args.backbone, args.taxonomy, resolution=args.resolution, out=args.out)
    print(f"wrote {args.out} (SegFace {model.build_kwargs['backbone']}, taxonomy {model.metadata['taxonomy']['name']}, "
          f"resolution {model.metadata['resolution']})")
    return 0


def _parse(args: argparse.Namespace) -> int:
    from lt_faceparse.inference.parser import parse_images  # lazy: torch, on use

    written = parse_images(weights_of(args, parsing=True), args.inputs, args.out, probs=args.probs,
                           landmarks_file=args.landmarks, device=args.device, batch_size=args.batch_size,
                           logit_adjust=args.logit_adjust, tta=args.tta, priors=args.priors, compile=args.compile,
                           tau_norm=args.tau_norm, strict=args.strict, target_priors=args.target_priors)
    posthoc = []
    if args.tta:
        posthoc.append("flip TTA (logits of the mirror image, left/right swapped, averaged)")
    if args.tau_norm:
        posthoc.append(f"tau-normalised class vectors w_c / ||w_c||^{args.tau_norm:g} (bias kept)")
    if args.logit_adjust is not None:
        towards = f" towards the target priors {args.target_priors}" if args.target_priors else ""
        posthoc.append(f"post-hoc logit adjustment tau={args.logit_adjust:g} (pixel priors of the training "
                       f"split{towards})")
    print(f"parsed {len(written)} image(s) into {args.out} (labels: class ids of the checkpoint's taxonomy, "
          f"at each image's original size; logits resized bilinearly before the argmax"
          f"{'; ' + '; '.join(posthoc) if posthoc else ''})")
    return 0


def _export(args: argparse.Namespace) -> int:
    from segface.onnx_export import export_checkpoint_onnx  # lazy: torch, on use

    path = export_checkpoint_onnx(args.checkpoint, args.out, args.resolution, opset=args.opset)
    print(f"wrote {path}")
    return 0
