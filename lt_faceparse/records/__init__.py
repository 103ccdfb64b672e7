"""Result records: the one versioned JSON schema for every evaluation (ours and published ones).

A record is ``record.json`` (scores, counts, provenance) plus, for evaluations we ran, a
``per_image.npz`` side file (per image, per class |G|, |P|, |G∩P| and the image names) from which every
score can be recomputed for any subset of images. Scores are fractions in [0, 1]; undefined scores
(a class absent from both ground truth and prediction, or not published) are ``null`` in JSON and
NaN in memory. Writes are atomic; loading validates and names the file in every error.

Reported records (``provenance.reported = true``) hold published numbers: per-class F1 and the
printed means only, no counts, no confusion matrix, no per-image stats.

Modules: :mod:`~lt_faceparse.records.provenance` (the typed :class:`Provenance`, every key declared),
:mod:`~lt_faceparse.records.record` (:class:`ResultRecord`, :data:`SCHEMA_VERSION`),
:mod:`~lt_faceparse.records.build`, :mod:`~lt_faceparse.records.io` (save/load),
:mod:`~lt_faceparse.records.validate`, :mod:`~lt_faceparse.records.migrate` (older schema versions
migrate on load), :mod:`~lt_faceparse.records.comparability` and
:mod:`~lt_faceparse.records.accessors` (a record's protocol, label, remedies, taxonomy, intervals).
"""

from lt_faceparse.data.registry import NOT_APPLICABLE, UNKNOWN, merge_text
from lt_faceparse.records.accessors import (
    NO_POSTHOC,
    PLAIN,
    PROTOCOL_KEYS,
    architecture_of,
    bin_f1,
    class_ci,
    class_f1,
    head_tail_means,
    is_reported,
    mean_f1_ci,
    posthoc_label,
    protocol_of,
    provenance_of,
    record_is_plain,
    record_label,
    record_merge_text,
    record_remedy_description,
    record_remedy_label,
    record_taxonomy,
    remedy_of,
    remedy_parts,
    taxonomy_of_record,
    training_remedy,
)
from lt_faceparse.records.build import build_record, reported_record
from lt_faceparse.records.comparability import Mismatch, check_comparable
from lt_faceparse.records.io import load_record, save_record
from lt_faceparse.records.migrate import migrate_record_dict
from lt_faceparse.records.provenance import (COMPARABILITY_KEYS, PROVENANCE_KEYS, Provenance, git_commit,
                                             make_provenance)
from lt_faceparse.records.record import SCHEMA_VERSION, ResultRecord
from lt_faceparse.records.validate import validate_record_dict

__all__ = [
    "COMPARABILITY_KEYS", "NOT_APPLICABLE", "NO_POSTHOC", "PLAIN", "PROTOCOL_KEYS", "PROVENANCE_KEYS",
    "SCHEMA_VERSION", "UNKNOWN", "Mismatch", "Provenance", "ResultRecord", "architecture_of", "bin_f1", "build_record",
    "check_comparable", "class_ci", "class_f1", "git_commit", "head_tail_means", "is_reported", "load_record", "make_provenance",
    "mean_f1_ci", "merge_text", "migrate_record_dict", "posthoc_label", "protocol_of", "provenance_of",
    "record_is_plain", "record_label", "record_merge_text", "record_remedy_description", "record_remedy_label",
    "record_taxonomy", "remedy_of", "remedy_parts", "reported_record",
    "save_record", "taxonomy_of_record", "training_remedy", "validate_record_dict",
]
