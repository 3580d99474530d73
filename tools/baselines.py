"""The slow ways, kept only so that tools/bench.py can measure each fast path before and after.

Each baseline patches one built model (or trainer) in place and computes the same function the
fast path computes, the way a step-by-step Python toolkit does it:

    stepwise_decoder  the decoder runs one whole step per target position even without input
                      feeding (recurrent: one RNN call and one attention per step, instead of one
                      fused RNN call and batched attention over all steps; conditional: the deep
                      output inside the step loop, instead of once over all steps)
    stepwise_output   the above, plus the output layer and log-softmax inside the step loop
                      (instead of once over all target tokens)
    unbucketed        training batches drawn in random order, with the same token budget but no
                      length bucketing (more padding)
    torch_packed_rnn  the encoders' GRU / LSTM train packed input on torch's own loop, whose
                      backward is quadratic in the length (seq2seq/modules/packed_training.py),
                      instead of seq2seq's loop
    copy_mixture      with copy and no label smoothing, the loss reads the whole pointer-generator
                      mixture over V + extra (the model's forward) instead of the reference
                      pieces' log-probabilities alone (PointerGenerator.target_log_probs)
    torch_loss        the label-smoothed cross-entropy as torch composes it (F.cross_entropy:
                      log_softmax, nll_loss, a sum and their backwards) instead of the fused one
                      of seq2seq/loss.py
    loop_adam         Adam's (AdamW's) per-parameter loop of a dozen element-wise passes instead of
                      torch's fused kernel
    whole_loss        the fused loss over all (N, V) logits at once instead of cache-sized chunks
                      of rows (fp32 temporaries of the whole size, which glibc maps afresh)
    torch_dropout     torch's dropout masks (`bernoulli_`, and nn.GRU's / nn.LSTM's own between
                      layers) instead of seq2seq/modules/dropout.py's
    step_weight_grad  seq2seq's recurrence loop takes W_hh's gradient at every step, as autograd
                      does, instead of once for all steps (seq2seq/modules/deferred_grad.py; the
                      encoders' GRU takes it in gru_sequence.py, which this leaves alone)
    torch_tanh        torch.tanh on CPU fp32 (the attention's energies, the attentional vector)
                      instead of 2 * sigmoid(2x) - 1 (seq2seq/modules/tanh.py)
    step_values_grad  the attention's values (encoder states) take their gradient at every
                      teacher-forced decoder step, as autograd does, instead of once for all steps
                      (seq2seq/modules/decoder.py, Memory.for_steps)
    unfused_gru       the GRU step's gates through autograd in seq2seq's recurrence loop, instead
                      of one autograd step (seq2seq/modules/gru_gates.py; the loop's GRU steps
                      are those of cells gru_sequence does not take, such as the layer-norm GRU)
    stepwise_gru      the encoders' GRU trains packed input on seq2seq's loop of GRUCell steps
                      (each a few autograd nodes), instead of one autograd step per layer and
                      direction (seq2seq/modules/gru_sequence.py)
    unfused_scores    the additive attention's scores as tanh, then nn.Linear(A, 1), through
                      autograd, instead of one autograd step (seq2seq/modules/additive.py)

Batched beam search has its baseline in the recipe itself: `decoding.batch_size=1` searches one
sentence at a time.
"""

from __future__ import annotations

import types
from unittest import mock

import numpy as np
import torch
import torch.nn.functional as F

import seq2seq.loss as loss_module
import seq2seq.modules.additive as additive_module
import seq2seq.modules.decoder as decoder_module
import seq2seq.modules.dropout as dropout_module
import seq2seq.modules.gru_gates as gru_gates_module
import seq2seq.modules.gru_sequence as gru_sequence_module
import seq2seq.modules.recurrence as recurrence_module
import seq2seq.modules.tanh as tanh_module
from seq2seq.device import autocast
from seq2seq.errors import UserError
from seq2seq.trainer import build_optimizer, build_scheduler
from seq2seq.vocab import PAD

BASELINES = ("stepwise_decoder", "stepwise_output", "unbucketed", "torch_packed_rnn", "copy_mixture", "torch_loss",
             "whole_loss", "loop_adam", "torch_dropout", "step_weight_grad", "torch_tanh",
             "unfused_scores", "step_values_grad", "unfused_gru", "stepwise_gru")


def _stepwise_output_forward(model, batch):
    memory, state = model.encode(batch.src, batch.src_lengths)
    embedded = model.embedding_dropout(model._embed(model.tgt_embed, batch.tgt_in))
    log_probs, all_weights = [], []
    for t in range(embedded.size(1)):
        att, weights, state = model.decoder.step(embedded[:, t:t + 1], memory, state)
        out = model._output(att, embedded[:, t:t + 1], weights, memory)  # output dropout, copy: as forward's
        log_probs.append(torch.log_softmax(out.float(), dim=-1))
        all_weights.append(weights)
    return torch.cat(log_probs, 1), torch.cat(all_weights, 1)  # log_softmax leaves these as they are


def unbucketed_batches(indices: np.ndarray, src_lengths: np.ndarray, tgt_lengths: np.ndarray,
                       budget: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffled sentences cut into batches under the same padded-token budget as make_batches."""
    order = indices[rng.permutation(len(indices))]
    batches, start, longest = [], 0, 0
    for i, idx in enumerate(order):
        longest_new = max(longest, int(src_lengths[idx]), int(tgt_lengths[idx]) + 1)
        if (i - start + 1) * longest_new > budget and i > start:
            batches.append(order[start:i])
            start, longest_new = i, max(int(src_lengths[idx]), int(tgt_lengths[idx]) + 1)
        longest = longest_new
    batches.append(order[start:])
    return batches


def apply_model_baseline(name: str, model) -> None:
    if name == "stepwise_decoder":
        model.decoder.forward = model.decoder.forward_stepwise
    elif name == "stepwise_output":
        model.forward = types.MethodType(_stepwise_output_forward, model)
    elif name == "torch_packed_rnn":
        for module in model.modules():
            if isinstance(module, torch.nn.RNNBase):
                module.packed_on_loop = False


def _torch_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0):
    return F.cross_entropy(logits.float(), targets, ignore_index=PAD, label_smoothing=label_smoothing,
                           reduction="sum")


def _whole_loss(logits: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0):
    return _FUSED_LOSS(logits, targets, label_smoothing, rows=logits.size(0))


_FUSED_LOSS = loss_module.smoothed_cross_entropy


def _swapped(batch_loss, module, name: str, slow_value):
    """A trainer's batch_loss that runs with `module.name` set to `slow_value`, for the call only
    (the forward builds the graph), so that other variants keep the fast way."""
    def slow(batch):
        with mock.patch.object(module, name, slow_value):
            return batch_loss(batch)
    return slow


def _plain_weight(weight):
    return weight


# name -> (module, attribute, the slow way's value)
_SWAPS = {"torch_loss": (loss_module, "smoothed_cross_entropy", _torch_cross_entropy),
          "whole_loss": (loss_module, "smoothed_cross_entropy", _whole_loss),
          "torch_dropout": (dropout_module, "fast_masks", False),
          "step_weight_grad": (recurrence_module, "DeferredWeight", _plain_weight),
          "torch_tanh": (tanh_module, "by_sigmoid", False),
          "unfused_scores": (additive_module, "fused", False),
          "unfused_gru": (gru_gates_module, "fused", False),
          "stepwise_gru": (gru_sequence_module, "fused", False),
          "step_values_grad": (decoder_module.Memory, "for_steps", lambda memory, steps: memory)}


def _with_copy_mixture(trainer):
    """A trainer's batch_loss through the model's whole output (the mixture, then sequence_nll)."""
    def slow(batch):
        batch = batch.to(trainer.device)
        with autocast(trainer.device, trainer.precision):
            logits, weights = trainer.ddp(batch)
        loss = loss_module.sequence_nll(logits, batch.tgt_out)
        if trainer.cfg.coverage_weight:
            loss = loss + trainer.cfg.coverage_weight * loss_module.coverage_loss(weights, batch.tgt_out)
        return loss
    return slow


SWAPS = tuple(_SWAPS)  # the baselines that only swap a module attribute for a step's forward


def apply_trainer_baseline(name: str, trainer) -> None:
    if name == "copy_mixture":
        if trainer.model.copy is None or trainer.cfg.label_smoothing:
            raise UserError("the copy_mixture baseline needs model.copy and no training.label_smoothing")
        trainer.batch_loss = _with_copy_mixture(trainer)
    if name == "loop_adam":
        trainer.optimizer = build_optimizer(trainer.model.parameters(), trainer.cfg, fused=False)
        trainer.scheduler = build_scheduler(trainer.optimizer, trainer.cfg, trainer.metric)
    if name in _SWAPS:
        trainer.batch_loss = _swapped(trainer.batch_loss, *_SWAPS[name])
    if name != "unbucketed":
        return
    if trainer.cfg.batch_type != "tokens":
        raise UserError("the unbucketed baseline needs training.batch_type=tokens")

    def epoch_batches(epoch: int) -> list[np.ndarray]:
        rng = np.random.default_rng([trainer.cfg.seed, epoch])
        c = trainer.corpus
        return unbucketed_batches(c.usable, c.src_lengths, c.tgt_lengths, trainer.cfg.batch_size, rng)

    trainer.epoch_batches = epoch_batches
