"""tools/average_checkpoints.py: the element-wise mean of the last N checkpoints' weights."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from seq2seq.checkpoint import load_weights, save_checkpoint
from seq2seq.errors import UserError

TOOL = Path(__file__).resolve().parent.parent / "tools" / "average_checkpoints.py"


def load_tool():
    spec = importlib.util.spec_from_file_location("average_checkpoints", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_average_of_last_two_is_the_mean_and_loads(tmp_path, make_model):
    tool = load_tool()
    model = make_model(tie_output=True, embedding_size=12)
    for step, value in [(1, 9.0), (2, 1.0), (3, 3.0)]:
        with torch.no_grad():
            for p in model.parameters():
                p.fill_(value)
        save_checkpoint(tmp_path, step, model, {"step": step}, keep=3)
    assert tool.main([str(tmp_path), "--last", "2"]) == 0
    averaged = load_file(str(tmp_path / "averaged.safetensors"))
    assert averaged and all(torch.all(t == 2.0) for t in averaged.values())  # (1 + 3) / 2
    fresh = make_model(tie_output=True, embedding_size=12)
    load_weights(fresh, tmp_path / "averaged.safetensors")  # tied weights survive the round trip
    assert all(torch.all(p == 2.0) for p in fresh.parameters())


def test_average_refuses_more_than_there_are(tmp_path, make_model):
    tool = load_tool()
    save_checkpoint(tmp_path, 1, make_model(), {"step": 1})
    with pytest.raises(UserError, match="1 checkpoint"):
        tool.main([str(tmp_path), "--last", "3"])
