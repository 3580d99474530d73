"""Recurrent encoder over packed variable-length input."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from seq2seq.modules import LAYER_NORM_CELLS, RNN_CELLS
from seq2seq.modules.dropout import Dropout


class RecurrentEncoder(nn.Module):
    """Embeds nothing: takes embedded source (B, S, E) and returns states (B, S, D*H).

    Sequences are packed (`enforce_sorted=False`), so padding never enters the recurrence and a
    sentence's states do not depend on what it is batched with.
    """

    def __init__(self, cell: str, input_size: int, hidden_size: int, num_layers: int,
                 bidirectional: bool, dropout: float, layer_norm: bool = False, dropout_io: bool = True):
        super().__init__()
        self.rnn = (LAYER_NORM_CELLS if layer_norm else RNN_CELLS)[cell](
            input_size, hidden_size, num_layers, batch_first=True, bidirectional=bidirectional,
            dropout=dropout if num_layers > 1 else 0.0)
        self.dropout = Dropout(dropout if dropout_io else 0.0)  # on the input and the output
        self.num_directions = 2 if bidirectional else 1
        self.output_size = hidden_size * self.num_directions

    def forward(self, embedded: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """embedded (B, S, E), lengths (B,) on CPU -> outputs (B, S, D*H), final (B, D*H)."""
        packed = pack_padded_sequence(self.dropout(embedded), lengths.cpu(), batch_first=True,
                                      enforce_sorted=False)
        packed_out, h_n = self.rnn(packed)
        outputs, _ = pad_packed_sequence(packed_out, batch_first=True,
                                         total_length=embedded.size(1))
        if isinstance(h_n, tuple):  # LSTM: (h, c); the bridge reads h
            h_n = h_n[0]
        # h_n: (L*D, B, H); the last layer's directions, forward then backward, side by side.
        last = h_n.view(-1, self.num_directions, h_n.size(1), h_n.size(2))[-1]  # (D, B, H)
        final = torch.cat(list(last), dim=-1)  # (B, D*H)
        return self.dropout(outputs), final
