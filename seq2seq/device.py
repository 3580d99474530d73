"""Where to run, and in what precision.

Precisions (the recipe's `training.precision` and `decoding.precision`, the commands' --precision):

    fp32   everything in float32
    bf16   torch.autocast to bfloat16 (CPU and CUDA alike): matmuls, and the recurrences that
           notice autocast, run in bf16; weights, optimizer state, the loss and the output
           softmax stay fp32 (the loss and the search cast logits with .float())
    int8   decoding only, on the CPU: torch's dynamic quantisation of a copy of the model
           (quantize_int8: int8 weights, activations quantised per batch as they come)
    auto   resolved before use: for training, bf16 on CUDA and on CPUs whose matrix units do bf16
           fast (AMX or AVX512-BF16, as torch reports them), fp32 elsewhere; for decoding, the
           entry of DECODING_AUTO for the kind of device

Nothing else reads the recipe's precision: code that runs under `autocast(device, precision)` can
ask torch.is_autocast_enabled / get_autocast_dtype (seq2seq/modules/recurrence.py does, for its own cells).
"""

from __future__ import annotations

import contextlib
import copy
import warnings

import torch
from torch import nn

from seq2seq.errors import UserError
from seq2seq.recipe_io import note_once


def resolve_device(name: str = "auto", source: str = "training.device") -> torch.device:
    """'auto', 'cpu' or 'cuda'; `source` names the setting in the error message."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError(f"{source}: 'cuda' was asked for but no CUDA GPU is available")
    return torch.device(name)


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU's matrix units do bf16 natively: Intel AMX tiles, or AVX512-BF16 (AMD Zen 4
    and later, Intel Cooper Lake and later). Elsewhere bf16 is emulated, slower than fp32."""
    return bool(torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported())


def device_kind(device: torch.device) -> str:
    """'cuda', 'cpu_fast_bf16' (cpu_has_fast_bf16) or 'cpu': the rows of DECODING_AUTO."""
    if device.type == "cuda":
        return "cuda"
    return "cpu_fast_bf16" if cpu_has_fast_bf16() else "cpu"


# decoding.precision 'auto' on each kind of device (device_kind) -> the precision the encoder-decoders
# (translation, summarisation) decode in: the fastest whose BLEU stays within 0.3 of fp32. Measured
# on a 2-core Zen 5 (AVX512-BF16), Multi30k reference model, 1,000 test_2016_flickr sentences, beam 5:
# fp32 91 sent/s BLEU 31.96, bf16 219 / 31.91, int8 257 / 32.08 (val: fp32 32.04, int8 32.04; a
# 4-epoch model: fp32 27.92, bf16 27.85, int8 27.74); greedy 251 / 615 / 1070 sent/s. int8 is the
# fastest but not the default: dynamic quantisation scales activations per batch, so a sentence's
# output can change with its batchmates (seen: streamed summaries differ by buffer size); it is
# `--precision int8`, asked for. Without bf16 units (bf16 emulated) the default stays fp32.
DECODING_AUTO = {
    "cuda": "bf16",  # as the model was trained and validated there
    "cpu_fast_bf16": "bf16",
    "cpu": "fp32",
}
# the other rooms (classification, language model, tagging): fp32 until each is measured (AG News
# valid accuracy: fp32 88.6 %, int8 88.4 %)
ROOM_DECODING_AUTO = {"cuda": "bf16", "cpu_fast_bf16": "fp32", "cpu": "fp32"}


def resolve_precision(name: str, device: torch.device) -> str:
    """training.precision -> 'fp32' or 'bf16': 'auto' is bf16 on CUDA and on CPUs with fast bf16."""
    if name == "auto":
        return "fp32" if device_kind(device) == "cpu" else "bf16"
    if name not in ("fp32", "bf16"):
        raise ValueError(f"training precision {name!r}: expected 'auto', 'fp32' or 'bf16'")
    return name


def precision_line(name: str, device: torch.device) -> str:
    """The start-up line of training: the precision `name` (training.precision) gives, and why."""
    used, kind = resolve_precision(name, device), device_kind(device)
    unit = "AMX" if torch.cpu._is_amx_tile_supported() else "AVX512-BF16"
    why = {"cuda": "on CUDA", "cpu_fast_bf16": f"{unit} on this CPU",
           "cpu": "this CPU has neither AMX nor AVX512-BF16"}[kind]
    said = f"training.precision {name!r}" + (f": {why}" if name == "auto" else "")
    if used == "fp32":
        return f"precision: fp32 ({said})"
    slow = f"; warning: {why}, so bf16 is emulated, slower than fp32" if kind == "cpu" else ""
    return f"precision: bf16 autocast; weights, optimizer state and loss fp32 ({said}{slow})"


def resolve_decoding_precision(name: str, device: torch.device, source: str = "decoding.precision",
                               auto: dict[str, str] = DECODING_AUTO) -> str:
    """decoding.precision (or a --precision, named by `source` in errors) -> 'fp32', 'bf16' or
    'int8', 'auto' through the table `auto` (DECODING_AUTO, or the rooms' ROOM_DECODING_AUTO);
    int8 on CUDA is an error (torch's kernels are CPU ones)."""
    if name == "auto":
        name = auto[device_kind(device)]
    if name not in ("fp32", "bf16", "int8"):
        raise UserError(f"{source}: {name!r} is not a precision (allowed: 'auto', 'fp32', 'bf16', 'int8')")
    if name == "int8" and device.type != "cpu":
        raise UserError(f"{source}: 'int8' (dynamic quantisation) runs on the CPU only, not on "
                        f"{device.type}; use 'bf16' or 'fp32' there, or --device cpu")
    return name


def autocast(device: torch.device, precision: str):
    """The region a step runs in: bf16 autocast on the device's type for 'bf16' (CPU and CUDA
    alike); no region for 'fp32' and 'int8' (a quantised model runs its own int8 kernels)."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    if precision in ("fp32", "int8"):
        return contextlib.nullcontext()
    raise ValueError(f"precision {precision!r}: expected 'fp32', 'bf16' or 'int8' ('auto' is resolved first)")


# what quantize_int8 quantises: the layer types torch has dynamic int8 kernels for
QUANTIZED = {nn.Linear, nn.LSTM, nn.GRU, nn.LSTMCell, nn.GRUCell, nn.RNNCell}


def _as_torch_rnn(module: nn.LSTM | nn.GRU) -> nn.LSTM | nn.GRU:
    """A subclass of nn.LSTM or nn.GRU (same parameters) as the torch class itself, which is what
    quantize_dynamic recognises (it matches exact types)."""
    base = nn.LSTM if isinstance(module, nn.LSTM) else nn.GRU
    plain = base(module.input_size, module.hidden_size, module.num_layers, bias=module.bias,
                 batch_first=module.batch_first, dropout=module.dropout, bidirectional=module.bidirectional)
    plain.load_state_dict(module.state_dict())
    return plain


def quantize_int8(model: nn.Module) -> tuple[nn.Module, list[str]]:
    """A copy of `model` on the CPU for int8 decoding: torch.ao.quantization.quantize_dynamic of
    its nn.Linear, nn.LSTM and nn.GRU layers (and the cells of those), subclasses of nn.LSTM/nn.GRU
    as their torch class. Returns the copy and, one line each, the recurrent layers left in fp32
    (torch has no int8 kernel for nn.RNN or for seq2seq's own Recurrence cells). `model` is unchanged."""
    model = copy.deepcopy(model).cpu().eval()
    for name, module in list(model.named_modules()):
        if isinstance(module, (nn.LSTM, nn.GRU)) and type(module) not in QUANTIZED:
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent), child, _as_torch_rnn(module))
    with warnings.catch_warnings():  # torch 2.13 marks torch.ao.quantization deprecated (torchao follows)
        warnings.filterwarnings("ignore", message=r".*(torch\.ao\.quantization|quantize_per_tensor).*deprecated")
        model = torch.ao.quantization.quantize_dynamic(model, QUANTIZED, dtype=torch.qint8)
    left = [f"{name or 'the model'} ({type(m).__name__})" for name, m in model.named_modules()
            if any(p.startswith("weight_hh") for p, _ in m.named_parameters(recurse=False))]
    return model, left


def for_decoding(model: nn.Module, name: str, device: torch.device,
                 source: str = "decoding.precision", auto: dict[str, str] = DECODING_AUTO) -> tuple[nn.Module, str]:
    """The model to decode with and its precision: `name` ('auto', 'fp32', 'bf16', 'int8'; a
    setting named `source` in errors) resolved, and for int8 a quantised copy, each recurrent layer
    it leaves in fp32 said once as a note."""
    precision = resolve_decoding_precision(name, device, source, auto)
    if precision == "int8":
        model, left = quantize_int8(model)
        for layer in left:
            note_once(f"{source} int8: {layer} stays fp32 (torch quantises nn.Linear, nn.LSTM and nn.GRU)")
    return model, precision
