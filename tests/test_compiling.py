"""training.compile: the compiled decoder step computes what the eager one does, and a compiler
failure leaves a working eager model."""

from __future__ import annotations

import pytest
import torch

from seq2seq.batch import collate
from seq2seq.tasks.translation.compiling import compile_decoder_step

CPU = torch.device("cpu")


def _batch():
    return collate([[4, 5, 6, 7], [8, 9]], [[5, 6, 7], [9, 4, 10, 11, 5]])


def test_compiled_step_matches_the_eager_step(make_model):
    model = make_model()  # input feeding: training runs the step once per target position
    batch = _batch()
    eager_logits, eager_weights = model(batch)
    rng = torch.get_rng_state()
    status = compile_decoder_step(model, batch, CPU, precision="fp32")
    if status != "on":
        pytest.skip(f"torch.compile is not usable here: {status}")
    assert torch.equal(torch.get_rng_state(), rng)  # the probe left the run's random stream alone
    assert not model.training  # the probe put the mode back
    logits, weights = model(batch)
    torch.testing.assert_close(logits, eager_logits, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(weights, eager_weights, rtol=1e-4, atol=1e-5)
    assert list(model.state_dict()) == list(make_model().state_dict())  # checkpoints unchanged


def test_a_compiler_failure_falls_back_to_the_eager_step(make_model, monkeypatch):
    def broken(fn, **_):
        def run(*args, **kwargs):
            raise RuntimeError("no C++ compiler found\nmore detail")
        return run

    monkeypatch.setattr(torch, "compile", broken)
    model = make_model()
    batch = _batch()
    expected, _ = model(batch)
    assert compile_decoder_step(model, batch, CPU, "fp32") == "failed (RuntimeError: no C++ compiler found)"
    assert "step" not in vars(model.decoder)
    torch.testing.assert_close(model(batch)[0], expected)
