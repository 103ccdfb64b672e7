"""The classifier of every registered model, in one place, and the per-class rescaling of its class vectors.

Kang et al. (ICLR 2020) decouple a network into a representation and a classifier: one weight vector
w_c per class, the logit of class c being <w_c, features> (+ a bias). :func:`find_classifier` names
that classifier for each registered model (:data:`CLASSIFIER_LAYERS`):

- **SegFace**: the hypernetwork MLP shared by the class tokens (paper Sec. 3.4). Its output, one
  D/8 vector per class *and image*, multiplies the upsampled face features without a bias, so the
  class vectors are image-dependent (``kind="vectors"``);
- **BiSeNet**: the main head's final 1x1 convolution (``conv_out.conv_out``, no bias; the auxiliary
  heads only add training losses). Its output channels follow the model's numbering, so per-class
  values here are indexed by output channel;
- **FCN**: the three 1x1 score convolutions (``score32``, ``score16``, ``score8``). Upsampling and
  summing are linear, so a class vector is the concatenation of the three rows;
- **SegFormer head**, **tiny**: ``classifier``, a 1x1 convolution with bias.

:class:`ClassVectorScaling` rescales every class vector, w_c ← f_c · v_c with v_c = s_c · w_c:
``scales`` s_c (LWS, learned), then τ-normalisation v_c / ||v_c||^τ. The **bias is kept unchanged**
in both (for a convolution, out' = s·(out − b) + b computed as out·s + b·(1 − s), exact when s = 1),
so τ = 0 with unit scales leaves the logits bit for bit unchanged. For SegFace the norm is taken per
image, over the image's own class vector. It acts as forward hooks on the classifier layers, so
every formulation of a model and every wrapper around it see the rescaled logits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn as nn

from lt_faceparse.errors import LTFaceParseError

VECTORS = "vectors"  # the layer outputs B x K x D class vectors (image-dependent)
CONV = "conv"  # the layers are 1x1 convolutions whose K output channels are class logits

# model class name -> (kind, the classifier layers of a model of that class)
CLASSIFIER_LAYERS: dict[str, tuple[str, Callable[[nn.Module], tuple[nn.Module, ...]]]] = {
    "SegFace": (VECTORS, lambda m: (m.face_decoder.output_hypernetwork_mlps,)),
    "BiSeNet": (CONV, lambda m: (m.conv_out.conv_out,)),
    "FCN": (CONV, lambda m: (m.score32, m.score16, m.score8)),
    "SegFormerHead": (CONV, lambda m: (m.classifier,)),
    "TinyParser": (CONV, lambda m: (m.classifier,)),
}
NORM_FLOOR = 1e-12  # a zero class vector stays zero under τ-normalisation


class NoClassifier(LTFaceParseError, ValueError):
    """The model's classifier is not known (add its class to :data:`CLASSIFIER_LAYERS`)."""


@dataclass(frozen=True)
class Classifier:
    """The classifier layers of one model and how their outputs hold the class vectors."""

    kind: str
    layers: tuple[nn.Module, ...]

    def parameters(self) -> list[nn.Parameter]:
        return [p for layer in self.layers for p in layer.parameters()]

    def reset_parameters(self, seed: int) -> None:
        """Re-initialise every classifier layer (PyTorch's default initialisation, seeded)."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for layer in self.layers:
                for module in layer.modules():
                    if isinstance(module, (nn.Linear, nn.Conv2d)):
                        module.reset_parameters()


def find_classifier(model: nn.Module) -> Classifier:
    """The classifier of a registered model (see module docstring); raises :class:`NoClassifier`."""
    entry = CLASSIFIER_LAYERS.get(type(model).__name__)
    if entry is None:
        raise NoClassifier(f"model {type(model).__name__!r} has no known classifier for cRT/LWS/τ-norm "
                           f"(known: {', '.join(CLASSIFIER_LAYERS)}; see lt_faceparse.longtail.classifier)")
    kind, layers = entry
    return Classifier(kind, layers(model))


class ClassVectorScaling(nn.Module):
    """Forward hooks that rescale the class vectors of ``classifier`` (see module docstring).

    ``scales``: K per-class factors (ones when None); ``learn_scales``: make them a parameter (LWS);
    ``tau``: the τ of τ-normalisation (0: none).
    """

    def __init__(self, classifier: Classifier, num_classes: int, *, scales=None, tau: float = 0.0,
                 learn_scales: bool = False):
        super().__init__()
        if not 0.0 <= float(tau) <= 1.0:
            raise ValueError(f"tau-norm: tau must be in [0, 1], got {tau!r}")
        values = torch.ones(num_classes) if scales is None else torch.as_tensor(scales, dtype=torch.float32)
        if values.shape != (num_classes,) or not torch.isfinite(values).all():
            raise ValueError(f"class-vector scales must be {num_classes} finite values, got shape {tuple(values.shape)}")
        device = next(iter(classifier.parameters())).device
        self.scales = nn.Parameter(values.to(device), requires_grad=learn_scales)
        self.tau = float(tau)
        self.classifier = classifier
        self._handles = [layer.register_forward_hook(self._hook) for layer in classifier.layers]

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def conv_factors(self) -> torch.Tensor:
        """K factors s_c / ||s_c w_c||^τ of a static (convolution) classifier."""
        rows = torch.cat([layer.weight.flatten(1) for layer in self.classifier.layers], dim=1)  # K x sum(C)
        return self.scales * self._norm_power(self.scales.unsqueeze(1) * rows)

    def _norm_power(self, vectors: torch.Tensor) -> torch.Tensor:
        """1 / ||v||^τ over the last axis (ones when τ = 0)."""
        if self.tau == 0.0:
            return torch.ones(vectors.shape[:-1], dtype=vectors.dtype, device=vectors.device)
        return vectors.norm(dim=-1).clamp_min(NORM_FLOOR).pow(-self.tau)

    def _hook(self, layer: nn.Module, inputs, output: torch.Tensor) -> torch.Tensor:
        if self.classifier.kind == VECTORS:  # B x K x D
            scaled = output * self.scales.to(output).view(1, -1, 1)
            return scaled * self._norm_power(scaled).unsqueeze(-1)
        factors = self.conv_factors().to(output).view(1, -1, 1, 1)
        if layer.bias is None:
            return output * factors
        return output * factors + layer.bias.to(output).view(1, -1, 1, 1) * (1 - factors)
