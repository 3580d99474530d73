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

Sentences that are done leave the batch, so later steps run the model on live sentences only:
their rows of the memory and state are kept with `.select`, the others' results are taken out
as they stand. When they leave (SHRINK_AT) changes the work only (and, as any other batch
would, the float rounding of the model's outputs).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch

from seq2seq.vocab import BOS, EOS

# Done sentences leave once they are this share of the rows searching: a shrink copies the live
# rows of the memory, so shrinks copy at most (1 - SHRINK_AT) / SHRINK_AT = 7 batches' memory in
# all, and at most this share of the rows the model runs on is wasted on done sentences.
SHRINK_AT = 0.125

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


def _greedy_hypotheses(out: list, rows: torch.Tensor, history: torch.Tensor, score: torch.Tensor,
                       attn: torch.Tensor | None, src_lengths: list[int]) -> None:
    """out[rows[r]] = [the output of row r]: history (R, steps) tokens up to the first EOS,
    score (R,), attn (R, steps, S) or None."""
    for r, (sentence, seq, value) in enumerate(zip(rows.tolist(), history.tolist(), score.tolist())):
        n = seq.index(EOS) if EOS in seq else len(seq)
        att = attn[r, :n + 1, :src_lengths[sentence]].cpu() if attn is not None else None
        out[sentence] = [Hypothesis(seq[:n], value, att)]


@torch.no_grad()
def greedy_search(model, src: torch.Tensor, src_lengths: torch.Tensor, max_len: torch.Tensor, *,
                  return_attention: bool = False, min_length: int = 0,
                  no_repeat_ngram_size: int = 0) -> list[list[Hypothesis]]:
    """Argmax decoding; returns one hypothesis per sentence (as a 1-best list). Sentences that
    have ended leave the batch (see SHRINK_AT); A counts the rows still searching."""
    memory, state = model.encode(src, src_lengths)
    B, device = src.size(0), src.device
    max_len = max_len.to(device)
    lengths = src_lengths.tolist()
    steps = int(max_len.max()) + 1
    rows = torch.arange(B, device=device)  # (A,) each row's sentence in the batch
    prev = torch.full((B,), BOS, dtype=torch.long, device=device)
    finished = torch.zeros(B, dtype=torch.bool, device=device)
    score = torch.zeros(B, device=device)
    history = torch.full((B, steps), EOS, dtype=torch.long, device=device)
    attn = None  # (A, steps, S) with return_attention
    out: list[list[Hypothesis]] = [[] for _ in range(B)]
    for t in range(steps):
        log_probs, weights, state = model.step(prev, memory, state)
        log_probs = log_probs.float()  # (A, V); under a bf16 autocast scores still add up in fp32
        if no_repeat_ngram_size and t:
            log_probs = block_repeats(log_probs, history[:, :t], no_repeat_ngram_size)
        log_probs = _end_rules(log_probs, t, min_length, max_len <= t)
        best, prev = log_probs.max(-1)
        prev = advance(prev, best, t, score, finished, history)
        if return_attention:
            if attn is None:
                attn = torch.zeros(B, steps, weights.size(-1), device=device)
            attn[:, t] = weights
        live, ended = rows.numel(), int(finished.sum())
        if ended == live:
            break
        if ended and ended >= SHRINK_AT * live:
            gone, keep = finished.nonzero().squeeze(1), (~finished).nonzero().squeeze(1)
            _greedy_hypotheses(out, rows[gone], history[gone], score[gone],
                               attn[gone] if attn is not None else None, lengths)
            rows, prev, finished, score, history, max_len = (
                x[keep] for x in (rows, prev, finished, score, history, max_len))
            attn = attn[keep] if attn is not None else None
            memory, state = memory.select(keep), state.select(keep)
    _greedy_hypotheses(out, rows, history, score, attn, lengths)
    return out


@dataclass
class _Beams:
    """Beam search's tensors for the A sentences still searching, K hypotheses each; row a is
    sentence `sentence[a]` of the batch. t: the steps taken, S: source positions."""

    sentence: torch.Tensor  # (A,)
    max_len: torch.Tensor  # (A,) output budget
    src_lengths: torch.Tensor  # (A,)
    alive: torch.Tensor  # (A, K) scores of the live hypotheses; -inf: none
    alive_tokens: torch.Tensor  # (A, K, t)
    pool: torch.Tensor  # (A, K) normalised scores of the best finished hypotheses, best first
    pool_tokens: torch.Tensor  # (A, K, t) their tokens, EOS after the end
    pool_count: torch.Tensor  # (A,) hypotheses ended so far
    alive_attn: torch.Tensor | None = None  # (A, K, t, S) with return_attention
    pool_attn: torch.Tensor | None = None  # (A, K, t, S) with return_attention
    alive_cov: torch.Tensor | None = None  # (A, K, S) attention summed, with a coverage penalty

    def select(self, index: torch.Tensor) -> "_Beams":
        return _Beams(*(None if x is None else x.index_select(0, index)
                        for x in (getattr(self, f.name) for f in fields(self))))

    def finish(self, out: list, nbest: int) -> None:
        """out[sentence] = its n-best list, for every sentence here."""
        pool, pool_tokens, lengths = self.pool.tolist(), self.pool_tokens.tolist(), self.src_lengths.tolist()
        for a, sentence in enumerate(self.sentence.tolist()):
            hyps = []
            for k in range(nbest):
                if k > 0 and pool[a][k] == float("-inf"):
                    break  # fewer than nbest hypotheses ever ended
                seq = pool_tokens[a][k]
                n = seq.index(EOS) if EOS in seq else len(seq)
                att = None
                if self.pool_attn is not None:
                    att = self.pool_attn[a, k, :n + 1, :lengths[a]].cpu()
                hyps.append(Hypothesis(seq[:n], pool[a][k], att))
            out[sentence] = hyps


@torch.no_grad()
def beam_search(model, src: torch.Tensor, src_lengths: torch.Tensor, max_len: torch.Tensor, *,
                beam_size: int, alpha: float = 1.0, nbest: int = 1,
                return_attention: bool = False, min_length: int = 0, no_repeat_ngram_size: int = 0,
                coverage_penalty_beta: float = 0.0) -> list[list[Hypothesis]]:
    """Batched beam search; a sentence is done once `beam_size` hypotheses have ended (or none
    is alive), and done sentences leave the batch (see SHRINK_AT).

    Alive beams live in (A, K) tensors; each step takes the best 2K continuations, moves those
    ending in EOS (among the first K) into a pool of the K best finished hypotheses, and keeps
    the best K others alive. No Python loop over sentences or hypotheses.
    """
    if not 1 <= nbest <= beam_size:
        raise ValueError(f"nbest {nbest} must be between 1 and beam_size {beam_size}")
    B, K = src.size(0), beam_size
    device = src.device
    memory, state = model.encode(src, src_lengths)
    expand = torch.arange(B, device=device).repeat_interleave(K)  # (B*K,)
    memory, state = memory.select(expand), state.select(expand)
    alive = torch.full((B, K), float("-inf"), device=device)
    alive[:, 0] = 0.0  # one live beam per sentence at the start
    b = _Beams(torch.arange(B, device=device), max_len.to(device), src_lengths.to(device), alive,
               torch.empty(B, K, 0, dtype=torch.long, device=device),
               torch.full((B, K), float("-inf"), device=device),
               torch.full((B, K, 0), EOS, dtype=torch.long, device=device),
               torch.zeros(B, dtype=torch.long, device=device))
    prev = torch.full((B * K,), BOS, dtype=torch.long, device=device)
    steps = int(b.max_len.max()) + 1
    penalties = length_penalty(torch.arange(1, steps + 1, device=device), alpha)  # by length t + 1
    out: list[list[Hypothesis]] = [[] for _ in range(B)]

    for t in range(steps):
        A = b.sentence.numel()
        log_probs, weights, state = model.step(prev, memory, state)
        log_probs = log_probs.float()  # (A*K, V); under a bf16 autocast scores still add up in fp32
        V = log_probs.size(-1)
        if no_repeat_ngram_size and t:
            log_probs = block_repeats(log_probs, b.alive_tokens.reshape(A * K, t), no_repeat_ngram_size)
        log_probs = _end_rules(log_probs.view(A, K, V), t, min_length,
                               (b.max_len <= t).unsqueeze(1).expand(A, K))
        cand = (b.alive.unsqueeze(-1) + log_probs).view(A, K * V)
        top_scores, top_index = cand.topk(min(2 * K, K * V), dim=-1)  # (A, 2K)
        beam, token = top_index // V, top_index % V

        # Histories of the candidates: (A, 2K, t+1) tokens, (A, 2K, t+1, S) attention.
        gathered = b.alive_tokens.gather(1, beam.unsqueeze(-1).expand(-1, -1, t))
        cand_tokens = torch.cat([gathered, token.unsqueeze(-1)], -1)
        cand_attn = None
        if return_attention:
            w = weights.float().view(A, K, 1, -1)
            hist = w if b.alive_attn is None else torch.cat([b.alive_attn, w], 2)
            cand_attn = hist.gather(1, beam[..., None, None].expand(-1, -1, t + 1, hist.size(-1)))

        # Finished: EOS among the first K candidates of sentences not yet done.
        ends = (token == EOS) & torch.isfinite(top_scores)
        ends[:, K:] = False
        ends &= (b.pool_count < K).unsqueeze(1)
        normed = top_scores / penalties[t]
        if coverage_penalty_beta:
            w = weights.view(A, K, -1).float()
            cov = w if b.alive_cov is None else b.alive_cov + w
            cand_cov = cov.gather(1, beam.unsqueeze(-1).expand(-1, -1, cov.size(-1)))  # (A, 2K, S)
            normed = normed + coverage_penalty(cand_cov, b.src_lengths, coverage_penalty_beta)
        new = torch.where(ends, normed, torch.full_like(normed, float("-inf")))
        b.pool_count = b.pool_count + ends.sum(1)
        pad = torch.full((A, K, 1), EOS, dtype=torch.long, device=device)
        merged = torch.cat([b.pool, new], 1)  # (A, 3K)
        merged_tokens = torch.cat([torch.cat([b.pool_tokens, pad], -1), cand_tokens], 1)
        b.pool, keep = merged.topk(K, dim=-1)
        b.pool_tokens = merged_tokens.gather(1, keep.unsqueeze(-1).expand(-1, -1, t + 1))
        if return_attention:
            S = cand_attn.size(-1)
            old = b.pool_attn if b.pool_attn is not None else cand_attn.new_zeros(A, K, t, S)
            merged_attn = torch.cat([torch.cat([old, old.new_zeros(A, K, 1, S)], 2), cand_attn], 1)
            b.pool_attn = merged_attn.gather(1, keep[..., None, None].expand(-1, -1, t + 1, S))

        # Alive: the best K candidates that did not end in EOS.
        live_scores = torch.where(token == EOS, torch.full_like(top_scores, float("-inf")), top_scores)
        b.alive, pick = live_scores.topk(K, dim=-1)  # (A, K)
        if coverage_penalty_beta:
            b.alive_cov = cand_cov.gather(1, pick.unsqueeze(-1).expand(-1, -1, cand_cov.size(-1)))
        b.alive_tokens = cand_tokens.gather(1, pick.unsqueeze(-1).expand(-1, -1, t + 1))
        if return_attention:
            b.alive_attn = cand_attn.gather(1, pick[..., None, None].expand(-1, -1, t + 1, cand_attn.size(-1)))
        offsets = torch.arange(A, device=device).unsqueeze(1) * K  # (A, 1)
        reorder = (offsets + beam.gather(1, pick)).view(-1)  # (A*K,) the row each hypothesis extends
        prev = b.alive_tokens[:, :, -1].reshape(-1)

        # Done: K hypotheses have ended, or none is alive; nothing can change such a sentence.
        done = (b.pool_count >= K) | ~torch.isfinite(b.alive).any(1)  # (A,)
        ended = int(done.sum())
        if ended == A:
            break
        if ended and ended >= SHRINK_AT * A:
            gone, stay = done.nonzero().squeeze(1), (~done).nonzero().squeeze(1)
            b.select(gone).finish(out, nbest)
            b = b.select(stay)
            rows = (stay.unsqueeze(1) * K + torch.arange(K, device=device)).view(-1)  # (A'*K,)
            memory, reorder, prev = memory.select(rows), reorder[rows], prev[rows]
        state = state.select(reorder)
    b.finish(out, nbest)
    return out
