"""Valid lengths: the one check of a sequence's length (or a batch's lengths) and the mask it makes.

Every public entry that takes lengths (``rnnlab.unroll``, ``unroll_batch``,
the cuDNN and Pallas kernels) validates them here, so a length outside
``[0, T]`` gets the same message wherever it enters.
"""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from rnnlab.types import Array


def sequence_mask(lengths: Array, max_length: int) -> Array:
    """``bool[..., T]``: True where ``t < length``.

    Args:
      lengths: ``int[...]`` valid lengths (any leading shape, e.g. ``[B]``).
      max_length: T.
    """
    return jnp.arange(max_length) < jnp.asarray(lengths)[..., None]


def check_length(length: Optional[Array], max_length: int) -> Array:
    """Validates ``length`` for a sequence of ``max_length`` steps; returns ``int32[]``.

    ``None`` means the whole sequence. A concrete value outside ``[0, T]`` is
    an error; a traced value (inside ``jit``, where a value cannot raise) is
    clipped to ``[0, T]``.

    Raises:
      ValueError: ``length`` is not an integer scalar, or a concrete value lies
        outside ``[0, T]``.
    """
    if length is None:
        return jnp.asarray(max_length, jnp.int32)
    if isinstance(length, (bool, np.bool_)) or not hasattr(length, "dtype") and not isinstance(
        length, int
    ):
        raise ValueError(f"length must be an integer scalar, got {length!r}")
    dtype = jnp.asarray(length).dtype
    if jnp.ndim(length) != 0 or not jnp.issubdtype(dtype, jnp.integer):
        raise ValueError(
            f"length must be an integer scalar, got shape {jnp.shape(length)} and dtype {dtype} "
            "(for a batch, jax.vmap over xs and lengths)"
        )
    if not isinstance(length, jax.core.Tracer):
        value = int(length)
        if not 0 <= value <= max_length:
            raise ValueError(f"length must lie in [0, T={max_length}], got {value}")
    return jnp.clip(jnp.asarray(length, jnp.int32), 0, max_length)


def check_lengths(lengths: Optional[Array], batch_size: int, max_length: int) -> Array:
    """Validates ``lengths`` for a batch ``[B, T, ...]``; returns ``int32[B]``.

    ``None`` means every sequence is whole. Concrete values outside ``[0, T]``
    raise; traced ones are clipped.

    Raises:
      ValueError: ``lengths`` is not an integer vector ``[B]``, or a concrete
        value lies outside ``[0, T]``.
    """
    if lengths is None:
        return jnp.full((batch_size,), max_length, jnp.int32)
    dtype = jnp.asarray(lengths).dtype
    if jnp.shape(lengths) != (batch_size,) or not jnp.issubdtype(dtype, jnp.integer):
        raise ValueError(
            f"lengths must be an integer vector of shape [B={batch_size}], got shape "
            f"{jnp.shape(lengths)} and dtype {dtype}"
        )
    if not isinstance(lengths, jax.core.Tracer):
        values = np.asarray(lengths)
        if values.size and (values.min() < 0 or values.max() > max_length):
            raise ValueError(
                f"lengths must lie in [0, T={max_length}], got values in "
                f"[{values.min()}, {values.max()}]"
            )
    return jnp.clip(jnp.asarray(lengths, jnp.int32), 0, max_length)
