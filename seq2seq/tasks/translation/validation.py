"""Validation inside training: the loss on the validation set, and a greedy decoding of it scored
by the recipe's metric (metric.py, VALID_METRICS)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from seq2seq.batch import collate
from seq2seq.config import DecodingConfig
from seq2seq.decoding import decode_ids
from seq2seq.device import autocast
from seq2seq.tasks.translation.extended import decode_extended
from seq2seq.loss import sequence_nll
from seq2seq.metrics import Metric
from seq2seq.vocab import Vocab

BATCH_SIZE = 64  # sentences per batch for the loss


@dataclass
class Validation:
    """What validation needs: source ids, target ids (for the loss) and reference strings."""

    src: list[list[int]]
    tgt: list[list[int]]
    refs: list[str]
    oovs: list[list[str]] | None = None  # with copy: each source's extended pieces


@torch.no_grad()
def validate(model: torch.nn.Module, valid: Validation, tgt_vocab: Vocab, *, metric: Metric,
             decoding: DecodingConfig, device: torch.device, precision: str) -> dict:
    """{"valid_loss" (per target token), "valid_ppl", and the metric's fields}, the loss and the
    greedy decoding in `precision` (training's, resolved); the model is left in the mode it was in."""
    was_training = model.training
    model.eval()
    total, ntok = 0.0, 0
    for start in range(0, len(valid.src), BATCH_SIZE):
        batch = collate(valid.src[start:start + BATCH_SIZE], valid.tgt[start:start + BATCH_SIZE]).to(device)
        with autocast(device, precision):
            logits, _ = model(batch)
        total += float(sequence_nll(logits, batch.tgt_out))
        ntok += batch.num_tgt_tokens
    hyps = decode_ids(model, valid.src, decoding, device, precision=precision, beam_size=1)
    text = decode_extended(tgt_vocab, [h[0].tokens for h in hyps], valid.oovs)
    model.train(was_training)
    loss = total / max(ntok, 1)
    return {"valid_loss": loss, "valid_ppl": math.exp(min(loss, 50)), **metric.compute(text, valid.refs)}
