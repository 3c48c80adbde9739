"""Valid lengths: the one check of a batch's lengths, the keep mask made from them, and its uses.

Every entry that takes lengths (``rnnlab.unroll``, ``unroll_batch``,
``bidirectional``, ``stack`` and the Flax modules) validates them here, once
per call, and turns them into ONE keep mask (:func:`keep_mask`) that every
backend reads; a length outside ``[0, T]`` gets the same message wherever it
enters. The helpers below are the only places that apply the mask.
"""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from rnnlab.types import Array, Carry


def sequence_mask(lengths: Array, max_length: int) -> Array:
    """``bool[..., T]``: True where ``t < length``.

    Args:
      lengths: ``int[...]`` valid lengths (any leading shape, e.g. ``[B]``).
      max_length: T.
    """
    return jnp.arange(max_length) < jnp.asarray(lengths)[..., None]


def check_lengths(lengths: Optional[Array], batch_shape: tuple[int, ...], max_length: int) -> Optional[Array]:
    """Validates ``lengths`` for sequences of ``max_length`` steps with batch shape ``batch_shape``.

    ``batch_shape=()`` is one sequence (``length`` an integer scalar). ``None``
    stays ``None`` (every sequence whole). A concrete value outside ``[0, T]``
    raises; a traced one (inside ``jit``, where a value cannot raise) is clipped.

    Returns:
      ``int32[*batch_shape]`` in ``[0, T]``, or ``None``.

    Raises:
      ValueError: not an integer array of shape ``batch_shape``, or a concrete
        value outside ``[0, T]``.
    """
    if lengths is None:
        return None
    name = "length" if batch_shape == () else "lengths"
    if batch_shape == () and (isinstance(lengths, (bool, np.bool_, str))
                              or not hasattr(lengths, "dtype") and not isinstance(lengths, int)):
        raise ValueError(f"length must be an integer scalar, got {lengths!r}")
    dtype = jnp.asarray(lengths).dtype
    if jnp.shape(lengths) != tuple(batch_shape) or not jnp.issubdtype(dtype, jnp.integer):
        if batch_shape == ():
            raise ValueError(f"length must be an integer scalar, got shape {jnp.shape(lengths)} and dtype {dtype} "
                             "(for a batch, jax.vmap over xs and lengths, or unroll_batch)")
        shape = f"[B={batch_shape[0]}]" if len(batch_shape) == 1 else f"{list(batch_shape)} (the batch axes of xs)"
        raise ValueError(f"lengths must be an integer vector of shape {shape}, got shape "
                         f"{jnp.shape(lengths)} and dtype {dtype}")
    if not isinstance(lengths, jax.core.Tracer):
        values = np.asarray(lengths)
        if values.size and (values.min() < 0 or values.max() > max_length):
            got = int(values) if batch_shape == () else f"values in [{values.min()}, {values.max()}]"
            raise ValueError(f"{name} must lie in [0, T={max_length}], got {got}")
    return jnp.clip(jnp.asarray(lengths, jnp.int32), 0, max_length)


def keep_mask(lengths: Optional[Array], max_length: int) -> Optional[Array]:
    """The keep mask of checked lengths, time-major: ``bool[T, B]``, True where ``t < lengths[b]``.

    ``None`` (every sequence whole) stays ``None``: the loops then have no
    select ops. Built once per call and handed to every backend.

    Args:
      lengths: ``int32[B]`` from :func:`check_lengths`, or ``None``.
      max_length: T.
    """
    return None if lengths is None else sequence_mask(lengths, max_length).T


def lengths_of(keep: Optional[Array], max_length: int, batch_size: int) -> Array:
    """``int32[B]``: the lengths a keep mask ``bool[T, B]`` stands for (T everywhere for ``None``)."""
    if keep is None:
        return jnp.full((batch_size,), max_length, jnp.int32)
    return jnp.sum(keep, axis=0, dtype=jnp.int32)


def where_kept(keep: Optional[Array], new: Carry, old: Carry) -> Carry:
    """``new`` where ``keep bool[B]`` (per row of ``[B, ...]`` leaves), else ``old``; ``None``: ``new``."""
    if keep is None:
        return new
    return jax.tree.map(lambda n, o: jnp.where(keep.reshape(keep.shape + (1,) * (n.ndim - keep.ndim)), n, o),
                        new, old)


def zero_unkept(keep: Optional[Array], tree: Carry) -> Carry:
    """``tree`` with the rows (or time-major steps) where ``keep`` is False set to 0; ``None``: as it is.

    Zeroing padded inputs before the projection keeps padding (NaN included) out
    of the outputs and out of every gradient (``jnp.where`` alone in the loop
    would let a NaN through the backward pass).
    """
    return where_kept(keep, tree, jax.tree.map(jnp.zeros_like, tree))


def flip_within_lengths(xs: Array, lengths: Array) -> Array:
    """Reverses each sequence's first ``lengths[b]`` steps of a time-major ``xs [T, B, ...]``; padding stays.

    ``out[t, b] = xs[lengths[b]-1-t, b]`` for ``t < lengths[b]``, ``xs[t, b]``
    elsewhere. Its own inverse (Flax's ``flip_sequences``).
    """
    t = jnp.arange(xs.shape[0])[:, None]
    source = jnp.where(t < lengths[None, :], lengths[None, :] - 1 - t, t)
    return jnp.take_along_axis(xs, source.reshape(source.shape + (1,) * (xs.ndim - 2)), axis=0)
