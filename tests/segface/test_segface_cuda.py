"""SegFace on CUDA: same numbers as on the CPU, fast path == literal there too, bf16 autocast, the parser.

Skipped without a GPU; run by scripts/gpu_check.sh. TF32 is switched off inside the exactness checks
(cuDNN convolutions use it by default), so fp32 on the GPU must agree with the CPU to float rounding.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch
from segface_testutil import literal_formulation

from lt_faceparse.inference.parser import FaceParser
from segface import SegFace

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


@contextlib.contextmanager
def no_tf32():
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


@pytest.fixture(scope="module")
def model_pair():
    torch.manual_seed(0)
    cpu = SegFace("mobilenet", num_classes=19).eval()
    gpu = SegFace("mobilenet", num_classes=19).eval()
    gpu.load_state_dict(cpu.state_dict())
    return cpu, gpu.cuda()


@pytest.mark.parametrize("literal", [False, True])
def test_cuda_fp32_matches_cpu(model_pair, literal):
    cpu, gpu = model_pair
    x = torch.randn(2, 3, 128, 96)
    models = (cpu, gpu) if literal else ()
    with torch.inference_mode(), no_tf32(), literal_formulation(*models):
        expected = cpu(x)
        got = gpu(x.cuda()).cpu()
    assert got.shape == (2, 19, 128, 96)
    assert (got - expected).abs().max() < 1e-3 * max(1.0, expected.abs().max().item())


def test_cuda_fast_path_equals_literal_channels_last(model_pair):
    _, gpu = model_pair
    x = torch.randn(2, 3, 160, 160, device="cuda").contiguous(memory_format=torch.channels_last)
    with torch.inference_mode(), no_tf32():
        fast = gpu(x)
        with literal_formulation(gpu):
            literal = gpu(x)
    assert (fast - literal).abs().max() < 1e-4


def test_cuda_bf16_autocast_agrees_with_fp32(model_pair):
    _, gpu = model_pair
    x = torch.randn(2, 3, 128, 128, device="cuda")
    with torch.inference_mode():
        fp32 = gpu(x)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            bf16, extras = gpu(x, return_extras=True)
    assert torch.isfinite(bf16).all()
    agree = (bf16.float().argmax(1) == fp32.argmax(1)).float().mean().item()
    assert agree > 0.95, f"bf16 and fp32 argmax agree on only {agree:.3f} of the pixels"
    for a in extras["attn"]:
        assert torch.allclose(a.float().sum(-1), torch.ones_like(a[..., 0], dtype=torch.float32), atol=2e-2)


def test_cuda_training_step_matches_cpu_gradients(model_pair):
    cpu, gpu = model_pair
    x = torch.randn(1, 3, 64, 64)
    target = torch.randint(0, 19, (1, 64, 64))
    grads = []
    with no_tf32():
        for model, device in ((cpu, "cpu"), (gpu, "cuda")):
            model.zero_grad()
            model.loss(model(x.to(device)), target.to(device)).backward()
            grads.append(model.face_decoder.class_tokens.weight.grad.cpu())
    cpu.zero_grad()
    gpu.zero_grad()
    assert torch.allclose(grads[0], grads[1], atol=1e-4, rtol=1e-3)


def test_face_parser_on_cuda_matches_cpu(model_pair):
    cpu, gpu = model_pair
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (90, 70, 3), dtype=np.uint8), rng.integers(0, 256, (64, 128, 3), dtype=np.uint8)]
    with no_tf32():
        on_cpu = FaceParser(cpu, "celebamask-hq", 64).predict(images, probs=True)
        on_gpu = FaceParser(gpu, "celebamask-hq", 64, device="cuda").predict(images, probs=True)
    for a, b, img in zip(on_cpu, on_gpu, images):
        assert a.label.shape == img.shape[:2]
        assert (a.label == b.label).mean() > 0.99
        assert np.abs(a.probs - b.probs).max() < 1e-3


@pytest.mark.parametrize("name", ["cpu", "gpu"])
def test_cuda_formulations_equal_literal_values_and_gradients(model_pair, name):
    _, gpu = model_pair
    x = torch.randn(2, 3, 96, 64, device="cuda")
    target = torch.randint(0, 19, (2, 96, 64), device="cuda")
    state = {k: v.clone() for k, v in gpu.state_dict().items()}
    results = []
    with no_tf32():
        for formulation in ("literal", name):
            gpu.load_state_dict(state)
            gpu.train().zero_grad()
            gpu.formulation = formulation
            try:
                logits = gpu(x)
                gpu.loss(logits, target).backward()
                gpu.eval()
                with torch.inference_mode():
                    inference = gpu(x)
            finally:
                gpu.formulation = "auto"
            results.append((logits.detach(), inference, {n: p.grad.clone() for n, p in gpu.named_parameters()}))
    gpu.load_state_dict(state)
    gpu.eval().zero_grad()
    (train_a, eval_a, grads_a), (train_b, eval_b, grads_b) = results
    for a, b in ((train_a, train_b), (eval_a, eval_b)):
        assert (a - b).abs().max() <= 1e-5 * a.abs().max()
    for param, g in grads_a.items():
        torch.testing.assert_close(grads_b[param], g, rtol=1e-4, atol=1e-5 * max(g.abs().max().item(), 1e-3),
                                   msg=param)


def test_cuda_auto_formulation_is_gpu_and_attends_with_the_fused_kernel(model_pair):
    from torch.profiler import ProfilerActivity, profile

    _, gpu = model_pair
    x = torch.randn(2, 3, 128, 128, device="cuda")
    assert gpu.formulation_for(x).name == "gpu"
    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16):
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            gpu(x)
    ops = {e.key for e in prof.key_averages()}
    assert any("scaled_dot_product" in op and ("flash" in op or "efficient" in op or "cudnn" in op) for op in ops), \
        sorted(op for op in ops if "attention" in op)
    assert "aten::convolution" in ops  # the transposed-convolution head (the banded head has none there)


def test_cuda_training_steps_do_not_wait_for_the_gpu():
    """Forward, loss, backward and the fused AdamW step of the default CUDA path: no host synchronisation."""
    from lt_faceparse.engine.optim import build_optimizer, step_unless
    from lt_faceparse.engine.step_values import StepValues

    torch.manual_seed(0)
    model = SegFace("mobilenet", num_classes=19).cuda().train()
    optimizer = build_optimizer(model.parameters(), {"lr": 1e-4, "betas": [0.9, 0.999], "weight_decay": 1e-5},
                                torch.device("cuda"))
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    values = StepValues(defer=True)
    x = torch.randn(2, 3, 128, 128, device="cuda")
    target = torch.randint(0, 19, (2, 128, 128), device="cuda")

    def step(i: int) -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model.loss(model(x), target)
        loss.backward()
        step_unless(optimizer, scaler, values.add(loss, None, epoch=0, step_in_epoch=i, global_step=i))

    step(1)  # lazy initialisation (cuDNN, cuBLAS handles) may synchronise once
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        step(2)
        step(3)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    values.read()
    assert values.epoch_steps == 3 and values.last_loss > 0


def test_cuda_compiled_training_step_equals_eager():
    """Inductor on CUDA (default mode, as `compile: auto` trains), on a small SegFace."""
    from lt_faceparse.engine.compile import CompiledOrEager

    torch.manual_seed(0)
    model = SegFace("timm/test_resnet", num_classes=5, dim=32).cuda().train()
    x = torch.randn(2, 3, 64, 64, device="cuda")
    target = torch.randint(0, 5, (2, 64, 64), device="cuda")
    state = {k: v.clone() for k, v in model.state_dict().items()}
    results = []
    with no_tf32():
        for mode in (None, "default"):
            model.load_state_dict(state)
            model.zero_grad()
            forward = CompiledOrEager(model, mode)
            loss = model.loss(forward(x), target)
            loss.backward()
            assert forward.compiled == (mode is not None)
            results.append((loss.detach(), [p.grad.clone() for p in model.parameters()]))
    (loss_a, grads_a), (loss_b, grads_b) = results
    torch.testing.assert_close(loss_b, loss_a, rtol=1e-4, atol=1e-6)
    for a, b in zip(grads_a, grads_b):
        torch.testing.assert_close(b, a, rtol=1e-3, atol=1e-4 * max(a.abs().max().item(), 1e-3))


def test_cuda_face_parser_compiled_with_cuda_graphs_matches_eager():
    torch.manual_seed(0)
    model = SegFace("timm/test_resnet", num_classes=19, dim=32).eval()
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 256, (70, 60, 3), dtype=np.uint8) for _ in range(3)]
    with no_tf32():
        eager = FaceParser(model, "celebamask-hq", 64, device="cuda", batch_size=2).predict(images, probs=True)
        parser = FaceParser(model, "celebamask-hq", 64, device="cuda", batch_size=2, compile=True)
        compiled = parser.predict(images, probs=True)
        compiled_again = parser.predict(images, probs=True)  # replays the recorded CUDA graphs
    assert parser.net.compiled and parser.net.mode == "reduce-overhead"
    for a, b, c in zip(eager, compiled, compiled_again):
        assert (a.label == b.label).mean() > 0.999 and np.array_equal(b.label, c.label)
        assert np.abs(a.probs - b.probs).max() < 1e-3
