"""SegFace (Narayan et al., AAAI 2025): backbone -> MLP fusion -> class-token decoder -> per-class logits."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from segface.backbones import build_backbone
from segface.decoder import SegFaceDecoder
from segface.formulation import FORMULATIONS, Formulation, check_formulation, choose_formulation
from segface.fusion import LastStageProjection, MLPFusion
from segface.loss import CEDiceLoss
from segface.position import RandomFourierEncoding

STRIDE = 32  # inputs must be divisible by the deepest stage's stride


class SegFace(nn.Module):
    """SegFace for ``num_classes`` labels (token i predicts label id i, background included).

    ``forward(images)``: B x 3 x H x W ImageNet-normalised images (H, W divisible by 32) -> logits
    B x K x H x W. ``forward(images, return_extras=True)`` -> ``(logits, {"token_masks": the per-token
    mask logits S_i, B x K x H x W (SegFace's logits are exactly the S_i), "attn": per decoder layer
    the token-to-face attention B x heads x K x (H/4 * W/4), the final token-to-face attention
    last})``; the maps are computed only when asked.

    The forward pass computes the paper's function in one of three exact formulations
    (:mod:`segface.formulation`; equal up to float rounding, values and gradients, tested against
    the literal one): ``literal`` (as written), ``cpu`` (the fusion's per-stage share of the fuse
    conv folded into each stage's Linear and applied at the stage's own resolution; the positional
    encoding and its share of the face projections cached per grid; key-major face-to-token
    attention; the output head as sub-pixel matrix products on bands of face rows) and ``gpu``
    (the folded fusion and cached constants, fused SDPA attention kernels, the transposed-convolution
    head). ``formulation`` selects one: ``"auto"`` (default) lets
    :func:`segface.formulation.choose_formulation` pick by device and autograd state. Caches hold
    a few tensors per grid size (about 80 MB at 512 px) and are bypassed while gradients flow.
    ``literal = True`` is shorthand for ``formulation = "literal"`` (``False``: back to ``"auto"``).

    State-dict layout: ``backbone.*`` (torchvision names), ``pe_layer.*``, ``fusion.*``,
    ``face_decoder.*`` (Segment Anything names); the same for every formulation.
    """

    def __init__(
        self,
        backbone: str = "swin_base",
        num_classes: int = 19,
        fusion: bool = True,
        pretrained: bool | str = False,
        dim: int = 256,
        ce_weight: float = 0.5,
        dice_weight: float = 0.5,
    ):
        super().__init__()
        self.build_kwargs: dict[str, Any] = {
            "backbone": backbone, "num_classes": num_classes, "fusion": fusion, "pretrained": pretrained,
            "dim": dim, "ce_weight": ce_weight, "dice_weight": dice_weight,
        }
        self.num_classes = num_classes
        self.backbone = build_backbone(backbone, pretrained)
        self.pe_layer = RandomFourierEncoding(dim)
        channels = tuple(self.backbone.channels)
        self.fusion = MLPFusion(channels, dim) if fusion else LastStageProjection(channels, dim)
        self.face_decoder = SegFaceDecoder(num_classes, dim)
        self.criterion = CEDiceLoss(ce_weight, dice_weight)
        self.formulation = "auto"

    @property
    def formulation(self) -> str:
        """``"auto"``, ``"literal"``, ``"cpu"`` or ``"gpu"`` (see :mod:`segface.formulation`)."""
        return self._formulation

    @formulation.setter
    def formulation(self, name: str) -> None:
        self._formulation = check_formulation(name)

    @property
    def literal(self) -> bool:
        """True while the paper's literal formulation is selected."""
        return self._formulation == "literal"

    @literal.setter
    def literal(self, value: bool) -> None:
        self.formulation = "literal" if value else "auto"

    def formulation_for(self, images: torch.Tensor) -> Formulation:
        """The formulation a forward pass on ``images`` runs in the current autograd state."""
        if self._formulation == "auto":
            return choose_formulation(images.device, torch.is_grad_enabled())
        return FORMULATIONS[self._formulation]

    def forward(
        self, images: torch.Tensor, return_extras: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, dict[str, Any]]:
        height, width = images.shape[-2:]
        if height % STRIDE or width % STRIDE:
            raise ValueError(f"SegFace input size must be divisible by {STRIDE}, got {height} x {width}")
        formulation = self.formulation_for(images)
        stages = self.backbone(images)
        fuse = self.fusion if formulation.folded_fusion else self.fusion.forward_concat
        faces = fuse(stages)  # B x D x H/4 x W/4
        if formulation.cached_constants:
            face_pe = self.pe_layer(*faces.shape[-2:], dtype=faces.dtype)
        else:
            face_pe = self.pe_layer.encode(*faces.shape[-2:])
        attn: list[torch.Tensor] | None = [] if return_extras else None
        logits = self.face_decoder(faces, face_pe.to(faces.dtype), attn, formulation)
        if return_extras:
            return logits, {"token_masks": logits, "attn": attn}
        return logits

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.criterion(logits, target)
