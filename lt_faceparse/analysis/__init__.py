"""Long-tail analysis: class frequencies, Gini, rare/common/frequent bins, scoring saved predictions."""

from lt_faceparse.analysis.bins import BIN_NAMES, DEFAULT_THRESHOLDS, assign_bins, f1_by_bin
from lt_faceparse.analysis.frequency import (FREQUENCY_COLUMNS, FrequencyTable, compute_class_frequencies,
                                             frequency_report, write_frequency_report)
from lt_faceparse.analysis.gini import gini

__all__ = [
    "BIN_NAMES", "DEFAULT_THRESHOLDS", "assign_bins", "f1_by_bin", "FREQUENCY_COLUMNS", "FrequencyTable",
    "compute_class_frequencies", "frequency_report", "write_frequency_report", "gini",
]
