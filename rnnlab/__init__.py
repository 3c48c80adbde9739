"""rnnlab: gated recurrent networks as pure JAX functions.

The library layer (``cells``, ``scan``, ``bidirectional``, ``introspect``,
``convert``) depends on JAX alone; ``rnnlab.nn`` adds thin Flax adapters.
The layers above it are imported on their own and never by it: ``rnnlab.data``
(datasets), ``rnnlab.training`` (models, train loop, checkpoints, the workdir
layout), ``rnnlab.inference`` (a trained run in use, predictions),
``rnnlab.experiments`` (sweeps, searches, plans), ``rnnlab.analysis``
(statistics, figures, reports) and ``rnnlab.commands`` (``python -m rnnlab COMMAND``).
"""

from rnnlab.bidirectional import bidirectional, init_stack, stack
from rnnlab.cells import (Cell, CellDef, LSTMState, Vector, build_cell, cell_names, get_cell, gru,
                          linear_cell, lstm, register_cell, tanh_rnn)
from rnnlab.cells import mgu
from rnnlab.convert import from_flax, from_keras, from_torch
from rnnlab.convert import to_flax, to_keras, to_torch
from rnnlab.introspect import gate_trace
from rnnlab.backends import Backend
from rnnlab.scan import sequence_mask, unroll, unroll_batch

__version__ = "0.1.0"

__all__ = [
    "Backend",
    "Cell",
    "CellDef",
    "LSTMState",
    "bidirectional",
    "build_cell",
    "cell_names",
    "from_flax",
    "from_keras",
    "from_torch",
    "gate_trace",
    "get_cell",
    "gru",
    "init_stack",
    "linear_cell",
    "lstm",
    "register_cell",
    "sequence_mask",
    "stack",
    "tanh_rnn",
    "unroll",
    "unroll_batch",
    "Vector",
    "mgu",
    "to_flax",
    "to_keras",
    "to_torch",
]
