"""Type aliases and the shape legend used in every docstring of rnnlab.

Shape letters:

    B  batch size                     T  time steps (padded length)
    D  input features per step        H  hidden units
    G  gates per cell (tanh 1, GRU 3, LSTM 4); fused matrices are [.., G*H]

Docstrings write shapes as ``xs: f32[T, D]``; a leading ``...`` means any
number of leading axes. A single example has no batch axis: rnnlab's cells and
``unroll`` work on one sequence and are batched with ``jax.vmap``.
"""

from __future__ import annotations

from typing import Any, Mapping

import jax

Array = jax.Array
"""A JAX (or NumPy) array."""

Params = Mapping[str, Array]
"""A cell's parameters: a flat dict of arrays (``w_x``, ``w_h``, ``b``, ...)."""

Carry = Any
"""A cell's recurrent state: an array ``[H]`` or a NamedTuple of them (LSTM)."""

PyTree = Any
"""Any nesting of tuples, lists and dicts with arrays at the leaves."""
