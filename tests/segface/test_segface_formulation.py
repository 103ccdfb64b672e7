"""SegFace's formulations: each equals the literal one (values, attention maps, gradients); the choice per device."""

import pytest
import torch

from segface.formulation import CPU, FORMULATIONS, GPU, LITERAL, check_formulation, choose_formulation
from segface.model import SegFace


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return SegFace("mobilenet", num_classes=5)


def _run(model: SegFace, name: str, x: torch.Tensor):
    model.formulation = name
    try:
        return model(x, return_extras=True)
    finally:
        model.formulation = "auto"


@pytest.mark.parametrize("name", ["cpu", "gpu"])
def test_inference_equals_the_literal_formulation(model, name):
    x = torch.randn(2, 3, 96, 64)
    model.eval()
    with torch.inference_mode():
        literal, literal_extras = _run(model, "literal", x)
        got, extras = _run(model, name, x)
        again, _ = _run(model, name, x)  # second pass: from the cached constants
    scale = literal.abs().max()
    assert (got - literal).abs().max() <= 1e-5 * scale
    assert torch.equal(got, again)
    for a, b in zip(extras["attn"], literal_extras["attn"]):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["cpu", "gpu"])
def test_training_gradients_equal_the_literal_formulation(model, name):
    x = torch.randn(2, 3, 64, 64)
    target = torch.randint(0, 5, (2, 64, 64))
    target[1, :10] = 255
    model.train()
    state = {k: v.clone() for k, v in model.state_dict().items()}  # BatchNorm statistics move in training
    results = []
    for formulation in ("literal", name):
        model.load_state_dict(state)
        model.zero_grad()
        model.formulation = formulation
        try:
            loss = model.loss(model(x), target)
        finally:
            model.formulation = "auto"
        loss.backward()
        results.append((loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}))
    model.load_state_dict(state)
    model.eval()
    (loss_literal, grads_literal), (loss_got, grads_got) = results
    torch.testing.assert_close(loss_got, loss_literal, rtol=1e-5, atol=0)
    assert grads_got.keys() == grads_literal.keys()
    for param, g in grads_literal.items():
        torch.testing.assert_close(grads_got[param], g, rtol=1e-5, atol=1e-5 * max(g.abs().max().item(), 1e-3),
                                   msg=param)


def test_the_formulations_differ_where_the_table_says():
    assert (LITERAL.folded_fusion, LITERAL.cached_constants, LITERAL.key_major, LITERAL.banded_head) == \
        (False, False, True, False)
    assert (CPU.folded_fusion, CPU.cached_constants, CPU.key_major, CPU.banded_head) == (True, True, True, True)
    assert (GPU.folded_fusion, GPU.cached_constants, GPU.key_major, GPU.banded_head) == (True, True, False, False)
    assert set(FORMULATIONS) == {"literal", "cpu", "gpu"}


@pytest.mark.parametrize("grad", [False, True])
def test_choice_per_device(grad):
    assert choose_formulation(torch.device("cpu"), grad) is CPU
    assert choose_formulation(torch.device("cuda", 0), grad) is GPU
    assert choose_formulation(torch.device("mps"), grad) is GPU  # any accelerator: launch-bound like CUDA


def test_auto_follows_the_device_and_overrides_stick(model):
    x = torch.zeros(1, 3, 32, 32)
    assert model.formulation == "auto" and model.formulation_for(x) is CPU
    model.formulation = "gpu"
    try:
        assert model.formulation_for(x) is GPU and not model.literal
        model.literal = True
        assert model.formulation == "literal" and model.formulation_for(x) is LITERAL
        model.literal = False
        assert model.formulation == "auto"
    finally:
        model.formulation = "auto"


def test_unknown_formulation_is_refused(model):
    with pytest.raises(ValueError, match="unknown SegFace formulation 'fast'.*auto.*literal.*cpu.*gpu"):
        model.formulation = "fast"
    assert check_formulation("gpu") == "gpu"
    assert model.formulation == "auto"


def test_formulation_is_not_part_of_the_weights(model):
    model.formulation = "gpu"
    try:
        keys = set(model.state_dict())
    finally:
        model.formulation = "auto"
    assert keys == set(model.state_dict())
    assert not any("formulation" in k for k in keys)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["cpu", "gpu"])
def test_traced_and_functionalised_for_compile_each_formulation_equals_literal(name):
    """torch.compile's graph capture (Dynamo + AOTAutograd, without Inductor's code generation): the
    formulations trace (caches bypassed, in-place steps functionalised) and still compute the function."""
    torch.manual_seed(0)
    model = SegFace("timm/test_resnet", num_classes=5, dim=32)
    x = torch.randn(2, 3, 64, 64)
    target = torch.randint(0, 5, (2, 64, 64))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    results = []
    for formulation, compiled in (("literal", False), (name, True)):
        model.load_state_dict(state)
        model.zero_grad()
        model.formulation = formulation
        forward = torch.compile(model, backend="aot_eager", fullgraph=True) if compiled else model
        loss = model.loss(forward(x), target)
        loss.backward()
        results.append((loss.detach(), [p.grad.clone() for p in model.parameters()]))
        model.eval()
        with torch.no_grad():
            results[-1] += (forward(x),)
        model.train()
    model.formulation = "auto"
    (loss_a, grads_a, eval_a), (loss_b, grads_b, eval_b) = results
    torch.testing.assert_close(loss_b, loss_a, rtol=1e-5, atol=0)
    torch.testing.assert_close(eval_b, eval_a, rtol=1e-5, atol=1e-5 * eval_a.abs().max().item())
    for a, b in zip(grads_a, grads_b):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5 * max(a.abs().max().item(), 1e-3))
