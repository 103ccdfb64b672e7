"""lt_faceparse.engine: training and evaluation on one machine or many (torchrun + DDP).

- :func:`lt_faceparse.engine.config.load_config` reads a YAML training config (schema in
  ``config.DEFAULTS``, shipped files in ``lt_faceparse/configs/``).
- :func:`lt_faceparse.engine.train.train` runs it and returns the run folder, on one process or
  under torchrun on one node or several; where it starts (``resume: false | true | auto``) is
  decided by :mod:`~lt_faceparse.engine.resume`, SIGTERM/SIGUSR1 handling lives in
  :mod:`~lt_faceparse.engine.preemption`, TensorBoard logging in :mod:`~lt_faceparse.engine.tensorboard`.
- :func:`lt_faceparse.engine.evaluate.evaluate_model` / ``evaluate_checkpoint`` score a model on a
  whole split and return a :class:`~lt_faceparse.records.ResultRecord`.
- :class:`lt_faceparse.engine.tiny.TinyParser` is the registry's ``"tiny"`` model for tests and smoke runs.
"""
