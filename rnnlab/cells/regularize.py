"""Regularisers of the recurrence for any definition: variational recurrent dropout and zoneout."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from rnnlab.cells.core import CellDef, hidden
from rnnlab.types import Array, Carry


class Regularized(NamedTuple):
    """The carry of a regularised cell: the cell's own carry, plus its random stream.

    Attributes:
      inner: the wrapped definition's carry.
      seed: ``f32[H]`` integer values in ``[0, 2**24)``: this sequence's random
        stream, one per unit (draw with :func:`regularizer_seeds`; zeros give
        every sequence the same masks).
      time: ``f32[H]`` steps taken (zoneout draws a new mask each step).
    """

    inner: Carry
    seed: Array
    time: Array


def _uniform(seed: Array, salt: Array) -> Array:
    """``f32[...]`` in ``[0, 1)``: a counter-based hash (murmur3's finaliser) of ``(seed, salt)``."""
    x = seed.astype(jnp.uint32) * jnp.uint32(0x9E3779B1) + salt.astype(jnp.uint32) * jnp.uint32(0x85EBCA77)
    x = x ^ (x >> 16)
    x = x * jnp.uint32(0x85EBCA6B)
    x = x ^ (x >> 13)
    x = x * jnp.uint32(0xC2B2AE35)
    x = x ^ (x >> 16)
    return (x >> 8).astype(jnp.float32) / float(1 << 24)


def regularizer_seeds(key: Array, shape: tuple[int, ...]) -> Array:
    """``f32[*shape]`` random integer seeds in ``[0, 2**24)`` for :class:`Regularized` carries."""
    return jax.random.randint(key, shape, 0, 1 << 24).astype(jnp.float32)


def regularized(definition: CellDef, recurrent_dropout: float = 0.0, zoneout: float = 0.0,
                train: bool = True) -> CellDef:
    r"""``definition`` with variational recurrent dropout and/or zoneout, for any cell.

    - Recurrent dropout (Gal & Ghahramani 2016): every recurrent product reads
      ``a ⊙ m / (1 - p)`` with ONE Bernoulli mask ``m f32[H]`` per sequence
      (fixed over time), drawn from the carry's ``seed``; off when ``train=False``.
    - Zoneout (Krueger et al. 2017): each unit of every carry leaf keeps its
      previous value with probability ``z``, a new mask each step; with
      ``train=False`` the expectation ``z * old + (1 - z) * new``. The output
      is the zoned-out hidden state.

    The carry becomes :class:`Regularized` ``(inner, seed, time)``; the params
    are the wrapped cell's, so a trained cell evaluates with ``train=False``.
    The randomness is a function of ``(seed, time)``, so every backend that
    runs the result (reference, fused) draws the same masks.

    Raises:
      ValueError: a rate outside ``[0, 1)``.
    """
    for name, rate in (("recurrent_dropout", recurrent_dropout), ("zoneout", zoneout)):
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"{name} must lie in [0, 1), got {rate!r}")
    inner_step = definition.equations

    def step(dot, vecs, carry, px):
        if train and recurrent_dropout > 0.0:
            mask = (_uniform(carry.seed, 0.0 * carry.seed) >= recurrent_dropout) / (1.0 - recurrent_dropout)
            inner_dot = lambda a, blocks: dot(a * mask, blocks)
        else:
            inner_dot = dot
        new, y, acts = inner_step(inner_dot, vecs, carry.inner, px)
        if zoneout > 0.0:
            if train:
                keep = _uniform(carry.seed, carry.time + 1.0) < zoneout
                new = jax.tree.map(lambda n, o: jnp.where(keep, o, n), new, carry.inner)
            else:
                new = jax.tree.map(lambda n, o: zoneout * o + (1.0 - zoneout) * n, new, carry.inner)
            y = hidden(new)
        return Regularized(new, carry.seed, carry.time + 1.0), y, acts

    def initial_carry(hidden_size, dtype=jnp.float32):
        zeros = jnp.zeros((hidden_size,), dtype)
        return Regularized(definition.zero_carry(hidden_size, dtype), zeros, zeros)

    # No hand backward, cuDNN or parallel form: they do not know the masks.
    return definition._replace(equations=step, backward=None, cudnn=None, linear=None, carry_type=None,
                               initial_carry=initial_carry)
