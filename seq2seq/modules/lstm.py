"""nn.LSTM, but in fp32 inside a CPU bf16 autocast region on CPUs whose oneDNN has no bf16 LSTM,
and packed input with gradients on seq2seq's loop (packed_training.py).

Under CPU bf16 autocast torch runs nn.LSTM through oneDNN's bf16 LSTM primitive, which needs
AVX-512 (`torch.ops.mkldnn._is_mkldnn_bf16_supported()`); on an AVX2-only CPU (seen: AMD EPYC
Zen 3) it fails with "could not create a primitive descriptor for the LSTM forward propagation
primitive". There this layer leaves the region for its own call: fp32 input and state in, fp32
outputs out, which the autocast ops downstream cast as they need. bf16 is emulated on such CPUs
anyway (`precision: auto` is fp32 there); this keeps an asked-for bf16 working. Elsewhere it is
nn.LSTM itself: same parameters, names and weight files.
"""

from __future__ import annotations

import functools

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence

from seq2seq.modules.packed_training import by_layer, lstm_on_loop, run_by_layer
from seq2seq.modules.recurrence import cpu_bf16


@functools.cache
def onednn_has_bf16() -> bool:
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


class LSTM(nn.LSTM):
    def forward(self, input, hx=None):
        looped = lstm_on_loop(self, input, hx)
        if looped is not None:
            return looped
        if not cpu_bf16(input.data if isinstance(input, PackedSequence) else input) or onednn_has_bf16():
            return self._run(input, hx)
        if isinstance(input, PackedSequence):
            input = input._replace(data=input.data.float())
        else:
            input = input.float()
        if hx is not None:
            hx = tuple(h.float() for h in hx)
        with torch.autocast("cpu", enabled=False):
            return self._run(input, hx)

    def _run(self, input, hx):
        """nn.LSTM's forward, or one layer at a time in CPU training with dropout (packed_training.py)."""
        if by_layer(self, input):
            return run_by_layer(self, input, hx)
        return super().forward(input, hx)
