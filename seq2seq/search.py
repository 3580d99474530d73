"""Greedy and beam search over a model's `encode` and `step`, vectorised over batch x beam.

A model for search has
    encode(src (B, S), lengths (B,)) -> (memory, state)    memory/state have .select(index)
    step(prev (B,), memory, state) -> (log_probs (B, V), weights (B, S), state)
Each sentence stops at its own maximum length, so results do not depend on the batch. At that
length a hypothesis may only end, and pays the model's own log P(EOS) for it (fairseq's rule), so
every score is the log-probability of its tokens and EOS (divided by the length penalty in beam).

Options for summarisation (all off by default): `min_length` keeps EOS out before that many
tokens; `no_repeat_ngram_size` n never lets a hypothesis repeat an n-gram it already holds (the
token that would complete it gets probability 0); `coverage_penalty_beta` adds GNMT's
beta * sum_i log(min(sum_t a_t,i, 1)) to the score of finished beam hypotheses.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from seq2seq.vocab import BOS, EOS


@dataclass
class Hypothesis:
    tokens: list[int]  # without BOS and EOS
    score: float  # log-probability, EOS included (beam: divided by the length penalty)
    attention: torch.Tensor | None = None  # (len(tokens) + 1, S), the EOS step included


def max_lengths(src_lengths: torch.Tensor, ratio: float, offset: int) -> torch.Tensor:
    """Per-sentence output budget: ratio * S + offset tokens before EOS."""
    return (src_lengths.float() * ratio).long() + offset


def length_penalty(length: torch.Tensor, alpha: float) -> torch.Tensor:
    """GNMT: ((5 + |Y|) / 6) ** alpha (Wu et al. 2016, arXiv:1609.08144); |Y| counts EOS."""
    return ((5.0 + length.float()) / 6.0) ** alpha


def block_repeats(log_probs: torch.Tensor, history: torch.Tensor, n: int) -> torch.Tensor:
    """-inf for every token that would complete an n-gram already in `history`.
    log_probs (N, V), history (N, t) tokens so far."""
    t = history.size(1)
    if n <= 0 or t < n:
        return log_probs
    windows = history.unfold(1, n, 1)  # (N, t - n + 1, n) every n-gram so far
    prefix = history[:, t - n + 1:]  # (N, n - 1) what the next token would extend
    match = (windows[..., :-1] == prefix.unsqueeze(1)).all(-1)  # (N, W)
    hits = torch.zeros_like(log_probs).scatter_add_(1, windows[..., -1], match.to(log_probs.dtype))
    return log_probs.masked_fill(hits > 0, float("-inf"))


def _block_eos(log_probs: torch.Tensor, t: int, min_length: int) -> torch.Tensor:
    """No EOS before `min_length` tokens; log_probs (..., V)."""
    if t >= min_length:
        return log_probs
    log_probs = log_probs.clone()
    log_probs[..., EOS] = float("-inf")
    return log_probs


def coverage_penalty(coverage: torch.Tensor, src_lengths: torch.Tensor, beta: float) -> torch.Tensor:
    """GNMT: beta * sum_i log(min(coverage_i, 1)) over real source positions (Wu et al. 2016,
    arXiv:1609.08144); coverage (B, K, S), src_lengths (B,) -> (B, K). A position never attended
    counts as 1e-6."""
    positions = torch.arange(coverage.size(-1), device=coverage.device)
    real = positions < src_lengths.to(coverage.device).view(-1, 1, 1)  # (B, 1, S)
    terms = torch.log(coverage.clamp(1e-6, 1.0)) * real
    return beta * terms.sum(-1)


def _end_rules(log_probs: torch.Tensor, t: int, min_length: int, over: torch.Tensor) -> torch.Tensor:
    """No EOS before `min_length` tokens; where `over` (rows at their length limit) is True only
    EOS may follow, at the model's own log-probability (as fairseq does), so a hypothesis cut at
    its limit pays log P(EOS) like one that ended by itself. log_probs (..., V), over (...)."""
    eos = log_probs[..., EOS]  # the model's, before min_length blocking: the limit wins
    log_probs = _block_eos(log_probs, t, min_length)
    if bool(over.any()):
        forced = torch.full_like(log_probs, float("-inf"))
        forced[..., EOS] = eos
        log_probs = torch.where(over.unsqueeze(-1), forced, log_probs)
    return log_probs


def advance(prev: torch.Tensor, chosen: torch.Tensor, t: int, score: torch.Tensor, finished: torch.Tensor,
            history: torch.Tensor) -> torch.Tensor:
    """One step of rows decoded side by side (greedy, sampling): each unfinished row adds the
    log-probability of its `chosen` token to `score`, a finished row emits EOS; the tokens go to
    history[:, t] and rows that emit EOS become `finished` (score, finished, history updated in
    place). prev, chosen, score, finished (R,); history (R, steps) -> the tokens (R,)."""
    score += torch.where(finished, torch.zeros_like(chosen), chosen)
    prev = torch.where(finished, torch.full_like(prev, EOS), prev)
    history[:, t] = prev
    finished |= prev == EOS
    return prev


@torch.no_grad()
def greedy_search(model, src: torch.Tensor, src_lengths: torch.Tensor, max_len: torch.Tensor, *,
                  return_attention: bool = False, min_length: int = 0,
                  no_repeat_ngram_size: int = 0) -> list[list[Hypothesis]]:
    """Argmax decoding; returns one hypothesis per sentence (as a 1-best list)."""
    memory, state = model.encode(src, src_lengths)
    batch = src.size(0)
    device = src.device
    max_len = max_len.to(device)
    prev = torch.full((batch,), BOS, dtype=torch.long, device=device)
    finished = torch.zeros(batch, dtype=torch.bool, device=device)
    score = torch.zeros(batch, device=device)
    history = torch.full((batch, int(max_len.max()) + 1), EOS, dtype=torch.long, device=device)
    attn = []
    for t in range(history.size(1)):
        log_probs, weights, state = model.step(prev, memory, state)
        if no_repeat_ngram_size and t:
            log_probs = block_repeats(log_probs, history[:, :t], no_repeat_ngram_size)
        log_probs = _end_rules(log_probs, t, min_length, max_len <= t)
        best, prev = log_probs.max(-1)
        prev = advance(prev, best, t, score, finished, history)
        if return_attention:
            attn.append(weights)
        if bool(finished.all()):
            break
    tokens = history[:, :t + 1].tolist()  # (B, t + 1)
    attn = torch.stack(attn, 1).cpu() if return_attention else None  # (B, t, S)
    out = []
    for b in range(batch):
        n = tokens[b].index(EOS) if EOS in tokens[b] else len(tokens[b])
        att = attn[b, :n + 1, :int(src_lengths[b])] if attn is not None else None
        out.append([Hypothesis(tokens[b][:n], float(score[b]), att)])
    return out


@torch.no_grad()
def beam_search(model, src: torch.Tensor, src_lengths: torch.Tensor, max_len: torch.Tensor, *,
                beam_size: int, alpha: float = 1.0, nbest: int = 1,
                return_attention: bool = False, min_length: int = 0, no_repeat_ngram_size: int = 0,
                coverage_penalty_beta: float = 0.0) -> list[list[Hypothesis]]:
    """Batched beam search; a sentence is done once `beam_size` hypotheses have ended.

    Alive beams live in (B, K) tensors; each step takes the best 2K continuations, moves those
    ending in EOS (among the first K) into a pool of the K best finished hypotheses, and keeps
    the best K others alive. No Python loop over sentences or hypotheses.
    """
    if not 1 <= nbest <= beam_size:
        raise ValueError(f"nbest {nbest} must be between 1 and beam_size {beam_size}")
    B, K = src.size(0), beam_size
    device = src.device
    max_len = max_len.to(device)
    memory, state = model.encode(src, src_lengths)
    expand = torch.arange(B, device=device).repeat_interleave(K)  # (B*K,)
    memory, state = memory.select(expand), state.select(expand)

    alive = torch.full((B, K), float("-inf"), device=device)
    alive[:, 0] = 0.0  # one live beam per sentence at the start
    alive_tokens = torch.empty(B, K, 0, dtype=torch.long, device=device)
    alive_attn = None
    pool = torch.full((B, K), float("-inf"), device=device)  # normalised finished scores
    pool_tokens = torch.full((B, K, 0), EOS, dtype=torch.long, device=device)
    pool_attn = None
    pool_count = torch.zeros(B, dtype=torch.long, device=device)
    prev = torch.full((B * K,), BOS, dtype=torch.long, device=device)
    offsets = (torch.arange(B, device=device) * K).unsqueeze(1)  # (B, 1)
    alive_cov = None  # (B, K, S) attention summed over each alive hypothesis' steps
    steps = int(max_len.max()) + 1
    penalties = length_penalty(torch.arange(1, steps + 1, device=device), alpha)  # by length t + 1

    for t in range(steps):
        log_probs, weights, state = model.step(prev, memory, state)
        V = log_probs.size(-1)
        if no_repeat_ngram_size and t:
            log_probs = block_repeats(log_probs, alive_tokens.reshape(B * K, t), no_repeat_ngram_size)
        log_probs = _end_rules(log_probs.view(B, K, V), t, min_length,
                               (max_len <= t).unsqueeze(1).expand(B, K))
        cand = (alive.unsqueeze(-1) + log_probs).view(B, K * V)
        top_scores, top_index = cand.topk(min(2 * K, K * V), dim=-1)  # (B, 2K)
        beam, token = top_index // V, top_index % V

        # Histories of the candidates: (B, 2K, t+1) tokens, (B, 2K, t+1, S) attention.
        gathered = alive_tokens.gather(1, beam.unsqueeze(-1).expand(-1, -1, t))
        cand_tokens = torch.cat([gathered, token.unsqueeze(-1)], -1)
        cand_attn = None
        if return_attention:
            w = weights.view(B, K, 1, -1)
            hist = w if alive_attn is None else torch.cat([alive_attn, w], 2)
            cand_attn = hist.gather(1, beam[..., None, None].expand(-1, -1, t + 1, hist.size(-1)))

        # Finished: EOS among the first K candidates of sentences not yet done.
        done = pool_count >= K
        ends = (token == EOS) & torch.isfinite(top_scores)
        ends[:, K:] = False
        ends &= ~done.unsqueeze(1)
        normed = top_scores / penalties[t]
        if coverage_penalty_beta:
            w = weights.view(B, K, -1).float()
            cov = w if alive_cov is None else alive_cov + w
            cand_cov = cov.gather(1, beam.unsqueeze(-1).expand(-1, -1, cov.size(-1)))  # (B, 2K, S)
            normed = normed + coverage_penalty(cand_cov, src_lengths, coverage_penalty_beta)
        new = torch.where(ends, normed, torch.full_like(normed, float("-inf")))
        pool_count = pool_count + ends.sum(1)
        pad = torch.full((B, K, 1), EOS, dtype=torch.long, device=device)
        merged = torch.cat([pool, new], 1)  # (B, 3K)
        merged_tokens = torch.cat([torch.cat([pool_tokens, pad], -1), cand_tokens], 1)
        pool, keep = merged.topk(K, dim=-1)
        pool_tokens = merged_tokens.gather(1, keep.unsqueeze(-1).expand(-1, -1, t + 1))
        if return_attention:
            S = weights.size(-1)
            old = pool_attn if pool_attn is not None else weights.new_zeros(B, K, t, S)
            merged_attn = torch.cat([torch.cat([old, old.new_zeros(B, K, 1, S)], 2), cand_attn], 1)
            pool_attn = merged_attn.gather(1, keep[..., None, None].expand(-1, -1, t + 1, merged_attn.size(-1)))

        # Alive: the best K candidates that did not end in EOS.
        live_scores = torch.where(token == EOS, torch.full_like(top_scores, float("-inf")), top_scores)
        alive, pick = live_scores.topk(K, dim=-1)  # (B, K)
        if coverage_penalty_beta:
            alive_cov = cand_cov.gather(1, pick.unsqueeze(-1).expand(-1, -1, cand_cov.size(-1)))
        alive_tokens = cand_tokens.gather(1, pick.unsqueeze(-1).expand(-1, -1, t + 1))
        if return_attention:
            alive_attn = cand_attn.gather(1, pick[..., None, None].expand(-1, -1, t + 1, cand_attn.size(-1)))
        source_beam = beam.gather(1, pick)  # (B, K)
        state = state.select((offsets + source_beam).view(-1))
        prev = alive_tokens[:, :, -1].reshape(-1)
        if bool((pool_count >= K).all()):
            break

    pool_tokens, pool = pool_tokens.tolist(), pool.tolist()
    out = []
    for b in range(B):
        hyps = []
        for k in range(nbest):
            if k > 0 and pool[b][k] == float("-inf"):
                break  # fewer than nbest hypotheses ever ended
            seq = pool_tokens[b][k]
            n = seq.index(EOS) if EOS in seq else len(seq)
            att = pool_attn[b, k, :n + 1, :int(src_lengths[b])].cpu() if pool_attn is not None else None
            hyps.append(Hypothesis(seq[:n], pool[b][k], att))
        out.append(hyps)
    return out
