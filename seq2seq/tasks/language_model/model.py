"""The recurrent language model: embedding -> unidirectional RNN -> dropout -> output layer
(optionally tied to the embedding), and build_language_model, the one place where the recipe's
model section becomes these modules; row_nats, the scoring every validation and command shares.

The RNN is model.decoder's (cell: any of seq2seq/modules RNN_CELLS; layer_norm, hidden_size,
num_layers, dropout): a language model is a decoder without a source. Dropout follows Zaremba et
al. 2014 (arXiv:1409.2329): on the non-recurrent connections only, the embedded input
(model.embedding_dropout), between layers and on the last layer's output (model.decoder.dropout).
B batch (streams), T units, E embedding, H hidden, L layers, V vocabulary.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from seq2seq.config import ModelConfig
from seq2seq.device import autocast
from seq2seq.modules import LAYER_NORM_CELLS, RNN_CELLS
from seq2seq.modules.dropout import Dropout
from seq2seq.modules.init import initialize
from seq2seq.vocab import PAD

State = torch.Tensor | tuple[torch.Tensor, ...]  # h (L, B, H), or (h, c) for LSTM cells


class RecurrentLanguageModel(nn.Module):
    """Embedding, RNN and output layer, built elsewhere and passed in."""

    def __init__(self, embed: nn.Embedding, rnn: nn.Module, output: nn.Linear, embedding_dropout: float = 0.0,
                 dropout: float = 0.0):
        super().__init__()
        self.embed, self.rnn, self.output = embed, rnn, output
        self.embedding_dropout = Dropout(embedding_dropout)
        self.dropout = Dropout(dropout)

    def forward(self, units: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """units (B, T), state from the previous call or None (zeros) -> logits (B, T, V), the
        state after the last unit (to carry into the next segment)."""
        states, state = self.rnn(self.embedding_dropout(self.embed(units)), state)  # (B, T, H)
        return self.output(self.dropout(states)), state  # (B, T, V)


def detach(state: State) -> State:
    """The state without its history: the next segment's gradients stop here (truncated BPTT)."""
    return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()


def build_language_model(cfg: ModelConfig, vocab_size: int) -> RecurrentLanguageModel:
    """Turn the recipe's model section (embedding, decoder, tie_output, init) into modules."""
    d = cfg.decoder
    embed = nn.Embedding(vocab_size, cfg.embedding_size, padding_idx=PAD)
    rnn = (LAYER_NORM_CELLS if d.layer_norm else RNN_CELLS)[d.cell](
        cfg.embedding_size, d.hidden_size, d.num_layers, batch_first=True,
        dropout=d.dropout if d.num_layers > 1 else 0.0)
    output = nn.Linear(d.hidden_size, vocab_size)
    if cfg.tie_output:  # (config checks embedding_size == decoder.hidden_size)
        output.weight = embed.weight
    model = RecurrentLanguageModel(embed, rnn, output, cfg.embedding_dropout, d.dropout)
    initialize(model, cfg.init, cfg.embedding_init_std)
    return model


@torch.no_grad()
def row_nats(model: RecurrentLanguageModel, inputs: torch.Tensor, targets: torch.Tensor, bptt: int,
             device: torch.device, precision: str = "fp32") -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's summed negative log-likelihood (nats) of its targets and how many it has (PAD
    targets do not count): inputs, targets (R, T) -> (R,) float64, (R,) int64. Rows are run in
    segments of `bptt` units, the state carried from each to the next: the same sums as one pass
    over the whole row, in bounded memory; in `precision` (resolved: seq2seq/device.py). The model
    is left in the mode it was in."""
    was_training = model.training
    model.eval()
    nats = torch.zeros(inputs.size(0), dtype=torch.float64)
    state = None
    for start in range(0, inputs.size(1), bptt):
        x = inputs[:, start:start + bptt].to(device)  # (R, t)
        y = targets[:, start:start + bptt].to(device)
        with autocast(device, precision):
            logits, state = model(x, state)  # (R, t, V)
        loss = F.cross_entropy(logits.float().transpose(1, 2), y, ignore_index=PAD, reduction="none")  # (R, t)
        nats += loss.double().sum(1).cpu()
    model.train(was_training)
    return nats, (targets != PAD).sum(1)
