"""Loss remedies against hand computations (2 pixels x 3 classes), class weights, and how each
remedy combines with the models' own losses (CE + Dice, OHEM, plain CE, BiSeNet's heads)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lt_faceparse.longtail.class_weights import effective_number_weights, inverse_frequency_weights
from lt_faceparse.longtail.focal import FocalLoss
from lt_faceparse.longtail.logit_adjusted import LogitAdjustedLoss
from lt_faceparse.longtail.model_loss import attach_loss_remedy, build_pixel_loss
from lt_faceparse.longtail.priors import ClassPriors
from lt_faceparse.longtail.seesaw import SeesawLoss
from lt_faceparse.longtail.weighted_ce import WeightedCrossEntropy

# two pixels (a 1 x 3 x 1 x 2 logit map): pixel A = (2, 1, 0) labelled 0, pixel B = (0, 1, 3) labelled 1
Z = [[2.0, 1.0, 0.0], [0.0, 1.0, 3.0]]
Y = [0, 1]
LOGITS = torch.tensor(Z).T.reshape(1, 3, 1, 2)
TARGET = torch.tensor(Y).reshape(1, 1, 2)


def _log_softmax(z: list[float]) -> list[float]:
    lse = math.log(sum(math.exp(v) for v in z))
    return [v - lse for v in z]


def _ce(z: list[float], y: int) -> float:
    return -_log_softmax(z)[y]


def test_hand_values_of_the_example():
    assert _ce(Z[0], 0) == pytest.approx(0.407606, abs=1e-6)
    assert _ce(Z[1], 1) == pytest.approx(2.169846, abs=1e-6)


def test_weighted_ce_is_the_pixel_mean_of_w_y_times_ce():
    w = [0.5, 2.0, 0.5]
    expected = (0.5 * 0.407606 + 2.0 * 2.169846) / 2  # mean over pixels of w_y * CE (Σ w = C = 3)
    assert expected == pytest.approx(2.271748, abs=1e-6)
    assert WeightedCrossEntropy(w)(LOGITS, TARGET).item() == pytest.approx(expected, abs=1e-5)


def test_focal_loss_hand_value_and_gamma_zero_is_cross_entropy():
    p = [math.exp(-_ce(Z[0], 0)), math.exp(-_ce(Z[1], 1))]
    expected = ((1 - p[0]) ** 2 * _ce(Z[0], 0) + (1 - p[1]) ** 2 * _ce(Z[1], 1)) / 2
    assert expected == pytest.approx(0.874124, abs=1e-6)
    assert FocalLoss(2.0)(LOGITS, TARGET).item() == pytest.approx(expected, abs=1e-5)
    alpha = [0.5, 2.0, 0.5]
    weighted = (0.5 * (1 - p[0]) ** 2 * _ce(Z[0], 0) + 2.0 * (1 - p[1]) ** 2 * _ce(Z[1], 1)) / 2
    assert FocalLoss(2.0, alpha)(LOGITS, TARGET).item() == pytest.approx(weighted, abs=1e-5)
    assert FocalLoss(0.0)(LOGITS, TARGET).item() == pytest.approx((0.407606 + 2.169846) / 2, abs=1e-5)


def test_logit_adjusted_loss_adds_tau_log_prior():
    prior = [0.7, 0.2, 0.1]
    for tau in (1.0, 0.5):
        shifted = [[z + tau * math.log(p) for z, p in zip(row, prior)] for row in Z]
        expected = (_ce(shifted[0], 0) + _ce(shifted[1], 1)) / 2
        loss = LogitAdjustedLoss(np.log(prior), tau)(LOGITS, TARGET).item()
        assert loss == pytest.approx(expected, abs=1e-5)
    # τ = 1: the frequent class 0 (pixel A) costs less than plain CE (0.4076), the rarer class 1 (pixel B) less too
    # because its competitor, class 2, is rarer still
    assert _ce([2 + math.log(0.7), 1 + math.log(0.2), math.log(0.1)], 0) == pytest.approx(0.117287, abs=1e-6)
    assert _ce([math.log(0.7), 1 + math.log(0.2), 3 + math.log(0.1)], 1) == pytest.approx(1.788773, abs=1e-6)


def test_seesaw_hand_value_with_accumulated_counts():
    p, q = 0.8, 2.0
    loss = SeesawLoss(3, p, q)
    loss.load_training_state({"accumulated": torch.tensor([98.0, 9.0, 1.0], dtype=torch.float64)})
    value = loss(LOGITS, TARGET).item()
    n = [99.0, 10.0, 1.0]  # the batch's pixels (one of class 0, one of class 1) are counted first
    assert loss.training_state()["accumulated"].tolist() == n
    # pixel A (class 0, the most frequent): mitigation (N_j / N_0)^p for both negatives, no compensation
    s_a = [1.0, (n[1] / n[0]) ** p, (n[2] / n[0]) ** p]
    sig_a = [math.exp(v) for v in _log_softmax(Z[0])]
    assert sig_a[1] < sig_a[0] and sig_a[2] < sig_a[0]
    loss_a = -math.log(math.exp(Z[0][0]) / sum(s * math.exp(z) for s, z in zip(s_a, Z[0])))
    # pixel B (class 1): class 0 is more frequent (M = 1) and less likely (C = 1); class 2 is rarer
    # (M = (1/10)^p) and more likely (C = (σ_2 / σ_1)^q)
    sig_b = [math.exp(v) for v in _log_softmax(Z[1])]
    s_b = [1.0, 1.0, (n[2] / n[1]) ** p * (sig_b[2] / sig_b[1]) ** q]
    loss_b = -math.log(math.exp(Z[1][1]) / sum(s * math.exp(z) for s, z in zip(s_b, Z[1])))
    assert value == pytest.approx((loss_a + loss_b) / 2, abs=1e-5)
    assert value != pytest.approx((0.407606 + 2.169846) / 2, abs=1e-2)  # not plain CE


def test_seesaw_with_p_q_zero_is_cross_entropy_and_counts_only_in_training():
    loss = SeesawLoss(3, 0.0, 0.0)
    assert loss(LOGITS, TARGET).item() == pytest.approx((0.407606 + 2.169846) / 2, abs=1e-5)
    assert loss.accumulated.tolist() == [1.0, 1.0, 0.0]
    loss.eval()
    loss(LOGITS, TARGET)
    assert loss.accumulated.tolist() == [1.0, 1.0, 0.0]
    with pytest.raises(ValueError, match=r"\(2,\) counts, the loss has 3 classes"):
        loss.load_training_state({"accumulated": torch.zeros(2)})


def test_ignored_pixels_count_nowhere_and_an_all_ignored_batch_gives_zero():
    target = torch.tensor([[[0, 255]]])
    makers = (lambda: WeightedCrossEntropy([0.5, 2.0, 0.5]), lambda: FocalLoss(2.0),
              lambda: LogitAdjustedLoss(np.log([0.7, 0.2, 0.1])), lambda: SeesawLoss(3))
    for make in makers:
        alone = make()(LOGITS[..., :1], target[..., :1])
        loss = make()
        assert loss(LOGITS, target).item() == pytest.approx(alone.item(), abs=1e-6)
        logits = LOGITS.clone().requires_grad_(True)
        zero = loss(logits, torch.full_like(target, 255))
        assert zero.item() == 0.0
        zero.backward()
        assert logits.grad.abs().sum() == 0


def test_effective_number_weights_for_given_counts():
    counts = [1000, 100, 10]
    beta = 0.99
    raw = [(1 - beta) / (1 - beta ** n) for n in counts]
    expected = [3 * r / sum(raw) for r in raw]
    weights = effective_number_weights(np.array(counts), beta)
    assert weights == pytest.approx(expected, rel=1e-9)
    assert weights == pytest.approx([0.230147, 0.363011, 2.406842], abs=1e-6)
    assert weights.sum() == pytest.approx(3.0)
    # beta = 0: no weighting; beta -> 1: inverse frequency
    assert effective_number_weights(np.array(counts), 0.0) == pytest.approx([1.0, 1.0, 1.0])
    assert effective_number_weights(np.array(counts), 1 - 1e-12) == pytest.approx(
        inverse_frequency_weights(np.array(counts)), rel=1e-6)
    assert inverse_frequency_weights(np.array([1, 2, 4])) == pytest.approx(np.array([4, 2, 1]) * 3 / 7)
    assert np.isfinite(inverse_frequency_weights(np.array([0, 5, 5]))).all()  # a class never seen counts as 1


def _priors(pixels, images, n=10) -> ClassPriors:
    return ClassPriors(("a", "b", "c"), np.array(pixels), np.array(images), n, "test")


def test_build_pixel_loss_uses_the_asked_counts_and_priors():
    priors = _priors([700, 200, 100], [10, 5, 1])
    wce = build_pixel_loss({"name": "weighted_ce", "weights": "inverse_freq", "beta": 0.999, "counts": "images"},
                           priors, 3)
    assert wce.class_weights.tolist() == pytest.approx([3 * 0.1 / 1.3, 3 * 0.2 / 1.3, 3 * 1.0 / 1.3], rel=1e-6)
    assert wce.label == "wce(inverse image freq)"
    la = build_pixel_loss({"name": "logit_adjusted", "tau": 1.0}, priors, 3)
    assert la.log_prior.tolist() == pytest.approx(np.log([0.7, 0.2, 0.1]).tolist(), rel=1e-6)
    with pytest.raises(ValueError, match="needs class priors"):
        build_pixel_loss({"name": "logit_adjusted", "tau": 1.0}, None, 3)
    assert build_pixel_loss({"name": "seesaw", "p": 0.8, "q": 2.0}, None, 3).num_classes == 3
    # remedy buffers stay out of state dicts: weight files keep loading without the remedy
    assert wce.state_dict() == {} and la.state_dict() == {}


# ---- composition with the models' own losses ------------------------------------------------------

def _batch(k: int = 5, size: int = 6, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, k, size, size, generator=g) * 2
    target = torch.randint(0, k, (2, size, size), generator=g)
    target[0, 0, :3] = 255
    return logits, target


def test_ce_dice_keeps_dice_and_replaces_ce():
    from segface.loss import CEDiceLoss

    logits, target = _batch()
    criterion = CEDiceLoss(0.5, 0.5)
    plain = criterion(logits, target)
    valid = target != 255
    dice = criterion.dice(logits.float(), target, valid)
    assert plain.item() == pytest.approx(0.5 * F.cross_entropy(logits, target, ignore_index=255).item()
                                         + 0.5 * dice.item(), abs=1e-6)
    remedy = WeightedCrossEntropy([0.2, 3.0, 0.6, 0.6, 0.6])
    criterion.pixel_loss = remedy
    assert criterion(logits, target).item() == pytest.approx(0.5 * remedy(logits, target).item() + 0.5 * dice.item(),
                                                             abs=1e-6)
    criterion.pixel_loss = FocalLoss(0.0)  # γ = 0 is CE: the combined loss equals the plain one
    assert criterion(logits, target).item() == pytest.approx(plain.item(), abs=1e-6)


def test_ohem_selects_hard_pixels_from_plain_ce_and_averages_the_remedy_over_them():
    from baselines.ohem import OhemCrossEntropy, ohem_cross_entropy, ohem_keep_mask

    logits, target = _batch(seed=1)
    ohem = OhemCrossEntropy()
    plain = ohem(logits, target)
    keep = ohem_keep_mask(logits, target)
    ce = F.cross_entropy(logits, target, ignore_index=255, reduction="none")
    assert bool((ce[keep] > -math.log(0.7)).all()) and int(keep.sum()) > target.numel() // 16
    assert plain.item() == pytest.approx(ce[keep].mean().item(), abs=1e-6)
    assert ohem_cross_entropy(logits, target).item() == pytest.approx(plain.item())
    weights = [0.2, 3.0, 0.6, 0.6, 0.6]
    ohem.pixel_loss = WeightedCrossEntropy(weights)
    w = torch.tensor(weights)[target.clamp(max=4)]
    assert ohem(logits, target).item() == pytest.approx((w * ce)[keep].mean().item(), abs=1e-5)
    # few hard pixels: OHEM keeps the pixels/16 hardest ones, and so does the remedy
    easy_logits = F.one_hot(target.clamp(max=4), 5).permute(0, 3, 1, 2).float() * 20
    easy_logits[0, :, 5, 5] = torch.tensor([0.0, 0.0, 0.0, 0.0, 5.0])
    keep = ohem_keep_mask(easy_logits, target)
    assert int(keep.sum()) == target.numel() // 16


@pytest.mark.parametrize("name,kwargs", [("tiny", {"width": 4}), ("bisenet", {"loss": "ce"}), ("bisenet", {})])
def test_attach_replaces_ce_on_every_head(name, kwargs):
    from lt_faceparse.models import build_model

    model = build_model(name, num_classes=5, **kwargs)
    remedy = WeightedCrossEntropy([0.2, 3.0, 0.6, 0.6, 0.6])
    how = attach_loss_remedy(model, remedy)
    logits, target = _batch()
    if name == "tiny":
        assert how == "replaces the model's cross-entropy" and model.criterion is remedy
        assert model.loss(logits, target).item() == pytest.approx(remedy(logits, target).item())
        assert all(not k.startswith("criterion") for k in model.state_dict())
        return
    assert "each auxiliary head" in how
    aux = [logits.flip(-1), logits * 0.5]
    total = model.loss(logits, target, {"aux_logits": aux})
    criterion = model.criterion
    expected = sum(criterion(x, target) for x in (logits, *aux))  # aux_weight 1, the remedy on every head
    assert total.item() == pytest.approx(expected.item(), abs=1e-5)
    if kwargs.get("loss") == "ce":
        assert criterion is remedy
    else:
        assert criterion.pixel_loss is remedy and "OHEM" in how
    assert all(not k.startswith("criterion") for k in model.state_dict())


def test_attach_refuses_a_model_without_a_replaceable_ce():
    class Custom(torch.nn.Module):
        def loss(self, logits, target):
            return logits.mean()

    with pytest.raises(ValueError, match="longtail.loss"):
        attach_loss_remedy(Custom(), FocalLoss())
