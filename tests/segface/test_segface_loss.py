"""CEDiceLoss against hand-computed values."""

import math

import torch

from segface.loss import CEDiceLoss


def test_uniform_logits_known_answer():
    # 2 classes, 2 labelled pixels (one per class), uniform logits: p = 0.5 everywhere.
    logits = torch.zeros(1, 2, 1, 2)
    target = torch.tensor([[[0, 1]]])
    ce = math.log(2)
    # per class: sum(p t) = 0.5, sum(p^2) = 0.5, sum(t^2) = 1
    dice = 1 - (2 * 0.5 + 1e-5) / (0.5 + 1 + 1e-5)
    assert torch.isclose(CEDiceLoss()(logits, target), torch.tensor(0.5 * ce + 0.5 * dice), atol=1e-7)


def test_known_answer_with_ignore_and_absent_class():
    # 3 classes; pixel logits chosen so the softmax is easy to write down; one ignored pixel.
    a = math.log(3.0)  # softmax([log 3, 0, 0]) = [0.6, 0.2, 0.2]
    logits = torch.tensor([[a, 0.0, 0.0], [0.0, a, 0.0], [5.0, -7.0, 2.0]]).T.reshape(1, 3, 1, 3)
    target = torch.tensor([[[0, 0, 255]]])
    p = [[0.6, 0.2, 0.2], [0.2, 0.6, 0.2]]  # labelled pixels only
    ce = (-math.log(0.6) - math.log(0.2)) / 2
    eps = 1e-5
    t = [[1, 0, 0], [1, 0, 0]]
    dice = 0.0
    for c in range(3):
        inter = sum(p[i][c] * t[i][c] for i in range(2))
        denom = sum(p[i][c] ** 2 for i in range(2)) + sum(t[i][c] for i in range(2))
        dice += 1 - (2 * inter + eps) / (denom + eps)
    dice /= 3  # class 2 is absent from the target and still counts
    expected = 0.5 * ce + 0.5 * dice
    assert torch.isclose(CEDiceLoss()(logits, target), torch.tensor(expected), atol=1e-6)
    # weights are configurable
    assert torch.isclose(CEDiceLoss(ce_weight=1.0, dice_weight=0.0)(logits, target), torch.tensor(ce), atol=1e-6)
    assert torch.isclose(CEDiceLoss(ce_weight=0.0, dice_weight=2.0)(logits, target), torch.tensor(2 * dice), atol=1e-6)


def test_batch_pooling_and_ignored_pixels_change_nothing():
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 5, 6, requires_grad=True)
    target = torch.randint(0, 4, (2, 5, 6))
    loss = CEDiceLoss()
    base = loss(logits, target)
    # Dice pools over the batch: splitting the batch changes it (per-image Dice would not be additive)
    halves = (loss.dice(logits[:1], target[:1], target[:1] != 255) + loss.dice(logits[1:], target[1:], target[1:] != 255)) / 2
    assert not torch.isclose(loss.dice(logits, target, target != 255), halves)
    # ignoring pixels == removing them: pad with ignored pixels of arbitrary logits
    padded_logits = torch.cat([logits, 100 * torch.randn(2, 4, 5, 3)], dim=3)
    padded_target = torch.cat([target, torch.full((2, 5, 3), 255)], dim=2)
    assert torch.isclose(loss(padded_logits, padded_target), base, atol=1e-6)
    base.backward()
    assert torch.isfinite(logits.grad).all()


def test_all_ignored_gives_zero():
    logits = torch.randn(1, 3, 2, 2, requires_grad=True)
    value = CEDiceLoss()(logits, torch.full((1, 2, 2), 255))
    assert value.item() == 0.0
    value.backward()
