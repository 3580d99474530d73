"""Building blocks: encoder, attention mechanisms, decoder, copy generator."""

from functools import partial

from torch import nn

from seq2seq.modules.cells import PeepholeLSTMCell, WorkingMemoryLSTMCell
from seq2seq.modules.recurrence import GRU, Recurrence

RNN_CELLS = {"rnn": nn.RNN, "gru": GRU, "lstm": nn.LSTM,  # GRU: nn.GRU, bf16 on the CPU (recurrence.py)
             "peephole_lstm": partial(Recurrence, PeepholeLSTMCell()),
             "wm_lstm": partial(Recurrence, WorkingMemoryLSTMCell())}
WITH_CELL_STATE = {"lstm", "peephole_lstm", "wm_lstm"}  # state (h, c), as nn.LSTM's
