"""The study and its trials for :mod:`rnnlab.experiments.search`: the Optuna study shared by workers, its
budget, and one trial as a child training process, watched (its evaluations reported, pruned, stopped).
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from typing import Any, Callable, Optional, Sequence

from rnnlab.experiments.search_space import Metric, Param, make_pruner, make_sampler
from rnnlab.training.workdir import METRICS_FILE, RESULTS_FILE, read_json

STUDY_FILE = "study.db"
TRIALS_DIR = "trials"
DIVERGED = "FloatingPointError"  # what rnnlab.training.train raises when the loss is NaN or infinite


# ---------------------------------------------------------------------------
# The study

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
