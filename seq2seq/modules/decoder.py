"""Recurrent decoder with attention, optional input feeding and coverage, initial state from the
encoder; the Memory and DecoderState that every decoder (this one, seq2seq/modules/conditional.py)
passes between its steps."""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn

from seq2seq.modules import LAYER_NORM_CELLS, RNN_CELLS, WITH_CELL_STATE
from seq2seq.modules.attention import Attention
from seq2seq.modules.deferred_grad import DeferredWeight
from seq2seq.modules.dropout import Dropout
from seq2seq.modules.tanh import tanh


@dataclass
class Memory:
    """What the decoder attends to, computed once per source batch."""

    values: torch.Tensor | DeferredWeight  # (B, S, Hv) encoder outputs (wrapped: for_steps)
    keys: torch.Tensor  # (B, S, K) attention.prepare_keys(values)
    mask: torch.Tensor  # (B, S) True on real tokens
    src: torch.Tensor | None = None  # (B, S) extended source ids, what copying points at
    extra: int = 0  # extended ids V .. V + extra - 1 in use (source-only pieces)

    def for_steps(self, steps: int) -> "Memory":
        """This memory for a teacher-forced loop of `steps` one-step calls: with gradients, values
        wrapped in a DeferredWeight (deferred_grad.py), so that their gradient from every step's
        context (weights_t @ values) is one batched matmul, not `steps` outer products each added
        to the sum. Under autocast the values are cast once here, not at every step."""
        if steps < 2 or not torch.is_grad_enabled() or not self.values.requires_grad:
            return self
        values, device = self.values, self.values.device.type
        if torch.is_autocast_enabled(device) and values.dtype == torch.float32:
            values = values.to(torch.get_autocast_dtype(device))
        return replace(self, values=DeferredWeight(values))

    def select(self, index: torch.Tensor) -> "Memory":
        src = self.src.index_select(0, index) if self.src is not None else None
        return Memory(self.values.index_select(0, index), self.keys.index_select(0, index),
                      self.mask.index_select(0, index), src, self.extra)


@dataclass
class DecoderState:
    """The recurrence carried between steps."""

    hidden: torch.Tensor | tuple[torch.Tensor, torch.Tensor]  # (L, B, H); LSTM: (h, c)
    att_vector: torch.Tensor  # (B, H) last attentional vector (input feeding)
    coverage: torch.Tensor | None = None  # (B, S) attention summed over past steps; None: zeros

    def select(self, index: torch.Tensor) -> "DecoderState":
        if isinstance(self.hidden, tuple):
            hidden = tuple(h.index_select(1, index) for h in self.hidden)
        else:
            hidden = self.hidden.index_select(1, index)
        coverage = self.coverage.index_select(0, index) if self.coverage is not None else None
        return DecoderState(hidden, self.att_vector.index_select(0, index), coverage)


def initial_hidden(encoder_final: torch.Tensor, init: str, bridge: nn.Linear | None, hidden_size: int,
                   num_layers: int, cell: str) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """encoder_final (B, De) -> hidden (L, B, H), every layer started from the bridge tanh(W f + b),
    from zeros, or ('last') from f itself; cells with a cell state get (h, zeros)."""
    if init == "zero":
        h = encoder_final.new_zeros(encoder_final.size(0), hidden_size)
    elif init == "bridge":
        h = torch.tanh(bridge(encoder_final))
    else:  # "last": sizes checked by the recipe
        h = encoder_final
    hidden = h.unsqueeze(0).repeat(num_layers, 1, 1).contiguous()  # (L, B, H)
    return (hidden, torch.zeros_like(hidden)) if cell in WITH_CELL_STATE else hidden


class RecurrentDecoder(nn.Module):
    """Luong-style flow: RNN step, attend with the new top state, attentional vector
    h~ = tanh(W [h; context]) which feeds the output layer and (with input feeding) the next step.

    Without input feeding (and without coverage) the recurrence does not depend on attention, so
    all target steps run in one fused RNN call and attention is computed for all steps at once.
    With coverage (an attention built with coverage=True) the state carries the running sum of
    past attention, which each step's attention scores see.
    """

    def __init__(self, cell: str, embedding_size: int, hidden_size: int, num_layers: int,
                 dropout: float, attention: Attention, encoder_size: int, input_feeding: bool,
                 init: str, layer_norm: bool = False, feed_dropout: float = 0.0):
        super().__init__()
        self.cell, self.hidden_size, self.num_layers = cell, hidden_size, num_layers
        self.input_feeding, self.init = input_feeding, init
        self.output_size = hidden_size  # the attentional vector's, what the output layer reads
        input_size = embedding_size + (hidden_size if input_feeding else 0)
        self.rnn = (LAYER_NORM_CELLS if layer_norm else RNN_CELLS)[cell](
            input_size, hidden_size, num_layers, batch_first=True, dropout=dropout if num_layers > 1 else 0.0)
        self.attention = attention
        self.att_vector_layer = nn.Linear(hidden_size + encoder_size, hidden_size)
        self.dropout = Dropout(dropout)
        self.feed_dropout = Dropout(feed_dropout)  # on the fed-back attentional vector
        self.bridge = nn.Linear(encoder_size, hidden_size) if init == "bridge" else None
        self.coverage = getattr(attention, "coverage_layer", None) is not None

    def init_state(self, encoder_final: torch.Tensor) -> DecoderState:
        """encoder_final (B, De) -> state with every layer started from the bridge (or zeros)."""
        hidden = initial_hidden(encoder_final, self.init, self.bridge, self.hidden_size, self.num_layers,
                                self.cell)
        return DecoderState(hidden, encoder_final.new_zeros(encoder_final.size(0), self.output_size))

    def _attend(self, outputs: torch.Tensor, memory: Memory,
                coverage: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """outputs (B, T, H) -> attentional vectors (B, T, H), weights (B, T, S)."""
        context, weights = self.attention(outputs, memory.keys, memory.values, memory.mask, coverage)
        att = tanh(self.att_vector_layer(self.dropout(torch.cat([outputs, context], -1))))
        return att, weights

    def step(self, embedded: torch.Tensor, memory: Memory, state: DecoderState):
        """One step: embedded (B, 1, E) -> att vector (B, 1, H), weights (B, 1, S), new state."""
        x = fed_input(embedded, state, self.feed_dropout) if self.input_feeding else embedded
        output, hidden = self.rnn(x, state.hidden)  # (B, 1, H)
        if not self.coverage:
            att, weights = self._attend(output, memory)
            return att, weights, DecoderState(hidden, att.squeeze(1))
        coverage = state.coverage
        if coverage is None:  # the first step: nothing attended yet
            coverage = torch.zeros(memory.mask.shape, device=memory.mask.device)  # (B, S)
        att, weights = self._attend(output, memory, coverage)
        return att, weights, DecoderState(hidden, att.squeeze(1), coverage + weights.squeeze(1))

    def forward(self, embedded: torch.Tensor, memory: Memory, state: DecoderState):
        """Teacher-forced: embedded (B, T, E) -> att vectors (B, T, H), weights (B, T, S)."""
        if not self.input_feeding and not self.coverage:
            outputs, hidden = self.rnn(embedded, state.hidden)  # (B, T, H), all steps fused
            att, weights = self._attend(outputs, memory)
            return att, weights, DecoderState(hidden, att[:, -1])
        return self.forward_stepwise(embedded, memory, state)

    def forward_stepwise(self, embedded: torch.Tensor, memory: Memory, state: DecoderState):
        """forward() one step at a time: what input feeding and coverage need."""
        return step_through(self.step, embedded, memory, state)


def fed_input(embedded: torch.Tensor, state: DecoderState, feed_dropout: nn.Module) -> torch.Tensor:
    """Input feeding: a step's input, embedded (B, 1, E) beside the last attentional vector (after
    feed_dropout) -> (B, 1, E + H)."""
    return torch.cat([embedded, feed_dropout(state.att_vector.unsqueeze(1).to(embedded.dtype))], -1)


def step_through(step, embedded: torch.Tensor, memory: Memory, state: DecoderState):
    """A decoder's `step` over every target position: embedded (B, T, E) -> its outputs (B, T, .),
    attention weights (B, T, S) and the last state."""
    atts, all_weights = [], []
    memory = memory.for_steps(embedded.size(1))
    for t in range(embedded.size(1)):
        att, weights, state = step(embedded[:, t:t + 1], memory, state)
        atts.append(att)
        all_weights.append(weights)
    return torch.cat(atts, 1), torch.cat(all_weights, 1), state
