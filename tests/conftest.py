"""Shared fixtures: a tiny synthetic parallel corpus (reverse a string of letters), a tiny recipe,
a character vocabulary, and small models with weights filled from sin(arange) (no RNG)."""

from __future__ import annotations

import random
from pathlib import Path

import datasets
import pytest
import torch

from seq2seq.config import VocabConfig, recipe_from_dict
from seq2seq.loss import sequence_nll
from seq2seq.tasks.translation.model import build_model
from seq2seq.vocab import train_sentencepiece

# Tiny models: threads only contend (one overfit test ran 25x slower on 2 threads than on 1).
torch.set_num_threads(1)
LETTERS = "abcdefgh"


def reverse_pairs(n: int, seed: int, min_len: int = 2, max_len: int = 6) -> list[tuple[str, str]]:
    """n pairs 'abc' -> 'cba' over LETTERS; deterministic for a seed."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        s = "".join(rng.choice(LETTERS) for _ in range(rng.randint(min_len, max_len)))
        pairs.append((s, s[::-1]))
    return pairs


def write_split(folder: Path, prefix: str, pairs: list[tuple[str, str]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{prefix}.src").write_text("".join(s + "\n" for s, _ in pairs), encoding="utf-8")
    (folder / f"{prefix}.tgt").write_text("".join(t + "\n" for _, t in pairs), encoding="utf-8")


def fill_deterministic(model: torch.nn.Module, scale: float = 0.5) -> torch.nn.Module:
    """Every parameter from sin(0.7 * arange + i): values that do not depend on torch's RNG."""
    with torch.no_grad():
        for i, (_, p) in enumerate(sorted(model.named_parameters())):
            p.copy_(scale * torch.sin(torch.arange(p.numel(), dtype=torch.float32) * 0.7 + i).view_as(p))
    return model


@pytest.fixture(autouse=True, scope="session")
def _datasets_cache(tmp_path_factory):
    """Keep the Arrow cache of load_corpus out of the user's ~/.cache."""
    old = datasets.config.HF_DATASETS_CACHE
    datasets.config.HF_DATASETS_CACHE = tmp_path_factory.mktemp("hf_datasets")
    yield
    datasets.config.HF_DATASETS_CACHE = old


def write_reverse_corpus(folder: Path) -> Path:
    """folder/{train,valid}.{src,tgt}: 48 and 8 pairs of the reversal task."""
    write_split(folder, "train", reverse_pairs(48, seed=0))
    write_split(folder, "valid", reverse_pairs(8, seed=1))
    return folder


@pytest.fixture(scope="session")
def reverse_corpus():
    """The writer itself, for fixtures of any scope: reverse_corpus(folder) -> folder."""
    return write_reverse_corpus


def train_serve_models(root: Path) -> Path:
    """root/rev translates (the reversal task), root/copy summarises it with copy and coverage: a few
    training steps each, the two models of the seq2seq-serve tests (test_serve.py, test_browser.py)."""
    from seq2seq.tasks import train
    data = write_reverse_corpus(root / "data")
    translation = tiny_recipe(data)
    translation["decoding"]["min_length"] = 3  # three steps of training: keep outputs non-empty
    summary = tiny_recipe(data)
    summary.update(name="tiny_copy", task="summarization")
    summary["model"].update(copy=True, attention={"type": "bahdanau", "coverage": True})
    train(recipe_from_dict(translation), root / "rev")
    train(recipe_from_dict(summary), root / "copy")
    return root


@pytest.fixture(scope="session")
def serve_models():
    """The trainer itself, for fixtures of any scope: serve_models(root) -> root, with rev/ and copy/."""
    return train_serve_models


@pytest.fixture
def data_dir(tmp_path) -> Path:
    """tmp_path/data holding the reversal task."""
    return write_reverse_corpus(tmp_path / "data")


def tiny_recipe(data_dir: Path | str) -> dict:
    """A recipe small enough to train in seconds on one CPU thread (a fresh dict each call)."""
    return {
        "name": "tiny",
        "data": {"dir": str(data_dir), "src": "src", "tgt": "tgt", "max_length": 20},
        "vocab": {"model_type": "char", "size": 13, "joint": True},  # 4 special, ▁ and a-h
        "model": {"embedding_size": 8,
                  "encoder": {"cell": "gru", "hidden_size": 8, "bidirectional": True},
                  "attention": {"type": "bahdanau"},
                  "decoder": {"cell": "gru", "hidden_size": 16}},
        "training": {"batch_type": "sentences", "batch_size": 16, "epochs": 1, "device": "cpu",
                     "threads": 1, "lr": 0.01,
                     "precision": "fp32"},  # exact on any CPU ('auto' is bf16 on some); bf16: test_precision.py
        "decoding": {"beam_size": 2, "max_length_ratio": 1.5, "max_length_offset": 2,
                     "precision": "fp32"},  # exact on any CPU ('auto' is bf16 on some)
    }


@pytest.fixture(scope="session")
def make_tiny_recipe():
    """make_tiny_recipe(data_dir) -> recipe dict, for fixtures of any scope."""
    return tiny_recipe


@pytest.fixture
def tiny_recipe_dict(data_dir) -> dict:
    return tiny_recipe(data_dir)


@pytest.fixture(scope="session")
def char_vocab(tmp_path_factory):
    """A character sentencepiece model over LETTERS (pad 0, unk 1, bos 2, eos 3)."""
    folder = tmp_path_factory.mktemp("vocab")
    text = folder / "text.txt"
    text.write_text("".join(s + " " + t + "\n" for s, t in reverse_pairs(64, seed=2)), encoding="utf-8")
    return train_sentencepiece([text], folder / "spm", VocabConfig(model_type="char", size=13))


@pytest.fixture
def make_model():
    """make_model(vocab_size=12, **model_section) -> a Seq2Seq in eval mode, sin-filled weights."""

    def make(vocab_size: int = 12, deterministic: bool = True, **model):
        section = {"embedding_size": 8,
                   "encoder": {"cell": "gru", "hidden_size": 8, "bidirectional": True},
                   "decoder": {"cell": "gru", "hidden_size": 12}}
        for key, value in model.items():
            if isinstance(value, dict):
                section[key] = {**section.get(key, {}), **value}
            else:
                section[key] = value
        cfg = recipe_from_dict({"model": section}).model
        net = build_model(cfg, vocab_size, vocab_size)
        if deterministic:
            fill_deterministic(net)
        return net.eval()

    return make


@pytest.fixture
def fill_weights():
    """The sin(arange) filler, for modules built in a test."""
    return fill_deterministic


def overfit_batch(model: torch.nn.Module, batch, steps: int, lr: float, stop: float = 0.01) -> float:
    """Adam on one batch until the loss per target token is under `stop`; the last loss. The
    model is left in eval mode."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        logits, _ = model(batch)
        loss = sequence_nll(logits, batch.tgt_out) / batch.num_tgt_tokens
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if loss.item() < stop:
            break
    model.eval()
    return loss.item()


@pytest.fixture
def overfit():
    """overfit(model, batch, steps, lr) -> last loss: the one-batch training loop of the tests."""
    return overfit_batch
