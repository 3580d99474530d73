"""Optional torch.compile of the decoder step (`training.compile`): the one call that runs once per
target position in training with input feeding and in every search step. A probe runs it at
once (compilation is lazy); on any failure the eager step is put back and the reason returned."""

from __future__ import annotations

import torch

from seq2seq.batch import Batch
from seq2seq.device import autocast


def compile_decoder_step(model, probe: Batch, device: torch.device, precision: str) -> str:
    """Compile model.decoder.step in place; returns "on" or "failed (why)". The probe (a small
    batch on `device`) runs one training step and one search step under a forked RNG, so the
    random stream of the run is the same with and without compiling; `precision`: training's,
    resolved ('fp32' or 'bf16')."""
    model.decoder.step = torch.compile(model.decoder.step, dynamic=True)  # instance attribute
    was_training = model.training
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            model.train()
            with autocast(device, precision):
                logits, _ = model(probe)
            logits.float().sum().backward()
            model.zero_grad(set_to_none=True)
            model.eval()
            with torch.no_grad(), autocast(device, precision):
                memory, state = model.encode(probe.src, probe.src_lengths)
                model.step(probe.tgt_in[:, 0], memory, state)
        return "on"
    except Exception as e:  # noqa: BLE001 -- any compiler failure (no C++ compiler, say): run eagerly
        del model.decoder.step
        first_line = (str(e).strip().splitlines() or [""])[0][:120]
        return f"failed ({type(e).__name__}: {first_line})"
    finally:
        model.train(was_training)
