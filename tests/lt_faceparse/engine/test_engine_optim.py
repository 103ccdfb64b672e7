"""AdamW per device: torch's default on the CPU (bit for bit), fused on CUDA, skipping on a device flag."""

from __future__ import annotations

import torch

from lt_faceparse.engine.optim import build_optimizer, is_fused, step_unless, use_fused

OPTIM = {"lr": 1e-2, "betas": [0.9, 0.99], "weight_decay": 1e-3}


def _params(seed: int = 0) -> list[torch.nn.Parameter]:
    g = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(*shape, generator=g)) for shape in ((7, 5), (5,), (3, 2, 2))]


def _run(optimizer: torch.optim.Optimizer, params: list[torch.nn.Parameter], steps: int = 4) -> None:
    g = torch.Generator().manual_seed(1)
    for _ in range(steps):
        for p in params:
            p.grad = torch.randn(p.shape, generator=g)
        optimizer.step()


def test_cpu_optimizer_is_bit_for_bit_the_default():
    mine, reference = _params(), _params()
    optimizer = build_optimizer(mine, OPTIM, torch.device("cpu"))
    assert optimizer.defaults["foreach"] is None and not is_fused(optimizer)
    assert optimizer.defaults["lr"] == 1e-2 and optimizer.defaults["betas"] == (0.9, 0.99)
    _run(optimizer, mine)
    _run(torch.optim.AdamW(reference, lr=1e-2, betas=(0.9, 0.99), weight_decay=1e-3), reference)
    assert all(torch.equal(a, b) for a, b in zip(mine, reference))


def test_fused_on_cuda_only():
    assert use_fused(torch.device("cuda", 0)) and not use_fused(torch.device("cpu"))


def test_a_set_flag_skips_the_whole_update_and_a_clear_one_does_not():
    params = _params()
    optimizer = torch.optim.AdamW(params, fused=True, **{**OPTIM, "betas": (0.9, 0.99)})  # CPU has a fused kernel
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    assert is_fused(optimizer)
    _run(optimizer, params, steps=1)
    before = [p.detach().clone() for p in params]
    state = {k: v.clone() for k, v in optimizer.state[params[0]].items()}
    for p in params:
        p.grad = torch.full_like(p, float("nan"))
    step_unless(optimizer, scaler, torch.ones(()))
    assert all(torch.equal(a, b) for a, b in zip(before, params))
    assert all(torch.equal(v, optimizer.state[params[0]][k]) for k, v in state.items())  # moments and step count
    assert not hasattr(optimizer, "found_inf")  # the flag is lent for one step only
    for p in params:
        p.grad = torch.ones_like(p)
    step_unless(optimizer, scaler, torch.zeros(()))
    assert all(not torch.equal(a, b) for a, b in zip(before, params))
    assert optimizer.state[params[0]]["step"].item() == 2
