"""The text classifier: embeddings -> recurrent encoder -> pooling -> dropout -> linear layer, and
build_classifier, the one place where the recipe's model and classification sections become
these modules.

Every pooling has one signature, forward(states, final, mask) -> (B, D), and sees only the text's
own positions: the encoder packs its input, and the poolings mask the padding, so a text's class
distribution does not depend on what it is batched with. B batch, S text length, E embedding,
D encoder output (hidden_size x directions), C classes.
"""

from __future__ import annotations

import torch
from torch import nn
from tqdm import tqdm

from seq2seq.batch import collate
from seq2seq.config import ClassificationConfig, ModelConfig
from seq2seq.device import autocast
from seq2seq.modules.dropout import Dropout
from seq2seq.modules.encoder import RecurrentEncoder
from seq2seq.modules.init import initialize
from seq2seq.vocab import PAD


class LastState(nn.Module):
    """The encoder's final state: the last layer's forward state after the last piece, beside its
    backward state after the first (RecurrentEncoder's `final`)."""

    def forward(self, states: torch.Tensor, final: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return final  # (B, D)


class MeanPooling(nn.Module):
    """The mean of the states over the text's pieces."""

    def forward(self, states: torch.Tensor, final: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask.unsqueeze(-1).to(states.dtype)  # (B, S, 1)
        return (states * m).sum(1) / m.sum(1)  # (B, D)


class MaxPooling(nn.Module):
    """The largest value of each state unit over the text's pieces (Collobert et al. 2011;
    InferSent's BiLSTM-max, Conneau et al. 2017)."""

    def forward(self, states: torch.Tensor, final: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return states.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(1)  # (B, D)


class AttentionPooling(nn.Module):
    """A weighted mean of the states, the weights a softmax over the text's pieces of a learned
    score: u_i = tanh(W h_i + b), a_i = softmax_i(v . u_i), pooled = sum_i a_i h_i (Yang et al.
    2016, Hierarchical Attention Networks, eqs. 5-7)."""

    def __init__(self, size: int, hidden_size: int):
        super().__init__()
        self.project = nn.Linear(size, hidden_size)
        self.score = nn.Linear(hidden_size, 1, bias=False)

    def forward(self, states: torch.Tensor, final: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        scores = self.score(torch.tanh(self.project(states))).squeeze(-1)  # (B, S)
        weights = scores.masked_fill(~mask, float("-inf")).softmax(-1)  # (B, S)
        return torch.bmm(weights.unsqueeze(1), states).squeeze(1)  # (B, D)


POOLINGS = {"last": LastState, "mean": MeanPooling, "max": MaxPooling, "attention": AttentionPooling}


class TextClassifier(nn.Module):
    """Embedding, encoder, pooling and output layer, built elsewhere and passed in."""

    def __init__(self, embed: nn.Embedding, encoder: RecurrentEncoder, pooling: nn.Module,
                 output: nn.Linear, embedding_dropout: float = 0.0, dropout: float = 0.0):
        super().__init__()
        self.embed, self.encoder, self.pooling, self.output = embed, encoder, pooling, output
        self.embedding_dropout = Dropout(embedding_dropout)
        self.dropout = Dropout(dropout)

    def forward(self, src: torch.Tensor, src_lengths: torch.Tensor) -> torch.Tensor:
        """src (B, S) piece ids, PAD after each text; src_lengths (B,) on the CPU -> logits (B, C)."""
        states, final = self.encoder(self.embedding_dropout(self.embed(src)), src_lengths)  # (B, S, D), (B, D)
        positions = torch.arange(src.size(1), device=src.device)
        mask = positions.unsqueeze(0) < src_lengths.to(src.device).unsqueeze(1)  # (B, S)
        return self.output(self.dropout(self.pooling(states, final, mask)))  # (B, C)


def build_classifier(cfg: ModelConfig, task: ClassificationConfig, vocab_size: int,
                     num_classes: int) -> TextClassifier:
    """Turn the recipe's model section (embedding, encoder, init) and classification section
    (pooling, dropout) into modules."""
    e = cfg.encoder
    embed = nn.Embedding(vocab_size, cfg.embedding_size, padding_idx=PAD)
    encoder = RecurrentEncoder(e.cell, cfg.embedding_size, e.hidden_size, e.num_layers, e.bidirectional,
                               e.dropout, e.layer_norm, e.dropout_io)
    size = encoder.output_size
    pooling = (AttentionPooling(size, task.attention_size or size) if task.pooling == "attention"
               else POOLINGS[task.pooling]())
    model = TextClassifier(embed, encoder, pooling, nn.Linear(size, num_classes), cfg.embedding_dropout,
                           task.dropout)
    initialize(model, cfg.init, cfg.embedding_init_std)
    return model


@torch.no_grad()
def class_logits(model: TextClassifier, ids: list[list[int]], batch_size: int, device: torch.device,
                 precision: str = "fp32", progress: bool = False) -> torch.Tensor:
    """Logits (N, C) of texts given as piece ids, run in batches of similar length (little
    padding) in `precision` (resolved: seq2seq/device.py) and returned in the order given; the
    model is left in the mode it was in."""
    was_training = model.training
    model.eval()
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    out = torch.zeros(len(ids), model.output.out_features)
    for start in tqdm(range(0, len(ids), batch_size), desc="classifying", unit="batch", disable=not progress,
                      leave=False):
        chunk = order[start:start + batch_size]
        batch = collate([ids[i] for i in chunk]).to(device)
        with autocast(device, precision):
            logits = model(batch.src, batch.src_lengths)
        out[chunk] = logits.float().cpu()
    model.train(was_training)
    return out
