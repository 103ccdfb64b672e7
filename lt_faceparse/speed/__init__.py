"""lt_faceparse.speed: the speed harness (one package; imported on demand, none is imported here).

- ``harness``: parameters, FLOPs, latency, throughput and peak memory of a model; speed records
  (save, load, find, select)
- ``segface``: SegFace inference timing, its formulations against each other and BiSeNet
- ``training``: training-step timing (default path vs the literal formulation) and end to end
- ``loading``: data-loading throughput
- ``suite``: the training speed suite that ``scripts/bench_segface.py`` runs
"""
