"""The encoder-decoder, and build_model: the one place where recipe values become modules."""

from __future__ import annotations

import dataclasses
import os

import torch
from torch import nn

from seq2seq.batch import Batch
from seq2seq.config import ModelConfig
from seq2seq.errors import UserError
from seq2seq.modules.attention import build_attention
from seq2seq.modules.conditional import ConditionalDecoder
from seq2seq.modules.copy import PointerGenerator
from seq2seq.modules.decoder import DecoderState, Memory, RecurrentDecoder
from seq2seq.modules.dropout import Dropout, dropout
from seq2seq.modules.encoder import RecurrentEncoder
from seq2seq.modules.init import initialize
from seq2seq.vocab import PAD, UNK


class Seq2Seq(nn.Module):
    """Embeddings, encoder, decoder and output layer, built elsewhere and passed in.

    With a `copy` layer (pointer-generator) source and target ids may be extended ids (>= V, one
    per source-only piece, see extended.py): they are embedded as UNK, and the outputs are
    log-probabilities over the extended vocabulary V + memory.extra.

    Dropout, in training only: `embedding_dropout` on every embedded unit; `source_word_dropout`
    on whole source pieces (Sennrich, Haddow & Birch 2016, WMT16, Nematus's dropout_source): a
    piece's embedding is zeroed with that chance and the others are scaled by 1 / (1 - p), as
    nn.Dropout scales; `output_dropout` on the output layer's input (the decoder's attentional
    vector, not what input feeding passes on to the next step).
    """

    def __init__(self, src_embed: nn.Embedding, tgt_embed: nn.Embedding, encoder: RecurrentEncoder,
                 decoder: RecurrentDecoder | ConditionalDecoder, generator: nn.Linear,
                 embedding_dropout: float = 0.0, teacher_forcing: float = 1.0,
                 copy: PointerGenerator | None = None, source_word_dropout: float = 0.0,
                 output_dropout: float = 0.0):
        super().__init__()
        self.src_embed, self.tgt_embed = src_embed, tgt_embed
        self.encoder, self.decoder, self.generator = encoder, decoder, generator
        self.copy = copy
        self.embedding_dropout = Dropout(embedding_dropout)
        self.source_word_dropout = source_word_dropout
        self.output_dropout = Dropout(output_dropout)
        self.teacher_forcing = teacher_forcing  # ratio of gold previous tokens while training

    def _embed(self, embedding: nn.Embedding, ids: torch.Tensor) -> torch.Tensor:
        if self.copy is not None:  # extended ids read as UNK
            ids = ids.masked_fill(ids >= embedding.num_embeddings, UNK)
        return embedding(ids)

    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor) -> tuple[Memory, DecoderState]:
        """src (B, S) -> the memory the decoder attends to and its initial state."""
        embedded = self.embedding_dropout(self._embed(self.src_embed, src))  # (B, S, E)
        if self.training and self.source_word_dropout > 0:  # one draw per piece: (B, S, 1)
            keep = dropout(embedded.new_ones(*src.shape, 1), self.source_word_dropout)
            embedded = embedded * keep
        values, final = self.encoder(embedded, src_lengths)
        memory = Memory(values, self.decoder.attention.prepare_keys(values), src != PAD)
        if self.copy is not None:
            memory.src = src
            memory.extra = max(0, int(src.max()) + 1 - self.generator.out_features)
        return memory, self.decoder.init_state(final)

    def _output(self, att, embedded, weights, memory):
        """Logits (B, T, V); with copy, log-probabilities (B, T, V + extra)."""
        att = self.output_dropout(att)
        logits = self.generator(att)
        if self.copy is None:
            return logits
        return self.copy(logits, att, embedded, weights, memory.src, memory.extra)

    def forward(self, batch: Batch, targets_only: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher-forced logits (B, T, V) and attention weights (B, T, S). With copy the first
        are log-probabilities (B, T, V + extra): log_softmax leaves them as they are, so the
        losses that take logits take them too. `targets_only` (copy only): instead of those,
        the log-probabilities of batch.tgt_out alone (B, T), what the loss without label
        smoothing reads (PointerGenerator.target_log_probs)."""
        memory, state = self.encode(batch.src, batch.src_lengths)
        if self.training and self.teacher_forcing < 1.0:
            logits, weights = self._scheduled_sampling(batch.tgt_in, memory, state)
            if targets_only:
                logits = logits.gather(-1, batch.tgt_out.unsqueeze(-1)).squeeze(-1).float()
            return logits, weights
        embedded = self.embedding_dropout(self._embed(self.tgt_embed, batch.tgt_in))  # (B, T, E)
        att, weights, _ = self.decoder(embedded, memory, state)
        if targets_only:
            if self.copy is None:
                raise ValueError("targets_only is for a model with copy")
            att = self.output_dropout(att)
            return self.copy.target_log_probs(self.generator(att), att, embedded, weights, memory.src,
                                              batch.tgt_out), weights
        return self._output(att, embedded, weights, memory), weights

    def _scheduled_sampling(self, tgt_in, memory, state):
        """Each step takes the gold previous token with probability `teacher_forcing`, else the
        model's own argmax (Bengio et al. 2015, arXiv:1506.03099)."""
        logits, weights, prev = [], [], tgt_in[:, 0]
        for t in range(tgt_in.size(1)):
            if t > 0:
                gold = torch.rand(prev.shape, device=prev.device) < self.teacher_forcing
                prev = torch.where(gold, tgt_in[:, t], logits[-1].argmax(-1))
            emb = self.embedding_dropout(self._embed(self.tgt_embed, prev)).unsqueeze(1)
            att, w, state = self.decoder.step(emb, memory, state)
            logits.append(self._output(att, emb, w, memory).squeeze(1))
            weights.append(w)
        return torch.stack(logits, 1), torch.cat(weights, 1)

    def step(self, prev: torch.Tensor, memory: Memory, state: DecoderState):
        """One search step: prev (B,) -> log-probabilities (B, V), weights (B, S), new state.
        With copy V is the extended vocabulary and an extended prev is fed back as UNK."""
        embedded = self._embed(self.tgt_embed, prev).unsqueeze(1)  # (B, 1, E)
        att, weights, state = self.decoder.step(embedded, memory, state)
        out = self._output(att, embedded, weights, memory).squeeze(1)  # with copy: log-probabilities
        log_probs = out if self.copy is not None else torch.log_softmax(out.float(), dim=-1)
        return log_probs, weights.squeeze(1), state


def _assemble(cfg: ModelConfig, src_vocab_size: int, tgt_vocab_size: int,
              teacher_forcing: float = 1.0) -> Seq2Seq:
    e, d = cfg.encoder, cfg.decoder
    src_embed = nn.Embedding(src_vocab_size, cfg.embedding_size, padding_idx=PAD)
    tgt_embed = src_embed if cfg.share_embeddings else nn.Embedding(
        tgt_vocab_size, cfg.embedding_size, padding_idx=PAD)
    encoder = RecurrentEncoder(e.cell, cfg.embedding_size, e.hidden_size, e.num_layers,
                               e.bidirectional, e.dropout, e.layer_norm, e.dropout_io)
    attention = build_attention(cfg.attention.type, d.hidden_size, encoder.output_size,
                                cfg.attention.hidden_size, cfg.attention.coverage, cfg.attention.scaled)
    if d.type == "conditional":  # (num_layers 1: recipe_check.py)
        decoder = ConditionalDecoder(d.cell, cfg.embedding_size, d.hidden_size, d.dropout, attention,
                                     encoder.output_size, d.input_feeding, d.init, d.layer_norm, d.feed_dropout)
    else:
        decoder = RecurrentDecoder(d.cell, cfg.embedding_size, d.hidden_size, d.num_layers, d.dropout,
                                   attention, encoder.output_size, d.input_feeding, d.init, d.layer_norm,
                                   d.feed_dropout)
    generator = nn.Linear(decoder.output_size, tgt_vocab_size)
    if cfg.tie_output:  # with share_embeddings: one matrix for source, target and output
        generator.weight = tgt_embed.weight
    copy = PointerGenerator(decoder.output_size, cfg.embedding_size) if cfg.copy else None
    return Seq2Seq(src_embed, tgt_embed, encoder, decoder, generator, cfg.embedding_dropout,
                   teacher_forcing, copy, cfg.source_word_dropout, d.output_dropout)


def count_parameters(cfg: ModelConfig, src_vocab_size: int, tgt_vocab_size: int) -> int:
    """The parameters build_model makes, counted on the meta device (no memory). Stacked layers
    past the second are alike, so a stack of any depth is counted from stacks of two and three."""

    def count(encoder_layers: int, decoder_layers: int) -> int:
        section = dataclasses.replace(
            cfg, encoder=dataclasses.replace(cfg.encoder, num_layers=encoder_layers),
            decoder=dataclasses.replace(cfg.decoder, num_layers=decoder_layers))
        with torch.device("meta"):
            return sum(p.numel() for p in _assemble(section, src_vocab_size, tgt_vocab_size).parameters())

    enc, dec = cfg.encoder.num_layers, cfg.decoder.num_layers
    e2, d2 = min(enc, 2), min(dec, 2)
    total = count(e2, d2)
    if enc > 2:
        total += (enc - 2) * (count(3, d2) - count(2, d2))
    if dec > 2:
        total += (dec - 2) * (count(e2, 3) - count(e2, 2))
    return total


def _check_fits(cfg: ModelConfig, src_vocab_size: int, tgt_vocab_size: int) -> None:
    """The float32 weights must fit in this machine's memory, where they are built: said before
    any allocation, which would otherwise fail with a traceback or end in the OOM killer."""
    sizes = (f"model.embedding_size {cfg.embedding_size}, model.encoder.hidden_size "
             f"{cfg.encoder.hidden_size} x model.encoder.num_layers {cfg.encoder.num_layers}, "
             f"model.decoder.hidden_size {cfg.decoder.hidden_size} x model.decoder.num_layers "
             f"{cfg.decoder.num_layers}, vocabularies of {src_vocab_size} and {tgt_vocab_size} pieces "
             "(vocab.size)")
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows): nothing to compare with
        return
    try:
        params = count_parameters(cfg, src_vocab_size, tgt_vocab_size)
    except (RuntimeError, TypeError, OverflowError, ValueError):  # a size past what torch counts
        raise UserError(f"model: too large to build in memory ({sizes})") from None
    if 4 * params > memory:
        raise UserError(f"model: {params:.3g} parameters need {4 * params / 2**30:,.0f} GiB of memory "
                        f"as float32, this machine has {memory / 2**30:,.0f} GiB ({sizes})")


def build_model(cfg: ModelConfig, src_vocab_size: int, tgt_vocab_size: int,
                teacher_forcing: float = 1.0) -> Seq2Seq:
    """Turn the recipe's model section into modules; a model too big for memory is a UserError."""
    _check_fits(cfg, src_vocab_size, tgt_vocab_size)
    model = _assemble(cfg, src_vocab_size, tgt_vocab_size, teacher_forcing)
    initialize(model, cfg.init, cfg.embedding_init_std)
    return model
