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
# the datasets whose label maps are painted from overlapping part masks in a merge order; the others
# (LaPa, Helen, folder datasets) store their labels merged
MERGE_ORDER_DATASETS = frozenset({"celebamask-hq"})
NOT_APPLICABLE = "n/a"  # the merge preset of data whose labels are stored merged
UNKNOWN = "unknown"


def dataset_key(name: str) -> str:
    """The registered name of dataset ``name`` (aliases such as ``celeba`` resolved)."""
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in DATASETS:
        raise KeyError(f"unknown dataset {name!r}; known: {sorted(DATASETS)}")
    return key


def merge_order_applies(name: str | None) -> bool | None:
    """Whether the labels of data format ``name`` come from a merge order (True: CelebAMask-HQ), are
    stored merged (False: LaPa, Helen, folder), or it cannot be told (None: not a format name)."""
    key = _ALIASES.get(str(name).lower(), str(name).lower())
    if key not in DATASETS:
        return None
    return key in MERGE_ORDER_DATASETS


def merge_text(merge: str | None, data_format: str | None) -> str:
    """The merge preset as printed: the preset, ``n/a`` for data formats without a merge order
    (LaPa, Helen, folder datasets: their labels are stored merged), else ``unknown``.
    ``data_format``: the data format (or dataset name) the labels were read from."""
    if merge not in (None, ""):
        return str(merge)
    return NOT_APPLICABLE if data_format and merge_order_applies(data_format) is False else UNKNOWN
