"""FLOPs for model FLOP utilisation (MFU): a Seq2Seq's matmul FLOPs counted from its shapes, and
the machine's own dense matmul rate, measured.

Only matrix products count (2 * in * out per row of a Linear, per RNN gate block, per attention
score and context sum), as in torch.utils.flop_counter and the usual MFU papers; element-wise
work (gates, tanh, softmax, the loss) is left out. Work is counted on real tokens only, so
padding shows up as lost utilisation rather than as useful work.

Every term scales with one of four amounts of a sentence pair of S source tokens and T target
steps (target tokens + EOS):

    "src"       per source token      encoder RNN, attention keys
    "tgt"       per target step       decoder RNN, attention query, attentional layer, output layer
    "pair"      per step x source     attention scores and context
    "sentence"  once per sentence     bridge (decoder initial state)

Training costs TRAINING_FACTOR x forward: backward computes the gradients of both inputs and
weights, each a product as large as the forward one.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn

TRAINING_FACTOR = 3
GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "GRU": 3, "LSTM": 4}


def linear_flops(layer: nn.Linear) -> float:
    return 2.0 * layer.in_features * layer.out_features


def rnn_flops(rnn: nn.RNNBase) -> float:
    """One time step of every layer and direction: 2 * gates * H * (input + H) each."""
    gates, hidden = GATES[rnn.mode], rnn.hidden_size
    directions = 2 if rnn.bidirectional else 1
    total = 0.0
    for layer in range(rnn.num_layers):
        inputs = rnn.input_size if layer == 0 else hidden * directions
        total += directions * 2.0 * gates * hidden * (inputs + hidden)
    return total


def forward_terms(model) -> list[tuple[str, str, float]]:
    """(component, unit, forward FLOPs per unit) of a Seq2Seq; units as in the module docstring."""
    decoder, attention = model.decoder, model.decoder.attention
    terms = [("encoder", "src", rnn_flops(model.encoder.rnn))]
    if getattr(attention, "key_layer", None) is not None:  # bahdanau, concat, general
        terms.append(("attention keys", "src", linear_flops(attention.key_layer)))
    if decoder.bridge is not None:
        terms.append(("bridge", "sentence", linear_flops(decoder.bridge)))
    terms.append(("decoder rnn", "tgt", rnn_flops(decoder.rnn)))
    if getattr(attention, "energy_layer", None) is not None:  # additive: v^T tanh(W q + U k)
        terms.append(("attention query", "tgt", linear_flops(attention.query_layer)))
        score = linear_flops(attention.energy_layer)
    else:  # dot or general: q . k with keys of the query's size
        score = 2.0 * decoder.hidden_size
    terms.append(("attention scores", "pair", score))
    terms.append(("attention context", "pair", 2.0 * model.encoder.output_size))
    terms.append(("attentional layer", "tgt", linear_flops(decoder.att_vector_layer)))
    terms.append(("output layer", "tgt", linear_flops(model.generator)))
    return terms


def forward_flops(model, src_lengths, tgt_steps) -> dict[str, float]:
    """Forward FLOPs per component, summed over sentence pairs.

    src_lengths (N,) source tokens and tgt_steps (N,) target steps (tokens + EOS) per sentence.
    """
    s = np.asarray(src_lengths, dtype=np.float64)
    t = np.asarray(tgt_steps, dtype=np.float64)
    amount = {"src": s.sum(), "tgt": t.sum(), "pair": (s * t).sum(), "sentence": float(len(s))}
    out: dict[str, float] = {}
    for name, unit, flops in forward_terms(model):
        out[name] = out.get(name, 0.0) + flops * amount[unit]
    return out


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_gflops(device: torch.device, n: int, dtype: torch.dtype, repeats: int = 5) -> float:
    """The machine's dense rate: the best of `repeats` timed (n, n) @ (n, n) after one warm-up."""
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    out = a @ b
    sync(device)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.matmul(a, b, out=out)
        sync(device)
        best = min(best, time.perf_counter() - start)
    return 2.0 * n ** 3 / best / 1e9
