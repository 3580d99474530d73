"""Building blocks: encoder, attention mechanisms, decoder, copy generator."""

from functools import partial

from torch import nn

from seq2seq.modules.cells import PeepholeLSTMCell, WorkingMemoryLSTMCell
from seq2seq.modules.recurrence import Recurrence

# gru and lstm are torch's own: under CPU bf16 autocast their matmuls already run in bf16 (see recurrence.py)
RNN_CELLS = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM,
             "peephole_lstm": partial(Recurrence, PeepholeLSTMCell()),
             "wm_lstm": partial(Recurrence, WorkingMemoryLSTMCell())}
WITH_CELL_STATE = {"lstm", "peephole_lstm", "wm_lstm"}  # state (h, c), as nn.LSTM's
