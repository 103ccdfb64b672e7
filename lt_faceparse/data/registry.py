"""The dataset formats by name (importing none of them, nor torch)."""

from __future__ import annotations

# dataset name -> "module:Class" (imported on first use)
DATASETS: dict[str, str] = {
    "celebamask-hq": "lt_faceparse.data.celebamask_hq:CelebAMaskHQ",
    "lapa": "lt_faceparse.data.lapa:LaPa",
    "helen": "lt_faceparse.data.helen:Helen",
    "folder": "lt_faceparse.data.folder:FolderDataset",
}
_ALIASES = {"celebamask": "celebamask-hq", "celeba": "celebamask-hq", "celebamaskhq": "celebamask-hq"}


def dataset_key(name: str) -> str:
    """The registered name of dataset ``name`` (aliases such as ``celeba`` resolved)."""
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in DATASETS:
        raise KeyError(f"unknown dataset {name!r}; known: {sorted(DATASETS)}")
    return key
