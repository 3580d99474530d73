"""Parameter initialisation, applied once by build_model.

'torch' (the default) keeps PyTorch's own: uniform +-1/sqrt(H) for RNNs and linear layers, N(0, 1)
embeddings. 'xavier' is JoeyNMT's scheme: Glorot-uniform matrices, each RNN gate block as its own
matrix, zero biases, N(0, embedding_init_std) embeddings. On Multi30k (the reference recipe) it
learned more slowly: training loss 6.12 against 5.76 after 200 updates, so it is not the default.
"""

from __future__ import annotations

import torch
from torch import nn

from seq2seq.modules.recurrence import Recurrence


@torch.no_grad()
def initialize(model: nn.Module, scheme: str, embedding_std: float) -> None:
    if scheme == "torch":
        return
    embeddings = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    for module in model.modules():
        if isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=embedding_std)
            if module.padding_idx is not None:
                module.weight[module.padding_idx].zero_()
        elif isinstance(module, nn.Linear):
            if id(module.weight) not in embeddings:  # a tied output layer keeps the embedding's
                nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, (nn.RNNBase, Recurrence)):
            for name, p in module.named_parameters():
                if name.startswith("weight"):  # peepholes (vectors) are zeroed with the biases
                    for block in p.split(module.hidden_size, 0):  # each gate's (H, *) block
                        nn.init.xavier_uniform_(block)
                else:
                    nn.init.zeros_(p)
            if isinstance(module, Recurrence):
                module.reset_constants()  # layer-norm gains back to 1 (zeroed above with the biases)
