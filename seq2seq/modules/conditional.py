"""The conditional decoder: two recurrent cells with attention between them, Nematus's cGRU.

Sennrich et al. 2017, "Nematus: a Toolkit for Neural Machine Translation" (arXiv:1703.04357),
section 2, after Firat & Cho's dl4mt-tutorial; the decoder of the Edinburgh WMT16/17 systems and
of LIUM-CVC's Multi30k systems. Each step j, with s_{j-1} the state the step before left and y_{j-1}
the embedded previous target token:

    s'_j = cell1(y_{j-1}, s_{j-1})              the first cell; with input feeding its input is
                                                [y_{j-1}; t_{j-1}]
    c_j, a_j = attention(s'_j, encoder states)  the first cell's state is the query
    s_j  = cell2(c_j, s'_j)                     the second cell reads the context, started from s'_j
    t_j  = tanh(W [s_j; y_{j-1}; c_j] + b)      (E) the output layer's input, Nematus's deep output
    p(y_j) = softmax(W_o t_j + b_o)             the output layer (tasks/translation/model.py)

t_j has the embedding's size E, as in Nematus, so the output layer can share the target embedding
matrix (model.tie_output) whatever the hidden size. The cell is model.decoder.cell: 'gru' gives
the cGRU, 'lstm' the cLSTM (cell2 starts from cell1's (h, c)); every cell of seq2seq/modules works.
Dropout (model.decoder.dropout) is on the input of W, as the recurrent decoder's on its
attentional layer's input. With coverage, the running sum of past attention enters each step's
scores, as in RecurrentDecoder.

Same interface as RecurrentDecoder (init_state, step, forward; DecoderState carries s_j, t_j and
the coverage), so greedy, beam and sampling search, copy and coverage work unchanged. The query of
step j depends on step j-1's attention through s_{j-1}, so forward() runs the recurrence step by
step; without input feeding the deep output then runs over all positions at once.
"""

from __future__ import annotations

import torch
from torch import nn

from seq2seq.modules import LAYER_NORM_CELLS, RNN_CELLS
from seq2seq.modules.attention import Attention
from seq2seq.modules.decoder import DecoderState, Memory, fed_input, initial_hidden, step_through
from seq2seq.modules.dropout import Dropout
from seq2seq.modules.tanh import tanh


class ConditionalDecoder(nn.Module):
    """cGRU / cLSTM: cell1 -> attention -> cell2 -> deep output t_j (B, 1, E); one layer each."""

    num_layers = 1

    def __init__(self, cell: str, embedding_size: int, hidden_size: int, dropout: float,
                 attention: Attention, encoder_size: int, input_feeding: bool, init: str,
                 layer_norm: bool = False, feed_dropout: float = 0.0):
        super().__init__()
        self.cell, self.hidden_size = cell, hidden_size
        self.input_feeding, self.init = input_feeding, init
        self.output_size = embedding_size  # t_j's, what the output layer reads
        input_size = embedding_size + (embedding_size if input_feeding else 0)
        rnns = LAYER_NORM_CELLS if layer_norm else RNN_CELLS  # layer_norm: both cells
        self.rnn1 = rnns[cell](input_size, hidden_size, 1, batch_first=True)
        self.attention = attention
        self.rnn2 = rnns[cell](encoder_size, hidden_size, 1, batch_first=True)
        self.att_vector_layer = nn.Linear(hidden_size + embedding_size + encoder_size, embedding_size)
        self.dropout = Dropout(dropout)
        self.feed_dropout = Dropout(feed_dropout)  # on the fed-back t_j
        self.bridge = nn.Linear(encoder_size, hidden_size) if init == "bridge" else None
        self.coverage = getattr(attention, "coverage_layer", None) is not None

    def init_state(self, encoder_final: torch.Tensor) -> DecoderState:
        """encoder_final (B, De) -> s_0 (1, B, H) from the bridge (or zeros, or 'last'), t_0 = 0."""
        hidden = initial_hidden(encoder_final, self.init, self.bridge, self.hidden_size, 1, self.cell)
        return DecoderState(hidden, encoder_final.new_zeros(encoder_final.size(0), self.output_size))

    def step(self, embedded: torch.Tensor, memory: Memory, state: DecoderState):
        """One step: embedded (B, 1, E) -> t_j (B, 1, E), weights (B, 1, S), new state."""
        x = fed_input(embedded, state, self.feed_dropout) if self.input_feeding else embedded  # (B, 1, 2E)
        output, context, weights, hidden, coverage = self._recur(x, memory, state.hidden, state.coverage)
        att = self._deep_output(output, embedded, context)  # (B, 1, E)
        return att, weights, DecoderState(hidden, att.squeeze(1), coverage)

    def forward(self, embedded: torch.Tensor, memory: Memory, state: DecoderState):
        """Teacher-forced: embedded (B, T, E) -> t (B, T, E), weights (B, T, S). With input feeding
        t_j is the next step's input, so the steps run one by one. Without it t_j feeds no later
        step: the loop runs the cells and attention only, and the deep output is one matmul over
        all T positions (forward and backward) instead of T small ones."""
        if self.input_feeding:
            return self.forward_stepwise(embedded, memory, state)
        hidden, coverage = state.hidden, state.coverage
        outputs, contexts, all_weights = [], [], []
        memory = memory.for_steps(embedded.size(1))
        for t in range(embedded.size(1)):
            output, context, weights, hidden, coverage = self._recur(embedded[:, t:t + 1], memory,
                                                                     hidden, coverage)
            outputs.append(output)
            contexts.append(context)
            all_weights.append(weights)
        att = self._deep_output(torch.cat(outputs, 1), embedded, torch.cat(contexts, 1))  # (B, T, E)
        return att, torch.cat(all_weights, 1), DecoderState(hidden, att[:, -1], coverage)

    def forward_stepwise(self, embedded: torch.Tensor, memory: Memory, state: DecoderState):
        """forward() one whole step at a time: what input feeding needs."""
        return step_through(self.step, embedded, memory, state)

    def _recur(self, x: torch.Tensor, memory: Memory, hidden, coverage: torch.Tensor | None):
        """The recurrence of one step: cell1's input x (B, 1, .) -> s_j's output (B, 1, H), the
        context c_j (B, 1, Hv), the weights (B, 1, S), s_j and the coverage after this step."""
        query, first = self.rnn1(x, hidden)  # s'_j: (B, 1, H)
        if self.coverage and coverage is None:  # the first step: nothing attended yet
            coverage = torch.zeros(memory.mask.shape, device=memory.mask.device)  # (B, S)
        context, weights = self.attention(query, memory.keys, memory.values, memory.mask,
                                          coverage)  # (B, 1, Hv), (B, 1, S)
        output, hidden = self.rnn2(context, first)  # s_j: (B, 1, H)
        if self.coverage:
            coverage = coverage + weights.squeeze(1)
        return output, context, weights, hidden, coverage

    def _deep_output(self, output: torch.Tensor, embedded: torch.Tensor, context: torch.Tensor):
        """t = tanh(W [s; y; c] + b) at every position given: (B, T, H), (B, T, E), (B, T, Hv)."""
        features = torch.cat([output, embedded, context], -1)  # (B, T, H + E + Hv)
        return tanh(self.att_vector_layer(self.dropout(features)))
