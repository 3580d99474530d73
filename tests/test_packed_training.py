"""`cell: gru` and `cell: lstm` train packed input on seq2seq's loop (seq2seq/modules/packed_training.py):
the same outputs, final states and gradients as torch's nn.GRU / nn.LSTM with the same weights (two
layers, both directions, float64), the loop taken exactly for packed input with gradients, and
torch's own loop kept for the baseline that tools/bench.py measures it against."""

from __future__ import annotations

import pytest
import torch
from test_cells import randomize
from test_recurrence import inputs, run
from torch import nn
from torch.nn.utils.rnn import PackedSequence

import seq2seq.modules.packed_training as packed_training
from seq2seq.modules import RNN_CELLS

TORCH = {"gru": nn.GRU, "lstm": nn.LSTM}


def pair(name: str):
    ref = randomize(TORCH[name](5, 4, 2, batch_first=True, bidirectional=True), 4).double()
    ours = RNN_CELLS[name](5, 4, 2, batch_first=True, bidirectional=True).double()
    ours.load_state_dict(ref.state_dict())  # the same names and shapes: strict
    return ref, ours


@pytest.fixture
def loop_calls(monkeypatch):
    """How many times the modules ran `recur`."""
    calls = []
    real = packed_training.recur

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(packed_training, "recur", counted)
    return calls


@pytest.mark.parametrize("name", ["gru", "lstm"])
def test_packed_training_equals_torch(name, loop_calls):
    ref, ours = pair(name)
    args = inputs(torch.float64, 2 if name == "lstm" else 1, seed=5)
    (out_a, final_a, grads_a), (out_b, final_b, grads_b) = run(ref, "packed", *args), run(ours, "packed", *args)
    assert loop_calls == [1]
    torch.testing.assert_close(out_b, out_a, rtol=0, atol=1e-12)
    torch.testing.assert_close(final_b, final_a, rtol=0, atol=1e-12)
    assert len(grads_a) == len(grads_b) == 1 + len(final_a) + 16
    for a, b in zip(grads_a, grads_b):
        torch.testing.assert_close(b, a, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", ["gru", "lstm"])
@pytest.mark.parametrize("layout", ["batch_first", "packed"])
def test_the_loop_is_taken_for_packed_input_with_gradients_only(name, layout, loop_calls):
    _, ours = pair(name)
    x, state, weights = inputs(torch.float64, 2 if name == "lstm" else 1, seed=6)
    run(ours, layout, x, state, weights)
    assert loop_calls == ([1] if layout == "packed" else [])
    loop_calls.clear()
    with torch.no_grad():
        ours(torch.nn.utils.rnn.pack_padded_sequence(x, torch.tensor([4, 6, 2]), batch_first=True,
                                                     enforce_sorted=False))
    assert loop_calls == []  # decoding: torch's loop


@pytest.mark.parametrize("name", ["gru", "lstm"])
def test_the_baseline_flag_keeps_torch_loop(name, loop_calls):
    ref, ours = pair(name)
    ours.packed_on_loop = False
    args = inputs(torch.float64, 2 if name == "lstm" else 1, seed=7)
    out_a, _, grads_a = run(ref, "packed", *args)
    out_b, _, grads_b = run(ours, "packed", *args)
    assert loop_calls == []
    torch.testing.assert_close(out_b, out_a, rtol=0, atol=1e-12)


def test_dropout_between_layers_in_training_only():
    """Dropout 1 between the layers zeroes the second layer's input: its outputs are then those of
    a zero input; in eval mode they are not."""
    gru = RNN_CELLS["gru"](5, 4, 2, batch_first=True, dropout=1.0)
    x, _, _ = inputs(torch.float32, 1, seed=8)
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, torch.tensor([4, 6, 2]), batch_first=True,
                                                     enforce_sorted=False)
    second = nn.GRU(4, 4, 1, batch_first=True)
    second.load_state_dict({k.replace("l1", "l0"): v for k, v in gru.state_dict().items() if "l1" in k})
    zeros = torch.nn.utils.rnn.pack_padded_sequence(torch.zeros(3, 6, 4), torch.tensor([4, 6, 2]),
                                                    batch_first=True, enforce_sorted=False)
    with torch.no_grad():
        expected = second(zeros)[0].data
    out = gru.train()(packed)[0].data
    torch.testing.assert_close(out, expected)
    assert not torch.allclose(gru.eval()(packed)[0].data, expected)


def test_bench_packed_prints_a_row_per_cell_precision_and_shape(capsys):
    """tools/bench_packed.py on tiny shapes: one table row each, both ways timed."""
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
    import bench_packed
    assert bench_packed.main(["--shapes", "3x6,2x4", "--size", "4", "--rounds", "1"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| gru") or line.startswith("| lstm")]
    assert len(rows) == 2 * 2 * 2 and all(row.endswith("x |") for row in rows)


@pytest.mark.parametrize("name", ["gru", "lstm"])
def test_the_loop_is_for_the_cpu_only(name):
    """Packed input on another device (here meta, as a stand-in for CUDA) keeps torch's call,
    cuDNN's kernels on a GPU."""
    _, ours = pair(name)
    on_cpu = PackedSequence(torch.zeros(5, 5, dtype=torch.float64), torch.tensor([2, 2, 1]))
    elsewhere = PackedSequence(torch.zeros(5, 5, device="meta"), torch.tensor([2, 2, 1]))
    assert packed_training.on_loop(ours, on_cpu) and not packed_training.on_loop(ours, elsewhere)
