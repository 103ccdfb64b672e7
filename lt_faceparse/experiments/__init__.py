"""lt_faceparse.experiments: orchestration that trains or fetches models, then scores and renders.

- ``sweep``: train / evaluate / time a config over resolutions, backbones or remedies (resumable)
- ``parallel``: settings side by side in worker processes
- ``benchmark``: the one-command SynthFace-LT benchmark (the only thing called "benchmark")
- ``zoo_eval``: re-score released models under one protocol (resumable)
"""
