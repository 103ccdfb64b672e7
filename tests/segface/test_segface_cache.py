"""DerivedCache: kept while the sources are unchanged, recomputed after an in-place write, bypassed with gradients."""

import torch

from segface.cache import DerivedCache, caching_allowed


def test_cache_hits_until_a_source_changes_in_place():
    cache, calls = DerivedCache(), []
    w = torch.nn.Parameter(torch.ones(3))

    def compute():
        calls.append(1)
        return w * 2

    with torch.no_grad():
        first = cache.get("k", [w], compute)
        assert cache.get("k", [w], compute) is first and len(calls) == 1
        assert not first.requires_grad  # computed without recording a graph
        w.add_(1.0)  # the version counter moves
        second = cache.get("k", [w], compute)
    assert len(calls) == 2 and torch.equal(second, torch.full((3,), 4.0))
    with torch.no_grad():
        assert cache.get("other", [w], compute) is not second  # keys are separate entries


def test_cache_is_bypassed_while_gradients_flow():
    cache = DerivedCache()
    w = torch.nn.Parameter(torch.ones(2))
    assert not caching_allowed([w])
    out = cache.get("k", [w], lambda: w * 3)
    out.sum().backward()  # a live graph, not a cached constant
    assert torch.equal(w.grad, torch.full((2,), 3.0))
    with torch.no_grad():
        assert caching_allowed([w])


def test_cache_holds_at_most_max_entries():
    cache = DerivedCache(max_entries=2)
    x = torch.zeros(1)
    with torch.inference_mode():
        for key in range(5):
            cache.get(key, [x], lambda: x + 1)
    assert len(cache._entries) <= 2


def test_products_computed_under_autocast_are_kept_apart_from_full_precision_ones():
    cache = DerivedCache()
    a, b = torch.randn(4, 4), torch.randn(4, 4)
    with torch.inference_mode():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = cache.get("ab", [a, b], lambda: a @ b)
        full = cache.get("ab", [a, b], lambda: a @ b)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert cache.get("ab", [a, b], lambda: a @ b) is low
    assert low.dtype == torch.bfloat16 and full.dtype == torch.float32
    assert torch.equal(full, a @ b)


def test_segface_runs_in_fp32_after_a_bf16_autocast_pass():
    from segface.model import SegFace

    torch.manual_seed(0)
    model = SegFace("mobilenet", num_classes=3).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            model(x)  # caches the folded fusion weights in bf16
        assert model(x).dtype == torch.float32  # fp32 pass: its own fp32 entries, no dtype clash
