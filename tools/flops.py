"""FLOPs for model FLOP utilisation (MFU): the matmul FLOPs of each model the toolkit builds,
counted from its shapes.

Only matrix products count (2 * in * out per row of a Linear, per RNN gate block, per attention
score and context sum), as in torch.utils.flop_counter and the usual MFU papers; element-wise
work (gates, tanh, softmax, the loss, a CRF's forward algorithm) is left out. Work is counted on
real tokens only, so padding shows up as lost utilisation rather than as useful work.

Every term is (component, unit, forward FLOPs per unit); a batch's FLOPs are each term times
how many of its unit the batch holds. The units:

    seq2seq (Seq2Seq)           "src" per source token (encoder RNN, attention keys); "tgt" per
                                target step = target token + EOS (decoder RNN, attention query,
                                attentional layer, output layer); "pair" per step x source token
                                (attention scores and context); "sentence" (bridge)
    language model              "unit" per input unit (RNN, output layer)
    classifier (TextClassifier) "token" per piece (encoder, attention pooling); "text" (output)
    tagger (SequenceTagger)     "token" per word (encoder, output layer); "char" per character
                                of the batch's distinct words (character encoder)

Training costs TRAINING_FACTOR x forward: backward computes the gradients of both inputs and
weights, each a product as large as the forward one.

Recurrent layers: nn.RNN / nn.GRU / nn.LSTM (and subclasses, such as a gru of our own with
nn.GRU's parameters) by their gate count, and Recurrence (seq2seq/modules/recurrence.py) by its
cell's: each layer and direction does 2 * gates * H * (input + H) per step, plus 2 * rows * cols
for every matrix of the cell's own (cells.py extra_shapes): wm_lstm's weight_ch (3H, H) multiplies
a cell state each step (c_{t-1} for i and f, c_t for o); peephole_lstm's per-unit weights (3H,)
and every bias are element-wise and not counted.
"""

from __future__ import annotations

import numpy as np
from torch import nn

from seq2seq.modules.recurrence import Recurrence

TRAINING_FACTOR = 3
GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "GRU": 3, "LSTM": 4}

Term = tuple[str, str, float]  # (component, unit, forward FLOPs per unit)


def linear_flops(layer: nn.Linear) -> float:
    return 2.0 * layer.in_features * layer.out_features


def rnn_flops(rnn: nn.Module) -> float:
    """One time step of every layer and direction of an RNN module (see the module docstring)."""
    hidden = rnn.hidden_size
    if isinstance(rnn, Recurrence):
        gates = rnn.cell.gates
        own = sum(2.0 * shape[0] * shape[1] for shape in rnn.cell.extra_shapes(hidden).values()
                  if len(shape) == 2)  # matrices times a state; vectors are element-wise
    elif isinstance(rnn, nn.RNNBase):
        gates, own = GATES[rnn.mode], 0.0
    else:
        raise TypeError(f"tools/flops.py counts nn.RNN/GRU/LSTM and Recurrence layers, not {type(rnn).__name__}")
    directions = 2 if rnn.bidirectional else 1
    total = 0.0
    for layer in range(rnn.num_layers):
        inputs = rnn.input_size if layer == 0 else hidden * directions
        total += directions * (2.0 * gates * hidden * (inputs + hidden) + own)
    return total


def seq2seq_terms(model) -> list[Term]:
    """The terms of a Seq2Seq (seq2seq/tasks/translation/model.py) with either decoder:
    RecurrentDecoder (one RNN, seq2seq/modules/decoder.py) or ConditionalDecoder (rnn1 -> attention
    -> rnn2, conditional.py)."""
    decoder, attention = model.decoder, model.decoder.attention
    terms = [("encoder", "src", rnn_flops(model.encoder.rnn))]
    if getattr(attention, "key_layer", None) is not None:  # bahdanau, concat, general
        terms.append(("attention keys", "src", linear_flops(attention.key_layer)))
    if decoder.bridge is not None:
        terms.append(("bridge", "sentence", linear_flops(decoder.bridge)))
    if hasattr(decoder, "rnn1"):  # conditional: rnn2 reads the context, started from rnn1's state
        terms += [("decoder rnn1", "tgt", rnn_flops(decoder.rnn1)), ("decoder rnn2", "tgt", rnn_flops(decoder.rnn2))]
    else:
        terms.append(("decoder rnn", "tgt", rnn_flops(decoder.rnn)))
    if getattr(attention, "energy_layer", None) is not None:  # additive: v^T tanh(W q + U k [+ w_c c])
        terms.append(("attention query", "tgt", linear_flops(attention.query_layer)))
        score = linear_flops(attention.energy_layer)
        if getattr(attention, "coverage_layer", None) is not None:
            score += linear_flops(attention.coverage_layer)
    else:  # dot or general: q . k with keys of the query's size
        score = 2.0 * decoder.hidden_size
    terms.append(("attention scores", "pair", score))
    terms.append(("attention context", "pair", 2.0 * model.encoder.output_size))
    terms.append(("attentional layer", "tgt", linear_flops(decoder.att_vector_layer)))
    terms.append(("output layer", "tgt", linear_flops(model.generator)))
    if model.copy is not None:  # the pointer-generator's switch; its scatter of the weights is element-wise
        terms.append(("copy gate", "tgt", linear_flops(model.copy.gate)))
    return terms


def language_model_terms(model) -> list[Term]:
    """The terms of a RecurrentLanguageModel (seq2seq/tasks/language_model/model.py)."""
    return [("rnn", "unit", rnn_flops(model.rnn)), ("output layer", "unit", linear_flops(model.output))]


def classifier_terms(model) -> list[Term]:
    """The terms of a TextClassifier (seq2seq/tasks/classification/model.py); of the poolings
    only attention multiplies matrices: u = tanh(W h), v . u, and the weighted sum of the states."""
    terms = [("encoder", "token", rnn_flops(model.encoder.rnn))]
    pooling = model.pooling
    if getattr(pooling, "project", None) is not None:  # AttentionPooling
        weighted_sum = 2.0 * model.encoder.output_size
        terms.append(("attention pooling", "token", linear_flops(pooling.project) + linear_flops(pooling.score)
                      + weighted_sum))
    terms.append(("output layer", "text", linear_flops(model.output)))
    return terms


def tagger_terms(model) -> list[Term]:
    """The terms of a SequenceTagger (seq2seq/tasks/tagging/model.py); the CRF is element-wise."""
    terms = []
    if model.char_encoder is not None:
        terms.append(("character encoder", "char", rnn_flops(model.char_encoder.encoder.rnn)))
    terms.append(("encoder", "token", rnn_flops(model.encoder.rnn)))
    terms.append(("output layer", "token", linear_flops(model.output)))
    return terms


def count(terms: list[Term], amount: dict[str, float]) -> dict[str, float]:
    """Forward FLOPs per component: each term times the `amount` of its unit."""
    out: dict[str, float] = {}
    for name, unit, flops in terms:
        out[name] = out.get(name, 0.0) + flops * amount[unit]
    return out


def forward_flops(model, src_lengths, tgt_steps) -> dict[str, float]:
    """A Seq2Seq's forward FLOPs per component, summed over sentence pairs.

    src_lengths (N,) source tokens and tgt_steps (N,) target steps (tokens + EOS) per sentence.
    """
    s = np.asarray(src_lengths, dtype=np.float64)
    t = np.asarray(tgt_steps, dtype=np.float64)
    amount = {"src": s.sum(), "tgt": t.sum(), "pair": (s * t).sum(), "sentence": float(len(s))}
    return count(seq2seq_terms(model), amount)
