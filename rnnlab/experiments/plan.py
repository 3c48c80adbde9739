"""A study as a list of searches, run resumably in parallel lanes: ``python -m rnnlab plan``.

    python -m rnnlab plan my_plan.py --out=runs/my_plan --lane=0 --lanes=2 &
    python -m rnnlab plan my_plan.py --out=runs/my_plan --lane=1 --lanes=2 &

A plan file defines ``get_plan() -> list[Search]``. Each :class:`Search` is
one :func:`rnnlab.experiments.search.search_and_rerun` (trials of a search
space on validation, then the best config with new seeds) into
``OUT/<name>``. A search may wait for others (``after``) and take its space
from their results (:func:`around`: a grid of learning rates around another
search's best), which is how a cell's variants are tuned around the cell's own
search, or :func:`bracket` (a grid search's best, extended past the grid's edge
when it lies there).

Lane ``i`` of ``n`` runs the searches at positions ``i, i+n, i+2n, ...``, in
order; a search whose dependencies are not done yet (in another lane) waits
while the lane goes on with its next one. Everything resumes: a finished
search is skipped, an interrupted one continues (see :mod:`search`).
``--dry_run`` prints each search's state.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any, Callable, Sequence, Union

from absl import logging

from rnnlab.experiments import search, sweep
from rnnlab.experiments import search_trials
from rnnlab.experiments import search_space
from rnnlab.training.workdir import read_json

Space = Union[str, Callable[[str], str]]
FAILED_FILE = "FAILED"


@dataclasses.dataclass(frozen=True)
class Search:
    """One search of a plan.

    Attributes:
      name: its folder under the plan's ``--out`` (may contain ``/``).
      config: ``path[:variants]`` as ``launch.py --config`` takes it.
      metric: ``split/name:min|max`` that the trials are chosen on.
      space: ``FIELD=KIND(ARGS)`` (see :func:`search_space.parse_param`), or a function
        of the plan's output folder returning one (read when the search starts).
      trials: the study's budget of completed + pruned trials.
      seeds: reruns of the best config with new seeds.
      warmup_steps, startup_trials: the pruner's (:func:`search_space.make_pruner`).
      vary_data_seed: seed runs draw new generated data (:func:`search.run_seeds`).
      after: names of searches that must be done first.
    """

    name: str
    config: str
    metric: str
    space: Space
    trials: int
    seeds: int = 3
    warmup_steps: int = 0
    startup_trials: int = 2
    vary_data_seed: bool = True
    after: tuple[str, ...] = ()


def best_params(out: str, name: str) -> dict[str, Any]:
    """The best trial's values of the search ``OUT/<name>`` (from its ``search.json``)."""
    summary = read_json(os.path.join(out, name, search.SUMMARY_FILE))
    if not summary.get("best"):
        raise ValueError(f"search {name!r} in {out} has no completed trial")
    return summary["best"]["params"]


def around(name: str, factors: Sequence[float] = (1 / 3, 1.0, 3.0),
           field: str = "optim.learning_rate") -> Callable[[str], str]:
    """A space function: ``FIELD=grid(best*f for f in factors)`` around search ``name``'s best value."""

    def space(out: str) -> str:
        best = float(best_params(out, name)[field])
        return search_space.grid_text([best * f for f in factors], field)

    space.__name__ = f"around({name!r}, {tuple(factors)!r})"
    return space


def bracket_values(best: float, grid: Sequence[float], factor: float = 3.0) -> tuple[float, ...]:
    """The values :func:`bracket` tries after a grid whose best is ``best``: ``(best,)`` inside the
    grid, ``(best, best*factor, best*factor**2)`` at its top, ``(best/factor**2, best/factor, best)``
    at its bottom."""
    if best >= max(grid):
        return (best, best * factor, best * factor ** 2)
    if best <= min(grid):
        return (best / factor ** 2, best / factor, best)
    return (best,)


def bracket(name: str, grid: Sequence[float], factor: float = 3.0,
            field: str = "optim.learning_rate") -> Callable[[str], str]:
    """A space function that makes sure the chosen value lies inside the values tried.

    Reads the best value of search ``name`` (which ran ``grid``). Inside the grid, the space is that
    value alone (``grid(best)``: the search reruns it, deterministically, and its seeds follow). At the
    grid's top (bottom) edge it is ``grid(best, best*factor, best*factor**2)`` (divided for the bottom):
    the optimum may lie beyond the edge, so two more values are tried there and the best of the three
    is chosen. Use it after a search with ``seeds=0``.
    """

    def space(out: str) -> str:
        return search_space.grid_text(bracket_values(float(best_params(out, name)[field]), grid, factor), field)

    space.__name__ = f"bracket({name!r}, {tuple(grid)!r}, {factor!r})"
    return space


def is_done(out: str, item: Search) -> bool:
    """True once ``OUT/<name>/search.json`` records a best trial and every seed run finished."""
    path = os.path.join(out, item.name, search.SUMMARY_FILE)
    if not os.path.isfile(path):
        return False
    summary = read_json(path)
    seeds = summary.get("seeds", [])
    return bool(summary.get("best")) and len(seeds) >= item.seeds and all(s["results"] for s in seeds)


def spec_of(out: str, item: Search) -> search.SearchSpec:
    """The :class:`search.SearchSpec` of ``item`` (its space read now, if it is a function)."""
    space = item.space(out) if callable(item.space) else item.space
    return search.SearchSpec(item.config, (search_space.parse_param(space),), search_space.parse_metric(item.metric),
                             item.trials, os.path.join(out, item.name))


def load_plan(path: str) -> list[Search]:
    """``get_plan()`` of a plan file; names must be unique, dependencies must exist and form no cycle.

    Raises:
      ValueError: a file without ``get_plan()``, duplicate names, unknown dependencies, or a cycle
        of ``after`` (the message names it, e.g. ``a -> b -> a``).
    """
    module = sweep.load_module(path)
    if not hasattr(module, "get_plan"):
        raise ValueError(f"plan file {path!r} defines no get_plan()")
    plan = list(module.get_plan())
    names = [item.name for item in plan]
    if len(set(names)) != len(names):
        raise ValueError(f"plan {path!r} has duplicate search names")
    missing = {dep for item in plan for dep in item.after} - set(names)
    if missing:
        raise ValueError(f"plan {path!r}: unknown dependencies {sorted(missing)}")
    cycle = find_cycle({item.name: item.after for item in plan})
    if cycle:
        raise ValueError(f"plan {path!r}: the searches wait for each other in a cycle, "
                         f"{' -> '.join(cycle)} (their `after` lists): none could ever start")
    return plan


def find_cycle(after: dict[str, Sequence[str]]) -> list[str]:
    """A cycle of the dependency graph ``{name: names it waits for}`` as ``[a, b, ..., a]``; ``[]`` if none.

    A search that waits for itself is a cycle ``[a, a]``.
    """
    state: dict[str, str] = {}  # "open" while on the current path, "done" after

    def visit(name: str, path: list[str]) -> list[str]:
        state[name] = "open"
        for dep in after.get(name, ()):
            if state.get(dep) == "open":
                return path[path.index(dep):] + [name, dep] if dep != name else [name, name]
            if dep not in state:
                found = visit(dep, path + [name])
                if found:
                    return found
        state[name] = "done"
        return []

    for name in after:
        if name not in state:
            found = visit(name, [])
            if found:
                return found
    return []


def run_item(out: str, item: Search, **search_options) -> bool:
    """Runs one search and its seeds; False (logged) if it failed, so the lane goes on."""
    spec = spec_of(out, item)
    logging.info("plan: search %s (%s, %s)", item.name, item.config, spec.space[0])
    try:
        search.search_and_rerun(spec, item.seeds, vary_data_seed=item.vary_data_seed,
                                startup_trials=item.startup_trials, warmup_steps=item.warmup_steps,
                                **search_options)
    except (RuntimeError, search.SearchError, search_trials.StudyError) as e:  # no answer, a bad spec, a bad study
        logging.error("plan: search %s failed: %s", item.name, e)
        with open(os.path.join(out, item.name, FAILED_FILE), "w") as f:  # dependants in other lanes give up
            f.write(f"{e}\n")
        return False
    return True


def is_failed(out: str, name: str) -> bool:
    """True if the last attempt of search ``name`` failed (a rerun of the plan tries it again)."""
    return os.path.isfile(os.path.join(out, name, FAILED_FILE))


def run_lane(plan: Sequence[Search], out: str, lane: int = 0, lanes: int = 1, poll: float = 30.0,
             **search_options) -> list[str]:
    """Runs lane ``lane`` of ``lanes`` until each of its searches is done or failed.

    Returns:
      The names of the searches that failed (the rest are done).
    """
    if not 0 <= lane < lanes:
        raise ValueError(f"lane {lane} is not in 0..{lanes - 1}")
    by_name = {item.name: item for item in plan}
    pending = [item for i, item in enumerate(plan) if i % lanes == lane]
    for item in pending:  # a new attempt: forget earlier failures of this lane's searches
        if is_failed(out, item.name):
            os.remove(os.path.join(out, item.name, FAILED_FILE))
    failed: list[str] = []
    while pending:
        blocked = [item for item in pending
                   if any(dep in failed or is_failed(out, dep) for dep in item.after)]
        for item in blocked:  # a dependency failed: its dependants cannot run
            logging.error("plan: search %s skipped: a search it needs failed", item.name)
            pending.remove(item)
            failed.append(item.name)
        ready = [item for item in pending if all(is_done(out, by_name[dep]) for dep in item.after)]
        if not ready:
            if pending:
                time.sleep(poll)  # waiting for another lane
            continue
        item = ready[0]
        pending.remove(item)
        if not is_done(out, item) and not run_item(out, item, **search_options):
            failed.append(item.name)
    return failed


def status(plan: Sequence[Search], out: str) -> list[tuple[str, str]]:
    """``(name, "done" | "failed" | "started" | "waiting")`` per search."""
    rows = []
    for item in plan:
        state = "done" if is_done(out, item) else "failed" if is_failed(out, item.name) else (
            "started" if os.path.isdir(os.path.join(out, item.name)) else "waiting")
        rows.append((item.name, state))
    return rows
