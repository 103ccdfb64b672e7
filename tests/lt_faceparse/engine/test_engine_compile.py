"""torch.compile settings: the mode per job, eager fallback when compiling fails (forward or backward)."""

from __future__ import annotations

import pytest
import torch
from torch._dynamo.backends.common import aot_autograd

from lt_faceparse.engine import compile as compile_module
from lt_faceparse.engine.compile import CompiledOrEager, check_compile_setting, resolve_compile

CPU, CUDA = torch.device("cpu"), torch.device("cuda", 0)


def test_modes_per_device_and_job():
    # training: Inductor's default mode everywhere; inference: CUDA graphs on CUDA only
    assert resolve_compile(True, CUDA, training=True) == "default"
    assert resolve_compile(True, CUDA, training=False) == "reduce-overhead"
    assert resolve_compile(True, CPU, training=False) == "default"
    # auto: compile on CUDA, eager on the CPU (a CPU run would spend its time in the C++ compiler)
    assert resolve_compile("auto", CUDA, training=True) == "default"
    assert resolve_compile("auto", CPU, training=True) is None
    assert resolve_compile(False, CUDA, training=True) is None
    assert resolve_compile("max-autotune-no-cudagraphs", CPU, training=True) == "max-autotune-no-cudagraphs"


@pytest.mark.parametrize("bad", [1, 0, "fast", None, "True"])
def test_bad_settings_are_refused(bad):
    with pytest.raises(ValueError, match="compile must be one of"):
        check_compile_setting(bad)


def _failing_backend(which: str):
    def ok(gm, example_inputs):
        return gm.forward

    def fail(gm, example_inputs):
        raise RuntimeError(f"no {which} compiler here")

    if which == "forward":
        return aot_autograd(fw_compiler=fail, bw_compiler=ok)
    return aot_autograd(fw_compiler=ok, bw_compiler=fail)


@pytest.mark.parametrize("which", ["forward", "backward"])
def test_a_failed_compilation_warns_once_and_runs_eagerly(monkeypatch, which):
    real = torch.compile
    monkeypatch.setattr(compile_module.torch, "compile", lambda m, mode=None: real(m, backend=_failing_backend(which)))
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh())
    wrapped = CompiledOrEager(model, "default")
    x = torch.randn(5, 4)
    with pytest.warns(RuntimeWarning, match=f"failed for Sequential; running eagerly.*no {which} compiler here"):
        y = wrapped(x)
    assert not wrapped.compiled
    torch.testing.assert_close(y, model(x), rtol=0, atol=0)
    y.sum().backward()  # the backward failure surfaced at the forward, so the step completes eagerly
    assert model[0].weight.grad is not None
    wrapped(x)  # no second warning: eager from now on (pytest's warning filters turn stray ones into errors)


def test_wrapper_keeps_the_module_reachable_and_its_weights_unprefixed():
    model = torch.nn.Linear(2, 2)
    wrapped = CompiledOrEager(model, None)
    assert not wrapped.compiled and wrapped.module is model
    assert [n for n, _ in wrapped.named_parameters()] == ["module.weight", "module.bias"]  # registered once
    x = torch.randn(3, 2)
    assert torch.equal(wrapped(x), model(x))


@pytest.mark.slow
def test_compiled_model_equals_eager_on_the_cpu():
    from lt_faceparse.engine.tiny import TinyParser

    torch.manual_seed(0)
    model = TinyParser(num_classes=5, width=4)
    wrapped = CompiledOrEager(model, "default")
    x = torch.randn(2, 3, 16, 16)
    target = torch.randint(0, 5, (2, 16, 16))
    compiled_loss = model.loss(wrapped(x), target)
    assert wrapped.compiled
    compiled_loss.backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    eager_loss = model.loss(model(x), target)
    eager_loss.backward()
    torch.testing.assert_close(compiled_loss, eager_loss, rtol=1e-5, atol=1e-6)
    for g, p in zip(grads, model.parameters()):
        torch.testing.assert_close(g, p.grad, rtol=1e-4, atol=1e-6)
