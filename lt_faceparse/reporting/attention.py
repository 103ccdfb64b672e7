"""What each SegFace class token learns: its mask sigmoid(S_i) (the paper's Figure 4a) and its
token-to-face cross-attention in every decoder layer (the figure the release never drew).

Works with any model whose ``forward(images, return_extras=True)`` returns ``(logits, extras)``
with ``extras["token_masks"]`` (B x K x H x W mask logits) and ``extras["attn"]`` (one tensor per
decoder layer, B x heads x K x (h * w) attention of the K class tokens over the h x w face tokens).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from lt_faceparse.models import model_capabilities
from lt_faceparse.reporting.figures import STYLE, plt
from lt_faceparse.taxonomy import Taxonomy


@dataclass
class TokenMaps:
    """Token views of one image.

    masks: K x H x W, sigmoid(S_i) in [0, 1] at the input resolution
    attention: L x K x h x w, token-to-face attention averaged over heads (each map sums to 1)
    prediction: H x W argmax label
    """

    masks: np.ndarray
    attention: np.ndarray
    prediction: np.ndarray


def supports_token_maps(model: nn.Module) -> bool:
    """True when the model's forward accepts ``return_extras`` (see :mod:`lt_faceparse.models`); token figures
    also need SegFace-style extras (token masks, attention)."""
    return model_capabilities(model).returns_extras


@torch.no_grad()
def token_maps(model: nn.Module, image: torch.Tensor) -> TokenMaps:
    """Run ``model`` on one normalised image (3 x H x W) and collect its token masks and attention."""
    model.eval()
    logits, extras = model(image.unsqueeze(0), return_extras=True)
    if "token_masks" not in extras or not extras.get("attn"):
        raise ValueError("model extras lack 'token_masks' or 'attn'; token figures need SegFace-style extras")
    masks = torch.sigmoid(extras["token_masks"][0].float())
    layers = []
    for weights in extras["attn"]:  # 1 x heads x K x hw
        k, hw = weights.shape[-2:]
        side_h, side_w = _face_grid(hw, image.shape[-2:])
        layers.append(weights[0].float().mean(0).reshape(k, side_h, side_w))
    return TokenMaps(masks=masks.cpu().numpy(), attention=torch.stack(layers).cpu().numpy(),
                     prediction=logits[0].argmax(0).cpu().numpy().astype(np.uint8))


def _face_grid(hw: int, image_hw: Sequence[int]) -> tuple[int, int]:
    """The h x w face-token grid with h * w = hw and the image's aspect ratio."""
    height, width = image_hw
    for stride in (4, 8, 16, 32, 2, 1):
        if (height // stride) * (width // stride) == hw:
            return height // stride, width // stride
    raise ValueError(f"cannot place {hw} face tokens on a {height} x {width} image")


def default_classes(label: np.ndarray | None, taxonomy: Taxonomy, limit: int = 8) -> list[int]:
    """Classes to show: tail classes present in ``label`` first, then head classes present, in the
    paper's column order (all foreground classes when there is no label)."""
    order = list(taxonomy.display_order)
    if label is None:
        return order[:limit]
    present = set(np.unique(label).tolist())
    tail = [i for i in order if i in present and i in taxonomy.accessory_ids]
    head = [i for i in order if i in present and i not in taxonomy.accessory_ids]
    return (tail + head)[:limit]


def token_mask_figure(image: np.ndarray, maps: TokenMaps, taxonomy: Taxonomy, classes: Sequence[int],
                      *, title: str = "") -> "plt.Figure":
    """The input image and, for each chosen class token i, its mask sigmoid(S_i) (grey 0..1)."""
    n = len(classes) + 1
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, n, figsize=(1.45 * n, 1.75), squeeze=False)
        panels = [("image", image, None)] + [(taxonomy[i].display, maps.masks[i], i) for i in classes]
        for ax, (heading, img, cls) in zip(axes[0], panels):
            ax.set_xticks([])
            ax.set_yticks([])
            if cls is None:
                ax.imshow(img)
                ax.set_title(heading, fontsize=7)
                continue
            ax.imshow(img, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_title(f"{heading} token", fontsize=7)
            for spine in ax.spines.values():  # frame in the class colour (titles stay black for print)
                spine.set_visible(True)
                spine.set_edgecolor(np.asarray(taxonomy.palette[cls]) / 255)
                spine.set_linewidth(3)
        if title:
            fig.suptitle(title, fontsize=8)
        fig.tight_layout()
    return fig


def upsample_map(attention: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """h x w map -> H x W (bilinear), scaled to [0, 1] by its maximum."""
    t = torch.as_tensor(attention, dtype=torch.float32)[None, None]
    up = F.interpolate(t, size=tuple(size), mode="bilinear", align_corners=False)[0, 0].numpy()
    peak = up.max()
    return up / peak if peak > 0 else up


def token_attention_figure(image: np.ndarray, maps: TokenMaps, taxonomy: Taxonomy, classes: Sequence[int],
                           *, title: str = "") -> "plt.Figure":
    """Rows: chosen class tokens; columns: decoder layers (the last = the final token-to-face
    attention). Each panel overlays the token's head-averaged attention over the face tokens,
    upsampled and scaled to its own maximum, on the grey image."""
    n_layers = maps.attention.shape[0]
    grey = image.astype(np.float32).mean(-1) / 255.0
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(len(classes), n_layers, figsize=(1.45 * n_layers + 0.3, 1.45 * len(classes) + 0.3),
                                 squeeze=False)
        for r, cls in enumerate(classes):
            for layer in range(n_layers):
                ax = axes[r, layer]
                ax.imshow(grey, cmap="gray", vmin=0, vmax=1)
                ax.imshow(upsample_map(maps.attention[layer, cls], grey.shape), cmap="magma", alpha=0.6,
                          vmin=0, vmax=1)
                ax.set_xticks([])
                ax.set_yticks([])
                if r == 0:
                    name = "final" if layer == n_layers - 1 else f"layer {layer + 1}"
                    ax.set_title(name, fontsize=7)
            axes[r, 0].set_ylabel(taxonomy[cls].display, fontsize=7)
        if title:
            fig.suptitle(title, fontsize=8)
        fig.tight_layout()
    return fig


def attention_peak_in_class(maps: TokenMaps, label: np.ndarray, class_id: int, layer: int = -1) -> float:
    """Share of token ``class_id``'s attention mass (layer ``layer``) that falls on pixels of that
    class in ``label`` (after upsampling; 1 = all attention on the class). A number the caption
    can quote."""
    up = torch.as_tensor(maps.attention[layer, class_id], dtype=torch.float32)[None, None]
    up = F.interpolate(up, size=label.shape, mode="bilinear", align_corners=False)[0, 0].numpy()
    total = up.sum()
    return float(up[label == class_id].sum() / total) if total > 0 else float("nan")
