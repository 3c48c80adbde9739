"""Weight import from PyTorch, Keras and Flax layouts into rnnlab's params.

Each function returns a params dict for a given rnnlab :class:`~rnnlab.Cell`
(float32 ``jnp`` arrays) such that ``rnnlab.unroll(cell, params, xs)``
reproduces the source layer. The cell must be of the matching kind and form:

==============================  ==========================================
source                          target cell
==============================  ==========================================
PyTorch ``nn.LSTM``             ``lstm(H, forget_bias=0.0)``
PyTorch ``nn.GRU``              ``gru(H, reset_after=True)``
PyTorch ``nn.RNN`` (tanh)       ``tanh_rnn(H)``
Keras ``LSTM``                  ``lstm(H, forget_bias=0.0)``
Keras ``GRU(reset_after=True)``  ``gru(H, reset_after=True)``
Keras ``GRU(reset_after=False)`` ``gru(H, reset_after=False)``
Keras ``SimpleRNN`` (tanh)      ``tanh_rnn(H)``
Flax ``LSTMCell``,              ``lstm(H, forget_bias=0.0)``
``OptimizedLSTMCell``
Flax ``GRUCell``                ``gru(H, reset_after=True)``
Flax ``SimpleCell`` (tanh)      ``tanh_rnn(H)``
==============================  ==========================================

None of these sources has rnnlab's constant ``forget_bias``, so an LSTM
target built with any other ``forget_bias`` than 0.0 is refused, as is a
peephole LSTM. Nothing here imports torch, TensorFlow or Flax: the inputs
are mappings of array-likes (torch tensors and TF variables convert through
``np.asarray``). Whether a PyTorch ``nn.RNN`` used ``nonlinearity="relu"``
cannot be seen from its weights: only tanh ones are reproduced.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

import jax.numpy as jnp
import numpy as np

from rnnlab.cells import Cell
from rnnlab.types import Params

# rnnlab's gate order (== PyTorch's) as positions in each source's order.
_KERAS_ORDER = {"lstm": (0, 1, 2, 3), "gru": (1, 0, 2), "tanh": (0,)}  # Keras GRU: z, r, h
_FLAX_GATES = {"lstm": ("i", "f", "g", "o"), "gru": ("r", "z", "n"), "tanh": None}


def _array(value: Any, what: str) -> np.ndarray:
    """``value`` as a float64 NumPy array (torch tensors are detached first)."""
    if hasattr(value, "detach"):
        value = value.detach().cpu()
    try:
        return np.asarray(value, np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{what} is not a numeric array: {e}") from None


def _expect_shape(array: np.ndarray, shape: Sequence[Optional[int]], what: str) -> np.ndarray:
    """Checks ``array.shape`` against ``shape`` (``None`` matches any size)."""
    ok = array.ndim == len(shape) and all(s is None or s == a for s, a in zip(shape, array.shape))
    if not ok:
        expected = tuple("D" if s is None else s for s in shape)
        raise ValueError(f"{what} must have shape {expected}, got {array.shape}")
    return array


def _check_target(cell: Cell, source: str, reset_after: Optional[bool] = None) -> None:
    """Refuses target cells that cannot reproduce a layer from ``source``."""
    if not isinstance(cell, Cell):
        raise ValueError(f"cell must be an rnnlab Cell (e.g. rnnlab.lstm(H)), got {type(cell)}")
    standard = {"tanh": ("candidate",), "lstm": ("input", "forget", "candidate", "output"),
                "gru": ("reset", "update", "candidate")}  # the layouts the sources share
    if standard.get(cell.kind) != cell.definition.blocks or (
            cell.kind == "lstm" and cell.definition.cudnn != "lstm" and not cell.option("peephole")):
        raise ValueError(
            f"{source} has layers for the plain tanh RNN, LSTM and GRU only; this {cell.kind!r} cell "
            f"(blocks {cell.definition.blocks}, options {dict(cell.options)}) has no {source} equivalent"
        )
    if cell.kind == "lstm":
        if cell.option("forget_bias") != 0.0:
            raise ValueError(
                f"{source} LSTMs have no constant forget bias: build the target cell with "
                f"forget_bias=0.0 (got forget_bias={cell.option('forget_bias')})"
            )
        if cell.option("peephole"):
            raise ValueError(f"{source} LSTMs have no peepholes: build the target with peephole=False")
    if cell.kind == "gru" and reset_after is not None and cell.option("reset_after") != reset_after:
        form = "reset-after form (reset applied to W_hn h + b_hn)" if reset_after else "reset-before form"
        raise ValueError(
            f"a {source} GRU is the {form}: build the target cell with "
            f"rnnlab.gru(H, reset_after={reset_after})"
        )


def _params(cell: Cell, w_x: np.ndarray, w_h: np.ndarray, b: np.ndarray, b_hn=None) -> Params:
    """Assembles rnnlab params (float32 jnp arrays) from fused float64 blocks."""
    params = {"w_x": w_x, "w_h": w_h, "b": b}
    if b_hn is not None:
        params["b_hn"] = b_hn
    return {k: jnp.asarray(v, jnp.float32) for k, v in params.items()}


def _reorder(w: np.ndarray, order: Sequence[int]) -> np.ndarray:
    """Permutes the H-wide gate blocks of the last axis: block k <- block order[k]."""
    blocks = np.split(w, len(order), axis=-1)
    return np.concatenate([blocks[i] for i in order], axis=-1)


def _gru_biases(cell: Cell, b_x: np.ndarray, b_h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reset-after GRU: input bias + recurrent r, z biases -> ``b``; recurrent n bias -> ``b_hn``."""
    H = cell.hidden_size
    b = b_x + np.concatenate([b_h[: 2 * H], np.zeros(H)])
    return b, b_h[2 * H :]


def from_torch(state_dict: Mapping[str, Any], cell: Cell, layer: int = 0, reverse: bool = False) -> Params:
    """Params for ``cell`` from a PyTorch ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` state dict.

    Reads ``weight_ih_l{layer}{suffix}`` ``[G*H, D]``, ``weight_hh_l{layer}{suffix}``
    ``[G*H, H]`` and, when present, ``bias_ih_l{layer}{suffix}`` and
    ``bias_hh_l{layer}{suffix}`` ``[G*H]`` (``suffix`` is ``_reverse`` for the
    backward direction of a bidirectional layer). Gate orders already agree
    (LSTM i, f, g, o; GRU r, z, n). The two biases are summed, except the GRU's
    recurrent candidate bias, which becomes ``b_hn``.

    Args:
      state_dict: ``module.state_dict()`` or any mapping of those names to
        arrays or tensors.
      cell: the target: ``lstm(H, forget_bias=0.0)``, ``gru(H,
        reset_after=True)`` or ``tanh_rnn(H)``.
      layer: which layer of a multi-layer module.
      reverse: the backward direction of a bidirectional module.

    Returns:
      ``{"w_x": f32[D, G*H], "w_h": f32[H, G*H], "b": f32[G*H]}`` (+ ``b_hn``).

    Raises:
      ValueError: the cell cannot reproduce the layer, a name is missing, or a
        shape does not fit the cell.
    """
    _check_target(cell, "PyTorch", reset_after=True)
    suffix = f"_l{layer}" + ("_reverse" if reverse else "")
    if f"weight_hr{suffix}" in state_dict:
        raise ValueError("LSTMs with proj_size > 0 (weight_hr_*) have no rnnlab equivalent")
    names = {k: f"{k}{suffix}" for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
    for key in ("weight_ih", "weight_hh"):
        if names[key] not in state_dict:
            raise ValueError(
                f"state_dict has no {names[key]!r}; it has {sorted(state_dict)}"
            )
    width = cell.num_gates * cell.hidden_size
    what = f"PyTorch {cell.kind} {{}} (G*H={width} rows for this {cell.kind} cell)"
    w_ih = _expect_shape(_array(state_dict[names["weight_ih"]], names["weight_ih"]), (width, None),
                         what.format(names["weight_ih"]))
    w_hh = _expect_shape(_array(state_dict[names["weight_hh"]], names["weight_hh"]),
                         (width, cell.hidden_size), what.format(names["weight_hh"]))
    present = [key for key in ("bias_ih", "bias_hh") if names[key] in state_dict]
    if len(present) == 1:
        missing = names["bias_hh" if present == ["bias_ih"] else "bias_ih"]
        raise ValueError(
            f"state_dict has {names[present[0]]!r} but no {missing!r}: both biases or neither "
            "(a bias=False layer) are needed"
        )
    biases = []
    for key in ("bias_ih", "bias_hh"):
        value = state_dict.get(names[key])
        value = np.zeros(width) if value is None else _array(value, names[key])
        biases.append(_expect_shape(value, (width,), what.format(names[key])))
    b_ih, b_hh = biases
    if cell.kind == "gru":
        return _params(cell, w_ih.T, w_hh.T, *_gru_biases(cell, b_ih, b_hh))
    return _params(cell, w_ih.T, w_hh.T, b_ih + b_hh)


def from_keras(kernel: Any, recurrent_kernel: Any, bias: Any, cell: Cell) -> Params:
    """Params for ``cell`` from a Keras ``LSTM`` / ``GRU`` / ``SimpleRNN`` layer's weights.

    Keras stores ``kernel [D, G*H]`` and ``recurrent_kernel [H, G*H]`` (already
    rnnlab's orientation) with gates in the order LSTM i, f, c, o (same as
    rnnlab) and GRU z, r, h (reordered here to r, z, n). The GRU bias is
    ``[2, 3H]`` (input row, recurrent row) when the layer has
    ``reset_after=True`` and ``[3H]`` when it has ``reset_after=False``.

    Args:
      kernel: ``[D, G*H]``.
      recurrent_kernel: ``[H, G*H]``.
      bias: ``[G*H]``, ``[2, 3H]`` (GRU reset_after=True) or ``None``
        (``use_bias=False``).
      cell: the target: ``lstm(H, forget_bias=0.0)``, ``gru(H, reset_after=...)``
        matching the Keras layer, or ``tanh_rnn(H)``.

    Returns:
      rnnlab params (float32).

    Raises:
      ValueError: the cell cannot reproduce the layer or a shape does not fit.
    """
    _check_target(cell, "Keras")
    H, width = cell.hidden_size, cell.num_gates * cell.hidden_size
    kernel = _expect_shape(_array(kernel, "kernel"), (None, width), f"Keras {cell.kind} kernel")
    recurrent_kernel = _expect_shape(
        _array(recurrent_kernel, "recurrent_kernel"), (H, width), f"Keras {cell.kind} recurrent_kernel"
    )
    order = _KERAS_ORDER[cell.kind]
    w_x, w_h = _reorder(kernel, order), _reorder(recurrent_kernel, order)
    two_rows = cell.kind == "gru" and cell.option("reset_after")
    if bias is None:
        bias = np.zeros((2, width) if two_rows else (width,))
    bias = _array(bias, "bias")
    if cell.kind == "gru" and bias.ndim != (2 if two_rows else 1):
        raise ValueError(
            f"a Keras GRU bias of shape {bias.shape} comes from a layer with "
            f"reset_after={bias.ndim == 2}: build the target cell with "
            f"rnnlab.gru(H, reset_after={bias.ndim == 2}) (got reset_after={bool(two_rows)})"
        )
    if two_rows:
        bias = _reorder(_expect_shape(bias, (2, width), "Keras GRU bias (reset_after=True)"), order)
        return _params(cell, w_x, w_h, *_gru_biases(cell, bias[0], bias[1]))
    bias = _expect_shape(bias, (width,), f"Keras {cell.kind} bias")
    return _params(cell, w_x, w_h, _reorder(bias, order))


def _flax_dense(params: Mapping[str, Any], name: str, shape, bias: bool) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """Kernel (and bias) of the Flax ``Dense`` submodule ``name``."""
    if name not in params or "kernel" not in params[name]:
        raise ValueError(f"Flax params have no {name!r}/'kernel'; they have {sorted(params)}")
    kernel = _expect_shape(_array(params[name]["kernel"], name), shape, f"Flax {name}/kernel")
    if not bias:
        return kernel, None
    value = params[name].get("bias")
    value = np.zeros(shape[1]) if value is None else _array(value, name)
    return kernel, _expect_shape(value, (shape[1],), f"Flax {name}/bias")


def from_flax(params: Mapping[str, Any], cell: Cell) -> Params:
    """Params for ``cell`` from a Flax Linen ``LSTMCell``, ``OptimizedLSTMCell``, ``GRUCell`` or ``SimpleCell``.

    Accepts the cell's params tree (``variables["params"]``, or the subtree of
    one cell inside ``nn.RNN``: ``variables["params"]["cell"]``). Flax keeps one
    ``Dense`` per gate: ``i{gate}`` on the input (no bias for LSTM) and
    ``h{gate}`` on the carry; LSTM gates ``i, f, g, o``; GRU ``r, z, n``
    (``ir, iz, in`` with bias, ``hr, hz`` without, ``hn`` with bias: the
    reset-after form); SimpleCell ``i`` (with bias) and ``h``.

    Raises:
      ValueError: the cell cannot reproduce the layer, a name is missing, or a
        shape does not fit.
    """
    if isinstance(params, Mapping) and set(params) == {"params"}:
        params = params["params"]
    if not isinstance(params, Mapping):
        raise ValueError(f"params must be a Flax params tree (a mapping), got {type(params)}")
    _check_target(cell, "Flax", reset_after=True)
    H = cell.hidden_size
    gates = _FLAX_GATES[cell.kind]
    if gates is None:
        k_x, b_x = _flax_dense(params, "i", (None, H), bias=True)
        k_h, b_h = _flax_dense(params, "h", (H, H), bias="bias" in params.get("h", {}))
        return _params(cell, k_x, k_h, b_x if b_h is None else b_x + b_h)
    if "i" + gates[0] not in params:
        raise ValueError(
            f"these are not the params of a Flax {cell.kind} cell: expected keys "
            f"{sorted('i' + g for g in gates) + sorted('h' + g for g in gates)}, got {sorted(params)}"
        )
    input_size = _array(params["i" + gates[0]]["kernel"], "kernel").shape[0]
    x_bias = cell.kind == "gru"
    h_bias = {g: cell.kind == "lstm" or g == "n" for g in gates}
    xs = [_flax_dense(params, "i" + g, (input_size, H), bias=x_bias) for g in gates]
    hs = [_flax_dense(params, "h" + g, (H, H), bias=h_bias[g]) for g in gates]
    w_x = np.concatenate([k for k, _ in xs], axis=1)
    w_h = np.concatenate([k for k, _ in hs], axis=1)
    if cell.kind == "lstm":
        return _params(cell, w_x, w_h, np.concatenate([b for _, b in hs]))
    b_h = np.concatenate([np.zeros(2 * H), hs[2][1]])
    return _params(cell, w_x, w_h, *_gru_biases(cell, np.concatenate([b for _, b in xs]), b_h))
