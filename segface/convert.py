"""Convert the authors' released checkpoints (``model_299.pt``) to our SegFace.

The release's pickle is read with ``torch.load(weights_only=True)``; the only non-tensor global it
needs (``collections.Counter``, in the LR scheduler's milestones) is allow-listed, so no pickled
code runs. Its ``state_dict_backbone`` maps to our state dict as follows:

===============================================  ===============================================
release key                                       our key
===============================================  ===============================================
``backbone.<i>.*``                                ``backbone.<child i>.*``: torchvision child i of
                                                  ``children()[:-1]`` (e.g. Swin ``0`` -> ``features``,
                                                  ``1`` -> ``norm``; ResNet ``4`` -> ``layer1``);
                                                  MobileNetV3/EfficientNetV2: ``features.<i>.*``
``pe_layer.positional_encoding_gaussian_matrix``  same
``linear_c.<i>.proj.*``                           ``fusion.linear_c.<i>.proj.*``
``linear_fuse.weight``                            ``fusion.linear_fuse.weight``
``face_decoder.<name>_token.weight`` (1 x D)      row i of ``face_decoder.class_tokens.weight``
                                                  (K x D), i = the token's label id
``face_decoder.transformer.*``                    same (Segment Anything names)
``face_decoder.output_upscaling.{0,1,3}.*``       same
``face_decoder.output_hypernetwork_mlps.*``       same
===============================================  ===============================================
"""

from __future__ import annotations

import collections
import functools
import re
import zipfile
from pathlib import Path

import torch

from lt_faceparse.errors import DataError
from lt_faceparse.taxonomy import Taxonomy, get_taxonomy
from lt_faceparse.weights import save_model
from segface.backbones import TORCHVISION_BACKBONES, build_backbone, release_backbone_prefix
from segface.model import SegFace

# The release's token names in label-id order (token i predicts label id i).
RELEASE_TOKEN_NAMES: dict[str, tuple[str, ...]] = {
    "celebamask-hq": ("background", "neck", "face", "cloth", "rightear", "leftear", "rightbro", "leftbro",
                      "righteye", "lefteye", "nose", "innermouth", "lowerlip", "upperlip", "hair", "glass",
                      "hat", "earring", "necklace"),
    "lapa/helen": ("background", "face", "leftbro", "rightbro", "lefteye", "righteye", "nose", "upperlip",
                   "innermouth", "lowerlip", "hair"),
}

# Folder-name and command-line aliases of the release's backbones.
BACKBONE_ALIASES = {
    "swin": "swin_base", "swinb": "swin_base", "swin_b": "swin_base", "swinv2": "swinv2_base",
    "swinv2b": "swinv2_base", "swin_v2_b": "swinv2_base", "convnext": "convnext_base",
    "resnet": "resnet101", "mobilenetv3": "mobilenet", "efficientnetv2": "efficientnet",
}

# Pickle globals the release's checkpoint dict holds besides tensors and builtins.
SAFE_GLOBALS = [collections.Counter]

_TOKEN_KEY = re.compile(r"^face_decoder\.(\w+)_token\.weight$")
_DIRECT_PREFIXES = {"pe_layer.": "pe_layer.", "linear_c.": "fusion.linear_c.", "linear_fuse.": "fusion.linear_fuse.",
                    "face_decoder.": "face_decoder."}


def read_official(src: str | Path) -> dict[str, torch.Tensor]:
    """The model weights (``state_dict_backbone``) of a released checkpoint, loaded without running pickled code."""
    src = Path(src)
    if not src.is_file():
        raise FileNotFoundError(f"{src}: no such checkpoint file")
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            obj = torch.load(src, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(src))
    except Exception as err:  # UnpicklingError (a global not allow-listed), RuntimeError (not a zip), ...
        raise DataError(src, f"cannot read as a SegFace release checkpoint without executing code ({err})") from None
    state = obj.get("state_dict_backbone", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise DataError(src, "holds no 'state_dict_backbone' dict of tensors (is it a SegFace model_*.pt?)")
    return {k.removeprefix("module."): v for k, v in state.items()}


def release_token_names(state: dict[str, torch.Tensor]) -> list[str]:
    """Class-token names in the file, in file order."""
    return [m.group(1) for k in state if (m := _TOKEN_KEY.match(k))]


def map_release_state(state: dict[str, torch.Tensor], backbone: str) -> dict[str, torch.Tensor]:
    """Rename a release state dict to our layout for ``backbone`` (see the module table); errors list unmapped keys."""
    prefixes = {f"backbone.{a}": f"backbone.{b}" for a, b in release_backbone_prefix(backbone).items()}
    prefixes.update(_DIRECT_PREFIXES)
    names = release_token_names(state)
    order = _token_order(names)
    ours: dict[str, torch.Tensor] = {}
    unmapped = []
    for key, value in state.items():
        if _TOKEN_KEY.match(key):
            continue
        for src, dst in prefixes.items():
            if key.startswith(src):
                ours[dst + key[len(src):]] = value
                break
        else:
            unmapped.append(key)
    if unmapped:
        raise KeyError(f"release keys with no counterpart for backbone {backbone!r}: {unmapped[:8]}")
    tokens = {n: state[f"face_decoder.{n}_token.weight"] for n in names}
    ours["face_decoder.class_tokens.weight"] = torch.cat([tokens[n] for n in order], dim=0)
    return ours


def _token_order(names: list[str]) -> tuple[str, ...]:
    for order in RELEASE_TOKEN_NAMES.values():
        if sorted(order) == sorted(names):
            return order
    raise KeyError(f"class tokens {names} match no released taxonomy ({list(RELEASE_TOKEN_NAMES)})")


def describe_release(state: dict[str, torch.Tensor]) -> str:
    """What a release state dict holds, e.g. ``"11 class tokens (lapa/helen) and a swin_base backbone"``."""
    names = release_token_names(state)
    taxonomies = [t for t, order in RELEASE_TOKEN_NAMES.items() if sorted(order) == sorted(names)]
    tokens = f"{len(names)} class tokens ({taxonomies[0] if taxonomies else 'unknown taxonomy'})"
    found = identify_backbone(state)
    return f"{tokens} and {'a ' + found if found else 'an unrecognised'} backbone"


def identify_backbone(state: dict[str, torch.Tensor]) -> str | None:
    """The torchvision backbone whose release keys and shapes equal the file's ``backbone.*`` entries."""
    held = {k: tuple(v.shape) for k, v in state.items() if k.startswith("backbone.")}
    return next((name for name in TORCHVISION_BACKBONES if release_backbone_shapes(name) == held), None)


@functools.lru_cache(maxsize=None)
def release_backbone_shapes(name: str) -> dict[str, tuple[int, ...]]:
    """``backbone.*`` keys and shapes of the release's state dict for backbone ``name`` (built on the meta device)."""
    with torch.device("meta"):
        ours = build_backbone(name).state_dict()
    back = {b: a for a, b in release_backbone_prefix(name).items()}
    shapes = {}
    for key, value in ours.items():
        prefix = next(p for p in back if key.startswith(p))
        shapes["backbone." + back[prefix] + key[len(prefix):]] = tuple(value.shape)
    return shapes


def convert_official(
    src: str | Path,
    backbone: str,
    taxonomy: str | Taxonomy,
    *,
    resolution: int | None = None,
    out: str | Path | None = None,
) -> SegFace:
    """Load a released SegFace checkpoint into our :class:`SegFace` (eval mode), optionally saving it.

    ``backbone``: our name or a release alias (``swinb``, ``swinv2b``, ``convnext``, ``resnet``,
    ``mobilenet``, ``efficientnet``). ``resolution``: the training resolution; by default read from
    the release's folder name (e.g. ``swinb_lapa_448/model_299.pt`` -> 448). ``out``: write our
    weight file there (safetensors + metadata). The returned model carries ``.metadata``.
    """
    src = Path(src)
    backbone = BACKBONE_ALIASES.get(backbone.lower(), backbone)
    if backbone not in TORCHVISION_BACKBONES:
        raise KeyError(f"unknown backbone {backbone!r}; known: {list(TORCHVISION_BACKBONES)} "
                       f"or the release's names {sorted(BACKBONE_ALIASES)}")
    tax = get_taxonomy(taxonomy)
    state = read_official(src)
    names = release_token_names(state)
    if len(names) != tax.num_classes:
        raise DataError(src, f"file has {describe_release(state)}; taxonomy {tax.name!r} has "
                             f"{tax.num_classes} classes")
    fusion = "linear_fuse.weight" in state
    model = SegFace(backbone=backbone, num_classes=tax.num_classes, fusion=fusion, pretrained=False)
    try:
        ours = map_release_state(state, backbone)
        model.load_state_dict(ours, strict=True)
    except (KeyError, RuntimeError) as err:
        if identify_backbone(state) != backbone:
            raise DataError(src, f"file has {describe_release(state)}, not the requested {backbone}") from None
        raise DataError(src, f"weights do not fit SegFace({backbone!r}): {err}") from None
    model.eval()
    model.metadata = {
        "model": "segface",
        "model_kwargs": model.build_kwargs,
        "taxonomy": tax.to_dict(),
        "resolution": resolution or _resolution_from_path(src),
        "source": f"official SegFace release checkpoint {src.parent.name}/{src.name} (Kartik-3004/SegFace)",
        "pretraining": "ImageNet-1K (torchvision), then the authors' training",
        "warp": "tanh" if tax.name == "lapa" else None,  # the release warps LaPa faces (RoI tanh warp)
    }
    if out is not None:
        save_model(model, out, model.metadata)
    return model


def _resolution_from_path(src: Path) -> int:
    match = re.search(r"_(\d{2,4})$", src.parent.name)
    if not match:
        raise DataError(src, "cannot tell the training resolution from the folder name "
                             "(expected e.g. swinb_celeba_512/); pass resolution=")
    return int(match.group(1))
