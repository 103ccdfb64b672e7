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

from segface import FaceParser, SegFace

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
