"""lt_faceparse.data: dataset loaders (real trees and SynthFace-LT), transforms, warps, checks.

Public entry points: :func:`build_dataset`, :func:`iter_labels`, :func:`make_loader`,
:class:`FaceParsingDataset`, :class:`Sample`, :class:`Batch`.
"""

from lt_faceparse.data.base import FaceParsingDataset
from lt_faceparse.data.build import DATASETS, build_dataset, dataset_class, iter_labels, make_loader
from lt_faceparse.data.sample import Batch, Sample, collate_samples

__all__ = [
    "DATASETS",
    "Batch",
    "FaceParsingDataset",
    "Sample",
    "build_dataset",
    "collate_samples",
    "dataset_class",
    "iter_labels",
    "make_loader",
]
