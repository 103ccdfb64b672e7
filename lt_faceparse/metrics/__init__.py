"""Metrics: split-level confusion matrix, scores, bootstrap intervals and paired tests, protocols."""

from lt_faceparse.metrics.bootstrap import BootstrapCI, PairedBootstrap, bootstrap_ci, paired_bootstrap
from lt_faceparse.metrics.confusion import ConfusionMatrix
from lt_faceparse.metrics.per_image import PerImageStats
from lt_faceparse.metrics.protocol import PROTOCOLS, protocol_provenance, update_for_protocol
from lt_faceparse.metrics.scores import CONVENTIONS, scores_from_confusion, scores_from_counts

__all__ = [
    "BootstrapCI", "PairedBootstrap", "bootstrap_ci", "paired_bootstrap", "ConfusionMatrix", "PerImageStats",
    "PROTOCOLS", "protocol_provenance", "update_for_protocol", "CONVENTIONS", "scores_from_confusion",
    "scores_from_counts",
]
