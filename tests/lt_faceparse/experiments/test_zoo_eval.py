"""`zoo eval`: two registered stand-in models (release-format MobileNetV3 SegFace at 64 px) re-scored
on a generated CelebAMask-HQ tree under one protocol, the side-by-side leaderboard, resuming."""

import csv
import dataclasses
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "zoo"))

from lt_faceparse.cli import main  # noqa: E402
from lt_faceparse.data.synthetic import generate_synthface  # noqa: E402
from lt_faceparse.records import load_record  # noqa: E402
from lt_faceparse.zoo import get_entry, pretrained_weights, registry  # noqa: E402
from zoo_testdata import put_in_hf_cache, write_release_mobilenet  # noqa: E402

REPO = "test/zoo"
# stand-ins published as the paper's Swin-B @224 row (per-class values) and Table 2a's MobileNetV3 (mean only)
STAND_INS = {"test/mobilenet_a_64": ("1b/segface-224", 87.47, 0), "test/mobilenet_b_64": ("2a/mobilenet-v3", 87.91, 1)}


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread):
    """One torch thread (tests/conftest.py)."""


@pytest.fixture(scope="module")
def celeba_tree(tmp_path_factory):
    return generate_synthface(tmp_path_factory.mktemp("synth") / "celebamask-hq", fmt="celebamask-hq",
                              num_images=12, size=64, seed=5, num_workers=0, image_scale=2)


@pytest.fixture
def stand_ins(tmp_path, monkeypatch):
    """Two release files in a Hugging Face cache of their own, registered as released models."""
    from huggingface_hub import constants

    cache = tmp_path / "hf-cache"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    template = get_entry("segface/mobilenet_celeba_512")
    for name, (published_id, mean, seed) in STAND_INS.items():
        folder = name.split("/")[1]
        release = write_release_mobilenet(tmp_path / "release" / folder / "model_299.pt", seed=seed)
        put_in_hf_cache(cache, REPO, f"{folder}/model_299.pt", release)
        monkeypatch.setitem(registry._ZOO, name, dataclasses.replace(
            template, name=name, hub_repo=REPO, file=f"{folder}/model_299.pt", resolution=64,
            published_id=published_id, published_mean_f1=mean, published_source=f"stand-in for {published_id}"))
    return list(STAND_INS)


def _zoo_eval(root, out, *extra):
    return main(["zoo", "eval", "--dataset", "celebamask-hq", "--root", str(root), "--models", "test/*",
                 "--out", str(out), "--bootstrap", "40", "--speed-runs", "1", "--device", "cpu", *extra])


def test_zoo_eval_scores_under_one_protocol_side_by_side_and_resumes(celeba_tree, stand_ins, tmp_path,
                                                                     monkeypatch, capsys):
    out = tmp_path / "zoo"
    assert _zoo_eval(celeba_tree, out) == 0
    assert "scored 2 model(s), 0 already scored" in capsys.readouterr().out
    records = {name: load_record(out / name.replace("/", "--")) for name in stand_ins}
    for name, record in records.items():
        prov = record.provenance
        assert prov.zoo_model == name and prov.licence == get_entry(name).licence.to_dict()
        assert (prov.split, prov.merge, prov.protocol, prov.resolution) == ("test", "segface", "native", 64)
        assert prov.speed["images_per_s"] > 0 and prov.speed["batch_size"] == 1
        assert record.ci["n_resamples"] == 40 and record.num_images == records[stand_ins[0]].num_images > 0
    a, b = records.values()
    assert a.per_class_f1() != b.per_class_f1()  # two different models were scored

    rows = {r["model"]: r for r in csv.DictReader((out / "zoo_leaderboard.csv").open())}
    for name, record in records.items():
        published = STAND_INS[name][1]
        assert rows[name]["mean F1 (re-scored)"] == f"{100 * record.mean_f1:.2f}"
        assert rows[name]["mean F1 (published)"] == f"{published:.2f}"
        assert float(rows[name]["Δ"]) == pytest.approx(100 * record.mean_f1 - published, abs=0.006)
    per_model = {r["class"]: r for r in csv.DictReader((out / "models" / "test_mobilenet_a_64.csv").open())}
    hair = a.per_class_f1()["hair"]
    assert per_model["Hair"]["F1 (published)"] == "95.70"  # Table 1b, Swin-B @224
    assert float(per_model["Hair"]["Δ"]) == pytest.approx(100 * hair - 95.70, abs=0.006)
    side = {r["class"]: r for r in csv.DictReader((out / "zoo_per_class.csv").open())}
    assert side["Hair"]["test/mobilenet_b_64"] == f"{100 * b.per_class_f1()['hair']:.2f}"
    assert "protocol native" in (out / "zoo_leaderboard.md").read_text()

    # a rerun scores nothing again
    import lt_faceparse.engine.evaluate as evaluate

    monkeypatch.setattr(evaluate, "evaluate_checkpoint", lambda *a, **k: pytest.fail("scored again"))
    assert _zoo_eval(celeba_tree, out) == 0
    assert "scored 0 model(s), 2 already scored (skipped)" in capsys.readouterr().out
    # ... and refuses to mix in another protocol
    assert _zoo_eval(celeba_tree, out, "--protocol", "input") == 2
    assert "scored under another protocol: protocol 'native' (now 'input')" in capsys.readouterr().err


def test_records_of_a_converted_file_carry_its_licence_terms(celeba_tree, stand_ins, tmp_path):
    from lt_faceparse.engine.evaluate import evaluate_checkpoint

    weights = pretrained_weights(stand_ins[0])
    record = evaluate_checkpoint(weights, "celebamask-hq", celeba_tree, "test", device="cpu", n_resamples=0)
    assert record.provenance.licence == get_entry(stand_ins[0]).licence.to_dict()


def test_no_matching_model_is_a_clear_error(celeba_tree, capsys):
    assert main(["zoo", "eval", "--dataset", "lapa", "--root", str(celeba_tree), "--models", "segface/mobilenet*"]) == 2
    assert "no released model of lapa matches segface/mobilenet*" in capsys.readouterr().err


def test_eval_by_name_writes_a_record_with_the_zoo_name_and_licence(celeba_tree, stand_ins, tmp_path):
    assert main(["eval", "--model", stand_ins[1], "--dataset", "celebamask-hq", "--root", str(celeba_tree),
                 "--split", "test", "--out", str(tmp_path / "rec"), "--bootstrap", "0", "--device", "cpu"]) == 0
    prov = load_record(tmp_path / "rec").provenance
    assert prov.zoo_model == stand_ins[1] and prov.licence["summary"].startswith("non-commercial research only")
    assert prov.merge == "segface" and prov.resolution == 64
    assert Path(prov.weights).parent.name == "lt-faceparse"  # the converted file cached beside the download
