"""Recurrent cells: each defined once, as a :class:`CellDef`, and run by every backend.

One module per family, the framework in :mod:`rnnlab.cells.core` (read its
docstring for the contract of a definition):

    core        CellDef, Cell, build_cell, linear_cell, matmul, split_blocks, hidden, carry_dtype,
                abstract_step, vector_shape, initializer, INITIALIZERS, INIT_OPTIONS
    simple      tanh_rnn_def, tanh_rnn: the plain (Elman) RNN
    lstm        lstm_def, lstm, LSTMState, FGRState: the LSTM and its gate variants
    gru         gru_def, gru: the GRU (both reset placements) and its gate ablations; mgu_def, mgu
    layer_norm  layer_norm_lstm_def: the layer-normalised LSTM
    minimal     min_gru_def, min_lstm_def: gates that read the input only (parallel scan)
    regularize  regularized, Regularized, regularizer_seeds: recurrent dropout, zoneout
    registry    register_cell, get_cell, cell_names, cell_option_names

Every public name is importable from ``rnnlab.cells`` itself.
"""

from rnnlab.cells.core import (INIT_OPTIONS, INITIALIZERS, Cell, CellDef, Vector, abstract_step, build_cell,
                               carry_dtype, hidden, initializer, linear_cell, matmul, reference_dot, sigmoid_grad,
                               split_blocks, vector_shape, vectors_of)
from rnnlab.cells.gru import gru, gru_def, mgu, mgu_def
from rnnlab.cells.layer_norm import layer_norm_lstm_def
from rnnlab.cells.lstm import FGRState, LSTMState, lstm, lstm_def
from rnnlab.cells.minimal import min_gru_def, min_lstm_def
from rnnlab.cells.registry import cell_names, cell_option_names, get_cell, register_cell
from rnnlab.cells.regularize import Regularized, regularized, regularizer_seeds
from rnnlab.cells.simple import tanh_rnn, tanh_rnn_def

__all__ = [
    "INITIALIZERS", "INIT_OPTIONS", "initializer",
    "Cell", "CellDef", "FGRState", "LSTMState", "Regularized", "Vector", "abstract_step", "build_cell",
    "carry_dtype", "cell_names",
    "cell_option_names", "get_cell", "gru", "gru_def", "hidden", "layer_norm_lstm_def", "linear_cell", "lstm",
    "lstm_def", "matmul", "mgu", "mgu_def", "min_gru_def", "min_lstm_def", "reference_dot", "register_cell", "regularized",
    "regularizer_seeds", "sigmoid_grad", "split_blocks", "tanh_rnn", "tanh_rnn_def", "vector_shape", "vectors_of",
]
