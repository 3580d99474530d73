"""Search over many sources: batches of similar length (length_batches), each sentence's length
budget from the decoding section, results in input order. Used by the Translator (and through it
every command), by validation inside training and by tools/bench.py; the search itself is
seq2seq/search.py.

An empty source is not searched (the model never saw an empty sentence): its one hypothesis is
empty, with score 0 (log 1) and, when asked for, a (1, 0) attention matrix.

    hyps = decode_ids(model, [[5, 9, 7], [4]], recipe.decoding, device,
                      precision="fp32", beam_size=5, nbest=2)
    hyps[0][0].tokens, hyps[0][0].score   # the best hypothesis of the first source

With `sampling` (seq2seq/sampling.py) each source gets `nbest` samples instead, source i drawing
from sentence_generator(sampling.seed, first_index + i): a caller that decodes a long input in
pieces passes each piece's position, and gets what one call over the whole input gives.
"""

from __future__ import annotations

import torch
from tqdm import tqdm

from seq2seq.batch import collate
from seq2seq.config import DecodingConfig
from seq2seq.device import autocast
from seq2seq.errors import UserError
from seq2seq.sampling import Sampling, sample_search, sentence_generator
from seq2seq.search import Hypothesis, beam_search, greedy_search, max_lengths


def length_batches(lengths: list[int], size: int) -> list[list[int]]:
    """The indices of the non-zero `lengths`, shortest first, cut into batches of at most `size`
    sentences and at most size x (the median length) source positions, padding included (count x
    the batch's longest): a batch of typical sentences is full, one of long sentences holds fewer,
    so it pads less where lengths jump and takes no more memory than a full batch of typical ones.
    Ties keep input order."""
    order = sorted((i for i, n in enumerate(lengths) if n), key=lambda i: lengths[i])
    if not order:
        return []
    budget = size * lengths[order[len(order) // 2]]
    batches, batch = [], []
    for i in order:
        if batch and (len(batch) == size or (len(batch) + 1) * lengths[i] > budget):
            batches.append(batch)
            batch = []
        batch.append(i)
    return batches + [batch]


def decode_ids(model, sources: list[list[int]], cfg: DecodingConfig, device: torch.device, *,
               precision: str, beam_size: int | None = None, batch_size: int | None = None,
               nbest: int = 1, return_attention: bool = False, progress: bool = False,
               sampling: Sampling | None = None, first_index: int = 0) -> list[list[Hypothesis]]:
    """Search every non-empty source (id lists); `beam_size` and `batch_size` None take the
    decoding section's; `precision`, resolved (seq2seq/device.py): 'fp32', 'bf16' (autocast) or
    'int8' (a model from device.quantize_int8). Returns up to `nbest` hypotheses per source, best
    first; with `sampling`, `nbest` samples per source (the beam size is not used)."""
    beam = beam_size or cfg.beam_size
    size = batch_size or cfg.sentences_per_batch(greedy=beam == 1 and sampling is None)
    if sampling is not None:
        if nbest < 1:
            raise UserError(f"nbest {nbest}: the number of samples per line must be at least 1")
    elif not 1 <= nbest <= beam:
        raise UserError(f"nbest {nbest} is not between 1 and the beam size {beam} (a beam search "
                        "keeps beam_size hypotheses; greedy search one)")
    results: list[list[Hypothesis]] = [
        [] if s else [Hypothesis([], 0.0, torch.zeros(1, 0) if return_attention else None)]
        for s in sources]
    was_training = model.training
    model.eval()
    batches = length_batches([len(s) for s in sources], size)
    for idx in tqdm(batches, desc="decoding", unit="batch", disable=not progress, leave=False):
        batch = collate([sources[i] for i in idx]).to(device)
        limit = max_lengths(batch.src_lengths, cfg.max_length_ratio, cfg.max_length_offset)
        if cfg.max_length:
            limit = limit.clamp(max=cfg.max_length)
        with autocast(device, precision):
            if sampling is not None:
                hyps = sample_search(model, batch.src, batch.src_lengths, limit, sampling=sampling,
                                     generators=[sentence_generator(sampling.seed, first_index + i)
                                                 for i in idx],
                                     num_samples=nbest, return_attention=return_attention,
                                     min_length=cfg.min_length,
                                     no_repeat_ngram_size=cfg.no_repeat_ngram_size)
            elif beam == 1:
                hyps = greedy_search(model, batch.src, batch.src_lengths, limit,
                                     return_attention=return_attention, min_length=cfg.min_length,
                                     no_repeat_ngram_size=cfg.no_repeat_ngram_size)
            else:
                hyps = beam_search(model, batch.src, batch.src_lengths, limit, beam_size=beam,
                                   alpha=cfg.length_penalty, nbest=nbest,
                                   return_attention=return_attention, min_length=cfg.min_length,
                                   no_repeat_ngram_size=cfg.no_repeat_ngram_size,
                                   coverage_penalty_beta=cfg.coverage_penalty)
        for i, h in zip(idx, hyps):
            results[i] = h
    model.train(was_training)
    return results
