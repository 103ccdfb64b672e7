"""Class priors: counts of the training split against a direct count, the cache (hit, stale tree),
``class_frequencies.csv`` round trip and the errors that name the file."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lt_faceparse.analysis.frequency import compute_class_frequencies, write_frequency_report
from lt_faceparse.data import build_dataset
from lt_faceparse.errors import DataError
from lt_faceparse.engine.longtail_training import resolve_priors
from lt_faceparse.longtail.priors import ClassPriors, read_priors_csv, split_statistics


def _train(root):
    return build_dataset("celebamask-hq", root, "train", resolution=32, merge="segface")


def test_split_statistics_count_pixels_and_images_of_every_label(synth_root, tmp_path):
    ds = _train(synth_root)
    stats = split_statistics(ds, cache_dir=tmp_path)
    k = ds.taxonomy.num_classes
    counts = np.stack([np.bincount(ds.read_label(i).ravel(), minlength=256)[:k] for i in range(len(ds))])
    assert stats.priors.pixel_counts.tolist() == counts.sum(0).tolist()
    assert stats.presence.tolist() == (counts > 0).tolist()
    assert stats.priors.images_with_class.tolist() == (counts > 0).sum(0).tolist()
    assert stats.priors.num_images == len(ds) == 24
    assert stats.priors.class_names == tuple(ds.taxonomy.names)
    assert "train split of" in stats.priors.source and "merge segface" in stats.priors.source
    pi = stats.priors.pixel_prior()
    assert pi.sum() == pytest.approx(1.0) and np.isfinite(stats.priors.log_pixel_prior()).all()
    assert stats.priors.presence() == pytest.approx((counts > 0).mean(0))


def test_statistics_are_cached_and_recounted_when_a_label_changes(synth_root, tmp_path, monkeypatch):
    import shutil

    root = tmp_path / "tree"
    shutil.copytree(synth_root, root, ignore=shutil.ignore_patterns(".lt_faceparse_cache"))
    first = split_statistics(_train(root))
    cached = list((root / ".lt_faceparse_cache" / "class_priors").glob("train-*.npz"))
    assert len(cached) == 1

    calls = []
    import lt_faceparse.longtail.priors as priors  # the one counter, as the priors module calls it

    original = priors.compute_class_frequencies

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(priors, "compute_class_frequencies", counting)
    again = split_statistics(_train(root))
    assert not calls and np.array_equal(again.presence, first.presence)
    assert again.priors.pixel_counts.tolist() == first.priors.pixel_counts.tolist()

    # a mask file of a training image changes: the cache is stale and the split is counted again
    ds = _train(root)
    skin = Path(ds.mask_files(0)["skin"])
    skin.unlink()
    from PIL import Image

    Image.fromarray(np.zeros((32, 32), np.uint8)).save(skin)
    os.utime(skin, (1, 1))
    changed = split_statistics(_train(root))
    assert calls and changed.priors.pixel_counts.tolist() != first.priors.pixel_counts.tolist()


def test_priors_round_trip_through_class_frequencies_csv(synth_root, tmp_path):
    ds = _train(synth_root)
    table = compute_class_frequencies(ds)
    write_frequency_report(table, tmp_path / "freq")
    read = read_priors_csv(tmp_path / "freq" / "class_frequencies.csv", ds.taxonomy)
    stats = split_statistics(ds, cache=False)
    assert read.pixel_counts.tolist() == stats.priors.pixel_counts.tolist()
    assert read.images_with_class.tolist() == stats.priors.images_with_class.tolist()
    assert read.num_images == 24 and read.source.startswith("file ")
    assert resolve_priors(str(tmp_path / "freq" / "class_frequencies.csv"), ds.taxonomy, None).num_images == 24
    inline = resolve_priors(read.to_dict(), ds.taxonomy, None)
    assert inline.pixel_counts.tolist() == read.pixel_counts.tolist()
    assert resolve_priors(None, ds.taxonomy, stats) is stats.priors


def test_bad_class_frequency_files_are_named(synth_root, tmp_path):
    ds = _train(synth_root)
    write_frequency_report(compute_class_frequencies(ds), tmp_path)
    csv = tmp_path / "class_frequencies.csv"
    frame = pd.read_csv(csv)
    with pytest.raises(DataError, match="not found"):
        read_priors_csv(tmp_path / "missing.csv")
    frame.drop(columns=["pixel_count"]).to_csv(tmp_path / "a.csv", index=False)
    with pytest.raises(DataError, match=r"a.csv: missing columns \['pixel_count'\]"):
        read_priors_csv(tmp_path / "a.csv")
    bad = frame.copy()
    bad.loc[3, "presence_prob"] = bad.loc[3, "presence_prob"] / 2
    bad.to_csv(tmp_path / "b.csv", index=False)
    with pytest.raises(DataError, match="b.csv: images_with_class / presence_prob disagree"):
        read_priors_csv(tmp_path / "b.csv")
    from lt_faceparse.taxonomy import get_taxonomy

    with pytest.raises(DataError, match="class_frequencies.csv: class priors name the classes"):
        read_priors_csv(csv, get_taxonomy("lapa"))


def test_zero_counts_stay_finite():
    p = ClassPriors(("a", "b"), np.array([10, 0]), np.array([2, 0]), 2, "x")
    assert np.isfinite(p.log_pixel_prior()).all() and p.presence().tolist() == [1.0, 0.0]
    assert p.counts("images").tolist() == [2.0, 1.0]
