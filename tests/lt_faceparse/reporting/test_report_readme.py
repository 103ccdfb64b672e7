"""README findings: a comparison that cannot be made is listed under "Not produced"; an unexpected
error is never turned into a skipped finding."""

import numpy as np
import pytest

from lt_faceparse.metrics.per_image import PerImageStats
from lt_faceparse.records import build_record
from lt_faceparse.reporting.outputs import ReportOutputs
from lt_faceparse.reporting.readme import findings, write_readme
from lt_faceparse.taxonomy import get_taxonomy

TAX = get_taxonomy("celebamask-hq")
PROV = {"dataset": "celebamask-hq", "split": "test", "merge": "segface", "protocol": "input", "resolution": 64}


def _record(model: str, images: list[str], wrong: int):
    """Each image: 100 px of every class, ``wrong`` hat pixels predicted as background."""
    k = TAX.num_classes
    cm = np.eye(k, dtype=np.int64) * 100
    cm[TAX.id_of("hat"), TAX.id_of("hat")] -= wrong
    cm[TAX.id_of("hat"), 0] += wrong
    n = len(images)
    stats = PerImageStats(np.tile(cm.sum(1), (n, 1)), np.tile(cm.sum(0), (n, 1)), np.tile(np.diagonal(cm), (n, 1)),
                          np.arange(n), tuple(images))
    return build_record(cm * n, TAX, {**PROV, "model": model}, per_image=stats)


def _outputs(tmp_path, other_images):
    outputs = ReportOutputs(tmp_path)
    outputs.records = [_record("segface", ["a", "b", "c"], 0), _record("bisenet", other_images, 30)]
    return outputs


def test_comparison_on_other_images_is_listed_as_not_produced(tmp_path):
    outputs = _outputs(tmp_path, ["x", "y", "z"])
    lines = findings(outputs, n_resamples=50)
    assert not any(line.startswith("- SegFace − bisenet") for line in lines)
    assert len(outputs.skipped) == 1 and outputs.skipped[0].startswith(
        "finding 'SegFace − bisenet @64' (paired bootstrap): paired bootstrap needs the same images")
    readme = write_readme(tmp_path, outputs, {"command": "test"}).read_text()
    not_produced = readme.split("## Not produced")[1]
    assert "finding 'SegFace − bisenet @64'" in not_produced
    # a report of real data is not introduced as SynthFace-LT
    assert readme.startswith("# Report: celebamask-hq") and "SynthFace-LT is a generated stand-in" not in readme


def test_comparison_on_the_same_images_is_a_finding(tmp_path):
    outputs = _outputs(tmp_path, ["a", "b", "c"])
    lines = findings(outputs, n_resamples=50)
    (line,) = [line for line in lines if line.startswith("- SegFace − bisenet @64")]
    delta = 100 * (outputs.records[0].mean_f1 - outputs.records[1].mean_f1)
    assert f"Δ mean F1 {delta:+.2f} points" in line and "3 test images" in line
    assert outputs.skipped == []


def test_unexpected_errors_in_a_finding_propagate(tmp_path, monkeypatch):
    import lt_faceparse.reporting.readme as readme

    def broken(*args, **kwargs):
        raise ValueError("taxonomy 'x' has 3 classes, stats have 19")  # a bug, not a fact about the data

    monkeypatch.setattr(readme, "paired_bootstrap", broken)
    with pytest.raises(ValueError, match="has 3 classes"):
        findings(_outputs(tmp_path, ["a", "b", "c"]), n_resamples=50)


def test_repeated_runs_of_one_setting_are_named_by_run_folder_and_the_choice_is_said(tmp_path):
    from lt_faceparse.reporting.leaderboard import unique_labels

    first, second = _record("segface", ["a", "b", "c"], 0), _record("segface", ["a", "b", "c"], 30)
    for record, seed in ((first, 0), (second, 1)):
        record.provenance = record.provenance.replace(weights=f"runs/seed{seed}/final.safetensors",
                                                      source="trained with lt-faceparse 0.1.0")
    assert unique_labels([first, second]) == ["segface @64 [seed0]", "segface @64 [seed1]"]
    outputs = ReportOutputs(tmp_path)
    outputs.records = [first, second, _record("bisenet", ["a", "b", "c"], 30)]
    lines = findings(outputs, n_resamples=50)
    (line,) = [line for line in lines if "share the setting" in line]
    assert line == (f"- 2 records share the setting of segface @64 (segface @64 [seed0], segface @64 [seed1]): the "
                    f"findings and figures use the first one, segface @64 [seed0] (scores {100 * first.mean_f1:.2f}, "
                    f"{100 * second.mean_f1:.2f} mean F1); the leaderboard lists each.")
    assert any(line.startswith("- SegFace (segface @64) has the highest mean F1 of the 2 models") for line in lines)


def test_labels_fall_back_to_numbers_when_nothing_tells_records_apart():
    from lt_faceparse.reporting.leaderboard import unique_labels

    records = [_record("segface", ["a"], 0), _record("segface", ["a"], 0), _record("bisenet", ["a"], 0)]
    assert unique_labels(records) == ["segface @64 #1", "segface @64 #2", "bisenet @64"]
