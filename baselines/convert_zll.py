"""Load face-parsing.PyTorch's ``79999_iter.pth`` (BiSeNet, "zll" class numbering) as our BiSeNet.

The checkpoint is a plain state dict (``torch.save(net.state_dict())``); it is read with
``torch.load(weights_only=True)``, so no pickled code runs. Its 19 output channels follow the
``zll`` numbering of ``datasets.md`` (0 bg, 1 skin, 2 l_brow, ..., 17 hair, 18 hat); the converted
model reorders them so that channel ``i`` is SegFace's CelebAMask-HQ id ``i`` (e.g. zll 17 hair ->
our 14). Its labels were built with the ``zll`` merge order, and it was trained on all 30,000
CelebAMask-HQ images, the test split included; the saved metadata says both.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch

from baselines.bisenet import BiSeNet
from lt_faceparse.errors import DataError
from lt_faceparse.taxonomy import get_taxonomy
from lt_faceparse.weights import save_model

TAXONOMY = "celebamask-hq"
NUMBERING = "zll"
RESOLUTION = 512

# What is known about how the checkpoint was made (peers-and-results.md, datasets.md).
ZLL_PROVENANCE: dict[str, Any] = {
    # The source string travels into result records: it carries the test-split contamination along.
    "source": "face-parsing.PyTorch (github zllrunning/face-parsing.PyTorch) 79999_iter.pth; trained on all "
              "30,000 CelebAMask-HQ images, test split included",
    "merge": "zll",
    "numbering": "zll",
    "pretraining": "ImageNet-1K (ResNet-18 context path)",
    "train_data": "CelebAMask-HQ, all 30,000 images (the test split included)",
    "trained_on_test": True,
    "train_loss": "OHEM cross-entropy (probability threshold 0.7, at least batch pixels / 16) on all three heads",
    "checkpoint_rule": "fixed iteration 79999 (from the file name)",
}


def load_zll_state_dict(src: str | Path) -> dict[str, torch.Tensor]:
    """Read the plain state dict of ``src`` without unpickling code; strip a DataParallel ``module.`` prefix."""
    src = Path(src)
    if not src.is_file():
        raise FileNotFoundError(f"{src}: no such checkpoint file")
    try:
        state = torch.load(src, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises UnpicklingError, RuntimeError, EOFError, ...
        raise DataError(src, f"not a loadable weights-only PyTorch state dict ({type(err).__name__}: {err})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise DataError(src, "expected a plain state dict (parameter name -> tensor)")
    return {k.removeprefix("module."): v for k, v in state.items()}


def convert_zll(src: str | Path) -> BiSeNet:
    """Build our :class:`BiSeNet` from ``src`` (a face-parsing.PyTorch checkpoint), logits in our ids.

    The state dict must match the model exactly (strict load); the returned model is in eval mode.
    """
    src = Path(src)
    state = load_zll_state_dict(src)
    num_zll = len(get_taxonomy(TAXONOMY).numberings[NUMBERING])
    classifier = state.get("conv_out.conv_out.weight")
    if classifier is None:
        raise DataError(src, "no 'conv_out.conv_out.weight': not a face-parsing.PyTorch BiSeNet state dict")
    if classifier.shape[0] != num_zll:
        raise DataError(src, f"classifier has {classifier.shape[0]} classes; the zll numbering has {num_zll}")
    model = BiSeNet(num_classes=num_zll, numbering=NUMBERING, taxonomy=TAXONOMY, loss="ohem")
    # BatchNorm step counters are absent from checkpoints written before PyTorch 0.4.1; they hold no weights.
    for key in model.state_dict():
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = torch.zeros((), dtype=torch.long)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        detail = " ".join(str(err).split())  # torch's message spans several lines
        raise DataError(src, f"state dict does not match face-parsing.PyTorch's BiSeNet: {detail}") from None
    return model.eval()


def zll_metadata(model: BiSeNet, src: str | Path | None = None) -> dict[str, Any]:
    """Weight-file metadata of a converted model (with the source file's name and SHA-256 when given)."""
    meta: dict[str, Any] = {
        "model": "bisenet",
        "model_kwargs": dict(model.build_kwargs),
        "taxonomy": get_taxonomy(TAXONOMY).to_dict(),
        "resolution": RESOLUTION,
        **ZLL_PROVENANCE,
    }
    if src is not None:
        src = Path(src)
        meta["source_file"] = src.name
        meta["source_sha256"] = hashlib.sha256(src.read_bytes()).hexdigest()
    return meta


def export_zll(src: str | Path, out: str | Path) -> Path:
    """Convert ``src`` and write it as a portable weight file (``out``: a ``.safetensors`` path or a folder)."""
    model = convert_zll(src)
    return save_model(model, out, zll_metadata(model, src))
