"""Hyperparameter search on Optuna, each trial a normal run in its own workdir; then seeds of the best.

    python -m rnnlab.search configs/music.py:dataset=jsb,cell=gru,paper --trials=10 \\
        --space='optim.learning_rate=loguniform(6e-6,2.5e-3)' --metric=valid/nll:min \\
        --seeds=3 --out=runs/music/jsb-gru-paper

The study (random sampling, seeded, so the same command samples the same
values) lives in ``OUT/study.db`` (SQLite) unless ``--storage`` gives another
database URL; every process started with the same ``--out`` / ``--storage``
and ``--study`` works on the same study, so a search resumes where it stopped
and several worker processes (or machines, with a shared database) split the
trials. The study never runs more than ``--trials`` trials in total, counting
completed and pruned ones: a worker stops when the budget is taken.

Trial ``n`` trains ``OUT/trials/trial_NNN`` with ``python -m rnnlab.launch``
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
``python -m rnnlab.report OUT/best__seed*`` groups. ``OUT/search.json``
summarises the trials, the best one and the seed runs.

The space, samplers and pruner live in :mod:`rnnlab.experiments.search_space`, the study and one
trial in :mod:`rnnlab.experiments.search_trials`; their names are re-exported here.
"""

from __future__ import annotations

import dataclasses
import math
import os
import signal
import time
from typing import Any, Callable, Optional, Sequence

from absl import logging

from rnnlab.experiments import sweep
from rnnlab.experiments.search_space import (KINDS, Metric, Param, grid_of, make_pruner,  # noqa: F401
                                             make_sampler, parse_metric, parse_param, random_sampler, suggest)
from rnnlab.experiments.search_trials import (DIVERGED, STUDY_FILE, TRIALS_DIR, Interrupted,  # noqa: F401
                                              OverBudget, TrialOutcome, _counted_states, budget_left,
                                              format_override, launch_command, new_evaluations, open_study,
                                              original_number, run_trial, trial_workdir)
from rnnlab.training.workdir import CONFIG_FILE, RESULTS_FILE, is_finished, read_json, write_json

SUMMARY_FILE = "search.json"
BEST_NAME = "best"


# ---------------------------------------------------------------------------
# The search


@dataclasses.dataclass(frozen=True)
class SearchSpec:
    """What to search: a config, its fields' distributions, the metric and the budget.

    Attributes:
      config: ``path[:variants]`` as ``launch.py --config`` takes it.
      space: the searched fields.
      metric: the optimised metric.
      trials: the study's total of completed + pruned trials.
      out: the search folder.
    """

    config: str
    space: tuple[Param, ...]
    metric: Metric
    trials: int
    out: str


Command = Callable[[str, str, dict], list]  # (config spec, workdir, overrides) -> a child's command line


def objective(spec: SearchSpec, study: Any, *, command: Command = launch_command, poll: float = 1.0,
              env: Optional[dict] = None) -> Callable:
    """The Optuna objective: one training child per trial (:func:`run_trial`).

    Args:
      spec: the search.
      study: its study.
      command: the child's command line (default :func:`launch_command`; tests
        put a stand-in trainer here).
      poll: seconds between reads of the child's ``metrics.jsonl``.
      env: the child's environment.
    """
    import optuna

    def fn(trial):
        earlier = [t for t in study.get_trials(deepcopy=False)
                   if t.number < trial.number and t.state != optuna.trial.TrialState.FAIL]
        if len(earlier) >= spec.trials:  # another worker took the last slot since this one asked
            trial.set_user_attr("over_budget", True)
            study.stop()
            raise OverBudget(f"trial {trial.number}: the study's {spec.trials} trials are taken")
        overrides = {p.field: suggest(trial, p) for p in spec.space}
        workdir = trial_workdir(spec.out, original_number(study._storage.get_trial(trial._trial_id)))
        trial.set_user_attr("workdir", os.path.relpath(workdir, spec.out))
        logging.info("trial %d (%s): %s", trial.number, workdir, overrides)

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
        if outcome.status == "diverged":
            trial.set_user_attr("diverged", True)
            raise optuna.TrialPruned(f"trial {trial.number}: the loss became NaN or infinite")
        if outcome.status == "pruned":
            raise optuna.TrialPruned(f"trial {trial.number} pruned at step {outcome.step}")
        trial.set_user_attr("step", outcome.step)
        return outcome.value

    return fn


def run_search(spec: SearchSpec, *, storage: str = "", study_name: str = "search", seed: int = 0,
               startup_trials: int = 2, warmup_steps: int = 0, heartbeat: int = 30,
               grace_period: int = 120, command: Command = launch_command, poll: float = 1.0,
               env: Optional[dict] = None):
    """Works on the study until its budget of ``spec.trials`` is used; returns the study.

    Args:
      spec: the search.
      storage, study_name, seed, startup_trials, warmup_steps, heartbeat,
        grace_period: as :func:`open_study` takes them.
      command, poll, env: as :func:`objective` takes them.

    Safe to run in several processes at once on the same storage, and again
    after an interruption (the interrupted trial is queued again and resumes).
    Returns only when no trial is running anywhere: with the budget taken, it
    waits for the trials of other workers, and for those of a killed worker to
    go stale (``grace_period``) and runs them again itself.

    Raises:
      Interrupted: SIGTERM / SIGINT arrived (the running trial was queued again).
      RuntimeError: a trial's training failed (not by a NaN loss).
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    grid = grid_of(spec.space)
    if grid is not None:  # a grid is done when every point ran once: never more trials than points
        spec = dataclasses.replace(spec, trials=min(spec.trials, math.prod(len(v) for v in grid.values())))
    study = open_study(spec.out, spec.metric, storage=storage, name=study_name, seed=seed, space=spec.space,
                       startup_trials=startup_trials, warmup_steps=warmup_steps,
                       heartbeat=heartbeat, grace_period=grace_period)
    cap = optuna.study.MaxTrialsCallback(spec.trials, states=_counted_states())
    logged_wait = False
    while True:
        optuna.storages.fail_stale_trials(study)  # queues the trials of killed workers again
        if budget_left(study, spec.trials) > 0 or _trials_in(study, optuna.trial.TrialState.WAITING):
            _optimize(study, spec, cap, command=command, poll=poll, env=env)
            continue
        running = _trials_in(study, optuna.trial.TrialState.RUNNING)
        if not running:
            return study
        # The budget is taken but trials still run: in another worker, or in a killed one whose
        # trial goes stale after grace_period and is queued again. The best trial is chosen only
        # once every trial has ended, so no worker picks it while a better one may still be running.
        if not logged_wait:
            logged_wait = True
            logging.info("search %s: budget taken, waiting for %d running trial(s): %s", spec.out, len(running),
                         ", ".join(str(t.number) for t in running))
        time.sleep(min(float(heartbeat), 10.0))


def _trials_in(study: Any, state: Any) -> list:
    """The study's trials in ``state`` (an ``optuna.trial.TrialState``)."""
    return study.get_trials(deepcopy=False, states=(state,))


def _optimize(study: Any, spec: SearchSpec, cap: Any, **objective_args) -> None:
    """Runs trials until the budget is taken; an interrupted trial is queued again with the same values."""
    import optuna

    try:
        study.optimize(objective(spec, study, **objective_args), callbacks=[cap], catch=(OverBudget,),
                       gc_after_trial=False)
    except Interrupted:
        trials = study.get_trials(deepcopy=True)
        requeued = {n for t in trials for n in t.system_attrs.get("retry_history", ())}
        for t in trials:
            if (t.state == optuna.trial.TrialState.FAIL and t.user_attrs.get("status") == "interrupted"
                    and t.number not in requeued):
                optuna.storages.RetryHeartbeatStaleTrialCallback()(study, t)  # the same values, WAITING
        raise


def best_trial(spec: SearchSpec, study: Any) -> Optional[Any]:
    """The completed trial with the best value of ``spec.metric``; ``None`` when none completed.

    Trials tied on the value (common for accuracy on a small validation set) are
    told apart by the loss on the metric's split, lower first:
    ``results.json[split]["loss"]`` in the trial's workdir, the loss of the same
    best-validation parameters the value comes from. A trial without a finite
    loss there comes after those with one; a tie on both goes to the earlier trial.
    """
    import optuna

    trials = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not trials:
        return None
    sign = 1.0 if study.direction == optuna.study.StudyDirection.MINIMIZE else -1.0
    top = min(sign * t.value for t in trials)

    def loss(trial: Any) -> float:
        path = os.path.join(trial_workdir(spec.out, original_number(trial)), RESULTS_FILE)
        value = read_json(path).get(spec.metric.split, {}).get("loss") if os.path.isfile(path) else None
        return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else math.inf

    return min((t for t in trials if sign * t.value == top), key=loss)  # min keeps the earliest of equals


def seed_runs(spec: SearchSpec, overrides: dict[str, Any], num_seeds: int) -> list[sweep.Run]:
    """The reruns of the best config: seeds ``s+1 .. s+num_seeds`` into ``OUT/best__seedN``."""
    path, _, arg = spec.config.partition(":")
    base = int(sweep.load_config(path, arg).train.seed)
    return [sweep.Run(path, arg, base + i, BEST_NAME) for i in range(1, num_seeds + 1)]


def run_seeds(spec: SearchSpec, overrides: dict[str, Any], num_seeds: int,
              train_fn: Optional[Callable[[Any, str], None]] = None,
              vary_data_seed: bool = False) -> dict[str, list[str]]:
    """Trains the best config over seeds with :func:`rnnlab.experiments.sweep.run_sweep` (skips finished ones).

    With ``vary_data_seed`` each seed run also sets ``data.gen_seed`` to its seed: a generated
    dataset drawn anew per seed (the trials used the config's own ``gen_seed``), so the spread
    over seeds covers the data as well as the initialisation and the reported numbers come
    from data that played no part in the selection.
    """
    inner = train_fn or sweep._default_train_fn

    def train_with_overrides(config, workdir):
        with config.unlocked():
            for field, value in overrides.items():
                section, _, name = field.partition(".")
                config[section][name] = value
            if vary_data_seed:
                config.data.gen_seed = int(config.train.seed)
        inner(config, workdir)

    return sweep.run_sweep(seed_runs(spec, overrides, num_seeds), spec.out, train_with_overrides)


def _trial_record(out: str, trial: Any) -> dict[str, Any]:
    return {
        "number": trial.number,
        "repeats": original_number(trial) if "failed_trial" in trial.system_attrs else None,
        "state": trial.state.name,
        "params": trial.params,
        "value": trial.value,
        "last_reported": (trial.intermediate_values[max(trial.intermediate_values)]
                          if trial.intermediate_values else None),
        **{k: trial.user_attrs[k] for k in ("workdir", "seconds", "step", "diverged", "over_budget")
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


def search_and_rerun(spec: SearchSpec, num_seeds: int, vary_data_seed: bool = False,
                     **search_options) -> dict[str, Any]:
    """:func:`run_search`, then :func:`run_seeds` of the best trial's values, then :func:`summarize`.

    ``vary_data_seed`` as :func:`run_seeds` takes it.

    Raises:
      RuntimeError: no trial completed (all pruned, diverged or failed).
    """
    study = run_search(spec, **search_options)
    best = best_trial(spec, study)
    status = (run_seeds(spec, dict(best.params), num_seeds, vary_data_seed=vary_data_seed)
              if num_seeds and best is not None else {"failed": [], "interrupted": []})
    summary = summarize(spec, study, num_seeds)  # also when a seed run failed: the others are recorded
    if status["interrupted"]:
        raise Interrupted(f"seed run {status['interrupted'][0]} stopped by a signal; it resumes on a rerun")
    if status["failed"]:  # e.g. another worker trains that seed now (its workdir is locked): rerun later
        raise RuntimeError(f"seed runs failed: {', '.join(status['failed'])} (see {spec.out}/sweep.jsonl)")
    if best is None and budget_left(study, spec.trials) <= 0:
        raise RuntimeError(f"no trial of {spec.out} completed: all were pruned or diverged")
    return summary
