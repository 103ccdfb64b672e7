"""Training-speed harness: step timing of the default path vs the literal formulation, data loading, end to end."""

from __future__ import annotations

import pytest

from lt_faceparse.data.build import build_dataset
from lt_faceparse.speed.loading import loader_images_per_s, per_item_ms
from lt_faceparse.speed.training import (format_end_to_end, format_step_rows, synthface_celebamask,
                                         train_end_to_end, training_step_rows)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def celeba_root(tmp_path_factory):
    return synthface_celebamask(tmp_path_factory.mktemp("synth"), 64, 12)


def test_step_rows_compare_the_cpu_default_with_the_literal_loop():
    rows = training_step_rows(["mobilenet"], device="cpu", resolution=32, batch_size=2, precision="bf16",
                              channels_last=True, rounds=2, steps=1, warmup=0, num_classes=5)
    by_setting = {r["setting"]: r for r in rows}
    assert list(by_setting) == ["literal", "default", "default channels-last"]  # no compile on the CPU: no eager twin
    literal, default = by_setting["literal"], by_setting["default"]
    assert (literal["formulation"], literal["compile"], literal["optimizer"]) == ("literal", False, "AdamW (torch default)")
    assert (default["formulation"], default["compile"], default["optimizer"]) == ("cpu", False, "AdamW (torch default)")
    assert by_setting["default channels-last"]["channels_last"] is True
    for r in rows:
        assert r["precision"] == "fp32"  # autocast applies on CUDA only, as in train
        assert len(r["ms_rounds"]) == 2 and r["ms_per_step"] == pytest.approx(sum(r["ms_rounds"]) / 2)
        assert r["images_per_s"] == pytest.approx(2e3 / r["ms_per_step"])
        assert r["ratio_to_literal"] == pytest.approx(r["ms_per_step"] / literal["ms_per_step"])
    table = format_step_rows(rows)
    assert "| mobilenet | 32 | 2 | fp32 | cpu | default | cpu | eager | AdamW (torch default) |" in table
    assert "median over 2 interleaved rounds" in table


def test_generated_tree_has_celebamask_proportions(celeba_root):
    ds = build_dataset("celebamask-hq", celeba_root, "all", resolution=64)
    assert len(ds) == 12
    assert ds.read_image(0).shape == (128, 128, 3) and ds.read_label(0).shape == (64, 64)  # 2x images, like 1024/512
    assert ds.image_path(0).suffix == ".jpg"


def test_per_item_and_loader_rates(celeba_root):
    ds = build_dataset("celebamask-hq", celeba_root, "all", resolution=64)
    item = per_item_ms(ds, items=6, rounds=2)
    assert item["items"] == 6 and len(item["ms_rounds"]) == 2
    assert item["images_per_s_per_worker"] == pytest.approx(1e3 / item["ms_per_item"])
    for workers in (0, 1):
        loading = loader_images_per_s(ds, 4, workers, epochs=2)
        assert loading["images_per_epoch"] == 12 and len(loading["epoch_rates"]) == 2
        assert loading["images_per_s"] > 0 and loading["num_workers"] == workers


@pytest.mark.slow
def test_end_to_end_runs_the_engine_and_reports_against_the_model_only_rate(celeba_root, tmp_path):
    e2e = train_end_to_end(celeba_root, tmp_path / "run", device="cpu", resolution=64, batch_size=4, epochs=2,
                           num_workers=1, log_every=1)
    assert (e2e["train_images"], e2e["steps_per_epoch"], e2e["num_workers"], e2e["precision"]) == (12, 3, 1, "fp32")
    assert e2e["images_per_s"] > 0 and e2e["steady_images_per_s"] > 0
    assert (tmp_path / "run" / "final.safetensors").is_file()
    table = format_end_to_end(e2e, {"images_per_s": 2 * e2e["images_per_s"]})
    assert "| 0.500 |" in table and "1 loader workers" in table
