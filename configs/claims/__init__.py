"""Configs of the experiments that test the claims about gates (docs/findings.md).

One file per claim; each ``get_config(arg)`` starts from ``configs/default.py``
and takes variants (``cell=gru``, ``smoke``, ...), and ``get_sweep()`` lists
the variants its experiment compares. Run every claim, 3 seeds, with::

    python -m rnnlab.sweep configs/claims/negation.py configs/claims/future_context.py \\
        configs/claims/long_memory.py configs/claims/cost.py --seeds=0,1,2 --out=runs/claims

This module holds the parameter arithmetic used to compare cells at equal
parameter count.
"""

GATES = {"tanh": 1, "gru": 3, "lstm": 4}


def recurrent_params(cell: str, input_size: int, hidden_size: int, bidirectional: bool = False,
                     reset_after: bool = False) -> int:
    """Parameters of one recurrent layer: ``G*H*(D + H + 1)`` per direction (+ ``H`` for a reset-after GRU)."""
    if cell not in GATES:
        raise ValueError(f"unknown cell {cell!r}; known cells: {', '.join(sorted(GATES))}")
    per_direction = GATES[cell] * hidden_size * (input_size + hidden_size + 1)
    if cell == "gru" and reset_after:
        per_direction += hidden_size
    return per_direction * (2 if bidirectional else 1)


def model_params(cell: str, input_size: int, hidden_size: int, num_outputs: int,
                 bidirectional: bool = False) -> int:
    """Recurrent layer + linear output head (the embedding, equal for all, is left out)."""
    features = hidden_size * (2 if bidirectional else 1)
    return recurrent_params(cell, input_size, hidden_size, bidirectional) + features * num_outputs + num_outputs


def matched_hidden(target: int, cell: str, input_size: int, num_outputs: int,
                   bidirectional: bool = False) -> int:
    """The hidden size whose :func:`model_params` is closest to ``target``."""
    if target <= 0:
        raise ValueError(f"target parameter count must be positive, got {target}")
    best, h = 1, 1
    while True:
        if abs(model_params(cell, input_size, h, num_outputs, bidirectional) - target) < abs(
                model_params(cell, input_size, best, num_outputs, bidirectional) - target):
            best = h
        if model_params(cell, input_size, h, num_outputs, bidirectional) > target:
            return best
        h += 1
