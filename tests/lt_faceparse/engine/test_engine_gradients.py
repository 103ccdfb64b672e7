"""The gradient norm logged at log steps: known answers, and unscaled after a GradScaler step."""

from __future__ import annotations

import pytest
import torch

from lt_faceparse.engine.gradients import gradient_norm


def test_gradient_norm_is_the_l2_norm_over_every_gradient():
    a, b, c = (torch.nn.Parameter(torch.zeros(n)) for n in (2, 3, 4))
    a.grad, b.grad = torch.tensor([3.0, 0.0]), torch.tensor([0.0, 4.0, 12.0])  # c has no gradient
    assert float(gradient_norm([a, b, c])) == pytest.approx(13.0)
    assert gradient_norm([c]) is None


@pytest.mark.parametrize("fused", [False, True])
def test_after_a_grad_scaler_step_the_norm_is_of_the_unscaled_gradients(fused):
    def step(scaler):
        torch.manual_seed(0)
        model = torch.nn.Linear(4, 3)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=fused)
        loss = model(torch.randn(5, 4)).square().mean()
        (scaler.scale(loss) if scaler else loss).backward()
        if scaler:
            scaler.step(opt)
            scaler.update()
        else:
            opt.step()
        return float(gradient_norm(model.parameters()))

    plain = step(None)
    scaled = step(torch.amp.GradScaler("cpu", init_scale=1024.0))  # fused AdamW unscales in its kernel
    assert plain > 0 and scaled == pytest.approx(plain, rel=1e-6)
