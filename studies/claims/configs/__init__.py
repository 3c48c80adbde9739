"""Configs of the experiments that test the claims about gates (docs/findings.md).

One file per claim; each ``get_config(arg)`` starts from ``configs/default.py``
and takes variants (``cell=gru``, ``smoke``, ...), and ``get_sweep()`` lists
the variants its experiment compares. Run every claim, 3 seeds, with::

    python -m rnnlab sweep studies/claims/configs/negation.py studies/claims/configs/future_context.py \\
        studies/claims/configs/long_memory.py studies/claims/configs/cost.py --seeds=0,1,2 --out=runs/claims

This module holds the parameter arithmetic used to compare cells at equal
parameter count.
"""

import math

import jax

import rnnlab

def recurrent_params(cell: str, input_size: int, hidden_size: int, bidirectional: bool = False,
                     **options) -> int:
    """Parameters of one recurrent layer, counted from the cell's own ``init`` (no table of gate counts).

    ``G*H*(D + H + 1)`` per direction for the library's tanh/GRU/LSTM, plus
    whatever vectors a cell's definition adds (``b_hn``, peepholes).
    """
    built = rnnlab.get_cell(cell, hidden_size, **options)
    shapes = jax.eval_shape(lambda key: built.init(key, input_size), jax.random.key(0))
    per_direction = sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(shapes))
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
    # A layer's parameters are a quadratic in H (H x GH and D x GH matrices, vectors of H or GH), so three
    # counts from the cell's own init give every other; the chosen size is counted again to be sure.
    c1, c2, c3 = (model_params(cell, input_size, h, num_outputs, bidirectional) for h in (1, 2, 3))
    a = (c3 - 2 * c2 + c1) / 2
    b = c2 - c1 - 3 * a
    count_at = lambda h: a * h * h + b * h + (c1 - a - b)  # noqa: E731
    best, best_gap, h = 1, math.inf, 1
    while True:
        count = count_at(h)
        if abs(count - target) < best_gap:
            best, best_gap = h, abs(count - target)
        if count > target:
            break
        h += 1
    if model_params(cell, input_size, best, num_outputs, bidirectional) != count_at(best):
        raise ValueError(f"the {cell!r} cell's parameter count is not quadratic in its hidden size")
    return best


def until_flat(config, cap: int, patience: int) -> None:
    """Train until validation stops improving: early stopping after ``patience`` evaluations
    without a new best, at most ``cap`` steps (a run that hits the cap is reported as such)."""
    config.train.num_steps = cap
    config.train.patience = patience


def match_lstm(config, input_size: int, num_outputs: int) -> None:
    """Sets ``model.hidden_size`` so this cell's recurrent layer + head has the parameters of an
    LSTM at the current hidden size (:func:`matched_hidden`)."""
    model = config.model
    target = model_params("lstm", input_size, model.hidden_size, num_outputs, model.bidirectional)
    model.hidden_size = matched_hidden(target, model.cell, input_size, num_outputs, model.bidirectional)

