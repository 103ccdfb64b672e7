"""lt_faceparse.engine: training and evaluation on one machine or many (torchrun + DDP).

- :func:`lt_faceparse.engine.config.load_config` reads a YAML training config (schema in
  ``config.DEFAULTS``, shipped files in ``lt_faceparse/configs/``).
- :func:`lt_faceparse.engine.train.train` runs it and returns the run folder.
- :func:`lt_faceparse.engine.evaluate.evaluate_model` / ``evaluate_checkpoint`` score a model on a
  whole split and return a :class:`~lt_faceparse.records.ResultRecord`.
- :class:`lt_faceparse.engine.tiny.TinyParser` is the registry's ``"tiny"`` model for tests and smoke runs.
"""
