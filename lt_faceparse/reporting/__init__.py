"""lt_faceparse.reporting: records in, files out (leaderboards, paper-style tables, figures, READMEs).

Modules (imported on demand; none is imported here):

- ``tables``: Table/Column data and their Markdown, CSV, LaTeX (booktabs) and rich writers
- ``leaderboard``: result records grouped by comparable protocol, Table-1-style tables, Δ view
- ``figures``: Figure 1 (presence vs F1), F1 vs log presence, confusion heatmap, qualitative grid,
  FPS vs resolution; every figure saved as PNG + PDF + caption file
- ``attention``: SegFace class-token masks and token-to-face attention figures
- ``report``: every table and figure from a results folder; ``readme``: its generated README
- ``sweep_rows``: reading the summary rows a sweep writes (the sweep itself is in
  :mod:`lt_faceparse.experiments`)
- ``published``: the published results as data (owned by the baselines area)
"""
