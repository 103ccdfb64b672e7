"""CelebAMask-HQ label cache: built in parallel, reused, stale and partial caches detected."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from conftest import _mask, make_celeba_tree, write_png
from test_data_merge import EXPECTED

from lt_faceparse.data import build_dataset, iter_labels
from lt_faceparse.data.cache import LabelCache, default_cache_base
from lt_faceparse.data.label_runs import LabelRuns
from lt_faceparse.errors import DataError


@pytest.fixture()
def tree(tmp_path):
    return make_celeba_tree(tmp_path / "celeba", {0: 1, 1: 2, 2: 3, 3: 4})


def _status(ds):
    return ds.cache_status().state


def test_cache_location_default_and_configurable(tree, tmp_path):
    ds = build_dataset("celebamask-hq", tree, "train", resolution=None)
    assert default_cache_base(tree) == tree / ".lt_faceparse_cache"
    assert ds.cache.directory.parent == tree / ".lt_faceparse_cache"
    other = build_dataset("celebamask-hq", tree, "train", resolution=None, cache_dir=tmp_path / "elsewhere")
    assert other.cache.directory.parent == tmp_path / "elsewhere"
    # (root, merge) is the key: another preset gets another folder
    zll = build_dataset("celebamask-hq", tree, "train", resolution=None, merge="zll")
    assert zll.cache.directory != ds.cache.directory


def test_parallel_first_pass_then_reuse(tree):
    ds = build_dataset("celebamask-hq", tree, "train", resolution=None)
    assert _status(ds) == "empty"
    labels = dict(iter_labels(ds, num_workers=2))
    assert sorted(labels) == [0, 1, 2, 3]
    for lab in labels.values():
        np.testing.assert_array_equal(lab, np.array(EXPECTED["segface"], dtype=np.uint8))
    assert _status(ds) == "complete"
    manifest = json.loads(ds.cache.manifest_path.read_text())
    assert manifest["merge_order"][0] == "neck" and manifest["num_entries"] == 4
    # second pass reads the cache: an entry overwritten with other content (same fingerprint) is served
    entry = ds.cache.entry_path("0")
    fp = ds.fingerprint(0)
    ds.cache.put("0", fp, LabelRuns.of(np.full((4, 4), 7, dtype=np.uint8)))
    assert entry.is_file()
    assert (ds.read_label(0) == 7).all()
    # num_workers at build time builds missing entries up front
    entry.unlink()
    build_dataset("celebamask-hq", tree, "train", resolution=None, num_workers=2)
    assert entry.is_file() and _status(ds) == "complete"


def test_stale_entries_are_detected_and_rebuilt(tree):
    ds = build_dataset("celebamask-hq", tree, "train", resolution=None)
    list(iter_labels(ds))
    assert _status(ds) == "complete"
    # a mask file changes (content and mtime): entry 1 becomes stale
    hat = _mask([(1, 0)])
    path = tree / "CelebAMask-HQ-mask-anno" / "0" / "00001_hat.png"
    write_png(path, hat)
    os.utime(path, ns=(1, 1))
    ds2 = build_dataset("celebamask-hq", tree, "train", resolution=None)
    st = ds2.cache_status()
    assert (st.state, st.stale, st.valid) == ("stale", 1, 3)
    label = ds2.read_label(1)
    assert label[1, 0] == 16 and label[0, 0] == 14  # hat moved: the new masks are used
    # a mask file removed: stale again
    (tree / "CelebAMask-HQ-mask-anno" / "0" / "00002_eye_g.png").unlink()
    ds3 = build_dataset("celebamask-hq", tree, "train", resolution=None)
    assert ds3.cache_status().stale == 1
    assert ds3.read_label(2)[1, 0] == 2  # no glasses any more: skin
    # a mask file added
    write_png(tree / "CelebAMask-HQ-mask-anno" / "0" / "00003_r_brow.png", _mask([(3, 0)]))
    ds4 = build_dataset("celebamask-hq", tree, "train", resolution=None)
    assert ds4.cache_status().stale == 1
    assert ds4.read_label(3)[3, 0] == 7


def test_partial_and_corrupt_cache(tree):
    ds = build_dataset("celebamask-hq", tree, "train", resolution=None)
    ds.read_label(0)  # one entry, no finished pass: partial
    st = ds.cache_status()
    assert (st.state, st.valid, st.missing) == ("partial", 1, 3)
    # an interrupted write leaves a truncated entry: never used, rebuilt
    entry = ds.cache.entry_path("0")
    entry.write_bytes(entry.read_bytes()[:20])
    assert ds.cache.get("0", ds.fingerprint(0)) is None
    np.testing.assert_array_equal(ds.read_label(0), np.array(EXPECTED["segface"], dtype=np.uint8))
    list(iter_labels(ds))
    assert _status(ds) == "complete"


def test_cache_for_other_merge_or_root_is_refused(tree, tmp_path):
    shared = tmp_path / "shared_cache"
    ds = build_dataset("celebamask-hq", tree, "train", resolution=None, cache_dir=shared)
    list(iter_labels(ds))
    # point another merge order at the very same folder: refused, naming the manifest
    with pytest.raises(DataError, match="merge_order"):
        LabelCache(ds.cache.directory, root=tree, dataset="celebamask-hq", merge_order=["skin", "hair"])
    with pytest.raises(DataError, match="root"):
        LabelCache(ds.cache.directory, root=tmp_path, dataset="celebamask-hq", merge_order=ds.merge_order)


def test_unwritable_cache_folder_falls_back_to_no_cache(tree, tmp_path):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the cache folder should go")
    ds = build_dataset("celebamask-hq", tree, "train", resolution=None, cache_dir=blocker)
    with pytest.warns(UserWarning, match="caching disabled"):
        label = ds.read_label(0)
    np.testing.assert_array_equal(label, np.array(EXPECTED["segface"], dtype=np.uint8))
    assert ds.cache is None and ds.cache_status() is None


def test_entry_cut_anywhere_or_damaged_is_never_used(tree):
    ds = build_dataset("celebamask-hq", tree, "train", resolution=None)
    expected = ds.read_label(0)
    fp = ds.fingerprint(0)
    entry = ds.cache.entry_path("0")
    assert entry.name == "0.runs"
    whole = entry.read_bytes()
    np.testing.assert_array_equal(ds.cache.get("0", fp).label(), expected)
    for cut in range(len(whole)):  # a crash can leave any prefix behind
        entry.write_bytes(whole[:cut])
        assert ds.cache.get("0", fp) is None, cut
        assert ds.cache.status({"0": fp}).valid == 0
    damaged = bytearray(whole)
    damaged[-6] ^= 0x55  # inside the deflated runs
    entry.write_bytes(bytes(damaged))
    assert ds.cache.get("0", fp) is None
    entry.write_bytes(whole)
    assert ds.cache.get("0", "another fingerprint") is None  # stale
    other = LabelCache(ds.cache.directory.parent / "other", root=tree, dataset="celebamask-hq",
                       merge_order=["skin", "hair"])
    other.put("0", fp, LabelRuns.of(expected))
    entry.write_bytes(other.entry_path("0").read_bytes())  # an entry of another merge order
    assert ds.cache.get("0", fp) is None and ds.cache.status({"0": fp}).valid == 0
    header = json.dumps({"source": fp, "bytes": 0}).encode()  # a header that names no merge order
    entry.write_bytes(b"LTFP-RUNS\n" + len(header).to_bytes(4, "little") + header)
    assert ds.cache.get("0", fp) is None and ds.cache.status({"0": fp}).valid == 0
