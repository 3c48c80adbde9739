"""Tables of a plan's output: each tuned model over its seeds, and the gate-ablation table.

    python -m rnnlab.report --plan=configs/claims/tuned.py --runs=runs/tuned --out=docs/results/tuned

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

:func:`ablation_table` marks each variant against its intact cell on each task
(:data:`ABLATION_RULE`). :func:`write_tuned_report` writes ``tuned.md``,
``ablation.md``, ``tuned.json`` and figures.
"""

from __future__ import annotations

import glob
import json
import math
import os
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np

from rnnlab.experiments import plan as plan_lib
from rnnlab.experiments import search, sweep
from rnnlab.experiments.plots import plot_seed_bars, plot_trials_vs_param
from rnnlab.experiments.stats import (LEVEL, RunRecord, compare, describe, first_step_reaching,
                                      first_window_overhead, format_ci, load_run, markdown_table, parse_target,
                                      steady_steps_per_sec)
from rnnlab.training.workdir import CONFIG_FILE, RESULTS_FILE, flatten, read_json

LEARNING_RATE = "optim.learning_rate"
CAP_MARK = "*"

ABLATION_RULE = (
    "Each cell: the test metric's mean +- sample std over the seeds, the seeds reaching the task's "
    "success target (k/n; targets in tuned.md), then a mark against the intact "
    "cell of the variant's family on the same task, from the paired difference by seed (the seed runs "
    "of two models with the same seed share the generated data): **breaks** = significantly worse "
    "(the 95% t-interval of the mean paired difference excludes 0) and the variant misses the success "
    "target in >= 2 of 3 seeds (more than half of its seeds); **hurts** = significantly worse but "
    "reaching the target in most seeds; **worse** = significantly worse, the task has no target; "
    "**=** = not separable at 3 seeds (the interval includes 0); **helps** = significantly better. "
    "With 3 seeds the interval is the mean difference +- 4.303 sd / sqrt(3), so only large and "
    "consistent differences separate: '=' is no evidence of equality. 'running' / 'waiting': the "
    "search has not finished / not started."
)


# ---------------------------------------------------------------------------
# Reading a plan's output


def split_name(name: str) -> tuple[str, str]:
    """``"adding100/cell=lstm+fb=3.0"`` -> ``("adding100", "cell=lstm+fb=3.0")``."""
    task, _, model = name.partition("/")
    return task, model or task


def load_targets(plan_path: str) -> dict[str, str]:
    """The plan file's ``TARGETS`` dict (``{}`` if it defines none)."""
    module = sweep.load_module(plan_path)
    return dict(getattr(module, "TARGETS", {}) or {})


def reference_of(item: plan_lib.Search) -> Optional[str]:
    """The search a variant is compared with: the first one it waits for on the same task (or None)."""
    task, _ = split_name(item.name)
    return next((dep for dep in item.after if split_name(dep)[0] == task), None)


def _trials_from_dirs(folder: str, metric: search.Metric) -> list[dict[str, Any]]:
    """Trial records (as in ``search.json``) from ``trials/trial_NNN`` folders, for a search still running.

    A folder with ``results.json`` counts as ``COMPLETE``; others are ``RUNNING`` (running, or
    pruned: only the study knows).
    """
    trials = []
    for workdir in sorted(glob.glob(os.path.join(folder, search.TRIALS_DIR, "trial_*"))):
        config = read_json(os.path.join(workdir, CONFIG_FILE)) if os.path.isfile(
            os.path.join(workdir, CONFIG_FILE)) else {}
        results = read_json(os.path.join(workdir, RESULTS_FILE)) if os.path.isfile(
            os.path.join(workdir, RESULTS_FILE)) else None
        value = results.get(metric.split, {}).get(metric.name) if results else None
        trials.append({"number": int(os.path.basename(workdir).split("_")[-1]),
                       "state": "COMPLETE" if results else "RUNNING",
                       "params": {LEARNING_RATE: config.get("optim", {}).get("learning_rate")},
                       "value": value, "workdir": os.path.relpath(workdir, folder)})
    return trials


def _trial_test_value(folder: str, trial: Mapping[str, Any], key: str) -> Optional[float]:
    """The test metric ``key`` of a trial's run directory (None when it did not finish)."""
    path = os.path.join(folder, trial.get("workdir") or "", RESULTS_FILE)
    if not trial.get("workdir") or not os.path.isfile(path):
        return None
    value = flatten(read_json(path)).get(key)
    return float(value) if isinstance(value, (int, float)) else None


def load_search(out: str, item: plan_lib.Search) -> dict[str, Any]:
    """What the folder ``OUT/<item.name>`` holds now.

    Returns:
      ``{"name", "state": done | failed | running | waiting, "summary": search.json or None,
      "trials": [trial records], "seeds": [RunRecord of best__seedS, by seed]}``.
    """
    folder = os.path.join(out, item.name)
    state = ("done" if plan_lib.is_done(out, item) else "failed" if plan_lib.is_failed(out, item.name)
             else "running" if os.path.isdir(folder) else "waiting")
    path = os.path.join(folder, search.SUMMARY_FILE)
    summary = read_json(path) if os.path.isfile(path) else None
    metric = search.parse_metric(item.metric)
    trials = summary["trials"] if summary else _trials_from_dirs(folder, metric)
    seeds = [load_run(w) for w in glob.glob(os.path.join(folder, f"{search.BEST_NAME}__seed*")) if os.path.isdir(w)]
    return {"name": item.name, "state": state, "summary": summary, "trials": trials,
            "seeds": sorted(seeds, key=lambda r: r.seed)}


# ---------------------------------------------------------------------------
# Per-seed facts


def hit_cap(run: RunRecord) -> bool:
    """Whether a finished run stopped at its step cap rather than by early stopping
    (``config.train.num_steps == results.step`` and not ``stopped_early``)."""
    cap = run.config.get("train", {}).get("num_steps")
    stopped_early = bool(read_json(os.path.join(run.workdir, RESULTS_FILE)).get("stopped_early")) \
        if run.finished else False
    return run.finished and cap is not None and run.results.get("step") == cap and not stopped_early


def step_reaching(run: RunRecord, target: str) -> Optional[int]:
    """The first logged step at which ``run``'s curve meets ``target`` (``"valid/mse<=0.01"``).

    When the curve never does but ``results.json`` (the best-validation parameters) does,
    the run's ``best_step``. None when the run misses the target.
    """
    key, mode, threshold = parse_target(target)
    step = first_step_reaching(run.metrics, key, threshold, mode)
    final = run.results.get(key)
    if step is None and final is not None and (final >= threshold if mode == "max" else final <= threshold):
        step = int(run.results.get("best_step", run.results.get("step", 0)))
    return step


COMPILE_KEYS = ("compilations/seconds", "compile_seconds", "compile_sec")


def recorded_compile_seconds(run: RunRecord) -> Optional[float]:
    """Compilation seconds if ``results.json`` records them (one of :data:`COMPILE_KEYS`), else None."""
    return next((float(run.results[k]) for k in COMPILE_KEYS if k in run.results), None)


def _median(values: Sequence[Optional[float]]) -> Optional[float]:
    finite = [v for v in values if v is not None and not math.isnan(v)]
    return float(np.median(finite)) if finite else None


# ---------------------------------------------------------------------------
# Rows


def model_row(item: plan_lib.Search, record: Mapping[str, Any], target: Optional[str],
              reference: Optional[Mapping[str, Any]] = None, level: float = LEVEL) -> dict[str, Any]:
    """One model's row: parameters, learning rate, trials, the test metric over seeds and more.

    Args:
      item: the plan's search.
      record: :func:`load_search` of it.
      target: the task's success target (``"valid/mse<=0.01"``) or None.
      reference: the row of the search it is compared with (a variant's intact cell), or None.
      level: coverage of the intervals.

    Returns:
      A JSON-ready dict: ``name, task, model, state, metric (test key), mode, params, learning_rate,
      trials {complete, pruned, diverged, running, budget}, test (:func:`describe`: mean, std,
      ci, seeds, values), gen_seed [per seed], best_step [per seed], step [per seed], hit_cap [per seed], target {target, reached
      [per seed step or None], count, n, median_step}, ms_per_step {median, per_seed},
      first_window_s {median, per_seed}, compile_s {median, per_seed} (recorded compile seconds, else
      None), vs_reference (:func:`compare` or None)``.
    """
    task, model = split_name(item.name)
    metric = search.parse_metric(item.metric)
    key = f"test/{metric.name}"
    done = [r for r in record["seeds"] if r.finished]
    summary = record["summary"]
    trials = record["trials"]
    states = [t.get("state") for t in trials]
    lr = (summary or {}).get("best", {}) or {}
    lr = lr.get("params", {}).get(LEARNING_RATE)
    if lr is None and record["seeds"]:
        lr = record["seeds"][0].config.get("optim", {}).get("learning_rate")
    params = sorted({int(r.results["num_params"]) for r in done if "num_params" in r.results})
    reached = [step_reaching(r, target) for r in done] if target else []
    rates = [steady_steps_per_sec(r.metrics) for r in done]
    ms = [1000.0 / v if v and not math.isnan(v) else None for v in rates]
    overhead = [first_window_overhead(r.metrics) for r in done]
    compiled = [recorded_compile_seconds(r) for r in done]
    row = {
        "name": item.name, "task": task, "model": model, "state": record["state"],
        "metric": key, "mode": metric.mode, "reference": reference["name"] if reference else None,
        "params": params[0] if len(params) == 1 else params or None,
        "learning_rate": lr,
        "trials": {"complete": states.count("COMPLETE"), "pruned": states.count("PRUNED"),
                   "diverged": sum(bool(t.get("diverged")) for t in trials),
                   "running": states.count("RUNNING"),
                   "budget": (summary or {}).get("trials_budget", item.trials)},
        "test": describe([r.results.get(key) for r in done], [r.seed for r in done], level),
        "gen_seed": [r.config.get("data", {}).get("gen_seed") for r in done],
        "best_step": [r.results.get("best_step") for r in done],
        "step": [r.results.get("step") for r in done],
        "hit_cap": [hit_cap(r) for r in done],
        "target": {"target": target, "reached": reached, "count": sum(s is not None for s in reached),
                   "n": len(reached), "median_step": _median([s for s in reached if s is not None])},
        "ms_per_step": {"median": _median(ms), "per_seed": ms},
        "first_window_s": {"median": _median(overhead), "per_seed": [None if math.isnan(v) else v for v in overhead]},
        "compile_s": {"median": _median(compiled), "per_seed": compiled},
        "vs_reference": None,
    }
    if reference is not None and row["test"]["n"] and reference["test"]["n"]:
        # runs pair up when both the training seed and the generated data's seed agree
        row["vs_reference"] = compare(row["test"]["values"], reference["test"]["values"],
                                      list(zip(row["test"]["seeds"], row["gen_seed"])),
                                      list(zip(reference["test"]["seeds"], reference["gen_seed"])), level)
    return row


def tuned_tables(plan: Sequence[plan_lib.Search], out: str, targets: Mapping[str, str],
                 level: float = LEVEL) -> dict[str, Any]:
    """Every search of ``plan`` read from ``out``, as rows per task (plan order).

    Args:
      plan: the plan's searches (:func:`rnnlab.experiments.plan.load_plan`).
      out: the plan's output folder.
      targets: ``{task: "METRIC>=VALUE"}``.
      level: coverage of the intervals.

    Returns:
      ``{task: {"metric", "mode", "target", "rows": [model_row ...]}}``.
    """
    by_name = {item.name: item for item in plan}
    rows: dict[str, dict] = {}
    order = sorted(plan, key=lambda item: reference_of(item) is not None)  # references first
    for item in order:
        task, _ = split_name(item.name)
        ref_name = reference_of(item)
        ref_row = rows.get(ref_name) if ref_name in by_name else None
        rows[item.name] = model_row(item, load_search(out, item), targets.get(task), ref_row, level)
    tasks: dict[str, dict] = {}
    for item in plan:
        task, _ = split_name(item.name)
        metric = search.parse_metric(item.metric)
        entry = tasks.setdefault(task, {"metric": f"test/{metric.name}", "mode": metric.mode,
                                        "target": targets.get(task), "rows": []})
        entry["rows"].append(rows[item.name])
    return tasks


# ---------------------------------------------------------------------------
# Formatting


def _digits_fmt(mode: str):
    """Accuracies (max) with 3 decimals; losses (min, e.g. mse near 0) with 3 significant digits."""
    return (lambda v: f"{v:.3f}") if mode == "max" else (lambda v: f"{v:.3g}")


def format_stats(stats: Mapping[str, Any], mode: str, ci: bool = True) -> str:
    """``"0.912 +- 0.004 [0.902, 0.922]"`` (losses in 3 significant digits; ``"-"`` without values)."""
    if not stats["n"]:
        return "-"
    fmt = _digits_fmt(mode)
    text = f"{fmt(stats['mean'])} +- {fmt(stats['std'])}"
    low, high = stats["ci"]
    if ci and not math.isnan(low):
        text += f" [{fmt(low)}, {fmt(high)}]"
    return text


def format_comparison(result: Optional[Mapping[str, Any]], mode: str) -> str:
    """``"-0.012 [-0.03, 0.006] p=0.12 (paired)"`` or ``"-"``."""
    if not result or math.isnan(result["diff"]):
        return "-"
    fmt = _digits_fmt(mode)
    low, high = result["ci"]
    return f"{fmt(result['diff'])} [{fmt(low)}, {fmt(high)}] p={result['p']:.2g} ({result['test']})"


def _lr_text(lr: Any) -> str:
    return f"{lr:.3g}" if isinstance(lr, (int, float)) else "-"


def _trials_text(trials: Mapping[str, Any], state: str) -> str:
    if state == "waiting":
        return "-"
    text = f"{trials['complete']}/{trials['pruned']} of {trials['budget']}"
    if trials["diverged"]:
        text += f" ({trials['diverged']} diverged)"
    if trials["running"] and state != "done":
        text += f", {trials['running']} running or pruned"  # without search.json, only the study knows
    return text


def _seed_values_text(row: Mapping[str, Any]) -> str:
    fmt = _digits_fmt(row["mode"])
    return ", ".join(f"{s}: {fmt(v)}" if v is not None else f"{s}: -"
                     for s, v in zip(row["test"]["seeds"], row["test"]["values"])) or "-"


def _best_step_text(row: Mapping[str, Any]) -> str:
    return ", ".join(f"{b}{CAP_MARK if cap else ''}" for b, cap in zip(row["best_step"], row["hit_cap"])) or "-"


def _target_text(row: Mapping[str, Any]) -> str:
    t = row["target"]
    if not t["target"] or not t["n"]:
        return "-"
    median = f" @ {t['median_step']:.0f}" if t["median_step"] is not None else ""
    return f"{t['count']}/{t['n']}{median}"


def _time_text(row: Mapping[str, Any]) -> str:
    ms, first = row["ms_per_step"]["median"], row["first_window_s"]["median"]
    compiled = row["compile_s"]["median"]
    if ms is None:
        return "-"
    if compiled is not None:
        return f"{ms:.1f} (compile {compiled:.0f})"
    return f"{ms:.1f}" + (f" ({first:.0f})" if first is not None else "")


def tuned_markdown(tasks: Mapping[str, Any], level: float = LEVEL) -> str:
    """``tuned.md``: one table per task (rows from :func:`tuned_tables`) and the legend."""
    pct = f"{level:.0%}"
    lines = [
        "# Tuned models\n",
        f"Each model's learning rate chosen on validation (trials: completed/pruned of the budget), then "
        f"trained with seeds 1-3 (data drawn with `gen_seed` = seed). Test metric: mean +- sample std "
        f"[{pct} t-interval of the mean] over the seeds, and each seed's value. *best step*: the step of "
        f"the best validation (the reported parameters) per seed; `{CAP_MARK}` = the run stopped at the "
        "step cap, not by early stopping (validation still improving: more steps could help). *target*: "
        "seeds whose validation curve reaches the task's success target @ the median first step at which "
        "they do. *ms/step*: training time per step after compilation (median over seeds of each run's "
        "median log window after the first; the machine ran two lanes at once, so compare within a "
        "table with care), in brackets the first log window's extra seconds over the steady speed (an "
        "estimate of compilation and start-up; `compile N` where the run records its compile seconds). "
        f"*vs reference*: a variant minus its intact cell: difference of means [{pct} CI], p "
        "(paired by seed when they share seeds, else Welch).\n",
    ]
    for task, entry in tasks.items():
        target = f"; target `{entry['target']}`" if entry["target"] else ""
        better = "higher" if entry["mode"] == "max" else "lower"
        lines.append(f"\n## {task}\n\n`{entry['metric']}` ({better} is better{target})\n")
        header = ["model", "state", "params", "learning rate", "trials", f"{entry['metric']}", "per seed",
                  "best step", "target", "ms/step (first s)", "vs reference"]
        rows = [[row["model"], row["state"], row["params"] if row["params"] is not None else "-",
                 _lr_text(row["learning_rate"]), _trials_text(row["trials"], row["state"]),
                 format_stats(row["test"], row["mode"]), _seed_values_text(row), _best_step_text(row),
                 _target_text(row), _time_text(row), format_comparison(row["vs_reference"], row["mode"])]
                for row in entry["rows"]]
        lines.append(markdown_table(header, rows))
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# The gate-ablation table


def ablation_mark(row: Mapping[str, Any]) -> str:
    """``breaks`` | ``hurts`` | ``worse`` | ``=`` | ``helps`` for a variant's row (:data:`ABLATION_RULE`);
    ``running`` / ``waiting`` / ``failed`` while it is not done, ``-`` without a comparison."""
    if row["state"] != "done":
        return row["state"]
    result = row["vs_reference"]
    if not result or math.isnan(result["diff"]):
        return "-"
    if not result["separable"]:
        return "="
    better = result["diff"] > 0 if row["mode"] == "max" else result["diff"] < 0
    if better:
        return "helps"
    target = row["target"]
    if not target["target"] or not target["n"]:
        return "worse"
    misses = target["n"] - target["count"]
    return "breaks" if 2 * misses > target["n"] else "hurts"


def ablation_table(plan: Sequence[plan_lib.Search], tasks: Mapping[str, Any]) -> dict[str, Any]:
    """Rows = each reference cell (``cell=lstm``, ``cell=gru``) and its variants; columns = the
    tasks the variants run on.

    Args:
      plan: the plan's searches; a variant is a search with a reference (:func:`reference_of`).
      tasks: :func:`tuned_tables`'s output.

    Returns:
      ``{"tasks": [task], "rows": [{"model", "reference" (model or None), "cells": {task:
      {"mark", "test" (describe), "vs_reference", "target"}}}], "rule"}``.
    """
    rows_by_name = {row["name"]: row for entry in tasks.values() for row in entry["rows"]}
    variants = [item for item in plan if reference_of(item)]
    columns = list(dict.fromkeys(split_name(item.name)[0] for item in variants))
    order: list[tuple[str, Optional[str]]] = []  # (model, reference model)
    for item in variants:
        ref_model = split_name(reference_of(item))[1]
        if (ref_model, None) not in order:
            order.append((ref_model, None))
        if (split_name(item.name)[1], ref_model) not in order:
            order.append((split_name(item.name)[1], ref_model))
    families = [model for model, ref in order if ref is None]
    order.sort(key=lambda m: families.index(m[1] or m[0]))  # each family's block: its cell, then variants
    table_rows = []
    for model, ref_model in order:
        cells = {}
        for task in columns:
            row = rows_by_name.get(f"{task}/{model}")
            if row is None:
                continue
            cells[task] = {"mark": "ref" if ref_model is None else ablation_mark(row),
                           "state": row["state"], "test": row["test"], "vs_reference": row["vs_reference"],
                           "target": row["target"]}
        table_rows.append({"model": model, "reference": ref_model, "cells": cells})
    return {"tasks": columns, "metrics": {t: tasks[t]["metric"] for t in columns if t in tasks},
            "rows": table_rows, "rule": ABLATION_RULE}


def ablation_markdown(table: Mapping[str, Any], tasks: Mapping[str, Any]) -> str:
    """``ablation.md``: the table of :func:`ablation_table`, the rule printed under it."""
    header = ["variant"] + [f"{t} (`{table['metrics'].get(t, '')}`)" for t in table["tasks"]]
    rows = []
    for row in table["rows"]:
        name = row["model"] + (" (intact)" if row["reference"] is None else "")
        line = [name]
        for task in table["tasks"]:
            cell = row["cells"].get(task)
            if cell is None:
                line.append("-")
                continue
            mode = tasks[task]["mode"]
            value = format_stats(cell["test"], mode, ci=False)
            target = cell["target"]
            if value != "-" and target["target"] and target["n"]:
                value += f", {target['count']}/{target['n']}"
            mark = cell["mark"]
            if mark == "ref" and cell["state"] != "done":
                mark = cell["state"]
            if mark == "ref":
                line.append(value)
            elif mark in ("running", "waiting", "failed"):
                line.append(mark if value == "-" else f"{value} ({mark})")
            else:
                line.append(f"{value} **{mark}**")
        rows.append(line)
    return "# Gate ablations\n\n" + markdown_table(header, rows) + "\n" + table["rule"] + "\n"


# ---------------------------------------------------------------------------
# The report


def _jsonable(value: Any) -> Any:
    """NaN and infinities as None (strict JSON), numpy scalars as Python numbers, RunRecords dropped."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
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
    """Writes ``tuned.md``, ``ablation.md``, ``tuned.json`` and figures for a plan's output.

    Args:
      plan_path: the plan file (``configs/claims/tuned.py``).
      runs: its output folder (``runs/tuned``), partly written while the plan runs.
      out: the report folder (``docs/results/tuned``).
      level: coverage of the intervals.
      figures: also write ``seeds.png`` (test metric per model with per-seed dots) and
        ``trials_lr.png`` (each trial's validation metric against its learning rate).

    Returns:
      ``{"tasks", "ablation", "markdown", "figures": [paths]}``.
    """
    plan = plan_lib.load_plan(plan_path)
    targets = load_targets(plan_path)
    tasks = tuned_tables(plan, runs, targets, level)
    ablation = ablation_table(plan, tasks)
    md = tuned_markdown(tasks, level)
    ablation_md = ablation_markdown(ablation, tasks)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "tuned.md"), "w") as f:
        f.write(md)
    with open(os.path.join(out, "ablation.md"), "w") as f:
        f.write(ablation_md)
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
            plot_trials_vs_param(trials, paths[-1], {t: metric_names[t].replace("test/", "valid/") for t in trials},
                                 logy={t: modes[t] == "min" for t in trials})
    data = {"plan": plan_path, "runs": runs, "level": level, "targets": targets, "tasks": tasks,
            "ablation": ablation, "figures": [os.path.basename(p) for p in paths]}
    with open(os.path.join(out, "tuned.json"), "w") as f:
        json.dump(_jsonable(data), f, indent=1)
    return {"tasks": tasks, "ablation": ablation, "markdown": md + "\n" + ablation_md, "figures": paths}
