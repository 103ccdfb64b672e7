"""lt_faceparse.engine: training and evaluation on one machine or many (torchrun + DDP).

- :func:`lt_faceparse.engine.config.load_config` reads a YAML training config (the typed schema:
  :class:`~lt_faceparse.engine.config_schema.TrainConfig`; shipped files in ``lt_faceparse/configs/``).
- :func:`lt_faceparse.engine.train.train` runs it and returns the run folder, on one process or
  under torchrun on one node or several. The trainer is the loop (:mod:`~lt_faceparse.engine.train`),
  the run state (:mod:`~lt_faceparse.engine.run_state`: resume, checkpoints, preemption stop, final
  weights) and hooks (:mod:`~lt_faceparse.engine.hooks`: long-tail data stages, TensorBoard, logging,
  precise BN, validation); where a run starts (``resume: false | true | auto``) is decided by
  :mod:`~lt_faceparse.engine.resume`, SIGTERM/SIGUSR1 handling lives in :mod:`~lt_faceparse.engine.preemption`.
- :func:`lt_faceparse.engine.evaluate.evaluate_model` / ``evaluate_checkpoint`` score a model on a
  whole split and return a :class:`~lt_faceparse.records.ResultRecord`.
- :class:`lt_faceparse.engine.tiny.TinyParser` is the registry's ``"tiny"`` model for tests and smoke runs.
"""
