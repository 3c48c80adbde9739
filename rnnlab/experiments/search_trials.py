"""The study and its trials for :mod:`rnnlab.experiments.search`: the Optuna study shared by workers, its
budget, and one trial as a child training process, watched (its evaluations reported, pruned, stopped).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from typing import Any, Callable, Optional, Sequence

from rnnlab.extras import optional_import
from rnnlab.experiments.search_space import Metric, make_pruner
from rnnlab.training.workdir import LOCK_FILE, METRICS_FILE, RESULTS_FILE, read_json

STUDY_FILE = "study.db"
TRIALS_DIR = "trials"
POINT = "point"  # the system attribute holding a trial's point index
LEGACY = "legacy_trials"  # the study attribute: trials made before points were recorded
DIVERGED = "FloatingPointError"  # what rnnlab.training.train raises when the loss is NaN or infinite


# ---------------------------------------------------------------------------
# The study

def storage_url(out: str, storage: str = "") -> str:
    """``storage``, or the URL of the SQLite file ``OUT/study.db`` (any characters in the path, quoted)."""
    from sqlalchemy.engine import URL

    if storage:
        return storage
    return URL.create("sqlite", database=os.path.abspath(os.path.join(out, STUDY_FILE))).render_as_string(False)


@contextlib.contextmanager
def locked(out: str):
    """Holds ``OUT/study.db.lock`` (one worker of this machine at a time changes the queue)."""
    with open(os.path.join(out, STUDY_FILE + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def open_study(out: str, metric: Metric, *, storage: str = "", name: str = "search", seed: int = 0,
               startup_trials: int = 2, warmup_steps: int = 0, heartbeat: int = 30, grace_period: int = 120,
               db_timeout: float = 60.0, prepare: Optional[Callable[[Any], None]] = None):
    """The study in ``storage`` (default ``OUT/study.db``), created if new.

    Args:
      out: the search folder.
      metric: what the study optimises (sets its direction).
      storage: a database URL; "" for the SQLite file in ``out``.
      name: the study name within the storage.
      seed: the seed of the study's sampler (the points are drawn by :func:`draw_point`).
      startup_trials, warmup_steps: the pruner's (:func:`make_pruner`).
      heartbeat: seconds between a running trial's heartbeats.
      grace_period: seconds without a heartbeat after which a trial is failed
        (its worker was killed) and its point queued again.
      db_timeout: seconds a statement waits for a SQLite file another process
        holds locked (SQLite retries with backoff) before it fails.
      prepare: ``prepare(study)``, called while the creation lock is held
        (checks and records the study's spec; queues its points).
    """
    import warnings

    optuna = optional_import("optuna", "experiments", "searches")

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)  # heartbeats
    os.makedirs(out, exist_ok=True)
    url = storage_url(out, storage)
    engine = {"connect_args": {"timeout": db_timeout}} if url.startswith("sqlite") else None
    # Workers starting together would each create the database schema and the study: one of
    # them fails ("UNIQUE constraint failed: alembic_version"). A file lock in the search folder
    # makes creation one worker at a time (workers on other machines share a database URL and
    # start with the study already made, or retry).
    with locked(out):
        rdb = _storage_taking_trials_under_lock(optuna, out)(url, engine_kwargs=engine, heartbeat_interval=heartbeat,
                                                             grace_period=grace_period)
        study = optuna.create_study(
            storage=rdb, study_name=name, direction=metric.direction, load_if_exists=True,
            sampler=optuna.samplers.RandomSampler(seed), pruner=make_pruner(startup_trials, warmup_steps),
        )
        if prepare is not None:
            prepare(study)
        return study


def _storage_taking_trials_under_lock(optuna: Any, out: str) -> type:
    """Optuna's ``RDBStorage`` whose WAITING -> RUNNING change (a worker taking a queued trial) holds
    :func:`locked`.

    Optuna reads the trial's state, then sets it, and SQLite takes no lock for the read: workers that
    ask at the same moment all read WAITING and all take the same trial, then run it twice and one
    fails to report ("Cannot tell a COMPLETE trial"; optuna/optuna#4002). Under the lock the second
    reads RUNNING, and Optuna gives it another trial.
    """
    running = optuna.trial.TrialState.RUNNING

    class Storage(optuna.storages.RDBStorage):
        def set_trial_state_values(self, trial_id, state, values=None):
            if state != running:
                return super().set_trial_state_values(trial_id, state, values)
            with locked(out):
                return super().set_trial_state_values(trial_id, state, values)

    return Storage


class StudyError(Exception):
    """The study's database cannot be used (damaged, locked, on a full disk): the message names it."""


def _causes(error: BaseException):
    """``error`` and the exceptions it was raised from or while handling, outermost first."""
    seen = []
    while error is not None and error not in seen:
        seen.append(error)
        error = error.__cause__ or error.__context__
    return seen


def storage_problem(error: BaseException, url: str) -> Optional[str]:
    """One line naming the database and what is wrong with it, if ``error`` came from the storage; else None.

    Optuna sometimes hides a database error behind one of its own
    (``UnboundLocalError``, ``AssertionError: Should not reach.``), raised while
    handling it: the whole chain is searched.
    """
    import errno

    import sqlalchemy

    where = url[len("sqlite:///"):] if url.startswith("sqlite:///") else url
    for cause in _causes(error):
        text = str(getattr(cause, "orig", None) or cause).split("\n")[0]
        full = isinstance(cause, OSError) and cause.errno == errno.ENOSPC or "disk is full" in text
        if full:
            folder = os.path.dirname(where) if os.path.exists(os.path.dirname(where) or ".") else "."
            free = shutil.disk_usage(folder).free / 2**20
            return (f"the disk of {where} is full ({free:.0f} MiB free): free some space and run the "
                    "same command again (the search resumes)")
        if isinstance(cause, sqlalchemy.exc.OperationalError) and "locked" in text:
            return (f"{where} stayed locked by another process (SQLite waited with backoff, then gave up: "
                    f"{text}); run the same command again when it is free")
        if isinstance(cause, sqlalchemy.exc.SQLAlchemyError):
            return (f"cannot use the study database {where}: {text}. If the file is damaged, move it "
                    "away (the trials' workdirs stay and resume) and run the same command again")
    return None


def original_number(trial: Any) -> int:
    """The number of the trial a retried trial repeats (its own number if it is no retry).

    ``trial`` is a ``FrozenTrial`` (a live ``optuna.Trial`` hides its system attributes).
    """
    return int(trial.system_attrs.get("failed_trial", trial.number))


def point_of(trial: Any) -> int:
    """The index of the point ``trial`` (a ``FrozenTrial``) trains in the study's sample sequence.

    Trials of a study made before points were recorded repeat their original trial's number.
    """
    return int(trial.system_attrs.get(POINT, original_number(trial)))


def trial_workdir(out: str, number: int) -> str:
    """``OUT/trials/trial_NNN``."""
    return os.path.join(out, TRIALS_DIR, f"trial_{number:03d}")


TERMINAL = ("COMPLETE", "PRUNED")  # the states of a point that has its answer
LIVE = ("RUNNING", "WAITING")


def failures(trials: Sequence[Any]) -> int:
    """How many of ``trials`` (one point's) failed: their training child died (not by the worker's signal)."""
    return sum(1 for t in trials if t.state.name == "FAIL" and t.user_attrs.get("status") == "failed")


def by_point(study: Any) -> dict[int, list]:
    """``{point: [its trials, by number]}`` over the study's trials that train a point.

    A study made before points were recorded keeps its first ``user_attrs[LEGACY]``
    trials as they were: each trains the point of its original trial's number.
    """
    legacy = study.user_attrs.get(LEGACY, 0)
    points: dict[int, list] = {}
    for t in study.get_trials(deepcopy=False):
        if POINT in t.system_attrs or t.number < legacy and "over_budget" not in t.user_attrs:
            points.setdefault(point_of(t), []).append(t)
    return points


def point_status(trials: Sequence[Any], retries: int) -> str:
    """One point's state from its trials: ``done`` (completed or pruned), ``live`` (running or queued),
    ``given_up`` (more than ``retries`` failures) or ``open`` (to queue)."""
    if any(t.state.name in TERMINAL for t in trials):
        return "done"
    if any(t.state.name in LIVE for t in trials):
        return "live"
    return "given_up" if failures(trials) > retries else "open"


def queue_points(study: Any, points: Sequence[dict[str, Any]], retries: int) -> None:
    """Queues (``WAITING``) each ``open`` point (:func:`point_status`) with its values; a retry resumes its workdir.

    Call it holding :func:`locked`: two workers queueing at once would queue a point twice (a
    duplicate is skipped when it starts, :func:`is_duplicate`).

    Args:
      study: the study.
      points: ``{field: value}`` of points ``0 .. n-1`` (:func:`draw_point`).
      retries: failed trials a point may have before it is given up.
    """
    optuna = optional_import("optuna", "experiments", "searches")

    trials = by_point(study)
    for index, params in enumerate(points):
        mine = trials.get(index, [])
        if point_status(mine, retries) != "open":
            continue
        system_attrs = {"fixed_params": params, POINT: index}
        if mine:
            system_attrs["failed_trial"] = mine[0].number  # a retry: its workdir resumes
        study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.WAITING, system_attrs=system_attrs))


def given_up(study: Any, retries: int) -> dict[int, str]:
    """``{point: its last error}`` of the points whose training failed more than ``retries`` times."""
    return {point: trials[-1].user_attrs.get("error", "") for point, trials in sorted(by_point(study).items())
            if point_status(trials, retries) == "given_up"}


def is_duplicate(study: Any, trial: Any) -> bool:
    """True if another trial of ``trial``'s point has its answer, or runs and came first (a point queued twice)."""
    return any(t.number != trial.number and (t.state.name in TERMINAL or t.state.name == "RUNNING" and t.number < trial.number)
               for t in by_point(study).get(point_of(trial), []))


class Skipped(Exception):
    """A trial that trains nothing: no point was left to take, or another trial has its point."""


class TrialFailed(Exception):
    """The trial's training child failed; its point is retried (:func:`queue_points`)."""


class Interrupted(Exception):
    """The worker received SIGTERM / SIGINT; its trial stopped at a checkpoint."""


# ---------------------------------------------------------------------------
# One trial: a child training process, watched


def format_override(value: Any) -> str:
    """A config value as ``--config.FIELD=`` text (floats in full precision)."""
    return repr(value) if isinstance(value, float) else str(value)


def launch_command(config_spec: str, workdir: str, overrides: dict[str, Any]) -> list[str]:
    """``python -m rnnlab launch --config=SPEC --workdir=W --config.FIELD=VALUE ...``."""
    return [sys.executable, "-m", "rnnlab", "launch", f"--config={config_spec}", f"--workdir={workdir}",
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


def is_held(workdir: str) -> bool:
    """True while a process trains in ``workdir`` (holds the ``flock`` of ``workdir/lock``)."""
    try:
        fd = os.open(os.path.join(workdir, LOCK_FILE), os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops a lock taken here


def wait_until_free(workdir: str, timeout: float, poll: float = 0.5) -> bool:
    """Waits until no process trains in ``workdir`` (at most ``timeout`` seconds); whether it is free."""
    deadline = time.time() + timeout
    while is_held(workdir):
        if time.time() > deadline:
            return False
        time.sleep(poll)
    return True


@dataclasses.dataclass
class TrialOutcome:
    """How a trial's child process ended: ``complete``, ``pruned``, ``diverged``, ``interrupted`` or ``failed``."""

    status: str
    value: Optional[float] = None
    step: Optional[int] = None
    seconds: float = 0.0
    message: str = ""


def run_trial(command: Sequence[str], workdir: str, metric: Metric, report: Callable[[float, int], bool],
              *, poll: float = 1.0, env: Optional[dict] = None) -> TrialOutcome:
    """Runs one training child, reporting each new evaluation of ``metric`` as it lands.

    Args:
      command: the child's command line (from :func:`launch_command`).
      workdir: the run's workdir (``metrics.jsonl`` and ``results.json`` there).
      metric: the reported and returned metric.
      report: ``report(value, step) -> prune?``, called once per evaluation.
      poll: seconds between reads of ``metrics.jsonl`` (the child's end is seen at once).
      env: the child's environment (default: this process's).

    Returns:
      The outcome; for ``complete``, ``value`` is ``results.json[split][name]``; ``failed`` when
      the child died for another reason than a NaN loss or this worker's signal (``message``
      names its exit status and the last line of its log, ``workdir/train.log``).
    """
    os.makedirs(workdir, exist_ok=True)
    wait_until_free(workdir, timeout=60.0)  # the child of a killed worker may still be saving its checkpoint
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
                try:  # back at once when the child ends, else after ``poll`` seconds
                    child.wait(timeout=poll)
                except subprocess.TimeoutExpired:
                    pass
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
    lines = [line for line in tail.splitlines() if line.strip()]
    return TrialOutcome("failed", None, None, seconds,
                        f"training child exited with status {child.returncode} ({log_path}: "
                        f"{lines[-1] if lines else 'no output'})")
