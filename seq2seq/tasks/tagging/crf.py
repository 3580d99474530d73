"""A linear-chain conditional random field over per-token tag scores (Lafferty et al. 2001; as the
output layer of a BiLSTM tagger: Huang et al. 2015, Lample et al. 2016).

A tag sequence y of a sentence of n tokens with emission scores E (n, K) scores

    s(y) = start[y_1] + sum_t E[t, y_t] + sum_{t>1} transitions[y_{t-1}, y_t] + end[y_n]

and p(y) = exp s(y) / Z, Z summed over all K^n sequences. log Z comes from the forward algorithm
in log space, the best sequence from Viterbi; both run over the whole batch at once, one step per
position, and a sentence's result does not depend on its batch: past its length a sentence's
forward variables are carried unchanged, and its Viterbi back-pointers pass the tag through. Both
are tested against enumerating every sequence (tests/test_tagging.py).

Scores are computed in float32 whatever the emissions' dtype. B batch, T positions, K tags;
`mask` (B, T) is True at a sentence's tokens, which come first (every sentence has one or more).
"""

from __future__ import annotations

import torch
from torch import nn


class LinearChainCRF(nn.Module):
    """Transition scores between tags, and from the start and to the end of a sentence; zero at first."""

    def __init__(self, num_tags: int):
        super().__init__()
        self.num_tags = num_tags
        self.transitions = nn.Parameter(torch.zeros(num_tags, num_tags))  # [from, to]
        self.start = nn.Parameter(torch.zeros(num_tags))
        self.end = nn.Parameter(torch.zeros(num_tags))

    def sequence_score(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """s(y) of the given tags: emissions (B, T, K), tags (B, T) (anything past the end), mask (B, T) -> (B,)."""
        emissions, m = emissions.float(), mask.float()
        lengths = mask.sum(1)  # (B,)
        emitted = emissions.gather(2, tags.unsqueeze(2)).squeeze(2)  # (B, T)
        moved = self.transitions[tags[:, :-1], tags[:, 1:]]  # (B, T-1)
        last = tags.gather(1, (lengths - 1).unsqueeze(1)).squeeze(1)  # (B,)
        return (self.start[tags[:, 0]] + (emitted * m).sum(1) + (moved * m[:, 1:]).sum(1)
                + self.end[last])

    def log_partition(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """log Z: emissions (B, T, K), mask (B, T) -> (B,)."""
        emissions = emissions.float()
        alpha = self.start + emissions[:, 0]  # (B, K): log-sum of the paths ending in each tag
        for t in range(1, emissions.size(1)):
            # paths ending in tag i at t-1, then i -> j, then j's emission: (B, K_i, K_j)
            step = alpha.unsqueeze(2) + self.transitions + emissions[:, t].unsqueeze(1)
            alpha = torch.where(mask[:, t].unsqueeze(1), step.logsumexp(1), alpha)
        return (alpha + self.end).logsumexp(1)

    def nll(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """-log p(tags) of each sentence: (B,)."""
        return self.log_partition(emissions, mask) - self.sequence_score(emissions, tags, mask)

    @torch.no_grad()
    def decode(self, emissions: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Viterbi: the best tags (B, T) (0 past each sentence's end) and their score s(y) (B,)."""
        emissions = emissions.float()
        batch, length, k = emissions.shape
        score = self.start + emissions[:, 0]  # (B, K): the best path ending in each tag
        keep = torch.arange(k, device=emissions.device).expand(batch, k)  # back-pointers past the end
        pointers = []
        for t in range(1, length):
            step = score.unsqueeze(2) + self.transitions + emissions[:, t].unsqueeze(1)  # (B, K_i, K_j)
            best, previous = step.max(1)  # (B, K_j)
            inside = mask[:, t].unsqueeze(1)
            score = torch.where(inside, best, score)
            pointers.append(torch.where(inside, previous, keep))
        final, tag = (score + self.end).max(1)  # (B,)
        tags = [tag]
        for previous in reversed(pointers):
            tag = previous.gather(1, tag.unsqueeze(1)).squeeze(1)
            tags.append(tag)
        tags = torch.stack(tags[::-1], 1)  # (B, T)
        return tags.masked_fill(~mask, 0), final
