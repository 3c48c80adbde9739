"""The form every cell takes: one definition (:class:`CellDef`), and the :class:`Cell` built from it.

A cell's equations live in ONE function, ``CellDef.equations``, written
against a ``dot`` callback that returns the recurrent matrix products::

    equations(dot, vecs, carry, px) -> (new_carry, y, acts)

    px    tuple of G arrays [..., H]: the input part of every gate block
          (``x @ w_x + b``, hoisted out of the time loop)
    dot   dot(a, blocks) -> tuple of ``a @ W_h[:, block]`` for the listed blocks
    vecs  dict of the cell's per-unit vectors (peepholes, b_hn, norm gains)
    acts  dict of named [..., H] activations; ``gate_names`` of them are the
          gates that :func:`rnnlab.gate_trace` reports

From that definition :func:`build_cell` derives the :class:`Cell` bundle of
pure functions (``init``, ``project``, ``recur``, ``step``, ``gates``), and
the backends derive their loops: ``Backend.REFERENCE`` scans ``recur``;
``Backend.FUSED`` runs the same equations with per-gate products, batched and
time-major, with a custom backward (``jax.vjp`` of the equations, or the
definition's optional hand-written ``backward``); ``Backend.PARALLEL`` runs
cells whose definition gives ``linear`` (``h_t = a_t * h_{t-1} + b_t``, gates
reading the input only) as an associative scan. Which backends run a cell is
a property of its definition (:func:`rnnlab.backends.supported`), so a cell
written in a user's own file runs on every backend it qualifies for.

Parameters are a flat dict: ``w_x f32[D, G*H]``, ``w_h f32[H, G*H]`` (absent
when ``recurrent=False``), ``b f32[G*H]`` and the definition's vectors. Gate
blocks are laid out along the last axis in the order of ``blocks``.

Initialisation (:func:`build_cell`'s ``kernel_init``, ``recurrent_init``,
``param_dtype``): ``w_x`` is one ``[D, G*H]`` matrix drawn by ``kernel_init``
(default ``"glorot_uniform"``), ``w_h`` G independent ``[H, H]`` blocks drawn by
``recurrent_init`` (default ``"orthogonal"``, one orthogonal matrix per gate, as
Flax's one ``Dense`` per gate does), biases zero, vectors at their ``init``, all
in ``param_dtype`` (default float32).

Numerics: parameters are float32 unless ``param_dtype`` says otherwise; ``dtype`` picks the dtype of the matrix
products (float32 or bfloat16, accumulated in float32; float64 under
``jax.enable_x64`` for gradient checks); gate arithmetic and carry are in
:func:`carry_dtype` (float32, or float64 for a float64 cell), and
``cell.initial_carry()`` follows it.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Mapping, NamedTuple, Optional

import jax
import jax.numpy as jnp

from rnnlab.types import Array, Carry, Params


class Vector(NamedTuple):
    """A per-unit parameter of a cell: ``params[name] f32[blocks*H]`` (or ``f32[rows*H, blocks*H]``
    when ``rows > 0``), filled with ``init``; the step reads it as ``vecs[name]``."""

    name: str
    blocks: int = 1
    init: float = 0.0
    rows: int = 0


class _CellDefFields(NamedTuple):
    """One definition of a cell's equations, from which every backend derives what it runs.

    Attributes:
      name: the cell's name (``Cell.kind``).
      blocks: the names of the G H-wide blocks of ``w_x``/``w_h``/``b``, in
        layout order (G = ``len(blocks)``).
      gate_names: the keys of ``acts`` that are gates (reported by ``gate_trace``).
      equations: ``equations(dot, vecs, carry, px) -> (carry, y, acts)`` (module
        docstring): one time step of the recurrent half, given the products. Not
        named ``step``: that is ``Cell.step(params, carry, x)``, the whole step
        from a raw input, derived from it (the constructor still takes the
        keyword ``step=`` of definitions written before the rename).
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
    equations: Callable[..., tuple[Carry, Array, dict]]
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


class CellDef(_CellDefFields):
    __doc__ = _CellDefFields.__doc__
    __slots__ = ()

    def __new__(cls, *args: Any, step: Optional[Callable[..., tuple]] = None, **fields: Any) -> "CellDef":
        # ``step=``: the keyword of definitions written before ``equations`` was renamed (no attribute ``step``)
        if step is not None:
            fields["equations"] = step
        return super().__new__(cls, *args, **fields)


class StepFacts(NamedTuple):
    """What one abstract trace of a definition's equations shows, found once by :func:`build_cell`.

    Attributes:
      carry: the carry they were given (``jax.ShapeDtypeStruct`` leaves ``[H]``).
      out: what they returned (``ShapeDtypeStruct`` leaves), ``None`` when the trace failed.
      error: why the trace failed (``"TypeError: ..."``), or ``None``.
      reads_hidden: every ``dot`` call read the previous hidden state itself (what
        ``Backend.PALLAS`` needs; False for the reset-before GRU, whose candidate
        product reads ``r * h``).
    """

    carry: Any
    out: Any
    error: Optional[str]
    reads_hidden: bool

    def __hash__(self) -> int:  # ``out`` may hold a dict (``acts``): hash its structure and leaves
        trees = (self.carry, self.out)
        return hash((jax.tree.structure(trees), tuple(jax.tree.leaves(trees)), self.error, self.reads_hidden))


class Cell(NamedTuple):
    """A recurrent cell as pure functions (one example per call), built from a :class:`CellDef`.

    Attributes:
      init: ``init(key, input_size) -> params``.
      initial_carry: ``initial_carry(dtype=None) -> carry`` of zeros; ``None``: the
        cell's :func:`carry_dtype` (float32, float64 for a float64 cell).
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
      facts: the :class:`StepFacts` of one abstract trace of the equations at
        this H and dtype, made when the cell was built: which backends run it
        and whether its step keeps the contract are read from here, never by
        tracing again.
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
    facts: StepFacts

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


def _check_dtype(dtype: Any, what: str = "dtype (of the matrix products)") -> jnp.dtype:
    try:
        dtype = jnp.dtype(dtype)
    except TypeError:
        dtype = None
    if dtype is None or dtype.name not in _DTYPES:
        raise ValueError(f"{what} must be one of {', '.join(_DTYPES)}, got {dtype}")
    return dtype


def carry_dtype(dtype: Any) -> jnp.dtype:
    """The dtype of the carry and gate arithmetic of a cell whose products are in ``dtype``:
    float32 for float32 and bfloat16 (accumulated in float32), float64 for float64."""
    return jnp.dtype(jnp.promote_types(dtype, jnp.float32))


def vector_shape(vector: Vector, hidden_size: int) -> tuple[int, ...]:
    """The shape of ``params[vector.name]``: ``[blocks*H]``, or ``[rows*H, blocks*H]`` when ``rows > 0``."""
    return (vector.rows * hidden_size,) * (vector.rows > 0) + (vector.blocks * hidden_size,)


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


_INIT = jax.nn.initializers
INITIALIZERS: dict[str, Callable[..., Array]] = {
    "glorot_uniform": _INIT.glorot_uniform(), "glorot_normal": _INIT.glorot_normal(),
    "lecun_normal": _INIT.lecun_normal(), "lecun_uniform": _INIT.lecun_uniform(),
    "he_normal": _INIT.he_normal(), "he_uniform": _INIT.he_uniform(),
    "orthogonal": _INIT.orthogonal(), "zeros": _INIT.zeros,
}
"""The initializers named by ``kernel_init`` / ``recurrent_init``: ``init(key, shape, dtype) -> array``."""

INIT_OPTIONS = {"kernel_init": "glorot_uniform", "recurrent_init": "orthogonal", "param_dtype": "float32"}
"""The init-side options of every cell constructor, with their defaults."""


def initializer(init: Any, what: str = "initializer") -> Callable[..., Array]:
    """``init(key, shape, dtype) -> array`` for a name of :data:`INITIALIZERS` or a JAX initializer callable.

    Raises:
      ValueError: an unknown name (the message lists the known ones) or neither a name nor a callable.
    """
    if callable(init):
        return init
    if isinstance(init, str) and init in INITIALIZERS:
        return INITIALIZERS[init]
    raise ValueError(f"{what} must be one of {', '.join(sorted(INITIALIZERS))} or a JAX initializer "
                     f"callable init(key, shape, dtype), got {init!r}")


def _draw(init: Callable, key: Array, shape: tuple[int, ...], param_dtype: jnp.dtype) -> Array:
    """``init(key, shape)`` drawn in at least float32 (QR and the like), then cast to ``param_dtype``."""
    return init(key, shape, jnp.promote_types(param_dtype, jnp.float32)).astype(param_dtype)


def _init(definition: CellDef, hidden_size: int, kernel_init: Callable, recurrent_init: Callable,
          param_dtype: jnp.dtype, key: Array, input_size: int) -> dict[str, Array]:
    """``w_x [D, G*H]`` drawn whole by ``kernel_init``; ``w_h [H, G*H]`` as G ``[H, H]`` blocks, each drawn
    by ``recurrent_init`` with its own key; zero ``b``; vectors at their ``init``; all in ``param_dtype``."""
    _check_size("input_size", input_size)
    k_x, k_h = jax.random.split(key)
    H, G = hidden_size, definition.num_gates
    params = {
        "w_x": _draw(kernel_init, k_x, (input_size, G * H), param_dtype),
        "b": jnp.zeros((G * H,), param_dtype),
    }
    if definition.recurrent:
        blocks = [_draw(recurrent_init, k, (H, H), param_dtype) for k in jax.random.split(k_h, G)]
        params["w_h"] = jnp.concatenate(blocks, axis=1)
    for vector in definition.vectors:
        params[vector.name] = jnp.full(vector_shape(vector, H), vector.init, param_dtype)
    return params


def _standard_project(params: Params, xs: Array, mm: Callable) -> Array:
    return mm(xs, params["w_x"]) + params["b"]


def vectors_of(definition: CellDef, params: Params) -> dict[str, Array]:
    """The definition's per-unit vectors taken from ``params``."""
    return {vector.name: params[vector.name] for vector in definition.vectors}


def reference_dot(w_h: Array, hidden_size: int, dtype: Any) -> Callable:
    """``dot(a, blocks)`` of the reference backend: one product with the listed columns of ``w_h``.

    Raises (when called):
      ValueError: a block index outside ``[0, G)`` (G = ``w_h.shape[-1] // hidden_size``).
    """
    num_blocks = w_h.shape[-1] // hidden_size

    def dot(a, blocks):
        bad = [g for g in blocks if isinstance(g, bool) or not isinstance(g, int) or not 0 <= g < num_blocks]
        if bad or not blocks:
            raise ValueError(f"dot(a, blocks={tuple(blocks)!r}): every block must be an index in "
                             f"[0, {num_blocks}) (the cell's {num_blocks} blocks), and at least one")
        columns = jnp.concatenate(
            [w_h[:, g * hidden_size:(g + 1) * hidden_size] for g in blocks], axis=-1
        ) if len(blocks) > 1 else w_h[:, blocks[0] * hidden_size:(blocks[0] + 1) * hidden_size]
        return split_blocks(matmul(a, columns, dtype), len(blocks))

    return dot


def _no_dot(a, blocks):
    raise ValueError("this cell has recurrent=False: its step may not call dot")


def abstract_step(definition: CellDef, hidden_size: int, dtype: Any = jnp.float32,
                  make_dot: Optional[Callable[[Carry], Callable]] = None) -> tuple[Carry, Any]:
    """``definition.equations`` traced abstractly (``jax.eval_shape``) on one example of zeros.

    The step gets the zero carry in :func:`carry_dtype`, G arrays ``px [H]``,
    float32 vectors and ``make_dot(carry)`` (default: the reference ``dot`` of a
    zero ``w_h [H, G*H]``). Nothing is computed.

    Returns:
      ``(carry, out)``: the carry it was given and whatever the step returned
      (``jax.ShapeDtypeStruct`` leaves).

    Raises:
      whatever the step raises when traced.
    """
    H, G = hidden_size, definition.num_gates
    carry = jax.eval_shape(lambda: definition.zero_carry(H, carry_dtype(dtype)))
    px = tuple(jax.ShapeDtypeStruct((H,), carry_dtype(dtype)) for _ in range(G))
    vecs = {v.name: jax.ShapeDtypeStruct(vector_shape(v, H), jnp.float32) for v in definition.vectors}

    def run(carry, vecs, px):
        if make_dot is not None:
            dot = make_dot(carry)
        elif definition.recurrent:
            dot = reference_dot(jnp.zeros((H, G * H), jnp.float32), H, dtype)
        else:
            dot = _no_dot
        return definition.equations(dot, vecs, carry, px)

    return carry, jax.eval_shape(run, carry, vecs, px)


def trace_equations(definition: CellDef, hidden_size: int, dtype: Any = jnp.float32) -> StepFacts:
    """:func:`abstract_step` once, with a ``dot`` that records whether it reads the previous ``h``.

    Any failure of the equations is recorded (``StepFacts.error``), not raised:
    :func:`rnnlab.contract.check_cell_step` names it when the cell is run.
    """
    reads = []

    def make_dot(carry):
        h = hidden(carry)
        if not definition.recurrent:
            return _no_dot
        products = reference_dot(jnp.zeros((hidden_size, definition.num_gates * hidden_size), jnp.float32),
                                 hidden_size, dtype)

        def dot(a, blocks):
            reads.append(a is h)
            return products(a, blocks)

        return dot

    try:
        carry, out = abstract_step(definition, hidden_size, dtype, make_dot=make_dot)
    except Exception as e:  # noqa: BLE001 - a user's equations may fail in any way; contract.py reports it
        return StepFacts(None, None, f"{type(e).__name__}: {e}", False)
    return StepFacts(carry, out, None, definition.recurrent and bool(reads) and all(reads))


def build_cell(definition: CellDef, hidden_size: int, *, dtype: Any = jnp.float32,
               options: Optional[Mapping[str, Any]] = None, kernel_init: Any = None,
               recurrent_init: Any = None, param_dtype: Any = None) -> Cell:
    """The :class:`Cell` of pure functions derived from ``definition``.

    Args:
      definition: the cell's equations.
      hidden_size: H.
      dtype: dtype of the matrix products (float32 or bfloat16; float64 for checks).
      options: the options the definition was made with (recorded in
        ``Cell.options`` for configs and weight import).
      kernel_init: ``w_x f32[D, G*H]``'s initializer, drawn on the whole
        matrix: a name of :data:`INITIALIZERS` or ``init(key, shape, dtype)``.
      recurrent_init: the initializer of each ``[H, H]`` gate block of ``w_h``
        (drawn per block with its own key, as Flax's one ``Dense`` per gate).
      param_dtype: the dtype of the params ``init`` returns (float32, bfloat16, float64).
      (Each of the three: ``None`` takes the value in ``options``, else the default
      of :data:`INIT_OPTIONS`, so ``build_cell(cell.definition, H, dtype=cell.dtype,
      options=dict(cell.options))`` rebuilds the same cell. All three are recorded
      in ``Cell.options``.)

    Returns:
      the Cell; its ``definition`` is what every backend runs.

    Raises:
      ValueError: a bad ``hidden_size``, ``dtype`` or ``param_dtype``, an unknown
        initializer name (listing the known ones), or a definition without blocks.
    """
    _check_size("hidden_size", hidden_size)
    dtype = _check_dtype(dtype)
    given = {"kernel_init": kernel_init, "recurrent_init": recurrent_init, "param_dtype": param_dtype}
    init_options = {name: next(v for v in (given[name], (options or {}).get(name), default) if v is not None)
                    for name, default in INIT_OPTIONS.items()}
    init_options["param_dtype"] = _check_dtype(init_options["param_dtype"], "param_dtype").name
    init_fns = [initializer(init_options[name], name) for name in ("kernel_init", "recurrent_init")]
    default_carry_dtype = carry_dtype(dtype)
    if not definition.blocks:
        raise ValueError(f"cell definition {definition.name!r} has no blocks")
    G, H = definition.num_gates, hidden_size
    mm = functools.partial(matmul, dtype=dtype)
    project_fn = definition.project or _standard_project

    def project(params, xs):
        return project_fn(params, xs, mm)

    def activations(params, carry, px):
        dot = reference_dot(params["w_h"], H, dtype) if definition.recurrent else _no_dot
        return definition.equations(dot, vectors_of(definition, params), carry, split_blocks(px, G))

    def recur(params, carry, px):
        new_carry, y, _ = activations(params, carry, px)
        return new_carry, y

    def step(params, carry, x):
        return recur(params, carry, project(params, x))

    def gates(params, carry, x):
        acts = activations(params, carry, project(params, x))[2]
        return {name: acts[name] for name in definition.gate_names}

    def initial_carry(dtype=None):
        return definition.zero_carry(H, default_carry_dtype if dtype is None else dtype)

    recorded = {**(options or {}), **init_options, "dtype": dtype.name}
    return Cell(
        init=functools.partial(_init, definition, H, *init_fns, jnp.dtype(init_options["param_dtype"])),
        initial_carry=initial_carry,
        project=project,
        recur=recur,
        step=step,
        gates=gates,
        hidden_size=H,
        kind=definition.name,
        options=tuple(sorted(recorded.items())),
        definition=definition,
        facts=trace_equations(definition, H, dtype),
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

    return CellDef(name=name, blocks=blocks, gate_names=gate_names, equations=step, vectors=vectors,
                   recurrent=False, project=project, linear=linear)


def sigmoid_grad(s: Array) -> Array:
    """``s * (1 - s)``: the derivative of the sigmoid at its output ``s`` (hand-written backwards)."""
    return s * (1.0 - s)
