"""TensorBoard event files of a training run (``RUN/tb/``, written by global rank 0 only).

Scalars, all against the global optimizer step:

- every ``log_every`` steps: ``train/loss`` (mean loss of the step over every rank and
  micro-batch), ``train/lr``, ``train/images_per_s`` (global batch / wall time of the step) and
  ``train/grad_norm`` (L2 norm of all gradients before clipping, unscaled);
- after each validation: ``val/mean_f1`` (foreground classes), ``val/mean_iou_with_bg`` and
  ``val/mean_iou_without_bg`` (the two mIoU conventions), ``val/pixel_accuracy``, ``val/head_f1``
  and ``val/tail_f1`` (mean F1 of non-accessory foreground classes and of accessory classes, as in
  the leaderboard), and ``val/f1/<class>`` per class, named by the taxonomy (classes undefined in
  that validation, absent from labels and predictions, are left out). All come from one confusion
  matrix over the whole validation split, as in ``val/record.json``.

Each (re)start appends a new event file with ``purge_step`` set to its first step, so TensorBoard
hides what an interrupted run logged after its last checkpoint (the resumed run logs those steps
again). Watch a run with ``tensorboard --logdir RUN/tb``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from lt_faceparse.metrics.groups import HEAD, TAIL, group_means, head_tail_ids

TB_DIR = "tb"

CONVENTIONS = (
    "train/loss: mean loss of the optimizer step over all ranks and micro-batches. "
    "train/images_per_s: global batch / wall time of the step. "
    "train/grad_norm: L2 norm of all gradients before clipping (unscaled). "
    "val/*: one confusion matrix over the whole validation split; mean F1 over foreground classes; "
    "mean IoU with and without background; head = non-accessory foreground classes, tail = accessory "
    "classes (taxonomy kinds); val/f1/<class> per class, undefined classes left out."
)


class TensorBoardLog:
    """Writes the run's scalars to ``run_dir/tb`` when ``active`` (rank 0 with ``tensorboard: true``).

    ``first_step``: the first global step this process will log (a resumed run's checkpoint step
    + 1); events of an interrupted run at that step or later are purged from TensorBoard's view.
    """

    def __init__(self, run_dir: str | Path, *, active: bool, first_step: int = 1):
        self.directory = Path(run_dir) / TB_DIR
        self.writer = None
        if active:
            try:
                from torch.utils.tensorboard import SummaryWriter  # lazy: the optional tensorboard package
            except ImportError as err:  # torch's writer needs the tensorboard package
                raise ImportError(f"tensorboard: true needs the tensorboard package ({err}); pip install "
                                  "tensorboard, or set tensorboard: false") from None
            self.writer = SummaryWriter(str(self.directory), purge_step=first_step)
            if first_step <= 1:
                self.writer.add_text("conventions", CONVENTIONS, 0)

    def train_step(self, step: int, *, loss: float, lr: float, images_per_s: float, grad_norm: float | None) -> None:
        if self.writer is None:
            return
        values = {"train/loss": loss, "train/lr": lr, "train/images_per_s": images_per_s, "train/grad_norm": grad_norm}
        for tag, value in values.items():
            if value is not None:
                self.writer.add_scalar(tag, float(value), step)

    def validation(self, step: int, record: Any, taxonomy: Any) -> None:
        """Scalars of a validation :class:`~lt_faceparse.records.ResultRecord` at ``step``."""
        if self.writer is None:
            return
        f1 = [math.nan] * taxonomy.num_classes
        for row in record.per_class:
            f1[int(row["id"])] = math.nan if row["f1"] is None else float(row["f1"])
        means = group_means(f1, head_tail_ids(taxonomy))
        head, tail = means[HEAD], means[TAIL]
        values = {"val/mean_f1": record.mean_f1, "val/mean_iou_with_bg": record.mean_iou_with_bg,
                  "val/mean_iou_without_bg": record.mean_iou_without_bg, "val/pixel_accuracy": record.pixel_accuracy,
                  "val/head_f1": head, "val/tail_f1": tail}
        values.update({f"val/f1/{name}": f1 for name, f1 in record.per_class_f1().items()})
        for tag, value in values.items():
            if value is not None and not math.isnan(value):
                self.writer.add_scalar(tag, float(value), step)
        self.writer.flush()

    def flush(self) -> None:
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
