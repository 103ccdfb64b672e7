"""lt_faceparse.inference: a trained weight file applied to images (above the engine, below reporting).

- ``parser``: :class:`~lt_faceparse.inference.parser.FaceParser` (load, warp, post-hoc options,
  compile) and ``parse_images`` behind ``lt-faceparse parse``
"""
