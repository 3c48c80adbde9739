"""Recurrent cells as bundles of pure functions.

A :class:`Cell` is to a recurrent layer what an ``optax.GradientTransformation``
is to an optimiser: a NamedTuple of pure functions and a little static data.
Every function works on ONE example (no batch axis); batch with ``jax.vmap``
and run over time with :func:`rnnlab.unroll`.

The step is split in two so that ``unroll`` can hoist the input half out of
the time loop:

    px            = project(params, x)        # x @ w_x + b, any leading axes
    carry, y      = recur(params, carry, px)  # the part that needs h_{t-1}
    step(params, carry, x) == recur(params, carry, project(params, x))

Parameters are a flat dict with one fused matrix per kind: ``w_x f32[D, G*H]``,
``w_h f32[H, G*H]``, ``b f32[G*H]`` (plus ``b_hn f32[H]`` for the reset-after
GRU and ``p_i, p_f, p_o f32[H]`` for the peephole LSTM). Gate blocks are laid
out along the last axis in the order given in each constructor's docstring,
which is PyTorch's order, so imported weights need no reshuffling.

Numerics: parameters are stored in float32. ``dtype`` picks the dtype of the
matrix products (``jnp.float32`` or ``jnp.bfloat16``); products accumulate in
float32 and the gate arithmetic and the carry stay float32. ``jnp.float64``
(with ``jax.enable_x64``, float64 params and carry) exists for numerical
gradient checks.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Mapping, NamedTuple

import jax
import jax.numpy as jnp

from rnnlab.types import Array, Carry, Params


class Cell(NamedTuple):
    """A recurrent cell as pure functions (one example per call).

    Attributes:
      init: ``init(key, input_size) -> params``.
      initial_carry: ``initial_carry(dtype=jnp.float32) -> carry`` of zeros.
      project: ``project(params, xs: f32[..., D]) -> f32[..., G*H]``, the
        input part of every gate pre-activation (``xs @ w_x + b``).
      recur: ``recur(params, carry, px: f32[G*H]) -> (carry, y: f32[H])``.
      step: ``step(params, carry, x: f32[D]) -> (carry, y: f32[H])``.
      gates: ``gates(params, carry, x: f32[D]) -> {gate name: f32[H]}``, the
        activation of every gate at this step (for plots and analysis).
      hidden_size: H.
      kind: ``"tanh"``, ``"lstm"`` or ``"gru"``.
      options: the constructor's keyword options as sorted ``(name, value)``
        pairs (hashable); read them with :meth:`option`.
    """

    init: Callable[..., Params]
    initial_carry: Callable[..., Carry]
    project: Callable[..., Array]
    recur: Callable[..., tuple[Carry, Array]]
    step: Callable[..., tuple[Carry, Array]]
    gates: Callable[..., dict[str, Array]]
    hidden_size: int
    kind: str
    options: tuple[tuple[str, Any], ...]

    @property
    def num_gates(self) -> int:
        """G: how many H-wide blocks the fused matrices hold."""
        return _NUM_GATES[self.kind]

    @property
    def gate_names(self) -> tuple[str, ...]:
        """The keys of :attr:`gates`' result, in a fixed order."""
        return _GATE_NAMES[self.kind]

    def option(self, name: str) -> Any:
        """The value of one constructor option, e.g. ``cell.option("peephole")``."""
        return dict(self.options)[name]


class LSTMState(NamedTuple):
    """The LSTM carry: hidden state ``h f32[H]`` and cell state ``c f32[H]``."""

    h: Array
    c: Array


_NUM_GATES = {"tanh": 1, "gru": 3, "lstm": 4}
_GATE_NAMES = {
    "tanh": ("candidate",),
    "gru": ("reset", "update", "candidate"),
    "lstm": ("input", "forget", "candidate", "output"),
}


# ---------------------------------------------------------------------------
# Shared pieces


def _check_size(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


_DTYPES = ("float32", "bfloat16", "float64")


def _check_dtype(dtype: Any) -> jnp.dtype:
    try:
        dtype = jnp.dtype(dtype)
    except TypeError:
        dtype = None
    if dtype is None or dtype.name not in _DTYPES:
        raise ValueError(
            f"dtype (of the matrix products) must be one of {', '.join(_DTYPES)}, got {dtype}"
        )
    return dtype


def _dot(a: Array, w: Array, dtype: jnp.dtype) -> Array:
    """``a @ w`` with both operands cast to ``dtype``, accumulated in at least float32."""
    accumulate = jnp.promote_types(dtype, jnp.float32)
    return jnp.matmul(a.astype(dtype), w.astype(dtype), preferred_element_type=accumulate)


def _orthogonal_blocks(key: Array, hidden_size: int, num_blocks: int) -> Array:
    """``f32[H, G*H]``: G independent orthogonal ``[H, H]`` blocks side by side."""
    keys = jax.random.split(key, num_blocks)
    init = jax.nn.initializers.orthogonal()
    return jnp.concatenate([init(k, (hidden_size, hidden_size), jnp.float32) for k in keys], axis=1)


def _init_fused(key: Array, input_size: int, hidden_size: int, num_gates: int) -> dict[str, Array]:
    """Glorot-uniform ``w_x [D, G*H]``, orthogonal blocks ``w_h [H, G*H]``, zero ``b``."""
    _check_size("input_size", input_size)
    k_x, k_h = jax.random.split(key)
    width = num_gates * hidden_size
    return {
        "w_x": jax.nn.initializers.glorot_uniform()(k_x, (input_size, width), jnp.float32),
        "w_h": _orthogonal_blocks(k_h, hidden_size, num_gates),
        "b": jnp.zeros((width,), jnp.float32),
    }


def _project(params: Params, xs: Array, dtype: jnp.dtype) -> Array:
    """``xs f32[..., D] -> f32[..., G*H]``: ``xs @ w_x + b``."""
    return _dot(xs, params["w_x"], dtype) + params["b"]


def _split(a: Array, num: int) -> list[Array]:
    return jnp.split(a, num, axis=-1)


def _make_cell(
    kind: str,
    hidden_size: int,
    options: Mapping[str, Any],
    init: Callable[..., Params],
    initial_carry: Callable[..., Carry],
    activations: Callable[[Params, Carry, Array], dict[str, Array]],
    update: Callable[[Params, Carry, dict[str, Array]], tuple[Carry, Array]],
    dtype: jnp.dtype,
) -> Cell:
    """Assembles a Cell from its two cell-specific pieces.

    ``activations(params, carry, px) -> {gate: f32[H]}`` computes every gate;
    ``update(params, carry, gates) -> (carry, y)`` turns them into the new
    carry and output. ``recur``, ``step`` and ``gates`` are derived from them,
    so the equations are written once per cell.
    """
    project = functools.partial(_project, dtype=dtype)

    def recur(params, carry, px):
        return update(params, carry, activations(params, carry, px))

    def step(params, carry, x):
        return recur(params, carry, project(params, x))

    def gates(params, carry, x):
        return activations(params, carry, project(params, x))

    return Cell(
        init=init,
        initial_carry=initial_carry,
        project=project,
        recur=recur,
        step=step,
        gates=gates,
        hidden_size=hidden_size,
        kind=kind,
        options=tuple(sorted(options.items())),
    )


def _zeros_carry(hidden_size: int) -> Callable[..., Array]:
    def initial_carry(dtype=jnp.float32):
        return jnp.zeros((hidden_size,), dtype)

    return initial_carry


# ---------------------------------------------------------------------------
# The cells


def tanh_rnn(hidden_size: int, *, dtype: Any = jnp.float32) -> Cell:
    r"""The plain (Elman) RNN: no gates.

    .. math::  h_t = \tanh(W_x x_t + W_h h_{t-1} + b), \qquad y_t = h_t

    G = 1; the carry is ``h f32[H]``; ``gates`` returns ``{"candidate": h_t}``.

    Args:
      hidden_size: H.
      dtype: dtype of the matrix products (float32 or bfloat16; float64 for checks).
    """
    _check_size("hidden_size", hidden_size)
    dtype = _check_dtype(dtype)

    def activations(params, h, px):
        return {"candidate": jnp.tanh(px + _dot(h, params["w_h"], dtype))}

    def update(params, h, gates):
        return gates["candidate"], gates["candidate"]

    return _make_cell(
        "tanh",
        hidden_size,
        {"dtype": dtype.name},
        lambda key, input_size: _init_fused(key, input_size, hidden_size, 1),
        _zeros_carry(hidden_size),
        activations,
        update,
        dtype,
    )


def lstm(
    hidden_size: int,
    *,
    forget_bias: float = 1.0,
    peephole: bool = False,
    dtype: Any = jnp.float32,
) -> Cell:
    r"""Long short-term memory (Hochreiter & Schmidhuber 1997; Gers et al. 2000).

    Gate order along the fused axis: input ``i``, forget ``f``, candidate
    ``g``, output ``o`` (PyTorch's and Keras' order). With
    :math:`a = W_x x_t + b + W_h h_{t-1}` split into four H-wide blocks:

    .. math::
        i_t &= \sigma(a_i + p_i \odot c_{t-1}) \\
        f_t &= \sigma(a_f + p_f \odot c_{t-1} + \text{forget\_bias}) \\
        g_t &= \tanh(a_g) \\
        c_t &= f_t \odot c_{t-1} + i_t \odot g_t \\
        o_t &= \sigma(a_o + p_o \odot c_t) \\
        h_t &= o_t \odot \tanh(c_t), \qquad y_t = h_t

    The peephole terms (``p_i, p_f, p_o f32[H]``, Gers & Schmidhuber 2000) are
    present only with ``peephole=True``.

    ``forget_bias`` is a constant added inside ``recur``, not a value stored
    in ``b`` (as in Haiku and Sonnet): it starts training with the forget gate
    open (~0.73 at 1.0) while the stored bias starts at zero. Weight import
    from PyTorch, Keras or Flax, which have no such constant, needs a cell
    built with ``forget_bias=0.0``.

    The carry is :class:`LSTMState` ``(h f32[H], c f32[H])``; ``gates``
    returns ``{"input", "forget", "candidate", "output"}``.

    Args:
      hidden_size: H.
      forget_bias: constant added to the forget gate's pre-activation.
      peephole: add the diagonal peephole connections from the cell state.
      dtype: dtype of the matrix products (float32 or bfloat16; float64 for checks).
    """
    _check_size("hidden_size", hidden_size)
    dtype = _check_dtype(dtype)
    forget_bias = float(forget_bias)
    peephole = bool(peephole)

    def init(key, input_size):
        k_fused, k_peep = jax.random.split(key)
        params = _init_fused(k_fused, input_size, hidden_size, 4)
        if peephole:
            params.update(
                {name: jnp.zeros((hidden_size,), jnp.float32) for name in ("p_i", "p_f", "p_o")}
            )
        return params

    def initial_carry(dtype=jnp.float32):
        zeros = jnp.zeros((hidden_size,), dtype)
        return LSTMState(h=zeros, c=zeros)

    def activations(params, carry, px):
        a_i, a_f, a_g, a_o = _split(px + _dot(carry.h, params["w_h"], dtype), 4)
        if peephole:
            a_i = a_i + params["p_i"] * carry.c
            a_f = a_f + params["p_f"] * carry.c
        i = jax.nn.sigmoid(a_i)
        f = jax.nn.sigmoid(a_f + forget_bias)
        g = jnp.tanh(a_g)
        if peephole:
            c = f * carry.c + i * g
            a_o = a_o + params["p_o"] * c
        return {"input": i, "forget": f, "candidate": g, "output": jax.nn.sigmoid(a_o)}

    def update(params, carry, gates):
        c = gates["forget"] * carry.c + gates["input"] * gates["candidate"]
        h = gates["output"] * jnp.tanh(c)
        return LSTMState(h=h, c=c), h

    return _make_cell(
        "lstm",
        hidden_size,
        {"forget_bias": forget_bias, "peephole": peephole, "dtype": dtype.name},
        init,
        initial_carry,
        activations,
        update,
        dtype,
    )


def gru(hidden_size: int, *, reset_after: bool = False, dtype: Any = jnp.float32) -> Cell:
    r"""Gated recurrent unit (Cho et al. 2014; Chung et al. 2014).

    Gate order along the fused axis: reset ``r``, update ``z``, candidate
    ``n`` (PyTorch's order). With :math:`a = W_x x_t + b` split into three
    H-wide blocks and :math:`W_h = [U_r, U_z, U_n]`:

    .. math::
        r_t &= \sigma(a_r + U_r h_{t-1}) \\
        z_t &= \sigma(a_z + U_z h_{t-1}) \\
        n_t &= \tanh(a_n + U_n (r_t \odot h_{t-1}))
              &&\text{reset\_after=False (Cho et al. 2014, Chung et al. 2014)} \\
        n_t &= \tanh(a_n + r_t \odot (U_n h_{t-1} + b_{hn}))
              &&\text{reset\_after=True (cuDNN, PyTorch, Keras v2, Flax)} \\
        h_t &= (1 - z_t) \odot n_t + z_t \odot h_{t-1}, \qquad y_t = h_t

    ``z`` is the fraction of the old state kept (PyTorch's convention; Chung
    et al. write the same cell with ``z`` and ``1 - z`` swapped). The
    reset-after form has an extra recurrent bias ``b_hn f32[H]`` because the
    reset gate multiplies it; the recurrent biases of ``r`` and ``z`` fold into
    ``b``. The reset-before form needs two dependent products per step
    (``h @ [U_r U_z]``, then ``(r*h) @ U_n``); the reset-after form one.

    The carry is ``h f32[H]``; ``gates`` returns
    ``{"reset", "update", "candidate"}``.

    Args:
      hidden_size: H.
      reset_after: where the reset gate acts (see above).
      dtype: dtype of the matrix products (float32 or bfloat16; float64 for checks).
    """
    _check_size("hidden_size", hidden_size)
    dtype = _check_dtype(dtype)
    reset_after = bool(reset_after)
    H = hidden_size

    def init(key, input_size):
        params = _init_fused(key, input_size, hidden_size, 3)
        if reset_after:
            params["b_hn"] = jnp.zeros((hidden_size,), jnp.float32)
        return params

    def activations(params, h, px):
        a_r, a_z, a_n = _split(px, 3)
        w_h = params["w_h"]
        if reset_after:
            h_r, h_z, h_n = _split(_dot(h, w_h, dtype), 3)
            r = jax.nn.sigmoid(a_r + h_r)
            z = jax.nn.sigmoid(a_z + h_z)
            n = jnp.tanh(a_n + r * (h_n + params["b_hn"]))
        else:
            h_r, h_z = _split(_dot(h, w_h[:, : 2 * H], dtype), 2)
            r = jax.nn.sigmoid(a_r + h_r)
            z = jax.nn.sigmoid(a_z + h_z)
            n = jnp.tanh(a_n + _dot(r * h, w_h[:, 2 * H :], dtype))
        return {"reset": r, "update": z, "candidate": n}

    def update(params, h, gates):
        z = gates["update"]
        h = (1.0 - z) * gates["candidate"] + z * h
        return h, h

    return _make_cell(
        "gru",
        hidden_size,
        {"reset_after": reset_after, "dtype": dtype.name},
        init,
        _zeros_carry(hidden_size),
        activations,
        update,
        dtype,
    )


_REGISTRY: dict[str, Callable[..., Cell]] = {"tanh": tanh_rnn, "lstm": lstm, "gru": gru}


def get_cell(name: str, hidden_size: int, **options: Any) -> Cell:
    """Builds a cell by name: ``get_cell("gru", 128, reset_after=True)``.

    Args:
      name: one of ``"tanh"``, ``"lstm"``, ``"gru"``.
      hidden_size: H.
      **options: keyword options of that cell's constructor.

    Raises:
      ValueError: the name is unknown (the message lists the known names) or an
        option is not one that cell takes.
    """
    if name not in _REGISTRY:
        raise ValueError(f"unknown cell {name!r}; known cells: {', '.join(sorted(_REGISTRY))}")
    constructor = _REGISTRY[name]
    try:
        return constructor(hidden_size, **options)
    except TypeError as e:
        raise ValueError(f"bad options for cell {name!r}: {options}: {e}") from None


def cell_names() -> tuple[str, ...]:
    """The names :func:`get_cell` knows."""
    return tuple(sorted(_REGISTRY))
