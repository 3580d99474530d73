"""Collation into padded batches, and the model's import chain (no `datasets` behind it)."""

from __future__ import annotations

import subprocess
import sys

import torch

from seq2seq.batch import collate
from seq2seq.vocab import BOS, EOS, PAD


def test_collate_pads_and_adds_bos_eos():
    batch = collate([[5, 6, 7], [8], []], [[9], [10, 11], [12]])
    assert batch.src.tolist() == [[5, 6, 7], [8, PAD, PAD], [EOS, PAD, PAD]]  # empty source -> EOS
    assert batch.src_lengths.tolist() == [3, 1, 1]
    assert batch.tgt_in.tolist() == [[BOS, 9, PAD], [BOS, 10, 11], [BOS, 12, PAD]]
    assert batch.tgt_out.tolist() == [[9, EOS, PAD], [10, 11, EOS], [12, EOS, PAD]]
    assert batch.num_tgt_tokens == 7
    assert batch.src.dtype == torch.long


def test_collate_source_only():
    batch = collate([[4, 5], [6]])
    assert batch.tgt_in is None and batch.tgt_out is None and batch.num_tgt_tokens == 0
    assert batch.src.shape == (2, 2)


def test_importing_the_model_does_not_import_datasets():
    """The model, search and translator need batches, not the Arrow corpus reader."""
    code = ("import sys, seq2seq.tasks.translation.model, seq2seq.batch, seq2seq.search, "
            "seq2seq.tasks.translation.translator; assert 'datasets' not in sys.modules, 'datasets was imported'")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
