"""`lt-faceparse` subcommands of the baselines layer: ``convert-zll``."""

from __future__ import annotations

import argparse

COMMANDS = ("convert-zll",)  # the subcommands register() adds



def _convert_zll(args: argparse.Namespace) -> int:
    from baselines.convert_zll import export_zll  # lazy: torch, on use

    path = export_zll(args.src, args.out)
    print(f"wrote {path} (BiSeNet, face-parsing.PyTorch weights; logits reordered from the zll numbering "
          f"to SegFace's CelebAMask-HQ ids; trained with merge preset 'zll' on all 30,000 images, test included)")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add this layer's subcommands to ``sub``."""
    p = sub.add_parser(
        "convert-zll",
        help="convert face-parsing.PyTorch's BiSeNet checkpoint (79999_iter.pth) to a portable weight file",
        description="Load face-parsing.PyTorch's plain state dict without unpickling code, reorder its "
        "outputs from the zll class numbering to SegFace's CelebAMask-HQ ids, and write "
        "DIR/model.safetensors with provenance (merge preset zll, trained on all 30k images).",
    )
    p.add_argument("--src", required=True, help="the checkpoint, e.g. 79999_iter.pth")
    p.add_argument("--out", required=True, help="output folder (or a .safetensors path)")
    p.set_defaults(func=_convert_zll)
