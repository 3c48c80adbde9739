"""Hyperparameter search on Optuna, each trial a normal run in its own workdir; then seeds of the best.

    python -m rnnlab search configs/music.py:dataset=jsb,cell=gru,paper --trials=10 \\
        --space='optim.learning_rate=loguniform(6e-6,2.5e-3)' --metric=valid/nll:min \\
        --seeds=3 --out=runs/music/jsb-gru-paper

The study (random sampling, seeded, so the same command samples the same
values) lives in ``OUT/study.db`` (SQLite) unless ``--storage`` gives another
database URL; every process started with the same ``--out`` / ``--storage``
and ``--study`` works on the same study, so a search resumes where it stopped
and several worker processes (or machines, with a shared database) split the
trials. The study never runs more than ``--trials`` trials in total, counting
completed and pruned ones: a worker stops when the budget is taken.

Trial ``n`` trains ``OUT/trials/trial_NNN`` with ``python -m rnnlab launch``
in a child process (``--config.FIELD=VALUE`` for the sampled values). The
worker reads the child's ``metrics.jsonl`` as it grows, reports each
evaluation of ``--metric`` to Optuna, and when the pruner says so sends the
child SIGTERM (it saves a checkpoint and stops) and marks the trial pruned. A
trial whose loss became NaN is marked pruned too (with ``diverged`` in its user
attributes): it counts as one of the samples, as in the paper's search. The
trial's value is ``results.json[split][name]``: with early stopping, the
best-validation parameters' value. The best trial has the best value; trials
tied on it go to the lower ``results.json[split]["loss"]`` (:func:`best_trial`).

Interrupting a worker (SIGTERM / Ctrl-C) stops its child at a checkpoint and
queues the trial again with the same values; a worker killed outright leaves a
trial whose heartbeat stops, and the next worker queues it again once
``--grace_period`` has passed. Either way the retried trial trains in the
original trial's workdir and resumes from its checkpoint.

``--seeds=K`` then trains the best trial's config with seeds ``s+1 .. s+K``
(``s`` the config's seed, the one the trials used, so no reported number was
selected on its seed) in ``OUT/best__seedN``, resumably, the naming that
``python -m rnnlab report OUT/best__seed*`` groups. ``OUT/search.json``
summarises the trials, the best one and the seed runs.

The space, samplers and pruner live in :mod:`rnnlab.experiments.search_space`, the study and one
trial in :mod:`rnnlab.experiments.search_trials`; their names are re-exported here.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
import math
import os
import time
from typing import Any, Callable, Optional, Sequence

from absl import logging

from rnnlab.extras import optional_import
from rnnlab.experiments import sweep
from rnnlab.experiments.search_space import Metric, Param, draw_point, num_points, suggest
from rnnlab.experiments.search_trials import (LEGACY, POINT, STUDY_FILE, Interrupted, Skipped, StudyError, TrialFailed, given_up, is_duplicate, is_held, launch_command, locked, open_study, original_number, point_of, queue_points, run_trial, storage_problem, storage_url, trial_workdir)
from rnnlab.training.workdir import CONFIG_FILE, RESULTS_FILE, is_finished, read_json, write_json

SUMMARY_FILE = "search.json"
BEST_NAME = "best"
SPEC_ATTR = "spec"  # the study's user attribute holding what it searches (:func:`spec_record`)
GROWABLE = ("trials", "seeds")  # spec fields a rerun may change: more trials extend the study


class SearchError(Exception):
    """A search that cannot run as asked (bad flags, config, metric or study): its one-line message says why."""


class SearchFailed(RuntimeError):
    """A search that ran but has no answer: no trial completed, a point kept failing, or a seed run failed."""


# ---------------------------------------------------------------------------
# The search


@dataclasses.dataclass(frozen=True)
class SearchSpec:
    """What to search: a config, its fields' distributions, the metric and the budget.

    Attributes:
      config: ``path[:variants]`` as ``launch.py --config`` takes it.
      space: the searched fields.
      metric: the optimised metric.
      trials: the study's number of points (each trained until completed or pruned).
      out: the search folder.
    """

    config: str
    space: tuple[Param, ...]
    metric: Metric
    trials: int
    out: str


Command = Callable[[str, str, dict], list]  # (config spec, workdir, overrides) -> a child's command line


def spec_record(spec: SearchSpec, num_seeds: int, seed: int, vary_data_seed: bool = False) -> dict[str, Any]:
    """The study's spec as stored with it (JSON): config, space, metric, trials, seeds, sampler seed."""
    return json.loads(json.dumps({
        "config": spec.config, "space": [dataclasses.asdict(p) for p in spec.space],
        "metric": f"{spec.metric.key}:{spec.metric.mode}", "trials": spec.trials, "seeds": num_seeds,
        "sampler_seed": seed, "vary_data_seed": vary_data_seed,
    }))


def spec_changes(stored: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    """``["metric valid/accuracy:max -> valid/loss:min", ...]``: what a rerun may not change.

    More ``trials`` extend the study (its first points stay the same) and ``seeds`` may change;
    fewer trials, or any other field changed, would mix two searches in one study.
    """
    changes = []
    for key in sorted(set(stored) | set(wanted)):
        old, new = stored.get(key), wanted.get(key)
        growable = key in GROWABLE and (key != "trials" or (new or 0) >= (old or 0))
        if old != new and not growable:
            changes.append(f"{key} {_short(old)} -> {_short(new)}")
    return changes


def _short(value: Any) -> str:
    if isinstance(value, list) and all(isinstance(v, dict) and "field" in v for v in value):
        return ";".join(f"{v['field']}={v['kind']}{tuple(v['args'])}" for v in value)
    return json.dumps(value) if not isinstance(value, str) else value


def objective(spec: SearchSpec, study: Any, *, command: Command = launch_command, poll: float = 1.0,
              env: Optional[dict] = None) -> Callable:
    """The Optuna objective: one training child per trial (:func:`run_trial`) at the trial's point.

    Args:
      spec: the search.
      study: its study.
      command: the child's command line (default :func:`launch_command`; tests
        put a stand-in trainer here).
      poll: seconds between reads of the child's ``metrics.jsonl``.
      env: the child's environment.
    """
    optuna = optional_import("optuna", "experiments", "searches")

    def fn(trial):
        frozen = study._storage.get_trial(trial._trial_id)
        if POINT not in frozen.system_attrs or is_duplicate(study, frozen):
            trial.set_user_attr("skipped", True)  # another worker took the last point, or this one
            raise Skipped(f"trial {trial.number}: no point left to train")
        point = point_of(frozen)
        overrides = {p.field: suggest(trial, p) for p in spec.space}
        workdir = trial_workdir(spec.out, point)
        trial.set_user_attr("workdir", os.path.relpath(workdir, spec.out))
        logging.info("trial %d, point %d (%s): %s", trial.number, point, workdir, overrides)

        def report(value: float, step: int) -> bool:
            if math.isfinite(value):
                trial.report(value, step)
            return trial.should_prune()

        outcome = run_trial(command(spec.config, workdir, overrides), workdir, spec.metric, report,
                            poll=poll, env=env)
        trial.set_user_attr("seconds", round(outcome.seconds, 1))
        trial.set_user_attr("status", outcome.status)
        if outcome.status == "interrupted":
            raise Interrupted(f"trial {trial.number} stopped by a signal; it resumes from {workdir}")
        if outcome.status == "failed":
            trial.set_user_attr("error", outcome.message)
            logging.warning("trial %d, point %d failed: %s", trial.number, point, outcome.message)
            raise TrialFailed(f"trial {trial.number}, point {point}: {outcome.message}")
        if outcome.status == "diverged":
            trial.set_user_attr("diverged", True)
            raise optuna.TrialPruned(f"trial {trial.number}: the loss became NaN or infinite")
        if outcome.status == "pruned":
            raise optuna.TrialPruned(f"trial {trial.number} pruned at step {outcome.step}")
        trial.set_user_attr("step", outcome.step)
        return outcome.value

    return fn


def claim_spec(study: Any, record: dict[str, Any], out: str) -> None:
    """Records ``record`` with a new study, or checks it against the stored one (call under :func:`locked`).

    A study made before specs were stored takes ``record`` as its own; its trials so far
    keep the points of their numbers (:func:`by_point`).

    Raises:
      SearchError: the stored spec differs in more than :data:`GROWABLE` (one line naming the fields).
    """
    stored = study.user_attrs.get(SPEC_ATTR)
    if stored is None:
        if study.get_trials(deepcopy=False):
            logging.warning("search %s: the study has no stored spec (made by an older rnnlab); it is "
                            "taken to be this command's", out)
            study.set_user_attr(LEGACY, len(study.get_trials(deepcopy=False)))
        study.set_user_attr(SPEC_ATTR, record)
        return
    changes = spec_changes(stored, record)
    if changes:
        raise SearchError(f"{out} holds a study of another spec ({'; '.join(changes)}): rerun it with its own "
                          "flags, use another --out, or add --new_study to start a new study beside it")
    if stored != record:
        logging.info("search %s: %s", out, "; ".join(f"{k} {stored.get(k)} -> {record.get(k)}"
                                                     for k in GROWABLE if stored.get(k) != record.get(k)))
        study.set_user_attr(SPEC_ATTR, record)


def run_search(spec: SearchSpec, *, storage: str = "", study_name: str = "search", seed: int = 0,
               startup_trials: int = 2, warmup_steps: int = 0, grace_period: int = 120, retries: int = 2,
               record: Optional[dict] = None, db_timeout: float = 60.0, heartbeat: Optional[int] = None,
               command: Command = launch_command, poll: float = 1.0, env: Optional[dict] = None):
    """Trains every point of the study (``spec.trials`` of them) until each has its answer; returns the study.

    Args:
      spec: the search.
      storage, study_name, seed, startup_trials, warmup_steps, grace_period,
        db_timeout, heartbeat: as :func:`open_study` takes them (``heartbeat``
        default: ``grace_period / 4`` seconds, 1 to 30).
      retries: how often a point whose training child failed is retried (from its
        checkpoint) before it is given up.
      record: the spec stored with the study (:func:`spec_record`; default: of ``spec``, no seeds).
      command, poll, env: as :func:`objective` takes them.

    Point ``k`` of the study has the values :func:`draw_point` gives index ``k``,
    whoever trains it and however often. Safe in several processes at once on the
    same storage, and again after any interruption: a point without its answer
    (its trial interrupted, its worker killed and the trial gone stale after
    ``grace_period``, its child failed) is queued again and resumes in its workdir.
    Returns only when no trial runs anywhere.

    Raises:
      Interrupted: SIGTERM / SIGINT arrived (the trial's point is queued again).
      SearchError: the study holds another spec (:func:`claim_spec`).
      StudyError: the database is damaged, stayed locked, or its disk is full.
    """
    url = storage_url(spec.out, storage)
    try:
        return _run_search(spec, storage=storage, study_name=study_name, seed=seed, startup_trials=startup_trials,
                           warmup_steps=warmup_steps, grace_period=grace_period, retries=retries,
                           record=record or spec_record(spec, 0, seed), db_timeout=db_timeout,
                           heartbeat=heartbeat or max(1, min(30, grace_period // 4)), command=command, poll=poll,
                           env=env)
    except (Interrupted, SearchError):
        raise
    except Exception as e:
        problem = storage_problem(e, url)
        if problem is None:
            raise
        raise StudyError(problem) from e


def _run_search(spec: SearchSpec, *, storage, study_name, seed, startup_trials, warmup_steps, grace_period,
                retries, record, db_timeout, heartbeat, command, poll, env):
    optuna = optional_import("optuna", "experiments", "searches")

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # a failed trial is logged here, without Optuna's traceback
    points = [draw_point(spec.space, seed, k) for k in range(num_points(spec.space, spec.trials))]
    study = open_study(spec.out, spec.metric, storage=storage, name=study_name, seed=seed,
                       startup_trials=startup_trials, warmup_steps=warmup_steps, heartbeat=heartbeat,
                       grace_period=grace_period, db_timeout=db_timeout,
                       prepare=lambda study: claim_spec(study, record, spec.out))
    fn = objective(spec, study, command=command, poll=poll, env=env)
    logged_wait = False
    while True:
        with locked(spec.out):
            optuna.storages.fail_stale_trials(study)  # the trials of killed workers
            queue_points(study, points, retries)
        if _trials_in(study, optuna.trial.TrialState.WAITING):
            study.optimize(fn, n_trials=1, catch=(Skipped, TrialFailed), gc_after_trial=False)
            continue
        running = _trials_in(study, optuna.trial.TrialState.RUNNING)
        if not running:
            return study
        # Every point is taken but trials still run: in another worker, or in a killed one whose
        # trial goes stale after grace_period and is queued again. The best trial is chosen only
        # once every trial has ended, so no worker picks it while a better one may still be running.
        if not logged_wait:
            logged_wait = True
            logging.info("search %s: every point is taken, waiting for %d running trial(s): %s", spec.out,
                         len(running), ", ".join(str(t.number) for t in running))
        time.sleep(min(float(heartbeat), 10.0))


def _trials_in(study: Any, state: Any) -> list:
    """The study's trials in ``state`` (an ``optuna.trial.TrialState``)."""
    return study.get_trials(deepcopy=False, states=(state,))


def best_trial(spec: SearchSpec, study: Any) -> Optional[Any]:
    """The completed trial with the best value of ``spec.metric``; ``None`` when none completed.

    Trials tied on the value (common for accuracy on a small validation set) are
    told apart by the loss on the metric's split, lower first:
    ``results.json[split]["loss"]`` in the trial's workdir, the loss of the same
    best-validation parameters the value comes from. A trial without a finite
    loss there comes after those with one; a tie on both goes to the earlier point
    (not trial: a retried point's trial number depends on when it ran).
    """
    optuna = optional_import("optuna", "experiments", "searches")

    trials = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not trials:
        return None
    sign = 1.0 if study.direction == optuna.study.StudyDirection.MINIMIZE else -1.0
    top = min(sign * t.value for t in trials)

    def loss(trial: Any) -> float:
        path = os.path.join(trial_workdir(spec.out, point_of(trial)), RESULTS_FILE)
        value = read_json(path).get(spec.metric.split, {}).get("loss") if os.path.isfile(path) else None
        return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else math.inf

    return min((t for t in trials if sign * t.value == top), key=lambda t: (loss(t), point_of(t)))


def with_overrides(config: Any, overrides: dict[str, Any]) -> Any:
    """``config`` with each dotted ``field: value`` of ``overrides`` set (in place; returned).

    Raises:
      SearchError: a field the config lacks (it names the field), or a value of the wrong type.
    """
    with config.unlocked():
        for field, value in overrides.items():
            *sections, name = field.split(".")
            node = config
            for section in sections:
                node = node.get(section) if hasattr(node, "get") else None
            if not hasattr(node, "get") or name not in node:
                raise SearchError(f"--space field {field!r}: the config has no such field")
            try:
                node[name] = value
            except (TypeError, ValueError) as e:
                raise SearchError(f"--space field {field!r}: {value!r} does not fit it ({e})") from None
    return config


def seed_runs(spec: SearchSpec, overrides: dict[str, Any], num_seeds: int) -> list[sweep.Run]:
    """The reruns of the best config: seeds ``s+1 .. s+num_seeds`` into ``OUT/best__seedN``."""
    path, _, arg = spec.config.partition(":")
    base = int(sweep.load_config(path, arg).train.seed)
    return [sweep.Run(path, arg, base + i, BEST_NAME) for i in range(1, num_seeds + 1)]


def run_seeds(spec: SearchSpec, overrides: dict[str, Any], num_seeds: int,
              train_fn: Optional[Callable[[Any, str], None]] = None,
              vary_data_seed: bool = False, poll: float = 5.0) -> dict[str, list[str]]:
    """Trains the best config over seeds with :func:`rnnlab.experiments.sweep.run_sweep` (skips finished ones).

    With ``vary_data_seed`` each seed run also sets ``data.gen_seed`` to its seed: a generated
    dataset drawn anew per seed (the trials used the config's own ``gen_seed``), so the spread
    over seeds covers the data as well as the initialisation and the reported numbers come
    from data that played no part in the selection.

    A seed run that another worker trains (it holds the workdir) is left to it: this worker
    waits until the workdir is free (``poll`` seconds apart), then goes over the seed runs again,
    which finds it finished (or resumes it, if that worker was killed).

    Returns:
      :func:`sweep.run_sweep`'s ``{"skipped", "finished", "failed", "interrupted"}`` of the last pass.
    """
    inner = train_fn or sweep._default_train_fn
    busy: list[str] = []

    def train_with_overrides(config, workdir):
        with_overrides(config, overrides)
        if vary_data_seed:
            with config.unlocked():
                config.data.gen_seed = int(config.train.seed)
        try:
            inner(config, workdir)
        except Exception:
            if is_held(workdir) or is_finished(workdir):  # another worker won the race for this run
                busy.append(workdir)
            raise

    while True:
        busy.clear()
        status = sweep.run_sweep(seed_runs(spec, overrides, num_seeds), spec.out, train_with_overrides)
        if status["interrupted"] or not busy:
            status["failed"] = [w for w in status["failed"] if w not in busy]
            return status
        logging.info("search %s: another worker trains %s; waiting for it", spec.out, ", ".join(busy))
        while any(is_held(w) for w in busy):
            time.sleep(poll)


def _trial_record(out: str, trial: Any) -> dict[str, Any]:
    return {
        "number": trial.number,
        "point": point_of(trial) if POINT in trial.system_attrs or "skipped" not in trial.user_attrs else None,
        "repeats": original_number(trial) if "failed_trial" in trial.system_attrs else None,
        "state": trial.state.name,
        "params": trial.params,
        "value": trial.value,
        "last_reported": (trial.intermediate_values[max(trial.intermediate_values)]
                          if trial.intermediate_values else None),
        **{k: trial.user_attrs[k] for k in ("workdir", "seconds", "step", "diverged", "over_budget", "skipped",
                                            "status", "error")
           if k in trial.user_attrs},
    }


def seed_results(workdirs: Sequence[str], relative_to: str = "") -> list[dict[str, Any]]:
    """One record per workdir: ``{"workdir", "seed", "learning_rate", "results"}`` (``results`` None if unfinished).

    Args:
      workdirs: run directories (``config.json``, ``results.json``).
      relative_to: workdirs are recorded relative to this folder ("" = as given).
    """
    records = []
    for workdir in workdirs:
        config = {"train": {"seed": None}, "optim": {"learning_rate": None}, "data": {}}  # not started yet
        if os.path.isfile(os.path.join(workdir, CONFIG_FILE)):
            config = read_json(os.path.join(workdir, CONFIG_FILE))
        results = None
        if is_finished(workdir):
            results = read_json(os.path.join(workdir, RESULTS_FILE))
        records.append({
            "workdir": os.path.relpath(workdir, relative_to) if relative_to else workdir,
            "seed": config["train"]["seed"],
            "gen_seed": config["data"].get("gen_seed"),
            "learning_rate": config["optim"]["learning_rate"],
            "results": results,
        })
    return records


def summarize(spec: SearchSpec, study: Any, num_seeds: int = 0) -> dict[str, Any]:
    """``OUT/search.json``: every trial, the best one (:func:`best_trial`) and the seed runs' results.

    Returns:
      ``{"config", "metric", "trials_budget", "trials": [...], "best": {...} or
      None, "seeds": [{"seed", "workdir", "results"} ...]}``.
    """
    best = best_trial(spec, study)
    summary = {
        "config": spec.config,
        "metric": f"{spec.metric.key}:{spec.metric.mode}",
        "space": [dataclasses.asdict(p) for p in spec.space],
        "trials_budget": spec.trials,
        "trials": [_trial_record(spec.out, t) for t in study.get_trials(deepcopy=False)],
        "best": _trial_record(spec.out, best) if best is not None else None,
        "seeds": [],
    }
    if best is not None and num_seeds:
        runs = seed_runs(spec, best.params, num_seeds)
        summary["seeds"] = seed_results([run.workdir(spec.out) for run in runs], relative_to=spec.out)
    write_json(os.path.join(spec.out, SUMMARY_FILE), summary)
    return summary


def search_and_rerun(spec: SearchSpec, num_seeds: int, vary_data_seed: bool = False, *, seed: int = 0,
                     retries: int = 2, new_study: bool = False, allow_test_metric: bool = False,
                     study_name: str = "search", storage: str = "", **search_options) -> dict[str, Any]:
    """:func:`check_search`, :func:`run_search`, then :func:`run_seeds` of the best trial's values, then :func:`summarize`.

    Args:
      spec, num_seeds: the search and its seed runs.
      vary_data_seed: as :func:`run_seeds` takes it.
      seed, retries, study_name, storage: as :func:`run_search` takes them.
      new_study: when ``spec.out`` holds a study of another spec, work in ``OUT-2``
        (``OUT-3``, ...: the first that is free or holds this spec) instead of refusing.
      allow_test_metric: see :func:`check_search`.
      search_options: more :func:`run_search` options.

    Raises:
      SearchError: a bad spec (:func:`check_search`) or a study of another spec in ``spec.out``.
      SearchFailed: no trial completed (all pruned or diverged), a point's training failed
        ``retries + 1`` times (no seed runs then: it might have been the best), or a seed run failed.
    """
    check_search(spec, num_seeds, seed, allow_test_metric=allow_test_metric)
    record = spec_record(spec, num_seeds, seed, vary_data_seed)
    if new_study:
        spec, study_name = beside(spec, record, study_name, storage)
    study = run_search(spec, seed=seed, retries=retries, record=record, study_name=study_name, storage=storage,
                       **search_options)
    failed_points = given_up(study, retries)
    best = best_trial(spec, study) if not failed_points else None
    status = (run_seeds(spec, dict(best.params), num_seeds, vary_data_seed=vary_data_seed)
              if num_seeds and best is not None else {"failed": [], "interrupted": []})
    summary = summarize(spec, study, num_seeds if best is not None else 0)  # also when a seed run failed
    if failed_points:
        point, error = next(iter(failed_points.items()))
        raise SearchFailed(f"{spec.out}: the training of point(s) {sorted(failed_points)} failed {retries + 1} "
                           f"times (point {point}: {error}); no best is chosen without them. Fix the cause and "
                           f"run again with a larger --retries")
    if status["interrupted"]:
        raise Interrupted(f"seed run {status['interrupted'][0]} stopped by a signal; it resumes on a rerun")
    if status["failed"]:
        raise SearchFailed(f"seed runs failed: {', '.join(status['failed'])} (see {spec.out}/sweep.jsonl)")
    if best is None:
        raise SearchFailed(f"no trial of {spec.out} completed: all were pruned or diverged")
    return summary


def stored_spec(out: str, storage: str = "", study_name: str = "search") -> Optional[dict[str, Any]]:
    """The spec stored with the study ``study_name`` of ``out`` (``{}`` for a study without one); None if none."""
    optuna = optional_import("optuna", "experiments", "searches")

    if not storage and not os.path.isfile(os.path.join(out, STUDY_FILE)):
        return None
    url = storage_url(out, storage)
    try:
        if study_name not in optuna.study.get_all_study_names(url):
            return None
        return optuna.load_study(study_name=study_name, storage=url).user_attrs.get(SPEC_ATTR, {})
    except Exception as e:
        problem = storage_problem(e, url)
        if problem is None:
            raise
        raise StudyError(problem) from e


def beside(spec: SearchSpec, record: dict[str, Any], study_name: str,
           storage: str = "") -> tuple[SearchSpec, str]:
    """``(spec, study name)`` of the first of ``OUT``, ``OUT-2``, ``OUT-3``, ... that is free or holds ``record``.

    With a shared ``storage`` the study name gets the same suffix (``search-2``).
    """
    for k in itertools.count(1):
        out = spec.out.rstrip(os.sep) + (f"-{k}" if k > 1 else "")
        name = f"{study_name}-{k}" if storage and k > 1 else study_name
        stored = stored_spec(out, storage, name)
        if stored is None or not spec_changes(stored, record):
            if k > 1:
                logging.info("search %s holds a study of another spec: this one is in %s", spec.out, out)
            return dataclasses.replace(spec, out=out), name
    raise AssertionError("unreachable")


# ---------------------------------------------------------------------------
# Checks before any work


def check_out(out: str) -> None:
    """Refuses an ``--out`` that is no plain folder path (a URL, or a file).

    Raises:
      SearchError: naming ``--out``.
    """
    if not out or "\0" in out:
        raise SearchError(f"--out={out!r}: give a folder path")
    if "://" in out or out.startswith("sqlite:"):
        raise SearchError(f"--out={out!r} is a folder path, not a database URL: give a URL with --storage")
    if os.path.exists(out) and not os.path.isdir(out):
        raise SearchError(f"--out={out!r} exists and is not a folder")


def check_search(spec: SearchSpec, num_seeds: int, seed: int = 0, allow_test_metric: bool = False) -> None:
    """Checks a search before any work: counts, ``--out``, the space's fields and points, the metric.

    Every point's config (the config with the point's values) must pass the training
    stack's own checks (:func:`rnnlab.training.train.check_config`), and the metric
    must be one that runs of the config write (:func:`metric_names`) on a split they
    evaluate. A metric on the config's test split selects on the test set: refused
    unless ``allow_test_metric``.

    Raises:
      SearchError: what is wrong, in one line naming the flag or field.
    """
    from rnnlab.training import train

    if spec.trials < 1:
        raise SearchError(f"--trials={spec.trials}: give a positive number of trials")
    if num_seeds < 0:
        raise SearchError(f"--seeds={num_seeds}: give 0 or more seed runs")
    if not spec.space:
        raise SearchError("give at least one --space")
    check_out(spec.out)
    path, _, arg = spec.config.partition(":")
    try:
        config = sweep.load_config(path, arg)
        train.check_config(config)
    except (ValueError, TypeError, KeyError, FileNotFoundError, ImportError) as e:
        raise SearchError(f"config {spec.config!r}: {e}") from None
    tc = config.train
    splits = [tc.eval_split, tc.test_split, *tc.get("final_splits", ())]
    if spec.metric.split not in splits:
        raise SearchError(f"--metric={spec.metric.key}: runs of this config write the splits "
                          f"{', '.join(dict.fromkeys(splits))}, not {spec.metric.split!r}")
    if spec.metric.split in (tc.test_split, "test") and not allow_test_metric:
        raise SearchError(f"--metric={spec.metric.key} chooses trials on the test split: use the validation "
                          f"split ({tc.eval_split}/...), or add --allow_test_metric if you mean it")
    for k in range(num_points(spec.space, spec.trials)):
        point = draw_point(spec.space, seed, k)
        try:
            train.check_config(with_overrides(copy.deepcopy(config), point))
        except (ValueError, TypeError) as e:
            raise SearchError(f"--space point {k} {point}: {e}") from None
    names = metric_names(config)
    if spec.metric.name not in names:
        raise SearchError(f"--metric={spec.metric.key}: runs of this config ({config.data.name}) write "
                          f"{', '.join(sorted(names))} per split, not {spec.metric.name!r}")


def metric_names(config: Any) -> set[str]:
    """The metric names a run of ``config`` writes per split (``results.json[split]``), found without training.

    The dataset is prepared (as the trials would prepare it) for its task and subset
    accuracies; the names are the keys of the task's ``stats`` (:mod:`rnnlab.training.tasks`),
    evaluated abstractly (``jax.eval_shape``) on an example batch of two sequences of three steps.
    """
    import jax
    import numpy as np

    import rnnlab.data
    from rnnlab.data.registry import TARGET_DTYPES
    from rnnlab.training import tasks

    spec = rnnlab.data.prepare(config.data)
    b, t, c = 2, 3, max(int(spec.num_outputs), 1)
    per_step = (b, t) if spec.task in tasks.PER_STEP_TASKS else (b,)
    outputs = {"classify": (b, c), "tag": (b, t, c), "density": (b, t, c), "regress": (b,)}[spec.task]
    targets = {"classify": (b,), "tag": (b, t), "density": (b, t, c), "regress": (b,)}[spec.task]
    batch = {
        "targets": jax.ShapeDtypeStruct(targets, TARGET_DTYPES[spec.task]),
        "lengths": jax.ShapeDtypeStruct((b,), np.int32),
        "weights": jax.ShapeDtypeStruct((b,), np.float32),
        **{key: jax.ShapeDtypeStruct(per_step, np.float32) for key in spec.extras},
    }
    if config.train.loss_mask:
        batch[config.train.loss_mask] = jax.ShapeDtypeStruct((b, t), np.float32)
    stats_fn = tasks.get_task(spec.task, config.train.loss_mask, spec.accuracies)
    return set(jax.eval_shape(stats_fn, jax.ShapeDtypeStruct(outputs, np.float32), batch))
