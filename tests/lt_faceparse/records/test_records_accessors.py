import pytest

from lt_faceparse.longtail import spec
from lt_faceparse.records import (PLAIN, Provenance, architecture_of, build_record, is_reported, merge_text,
                                  posthoc_label, protocol_of, provenance_of, record_is_plain, record_label,
                                  record_merge_text, record_remedy_description, record_remedy_label, remedy_of,
                                  remedy_parts, training_remedy)
from lt_faceparse.custom_taxonomy import taxonomy_from_names

TWO = taxonomy_from_names("two", ["background", "face"])


def _record(**prov):
    return build_record([[3, 1], [0, 4]], TWO, {"model": "segface", "backbone": "mobilenet", "resolution": 64,
                                                "dataset": "celebamask-hq", "split": "test", "protocol": "input",
                                                **prov}, num_images=1)


def test_merge_is_not_applicable_for_formats_without_a_merge_order():
    assert merge_text(None, "folder") == "n/a"
    assert merge_text(None, "lapa") == "n/a" and merge_text(None, "helen") == "n/a"
    assert merge_text(None, "celebamask-hq") == "unknown"
    assert merge_text(None, "synthface-lt") == "unknown"  # not a data format: cannot be told
    assert merge_text("zll", "celebamask-hq") == "zll"
    # a record's data format decides before its dataset name
    assert record_merge_text(_record(data_format="folder", dataset="synthface-lt")) == "n/a"
    assert record_merge_text(_record(merge="segface")) == "segface"


def test_post_hoc_and_remedy_labels():
    assert posthoc_label({"logit_adjust": 1.0, "tta": "flip"}) == "post-hoc LA(τ=1) + flip TTA"
    assert posthoc_label({"logit_adjust": None, "tta": None}) == "" and posthoc_label(None) == ""
    assert PLAIN == spec.PLAIN
    label = spec.remedy_label({"loss": "focal", "copy_paste": {"prob": 0.5}})
    prov = Provenance(longtail={"label": label}, posthoc={"logit_adjust": 1.0, "tta": "flip"})
    assert training_remedy(prov) == "focal(γ=2) + copy-paste(p=0.5, accessories)"
    assert remedy_parts(prov) == ["focal(γ=2)", "copy-paste(p=0.5, accessories)", "post-hoc LA(τ=1)", "flip TTA"]
    assert remedy_parts(Provenance(longtail={"label": "plain"}, posthoc={"logit_adjust": None, "tta": None})) == []
    assert remedy_parts(Provenance()) == [] and training_remedy(Provenance()) == PLAIN


def _longtail(**section) -> dict:
    """A ``longtail`` provenance entry as training writes it: the remedies' label and their settings."""
    return {"label": spec.remedy_label(section), **section}


class _Scored:
    """What the reporting layer passes: any object with a provenance."""

    def __init__(self, **provenance):
        self.provenance = Provenance.from_dict(provenance)


def test_plain_and_remedy_names():
    assert record_is_plain(_Scored())
    assert record_is_plain(_Scored(longtail=_longtail(loss="plain", sampler={"name": "uniform"}, copy_paste=None,
                                                      priors="train split"),
                                   posthoc={"logit_adjust": None, "tta": None}))
    focal = _Scored(longtail=_longtail(loss={"name": "focal", "gamma": 2.0}))
    assert not record_is_plain(focal) and record_remedy_description(focal) == "focal(γ=2)"
    assert record_remedy_label(focal) == "focal(γ=2)"
    both = _Scored(remedy="rfs+cp", longtail=_longtail(sampler={"name": "repeat_factor", "threshold": 0.3},
                                                       copy_paste={"classes": ["hat"], "prob": 0.5}))
    assert record_remedy_label(both) == "rfs+cp"
    assert record_remedy_description(both) == "RFS(t=0.3) + copy-paste(p=0.5, hat)"
    tau = _Scored(posthoc={"logit_adjust": 1.0, "tta": None})
    assert not record_is_plain(tau) and record_remedy_description(tau) == "post-hoc LA(τ=1)"
    assert record_remedy_description(_Scored(remedy="x")) == "remedy x (parameters not recorded)"


def test_record_accessors_read_the_typed_provenance():
    record = _record(longtail={"label": "focal(γ=2)"}, posthoc={"logit_adjust": None, "tta": "flip"})
    assert record.label == "segface (mobilenet) @64 +focal(γ=2) +flip TTA" == record_label(record)
    assert record_label(_record(label="SegFace [AAAI 2025]")) == "SegFace [AAAI 2025]"
    assert protocol_of(record) == {"dataset": "celebamask-hq", "taxonomy": "two", "split": "test",
                                   "merge": "unknown", "protocol": "input", "posthoc": "flip TTA"}
    assert remedy_of(record) == "focal(γ=2)" and architecture_of(record) == ("segface", "mobilenet", "64")
    assert not is_reported(record) and provenance_of(object()) == Provenance()


def test_provenance_is_frozen():
    with pytest.raises(AttributeError):
        _record().provenance.split = "val"
