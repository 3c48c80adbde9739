"""Recurrent cells: each defined once, as a :class:`CellDef`, and run by every backend.

A cell's equations live in ONE function, its *step*, written against a
``dot`` callback that returns the recurrent matrix products::

    step(dot, vecs, carry, px) -> (new_carry, y, acts)

    px    tuple of G arrays [..., H]: the input part of every gate block
          (``x @ w_x + b``, hoisted out of the time loop)
    dot   dot(a, blocks) -> tuple of ``a @ W_h[:, block]`` for the listed blocks
    vecs  dict of the cell's per-unit vectors (peepholes, b_hn, norm gains)
    acts  dict of named [..., H] activations; ``gate_names`` of them are the
          gates that :func:`rnnlab.gate_trace` reports

From that definition :func:`build_cell` derives the :class:`Cell` bundle of
pure functions (``init``, ``project``, ``recur``, ``step``, ``gates``), and
the backends derive their loops: ``Backend.REFERENCE`` scans ``recur``;
``Backend.FUSED`` runs the same ``step`` with per-gate products, batched and
time-major, with a custom backward (``jax.vjp`` of ``step``, or the
definition's optional hand-written ``backward``); ``Backend.PARALLEL`` runs
cells whose definition gives ``linear`` (``h_t = a_t * h_{t-1} + b_t``, gates
reading the input only) as an associative scan. Which backends run a cell is
a property of its definition (:func:`rnnlab.backends.supported`), so a cell
written in a user's own file runs on every backend it qualifies for.

Parameters are a flat dict: ``w_x f32[D, G*H]``, ``w_h f32[H, G*H]`` (absent
when ``recurrent=False``), ``b f32[G*H]`` and the definition's vectors. Gate
blocks are laid out along the last axis in the order of ``blocks``.

Numerics: parameters are float32; ``dtype`` picks the dtype of the matrix
products (float32 or bfloat16, accumulated in float32; float64 under
``jax.enable_x64`` for gradient checks); gate arithmetic and carry stay in
the parameters' dtype.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, Mapping, NamedTuple, Optional

import jax
import jax.numpy as jnp

from rnnlab.types import Array, Carry, Params


class LSTMState(NamedTuple):
    """The LSTM carry: hidden state ``h f32[H]`` and cell state ``c f32[H]``."""

    h: Array
    c: Array


class Vector(NamedTuple):
    """A per-unit parameter of a cell: ``params[name] f32[blocks*H]`` (or ``f32[rows*H, blocks*H]``
    when ``rows > 0``), filled with ``init``; the step reads it as ``vecs[name]``."""

    name: str
    blocks: int = 1
    init: float = 0.0
    rows: int = 0


class FGRState(NamedTuple):
    """The carry of the full-gate-recurrence LSTM: ``h``, ``c`` and the previous gates ``i, f, o`` (all ``f32[H]``)."""

    h: Array
    c: Array
    i: Array
    f: Array
    o: Array


class CellDef(NamedTuple):
    """One definition of a cell's equations, from which every backend derives what it runs.

    Attributes:
      name: the cell's name (``Cell.kind``).
      blocks: the names of the G H-wide blocks of ``w_x``/``w_h``/``b``, in
        layout order (G = ``len(blocks)``).
      gate_names: the keys of ``acts`` that are gates (reported by ``gate_trace``).
      step: ``step(dot, vecs, carry, px) -> (carry, y, acts)`` (module docstring).
        Shapes: ``px`` G arrays ``[..., H]``, carry leaves and ``y`` ``[..., H]``.
        Every call of ``dot`` must read the previous hidden state ``h`` or a
        function of it and the step's own activations.
      carry_type: ``None`` (the carry is ``h f32[H]``) or a NamedTuple class
        whose fields are all ``[H]`` with the hidden state first (``LSTMState``).
      vectors: the per-unit parameter vectors, as :class:`Vector`.
      recurrent: whether the gates read ``h`` (params hold ``w_h``); cells
        with ``recurrent=False`` usually give ``linear``.
      project: ``project(params, xs f32[..., D], mm) -> f32[..., G*H]``, the
        input part; ``None``: ``mm(xs, w_x) + b``. ``mm(a, w)`` is the
        matrix product in the cell's dtype.
      backward: optional hand-written backward of ``step`` for the fused
        backend: ``backward(vecs, carry, acts, dcarry, dy) -> (dcarry_direct,
        dpx, dz, dvecs)``: the cotangents of ``px`` and of the products
        ``h @ W_h[:, g]`` (G-tuples of ``[B, H]``; ``dz`` None when equal to
        ``dpx``), the carry's cotangent without the part through the products,
        and per-example ``[B, width]`` cotangents of the vectors. Valid only
        when every product reads the previous ``h`` (``dot(h, all blocks)``).
      linear: for gates that read the input only:
        ``linear(vecs, px) -> (a, b, acts)`` with ``h_t = a * h_{t-1} + b``;
        ``step`` is then derived (:func:`linear_cell`) and ``Backend.PARALLEL``
        runs the cell as an associative scan.
      cudnn: the cuDNN RNN mode this cell computes exactly (``"lstm"``), or None.
      initial_carry: ``initial_carry(hidden_size, dtype) -> carry`` of zeros,
        for carries that ``carry_type`` cannot describe (None: from ``carry_type``).
    """

    name: str
    blocks: tuple[str, ...]
    gate_names: tuple[str, ...]
    step: Callable[..., tuple[Carry, Array, dict]]
    carry_type: Optional[type] = None
    vectors: tuple[Vector, ...] = ()
    recurrent: bool = True
    project: Optional[Callable[..., Array]] = None
    backward: Optional[Callable[..., tuple]] = None
    linear: Optional[Callable[..., tuple]] = None
    cudnn: Optional[str] = None
    initial_carry: Optional[Callable[..., Carry]] = None

    @property
    def num_gates(self) -> int:
        """G: how many H-wide blocks the fused matrices hold."""
        return len(self.blocks)

    def zero_carry(self, hidden_size: int, dtype: Any = jnp.float32) -> Carry:
        """The carry of zeros, leaves ``[H]``."""
        if self.initial_carry is not None:
            return self.initial_carry(hidden_size, dtype)
        zeros = jnp.zeros((hidden_size,), dtype)
        if self.carry_type is None:
            return zeros
        return self.carry_type(*(zeros for _ in self.carry_type._fields))


class Cell(NamedTuple):
    """A recurrent cell as pure functions (one example per call), built from a :class:`CellDef`.

    Attributes:
      init: ``init(key, input_size) -> params``.
      initial_carry: ``initial_carry(dtype=jnp.float32) -> carry`` of zeros.
      project: ``project(params, xs: f32[..., D]) -> f32[..., G*H]``, the
        input part of every gate pre-activation.
      recur: ``recur(params, carry, px: f32[G*H]) -> (carry, y: f32[H])``.
      step: ``step(params, carry, x: f32[D]) -> (carry, y: f32[H])``.
      gates: ``gates(params, carry, x: f32[D]) -> {gate name: f32[H]}``.
      hidden_size: H.
      kind: the definition's name (``"lstm"``, ``"gru"``, ...).
      options: the constructor's options as sorted ``(name, value)`` pairs.
      definition: the :class:`CellDef` everything above is derived from; the
        backends run it (replacing a function with ``_replace`` does not
        change what they run: write a definition instead).
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
    definition: CellDef

    @property
    def num_gates(self) -> int:
        """G: how many H-wide blocks the fused matrices hold."""
        return self.definition.num_gates

    @property
    def gate_names(self) -> tuple[str, ...]:
        """The keys of :attr:`gates`' result, in a fixed order."""
        return self.definition.gate_names

    @property
    def dtype(self) -> jnp.dtype:
        """The dtype of the matrix products."""
        return jnp.dtype(self.option("dtype"))

    def option(self, name: str, default: Any = None) -> Any:
        """The value of one constructor option, e.g. ``cell.option("peephole")``."""
        return dict(self.options).get(name, default)


# ---------------------------------------------------------------------------
# Building a Cell from a definition


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


def matmul(a: Array, w: Array, dtype: Any) -> Array:
    """``a f32[..., K] @ w f32[K, N] -> f32[..., N]`` with operands in ``dtype``, accumulated in >= float32."""
    accumulate = jnp.promote_types(dtype, jnp.float32)
    return jnp.matmul(a.astype(dtype), w.astype(dtype), preferred_element_type=accumulate)


def split_blocks(a: Array, num: int) -> tuple[Array, ...]:
    """``f32[..., num*H] -> num`` arrays ``f32[..., H]``."""
    return tuple(jnp.split(a, num, axis=-1))


def hidden(carry: Carry) -> Array:
    """The hidden state of a carry: the carry itself, or (recursively) its first field (``LSTMState.h``)."""
    while isinstance(carry, tuple):
        carry = carry[0]
    return carry


def _orthogonal_blocks(key: Array, hidden_size: int, num_blocks: int) -> Array:
    """``f32[H, G*H]``: G independent orthogonal ``[H, H]`` blocks side by side."""
    keys = jax.random.split(key, num_blocks)
    init = jax.nn.initializers.orthogonal()
    return jnp.concatenate([init(k, (hidden_size, hidden_size), jnp.float32) for k in keys], axis=1)


def _init(definition: CellDef, hidden_size: int, key: Array, input_size: int) -> dict[str, Array]:
    """Glorot-uniform ``w_x``, orthogonal blocks ``w_h``, zero ``b``, vectors at their ``init``."""
    _check_size("input_size", input_size)
    k_x, k_h = jax.random.split(key)
    width = definition.num_gates * hidden_size
    params = {
        "w_x": jax.nn.initializers.glorot_uniform()(k_x, (input_size, width), jnp.float32),
        "b": jnp.zeros((width,), jnp.float32),
    }
    if definition.recurrent:
        params["w_h"] = _orthogonal_blocks(k_h, hidden_size, definition.num_gates)
    for vector in definition.vectors:
        shape = (vector.rows * hidden_size,) * (vector.rows > 0) + (vector.blocks * hidden_size,)
        params[vector.name] = jnp.full(shape, vector.init, jnp.float32)
    return params


def _standard_project(params: Params, xs: Array, mm: Callable) -> Array:
    return mm(xs, params["w_x"]) + params["b"]


def vectors_of(definition: CellDef, params: Params) -> dict[str, Array]:
    """The definition's per-unit vectors taken from ``params``."""
    return {vector.name: params[vector.name] for vector in definition.vectors}


def reference_dot(w_h: Array, hidden_size: int, dtype: Any) -> Callable:
    """``dot(a, blocks)`` of the reference backend: one product with the listed columns of ``w_h``."""

    def dot(a, blocks):
        columns = jnp.concatenate(
            [w_h[:, g * hidden_size:(g + 1) * hidden_size] for g in blocks], axis=-1
        ) if len(blocks) > 1 else w_h[:, blocks[0] * hidden_size:(blocks[0] + 1) * hidden_size]
        return split_blocks(matmul(a, columns, dtype), len(blocks))

    return dot


def _no_dot(a, blocks):
    raise ValueError("this cell has recurrent=False: its step may not call dot")


def build_cell(definition: CellDef, hidden_size: int, *, dtype: Any = jnp.float32,
               options: Optional[Mapping[str, Any]] = None) -> Cell:
    """The :class:`Cell` of pure functions derived from ``definition``.

    Args:
      definition: the cell's equations.
      hidden_size: H.
      dtype: dtype of the matrix products (float32 or bfloat16; float64 for checks).
      options: the options the definition was made with (recorded in
        ``Cell.options`` for configs and weight import).

    Returns:
      the Cell; its ``definition`` is what every backend runs.

    Raises:
      ValueError: a bad ``hidden_size`` or ``dtype``, or a definition without blocks.
    """
    _check_size("hidden_size", hidden_size)
    dtype = _check_dtype(dtype)
    if not definition.blocks:
        raise ValueError(f"cell definition {definition.name!r} has no blocks")
    G, H = definition.num_gates, hidden_size
    mm = functools.partial(matmul, dtype=dtype)
    project_fn = definition.project or _standard_project

    def project(params, xs):
        return project_fn(params, xs, mm)

    def activations(params, carry, px):
        dot = reference_dot(params["w_h"], H, dtype) if definition.recurrent else _no_dot
        return definition.step(dot, vectors_of(definition, params), carry, split_blocks(px, G))

    def recur(params, carry, px):
        new_carry, y, _ = activations(params, carry, px)
        return new_carry, y

    def step(params, carry, x):
        return recur(params, carry, project(params, x))

    def gates(params, carry, x):
        acts = activations(params, carry, project(params, x))[2]
        return {name: acts[name] for name in definition.gate_names}

    def initial_carry(dtype=jnp.float32):
        return definition.zero_carry(H, dtype)

    recorded = dict(options or {})
    recorded["dtype"] = dtype.name
    return Cell(
        init=functools.partial(_init, definition, H),
        initial_carry=initial_carry,
        project=project,
        recur=recur,
        step=step,
        gates=gates,
        hidden_size=H,
        kind=definition.name,
        options=tuple(sorted(recorded.items())),
        definition=definition,
    )


def linear_cell(name: str, blocks: tuple[str, ...], gate_names: tuple[str, ...],
                linear: Callable[..., tuple], vectors: tuple[Vector, ...] = (),
                project: Optional[Callable] = None) -> CellDef:
    """A :class:`CellDef` for a cell linear in ``h`` whose gates read the input only.

    ``linear(vecs, px) -> (a, b, acts)`` gives ``h_t = a ⊙ h_{t-1} + b``
    (``a, b f32[..., H]``); the step is derived from it, so the sequential
    backends and the parallel scan run the same equations.
    """

    def step(dot, vecs, h, px):
        a, b, acts = linear(vecs, px)
        h = a * h + b
        return h, h, acts

    return CellDef(name=name, blocks=blocks, gate_names=gate_names, step=step, vectors=vectors,
                   recurrent=False, project=project, linear=linear)


# ---------------------------------------------------------------------------
# The library's cells


def _sigmoid_grad(s: Array) -> Array:
    return s * (1.0 - s)


def tanh_rnn_def() -> CellDef:
    r"""The plain (Elman) RNN: :math:`h_t = \tanh(W_x x_t + W_h h_{t-1} + b)`, :math:`y_t = h_t`.

    One block (``candidate``); the carry is ``h f32[H]``.
    """

    def step(dot, vecs, h, px):
        (z,) = dot(h, (0,))
        h = jnp.tanh(px[0] + z)
        return h, h, {"candidate": h}

    def backward(vecs, h, acts, dh, dy):
        h2 = acts["candidate"]
        return jnp.zeros_like(h), ((dy + dh) * (1.0 - h2 * h2),), None, {}

    return CellDef("tanh", ("candidate",), ("candidate",), step, backward=backward)


def lstm_def(
    forget_bias: float = 1.0,
    peephole: bool = False,
    input_gate: bool = True,
    forget_gate: bool = True,
    output_gate: bool = True,
    input_activation: bool = True,
    output_activation: bool = True,
    coupled: bool = False,
    full_gate_recurrence: bool = False,
) -> CellDef:
    r"""The LSTM and its gate variants (Greff et al. 2017, "LSTM: A Search Space Odyssey").

    Blocks, in layout order: input ``i``, forget ``f``, candidate ``g``,
    output ``o`` (PyTorch's and Keras' order), minus the removed gates. With
    :math:`a = W_x x_t + b + W_h h_{t-1}` split into those blocks:

    .. math::
        f_t &= \sigma(a_f + p_f \odot c_{t-1} + \text{forget\_bias})  &&(1 \text{ without forget gate}) \\
        i_t &= \sigma(a_i + p_i \odot c_{t-1})  &&(1 \text{ without input gate}; 1 - f_t \text{ coupled}) \\
        g_t &= \tanh(a_g)                      &&(a_g \text{ without input activation}) \\
        c_t &= f_t \odot c_{t-1} + i_t \odot g_t \\
        o_t &= \sigma(a_o + p_o \odot c_t)      &&(1 \text{ without output gate}) \\
        h_t &= o_t \odot \tanh(c_t)            &&(o_t \odot c_t \text{ without output activation})

    Peepholes (``p_* f32[H]``, Gers & Schmidhuber 2000; the output gate reads
    :math:`c_t`, as in Graves 2013) exist only with ``peephole=True``, one per
    present gate. ``forget_bias`` is a constant added inside the step (as in
    Haiku), not stored in ``b``. ``coupled=True`` is CIFG: the input gate is
    ``1 - f`` and has no block. The carry is :class:`LSTMState`.

    ``full_gate_recurrence=True`` (FGR) adds to the pre-activations of ``i, f,
    o`` the previous step's gates: :math:`[i_{t-1}, f_{t-1}, o_{t-1}] R_g` with
    ``r_g f32[3H, 3H]`` (zeros at init); the carry is then :class:`FGRState`.
    It needs all three gates (and no coupling).
    """
    if coupled and not forget_gate:
        raise ValueError("lstm: coupled=True (CIFG) needs the forget gate")
    if full_gate_recurrence and (coupled or not (input_gate and forget_gate and output_gate)):
        raise ValueError("lstm: full_gate_recurrence needs the input, forget and output gates, uncoupled")
    has = {"input": input_gate and not coupled, "forget": forget_gate, "candidate": True,
           "output": output_gate}
    blocks = tuple(name for name in ("input", "forget", "candidate", "output") if has[name])
    index = {name: k for k, name in enumerate(blocks)}
    peeps = {gate: f"p_{gate[0]}" for gate in ("input", "forget", "output") if peephole and has[gate]}
    gate_names = tuple(g for g in ("input", "forget", "candidate", "output")
                       if has[g] or (g == "input" and coupled))

    def pre(px, zs, name):
        return px[index[name]] + zs[index[name]]

    def gate_recurrence(vecs, carry):
        """``{gate: f32[..., H]}``: the previous gates' contribution to ``i, f, o`` (FGR)."""
        if not full_gate_recurrence:
            return {"input": 0.0, "forget": 0.0, "output": 0.0}
        prev = jnp.concatenate([carry.i, carry.f, carry.o], axis=-1)
        return dict(zip(("input", "forget", "output"), split_blocks(prev @ vecs["r_g"], 3)))

    def step(dot, vecs, carry, px):
        h, c = carry.h, carry.c
        zs = dot(h, tuple(range(len(blocks))))
        fgr = gate_recurrence(vecs, carry)
        acts = {}

        def gate(name, cell_state, bias=0.0):
            """sigma(a + the previous gates' term + the peephole on ``cell_state`` + bias)."""
            a = pre(px, zs, name) + fgr[name] + bias
            if name in peeps:
                a = a + vecs[peeps[name]] * cell_state
            acts[name] = value = jax.nn.sigmoid(a)
            return value

        f = gate("forget", c, forget_bias) if forget_gate else 1.0
        if coupled:
            acts["input"] = i = 1.0 - f
        else:
            i = gate("input", c) if input_gate else 1.0
        a_g = pre(px, zs, "candidate")
        acts["candidate"] = g = jnp.tanh(a_g) if input_activation else a_g
        c2 = f * c + i * g
        o = gate("output", c2) if output_gate else 1.0
        h2 = o * (jnp.tanh(c2) if output_activation else c2)
        if full_gate_recurrence:
            return FGRState(h2, c2, acts["input"], acts["forget"], acts["output"]), h2, acts
        return LSTMState(h=h2, c=c2), h2, acts

    def backward(vecs, carry, acts, dcarry, dy):
        c = carry.c
        one = jnp.ones_like(c)
        f = acts.get("forget", one)
        i = acts.get("input", one)
        g, o = acts["candidate"], acts.get("output", one)
        c2 = f * c + i * g
        tc = jnp.tanh(c2) if output_activation else c2
        dh2 = dy + dcarry.h
        grads, dvecs = {}, {}
        dc2 = dcarry.c + dh2 * o * ((1.0 - tc * tc) if output_activation else 1.0)
        if output_gate:
            grads["output"] = dh2 * tc * _sigmoid_grad(o)
            if "output" in peeps:
                dc2 = dc2 + grads["output"] * vecs[peeps["output"]]
                dvecs[peeps["output"]] = grads["output"] * c2
        di = dc2 * g
        df = dc2 * c - (di if coupled else 0.0)
        grads["candidate"] = dc2 * i * ((1.0 - g * g) if input_activation else 1.0)
        dc = dc2 * f
        if forget_gate:
            grads["forget"] = df * _sigmoid_grad(f)
        if has["input"]:
            grads["input"] = di * _sigmoid_grad(i)
        for gate, name in peeps.items():
            if gate != "output":
                dc = dc + grads[gate] * vecs[name]
                dvecs[name] = grads[gate] * c
        dpx = tuple(grads[name] for name in blocks)
        return LSTMState(h=jnp.zeros_like(dc), c=dc), dpx, None, dvecs

    vectors = tuple(Vector(name) for name in peeps.values())
    if full_gate_recurrence:
        vectors += (Vector("r_g", blocks=3, rows=3),)
    plain = peephole is False and all((input_gate, forget_gate, output_gate, input_activation,
                                       output_activation)) and not coupled
    plain = plain and not full_gate_recurrence
    return CellDef("lstm", blocks, gate_names, step,
                   carry_type=FGRState if full_gate_recurrence else LSTMState, vectors=vectors,
                   backward=None if full_gate_recurrence else backward,
                   cudnn="lstm" if plain else None)


def gru_def(reset_after: bool = False, reset_gate: bool = True, update_gate: bool = True) -> CellDef:
    r"""The GRU (Cho et al. 2014; Chung et al. 2014) and its gate ablations.

    Blocks in layout order: reset ``r``, update ``z``, candidate ``n``
    (PyTorch's order), minus the removed gates. With :math:`a = W_x x_t + b`
    and :math:`W_h = [U_r, U_z, U_n]`:

    .. math::
        r_t &= \sigma(a_r + U_r h_{t-1})   &&(1 \text{ without reset gate}) \\
        z_t &= \sigma(a_z + U_z h_{t-1})   &&(0 \text{ without update gate}) \\
        n_t &= \tanh(a_n + U_n (r_t \odot h_{t-1}))
              &&\text{reset\_after=False (Cho et al., Chung et al.)} \\
        n_t &= \tanh(a_n + r_t \odot (U_n h_{t-1} + b_{hn}))
              &&\text{reset\_after=True (cuDNN, PyTorch, Keras v2, Flax)} \\
        h_t &= (1 - z_t) \odot n_t + z_t \odot h_{t-1}

    ``z`` is the fraction of the old state kept (PyTorch's convention). The
    reset-after form has the recurrent bias ``b_hn f32[H]``. The reset-before
    form makes two dependent products per step (so it has no hand-written
    backward); the reset-after form one.
    """
    blocks = tuple(name for name, on in (("reset", reset_gate), ("update", update_gate),
                                         ("candidate", True)) if on)
    index = {name: k for k, name in enumerate(blocks)}
    gate_names = blocks
    n_k = index["candidate"]
    fused_product = reset_after or not reset_gate  # one product dot(h, all blocks)

    def gate(px, zs, name):
        return jax.nn.sigmoid(px[index[name]] + zs[index[name]])

    def step(dot, vecs, h, px):
        acts = {}
        zs = dot(h, tuple(range(len(blocks) if fused_product else n_k)))
        r = 1.0
        if reset_gate:
            acts["reset"] = r = gate(px, zs, "reset")
        if update_gate:
            acts["update"] = z = gate(px, zs, "update")
        if fused_product:
            zb = zs[n_k] + vecs["b_hn"] if reset_after else zs[n_k]
            acts["recurrent_candidate"] = zb
            n = jnp.tanh(px[n_k] + r * zb)
        else:
            (z_n,) = dot(r * h, (n_k,))
            n = jnp.tanh(px[n_k] + z_n)
        acts["candidate"] = n
        h2 = n + z * (h - n) if update_gate else n
        return h2, h2, acts

    def backward(vecs, h, acts, dh, dy):
        n, zb = acts["candidate"], acts["recurrent_candidate"]
        u = acts.get("update")
        dh2 = dy + dh
        grads = {}
        dn = dh2 * (1.0 - u) if update_gate else dh2
        grads["candidate"] = dn * (1.0 - n * n)
        r = acts.get("reset", 1.0)
        dzb = grads["candidate"] * r
        if reset_gate:
            grads["reset"] = grads["candidate"] * zb * _sigmoid_grad(r)
        if update_gate:
            grads["update"] = dh2 * (h - n) * _sigmoid_grad(u)
        dpx = tuple(grads[name] for name in blocks)
        dz = tuple(dzb if name == "candidate" else grads[name] for name in blocks)
        direct = dh2 * u if update_gate else jnp.zeros_like(dh2)
        return direct, dpx, dz, ({"b_hn": dzb} if reset_after else {})

    vectors = (Vector("b_hn"),) if reset_after else ()
    return CellDef("gru", blocks, gate_names, step, vectors=vectors,
                   backward=backward if fused_product else None)


def _layer_norm(blocks: tuple[Array, ...], gain: Array, eps: float = 1e-5) -> tuple[Array, ...]:
    """Layer norm over the concatenation of ``blocks`` (G arrays ``[..., H]``), times ``gain f32[G*H]``."""
    width = sum(b.shape[-1] for b in blocks)
    mean = sum(jnp.sum(b, axis=-1, keepdims=True) for b in blocks) / width
    var = sum(jnp.sum(jnp.square(b - mean), axis=-1, keepdims=True) for b in blocks) / width
    scale = jax.lax.rsqrt(var + eps)
    gains = split_blocks(gain, len(blocks))
    return tuple((b - mean) * scale * g for b, g in zip(blocks, gains))


def layer_norm_lstm_def(forget_bias: float = 1.0) -> CellDef:
    r"""The layer-normalised LSTM (Ba et al. 2016), in Haste's form.

    .. math::
        a &= \mathrm{LN}(W_x x_t; \gamma_x) + \mathrm{LN}(W_h h_{t-1}; \gamma_h) + b \\
        c_t &= f_t \odot c_{t-1} + i_t \odot g_t, \qquad
        h_t = o_t \odot \tanh(\mathrm{LN}(c_t; \gamma_c, \beta_c))

    with the LSTM's gates (``forget_bias`` added to ``a_f``). Each LN
    normalises over all its units; gains start at 1, ``beta_c`` at 0.
    Vectors: ``gamma_x, gamma_h f32[4H]``, ``gamma_c, beta_c f32[H]``.
    """
    blocks = ("input", "forget", "candidate", "output")

    def project(params, xs, mm):
        G = len(blocks)
        wx = split_blocks(mm(xs, params["w_x"]), G)
        normed = _layer_norm(wx, params["gamma_x"])
        return jnp.concatenate(normed, axis=-1) + params["b"]

    def step(dot, vecs, carry, px):
        h, c = carry
        zs = _layer_norm(dot(h, (0, 1, 2, 3)), vecs["gamma_h"])
        a_i, a_f, a_g, a_o = (p + z for p, z in zip(px, zs))
        i, f = jax.nn.sigmoid(a_i), jax.nn.sigmoid(a_f + forget_bias)
        g, o = jnp.tanh(a_g), jax.nn.sigmoid(a_o)
        c2 = f * c + i * g
        (c_norm,) = _layer_norm((c2,), vecs["gamma_c"])
        h2 = o * jnp.tanh(c_norm + vecs["beta_c"])
        return LSTMState(h=h2, c=c2), h2, {"input": i, "forget": f, "candidate": g, "output": o}

    vectors = (Vector("gamma_x", 4, 1.0), Vector("gamma_h", 4, 1.0), Vector("gamma_c", 1, 1.0),
               Vector("beta_c", 1, 0.0))
    return CellDef("layer_norm_lstm", blocks, blocks, step, carry_type=LSTMState, vectors=vectors,
                   project=project)


def min_gru_def() -> CellDef:
    r"""minGRU (Feng et al. 2024, "Were RNNs All We Needed?"): gates read the input only.

    .. math::
        z_t = \sigma(a_z), \qquad \tilde h_t = a_h, \qquad
        h_t = (1 - z_t) \odot h_{t-1} + z_t \odot \tilde h_t

    with :math:`a = W_x x_t + b` in blocks ``update``, ``candidate``. Linear
    in ``h``, so it runs as a parallel scan (``Backend.PARALLEL``).
    """

    def linear(vecs, px):
        z = jax.nn.sigmoid(px[0])
        return 1.0 - z, z * px[1], {"update": z, "candidate": px[1]}

    return linear_cell("min_gru", ("update", "candidate"), ("update", "candidate"), linear)


def min_lstm_def() -> CellDef:
    r"""minLSTM (Feng et al. 2024): forget and input gates read the input only, normalised to sum 1.

    .. math::
        f_t = \sigma(a_f), \quad i_t = \sigma(a_i), \quad
        f'_t = \frac{f_t}{f_t + i_t}, \quad i'_t = \frac{i_t}{f_t + i_t}, \quad
        h_t = f'_t \odot h_{t-1} + i'_t \odot a_h

    Blocks ``forget``, ``input``, ``candidate``; ``gate_trace`` reports the
    normalised ``f'``, ``i'``.
    """

    def linear(vecs, px):
        f, i = jax.nn.sigmoid(px[0]), jax.nn.sigmoid(px[1])
        total = f + i
        f, i = f / total, i / total
        return f, i * px[2], {"forget": f, "input": i, "candidate": px[2]}

    return linear_cell("min_lstm", ("forget", "input", "candidate"), ("forget", "input", "candidate"),
                       linear)


def _constructor(make_def: Callable[..., CellDef], doc_name: str, **fixed: Any) -> Callable[..., Cell]:
    """``constructor(hidden_size, *, dtype, **options) -> Cell`` for a definition factory."""

    def constructor(hidden_size: int, *, dtype: Any = jnp.float32, **options: Any) -> Cell:
        options = {**fixed, **options}
        return build_cell(make_def(**options), hidden_size, dtype=dtype, options=options)

    free = [p for name, p in inspect.signature(make_def).parameters.items() if name not in fixed]
    constructor.__signature__ = inspect.Signature(
        [inspect.Parameter("hidden_size", inspect.Parameter.POSITIONAL_OR_KEYWORD),
         inspect.Parameter("dtype", inspect.Parameter.KEYWORD_ONLY, default=jnp.float32)]
        + [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in free])
    constructor.__name__ = doc_name
    constructor.__doc__ = (
        f"``{doc_name}(hidden_size, *, dtype=float32, **options) -> Cell``: builds "
        f"``{make_def.__name__}(**options)`` (fixed options: {fixed or 'none'}).\n\n"
        + (make_def.__doc__ or "")
    )
    return constructor


def tanh_rnn(hidden_size: int, *, dtype: Any = jnp.float32) -> Cell:
    """The plain tanh RNN (:func:`tanh_rnn_def`), H = ``hidden_size``."""
    return build_cell(tanh_rnn_def(), hidden_size, dtype=dtype)


def lstm(hidden_size: int, *, forget_bias: float = 1.0, peephole: bool = False,
         dtype: Any = jnp.float32, **variant: bool) -> Cell:
    """The LSTM (:func:`lstm_def`), H = ``hidden_size``.

    Args:
      hidden_size: H.
      forget_bias: constant added to the forget gate's pre-activation.
      peephole: diagonal peepholes from the cell state.
      dtype: dtype of the matrix products.
      **variant: gate ablations of :func:`lstm_def` (``input_gate``,
        ``forget_gate``, ``output_gate``, ``input_activation``,
        ``output_activation``, ``coupled``).
    """
    options = {"forget_bias": float(forget_bias), "peephole": bool(peephole), **variant}
    return build_cell(lstm_def(**options), hidden_size, dtype=dtype, options=options)


def gru(hidden_size: int, *, reset_after: bool = False, dtype: Any = jnp.float32,
        **variant: bool) -> Cell:
    """The GRU (:func:`gru_def`), H = ``hidden_size``; ``variant``: ``reset_gate``, ``update_gate``."""
    options = {"reset_after": bool(reset_after), **variant}
    return build_cell(gru_def(**options), hidden_size, dtype=dtype, options=options)


# ---------------------------------------------------------------------------
# Regularisers of the recurrence, for any definition


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
    inner_step = definition.step

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
    return definition._replace(step=step, backward=None, cudnn=None, linear=None, carry_type=None,
                               initial_carry=initial_carry)


# ---------------------------------------------------------------------------
# The registry of named cells

_REGISTRY: dict[str, Callable[..., Cell]] = {}


def register_cell(name: str, constructor: Callable[..., Cell], *, replace: bool = False) -> None:
    """Makes ``get_cell(name, H, **options)`` (and ``config.model.cell=name``) build a cell.

    Args:
      name: the cell's name.
      constructor: ``constructor(hidden_size, **options) -> Cell``, e.g.
        ``lambda hidden_size, **o: rnnlab.build_cell(my_def, hidden_size, **o)``.
      replace: allow replacing a registered name.

    Raises:
      ValueError: the name is taken (and ``replace`` is False) or not a string.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"a cell name must be a non-empty string, got {name!r}")
    if name in _REGISTRY and not replace:
        raise ValueError(f"cell {name!r} is already registered (pass replace=True to replace it)")
    _REGISTRY[name] = constructor


for _name, _constructor_fn in {
    "tanh": tanh_rnn,
    "lstm": lstm,
    "gru": gru,
    # Greff et al. 2017's LSTM variants (peephole LSTM: lstm with peephole=True)
    "lstm_nig": _constructor(lstm_def, "lstm_nig", input_gate=False),
    "lstm_nfg": _constructor(lstm_def, "lstm_nfg", forget_gate=False),
    "lstm_nog": _constructor(lstm_def, "lstm_nog", output_gate=False),
    "lstm_niaf": _constructor(lstm_def, "lstm_niaf", input_activation=False),
    "lstm_noaf": _constructor(lstm_def, "lstm_noaf", output_activation=False),
    "lstm_cifg": _constructor(lstm_def, "lstm_cifg", coupled=True),
    "lstm_fgr": _constructor(lstm_def, "lstm_fgr", full_gate_recurrence=True),
    "gru_nrg": _constructor(gru_def, "gru_nrg", reset_gate=False),
    "gru_nug": _constructor(gru_def, "gru_nug", update_gate=False),
    "layer_norm_lstm": _constructor(layer_norm_lstm_def, "layer_norm_lstm"),
    "min_gru": _constructor(min_gru_def, "min_gru"),
    "min_lstm": _constructor(min_lstm_def, "min_lstm"),
}.items():
    register_cell(_name, _constructor_fn)


def get_cell(name: str, hidden_size: int, **options: Any) -> Cell:
    """Builds a registered cell by name: ``get_cell("gru", 128, reset_after=True)``.

    Args:
      name: one of :func:`cell_names`.
      hidden_size: H.
      **options: keyword options of that cell's constructor.

    Raises:
      ValueError: the name is unknown (the message lists the known names) or an
        option is not one that cell takes.
    """
    if name not in _REGISTRY:
        raise ValueError(f"unknown cell {name!r}; known cells: {', '.join(cell_names())}")
    try:
        return _REGISTRY[name](hidden_size, **options)
    except TypeError as e:
        raise ValueError(f"bad options for cell {name!r}: {options}: {e}") from None


def cell_option_names(name: str) -> tuple[str, ...]:
    """The keyword options of a registered cell's constructor (besides ``hidden_size`` and ``dtype``).

    Raises:
      ValueError: the name is unknown.
    """
    if name not in _REGISTRY:
        raise ValueError(f"unknown cell {name!r}; known cells: {', '.join(cell_names())}")
    parameters = inspect.signature(_REGISTRY[name]).parameters.values()
    return tuple(p.name for p in parameters if p.name not in ("hidden_size", "dtype")
                 and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))


def cell_names() -> tuple[str, ...]:
    """The names :func:`get_cell` knows, sorted."""
    return tuple(sorted(_REGISTRY))
