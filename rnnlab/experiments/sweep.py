"""Run a grid of configs x seeds into sibling workdirs, resumably.

    python -m rnnlab sweep configs/negation.py configs/negation.py:cell=gru \\
        --seeds=0,1,2 --out=runs/mine

Each positional argument is a config file, optionally with a variant argument
(``configs/negation.py:cell=gru``). A file given without an argument
whose module defines ``get_sweep() -> list[str]`` expands to one run per
variant it lists (the experiment's grid). ``--also=smoke`` appends a variant to
every run (the whole grid in seconds, for a check).

Every (config, variant, seed) gets its own workdir ``OUT/NAME__seedS`` with
``NAME = stem[-variant]``. A rerun skips workdirs that hold ``results.json``
(finished) and calls the training function again on the others, which resumes
from their latest checkpoint. A run that raises is logged and the sweep goes
on; the exit status says whether all finished. ``OUT/sweep.jsonl`` gets one
line per run attempt: name, seed, status, wall seconds.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import sys
import time
import traceback
from typing import Any, Callable, Iterable, Optional, Sequence

from absl import logging

from rnnlab.training.config_files import load_config, load_module, split_spec
from rnnlab.training.workdir import is_finished

LOG_FILE = "sweep.jsonl"
_SEED_SUFFIX = re.compile(r"__seed(\d+)$")


@dataclasses.dataclass(frozen=True)
class Run:
    """One cell of the grid.

    Attributes:
      config_path: the config file.
      arg: the variant argument given to its ``get_config`` ("" for none).
      seed: written to ``config.train.seed``.
      name: ``stem`` or ``stem-arg`` (no seed): runs that differ only in seed
        share it, which is how :mod:`rnnlab.analysis.report` groups them.
    """

    config_path: str
    arg: str
    seed: int
    name: str

    def workdir(self, out: str) -> str:
        """``out/NAME__seedS``."""
        return os.path.join(out, f"{self.name}__seed{self.seed}")


def _join_args(*args: str) -> str:
    return ",".join(a for a in args if a)


def _run_name(path: str, arg: str) -> str:
    stem = os.path.splitext(os.path.basename(path))[0]
    if not arg:
        return stem
    safe = re.sub(r"[^A-Za-z0-9_.=+-]", "+", arg.replace(",", "+"))
    return f"{stem}-{safe}"


def expand(specs: Sequence[str], seeds: Iterable[int], also: str = "") -> list[Run]:
    """The grid: config specs (``path[:arg]``) x seeds.

    Args:
      specs: config files, each optionally ``:arg``; a bare file whose module
        defines ``get_sweep()`` expands to its listed variants.
      seeds: the seeds, one run each.
      also: a variant appended to every run's argument (e.g. ``"smoke"``); it
        is part of the run name, so smoke runs never mix with full ones.

    Returns:
      The runs, config-major, seed-minor, without duplicates.
    """
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("no seeds given")
    runs, seen = [], set()
    for spec in specs:
        path, arg = split_spec(spec)
        if arg:
            args = [arg]
        else:
            module = load_module(path)
            args = list(module.get_sweep()) if hasattr(module, "get_sweep") else [""]
        for a in args:
            full = _join_args(a, also)
            for seed in seeds:
                run = Run(path, full, seed, _run_name(path, full))
                if (run.name, seed) not in seen:
                    seen.add((run.name, seed))
                    runs.append(run)
    return runs


def group_name(workdir: str) -> str:
    """The run name of a workdir with its ``__seedS`` suffix removed."""
    return _SEED_SUFFIX.sub("", os.path.basename(os.path.normpath(workdir)))


def _default_train_fn(config, workdir: str) -> None:
    from rnnlab.training import train  # the training stack; imported only when running

    train.train_and_evaluate(config, workdir)


def run_sweep(
    runs: Sequence[Run],
    out: str,
    train_fn: Optional[Callable[[Any, str], None]] = None,
) -> dict[str, list[str]]:
    """Runs every unfinished run of the grid, one after the other.

    Args:
      runs: from :func:`expand`.
      out: the parent folder of the workdirs.
      train_fn: ``train_fn(config, workdir)``; default
        ``rnnlab.training.train.train_and_evaluate`` (which resumes from checkpoints).

    A run that raises is logged as failed and the grid goes on. A run whose
    training returns without ``results.json`` was stopped by a signal (SIGTERM,
    Ctrl-C: it saved a checkpoint); the sweep stops there too.

    Returns:
      ``{"skipped": [...], "finished": [...], "failed": [...], "interrupted": [...]}`` workdirs.
    """
    train_fn = train_fn or _default_train_fn
    os.makedirs(out, exist_ok=True)
    status = {"skipped": [], "finished": [], "failed": [], "interrupted": []}
    for i, run in enumerate(runs):
        workdir = run.workdir(out)
        if is_finished(workdir):
            status["skipped"].append(workdir)
            continue
        logging.info("sweep run %d/%d: %s", i + 1, len(runs), workdir)
        start = time.time()
        try:
            config = load_config(run.config_path, run.arg, run.seed)
            os.makedirs(workdir, exist_ok=True)
            train_fn(config, workdir)
            # Training returns without results only when a signal stopped it (at a checkpoint):
            # the signal was meant for the sweep too.
            outcome, error = ("finished", None) if is_finished(workdir) else ("interrupted", None)
        except Exception as e:  # a failed run must not stop the grid
            logging.error("run %s failed:\n%s", workdir, traceback.format_exc())
            outcome, error = "failed", f"{type(e).__name__}: {e}"
        status[outcome].append(workdir)
        record = {
            "name": run.name,
            "seed": run.seed,
            "config": run.config_path,
            "arg": run.arg,
            "status": outcome,
            "seconds": round(time.time() - start, 2),
            "error": error,
        }
        with open(os.path.join(out, LOG_FILE), "a") as f:
            f.write(json.dumps(record) + "\n")
        if outcome == "interrupted":
            logging.warning("sweep stopped: %s was interrupted (it resumes from its checkpoint on a rerun)",
                            workdir)
            break
    return status


def _parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` or ``"0-4"`` -> the seeds. Raises ``ValueError`` naming ``--seeds`` otherwise."""
    if re.fullmatch(r"\d+-\d+", text):
        lo, hi = map(int, text.split("-"))
        return list(range(lo, hi + 1))
    if not re.fullmatch(r"\d+(,\d+)*,?", text):
        raise ValueError(f"--seeds must be a comma list of seeds (0,1,2) or a range (0-4), got {text!r}")
    return [int(s) for s in text.split(",") if s]


def check_runs(runs: Sequence[Run]) -> None:
    """Loads every run's config once, so a bad file or variant fails before any run trains.

    Raises:
      ValueError, FileNotFoundError: naming the run's config spec and what is wrong.
    """
    for spec in dict.fromkeys(f"{run.config_path}:{run.arg}" if run.arg else run.config_path for run in runs):
        try:
            load_config(*split_spec(spec))
        except (ValueError, FileNotFoundError, KeyError, TypeError) as e:
            raise type(e)(f"{spec}: {e}") from e


def sweep(specs: Sequence[str], out: str, seeds: str = "0,1,2", also: str = "",
          dry_run: bool = False) -> bool:
    """Expands ``specs`` over ``seeds`` and runs the grid into ``out`` (``python -m rnnlab sweep``).

    Args:
      specs: config files, each optionally with ``:variant``.
      out: the parent folder of the workdirs.
      seeds: a comma list (``0,1,2``) or a range (``0-4``).
      also: a variant appended to every run (``smoke``).
      dry_run: only write each workdir and whether it is done to stdout.

    Returns:
      Whether no run failed and none was interrupted.
    """
    runs = expand(specs, _parse_seeds(seeds), also)
    check_runs(runs)
    if dry_run:
        for run in runs:
            done = "done" if is_finished(run.workdir(out)) else "todo"
            sys.stdout.write(f"{done}  {run.workdir(out)}\n")
        return True
    status = run_sweep(runs, out)
    logging.info(
        "sweep: %d skipped, %d finished, %d failed",
        len(status["skipped"]), len(status["finished"]), len(status["failed"]),
    )
    for workdir in status["failed"]:
        logging.error("failed: %s", workdir)
    return not status["failed"] and not status["interrupted"]
