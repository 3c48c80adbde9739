"""The registry of named cells: ``get_cell(name, H, **options)``, and the library's cells registered."""

from __future__ import annotations

import inspect
from typing import Any, Callable

import jax.numpy as jnp

from rnnlab.cells.core import INIT_OPTIONS, Cell, CellDef, build_cell
from rnnlab.cells.gru import gru, gru_def, mgu
from rnnlab.cells.layer_norm import layer_norm_lstm_def
from rnnlab.cells.lstm import lstm, lstm_def
from rnnlab.cells.minimal import min_gru_def, min_lstm_def
from rnnlab.cells.simple import tanh_rnn


def _constructor(make_def: Callable[..., CellDef], doc_name: str, **fixed: Any) -> Callable[..., Cell]:
    """``constructor(hidden_size, *, dtype, **options) -> Cell`` for a definition factory."""

    def constructor(hidden_size: int, *, dtype: Any = jnp.float32, kernel_init: Any = None,
                    recurrent_init: Any = None, param_dtype: Any = None, **options: Any) -> Cell:
        options = {**fixed, **options}
        return build_cell(make_def(**options), hidden_size, dtype=dtype, options=options, kernel_init=kernel_init,
                          recurrent_init=recurrent_init, param_dtype=param_dtype)

    free = [p for name, p in inspect.signature(make_def).parameters.items() if name not in fixed]
    keyword = inspect.Parameter.KEYWORD_ONLY
    constructor.__signature__ = inspect.Signature(
        [inspect.Parameter("hidden_size", inspect.Parameter.POSITIONAL_OR_KEYWORD),
         inspect.Parameter("dtype", keyword, default=jnp.float32)]
        + [inspect.Parameter(name, keyword, default=None) for name in INIT_OPTIONS]
        + [p.replace(kind=keyword) for p in free])
    constructor.__name__ = doc_name
    constructor.__doc__ = (
        f"``{doc_name}(hidden_size, *, dtype=float32, kernel_init=None, recurrent_init=None, "
        f"param_dtype=None, **options) -> Cell``: builds "
        f"``{make_def.__name__}(**options)`` (fixed options: {fixed or 'none'}).\n\n"
        + (make_def.__doc__ or "")
    )
    return constructor


_REGISTRY: dict[str, Callable[..., Cell]] = {}


def register_cell(name: str, constructor: Callable[..., Cell], *, replace: bool = False) -> None:
    """Makes ``get_cell(name, H, **options)`` (and ``config.model.cell=name``) build a cell.

    Args:
      name: the cell's name.
      constructor: ``constructor(hidden_size, **options) -> Cell``, e.g.
        ``lambda hidden_size, **o: rnnlab.build_cell(my_def, hidden_size, **o)``.
      replace: allow replacing a registered name.

    Raises:
      ValueError: the name is taken by another constructor (and ``replace`` is
        False) or not a string. The same constructor again (:func:`same_definition`)
        replaces it silently.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"a cell name must be a non-empty string, got {name!r}")
    if name in _REGISTRY and not replace and not same_definition(_REGISTRY[name], constructor):
        raise ValueError(f"cell {name!r} is already registered by {_REGISTRY[name].__module__}."
                         f"{getattr(_REGISTRY[name], '__qualname__', '?')} (pass replace=True to replace it)")
    _REGISTRY[name] = constructor


def same_definition(old: Any, new: Any) -> bool:
    """Whether ``new`` is ``old`` or the same definition run again (same module and qualified name, not a lambda).

    Registering it again is then no error: a notebook cell re-run, a plugin
    imported both by a user's launcher and by ``config.plugins``.
    """
    if old is new:
        return True
    name = getattr(new, "__qualname__", "<lambda>")
    return "<lambda>" not in name and (getattr(old, "__module__", None), getattr(old, "__qualname__", None)) == (
        getattr(new, "__module__", None), name)


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
    "mgu": mgu,
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
    """The keyword options of a registered cell's constructor (besides ``hidden_size``, ``dtype`` and the
    init-side options every constructor takes: ``kernel_init``, ``recurrent_init``, ``param_dtype``).

    Raises:
      ValueError: the name is unknown.
    """
    if name not in _REGISTRY:
        raise ValueError(f"unknown cell {name!r}; known cells: {', '.join(cell_names())}")
    parameters = inspect.signature(_REGISTRY[name]).parameters.values()
    return tuple(p.name for p in parameters if p.name not in ("hidden_size", "dtype", *INIT_OPTIONS)
                 and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))


def cell_names() -> tuple[str, ...]:
    """The names :func:`get_cell` knows, sorted."""
    return tuple(sorted(_REGISTRY))
