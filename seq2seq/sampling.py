"""Sampling: drawing outputs from the model's distribution instead of searching for the best one,
for diverse outputs and back-translation by sampling (Edunov et al. 2018, arXiv:1808.09381).

`filter_log_probs` is the one place where temperature, top-k and top-p (nucleus) cut a
distribution; `sample_search` draws whole outputs with it, vectorised over batch x samples like
greedy search (the same end rules: min_length, n-gram blocking, EOS forced at the length limit).

Reproducible and independent of the batch: the draws of input line i come from its own
torch.Generator, seeded from (seed, i), and every uniform number a sentence may use is drawn up
front, (samples, its own maximum length + 1) of them, so neither its batch nor the order in which
sentences are searched changes its samples (up to the float rounding that batching may change in
the model's own probabilities, as in greedy search). Output token t of sample j is the first
token whose cumulative filtered probability exceeds uniform[j, t] (inverse-CDF sampling).

    sampling = parse_sampling("topp:0.9", temperature=0.8, seed=1)   # None for greedy / beam
    hyps = sample_search(model, src, lengths, limit, sampling=sampling, num_samples=4,
                         generators=[sentence_generator(1, i) for i in range(src.size(0))])
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import torch

from seq2seq.errors import UserError
from seq2seq.search import Hypothesis, _end_rules, advance, block_repeats
from seq2seq.vocab import BOS, EOS

SCHEMES = "greedy, beam, topk:K (a whole K >= 1) or topp:P (0 < P <= 1)"


@dataclass(frozen=True)
class Sampling:
    """What to sample from: the model's distribution at `temperature`, cut to the `top_k` most
    probable tokens, then to the nucleus of probability `top_p`, renormalised."""

    top_k: int = 0  # 0: no top-k cut
    top_p: float = 1.0  # 1.0: no nucleus cut
    temperature: float = 1.0  # below 1 sharpens the distribution, above 1 flattens it
    seed: int = 0  # line i draws from sentence_generator(seed, i)


def parse_sampling(scheme: str, temperature: float | None = None, seed: int | None = None, *,
                   where: str = "sampling") -> Sampling | None:
    """'topk:K' or 'topp:P' -> a Sampling (temperature and seed None: the defaults above);
    'greedy' and 'beam' -> None (a search, not sampling). A bad scheme or value is a UserError
    naming `where` (a flag or an argument name)."""
    name, _, value = scheme.partition(":")
    temperature = Sampling.temperature if temperature is None else temperature
    if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature > 0):
        raise UserError(f"temperature {temperature}: must be a number above 0 (1: the model's "
                        "own distribution; near 0: nearly greedy)")
    seed = Sampling.seed if seed is None else seed
    if scheme in ("greedy", "beam"):
        return None
    try:
        if name == "topk" and int(value) >= 1:
            return Sampling(top_k=int(value), temperature=float(temperature), seed=int(seed))
        if name == "topp" and 0.0 < float(value) <= 1.0:
            return Sampling(top_p=float(value), temperature=float(temperature), seed=int(seed))
    except ValueError:
        pass
    raise UserError(f"{where} {scheme!r}: expected {SCHEMES}")


def filter_log_probs(logits: torch.Tensor, temperature: float = 1.0, top_k: int = 0,
                     top_p: float = 1.0) -> torch.Tensor:
    """The distribution to sample from: log_softmax(logits / temperature), cut to the `top_k`
    most probable tokens (0: no cut; tokens tied with the k-th stay), then to the nucleus, the
    fewest most probable tokens whose probability reaches `top_p` (Holtzman et al. 2020,
    arXiv:1904.09751; 1.0: no cut), renormalised. The most probable token always stays.
    logits (N, V) (log-probabilities are logits too; -inf stays -inf) -> log-probabilities
    (N, V), -inf outside the cut."""
    scores = logits.float() / temperature  # (N, V)
    if 0 < top_k < scores.size(-1):
        kth = scores.topk(top_k, dim=-1).values[..., -1:]  # (N, 1)
        scores = scores.masked_fill(scores < kth, float("-inf"))
    log_probs = scores.log_softmax(-1)
    if top_p < 1.0:
        ranked, order = log_probs.sort(-1, descending=True)  # (N, V)
        probs = ranked.exp()
        above = probs.cumsum(-1) - probs  # probability of the tokens ranked above each one
        drop = torch.zeros_like(above, dtype=torch.bool).scatter(-1, order, above >= top_p)
        log_probs = log_probs.masked_fill(drop, float("-inf")).log_softmax(-1)
    return log_probs


def draw(log_probs: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
    """Inverse-CDF sampling: for each row the first token whose cumulative probability exceeds
    its uniform number; a token of probability 0 is never drawn. log_probs (N, V), uniforms (N,)
    in [0, 1) -> tokens (N,)."""
    probs = log_probs.double().exp()  # (N, V)
    cdf = probs.cumsum(-1)
    token = torch.searchsorted(cdf, (uniforms.double() * cdf[:, -1]).unsqueeze(-1), right=True)
    # u * total may round up to total: then the last token of positive probability
    last = probs.size(-1) - 1 - (probs > 0).flip(-1).int().argmax(-1)  # (N,)
    return torch.minimum(token.squeeze(-1), last)


def sentence_generator(seed: int, index: int) -> torch.Generator:
    """The generator of input line `index` under `seed` (a CPU generator, whatever the device):
    seeded from a hash of both, so lines draw unrelated streams."""
    digest = hashlib.blake2b(f"{seed}:{index}".encode(), digest_size=8).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest, "little") & (2 ** 63 - 1))


@torch.no_grad()
def sample_search(model, src: torch.Tensor, src_lengths: torch.Tensor, max_len: torch.Tensor, *,
                  sampling: Sampling, generators: list[torch.Generator], num_samples: int = 1,
                  return_attention: bool = False, min_length: int = 0,
                  no_repeat_ngram_size: int = 0) -> list[list[Hypothesis]]:
    """`num_samples` samples per sentence, sentence b drawing from generators[b] only. Each
    token is drawn from filter_log_probs of the model's distribution after the end rules; a
    sample's score is the model's own log-probability of its tokens and EOS (unfiltered, at
    temperature 1, as greedy search scores). Samples come best score first (ties in draw order)
    and may repeat."""
    if num_samples < 1 or len(generators) != src.size(0):
        raise ValueError(f"num_samples {num_samples} must be >= 1 and generators one per sentence "
                         f"({len(generators)} for {src.size(0)})")
    B, N = src.size(0), num_samples
    device = src.device
    max_len = max_len.to(device)
    steps = int(max_len.max()) + 1
    uniforms = torch.zeros(B, N, steps, dtype=torch.float64)  # what each sample may use
    for b, generator in enumerate(generators):
        n = int(max_len[b]) + 1  # this sentence's own budget: the batch does not show
        uniforms[b, :, :n] = torch.rand(N, n, generator=generator, dtype=torch.float64)
    uniforms = uniforms.view(B * N, steps).to(device)  # row b * N + j: sample j of sentence b

    memory, state = model.encode(src, src_lengths)
    expand = torch.arange(B, device=device).repeat_interleave(N)  # (B*N,)
    memory, state = memory.select(expand), state.select(expand)
    limit = max_len[expand]  # (B*N,)
    prev = torch.full((B * N,), BOS, dtype=torch.long, device=device)
    finished = torch.zeros(B * N, dtype=torch.bool, device=device)
    score = torch.zeros(B * N, device=device)
    history = torch.full((B * N, steps), EOS, dtype=torch.long, device=device)
    attn = []
    for t in range(steps):
        log_probs, weights, state = model.step(prev, memory, state)
        log_probs = log_probs.float()  # (B*N, V)
        if no_repeat_ngram_size and t:
            log_probs = block_repeats(log_probs, history[:, :t], no_repeat_ngram_size)
        log_probs = _end_rules(log_probs, t, min_length, limit <= t)
        filtered = filter_log_probs(log_probs, sampling.temperature, sampling.top_k, sampling.top_p)
        prev = draw(filtered, uniforms[:, t])
        chosen = log_probs.gather(1, prev.unsqueeze(1)).squeeze(1)  # the model's, unfiltered
        prev = advance(prev, chosen, t, score, finished, history)
        if return_attention:
            attn.append(weights)
        if bool(finished.all()):
            break
    tokens = history[:, :t + 1].tolist()  # (B*N, t + 1)
    attn = torch.stack(attn, 1).cpu() if return_attention else None  # (B*N, t + 1, S)
    scores = score.tolist()
    out = []
    for b in range(B):
        hyps = []
        for row in range(b * N, (b + 1) * N):
            n = tokens[row].index(EOS) if EOS in tokens[row] else len(tokens[row])
            att = attn[row, :n + 1, :int(src_lengths[b])] if attn is not None else None
            hyps.append(Hypothesis(tokens[row][:n], scores[row], att))
        out.append(sorted(hyps, key=lambda h: -h.score))
    return out
