"""The released face parsers this library can fetch, convert and run by name.

Each :class:`ZooEntry` says where the file comes from (a Hugging Face Hub repo and file, or a file
the user brings), how to convert it (``format``), what it is (backbone, resolution, taxonomy,
training data, merge preset), what its authors published for it (mean F1 and the source, with the
id of the row in ``reporting/published_results.json`` that holds the per-class values) and the
terms its weights come with (:class:`LicenceTerms`).

Registered here: the 13 files of the SegFace release (Hub repo ``kartiknarayan/SegFace``, one
``<folder>/model_299.pt`` each; the release's Helen model is not part of the list its README
tabulates and is not registered) and face-parsing.PyTorch's BiSeNet ``79999_iter.pth``, which
has no stable download URL: the user places the file, and its SHA-256 is checked when known.
File sizes of the release are not published file by file (about 13 GB in all), so
``file_size`` is ``None`` for them.
"""

from __future__ import annotations

import fnmatch
from dataclasses import asdict, dataclass
from typing import Any

SEGFACE_REPO = "kartiknarayan/SegFace"
SEGFACE_RELEASE = "segface-release"  # format: a release model_299.pt (segface.convert.convert_official)
ZLL_CHECKPOINT = "face-parsing.pytorch"  # format: a plain BiSeNet state dict (baselines.convert_zll)
FORMATS = (SEGFACE_RELEASE, ZLL_CHECKPOINT)
README_SOURCE = "SegFace release README (Kartik-3004/SegFace@9416628)"
PAPER_SOURCE = "SegFace AAAI 2025"


@dataclass(frozen=True)
class LicenceTerms:
    """Terms a released weight file comes with: its own licence and that of its training data.

    ``summary`` is the short line printed in tables; the weights of every model here inherit the
    non-commercial research terms of their training data, whatever the licence of the file."""

    weights: str
    data: str
    summary: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


CELEBAMASK_HQ_TERMS = ("CelebAMask-HQ (and CelebA, whose images it holds): non-commercial research and educational "
                       "purposes only")
LAPA_TERMS = "LaPa: non-commercial research purposes only"
SEGFACE_WEIGHTS = f"MIT (model card of {SEGFACE_REPO} on the Hugging Face Hub)"

SEGFACE_CELEBA_LICENCE = LicenceTerms(
    weights=SEGFACE_WEIGHTS, data=CELEBAMASK_HQ_TERMS,
    summary="non-commercial research only (CelebAMask-HQ terms)")
SEGFACE_LAPA_LICENCE = LicenceTerms(
    weights=SEGFACE_WEIGHTS, data=LAPA_TERMS,
    summary="non-commercial research only (LaPa terms)")
ZLL_LICENCE = LicenceTerms(
    weights="MIT (repository zllrunning/face-parsing.PyTorch)", data=CELEBAMASK_HQ_TERMS,
    summary="non-commercial research only (CelebAMask-HQ terms)")


@dataclass(frozen=True)
class ZooEntry:
    """One released weight file and what is known about it (see the module docstring)."""

    name: str  # "segface/<folder>" for the SegFace release
    format: str  # one of FORMATS
    backbone: str  # our backbone name (segface.backbones / baselines)
    resolution: int  # training (= network input) resolution
    taxonomy: str
    train_data: str
    merge: str | None  # CelebAMask-HQ paint-order preset of the training labels (None: not CelebAMask-HQ)
    licence: LicenceTerms
    file: str  # the file's path in its Hub repo, or the name of the file the user brings
    published_mean_f1: float | None = None  # percent, as printed
    published_source: str | None = None
    published_id: str | None = None  # row id in reporting/published_results.json
    hub_repo: str | None = None
    source_url: str | None = None  # where a user-supplied file can be obtained (no stable download)
    file_size: int | None = None  # bytes, when known
    sha256: str | None = None  # of the released file, when known
    checkpoint_rule: str = "last epoch"

    @property
    def dataset(self) -> str:
        """The dataset the model was trained and is scored on (its taxonomy's name)."""
        return self.taxonomy

    @property
    def url(self) -> str:
        """Where the file comes from: its Hub download URL, or the page that tells how to get it."""
        if self.hub_repo:
            return f"https://huggingface.co/{self.hub_repo}/resolve/main/{self.file}"
        return self.source_url or "(no known source)"

    @property
    def needs_landmarks(self) -> bool:
        """LaPa models run inside the RoI tanh warp: parsing needs 5 (or 106) landmarks per image."""
        return self.taxonomy == "lapa"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "url": self.url, "dataset": self.dataset, "needs_landmarks": self.needs_landmarks}


_ZOO: dict[str, ZooEntry] = {}


def register_entry(entry: ZooEntry) -> ZooEntry:
    """Add ``entry`` to the zoo (``name`` must be new and ``format`` known); returns it."""
    if entry.name in _ZOO:
        raise KeyError(f"released model {entry.name!r} is already registered")
    if entry.format not in FORMATS:
        raise ValueError(f"released model {entry.name!r}: format {entry.format!r} is not one of {FORMATS}")
    if (entry.hub_repo is None) == (entry.source_url is None):
        raise ValueError(f"released model {entry.name!r}: give either a Hub repo or a source URL")
    _ZOO[entry.name] = entry
    return entry


def get_entry(name: str) -> ZooEntry:
    """The registered entry called ``name``; a KeyError lists the known names."""
    try:
        return _ZOO[name]
    except KeyError:
        raise KeyError(f"no released model {name!r}; known (lt-faceparse zoo list): {sorted(_ZOO)}") from None


def zoo_entries(pattern: str | None = None, *, dataset: str | None = None) -> list[ZooEntry]:
    """Registered entries in registration order, optionally those whose name matches the shell
    ``pattern`` (``fnmatch``, e.g. ``"segface/swinb_*"``) and/or trained on ``dataset``."""
    return [e for e in _ZOO.values()
            if (pattern is None or fnmatch.fnmatchcase(e.name, pattern)) and (dataset is None or e.dataset == dataset)]


def _segface(folder: str, backbone: str, mean_f1: float, source: str, published_id: str) -> ZooEntry:
    resolution = int(folder.rsplit("_", 1)[1])
    celeba = "_celeba_" in folder
    return ZooEntry(
        name=f"segface/{folder}", format=SEGFACE_RELEASE, backbone=backbone, resolution=resolution,
        taxonomy="celebamask-hq" if celeba else "lapa",
        train_data="CelebAMask-HQ train split (24,183 images)" if celeba else "LaPa train split (18,176 images)",
        merge="segface" if celeba else None,
        licence=SEGFACE_CELEBA_LICENCE if celeba else SEGFACE_LAPA_LICENCE,
        published_mean_f1=mean_f1, published_source=source, published_id=published_id,
        file=f"{folder}/model_299.pt", hub_repo=SEGFACE_REPO,
        checkpoint_rule="last epoch (model_299.pt: epoch 300 of 300)")


for _entry in (
    _segface("convnext_celeba_512", "convnext_base", 89.22, README_SOURCE, "readme/convnext-base-512"),
    _segface("efficientnet_celeba_512", "efficientnet", 88.94, f"{PAPER_SOURCE} Table 2a", "2a/efficientnet"),
    _segface("mobilenet_celeba_512", "mobilenet", 87.91, f"{PAPER_SOURCE} Table 2a", "2a/mobilenet-v3"),
    _segface("resnet_celeba_512", "resnet101", 87.50, f"{PAPER_SOURCE} Table 2a", "2a/resnet-100"),
    _segface("swinv2b_celeba_512", "swinv2_base", 88.73, f"{PAPER_SOURCE} Table 2a", "2a/swin-v2"),
    *(_segface(f"swinb_celeba_{r}", "swin_base", f1, f"{PAPER_SOURCE} Table 1b", f"1b/segface-{r}")
      for r, f1 in ((224, 87.47), (256, 87.66), (448, 88.77), (512, 88.96))),
    *(_segface(f"swinb_lapa_{r}", "swin_base", f1, f"{PAPER_SOURCE} Table 1a", f"1a/segface-{r}")
      for r, f1 in ((224, 92.50), (256, 92.61), (448, 93.03), (512, 93.03))),
    ZooEntry(
        name="face-parsing.pytorch/bisenet", format=ZLL_CHECKPOINT, backbone="resnet18", resolution=512,
        taxonomy="celebamask-hq", train_data="CelebAMask-HQ, all 30,000 images (the test split included)",
        merge="zll", licence=ZLL_LICENCE, file="79999_iter.pth",
        source_url="https://github.com/zllrunning/face-parsing.PyTorch (README: Google Drive link to 79999_iter.pth)",
        checkpoint_rule="fixed iteration 79999 (from the file name)"),
):
    register_entry(_entry)
