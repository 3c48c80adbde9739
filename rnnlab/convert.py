"""Weights both ways between rnnlab and PyTorch, Keras and Flax layouts.

``from_*`` returns a params dict for a given rnnlab :class:`~rnnlab.Cell`
(float32 ``jnp`` arrays) such that ``rnnlab.unroll(cell, params, xs)``
reproduces the source layer; ``to_*`` writes rnnlab params in the peer's
layout, and ``from_*(to_*(params))`` gives ``params`` back. The cell must be
of the matching kind and form:

==============================  ==========================================
peer                            rnnlab cell
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
Flax ``MGUCell(reset_gate=r)``  ``mgu(H, reset_gate=r)``
Flax ``SimpleCell`` (tanh)      ``tanh_rnn(H)``
==============================  ==========================================

None of the peers has rnnlab's constant ``forget_bias``: an import target
with any other ``forget_bias`` than 0.0 is refused, and an export adds the
constant to the stored forget-gate bias (exact). Peepholes, gate variants and
the other cells have no peer layer and are refused both ways.

What weights alone cannot show: a layer's activation functions and a Flax
``SimpleCell``'s ``residual`` flag. Each ``from_*`` / ``to_*`` therefore takes
the peer's layer object or its settings as an option (``module=`` for PyTorch
and Flax, ``config=`` for Keras), checks every setting that changes the
computation, and refuses what rnnlab cannot compute with a message naming it.
Without it, the peer's defaults are assumed (tanh and sigmoid, no residual;
a PyTorch ``nn.RNN`` with tanh). Nothing here imports TensorFlow or Flax, and
torch only inside :func:`to_torch`: inputs are mappings of array-likes (torch
tensors and TF variables convert through ``np.asarray``).
"""

from __future__ import annotations

from typing import Any, Mapping, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from rnnlab.cells import Cell
from rnnlab.types import Params

# The layouts the peers share, as rnnlab blocks; MGU is Flax's only.
_LAYOUTS = {"tanh": ("candidate",), "lstm": ("input", "forget", "candidate", "output"),
            "gru": ("reset", "update", "candidate"), "mgu": ("forget", "candidate")}
_KERAS_ORDER = {"lstm": (0, 1, 2, 3), "gru": (1, 0, 2), "tanh": (0,)}  # rnnlab block k <- Keras block
_FLAX_GATES = {"lstm": "ifgo", "gru": "rzn", "mgu": "fn"}
_FLAX_CLASSES = {"LSTMCell": "lstm", "OptimizedLSTMCell": "lstm", "GRUCell": "gru", "MGUCell": "mgu",
                 "SimpleCell": "tanh"}
_TORCH_MODES = {"LSTM": "lstm", "GRU": "gru", "RNN_TANH": "tanh"}


class _Weights(NamedTuple):
    """A layer in the form every peer's layout is written from (float64 NumPy).

    ``w_x [D, G*H]``, ``w_h [H, G*H]``, ``b [G*H]`` (the forget bias of an
    exported LSTM folded in) and ``b_hn [H]`` (the reset-after GRU's and the
    MGU's recurrent candidate bias; ``None`` for the others).
    """

    w_x: np.ndarray
    w_h: np.ndarray
    b: np.ndarray
    b_hn: Optional[np.ndarray] = None


# ---------------------------------------------------------------------------
# Shared checks


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


def _has_b_hn(cell: Cell) -> bool:
    """Whether ``cell``'s params hold ``b_hn [H]`` (reset-after GRU, MGU with its reset gate)."""
    return bool(cell.option("reset_after")) if cell.kind == "gru" else bool(cell.option("reset_gate"))


def _check_cell(cell: Cell, peer: str, kinds: Sequence[str], *, target: bool,
                reset_after: Optional[bool] = None) -> None:
    """Refuses cells that no layer of ``peer`` computes (``target``: weights are written into the cell).

    Raises:
      ValueError: not a Cell; a kind or gate variant without a ``peer`` layer; peepholes; a constant
        forget bias on an import target; a GRU whose ``reset_after`` differs from the peer's.
    """
    if not isinstance(cell, Cell):
        raise ValueError(f"cell must be an rnnlab Cell (e.g. rnnlab.lstm(H)), got {type(cell)}")
    plain_lstm = cell.kind != "lstm" or cell.definition.cudnn == "lstm" or cell.option("peephole")
    if cell.kind not in kinds or _LAYOUTS[cell.kind] != cell.definition.blocks or not plain_lstm:
        raise ValueError(
            f"{peer} has layers for the {', '.join(kinds)} cells only; this {cell.kind!r} cell "
            f"(blocks {cell.definition.blocks}, options {dict(cell.options)}) has no {peer} equivalent"
        )
    if cell.kind == "lstm":
        if target and cell.option("forget_bias") != 0.0:
            raise ValueError(
                f"{peer} LSTMs have no constant forget bias: build the target cell with "
                f"forget_bias=0.0 (got forget_bias={cell.option('forget_bias')})"
            )
        if cell.option("peephole"):
            raise ValueError(f"{peer} LSTMs have no peepholes: build the cell with peephole=False")
    if cell.kind == "gru" and reset_after is not None and cell.option("reset_after") != reset_after:
        form = "reset-after form (reset applied to W_hn h + b_hn)" if reset_after else "reset-before form"
        raise ValueError(
            f"a {peer} GRU is the {form}: build the {'target ' if target else ''}cell with "
            f"rnnlab.gru(H, reset_after={reset_after})"
        )


def _check_function(fn: Any, expected: Any, what: str) -> None:
    """Refuses a peer's activation ``fn`` other than ``expected`` (a function, or a Keras name such as ``"tanh"``)."""
    if fn is expected or (isinstance(expected, str) and fn == expected):
        return
    name = expected if isinstance(expected, str) else expected.__name__
    shown = fn if isinstance(fn, str) else getattr(fn, "__name__", repr(fn))
    raise ValueError(f"{what} is {shown!r}; rnnlab's cells use {name} there, so the layer cannot be converted")


def _params(cell: Cell, weights: _Weights) -> Params:
    """rnnlab params (float32 jnp arrays) of ``weights``."""
    params = {"w_x": weights.w_x, "w_h": weights.w_h, "b": weights.b}
    if _has_b_hn(cell):
        params["b_hn"] = weights.b_hn
    return {k: jnp.asarray(v, jnp.float32) for k, v in params.items()}


def _weights(cell: Cell, params: Params, where: str = "params") -> _Weights:
    """``params`` of ``cell`` (checked against its shapes) with an LSTM's constant forget bias folded into ``b``.

    Raises:
      ValueError: a missing entry or a shape that does not fit the cell.
    """
    if not isinstance(params, Mapping) or "w_x" not in params:
        raise ValueError(f"{where} must be an rnnlab params dict with 'w_x', 'w_h', 'b', got "
                         f"{sorted(params) if isinstance(params, Mapping) else type(params)}")
    H, width = cell.hidden_size, cell.num_gates * cell.hidden_size
    names = ("w_x", "w_h", "b") + (("b_hn",) if _has_b_hn(cell) else ())
    missing = [name for name in names if name not in params]
    if missing:
        raise ValueError(f"{where} of this {cell.kind} cell have no {missing}; they have {sorted(params)}")
    shapes = {"w_x": (None, width), "w_h": (H, width), "b": (width,), "b_hn": (H,)}
    arrays = {name: _expect_shape(_array(params[name], f"{name!r} in {where}"), shapes[name],
                                  f"{name!r} in {where} of this {cell.kind} cell") for name in names}
    b = arrays["b"]
    if cell.kind == "lstm":
        forget = cell.definition.blocks.index("forget")
        b = b + np.repeat(np.eye(cell.num_gates)[forget], H) * cell.option("forget_bias")
    return _Weights(arrays["w_x"], arrays["w_h"], b, arrays.get("b_hn"))


def _reorder(w: np.ndarray, order: Sequence[int]) -> np.ndarray:
    """Permutes the H-wide gate blocks of the last axis: block k <- block order[k]."""
    blocks = np.split(w, len(order), axis=-1)
    return np.concatenate([blocks[i] for i in order], axis=-1)


def _inverse(order: Sequence[int]) -> tuple[int, ...]:
    """The permutation that undoes ``order``."""
    return tuple(int(i) for i in np.argsort(order))


def _split_candidate_bias(cell: Cell, b_x: np.ndarray, b_h: np.ndarray) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """Two bias vectors ``[G*H]`` (input, recurrent) as rnnlab's ``(b, b_hn)``.

    The recurrent bias of the candidate block sits inside the reset in the
    reset-after GRU (it becomes ``b_hn``); every other bias is summed into ``b``.
    """
    if not _has_b_hn(cell):
        return b_x + b_h, None
    H = cell.hidden_size
    return b_x + np.concatenate([b_h[:-H], np.zeros(H)]), b_h[-H:]


def _joined_candidate_bias(cell: Cell, weights: _Weights) -> np.ndarray:
    """The recurrent bias row ``[G*H]`` that :func:`_split_candidate_bias` reads ``b_hn`` from."""
    width = cell.num_gates * cell.hidden_size
    if weights.b_hn is None:
        return np.zeros(width)
    return np.concatenate([np.zeros(width - cell.hidden_size), weights.b_hn])


# ---------------------------------------------------------------------------
# PyTorch


def _torch_state(source: Any, cell: Cell) -> Mapping[str, Any]:
    """The state dict of ``source`` (an ``nn.LSTM``/``nn.GRU``/``nn.RNN`` module, or already a mapping).

    Raises:
      ValueError: a module whose mode, nonlinearity or ``proj_size`` rnnlab cannot compute, or of
        another kind than ``cell``.
    """
    if isinstance(source, Mapping):
        return source
    mode = getattr(source, "mode", None)
    if mode is None or not hasattr(source, "state_dict"):
        raise ValueError(f"expected a PyTorch state_dict or an nn.LSTM / nn.GRU / nn.RNN module, got {type(source)}")
    if mode == "RNN_RELU":
        raise ValueError("a PyTorch nn.RNN with nonlinearity='relu' cannot be converted: rnnlab's tanh_rnn uses tanh")
    if getattr(source, "proj_size", 0):
        raise ValueError(f"LSTMs with proj_size > 0 (here {source.proj_size}) have no rnnlab equivalent")
    if _TORCH_MODES.get(mode) != cell.kind:
        raise ValueError(f"a PyTorch {type(source).__name__} (mode {mode!r}) converts to a "
                         f"{_TORCH_MODES.get(mode)!r} cell, not to this {cell.kind!r} cell")
    return source.state_dict()


def _torch_layer_count(state_dict: Mapping[str, Any]) -> tuple[int, bool]:
    """``(num_layers, bidirectional)`` of a state dict, from its ``weight_ih_l{k}[_reverse]`` names."""
    layers = sorted({int(k[len("weight_ih_l"):].split("_")[0]) for k in state_dict if k.startswith("weight_ih_l")})
    if layers != list(range(len(layers))) or not layers:
        raise ValueError(f"state_dict has no layers weight_ih_l0, weight_ih_l1, ... in order; it has {sorted(state_dict)}")
    return len(layers), "weight_ih_l0_reverse" in state_dict


def from_torch(state_dict: Any, cell: Cell, layer: Optional[int] = 0, reverse: bool = False) -> Params:
    """Params for ``cell`` from a PyTorch ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` state dict or module.

    Reads ``weight_ih_l{layer}{suffix}`` ``[G*H, D]``, ``weight_hh_l{layer}{suffix}``
    ``[G*H, H]`` and, when present, ``bias_ih_l{layer}{suffix}`` and
    ``bias_hh_l{layer}{suffix}`` ``[G*H]`` (``suffix`` is ``_reverse`` for the
    backward direction of a bidirectional layer). Gate orders already agree
    (LSTM i, f, g, o; GRU r, z, n). The two biases are summed, except the GRU's
    recurrent candidate bias, which becomes ``b_hn``. A ``bias=False`` layer
    has no biases: ``b`` is zero. ``batch_first`` does not change the weights.

    Args:
      state_dict: ``module.state_dict()`` or any mapping of those names to
        arrays or tensors; or the module itself, whose ``mode``,
        ``nonlinearity`` and ``proj_size`` are then checked (a state dict
        cannot show an ``nn.RNN``'s nonlinearity: tanh is assumed).
      cell: the target: ``lstm(H, forget_bias=0.0)``, ``gru(H,
        reset_after=True)`` or ``tanh_rnn(H)``.
      layer: which layer of a multi-layer module; ``None``: every layer, as the
        params of :func:`rnnlab.stack` (``{"layer_0": ..., ...}``, each
        ``{"fwd": ..., "bwd": ...}`` for a bidirectional module).
      reverse: the backward direction of a bidirectional module (one layer only).

    Returns:
      ``{"w_x": f32[D, G*H], "w_h": f32[H, G*H], "b": f32[G*H]}`` (+ ``b_hn f32[H]``),
      or the stack's dict of them.

    Raises:
      ValueError: the cell cannot reproduce the layer (also: ``proj_size > 0``,
        ``nonlinearity="relu"``), a name is missing, one bias of a pair is
        missing, or a shape does not fit the cell.
    """
    _check_cell(cell, "PyTorch", ("lstm", "gru", "tanh"), target=True, reset_after=True)
    state_dict = _torch_state(state_dict, cell)
    if layer is None:
        num_layers, both = _torch_layer_count(state_dict)
        read = lambda k, rev: from_torch(state_dict, cell, k, rev)  # noqa: E731
        return {f"layer_{k}": {"fwd": read(k, False), "bwd": read(k, True)} if both else read(k, False)
                for k in range(num_layers)}
    suffix = f"_l{layer}" + ("_reverse" if reverse else "")
    if f"weight_hr{suffix}" in state_dict:
        raise ValueError("LSTMs with proj_size > 0 (weight_hr_*) have no rnnlab equivalent")
    names = {k: f"{k}{suffix}" for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
    for key in ("weight_ih", "weight_hh"):
        if names[key] not in state_dict:
            raise ValueError(f"state_dict has no {names[key]!r}; it has {sorted(state_dict)}")
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
    b_ih, b_hh = (_expect_shape(_array(state_dict.get(names[key], np.zeros(width)), names[key]), (width,),
                                what.format(names[key])) for key in ("bias_ih", "bias_hh"))
    return _params(cell, _Weights(w_ih.T, w_hh.T, *_split_candidate_bias(cell, b_ih, b_hh)))


def _stack_entries(params: Mapping[str, Any]) -> list[tuple[int, bool, Params]]:
    """``[(layer, reverse, params)]`` of one cell's params or of :func:`rnnlab.stack`'s params.

    Raises:
      ValueError: layer names that are not ``layer_0 .. layer_{L-1}``, or some layers
        bidirectional and others not.
    """
    if not isinstance(params, Mapping):
        raise ValueError(f"params must be a dict of arrays or of layers, got {type(params)}")
    if "w_x" in params:
        return [(0, False, params)]
    if sorted(params) != sorted(f"layer_{k}" for k in range(len(params))) or not params:
        raise ValueError(f"stack params must be named layer_0 .. layer_{{L-1}}, got {sorted(params)}")
    layers = [params[f"layer_{k}"] for k in range(len(params))]
    both = {isinstance(p, Mapping) and set(p) == {"fwd", "bwd"} for p in layers}
    if len(both) != 1:
        raise ValueError("every layer must be bidirectional ({'fwd', 'bwd'}) or none: PyTorch has one setting")
    if both.pop():
        return [(k, rev, p["bwd" if rev else "fwd"]) for k, p in enumerate(layers) for rev in (False, True)]
    return [(k, False, p) for k, p in enumerate(layers)]


def to_torch(params: Mapping[str, Any], cell: Cell, *, bias: bool = True) -> dict[str, Any]:
    """A state dict for ``torch.nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` (tanh) from rnnlab params.

    ``module.load_state_dict(to_torch(params, cell))`` makes a module built
    with the same ``input_size``, ``hidden_size``, ``num_layers``,
    ``bidirectional`` and ``bias`` compute what ``rnnlab.unroll`` /
    ``rnnlab.stack`` computes (any ``batch_first``). Writes ``weight_ih = w_x.T``,
    ``weight_hh = w_h.T``, ``bias_ih = b`` (an LSTM's ``forget_bias`` added to
    its forget block) and ``bias_hh`` zero but for the GRU's ``b_hn`` in its
    candidate block; :func:`from_torch` reads them back to ``params``.

    Args:
      params: one cell's params (layer 0), or :func:`rnnlab.stack`'s
        ``{"layer_0": ..., ...}`` (each ``{"fwd": ..., "bwd": ...}`` when bidirectional).
      cell: ``lstm(H)`` (any ``forget_bias``, no peepholes), ``gru(H, reset_after=True)``
        or ``tanh_rnn(H)``.
      bias: whether the module has biases (``bias=False``: only when every bias is zero).

    Returns:
      ``{name: torch.Tensor float32}`` with PyTorch's names (``weight_ih_l0``, ...,
      ``_reverse`` for backward directions).

    Raises:
      ValueError: the cell has no PyTorch layer, the params do not fit it, or
        ``bias=False`` with a non-zero bias (naming the layer).
      ImportError: torch is not installed.
    """
    _check_cell(cell, "PyTorch", ("lstm", "gru", "tanh"), target=False, reset_after=True)
    import torch  # only here: the rest of rnnlab never needs it

    state = {}
    for layer, reverse, layer_params in _stack_entries(params):
        suffix = f"_l{layer}" + ("_reverse" if reverse else "")
        weights = _weights(cell, layer_params, f"params of layer {layer}{' (bwd)' if reverse else ''}")
        biases = {"bias_ih": weights.b, "bias_hh": _joined_candidate_bias(cell, weights)}
        if not bias and any(b.any() for b in biases.values()):
            raise ValueError(f"bias=False cannot hold the non-zero biases of layer {layer}"
                             f"{' (bwd)' if reverse else ''} (b, b_hn or the LSTM's forget_bias)")
        arrays = {"weight_ih": weights.w_x.T, "weight_hh": weights.w_h.T, **(biases if bias else {})}
        state.update({name + suffix: torch.from_numpy(np.ascontiguousarray(value, np.float32))
                      for name, value in arrays.items()})
    return state


# ---------------------------------------------------------------------------
# Keras


_KERAS_GATED = ("lstm", "gru")


def _keras_config(config: Any, cell: Cell, has_bias: bool) -> None:
    """Refuses a Keras layer config (``layer.get_config()`` or the layer) that ``cell`` cannot compute.

    Checks ``units``, ``activation`` (tanh), ``recurrent_activation`` (sigmoid),
    ``use_bias`` (against the bias given) and a GRU's ``reset_after``.
    ``unit_forget_bias`` only sets the initial bias, which the trained bias
    already holds; ``go_backwards``, ``return_sequences`` and the like do not
    change the weights.
    """
    if hasattr(config, "get_config"):
        config = config.get_config()
    if not isinstance(config, Mapping):
        raise ValueError(f"config must be a Keras layer or its get_config() dict, got {type(config)}")
    if config.get("units", cell.hidden_size) != cell.hidden_size:
        raise ValueError(f"the Keras layer has units={config['units']}, the cell H={cell.hidden_size}")
    _check_function(config.get("activation", "tanh"), "tanh", "the Keras layer's activation")
    if cell.kind in _KERAS_GATED:
        _check_function(config.get("recurrent_activation", "sigmoid"), "sigmoid",
                        "the Keras layer's recurrent_activation")
    if config.get("use_bias", True) != has_bias:
        raise ValueError(f"the Keras layer has use_bias={config.get('use_bias', True)} but "
                         f"{'a bias was' if has_bias else 'no bias was'} given")
    if cell.kind == "gru" and config.get("reset_after", True) != cell.option("reset_after"):
        after = config.get("reset_after", True)
        raise ValueError(f"the Keras GRU has reset_after={after}: build the target cell with "
                         f"rnnlab.gru(H, reset_after={after})")


def from_keras(kernel: Any, recurrent_kernel: Any, bias: Any, cell: Cell, config: Any = None) -> Params:
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
      config: optional, the layer or its ``get_config()``: its ``activation``
        (tanh), ``recurrent_activation`` (sigmoid), ``use_bias``, ``units`` and
        ``reset_after`` are checked. ``None``: Keras' defaults are assumed.

    Returns:
      rnnlab params (float32).

    Raises:
      ValueError: the cell cannot reproduce the layer, the config names
        something rnnlab lacks, or a shape does not fit.
    """
    _check_cell(cell, "Keras", ("lstm", "gru", "tanh"), target=True)
    if config is not None:
        _keras_config(config, cell, bias is not None)
    H, width = cell.hidden_size, cell.num_gates * cell.hidden_size
    kernel = _expect_shape(_array(kernel, "kernel"), (None, width), f"Keras {cell.kind} kernel")
    recurrent_kernel = _expect_shape(
        _array(recurrent_kernel, "recurrent_kernel"), (H, width), f"Keras {cell.kind} recurrent_kernel"
    )
    order = _KERAS_ORDER[cell.kind]
    w_x, w_h = _reorder(kernel, order), _reorder(recurrent_kernel, order)
    two_rows = _has_b_hn(cell) if cell.kind == "gru" else False
    bias = _array(np.zeros((2, width) if two_rows else (width,)) if bias is None else bias, "bias")
    if cell.kind == "gru" and bias.ndim != (2 if two_rows else 1):
        raise ValueError(
            f"a Keras GRU bias of shape {bias.shape} comes from a layer with "
            f"reset_after={bias.ndim == 2}: build the target cell with "
            f"rnnlab.gru(H, reset_after={bias.ndim == 2}) (got reset_after={bool(two_rows)})"
        )
    if two_rows:
        bias = _reorder(_expect_shape(bias, (2, width), "Keras GRU bias (reset_after=True)"), order)
        return _params(cell, _Weights(w_x, w_h, *_split_candidate_bias(cell, bias[0], bias[1])))
    bias = _expect_shape(bias, (width,), f"Keras {cell.kind} bias")
    return _params(cell, _Weights(w_x, w_h, _reorder(bias, order)))


def to_keras(params: Params, cell: Cell) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(kernel [D, G*H], recurrent_kernel [H, G*H], bias)`` for a Keras layer's ``set_weights``.

    The layer: ``LSTM(H)`` for ``lstm(H)`` (any ``forget_bias``: added to the
    forget block of ``bias``), ``GRU(H, reset_after=r)`` for ``gru(H,
    reset_after=r)`` (``bias [2, 3H]`` when ``r``, else ``[3H]``; gates z, r, h),
    ``SimpleRNN(H)`` for ``tanh_rnn(H)``; default activations, ``use_bias=True``.
    :func:`from_keras` reads them back to ``params``. float32 NumPy arrays.

    Raises:
      ValueError: the cell has no Keras layer or the params do not fit it.
    """
    _check_cell(cell, "Keras", ("lstm", "gru", "tanh"), target=False)
    weights = _weights(cell, params)
    order = _inverse(_KERAS_ORDER[cell.kind])
    bias = weights.b if weights.b_hn is None else np.stack([weights.b, _joined_candidate_bias(cell, weights)])
    return tuple(np.asarray(_reorder(w, order), np.float32) for w in (weights.w_x, weights.w_h, bias))


# ---------------------------------------------------------------------------
# Flax


def _flax_module(module: Any, cell: Cell) -> bool:
    """Checks a Flax Linen cell (or ``nn.RNN`` around one) against ``cell``; returns its ``residual`` flag.

    Raises:
      ValueError: a class other than LSTMCell, OptimizedLSTMCell, GRUCell,
        MGUCell or SimpleCell; another kind or size than ``cell``; an
        ``activation_fn`` other than tanh or a ``gate_fn`` other than sigmoid;
        an MGUCell whose ``reset_gate`` differs from the cell's.
    """
    if module is None:
        return False
    if type(module).__name__ == "RNN" and hasattr(module, "cell"):
        module = module.cell
    name = type(module).__name__
    if name not in _FLAX_CLASSES:
        raise ValueError(f"a Flax {name} has no rnnlab equivalent; known: {', '.join(sorted(_FLAX_CLASSES))}")
    if _FLAX_CLASSES[name] != cell.kind:
        raise ValueError(f"a Flax {name} converts to a {_FLAX_CLASSES[name]!r} cell, not to this {cell.kind!r} cell")
    if module.features != cell.hidden_size:
        raise ValueError(f"the Flax {name} has features={module.features}, the cell H={cell.hidden_size}")
    _check_function(module.activation_fn, jnp.tanh, f"the Flax {name}'s activation_fn")
    if hasattr(module, "gate_fn"):
        _check_function(module.gate_fn, jax.nn.sigmoid, f"the Flax {name}'s gate_fn")
    if name == "MGUCell" and module.reset_gate != cell.option("reset_gate"):
        raise ValueError(f"the Flax MGUCell has reset_gate={module.reset_gate}: build the cell with "
                         f"rnnlab.mgu(H, reset_gate={module.reset_gate})")
    return bool(getattr(module, "residual", False))


def _flax_layout(cell: Cell) -> dict[str, tuple[str, int, bool]]:
    """``{Dense name: (side "x" or "h", block index, has bias)}`` of the Flax cell ``cell`` converts."""
    if cell.kind == "tanh":
        return {"i": ("x", 0, True), "h": ("h", 0, False)}
    gates = _FLAX_GATES[cell.kind]
    x_bias = cell.kind != "lstm"
    layout = {"i" + g: ("x", k, x_bias) for k, g in enumerate(gates)}
    layout.update({"h" + g: ("h", k, cell.kind == "lstm" or (g == "n" and _has_b_hn(cell)))
                   for k, g in enumerate(gates)})
    return layout


def from_flax(params: Mapping[str, Any], cell: Cell, module: Any = None) -> Params:
    """Params for ``cell`` from a Flax Linen ``LSTMCell``, ``OptimizedLSTMCell``, ``GRUCell``, ``MGUCell`` or ``SimpleCell``.

    Accepts the cell's params tree (``variables["params"]``, or the subtree of
    one cell inside ``nn.RNN``: ``variables["params"]["cell"]``). Flax keeps one
    ``Dense`` per gate: ``i{gate}`` on the input (no bias for LSTM) and
    ``h{gate}`` on the carry; LSTM gates ``i, f, g, o``; GRU ``r, z, n``
    (``ir, iz, in`` with bias, ``hr, hz`` without, ``hn`` with bias: the
    reset-after form); MGU ``f, n`` (``if, in`` with bias, ``hf`` without,
    ``hn`` with bias when ``reset_gate``); SimpleCell ``i`` (with bias) and ``h``.
    Every bias Flax has must be there, and none it has not.

    Args:
      params: the params tree.
      cell: ``lstm(H, forget_bias=0.0)``, ``gru(H, reset_after=True)``,
        ``mgu(H, reset_gate=...)`` or ``tanh_rnn(H)``.
      module: optional, the Flax cell (or ``nn.RNN``) the params belong to.
        Params cannot show ``activation_fn``, ``gate_fn`` or SimpleCell's
        ``residual``; given the module, custom functions are refused and a
        residual SimpleCell (``h' = tanh(W_i x + b + W_h h + h)``) converts
        exactly (``w_h = W_h + I``). ``None``: tanh, sigmoid and
        ``residual=False`` are assumed.

    Returns:
      rnnlab params (float32).

    Raises:
      ValueError: the cell or module cannot reproduce the layer, a name or a
        bias is missing or extra, or a shape does not fit.
    """
    if isinstance(params, Mapping) and set(params) == {"params"}:
        params = params["params"]
    if not isinstance(params, Mapping):
        raise ValueError(f"params must be a Flax params tree (a mapping), got {type(params)}")
    _check_cell(cell, "Flax", ("lstm", "gru", "mgu", "tanh"), target=True, reset_after=True)
    residual = _flax_module(module, cell)
    layout = _flax_layout(cell)
    if sorted(params) != sorted(layout):
        raise ValueError(f"these are not the params of a Flax {cell.kind} cell: expected keys "
                         f"{sorted(n for n in layout if n[0] == 'i') + sorted(n for n in layout if n[0] == 'h')}, "
                         f"got {sorted(params)}")
    H, G = cell.hidden_size, cell.num_gates
    input_size = _array(params[next(iter(layout))]["kernel"], "kernel").shape[0]
    kernels = {"x": [None] * G, "h": [None] * G}
    biases = {"x": [np.zeros(H)] * G, "h": [np.zeros(H)] * G}
    for name, (side, k, has_bias) in layout.items():
        dense = params[name]
        if ("bias" in dense) != has_bias and cell.kind == "mgu" and name == "hn":
            raise ValueError(f"Flax hn {'has a' if 'bias' in dense else 'has no'} bias: these are the params of "
                             f"an MGUCell with reset_gate={'bias' in dense}; build the cell with "
                             f"rnnlab.mgu(H, reset_gate={'bias' in dense})")
        if ("bias" in dense) != has_bias:
            raise ValueError(f"Flax {name} {'has no' if has_bias else 'has a'} bias, but the Flax {cell.kind} "
                             f"cell this cell converts {'has one' if has_bias else 'has none'} (keys {sorted(dense)})")
        kernels[side][k] = _expect_shape(_array(dense["kernel"], name), (input_size if side == "x" else H, H),
                                         f"Flax {name}/kernel")
        if has_bias:
            biases[side][k] = _expect_shape(_array(dense["bias"], name), (H,), f"Flax {name}/bias")
    w_h = np.concatenate(kernels["h"], axis=1) + (np.eye(H) if residual else 0.0)
    b, b_hn = _split_candidate_bias(cell, np.concatenate(biases["x"]), np.concatenate(biases["h"]))
    return _params(cell, _Weights(np.concatenate(kernels["x"], axis=1), w_h, b, b_hn))


def to_flax(params: Params, cell: Cell, module: Any = None) -> dict[str, dict[str, jax.Array]]:
    """The params tree of the Flax Linen cell that computes what ``cell`` does with ``params``.

    The Flax cell: ``LSTMCell`` or ``OptimizedLSTMCell`` for ``lstm(H)`` (any
    ``forget_bias``: added to ``hf``'s bias), ``GRUCell`` for ``gru(H,
    reset_after=True)``, ``MGUCell(reset_gate=r)`` for ``mgu(H, reset_gate=r)``,
    ``SimpleCell`` for ``tanh_rnn(H)``, all with ``features=H`` and default
    functions. Inside ``nn.RNN``: ``{"params": {"cell": to_flax(params, cell)}}``.
    :func:`from_flax` reads it back to ``params``.

    Args:
      params: the cell's params.
      cell: the rnnlab cell.
      module: optional, the Flax cell to load (checked as in :func:`from_flax`;
        a residual SimpleCell gets ``W_h = w_h - I``).

    Returns:
      ``{Dense name: {"kernel": f32[in, H], "bias": f32[H] (where Flax has one)}}``.

    Raises:
      ValueError: the cell has no Flax equivalent, the module differs, or the params do not fit.
    """
    _check_cell(cell, "Flax", ("lstm", "gru", "mgu", "tanh"), target=False, reset_after=True)
    residual = _flax_module(module, cell)
    weights = _weights(cell, params)
    blocks = {"x": np.split(weights.w_x, cell.num_gates, axis=1),
              "h": np.split(weights.w_h - (np.eye(cell.hidden_size) if residual else 0.0), cell.num_gates, axis=1)}
    rows = {"x": weights.b, "h": _joined_candidate_bias(cell, weights)}
    if cell.kind == "lstm":  # Flax's LSTM biases live on the carry side
        rows = {"x": np.zeros_like(weights.b), "h": weights.b}
    tree = {}
    for name, (side, k, has_bias) in _flax_layout(cell).items():
        dense = {"kernel": blocks[side][k]}
        if has_bias:
            dense["bias"] = np.split(rows[side], cell.num_gates)[k]
        tree[name] = {key: jnp.asarray(value, jnp.float32) for key, value in dense.items()}
    return tree
