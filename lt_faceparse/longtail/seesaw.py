"""Seesaw loss (Wang et al., CVPR 2021), per pixel.

For a pixel of class i: p̂_i = e^{z_i} / (e^{z_i} + Σ_{j≠i} S_ij e^{z_j}), loss −log p̂_i, with
S_ij = M_ij · C_ij:

- mitigation M_ij = (N_j / N_i)^p if N_i > N_j else 1, with N the pixel counts of each class
  accumulated over the training so far (this batch included: the counts are updated before the
  loss, as in the authors' code). Counts are raised to at least 1 in the ratio, so a class not seen
  yet does not remove its logit altogether;
- compensation C_ij = (σ_j / σ_i)^q if σ_j > σ_i else 1, with σ = softmax(z) of the pixel, taken
  without gradient (as in the authors' code).

Computed in log space: −log p̂_i = CE(z + log S_i·, i) with log S_ij = p · min(0, log N_j − log N_i)
+ q · max(0, log σ_j − log σ_i) (and log S_ii = 0), so no ratio under- or overflows.

The accumulated counts N are state: a float64 buffer outside the model's ``state_dict``, saved in
and restored from training checkpoints (:meth:`training_state`), summed over ranks each step under
DDP so that every rank holds the same counts and a resumed run continues exactly.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F

from lt_faceparse.longtail.pixel_loss import PixelLoss
from lt_faceparse.taxonomy import IGNORE_INDEX


class SeesawLoss(PixelLoss):
    def __init__(self, num_classes: int, p: float = 0.8, q: float = 2.0, ignore_index: int = IGNORE_INDEX):
        super().__init__(ignore_index)
        if p < 0 or q < 0:
            raise ValueError(f"seesaw p and q must be >= 0, got p={p}, q={q}")
        self.num_classes = num_classes
        self.p = float(p)
        self.q = float(q)
        self.register_buffer("accumulated", torch.zeros(num_classes, dtype=torch.float64), persistent=False)

    def pixel_losses(self, logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        if self.training:
            self._accumulate(target[valid])
        k = logits.shape[1]
        log_counts = self.accumulated.clamp(min=1.0).log().to(logits.dtype)  # K
        # mitigation, K x K (row i = true class): p * min(0, log N_j - log N_i)
        log_mitigation = (self.p * (log_counts[None, :] - log_counts[:, None])).clamp(max=0.0)
        log_mitigation = log_mitigation[target].permute(0, 3, 1, 2)  # B x K x H x W
        log_sigma = logits.detach().log_softmax(1)  # B x K x H x W
        log_sigma_true = log_sigma.gather(1, target.unsqueeze(1))  # B x 1 x H x W
        log_compensation = (self.q * (log_sigma - log_sigma_true)).clamp(min=0.0)
        log_s = log_mitigation + log_compensation  # zero on the true class: both terms vanish there
        if log_s.shape[1] != k:
            raise ValueError(f"seesaw built for {self.num_classes} classes, logits have {k}")
        return F.cross_entropy(logits + log_s, target, reduction="none")

    def _accumulate(self, labels: torch.Tensor) -> None:
        counts = torch.bincount(labels.flatten(), minlength=self.num_classes)[: self.num_classes].to(torch.float64)
        if dist.is_available() and dist.is_initialized():
            reduce_on = counts if counts.device.type == "cuda" else counts.cpu()
            dist.all_reduce(reduce_on)
            counts = reduce_on.to(self.accumulated.device)
        self.accumulated += counts

    def training_state(self) -> dict[str, Any]:
        return {"accumulated": self.accumulated.detach().cpu().clone()}

    def load_training_state(self, state: dict[str, Any]) -> None:
        counts = torch.as_tensor(state["accumulated"], dtype=torch.float64)
        if counts.shape != self.accumulated.shape:
            raise ValueError(f"seesaw state holds {tuple(counts.shape)} counts, the loss has "
                             f"{self.num_classes} classes")
        self.accumulated.copy_(counts)

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, p={self.p}, q={self.q}"
