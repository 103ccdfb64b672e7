"""Long-tail remedies, switchable for every registered model (the ``longtail:`` config section).

One idea per module:

- :mod:`~lt_faceparse.longtail.spec`: the config section (validation, canonical form, labels);
- :mod:`~lt_faceparse.longtail.priors`: class counts of the training split (cached) or of a
  ``class_frequencies.csv``, and the per-image presence table;
- :mod:`~lt_faceparse.longtail.class_weights`: inverse-frequency and effective-number weights;
- :mod:`~lt_faceparse.longtail.pixel_loss` and one module per loss: :mod:`weighted_ce`,
  :mod:`focal`, :mod:`logit_adjusted`, :mod:`seesaw`;
- :mod:`~lt_faceparse.longtail.model_loss`: how a loss remedy combines with a model's own loss
  (SegFace's CE + Dice, BiSeNet's auxiliary heads and OHEM, plain CE);
- :mod:`~lt_faceparse.longtail.repeat_factor`: LVIS repeat-factor sampling (DDP, exact resume);
- :mod:`~lt_faceparse.longtail.copy_paste`: pasting tail-class regions in the occlusion order of
  the merge preset;
- :mod:`~lt_faceparse.longtail.posthoc`: post-hoc logit adjustment and flip test-time augmentation;
- :mod:`~lt_faceparse.engine.longtail_training`: what :func:`lt_faceparse.engine.train.train` calls;
- :mod:`~lt_faceparse.engine.remedies`: named remedy settings (the shipped set) for sweeps.

Only :mod:`spec` is imported here (the config layer needs it without torch).
"""

from lt_faceparse.longtail.spec import canonical_longtail, is_plain, remedy_label, validate_longtail

__all__ = ["canonical_longtail", "is_plain", "remedy_label", "validate_longtail"]
