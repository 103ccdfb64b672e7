import math

import pytest
import torch

from baselines.ohem import OhemCrossEntropy, ohem_cross_entropy


def _two_class_logits(margins: list[float]) -> torch.Tensor:
    """1 x 2 x 1 x N logits whose class-0 loss is log(1 + exp(-m)) for margin m."""
    m = torch.tensor(margins)
    return torch.stack([m, torch.zeros_like(m)])[None, :, None, :]


def _loss(m: float) -> float:
    return math.log1p(math.exp(-m))


def test_keeps_all_pixels_below_threshold_probability_when_they_outnumber_min_kept():
    # 32 pixels -> min_kept 2. Margins 0 and -1 give p(true) 0.5 and 0.27 < 0.7 (hard);
    # margin 3 gives p = 0.95 (easy). Five hard pixels > 2: the mean runs over exactly those five.
    margins = [0.0, -1.0, 0.0, -1.0, 0.0] + [3.0] * 27
    target = torch.zeros(1, 1, 32, dtype=torch.long)
    expected = (3 * _loss(0.0) + 2 * _loss(-1.0)) / 5
    assert ohem_cross_entropy(_two_class_logits(margins), target).item() == pytest.approx(expected, rel=1e-6)


def test_falls_back_to_the_hardest_min_kept_pixels():
    # Only one pixel is hard (p = 0.5); min_kept = 32 // 16 = 2 -> it and the next-hardest (margin 2).
    margins = [0.0, 2.0] + [5.0] * 30
    target = torch.zeros(1, 1, 32, dtype=torch.long)
    expected = (_loss(0.0) + _loss(2.0)) / 2
    assert ohem_cross_entropy(_two_class_logits(margins), target).item() == pytest.approx(expected, rel=1e-6)


def test_threshold_is_on_probability_and_ignored_pixels_do_not_count():
    # p(true) = 0.69 is hard, 0.71 is easy at threshold 0.7.
    hard, easy = math.log(0.69 / 0.31), math.log(0.71 / 0.29)
    margins = [hard] * 3 + [easy] * 29
    target = torch.zeros(1, 1, 32, dtype=torch.long)
    assert ohem_cross_entropy(_two_class_logits(margins), target).item() == pytest.approx(-math.log(0.69), rel=1e-5)
    # Ignoring the three hard pixels leaves only easy ones: the two hardest (easy) pixels are averaged.
    target[..., :3] = 255
    assert ohem_cross_entropy(_two_class_logits(margins), target).item() == pytest.approx(-math.log(0.71), rel=1e-5)


def test_module_matches_function_and_validates():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 4, 8, 8, generator=g)
    target = torch.randint(0, 4, (2, 8, 8), generator=g)
    assert OhemCrossEntropy()(logits, target) == ohem_cross_entropy(logits, target)
    with pytest.raises(ValueError):
        ohem_cross_entropy(logits, target, threshold=1.5)
