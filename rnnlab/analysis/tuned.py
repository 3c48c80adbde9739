"""Tables of a plan's output: each tuned model over its seeds.

    python -m rnnlab report --plan=my_plan.py --runs=runs/my_plan --out=reports/my_plan

A plan (:mod:`rnnlab.experiments.plan`) is a list of searches named ``task/model``;
each search folder holds ``search.json`` (written when the search and its seed
runs end; see :func:`rnnlab.experiments.search.summarize`), ``trials/trial_NNN``
and ``best__seedS`` run directories. :func:`tuned_tables` reads them (also while
the plan runs: a search without ``search.json`` shows what its folders hold and
is marked ``running``) and gives, per task, one row per model:

- parameters (``results.json`` ``num_params``), the chosen learning rate, the
  trials completed / pruned of the budget;
- the test metric (the split the search chose on, read on ``test``) as mean +-
  sample std [95% t-interval] over the seeds, and each seed's value;
- each seed's ``best_step``, marked when the run stopped at the step cap instead
  of going flat (``train.num_steps == step`` and not ``stopped_early``: more steps
  could still help);
- the seeds reaching the task's success target on their validation curve and the
  median first step at which they do (targets: the plan file's ``TARGETS`` dict,
  ``{task: "METRIC>=VALUE" | "METRIC<=VALUE"}`` on the validation curve; a task
  without one gets no target column);
- training time per step after compilation (median of the log windows after the
  first) and the first window's extra seconds (compilation and start-up);
- for a search that waits for another of the same task (a gate variant tuned
  around its family's cell), the difference to that reference: mean difference
  [95% CI] and p, paired by seed (seed runs with equal seeds share the generated
  data, ``gen_seed = seed``).

:func:`write_tuned_report` writes ``tuned.md``, ``tuned.json`` and figures. The rows
live in :mod:`rnnlab.analysis.tuned_rows`, their text in :mod:`rnnlab.analysis.tuned_markdown`.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any, Mapping, Sequence

import numpy as np

from rnnlab.analysis.plots import plot_seed_bars, plot_trials_vs_param
from rnnlab.analysis.significance import LEVEL
from rnnlab.analysis.tuned_markdown import tuned_markdown
from rnnlab.analysis.tuned_rows import LEARNING_RATE, load_search, load_targets, split_name, tuned_tables
from rnnlab.experiments import plan as plan_lib


# ---------------------------------------------------------------------------
# The report


def jsonable(value: Any) -> Any:
    """NaN and infinities as None (strict JSON), numpy scalars as Python numbers, RunRecords dropped."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _figure_data(plan: Sequence[plan_lib.Search], out: str, tasks: Mapping[str, Any]):
    """Per task ``{model: (seeds int[S], values f[S])}`` and ``{model: trials [(lr, valid, complete?)],
    seeds [(lr, test)]}`` for the figures."""
    bars, trials = {}, {}
    for item in plan:
        task, model = split_name(item.name)
        row = next(r for r in tasks[task]["rows"] if r["name"] == item.name)
        pairs = [(s, v) for s, v in zip(row["test"]["seeds"], row["test"]["values"]) if v is not None]
        if pairs:
            bars.setdefault(task, {})[model] = np.asarray([v for _, v in pairs], np.float64)
        record = load_search(out, item)
        points = [(t["params"].get(LEARNING_RATE), t.get("value") if t.get("value") is not None
                   else t.get("last_reported"), t.get("state") == "COMPLETE") for t in record["trials"]]
        points = [p for p in points if p[0] is not None and p[1] is not None]
        if points:
            seeds = [(row["learning_rate"], v) for _, v in pairs if row["learning_rate"] is not None]
            trials.setdefault(task, {})[model] = {"trials": points, "seeds": seeds}
    return bars, trials


def write_tuned_report(plan_path: str, runs: str, out: str, level: float = LEVEL,
                       figures: bool = True) -> dict[str, Any]:
    """Writes ``tuned.md``, ``tuned.json`` and figures for a plan's output.

    Args:
      plan_path: the plan file (``my_plan.py``).
      runs: its output folder (``runs/tuned``), partly written while the plan runs.
      out: the report folder (``docs/results/tuned``).
      level: coverage of the intervals.
      figures: also write ``seeds.png`` (test metric per model with per-seed dots) and
        ``trials_lr.png`` (each trial's validation metric against its learning rate).

    Returns:
      ``{"tasks", "markdown", "figures": [paths]}``.
    """
    plan = plan_lib.load_plan(plan_path)
    targets = load_targets(plan_path)
    tasks = tuned_tables(plan, runs, targets, level)
    md = tuned_markdown(tasks, level)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "tuned.md"), "w") as f:
        f.write(md)
    paths = []
    if figures:
        bars, trials = _figure_data(plan, runs, tasks)
        modes = {t: e["mode"] for t, e in tasks.items()}
        metric_names = {t: e["metric"] for t, e in tasks.items()}
        if bars:
            paths.append(os.path.join(out, "seeds.png"))
            plot_seed_bars(bars, paths[-1], metric_names, logy={t: modes[t] == "min" for t in bars}, level=level)
        if trials:
            paths.append(os.path.join(out, "trials_lr.png"))
            plot_trials_vs_param(trials, paths[-1], {t: metric_names[t].split("/", 1)[-1] for t in trials},
                                 logy={t: modes[t] == "min" for t in trials})
    data = {"plan": plan_path, "runs": runs, "level": level, "targets": targets, "tasks": tasks,
            "figures": [os.path.basename(p) for p in paths]}
    with open(os.path.join(out, "tuned.json"), "w") as f:
        json.dump(jsonable(data), f, indent=1)
    return {"tasks": tasks, "markdown": md, "figures": paths}
