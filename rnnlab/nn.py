"""Flax Linen modules around the pure cells, at Flax's level: ``RNN``, ``Bidirectional``, ``StackedRNN``.

Each module takes ``inputs f32[*batch, T, D]`` (one or more leading batch
axes; ``[T, *batch, D]`` with ``time_major``) with ``lengths int[*batch]``
and calls the scan directly (:func:`rnnlab.unroll_batch`,
:func:`rnnlab.bidirectional`, :func:`rnnlab.stack`). Their parameters are
exactly the pure functions' params, so a trained layer runs without Flax:

=================  ============================================  ===========================================
module             ``variables["params"]``                        the same computation, pure
=================  ============================================  ===========================================
``RNN``            ``{"w_x", "w_h", "b", ...}`` (the cell's)     ``unroll_batch(cell, p, xs, lengths)``
``Bidirectional``  ``{"fwd": cell params, "bwd": cell params}``   ``bidirectional(fwd, bwd, p, xs, lengths)``
``StackedRNN``     ``{"layer_0": ..., "layer_{L-1}": ...}``      ``stack(cell, p, xs, lengths)``
=================  ============================================  ===========================================

(``p`` is ``variables["params"]``.) A layer of a bidirectional ``StackedRNN``
is ``{"fwd", "bwd"}``. Parameters are initialised by ``cell.init`` with the
module's ``"params"`` RNG.

The cell is given by name (``"lstm"``, ``"gru"``, ``"tanh"``) with
``hidden_size`` and ``cell_options`` (a dict or ``(name, value)`` pairs, e.g.
``{"forget_bias": 0.0, "recurrent_init": "orthogonal"}``) and the module's
``dtype`` (of the matrix products, e.g. bfloat16) and ``param_dtype``, or as a
:class:`~rnnlab.Cell` (then those stay unset). ``Bidirectional(fwd, bwd)``
takes two Cells.

Options, as Flax's ``nn.RNN`` names them: ``initial_carry=`` and
``return_carry=`` per call, ``time_major``, ``reverse`` and ``keep_order``
(``RNN``), ``unroll``; plus ``backend`` and ``remat`` (every backend computes
the same function).

Recurrent regularisers: ``recurrent_dropout`` (Gal & Ghahramani 2016, one
mask per sequence on ``h`` in the recurrent products) and ``zoneout``
(Krueger et al. 2017), for any cell (:func:`rnnlab.cells.regularized`), on
when ``deterministic=False`` with the ``"dropout"`` RNG, off (zoneout: its
expectation) at evaluation. Their random streams come from explicit keys:
the ``"dropout"`` key folded with the layer and the direction
(:func:`regularizer_key`), never from the order of calls. The params do not change.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Union

import flax.linen as nn
import jax
import jax.numpy as jnp

from rnnlab.backends import Backend
from rnnlab.bidirectional import Merge, bidirectional, check_num_layers, init_layer, layer_output_size, stack
from rnnlab.cells import Cell, Regularized, build_cell, get_cell, regularized, regularizer_seeds
from rnnlab.contract import initial_carry0
from rnnlab.scan import unroll_batch
from rnnlab.types import Array, Carry

CellOptions = Union[Mapping[str, Any], tuple[tuple[str, Any], ...]]


def make_cell(cell: Union[str, Cell], hidden_size: Optional[int], cell_options: CellOptions = (),
              dtype: Any = None, param_dtype: Any = None) -> Cell:
    """The :class:`Cell` a module describes: ``cell`` itself, or ``get_cell(cell, hidden_size, **options)``.

    ``dtype`` and ``param_dtype`` (``None``: the constructor's defaults) join the options of a named cell.

    Raises:
      ValueError: a name without ``hidden_size``, a Cell with a conflicting
        ``hidden_size``, options or dtypes, or anything :func:`get_cell` refuses.
    """
    options = dict(cell_options)
    dtypes = {name: value for name, value in (("dtype", dtype), ("param_dtype", param_dtype)) if value is not None}
    if isinstance(cell, Cell):
        if options or dtypes or (hidden_size is not None and hidden_size != cell.hidden_size):
            raise ValueError(
                "pass either a Cell or a cell name with hidden_size, cell_options, dtype and param_dtype, not both "
                f"(got a {cell.kind} Cell with hidden_size={hidden_size}, cell_options={options}, {dtypes})"
            )
        return cell
    if not isinstance(cell, str):
        raise ValueError(f"cell must be a cell name or an rnnlab Cell, got {type(cell)}")
    if hidden_size is None:
        raise ValueError(f"cell {cell!r} given by name needs hidden_size")
    return get_cell(cell, hidden_size, **options, **dtypes)


def input_features(inputs: Array, time_major: bool = False) -> int:
    """D of ``inputs f32[*batch, T, D]`` (``[T, *batch, D]`` time-major): the size the layer's params are made for.

    Named for what it returns (the full checks of shapes, lengths and carries
    are :mod:`rnnlab.contract`'s, when the scan runs).

    Raises:
      ValueError: ``inputs`` without a batch axis.
    """
    if jnp.ndim(inputs) < 3:
        layout = "[T, *batch, D]" if time_major else "[*batch, T, D]"
        raise ValueError(f"inputs must have shape {layout} (e.g. [B, T, D]), got shape {jnp.shape(inputs)}")
    return int(jnp.shape(inputs)[-1])


def regularizer_key(key: Array, layer: int, direction: int) -> Array:
    """The key of the regularisers' random stream of one layer (0, 1, ...) and direction (0 forward, 1 backward)."""
    return jax.random.fold_in(jax.random.fold_in(jax.random.fold_in(key, 1), layer), direction)


def _strip(carries: Any) -> Any:
    """The cells' own carries inside any :class:`~rnnlab.cells.Regularized` ones."""
    return jax.tree.map(lambda c: c.inner if isinstance(c, Regularized) else c, carries,
                        is_leaf=lambda c: isinstance(c, Regularized))


class _CellModule(nn.Module):
    """Fields shared by the modules: which cell, how to run it, and its recurrent regularisers."""

    cell: Union[str, Cell]
    hidden_size: Optional[Union[int, Cell]] = None
    cell_options: CellOptions = ()
    backend: Optional[Union[Backend, str]] = None
    remat: Optional[int] = None
    unroll: Optional[int] = None
    recurrent_dropout: float = 0.0
    zoneout: float = 0.0
    dtype: Any = None
    param_dtype: Any = None
    time_major: bool = False
    return_carry: bool = False

    def make_cell(self) -> Cell:
        """The module's :class:`Cell` (the forward one of a :class:`Bidirectional`)."""
        return make_cell(self.cell, self.hidden_size, self.cell_options, self.dtype, self.param_dtype)

    def scan_options(self, time_major: Optional[bool]) -> dict[str, Any]:
        """The keyword options of the pure functions: ``backend``, ``remat``, ``unroll``, ``time_major``."""
        return {"backend": self.backend, "remat": self.remat, "unroll": self.unroll,
                "time_major": self.time_major if time_major is None else time_major}

    @property
    def regularized(self) -> bool:
        """Whether the recurrent regularisers are on (``recurrent_dropout`` or ``zoneout``)."""
        return bool(self.recurrent_dropout or self.zoneout)

    def regularize(self, cell: Cell, deterministic: bool) -> Cell:
        """The cell to run: with the regularisers (:func:`rnnlab.cells.regularized`) when they are on."""
        if not self.regularized:
            return cell
        return build_cell(regularized(cell.definition, self.recurrent_dropout, self.zoneout, train=not deterministic),
                          cell.hidden_size, dtype=cell.dtype, options=dict(cell.options))

    def random_key(self, deterministic: bool, needed: bool) -> Optional[Array]:
        """The call's one ``"dropout"`` key when training needs randomness; every stream is folded from it."""
        return self.make_rng("dropout") if needed and not deterministic else None

    def start(self, cell: Cell, carry: Optional[Carry], key: Optional[Array], batch_shape: tuple[int, ...],
              layer: int, direction: int) -> Optional[Carry]:
        """The carry one run starts from: the caller's (or ``None``), wrapped with its seeds for a regularised cell.

        The seeds come from ``regularizer_key(key, layer, direction)``: the same
        whatever the order in which layers and directions run.
        """
        if not self.regularized:
            return carry
        start = initial_carry0(cell, batch_shape)
        if carry is not None:
            start = start._replace(inner=carry)
        if key is not None:
            start = start._replace(seed=regularizer_seeds(regularizer_key(key, layer, direction),
                                                          batch_shape + (cell.hidden_size,)))
        return start

    def params_for(self, cell: Cell, name: str, input_size: int) -> dict[str, Array]:
        """The cell's params under ``name`` (a module parameter per layer or direction)."""
        return self.param(name, cell.init, input_size)

    def output(self, carry: Any, ys: Array, return_carry: Optional[bool]) -> Any:
        """``ys``, or ``(carry, ys)`` with the cells' own carries when ``return_carry`` (the call's, else the field)."""
        wanted = self.return_carry if return_carry is None else return_carry
        return (_strip(carry), ys) if wanted else ys


def _batch_shape(inputs: Array, time_major: bool) -> tuple[int, ...]:
    return tuple(jnp.shape(inputs)[1:-1] if time_major else jnp.shape(inputs)[:-2])


class RNN(_CellModule):
    """One recurrent layer over a padded batch.

    Attributes:
      cell: a cell name or a :class:`~rnnlab.Cell`.
      hidden_size: H (with a cell name).
      cell_options: the cell constructor's options (with a cell name), e.g.
        ``forget_bias``, ``kernel_init``, ``recurrent_init``.
      dtype, param_dtype: the cell's matrix-product dtype and its params' dtype (with a cell name).
      reverse: run each sequence from ``length-1`` down to 0.
      keep_order: with ``reverse``, outputs in input order (True, rnnlab's
        default) or in processing order (False, Flax's default).
      time_major: inputs and outputs are ``[T, *batch, ...]``.
      return_carry: also return the final carries.
      backend, remat, unroll: as in :func:`rnnlab.unroll_batch`.

    ``variables["params"]`` is the cell's own params dict (``w_x``, ``w_h``,
    ``b``, ...), so ``rnnlab.unroll(cell, variables["params"], xs, length)``
    gives the same result on one sequence.
    """

    reverse: bool = False
    keep_order: bool = True

    @nn.compact
    def __call__(self, inputs: Array, lengths: Optional[Array] = None, *, initial_carry: Optional[Carry] = None,
                 return_carry: Optional[bool] = None, time_major: Optional[bool] = None,
                 reverse: Optional[bool] = None, keep_order: Optional[bool] = None, deterministic: bool = True):
        """Runs the layer.

        Args:
          inputs: ``f32[*batch, T, D]`` (``[T, *batch, D]`` time-major), padded past each length.
          lengths: ``int[*batch]`` (``None``: all T).
          initial_carry: the carry to start from, leaves ``[*batch, H]`` (``None``: zeros).
          return_carry, time_major, reverse, keep_order: this call's (``None``: the module's).
          deterministic: ``False`` turns the recurrent regularisers on (with
            ``recurrent_dropout``/``zoneout``; needs the ``"dropout"`` RNG).

        Returns:
          ``ys f32[*batch, T, H]``, zero past each length; with ``return_carry``,
          ``(carry_T, ys)`` with each carry leaf ``[*batch, H]``.
        """
        options = self.scan_options(time_major)
        cell = self.regularize(self.make_cell(), deterministic)
        key = self.random_key(deterministic, self.regularized)
        input_size = input_features(inputs, options["time_major"])
        shapes = jax.eval_shape(lambda key: cell.init(key, input_size), jax.random.key(0))
        params = {name: self.param(name, lambda key, name=name: cell.init(key, input_size)[name]) for name in shapes}
        carry0 = self.start(cell, initial_carry, key, _batch_shape(inputs, options["time_major"]), 0, 0)
        carry, ys = unroll_batch(cell, params, inputs, lengths, carry0, self.reverse if reverse is None else reverse,
                                 keep_order=self.keep_order if keep_order is None else keep_order, **options)
        return self.output(carry, ys, return_carry)


class Bidirectional(_CellModule):
    """One bidirectional layer: a forward and a reverse run with separate params.

    ``Bidirectional("gru", 64)`` runs one named cell both ways;
    ``Bidirectional(forward_cell, backward_cell)`` two :class:`~rnnlab.Cell` s
    (the second argument is then the backward cell, not ``hidden_size``).

    Attributes:
      cell, hidden_size, cell_options, dtype, param_dtype, backend, remat, unroll,
        time_major: as for :class:`RNN`.
      merge: ``"concat"`` (``ys [..., 2H]``, forward first), ``"sum"``, or any
        function ``merge(ys_fwd, ys_bwd)``.
      return_carry: also return ``(carry_fwd, carry_bwd)``.

    ``variables["params"]`` is ``{"fwd": cell params, "bwd": cell params}``, the
    layout of :func:`rnnlab.bidirectional`.
    """

    merge: Merge = "concat"

    def make_cells(self) -> tuple[Cell, Cell]:
        """The forward and backward cells."""
        if isinstance(self.hidden_size, Cell):
            return make_cell(self.cell, None), self.hidden_size
        cell = self.make_cell()
        return cell, cell

    @nn.compact
    def __call__(self, inputs: Array, lengths: Optional[Array] = None, *,
                 initial_carry: Optional[tuple[Optional[Carry], Optional[Carry]]] = None,
                 return_carry: Optional[bool] = None, time_major: Optional[bool] = None,
                 deterministic: bool = True):
        """Runs the layer: ``ys f32[*batch, T, 2H or H]`` (``(carries, ys)`` with ``return_carry``).

        ``initial_carry``: ``(carry_fwd, carry_bwd)``, either may be ``None``.
        """
        options = self.scan_options(time_major)
        input_size = input_features(inputs, options["time_major"])
        batch_shape = _batch_shape(inputs, options["time_major"])
        given = (None, None) if initial_carry is None else initial_carry
        key = self.random_key(deterministic, self.regularized)
        cells, carries, params = [], [], {}
        for direction, (name, cell) in enumerate(zip(("fwd", "bwd"), self.make_cells())):
            cell = self.regularize(cell, deterministic)
            cells.append(cell)
            carries.append(self.start(cell, given[direction], key, batch_shape, 0, direction))
            params[name] = self.params_for(cell, name, input_size)
        carry, ys = bidirectional(*cells, params, inputs, lengths, self.merge, initial_carry=tuple(carries),
                                  **options)
        return self.output(carry, ys, return_carry)


class StackedRNN(_CellModule):
    """``num_layers`` recurrent layers, each reading the previous one's outputs.

    Attributes:
      cell, hidden_size, cell_options, dtype, param_dtype, backend, remat, unroll,
        time_major: as for :class:`RNN` (every layer).
      num_layers: L >= 1.
      bidirectional: every layer is bidirectional.
      merge: how bidirectional layers merge their directions (a name or a function).
      dropout: dropout rate between layers (not after the last), drawn from
        the ``"dropout"`` RNG when ``deterministic=False``; one mask over the
        whole outputs, so each example gets its own.
      return_carry: also return one final carry per layer.

    ``variables["params"]`` is ``{"layer_0": ..., "layer_{L-1}": ...}``, the
    layout of :func:`rnnlab.stack` / :func:`rnnlab.init_stack`.
    """

    num_layers: int = 1
    bidirectional: bool = False
    merge: Merge = "concat"
    dropout: float = 0.0

    @nn.compact
    def __call__(self, inputs: Array, lengths: Optional[Array] = None, *, initial_carry: Optional[tuple] = None,
                 return_carry: Optional[bool] = None, time_major: Optional[bool] = None,
                 deterministic: bool = True):
        """Runs the stack.

        Args:
          inputs: ``f32[*batch, T, D]`` (``[T, *batch, D]`` time-major).
          lengths: ``int[*batch]`` (``None``: all T).
          initial_carry: one entry per layer (a carry, a ``(fwd, bwd)`` pair for
            bidirectional layers, or ``None``); ``None``: zeros everywhere.
          return_carry, time_major: this call's (``None``: the module's).
          deterministic: ``False`` applies dropout between layers and the
            recurrent regularisers (needs the ``"dropout"`` RNG).

        Returns:
          ``ys f32[*batch, T, H or 2H]``, zero past each length; with
          ``return_carry``, ``(carries, ys)`` with a tuple of per-layer carries.
        """
        options = self.scan_options(time_major)
        num_layers = check_num_layers(self.num_layers)
        size = input_features(inputs, options["time_major"])
        batch_shape = _batch_shape(inputs, options["time_major"])
        plain = self.make_cell()
        cell = self.regularize(plain, deterministic)
        drop = self.dropout > 0.0 and num_layers > 1
        key = self.random_key(deterministic, self.regularized or drop)
        given = [None] * num_layers if initial_carry is None else list(initial_carry)
        carries, params = [], {}
        for i in range(num_layers):
            init = lambda key, size=size: init_layer(cell, key, size, self.bidirectional)
            params[f"layer_{i}"] = self.param(f"layer_{i}", init)
            size = layer_output_size(plain, self.bidirectional, self.merge)
            if self.bidirectional:
                pair = (None, None) if i >= len(given) or given[i] is None else given[i]
                carries.append(tuple(self.start(cell, c, key, batch_shape, i, d) for d, c in enumerate(pair)))
            else:
                carries.append(self.start(cell, given[i] if i < len(given) else None, key, batch_shape, i, 0))
        dropout_key = jax.random.fold_in(key, 0) if drop and key is not None else None
        carry, ys = stack(cell, params, inputs, lengths, bidirectional=self.bidirectional, merge=self.merge,
                          dropout=self.dropout, key=dropout_key, initial_carry=carries, **options)
        return self.output(carry, ys, return_carry)
