import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torchmetrics.classification import (MulticlassF1Score, MulticlassJaccardIndex, MulticlassPrecision,
                                         MulticlassRecall)

from lt_faceparse.metrics import ConfusionMatrix, scores_from_confusion
from lt_faceparse.taxonomy import get_taxonomy

I = 255  # ignore


def test_known_answer_with_ignore_and_absent_class():
    # K = 4; class 3 never appears in target nor prediction
    target = torch.tensor([[[0, 0, 1], [1, 2, I]]])
    preds = torch.tensor([[[0, 1, 1], [2, 2, 0]]])  # the last pixel is ignored in the target
    m = ConfusionMatrix(4)
    m.update(preds, target)
    expected = torch.tensor([[1, 1, 0, 0],
                             [0, 1, 1, 0],
                             [0, 0, 1, 0],
                             [0, 0, 0, 0]])
    assert torch.equal(m.compute(), expected)
    stats = m.per_image_stats()
    assert stats.gt.tolist() == [[2, 2, 1, 0]]
    assert stats.pred.tolist() == [[1, 2, 2, 0]]
    assert stats.inter.tolist() == [[1, 1, 1, 0]]
    assert stats.image_ids.tolist() == [0]


def test_logits_equal_ids_and_global_mode_equals_per_image_mode():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(3, 5, 6, 7, generator=g)
    target = torch.randint(0, 5, (3, 6, 7), generator=g)
    a, b, c = ConfusionMatrix(5), ConfusionMatrix(5), ConfusionMatrix(5, per_image=False)
    a.update(logits, target)
    b.update(logits.argmax(1), target)
    c.update(logits, target)
    assert torch.equal(a.compute(), b.compute())
    assert torch.equal(a.compute(), c.compute())
    assert a.compute().sum() == 3 * 6 * 7


def test_per_image_stats_rows_and_duplicate_ids():
    t1 = torch.tensor([[[0, 1], [1, 1]]])
    p1 = torch.tensor([[[0, 1], [0, 1]]])
    t2 = torch.tensor([[[2, 2], [I, 0]]])
    p2 = torch.tensor([[[2, 0], [1, 0]]])
    m = ConfusionMatrix(3)
    m.update(torch.cat([p2, p1]), torch.cat([t2, t1]), image_ids=torch.tensor([7, 3]))
    m.update(p2, t2, image_ids=torch.tensor([7]))  # a padded duplicate of image 7: counted once
    stats = m.per_image_stats()
    assert stats.image_ids.tolist() == [3, 7]  # sorted by id
    assert stats.gt.tolist() == [[1, 3, 0], [1, 0, 2]]
    assert stats.pred.tolist() == [[2, 2, 0], [2, 0, 1]]
    assert stats.inter.tolist() == [[1, 2, 0], [1, 0, 1]]
    cm = m.compute()
    assert cm.sum() == 7  # 4 + 3 valid pixels, the duplicate not added
    assert torch.equal(cm.sum(1), torch.tensor([2, 3, 2]))


def test_rejects_ids_outside_taxonomy():
    m = ConfusionMatrix(3)
    with pytest.raises(ValueError, match="outside 0..2"):
        m.update(torch.zeros(1, 2, 2, dtype=torch.long), torch.tensor([[[0, 5], [1, 1]]]))
    with pytest.raises(ValueError, match="preds"):
        m.update(torch.tensor([[[0, 3], [1, 1]]]), torch.zeros(1, 2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="ignore_index must lie"):
        ConfusionMatrix(3, ignore_index=2)


def test_equals_torchmetrics_on_random_inputs():
    tax = get_taxonomy("celebamask-hq")
    k = tax.num_classes
    g = torch.Generator().manual_seed(0)
    ours = ConfusionMatrix(k)
    refs = {name: cls(k, average=None, ignore_index=255) for name, cls in
            [("f1", MulticlassF1Score), ("iou", MulticlassJaccardIndex), ("precision", MulticlassPrecision),
             ("recall", MulticlassRecall)]}
    for _ in range(3):
        target = torch.randint(0, k - 2, (4, 24, 24), generator=g)  # classes 17, 18 rare or absent
        target[torch.rand(4, 24, 24, generator=g) < 0.1] = 255
        target[0, 0, 0] = 17  # present in the ground truth only -> F1 0
        preds = torch.where(torch.rand(4, 24, 24, generator=g) < 0.6, target,
                            torch.randint(0, k - 2, (4, 24, 24), generator=g))
        preds[target == 255] = 0
        preds[0, 0, 0] = 0
        ours.update(preds, target)
        for r in refs.values():
            r.update(preds, target)
    scores = scores_from_confusion(ours.compute(), tax)
    assert scores["undefined_classes"] == ["neck_l"]  # class 18: absent from both
    for name, r in refs.items():
        mine = np.array([c[name] for c in scores["per_class"]])
        theirs = r.compute().numpy()
        defined = ~np.isnan(mine)
        assert defined.sum() == k - 1
        np.testing.assert_allclose(mine[defined], theirs[defined], rtol=1e-5, atol=1e-6)
    assert scores["per_class"][17]["f1"] == 0.0


# ---- 2-process gloo run -------------------------------------------------------------------------

K, N = 5, 7


def _data(i: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(100 + i)
    target = torch.randint(0, K, (8, 8), generator=g)
    target[torch.rand(8, 8, generator=g) < 0.2] = 255
    preds = torch.randint(0, K, (8, 8), generator=g)
    return preds, target


def _update(metric: ConfusionMatrix, ids: list[int], batch_size: int) -> None:
    for s in range(0, len(ids), batch_size):
        chunk = ids[s:s + batch_size]
        pairs = [_data(i) for i in chunk]
        metric.update(torch.stack([p for p, _ in pairs]), torch.stack([t for _, t in pairs]),
                      image_ids=torch.tensor(chunk))


SHARDS = {
    # DistributedSampler(shuffle=False) layout: 7 images padded to 8, image 0 repeated on rank 1
    "padded": {0: [0, 2, 4, 6], 1: [1, 3, 5, 0]},
    # an unpadded sharding in which rank 1 scores nothing
    "empty_rank": {0: list(range(N)), 1: []},
}


def _worker(rank: int, world: int, init_file: str, out: str, layout: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        shards = SHARDS[layout]
        m = ConfusionMatrix(K)
        _update(m, shards[rank], batch_size=3 if rank == 0 else 2)
        cm = m.compute()
        stats = m.per_image_stats()
        if rank == 0:
            torch.save({"cm": cm, "gt": torch.from_numpy(stats.gt), "pred": torch.from_numpy(stats.pred),
                        "inter": torch.from_numpy(stats.inter), "ids": torch.from_numpy(stats.image_ids)}, out)
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("layout", sorted(SHARDS))
def test_two_process_gloo_equals_one_process(tmp_path, layout):
    out = tmp_path / "rank0.pt"
    # fork: the children inherit the imported modules (spawn would re-import torch per process)
    mp.start_processes(_worker, args=(2, str(tmp_path / "store"), str(out), layout), nprocs=2, join=True,
                       start_method="fork")
    got = torch.load(out, weights_only=True)
    single = ConfusionMatrix(K)
    _update(single, list(range(N)), batch_size=4)
    stats = single.per_image_stats()
    assert torch.equal(got["cm"], single.compute())
    assert got["ids"].tolist() == list(range(N))
    assert np.array_equal(got["gt"].numpy(), stats.gt)
    assert np.array_equal(got["pred"].numpy(), stats.pred)
    assert np.array_equal(got["inter"].numpy(), stats.inter)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_accumulation_equals_cpu():
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(4, 19, 64, 64, generator=g)
    target = torch.randint(0, 19, (4, 64, 64), generator=g)
    target[:, :5] = 255
    cpu, gpu = ConfusionMatrix(19), ConfusionMatrix(19).to("cuda")
    cpu.update(logits, target, image_ids=torch.arange(4))
    gpu.update(logits.cuda(), target.cuda(), image_ids=torch.arange(4).cuda())
    assert torch.equal(cpu.compute(), gpu.compute().cpu())
    assert np.array_equal(cpu.per_image_stats().inter, gpu.per_image_stats().inter)
    with pytest.raises(ValueError, match="outside"):
        gpu.update(torch.full((1, 4, 4), 19, device="cuda"), torch.zeros(1, 4, 4, dtype=torch.long, device="cuda"))


def test_matrix_and_per_image_stats_agree_with_an_independent_numpy_count():
    """Every pixel tallied one by one with np.add.at (no bincount, no torch), per image and pooled."""
    from lt_faceparse.metrics.throughput import _numpy_per_image_histogram

    rng = np.random.default_rng(3)
    k, n, h, w = 7, 5, 9, 11
    target = rng.integers(0, k, (n, h, w))
    target[rng.random((n, h, w)) < 0.15] = I
    target[:, :, 0] = 6  # class 6 only in the ground truth's first column
    preds = rng.integers(0, k - 1, (n, h, w))  # class 6 never predicted
    metric = ConfusionMatrix(k)
    metric.update(torch.from_numpy(preds[:2]), torch.from_numpy(target[:2]), image_ids=torch.tensor([0, 1]))
    metric.update(torch.from_numpy(preds[2:]), torch.from_numpy(target[2:]), image_ids=torch.tensor([2, 3, 4]))

    expected = np.zeros((k, k), np.int64)
    gt, pred, inter = (np.zeros((n, k), np.int64) for _ in range(3))
    for i in range(n):
        valid = target[i] != I
        t, p = target[i][valid], preds[i][valid]
        np.add.at(expected, (t, p), 1)
        np.add.at(gt[i], t, 1)
        np.add.at(pred[i], p, 1)
        np.add.at(inter[i], t[t == p], 1)
    np.testing.assert_array_equal(metric.compute().numpy(), expected)
    stats = metric.per_image_stats()
    np.testing.assert_array_equal(stats.gt, gt)
    np.testing.assert_array_equal(stats.pred, pred)
    np.testing.assert_array_equal(stats.inter, inter)
    assert expected[6].sum() == gt[:, 6].sum() > 0 and expected[:, 6].sum() == 0
    # the throughput check's numpy baseline (what it checks our metric against) counts the same
    np.testing.assert_array_equal(
        _numpy_per_image_histogram([preds], [target.astype(np.uint8)], k), expected)


def test_throughput_helpers_report_consistent_numbers():
    from lt_faceparse.metrics.throughput import bootstrap_throughput, confusion_throughput

    r = confusion_throughput(num_classes=7, batch_size=2, size=16, num_batches=2, repeats=1)
    assert r["pixels"] == 2 * 2 * 16 * 16 and r["num_classes"] == 7
    assert r["speedup"] == pytest.approx(r["ours_per_image_px_s"] / r["numpy_per_image_px_s"])
    assert r["speedup_matrix_only"] == pytest.approx(r["ours_matrix_only_px_s"] / r["numpy_per_image_px_s"])
    b = bootstrap_throughput(num_images=50, n_resamples=20)
    assert (b["num_images"], b["n_resamples"], b["num_classes"]) == (50, 20, 19)
    assert b["bootstrap_ci_s"] > 0 and b["paired_bootstrap_s"] > 0
