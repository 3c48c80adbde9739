"""The search space of :mod:`rnnlab.experiments.search`: parameters and the metric parsed from flag text,
the points a study draws from them (:func:`draw_point`), and its pruner.
"""

from __future__ import annotations

import dataclasses
import math
import re
import zlib
from typing import Any, Optional, Sequence

from rnnlab.extras import optional_import

# ---------------------------------------------------------------------------
# The search space


@dataclasses.dataclass(frozen=True)
class Param:
    """One searched config field.

    Attributes:
      field: dotted config field, e.g. ``"optim.learning_rate"``.
      kind: ``loguniform`` | ``uniform`` | ``intuniform`` | ``choice``.
      args: the bounds ``(low, high)``, or the choices.
    """

    field: str
    kind: str
    args: tuple


KINDS = ("loguniform", "uniform", "intuniform", "choice", "grid")
_SPACE = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*=\s*(\w+)\s*\((.*)\)\s*$")


def grid_text(values: Sequence[Any], field: str = "optim.learning_rate") -> str:
    """``FIELD=grid(v1, v2, ...)``: a grid of ``values`` as :func:`parse_param` reads it back."""
    return f"{field}=grid({', '.join(repr(v) for v in values)})"


def parse_param(text: str) -> Param:
    """``"optim.learning_rate=loguniform(6e-6,2.5e-3)"`` -> :class:`Param`.

    Raises:
      ValueError: not ``field=kind(args)``, an unknown kind (the message lists
        the known ones), or bounds that are not ``low < high`` (positive for
        ``loguniform``).
    """
    import ast

    match = _SPACE.match(text)
    if not match:
        raise ValueError(f"search space {text!r}: expected FIELD=KIND(ARGS), e.g. "
                         "optim.learning_rate=loguniform(6e-6,2.5e-3)")
    field, kind, args_text = match.groups()
    if kind not in KINDS:
        raise ValueError(f"search space {text!r}: unknown kind {kind!r}; known: {', '.join(KINDS)}")
    try:
        args = ast.literal_eval(f"({args_text},)")
    except (ValueError, SyntaxError):  # bare words as choices: choice(gru,lstm)
        args = tuple(a.strip() for a in args_text.split(","))
    if kind in ("choice", "grid"):
        if not args:
            raise ValueError(f"search space {text!r}: {kind}() needs at least one value")
        return Param(field, kind, tuple(args))
    if len(args) != 2 or not all(isinstance(a, (int, float)) for a in args) or not args[0] < args[1]:
        raise ValueError(f"search space {text!r}: {kind} needs two numbers low < high, got {args_text!r}")
    if kind == "loguniform" and args[0] <= 0:
        raise ValueError(f"search space {text!r}: loguniform needs low > 0")
    if kind == "intuniform" and not all(isinstance(a, int) for a in args):
        raise ValueError(f"search space {text!r}: intuniform needs integer bounds")
    return Param(field, kind, tuple(args))


def suggest(trial: Any, param: Param) -> Any:
    """The trial's value of ``param`` (``trial`` an ``optuna.Trial``)."""
    if param.kind in ("choice", "grid"):
        return trial.suggest_categorical(param.field, list(param.args))
    if param.kind == "intuniform":
        return trial.suggest_int(param.field, *param.args)
    return trial.suggest_float(param.field, *param.args, log=param.kind == "loguniform")


@dataclasses.dataclass(frozen=True)
class Metric:
    """The value a search optimises: ``results.json[split][name]``, logged as ``split/name``."""

    split: str
    name: str
    mode: str  # min | max

    @property
    def key(self) -> str:
        return f"{self.split}/{self.name}"

    @property
    def direction(self) -> str:
        return "minimize" if self.mode == "min" else "maximize"


def parse_metric(text: str) -> Metric:
    """``"valid/nll:min"`` -> :class:`Metric`.

    Raises:
      ValueError: not ``split/name:min`` or ``split/name:max``.
    """
    match = re.fullmatch(r"\s*(\w+)/(\w+):(min|max)\s*", text)
    if not match:
        raise ValueError(f"metric {text!r}: expected SPLIT/NAME:min or SPLIT/NAME:max, e.g. valid/nll:min")
    return Metric(*match.groups())


# ---------------------------------------------------------------------------
# Optuna pieces


def grid_of(space: Sequence[Param]) -> Optional[dict[str, list[Any]]]:
    """``{field: values}`` when the space is a grid (every param ``grid(...)``), else None.

    Raises:
      ValueError: ``grid`` params mixed with sampled ones (a grid is run exhaustively; a sampled
        field would make it a different search in every trial).
    """
    kinds = {p.kind == "grid" for p in space}
    if kinds == {True, False}:
        raise ValueError("search space mixes grid(...) with sampled kinds: make every field a grid, or none")
    return {p.field: list(p.args) for p in space} if kinds == {True} else None


def distribution(param: Param):
    """The Optuna distribution of ``param`` (what a trial records for its field)."""
    optuna = optional_import("optuna", "experiments", "searches")

    if param.kind in ("choice", "grid"):
        return optuna.distributions.CategoricalDistribution(list(param.args))
    if param.kind == "intuniform":
        return optuna.distributions.IntDistribution(*param.args)
    return optuna.distributions.FloatDistribution(*param.args, log=param.kind == "loguniform")


def draw_point(space: Sequence[Param], seed: int, index: int) -> dict[str, Any]:
    """Point ``index`` of the study's sample sequence: ``{field: value}``.

    A random field's value depends on (seed, index, field) only (a
    ``RandomSampler`` seeded with them draws it), never on how many trials the
    study holds, so the point keeps its values however often it is retried and
    whichever worker runs it; the same ``--sampler_seed`` gives every cell the
    same points. A grid's point ``index`` is its ``index``-th combination (the
    first field varies slowest).

    Raises:
      IndexError: ``index`` past the end of a grid.
    """
    import itertools

    optuna = optional_import("optuna", "experiments", "searches")

    grid = grid_of(space)
    if grid is not None:
        return dict(zip(grid, list(itertools.product(*grid.values()))[index]))
    point = {}
    for param in space:
        draw_seed = (seed * 1_000_003 + index * 7919 + zlib.crc32(param.field.encode())) % 2**32
        sampler = optuna.samplers.RandomSampler(seed=draw_seed)
        point[param.field] = sampler.sample_independent(None, None, param.field, distribution(param))
    return point


def num_points(space: Sequence[Param], trials: int) -> int:
    """How many points a study of ``trials`` trials runs: ``trials``, or fewer for a smaller grid."""
    grid = grid_of(space)
    return trials if grid is None else min(trials, math.prod(len(v) for v in grid.values()))


def make_pruner(startup_trials: int, warmup_steps: int):
    """``MedianPruner``: stop a trial whose metric is worse than the median of earlier trials at that step.

    Args:
      startup_trials: trials that finish before any pruning.
      warmup_steps: training steps before a trial can be pruned.
    """
    optuna = optional_import("optuna", "experiments", "searches")

    return optuna.pruners.MedianPruner(n_startup_trials=startup_trials, n_warmup_steps=warmup_steps)
