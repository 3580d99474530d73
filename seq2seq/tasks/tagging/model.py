"""The sequence tagger: word embedding (+ a character encoder of each word) -> bidirectional
recurrent encoder -> linear layer to tag scores -> a softmax for each token or a linear-chain CRF
(Lample et al. 2016, "Neural Architectures for Named Entity Recognition", section 2; Huang et al.
2015 without the hand-made features); and build_tagger, the one place where the recipe's model and
tagging sections become these modules.

The character encoder reads each distinct word of a batch once: a bidirectional RNN over its
characters whose two final states (the forward one after the last character, the backward one
after the first) are concatenated beside the word's embedding. Both encoders pack their input and
the CRF masks, so a sentence's scores and tags do not depend on what it is batched with.
B sentences, S words, N distinct words, L characters, E word embedding, C character features
(2 x tagging.char_hidden_size), D encoder output, K tags.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from seq2seq.config import ModelConfig, TaggingConfig
from seq2seq.device import autocast
from seq2seq.modules.dropout import Dropout
from seq2seq.modules.encoder import RecurrentEncoder
from seq2seq.modules.init import initialize
from seq2seq.tasks.tagging.crf import LinearChainCRF
from seq2seq.tasks.tagging.vocab import PAD, UNK, TagBatch


class CharEncoder(nn.Module):
    """Character embeddings -> bidirectional RNN -> the final states of both directions (N, C)."""

    def __init__(self, embed: nn.Embedding, encoder: RecurrentEncoder):
        super().__init__()
        self.embed, self.encoder = embed, encoder
        self.output_size = encoder.output_size

    def forward(self, chars: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """chars (N, L), lengths (N,) on the CPU -> (N, C)."""
        _, final = self.encoder(self.embed(chars), lengths)
        return final


class SequenceTagger(nn.Module):
    """Embeddings, encoders, output layer and CRF, built elsewhere and passed in; `char_encoder`
    and `crf` may be None (no character features; a softmax for each token)."""

    def __init__(self, embed: nn.Embedding, char_encoder: CharEncoder | None, encoder: RecurrentEncoder,
                 output: nn.Linear, crf: LinearChainCRF | None, embedding_dropout: float = 0.0,
                 word_dropout: float = 0.0):
        super().__init__()
        self.embed, self.char_encoder, self.encoder, self.output, self.crf = embed, char_encoder, encoder, output, crf
        self.embedding_dropout = Dropout(embedding_dropout)
        self.word_dropout = word_dropout

    def forward(self, batch: TagBatch) -> torch.Tensor:
        """Tag scores (B, S, K) of a batch (on the model's device)."""
        words = batch.words
        if self.training and self.word_dropout:  # a word becomes UNK with this chance (its characters stay)
            dropped = (torch.rand(words.shape, device=words.device) < self.word_dropout) & (words != PAD)
            words = words.masked_fill(dropped, UNK)
        features = self.embedding_dropout(self.embed(words))  # (B, S, E)
        if self.char_encoder is not None:
            spelled = self.char_encoder(batch.chars, batch.char_lengths)  # (N, C)
            features = torch.cat([features, spelled[batch.spelling]], -1)  # (B, S, E + C)
        states, _ = self.encoder(features, batch.lengths)  # (B, S, D)
        return self.output(states)  # (B, S, K)

    def loss(self, scores: torch.Tensor, batch: TagBatch) -> torch.Tensor:
        """The batch's summed loss: each sentence's -log p(tags) under the CRF, or the tokens'
        cross-entropy."""
        mask = batch.mask
        if self.crf is not None:
            return self.crf.nll(scores, batch.tags, mask).sum()
        return F.cross_entropy(scores.float()[mask], batch.tags[mask], reduction="sum")

    @torch.no_grad()
    def decode(self, scores: torch.Tensor, batch: TagBatch) -> list[list[int]]:
        """The tag ids of each sentence: Viterbi under the CRF, else each token's most probable."""
        mask = batch.mask
        best = self.crf.decode(scores, mask)[0] if self.crf is not None else scores.argmax(-1)
        return [row[:n].tolist() for row, n in zip(best.cpu(), batch.lengths.tolist())]


def build_tagger(cfg: ModelConfig, task: TaggingConfig, num_words: int, num_chars: int,
                 num_tags: int) -> SequenceTagger:
    """Turn the recipe's model section (word embedding, encoder, init) and tagging section
    (character encoder, CRF, word dropout) into modules."""
    e = cfg.encoder
    chars = None
    if task.char_encoder:  # one layer, no dropout of its own: the word encoder's dropout sees its output
        chars = CharEncoder(nn.Embedding(num_chars, task.char_embedding_size, padding_idx=PAD),
                            RecurrentEncoder(e.cell, task.char_embedding_size, task.char_hidden_size, 1, True, 0.0,
                                             e.layer_norm))
    size = cfg.embedding_size + (chars.output_size if chars is not None else 0)
    encoder = RecurrentEncoder(e.cell, size, e.hidden_size, e.num_layers, e.bidirectional, e.dropout, e.layer_norm,
                               e.dropout_io)
    model = SequenceTagger(nn.Embedding(num_words, cfg.embedding_size, padding_idx=PAD), chars, encoder,
                           nn.Linear(encoder.output_size, num_tags), LinearChainCRF(num_tags) if task.crf else None,
                           cfg.embedding_dropout, task.word_dropout)
    initialize(model, cfg.init, cfg.embedding_init_std)
    return model


@torch.no_grad()
def predict(model: SequenceTagger, data, batch_size: int, device: torch.device, precision: str = "fp32",
            progress: bool = False) -> tuple[list[list[int]], float, int]:
    """Tag ids of every sentence of `data` (a TaggedSet), in its order, run in batches of
    `batch_size` sentences of similar length, in `precision` (resolved: seq2seq/device.py); with
    the summed loss and the tokens when `data` holds tags (else nan and 0). The model is left in
    the mode it was in."""
    was_training = model.training
    model.eval()
    order = sorted(range(len(data.words)), key=lambda i: len(data.words[i]))
    out: list[list[int]] = [[] for _ in order]
    loss, tokens = 0.0, 0
    for start in tqdm(range(0, len(order), batch_size), desc="tagging", unit="batch", disable=not progress,
                      leave=False):
        chunk = order[start:start + batch_size]
        batch = data.batch(chunk).to(device)
        with autocast(device, precision):
            scores = model(batch)
        scores = scores.float()
        for i, tags in zip(chunk, model.decode(scores, batch)):
            out[i] = tags
        if batch.tags is not None:
            loss += float(model.loss(scores, batch))
            tokens += int(batch.lengths.sum())
    model.train(was_training)
    return out, (loss if tokens else float("nan")), tokens
