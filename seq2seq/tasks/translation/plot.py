"""Attention heatmaps (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402


def plot_attention(weights: torch.Tensor, src_tokens: list[str], tgt_tokens: list[str],
                   path: str | Path, title: str = "") -> None:
    """weights (T, S): row t is the attention of output token t over the source tokens."""
    weights = weights.float().numpy()
    fig, ax = plt.subplots(figsize=(max(4, 0.35 * len(src_tokens) + 1.5),
                                    max(3, 0.35 * len(tgt_tokens) + 1.2)))
    image = ax.imshow(weights, cmap="viridis", aspect="auto", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(len(src_tokens)), src_tokens, rotation=90)
    ax.set_yticks(range(len(tgt_tokens)), tgt_tokens)
    ax.set_xlabel("source")
    ax.set_ylabel("output")
    if title:
        ax.set_title(title)
    fig.colorbar(image, ax=ax, fraction=0.04)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
