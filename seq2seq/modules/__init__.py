"""Building blocks: encoder, attention mechanisms, decoder, copy generator."""

from functools import partial

from torch import nn

from seq2seq.modules.cells import (LayerNormGRUCell, LayerNormLSTMCell, LayerNormPeepholeLSTMCell,
                                   LayerNormWorkingMemoryLSTMCell, PeepholeLSTMCell, WorkingMemoryLSTMCell)
from seq2seq.modules.lstm import LSTM
from seq2seq.modules.packed_training import GRU
from seq2seq.modules.recurrence import Recurrence

# gru and lstm are torch's own: under CPU bf16 autocast their matmuls already run in bf16 (see recurrence.py);
# packed input with gradients (the encoders' training) runs on seq2seq's loop (packed_training.py)
RNN_CELLS = {"rnn": nn.RNN, "gru": GRU, "lstm": LSTM,  # LSTM: also fp32 where oneDNN has no bf16
             "peephole_lstm": partial(Recurrence, PeepholeLSTMCell()),
             "wm_lstm": partial(Recurrence, WorkingMemoryLSTMCell())}
# model.*.layer_norm: the same cells normalised inside the recurrence (cells.py), all on the loop; not rnn
LAYER_NORM_CELLS = {"gru": partial(Recurrence, LayerNormGRUCell()),
                    "lstm": partial(Recurrence, LayerNormLSTMCell()),
                    "peephole_lstm": partial(Recurrence, LayerNormPeepholeLSTMCell()),
                    "wm_lstm": partial(Recurrence, LayerNormWorkingMemoryLSTMCell())}
WITH_CELL_STATE = {"lstm", "peephole_lstm", "wm_lstm"}  # state (h, c), as nn.LSTM's
