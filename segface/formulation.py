"""How SegFace computes its one function: the paper's literal formulation and exact refactorings tuned per device.

Every formulation computes the same function up to float rounding (tested equal to ``literal``,
values and gradients, on the CPU and, in the ``gpu`` tests, on CUDA). They differ only in how the
work is laid out, which is what makes one fast on a CPU core and another on a GPU:

=================  ===========================  ===========================  ===========================
part               ``literal`` (the paper)      ``cpu``                      ``gpu``
=================  ===========================  ===========================  ===========================
fusion             project, upsample, concat,   per-stage projections folded with the fuse conv, applied at
                   1x1 conv on the stride-4     each stage's resolution, upsampled and summed
                   grid (4D -> D channels)      (:meth:`segface.fusion.MLPFusion.forward`)
PE and its share   recomputed every pass        cached per grid while no gradient flows to a source
of the face                                     (:mod:`segface.cache`)
projections
attention with     explicit key-major softmax   explicit key-major softmax   ``F.scaled_dot_product_attention``
few keys           (as measured in issue 12)    (:class:`segface.attention.Attention`)  (flash / memory-efficient
                                                                              kernels on CUDA)
output head        transposed convolutions,     sub-pixel products on bands  transposed convolutions,
                   per-pixel class product      of face rows, written in     per-pixel class product
                                                place (:func:`segface.decoder.subpixel_head`)
=================  ===========================  ===========================  ===========================

Attention with many keys (token-to-face) runs the SDPA kernel in every formulation.

:func:`choose_formulation` picks one per device and autograd state (``SegFace.formulation =
"auto"``, the default): the CPU gets ``cpu`` for inference and training (its banded head keeps
temporaries in the core's cache; measured fastest on a 2-core CPU for a training step too: 0.72x
``literal``, ``gpu`` 1.06x ``cpu``); CUDA and every other accelerator get ``gpu``: the banded head's
many small products and slice writes (``CopySlices`` in backward) are launch-bound there, the fused
attention kernels are not.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Formulation:
    """One way of computing SegFace (see the module docstring for each part)."""

    name: str
    folded_fusion: bool  # fusion: folded per-stage projections (True) | concat + 1x1 conv (False)
    cached_constants: bool  # positional encoding and its share of the face projections cached per grid
    key_major: bool  # attention with few keys: explicit key-major softmax (True) | SDPA kernel (False)
    banded_head: bool  # output head: sub-pixel products on bands of rows (True) | transposed convolutions


LITERAL = Formulation("literal", folded_fusion=False, cached_constants=False, key_major=True, banded_head=False)
CPU = Formulation("cpu", folded_fusion=True, cached_constants=True, key_major=True, banded_head=True)
GPU = Formulation("gpu", folded_fusion=True, cached_constants=True, key_major=False, banded_head=False)

FORMULATIONS: dict[str, Formulation] = {f.name: f for f in (LITERAL, CPU, GPU)}
CHOICES = ("auto", *FORMULATIONS)


def choose_formulation(device: torch.device, grad: bool) -> Formulation:
    """The fastest exact formulation for ``device``, with (``grad``) or without gradients.

    CPU -> ``cpu``, any accelerator -> ``gpu``, in both autograd states: on the CPU ``cpu`` measured
    fastest for inference and for a training step (docs/speed.md, "SegFace formulations";
    ``reports/history.md``). ``grad`` changes what a formulation may cache, not which one runs:
    its cached constants are recomputed while gradients flow (:func:`segface.cache.caching_allowed`).
    """
    return CPU if device.type == "cpu" else GPU


def check_formulation(name: str) -> str:
    """``name`` if it is ``"auto"`` or a formulation's name, else a ValueError listing the choices."""
    if name not in CHOICES:
        raise ValueError(f"unknown SegFace formulation {name!r}; choose one of {list(CHOICES)}")
    return name
