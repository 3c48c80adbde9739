"""The rows of the tuned report (:mod:`rnnlab.analysis.tuned`): each search of a plan read from its
folders, its seed runs measured (step cap, target reached, compile time), one row per model and task.
"""

from __future__ import annotations

import glob
import math
import os
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from rnnlab.experiments import plan as plan_lib
from rnnlab.experiments import search, sweep
from rnnlab.experiments import search_trials
from rnnlab.experiments import search_space
from rnnlab.analysis.stats import RunRecord, first_step_reaching, first_window_overhead, load_run, parse_target, steady_steps_per_sec
from rnnlab.analysis.significance import LEVEL, compare, describe
from rnnlab.training.workdir import CONFIG_FILE, RESULTS_FILE, flatten, read_json

LEARNING_RATE = "optim.learning_rate"
CAP_MARK = "*"

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


def _trials_from_dirs(folder: str, metric: search_space.Metric) -> list[dict[str, Any]]:
    """Trial records (as in ``search.json``) from ``trials/trial_NNN`` folders, for a search still running.

    A folder with ``results.json`` counts as ``COMPLETE``; others are ``RUNNING`` (running, or
    pruned: only the study knows).
    """
    trials = []
    for workdir in sorted(glob.glob(os.path.join(folder, search_trials.TRIALS_DIR, "trial_*"))):
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
    metric = search_space.parse_metric(item.metric)
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
      ci, seeds, values), failed_seeds [the seeds whose run stopped with an error: of a failed search, those
      with a workdir and no results], gen_seed [per seed], best_step [per seed], step [per seed], hit_cap [per
      seed], target {target, reached
      [per seed step or None], count, n, median_step}, ms_per_step {median, per_seed},
      first_window_s {median, per_seed}, compile_s {median, per_seed} (recorded compile seconds, else
      None), vs_reference (:func:`compare` or None)``.
    """
    task, model = split_name(item.name)
    metric = search_space.parse_metric(item.metric)
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
    failed = [r.seed for r in record["seeds"] if not r.finished] if record["state"] == "failed" else []
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
        "failed_seeds": failed,  # record["seeds"] is sorted by seed
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
        metric = search_space.parse_metric(item.metric)
        entry = tasks.setdefault(task, {"metric": f"test/{metric.name}", "mode": metric.mode,
                                        "target": targets.get(task), "rows": []})
        entry["rows"].append(rows[item.name])
    return tasks
