"""lt_faceparse.reporting: leaderboards, paper-style tables and figures, sweeps and the benchmark.

Modules (imported on demand; none is imported here):

- ``tables``: Table/Column data and their Markdown, CSV, LaTeX (booktabs) and rich writers
- ``leaderboard``: result records grouped by comparable protocol, Table-1-style tables, Δ view
- ``figures``: Figure 1 (presence vs F1), F1 vs log presence, confusion heatmap, qualitative grid,
  FPS vs resolution; every figure saved as PNG + PDF + caption file
- ``attention``: SegFace class-token masks and token-to-face attention figures
- ``sweep``: train / evaluate / time a config over resolutions or backbones (resumable)
- ``report``: every table and figure from a results folder; ``readme``: its generated README
- ``benchmark``: the one-command SynthFace-LT benchmark
- ``published``: the published results as data (owned by the baselines area)
"""
