"""Building blocks: encoder, attention mechanisms, decoder, copy generator."""

from torch import nn

RNN_CELLS = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}
