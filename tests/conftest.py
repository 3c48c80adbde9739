"""Shared fixtures: the cell variants every core test runs over, and random params.

``cell.init`` gives zero biases and peepholes, which would hide bugs in the
bias and peephole terms, so numerical tests use :func:`random_params`.
"""

from __future__ import annotations

import functools

import jax
import numpy as np
import pytest

import rnnlab

# (kind, constructor options): every form of every cell.
CELL_VARIANTS = [
    ("tanh", {}),
    ("lstm", {}),
    ("lstm", {"forget_bias": 0.0}),
    ("lstm", {"peephole": True}),
    ("gru", {}),
    ("gru", {"reset_after": True}),
]
VARIANT_IDS = ["tanh", "lstm", "lstm-fb0", "lstm-peephole", "gru", "gru-reset-after"]


@functools.lru_cache(maxsize=None)
def cell_variant(which: int, hidden_size: int, dtype: str = "float32") -> rnnlab.Cell:
    """The cell of ``CELL_VARIANTS[which]``, one object per arguments (so jit caches hit)."""
    kind, options = CELL_VARIANTS[which]
    return rnnlab.get_cell(kind, hidden_size, **options, dtype=dtype)


def random_params(cell: rnnlab.Cell, seed: int, input_size: int, scale: float = 0.5) -> dict:
    """``cell``'s params with every entry (biases and peepholes too) random normal * scale."""
    shapes = jax.eval_shape(lambda key: cell.init(key, input_size), jax.random.key(0))
    rng = np.random.default_rng(seed)
    return {
        name: (scale * rng.standard_normal(s.shape)).astype(np.float32)
        for name, s in sorted(shapes.items())
    }


@pytest.fixture(params=CELL_VARIANTS, ids=VARIANT_IDS)
def variant(request):
    """``(kind, options)`` of one cell variant."""
    return request.param


@pytest.fixture(params=range(len(CELL_VARIANTS)), ids=VARIANT_IDS)
def which(request):
    """The index of one cell variant in ``CELL_VARIANTS`` (see :func:`cell_variant`)."""
    return request.param
