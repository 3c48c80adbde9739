"""``Backend.REFERENCE``: ``lax.scan`` of ``cell.recur``, the definition every other backend is tested against.

Time-major and batched like every backend (the contract of
:mod:`rnnlab.backends`): the step is ``cell.recur`` vmapped over the batch,
and the gradients are JAX's autodiff of the scan. ``remat=K`` scans chunks of
K steps under ``jax.checkpoint`` (the caller padded T to a multiple of K).
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import jax

from rnnlab.backends import ScanOptions
from rnnlab.cells import Cell
from rnnlab.lengths import where_kept, zero_unkept
from rnnlab.types import Array, Carry, Params


def chunked(tree: Any, size: int) -> Any:
    """Leaves ``[T, ...]`` -> ``[T/size, size, ...]`` (``None`` leaves stay ``None``)."""
    return jax.tree.map(lambda a: a.reshape((a.shape[0] // size, size) + a.shape[1:]), tree)


def scan_in_chunks(body: Callable, carry0: Carry, inputs: Any, reverse: bool, unroll: int,
                   remat: Optional[int]) -> tuple[Carry, Any]:
    """``lax.scan(body, ...)`` with ``unroll`` steps per iteration; with ``remat=K`` a scan over chunks of K
    steps, each under ``jax.checkpoint`` (only every K-th carry is kept for the backward pass).

    With ``remat``, T must be a multiple of K (:func:`rnnlab.scan.prepare` pads it with masked steps).
    """
    if remat is None:
        return jax.lax.scan(body, carry0, inputs, reverse=reverse, unroll=unroll)

    @jax.checkpoint
    def chunk_body(carry, chunk_inputs):
        return jax.lax.scan(body, carry, chunk_inputs, reverse=reverse, unroll=unroll)

    carry, ys = jax.lax.scan(chunk_body, carry0, chunked(inputs, remat), reverse=reverse)
    return carry, jax.tree.map(lambda a: a.reshape((-1,) + a.shape[2:]), ys)


def reference_unroll(cell: Cell, params: Params, xs: Array, keep: Optional[Array], carry0: Carry,
                     reverse: bool, options: ScanOptions) -> tuple[Carry, Array]:
    """``Backend.REFERENCE`` (the contract of :mod:`rnnlab.backends`): ``xs f32[T, B, D]`` -> ``ys [T, B, H]``.

    The input projection is one product for all T steps before the loop; the
    loop runs ``cell.recur`` per example (vmapped), keeping the carry and
    writing 0 where ``keep`` is False. ``y`` may be any pytree of ``[H]`` leaves
    (``gate_trace`` runs a cell whose ``y`` is a dict of gates).
    """
    pxs = cell.project(params, xs)
    recur = jax.vmap(cell.recur, in_axes=(None, 0, 0))

    def body(carry, inputs):
        px, keep_t = inputs
        new_carry, y = recur(params, carry, px)
        return where_kept(keep_t, new_carry, carry), zero_unkept(keep_t, y)

    return scan_in_chunks(body, carry0, (pxs, keep), reverse, options.unroll, options.remat)
