"""The GRU on the recurrence loop and the loop's bf16 path: GRUCell against nn.GRU with the same
weights (outputs, final state, gradients; both layouts and packing, two layers, both directions);
`cell: gru` (torch's nn.GRU, bf16 under autocast by itself); every cell under CPU bf16 autocast against fp32
within bf16's tolerance, its matmuls in bf16 and its state in fp32; the decoder's one-step calls
and a whole model under bf16."""

from __future__ import annotations

import collections

import pytest
import torch
from test_cells import generator, randomize
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence
from torch.utils._python_dispatch import TorchDispatchMode

from seq2seq.batch import collate
from seq2seq.loss import sequence_nll
from seq2seq.modules import RNN_CELLS
import seq2seq.modules.recurrence as recurrence
from seq2seq.modules.cells import (GRUCell, LayerNormGRUCell, LayerNormLSTMCell, LSTMCell, PeepholeLSTMCell,
                                   WorkingMemoryLSTMCell)
from seq2seq.modules.recurrence import Recurrence

LAYOUTS = ["batch_first", "time_first", "packed"]
LENGTHS = torch.tensor([4, 6, 2])  # unsorted: both permutations of packing run


def bf16_autocast():
    return torch.autocast("cpu", dtype=torch.bfloat16)


def inputs(dtype: torch.dtype, state_size: int, seed: int = 1):
    """x (B, T, I) = (3, 6, 5), an initial state of `state_size` (L*D, B, H) = (4, 3, 4) tensors,
    and weights (B, T, D*H) that give every output its own gradient."""
    g = generator(seed)
    x = torch.randn(3, 6, 5, generator=g, dtype=dtype)
    state = tuple(torch.randn(4, 3, 4, generator=g, dtype=dtype) for _ in range(state_size))
    return x, state, torch.randn(3, 6, 8, generator=g, dtype=dtype)


def run(rnn: nn.Module, layout: str, x, state, weights):
    """rnn over x in `layout` from `state` -> (outputs as (N, D*H) or padded, final state tuple,
    gradients of a loss of both with respect to x, the state and every parameter)."""
    xs, *hx = (t.detach().clone().requires_grad_() for t in (x, *state))
    inp = xs if layout == "batch_first" else xs.transpose(0, 1)
    w = weights if layout == "batch_first" else weights.transpose(0, 1)
    if layout == "packed":
        inp = pack_padded_sequence(xs, LENGTHS, batch_first=True, enforce_sorted=False)
        w = pack_padded_sequence(weights, LENGTHS, batch_first=True, enforce_sorted=False).data
    out, final = rnn(inp, tuple(hx) if len(hx) > 1 else hx[0])
    out = out.data if layout == "packed" else out
    final = final if isinstance(final, tuple) else (final,)
    loss = (out.float() * w).sum() + sum((s.float() * s.float().sin()).sum() for s in final)
    return out, final, torch.autograd.grad(loss, [xs, *hx, *rnn.parameters()])


# ---------------------------------------------------------------- GRUCell against nn.GRU


@pytest.mark.parametrize("layout", LAYOUTS)
def test_gru_cell_equals_nn_gru_outputs_and_gradients(layout):
    batch_first = layout != "time_first"
    ref = randomize(nn.GRU(5, 4, 2, batch_first=batch_first, bidirectional=True), 0).double()
    ours = Recurrence(GRUCell(), 5, 4, 2, batch_first, bidirectional=True).double()
    ours.load_state_dict(ref.state_dict())  # the same names and shapes: strict
    args = inputs(torch.float64, 1)
    (out_a, final_a, grads_a), (out_b, final_b, grads_b) = run(ref, layout, *args), run(ours, layout, *args)
    torch.testing.assert_close(out_b, out_a, rtol=0, atol=1e-12)
    torch.testing.assert_close(final_b, final_a, rtol=0, atol=1e-12)
    assert len(grads_a) == len(grads_b) == 2 + 16
    for a, b in zip(grads_a, grads_b):
        torch.testing.assert_close(b, a, rtol=0, atol=1e-12)


def test_cell_gru_is_nn_gru_whose_matmuls_run_in_bf16_under_cpu_autocast():
    """`cell: gru` is torch's nn.GRU (faster under CPU bf16 autocast than the loop: recurrence.py)
    but for packed input with gradients (packed_training.py, tested in test_packed_training.py);
    under autocast its input projection and per-step matmuls run in bf16 by themselves."""
    gru = randomize(RNN_CELLS["gru"](5, 4, 1, batch_first=True), 2)
    assert isinstance(gru, nn.GRU) and type(gru).forward is not Recurrence.forward
    x = inputs(torch.float32, 1)[0]
    with bf16_autocast(), MatmulLog() as log:
        gru(x)
    assert log.matmuls and all(dtypes == (torch.bfloat16, torch.bfloat16) for _, dtypes, _ in log.matmuls)


# ---------------------------------------------------------------- the bf16 path


def bf16_pair(name: str):
    """(fp32 oracle, the layer that runs under bf16 autocast) with the same weights: nn.GRU / the
    gru module, nn.LSTM / Recurrence(LSTMCell()), and for the peephole and working-memory cells
    their own Recurrence in fp32 (checked against nn.LSTM and the papers in test_cells.py)."""
    if name == "gru":
        ref = randomize(nn.GRU(5, 4, 2, batch_first=True, bidirectional=True), 3)
        ours = Recurrence(GRUCell(), 5, 4, 2, True, bidirectional=True)
    else:
        cell = {"lstm": LSTMCell(), "peephole_lstm": PeepholeLSTMCell(), "wm_lstm": WorkingMemoryLSTMCell()}[name]
        ref = randomize(nn.LSTM(5, 4, 2, batch_first=True, bidirectional=True) if name == "lstm"
                        else Recurrence(cell, 5, 4, 2, True, bidirectional=True), 3)
        ours = Recurrence(cell, 5, 4, 2, True, bidirectional=True)
    ours.load_state_dict(ref.state_dict())
    return ref, ours


@pytest.mark.parametrize("layout", ["batch_first", "packed"])
@pytest.mark.parametrize("name", ["gru", "lstm", "peephole_lstm", "wm_lstm"])
def test_bf16_path_is_fp32_to_bf16_tolerance(name, layout):
    """Outputs in bf16, the final state in fp32; outputs, final state and every gradient within
    3e-2 of the largest magnitude of the fp32 value (bf16 keeps 8 significant bits, 4e-3 relative per
    rounding; a handful of roundings along two layers and six steps), yet not equal to it: the
    matmuls did run in bf16."""
    ref, ours = bf16_pair(name)
    args = inputs(torch.float32, 2 if name != "gru" else 1)
    out_ref, final_ref, grads_ref = run(ref, layout, *args)
    with bf16_autocast():
        out, final, grads = run(ours, layout, *args)
    assert out.dtype == torch.bfloat16 and all(s.dtype == torch.float32 for s in final)
    assert all(g.dtype == torch.float32 for g in grads)  # parameters, input and state stay fp32
    for a, b in [(out_ref, out), *zip(final_ref, final), *zip(grads_ref, grads)]:
        torch.testing.assert_close(b.float(), a, rtol=0, atol=3e-2 * a.abs().max().item())
    assert not torch.allclose(out.float(), out_ref, rtol=0, atol=1e-6)
    assert not torch.allclose(grads[-4], grads_ref[-4], rtol=0, atol=1e-6)  # weight_hh_l1_reverse


class MatmulLog(TorchDispatchMode):
    """What reaches the kernels: the matmuls by name, input dtypes and weight shape, and the
    sources of the casts (by data pointer)."""

    def __init__(self):
        super().__init__()
        self.matmuls, self.casts = collections.Counter(), collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.__name__.split(".")[0]
        tensors = [a for a in args if isinstance(a, torch.Tensor)]
        if name in ("mm", "addmm", "bmm", "matmul", "linear"):
            self.matmuls[name, tuple(t.dtype for t in tensors[-2:]), tuple(tensors[-1].shape)] += 1
        elif name == "_to_copy":
            self.casts[tensors[0].data_ptr()] += 1
        return func(*args, **(kwargs or {}))


def test_the_loop_under_bf16_runs_each_recurrent_matmul_in_bf16_and_casts_weights_once():
    """Packed lengths 4, 6, 2 give 6 steps per direction: 2 layers x 2 directions x 6 bf16 (n, H)
    @ (H, 3H) matmuls and one bf16 input projection each, no fp32 matmul at all; each of the 8
    weight matrices cast once, the biases never (they stay fp32, added in fp32)."""
    gru = randomize(Recurrence(GRUCell(), 5, 4, 2, True, bidirectional=True), 4)
    x, (h0,), _ = inputs(torch.float32, 1)
    packed = pack_padded_sequence(x, LENGTHS, batch_first=True, enforce_sorted=False)
    with bf16_autocast(), MatmulLog() as log:
        gru(packed, h0)
    bf16 = (torch.bfloat16, torch.bfloat16)
    assert log.matmuls["mm", bf16, (4, 12)] == 2 * 2 * 6  # the recurrent matmuls, h cast to bf16
    assert all(dtypes == bf16 for _, dtypes, _ in log.matmuls)
    assert sum(log.matmuls.values()) == 2 * 2 * 6 + 2 * 2
    for name, p in gru.named_parameters():
        assert log.casts[p.data_ptr()] == (1 if name.startswith("weight") else 0), name


def test_the_cpu_bf16_path_needs_cpu_bf16_autocast():
    """autocast turned off inside a bf16 region is the fp32 loop, bit for bit."""
    ours = randomize(Recurrence(GRUCell(), 5, 4, 1, True), 5)
    x = inputs(torch.float32, 1)[0]
    plain = ours(x)[0]
    with bf16_autocast(), torch.autocast("cpu", enabled=False):
        assert torch.equal(ours(x)[0], plain)
    with bf16_autocast():
        assert ours(x)[0].dtype == torch.bfloat16


# ---------------------------------------------------------------- W_hh's gradient in one matmul

EVERY_CELL = {"gru": GRUCell, "lstm": LSTMCell, "peephole_lstm": PeepholeLSTMCell,
              "wm_lstm": WorkingMemoryLSTMCell, "layer_norm_gru": LayerNormGRUCell,
              "layer_norm_lstm": LayerNormLSTMCell}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("name", EVERY_CELL)
def test_deferred_recurrent_weight_gradient_is_the_sum_of_the_steps(name, layout, monkeypatch):
    """In float64, every output and gradient as autograd's per-step sum gives them (the loop with
    W_hh as a plain tensor), two layers, both directions, packed and padded."""
    cell = EVERY_CELL[name]()
    rnn = randomize(Recurrence(cell, 5, 4, 2, layout != "time_first", bidirectional=True), 6).double()
    args = inputs(torch.float64, cell.state_size)
    deferred = run(rnn, layout, *args)
    monkeypatch.setattr(recurrence, "DeferredWeight", lambda weight: weight)
    per_step = run(rnn, layout, *args)
    for a, b in zip([deferred[0], *deferred[1], *deferred[2]], [per_step[0], *per_step[1], *per_step[2]]):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_the_backward_takes_each_recurrent_weight_gradient_in_one_matmul():
    """Packed lengths 4, 6, 2 (6 steps a direction): one (H, N) @ (N, 3H) matmul per layer and
    direction for W_hh, with N = 12 the packed rows, not one per step; nothing is left kept."""
    gru = randomize(Recurrence(GRUCell(), 5, 4, 2, True, bidirectional=True), 4)
    x, (h0,), _ = inputs(torch.float32, 1)
    out, _ = gru(pack_padded_sequence(x, LENGTHS, batch_first=True, enforce_sorted=False), h0)
    with MatmulLog() as log:
        out.data.sum().backward()
    weight_grads = {shape: n for (_, _, shape), n in log.matmuls.items() if shape[1] == 12}
    assert weight_grads == {(12, 12): 2 * 2}
    assert all(p.grad is not None for p in gru.parameters())


# ---------------------------------------------------------------- in the decoder and the model


@pytest.mark.parametrize("cell", ["gru", "peephole_lstm"])
def test_model_under_bf16_is_close_to_fp32_with_fp32_state_and_gradients(cell, make_model):
    """Bidirectional two-layer encoder over packed sentences, an input-feeding decoder called one
    step at a time (x (B, 1, I)), greedy-search steps: the teacher-forced loss and its gradients
    within bf16 tolerance of fp32, the decoder's carried state fp32."""
    model = make_model(encoder={"cell": cell, "num_layers": 2}, decoder={"cell": cell, "input_feeding": True})
    batch = collate([[4, 5, 6], [7, 8, 9, 10, 11], [5, 8]], [[6, 5, 4], [11, 10, 9, 8], [8, 5]])

    def loss_and_grads():
        logits, _ = model(batch)
        loss = sequence_nll(logits.float(), batch.tgt_out) / batch.num_tgt_tokens
        return loss, torch.autograd.grad(loss, list(model.parameters()))

    loss32, grads32 = loss_and_grads()
    with bf16_autocast():
        loss16, grads16 = loss_and_grads()
        memory, state = model.encode(batch.src, batch.src_lengths)
        for t in range(2):  # search steps: the decoder's one-step calls
            log_probs, _, state = model.step(batch.tgt_in[:, t], memory, state)
    torch.testing.assert_close(loss16, loss32, rtol=2e-2, atol=0)
    for a, b in zip(grads32, grads16):  # attention and output layer in bf16 too: 6 % of the norm
        assert b.dtype == torch.float32 and (b - a).norm() < 0.06 * a.norm()
    hidden = state.hidden if isinstance(state.hidden, tuple) else (state.hidden,)
    assert torch.isfinite(log_probs).all()
    if cell != "gru":  # the loop carries fp32; nn.GRU under autocast hands back its state as it computed it
        assert all(h.dtype == torch.float32 for h in hidden)
