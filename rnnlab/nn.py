"""Flax Linen adapters around the pure cells: ``RNN``, ``Bidirectional``, ``StackedRNN``.

Each module takes a padded batch ``inputs f32[B, T, D]`` with ``lengths
int[B]`` and runs :func:`rnnlab.unroll_batch` (through
:func:`rnnlab.bidirectional` and :func:`rnnlab.stack` with
``unroll_fn=unroll_batch``). Their parameters are exactly the pure
functions' params, so a trained layer runs without Flax:

=================  ============================================  ===========================================
module             ``variables["params"]``                        the same computation, pure
=================  ============================================  ===========================================
``RNN``            ``{"w_x", "w_h", "b", ...}`` (the cell's)     ``unroll(cell, p, xs, length)``
``Bidirectional``  ``{"fwd": cell params, "bwd": cell params}``   ``bidirectional(cell, cell, p, xs, length)``
``StackedRNN``     ``{"layer_0": ..., "layer_{L-1}": ...}``      ``stack(cell, p, xs, length)``
=================  ============================================  ===========================================

(``p`` is ``variables["params"]``; the pure functions take one sequence,
vmapped over the batch, or the whole batch with ``unroll_fn=unroll_batch``.)
A layer of a bidirectional ``StackedRNN`` is ``{"fwd", "bwd"}``. Parameters
are initialised by ``cell.init`` with the module's ``"params"`` RNG.

The cell is given by name (``"lstm"``, ``"gru"``, ``"tanh"``) with
``hidden_size`` and ``cell_options`` (a dict or ``(name, value)`` pairs, e.g.
``{"forget_bias": 0.0}``), or as a :class:`~rnnlab.Cell` (then
``hidden_size`` and ``cell_options`` stay unset).

``backend`` (a :class:`rnnlab.Backend` or its name; ``None``: the default of
:func:`rnnlab.unroll_batch`, ``FUSED`` for the library's cells) and ``remat``
(``None`` or K steps per rematerialised chunk) are passed to
:func:`rnnlab.unroll_batch`; every backend computes the same function.

Recurrent regularisers: ``recurrent_dropout`` (Gal & Ghahramani 2016, one
mask per sequence on ``h`` in the recurrent products) and ``zoneout``
(Krueger et al. 2017), for any cell (:func:`rnnlab.cells.regularized`), on
when ``deterministic=False`` with the ``"dropout"`` RNG, off (zoneout: its
expectation) at evaluation. The params do not change.

Lengths: a concrete ``lengths`` array with values outside ``[0, T]`` raises
``ValueError``; traced lengths (inside ``jit``) are clipped to ``[0, T]``.
"""

from __future__ import annotations

import functools
import itertools
from typing import Any, Callable, Mapping, Optional, Union

import flax.linen as nn
import jax
import jax.numpy as jnp

from rnnlab.backends import Backend
from rnnlab.bidirectional import bidirectional, check_num_layers, init_layer, layer_output_size, stack
from rnnlab.cells import Cell, Regularized, build_cell, get_cell, regularized, regularizer_seeds
from rnnlab.scan import unroll_batch
from rnnlab.types import Array

CellOptions = Union[Mapping[str, Any], tuple[tuple[str, Any], ...]]


def make_cell(cell: Union[str, Cell], hidden_size: Optional[int], cell_options: CellOptions = ()) -> Cell:
    """The :class:`Cell` a module describes: ``cell`` itself, or ``get_cell(cell, hidden_size, **options)``.

    Raises:
      ValueError: a name without ``hidden_size``, a Cell with a conflicting
        ``hidden_size`` or with options, or anything :func:`get_cell` refuses.
    """
    options = dict(cell_options)
    if isinstance(cell, Cell):
        if options or (hidden_size is not None and hidden_size != cell.hidden_size):
            raise ValueError(
                "pass either a Cell or a cell name with hidden_size and cell_options, not both "
                f"(got a {cell.kind} Cell with hidden_size={hidden_size}, cell_options={options})"
            )
        return cell
    if not isinstance(cell, str):
        raise ValueError(f"cell must be a cell name or an rnnlab Cell, got {type(cell)}")
    if hidden_size is None:
        raise ValueError(f"cell {cell!r} given by name needs hidden_size")
    return get_cell(cell, hidden_size, **options)


def check_inputs(inputs: Array) -> int:
    """D of a batch ``inputs f32[B, T, D]`` (the layer's params are made for it).

    The lengths are checked where they are used, by :func:`rnnlab.unroll_batch`
    (:func:`rnnlab.lengths.check_lengths`).

    Raises:
      ValueError: ``inputs`` not rank 3.
    """
    if jnp.ndim(inputs) != 3:
        raise ValueError(f"inputs must have shape [B, T, D], got shape {jnp.shape(inputs)}")
    return int(jnp.shape(inputs)[-1])


def _strip(carries: Any) -> Any:
    """The cells' own carries inside any :class:`~rnnlab.cells.Regularized` ones."""
    return jax.tree.map(lambda c: c.inner if isinstance(c, Regularized) else c, carries,
                        is_leaf=lambda c: isinstance(c, Regularized))


class _CellModule(nn.Module):
    """Fields shared by the adapters: which cell, how to run it, and its recurrent regularisers."""

    cell: Union[str, Cell]
    hidden_size: Optional[int] = None
    cell_options: CellOptions = ()
    backend: Optional[Union[Backend, str]] = None
    remat: Optional[int] = None
    recurrent_dropout: float = 0.0
    zoneout: float = 0.0

    def make_cell(self) -> Cell:
        """The module's :class:`Cell`."""
        return make_cell(self.cell, self.hidden_size, self.cell_options)

    def unroll_fn(self) -> Callable:
        """:func:`rnnlab.unroll_batch` with the module's ``backend`` and ``remat``."""
        return functools.partial(unroll_batch, backend=self.backend, remat=self.remat)

    def cell_and_unroll(self, deterministic: bool) -> tuple[Cell, Callable]:
        """The cell to run and its batched unroll, with the regularisers when they are on.

        With ``recurrent_dropout`` or ``zoneout``, the cell is
        :func:`rnnlab.cells.regularized` (``train = not deterministic``) and
        every unroll call (each layer and direction) draws its own per-sequence
        seeds from the ``"dropout"`` RNG; at evaluation no RNG is needed.
        """
        cell = self.make_cell()
        if not (self.recurrent_dropout or self.zoneout):
            return cell, self.unroll_fn()
        reg = build_cell(regularized(cell.definition, self.recurrent_dropout, self.zoneout,
                                     train=not deterministic),
                         cell.hidden_size, dtype=cell.dtype, options=dict(cell.options))
        key = None if deterministic else self.make_rng("dropout")
        calls = itertools.count()
        run = self.unroll_fn()

        def unroll(cell, params, xs, lengths=None, carry0=None, reverse=False):
            if carry0 is None:
                batch = jnp.shape(xs)[0]
                carry0 = jax.tree.map(lambda c: jnp.broadcast_to(c, (batch,) + c.shape),
                                      cell.initial_carry())
                if key is not None:
                    seeds = regularizer_seeds(jax.random.fold_in(key, next(calls)),
                                              (batch, cell.hidden_size))
                    carry0 = carry0._replace(seed=seeds)
            return run(cell, params, xs, lengths, carry0, reverse)

        return reg, unroll


class RNN(_CellModule):
    """One recurrent layer over a padded batch.

    Attributes:
      cell: a cell name or a :class:`~rnnlab.Cell`.
      hidden_size: H (with a cell name).
      cell_options: the cell constructor's options (with a cell name).
      reverse: run each sequence from ``length-1`` down to 0.
      return_carry: also return the final carries.
      backend: a :class:`~rnnlab.Backend` or its name (``None``: the
        :func:`rnnlab.unroll_batch` default).
      remat: ``None`` or K: rematerialise chunks of K steps in the backward pass.

    ``variables["params"]`` is the cell's own params dict (``w_x``, ``w_h``,
    ``b``, ...), so ``rnnlab.unroll(cell, variables["params"], xs, length)``
    gives the same result on one sequence.
    """

    reverse: bool = False
    return_carry: bool = False

    @nn.compact
    def __call__(self, inputs: Array, lengths: Optional[Array] = None, *, deterministic: bool = True):
        """Runs the layer.

        Args:
          inputs: ``f32[B, T, D]``, padded past each length.
          lengths: ``int[B]`` (``None``: all T).
          deterministic: ``False`` turns the recurrent regularisers on (with
            ``recurrent_dropout``/``zoneout``; needs the ``"dropout"`` RNG).

        Returns:
          ``ys f32[B, T, H]``, zero past each length; with ``return_carry``,
          ``(carry_T, ys)`` with each carry leaf ``[B, H]``.
        """
        cell, unroll = self.cell_and_unroll(deterministic)
        input_size = check_inputs(inputs)
        shapes = jax.eval_shape(lambda key: cell.init(key, input_size), jax.random.key(0))
        params = {
            name: self.param(name, lambda key, name=name: cell.init(key, input_size)[name])
            for name in shapes
        }
        carry, ys = unroll(cell, params, inputs, lengths, reverse=self.reverse)
        return (_strip(carry), ys) if self.return_carry else ys


class Bidirectional(_CellModule):
    """One bidirectional layer: a forward and a reverse run with separate params.

    Attributes:
      cell, hidden_size, cell_options, backend, remat: as for :class:`RNN`.
      merge: ``"concat"`` (``ys [B, T, 2H]``, forward first) or ``"sum"``
        (``ys [B, T, H]``).
      return_carry: also return ``(carry_fwd, carry_bwd)``.

    ``variables["params"]`` is ``{"fwd": cell params, "bwd": cell params}``, the
    layout of :func:`rnnlab.bidirectional`.
    """

    merge: str = "concat"
    return_carry: bool = False

    @nn.compact
    def __call__(self, inputs: Array, lengths: Optional[Array] = None, *, deterministic: bool = True):
        """Runs the layer: ``ys f32[B, T, 2H or H]`` (``(carries, ys)`` with ``return_carry``)."""
        cell, unroll = self.cell_and_unroll(deterministic)
        input_size = check_inputs(inputs)  # the merge is checked by rnnlab.bidirectional
        params = {
            name: self.param(name, cell.init, input_size) for name in ("fwd", "bwd")
        }
        carries, ys = bidirectional(cell, cell, params, inputs, lengths, self.merge,
                                    unroll_fn=unroll)
        return (_strip(carries), ys) if self.return_carry else ys


class StackedRNN(_CellModule):
    """``num_layers`` recurrent layers, each reading the previous one's outputs.

    Attributes:
      cell, hidden_size, cell_options, backend, remat: as for :class:`RNN`
        (every layer).
      num_layers: L >= 1.
      bidirectional: every layer is bidirectional.
      merge: how bidirectional layers merge their directions.
      dropout: dropout rate between layers (not after the last), drawn from
        the ``"dropout"`` RNG when ``deterministic=False``; one mask over the
        whole ``[B, T, F]`` outputs, so each example gets its own.
      return_carry: also return one final carry per layer.

    ``variables["params"]`` is ``{"layer_0": ..., "layer_{L-1}": ...}``, the
    layout of :func:`rnnlab.stack` / :func:`rnnlab.init_stack`.
    """

    num_layers: int = 1
    bidirectional: bool = False
    merge: str = "concat"
    dropout: float = 0.0
    return_carry: bool = False

    @nn.compact
    def __call__(self, inputs: Array, lengths: Optional[Array] = None, *, deterministic: bool = True):
        """Runs the stack.

        Args:
          inputs: ``f32[B, T, D]``.
          lengths: ``int[B]`` (``None``: all T).
          deterministic: ``False`` applies dropout between layers (needs the
            ``"dropout"`` RNG when ``dropout > 0``).

        Returns:
          ``ys f32[B, T, H or 2H]``, zero past each length; with
          ``return_carry``, ``(carries, ys)`` with a tuple of per-layer carries.
        """
        cell, unroll = self.cell_and_unroll(deterministic)
        size = check_inputs(inputs)  # the merge is checked by rnnlab.bidirectional, the lengths by the scan
        params = {}
        for i in range(check_num_layers(self.num_layers)):
            init = lambda key, size=size: init_layer(cell, key, size, self.bidirectional)
            params[f"layer_{i}"] = self.param(f"layer_{i}", init)
            size = layer_output_size(cell, self.bidirectional, self.merge)
        drop = not deterministic and self.dropout > 0.0 and self.num_layers > 1
        carries, ys = stack(
            cell, params, inputs, lengths, bidirectional=self.bidirectional, merge=self.merge,
            dropout=self.dropout, key=self.make_rng("dropout") if drop else None,
            unroll_fn=unroll,
        )
        return (_strip(carries), ys) if self.return_carry else ys
