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
best-validation parameters' value.

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
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
import zlib
from typing import Any, Callable, Optional, Sequence

from absl import logging

from rnnlab.experiments import sweep
from rnnlab.training.workdir import CONFIG_FILE, METRICS_FILE, RESULTS_FILE, is_finished, read_json, write_json

STUDY_FILE = "study.db"
SUMMARY_FILE = "search.json"
TRIALS_DIR = "trials"
BEST_NAME = "best"
DIVERGED = "FloatingPointError"  # what rnnlab.training.train raises when the loss is NaN or infinite


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


def make_sampler(seed: int, space: Sequence[Param] = ()):
    """The study's sampler: Optuna's ``GridSampler`` for a grid space, else :func:`random_sampler`.

    A grid runs every combination once (in a seeded order, so several workers split it);
    a search of ``--trials`` larger than the grid stops when the grid is done.
    """
    import optuna

    grid = grid_of(space)
    if grid is not None:
        return optuna.samplers.GridSampler(grid, seed=seed)
    return random_sampler(seed)


def random_sampler(seed: int):
    """A random sampler whose draws depend on (seed, trial number, field) only.

    One seeded ``optuna.samplers.RandomSampler`` per process would draw the
    same values in every worker; seeding per trial makes the search the same
    whatever the number of workers and whichever worker runs a trial.
    """
    import optuna

    class PerTrialRandomSampler(optuna.samplers.BaseSampler):
        """``RandomSampler(seed=f(seed, trial.number, name))`` for each draw."""

        def infer_relative_search_space(self, study, trial):
            return {}

        def sample_relative(self, study, trial, search_space):
            return {}

        def sample_independent(self, study, trial, param_name, param_distribution):
            draw_seed = (seed * 1_000_003 + trial.number * 7919 + zlib.crc32(param_name.encode())) % 2**32
            sampler = optuna.samplers.RandomSampler(seed=draw_seed)
            return sampler.sample_independent(study, trial, param_name, param_distribution)

    return PerTrialRandomSampler()


def make_pruner(startup_trials: int, warmup_steps: int):
    """``MedianPruner``: stop a trial whose metric is worse than the median of earlier trials at that step.

    Args:
      startup_trials: trials that finish before any pruning.
      warmup_steps: training steps before a trial can be pruned.
    """
    import optuna

    return optuna.pruners.MedianPruner(n_startup_trials=startup_trials, n_warmup_steps=warmup_steps)


def open_study(out: str, metric: Metric, *, storage: str = "", name: str = "search", seed: int = 0,
               space: Sequence[Param] = (), startup_trials: int = 2, warmup_steps: int = 0, heartbeat: int = 30, grace_period: int = 120):
    """The study in ``storage`` (default ``sqlite:///OUT/study.db``), created if new.

    Args:
      out: the search folder.
      metric: what the study optimises (sets its direction).
      storage: a database URL; "" for the SQLite file in ``out``.
      name: the study name within the storage.
      seed: the sampler's seed.
      space: the searched fields (a grid space gets a grid sampler, :func:`make_sampler`).
      startup_trials, warmup_steps: the pruner's (:func:`make_pruner`).
      heartbeat: seconds between a running trial's heartbeats.
      grace_period: seconds without a heartbeat after which a trial is failed
        and queued again (its worker was killed).
    """
    import warnings

    import optuna

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)  # heartbeats
    os.makedirs(out, exist_ok=True)
    url = storage or "sqlite:///" + os.path.abspath(os.path.join(out, STUDY_FILE))
    # Workers starting together would each create the database schema and the study: one of
    # them fails ("UNIQUE constraint failed: alembic_version"). A file lock in the search folder
    # makes creation one worker at a time (workers on other machines share a database URL and
    # start with the study already made, or retry).
    with open(os.path.join(out, STUDY_FILE + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        rdb = optuna.storages.RDBStorage(
            url,
            heartbeat_interval=heartbeat,
            grace_period=grace_period,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(),
        )
        return optuna.create_study(
            storage=rdb, study_name=name, direction=metric.direction, load_if_exists=True,
            sampler=make_sampler(seed, space), pruner=make_pruner(startup_trials, warmup_steps),
        )


def original_number(trial: Any) -> int:
    """The number of the trial a retried trial repeats (its own number if it is no retry).

    ``trial`` is a ``FrozenTrial`` (a live ``optuna.Trial`` hides its system attributes).
    """
    return int(trial.system_attrs.get("failed_trial", trial.number))


def trial_workdir(out: str, number: int) -> str:
    """``OUT/trials/trial_NNN``."""
    return os.path.join(out, TRIALS_DIR, f"trial_{number:03d}")


def _counted_states():
    import optuna

    return (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


def budget_left(study: Any, num_trials: int) -> int:
    """Trials still to start: ``num_trials`` minus the completed, pruned, running and queued ones."""
    import optuna

    states = _counted_states() + (optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.WAITING)
    return num_trials - len(study.get_trials(deepcopy=False, states=states))


class OverBudget(Exception):
    """A worker's new trial came after the study's budget was taken by other workers."""


class Interrupted(Exception):
    """The worker received SIGTERM / SIGINT; its trial stopped at a checkpoint."""


# ---------------------------------------------------------------------------
# One trial: a child training process, watched


def format_override(value: Any) -> str:
    """A config value as ``--config.FIELD=`` text (floats in full precision)."""
    return repr(value) if isinstance(value, float) else str(value)


def launch_command(config_spec: str, workdir: str, overrides: dict[str, Any]) -> list[str]:
    """``python -m rnnlab.launch --config=SPEC --workdir=W --config.FIELD=VALUE ...``."""
    return [sys.executable, "-m", "rnnlab.launch", f"--config={config_spec}", f"--workdir={workdir}",
            *(f"--config.{k}={format_override(v)}" for k, v in overrides.items())]


def _set_parent_death_signal() -> None:
    """In the child: SIGTERM when the worker dies, so a killed worker leaves no orphan training."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:  # not Linux: the child outlives a killed worker
        pass


def new_evaluations(workdir: str, key: str, seen: int) -> tuple[list[tuple[int, float]], int]:
    """``([(step, value)], lines read)``: ``key``'s records in ``workdir/metrics.jsonl`` after line ``seen``.

    A partly written last line is left for the next call.
    """
    path = os.path.join(workdir, METRICS_FILE)
    if not os.path.exists(path):
        return [], seen
    with open(path) as f:
        lines = f.read().split("\n")
    complete = lines[:-1]  # the text after the last newline may still be being written
    found = []
    for line in complete[seen:]:
        if line.strip():
            record = json.loads(line)
            if key in record:
                found.append((int(record["step"]), float(record[key])))
    return found, len(complete)


@dataclasses.dataclass
class TrialOutcome:
    """How a trial's child process ended: ``complete``, ``pruned``, ``diverged`` or ``interrupted``."""

    status: str
    value: Optional[float] = None
    step: Optional[int] = None
    seconds: float = 0.0


def run_trial(command: Sequence[str], workdir: str, metric: Metric, report: Callable[[float, int], bool],
              *, poll: float = 1.0, env: Optional[dict] = None) -> TrialOutcome:
    """Runs one training child, reporting each new evaluation of ``metric`` as it lands.

    Args:
      command: the child's command line (from :func:`launch_command`).
      workdir: the run's workdir (``metrics.jsonl`` and ``results.json`` there).
      metric: the reported and returned metric.
      report: ``report(value, step) -> prune?``, called once per evaluation.
      poll: seconds between reads of ``metrics.jsonl``.
      env: the child's environment (default: this process's).

    Returns:
      The outcome; for ``complete``, ``value`` is ``results.json[split][name]``.

    Raises:
      RuntimeError: the child failed for another reason than a NaN loss (the
        message holds the end of its log, ``workdir/train.log``).
    """
    os.makedirs(workdir, exist_ok=True)
    log_path = os.path.join(workdir, "train.log")
    start = time.time()
    received = []
    previous = {}

    def on_signal(signum, frame):
        received.append(signum)

    for sig in (signal.SIGTERM, signal.SIGINT):
        previous[sig] = signal.signal(sig, on_signal)
    seen, pruned_at = 0, None
    try:
        with open(log_path, "a") as log:
            child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                                     preexec_fn=_set_parent_death_signal)
            while True:
                done = child.poll() is not None
                evaluations, seen = new_evaluations(workdir, metric.key, seen)
                for step, value in evaluations:
                    if pruned_at is None and report(value, step):
                        pruned_at = step
                        child.send_signal(signal.SIGTERM)
                if received and pruned_at is None and not done:
                    child.send_signal(signal.SIGTERM)
                if done:
                    break
                time.sleep(poll)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    seconds = time.time() - start
    results_path = os.path.join(workdir, RESULTS_FILE)
    if child.returncode == 0 and os.path.isfile(results_path) and pruned_at is None:
        results = read_json(results_path)
        return TrialOutcome("complete", float(results[metric.split][metric.name]), int(results["step"]), seconds)
    # A child that gets SIGTERM while it exits dies of it (Python restores the default handler last).
    stopped = child.returncode in (0, -signal.SIGTERM)
    if pruned_at is not None and stopped:
        return TrialOutcome("pruned", None, pruned_at, seconds)
    if received and stopped:
        return TrialOutcome("interrupted", None, None, seconds)
    with open(log_path) as f:
        tail = f.read()[-3000:]
    if DIVERGED in tail:
        return TrialOutcome("diverged", None, None, seconds)
    raise RuntimeError(f"training child exited with status {child.returncode}; the end of {log_path}:\n{tail}")


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
    optuna.storages.fail_stale_trials(study)  # queues the trials of killed workers again
    if budget_left(study, spec.trials) <= 0 and not study.get_trials(
            deepcopy=False, states=(optuna.trial.TrialState.WAITING,)):
        return study
    cap = optuna.study.MaxTrialsCallback(spec.trials, states=_counted_states())
    try:
        study.optimize(objective(spec, study, command=command, poll=poll, env=env), callbacks=[cap], catch=(OverBudget,),
                       gc_after_trial=False)
    except Interrupted:
        trials = study.get_trials(deepcopy=True)
        requeued = {n for t in trials for n in t.system_attrs.get("retry_history", ())}
        for t in trials:
            if (t.state == optuna.trial.TrialState.FAIL and t.user_attrs.get("status") == "interrupted"
                    and t.number not in requeued):
                optuna.storages.RetryHeartbeatStaleTrialCallback()(study, t)  # the same values, WAITING
        raise
    return study


def finished_trials(study: Any) -> list[Any]:
    """The completed trials, best first."""
    import optuna

    trials = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    sign = 1.0 if study.direction == optuna.study.StudyDirection.MINIMIZE else -1.0
    return sorted(trials, key=lambda t: sign * t.value)


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
    """``OUT/search.json``: every trial, the best one and the seed runs' results.

    Returns:
      ``{"config", "metric", "trials_budget", "trials": [...], "best": {...} or
      None, "seeds": [{"seed", "workdir", "results"} ...]}``.
    """
    best = finished_trials(study)[:1]
    summary = {
        "config": spec.config,
        "metric": f"{spec.metric.key}:{spec.metric.mode}",
        "space": [dataclasses.asdict(p) for p in spec.space],
        "trials_budget": spec.trials,
        "trials": [_trial_record(spec.out, t) for t in study.get_trials(deepcopy=False)],
        "best": _trial_record(spec.out, best[0]) if best else None,
        "seeds": [],
    }
    if best and num_seeds:
        runs = seed_runs(spec, best[0].params, num_seeds)
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
    best = finished_trials(study)
    status = (run_seeds(spec, dict(best[0].params), num_seeds, vary_data_seed=vary_data_seed)
              if num_seeds and best else {"failed": [], "interrupted": []})
    summary = summarize(spec, study, num_seeds)  # also when a seed run failed: the others are recorded
    if status["interrupted"]:
        raise Interrupted(f"seed run {status['interrupted'][0]} stopped by a signal; it resumes on a rerun")
    if status["failed"]:  # e.g. another worker trains that seed now (its workdir is locked): rerun later
        raise RuntimeError(f"seed runs failed: {', '.join(status['failed'])} (see {spec.out}/sweep.jsonl)")
    if not best and budget_left(study, spec.trials) <= 0:
        raise RuntimeError(f"no trial of {spec.out} completed: all were pruned or diverged")
    return summary
