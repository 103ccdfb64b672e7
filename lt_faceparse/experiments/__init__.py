"""lt_faceparse.experiments: orchestration that trains and then renders (imported on demand).

- ``sweep``: train / evaluate / time a config over resolutions, backbones or remedies (resumable)
- ``parallel``: settings side by side in worker processes
- ``benchmark``: the one-command SynthFace-LT benchmark (the only thing called "benchmark")
"""
