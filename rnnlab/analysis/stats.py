"""Run directories and their statistics: reading runs, grouping seeds, mean +- std, tables, targets,
gate saturation.

A run directory (a workdir of ``rnnlab.training.train.train_and_evaluate``) holds
``config.json``, ``metrics.jsonl`` (one JSON object per logged step, metrics
named ``split/name``) and ``results.json`` (``{split: {name: value}}``); the names
are :mod:`rnnlab.training.workdir`'s. Runs whose directory names differ only in
their ``__seedS`` suffix form a *group* (see :mod:`rnnlab.experiments.sweep`);
statistics are each group's mean +- sample standard deviation over its seeds; t-intervals and
two-sample tests are :mod:`rnnlab.analysis.significance`'s.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any, Iterable, Mapping, Optional, Sequence

import numpy as np

from rnnlab.analysis.significance import LEVEL, describe, is_number, mean_std
from rnnlab.experiments.sweep import group_name
from rnnlab.training.workdir import CONFIG_FILE, RESULTS_FILE, flatten, read_json, read_metrics


@dataclasses.dataclass
class RunRecord:
    """What one finished (or unfinished) run directory holds.

    Attributes:
      workdir: the directory.
      group: its name without the seed suffix.
      seed: ``config.train.seed`` (or -1 when unknown).
      config: ``config.json`` as a nested dict (``{}`` when missing).
      metrics: the ``metrics.jsonl`` lines in file order.
      results: ``results.json`` flattened to ``{"split/name": value}``
        (``{}`` while the run is unfinished).
    """

    workdir: str
    group: str
    seed: int
    config: dict
    metrics: list
    results: dict

    @property
    def finished(self) -> bool:
        return bool(self.results)


def _read_json(path: str, default: Any) -> Any:
    if not os.path.isfile(path):
        return default
    return read_json(path)


def load_run(workdir: str) -> RunRecord:
    """Reads one run directory; raises ``FileNotFoundError`` if it is not a folder."""
    if not os.path.isdir(workdir):
        raise FileNotFoundError(f"not a run directory: {workdir!r}")
    config = _read_json(os.path.join(workdir, CONFIG_FILE), {})
    seed = config.get("train", {}).get("seed", -1)
    results = _read_json(os.path.join(workdir, RESULTS_FILE), {})
    return RunRecord(
        workdir=workdir,
        group=group_name(workdir),
        seed=int(seed),
        config=config,
        metrics=read_metrics(workdir),
        results={k: v for k, v in flatten(results).items() if is_number(v)},
    )


def group_runs(runs: Iterable[RunRecord]) -> dict[str, list[RunRecord]]:
    """``{group: runs sorted by seed}``, groups in order of first appearance."""
    groups: dict[str, list[RunRecord]] = {}
    for run in runs:
        groups.setdefault(run.group, []).append(run)
    return {g: sorted(rs, key=lambda r: r.seed) for g, rs in groups.items()}


def first_step_reaching(
    metrics: Sequence[Mapping[str, Any]], key: str, threshold: float, mode: str = "max"
) -> Optional[int]:
    """The first logged step at which ``key`` is ``>= threshold`` (mode max) or ``<=`` (min).

    Returns ``None`` when it never gets there.
    """
    if mode not in ("max", "min"):
        raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
    for record in metrics:
        value = record.get(key)
        if value is None or not is_number(value) or math.isnan(value):
            continue
        if (value >= threshold) if mode == "max" else (value <= threshold):
            return int(record["step"])
    return None


def train_seconds_to_step(metrics: Sequence[Mapping[str, Any]], step: int) -> float:
    """Training time until ``step``, summed from the logged ``train/steps_per_sec`` windows.

    Each training log line covers the steps since the previous one at its
    rate; compile, evaluation and checkpoint time are excluded. The window
    holding ``step`` counts in full (``step`` is normally a log step).
    """
    seconds, previous = 0.0, 0
    for record in metrics:
        sps = record.get("train/steps_per_sec")
        if sps is None or not is_number(sps) or sps <= 0 or record["step"] <= previous:
            continue
        seconds += (record["step"] - previous) / sps
        previous = record["step"]
        if previous >= step:
            return seconds
    raise ValueError(f"the log stops at step {previous}, before step {step}")


def curve(metrics: Sequence[Mapping[str, Any]], key: str) -> tuple[np.ndarray, np.ndarray]:
    """``(steps int[N], values f64[N])`` of one metric over a run's log."""
    pairs = [(r["step"], r[key]) for r in metrics if key in r and is_number(r[key])]
    if not pairs:
        return np.zeros(0, np.int64), np.zeros(0, np.float64)
    steps, values = zip(*pairs)
    return np.asarray(steps, np.int64), np.asarray(values, np.float64)


def summarize(
    groups: Mapping[str, Sequence[RunRecord]], keys: Optional[Sequence[str]] = None
) -> dict[str, dict[str, tuple[float, float, int]]]:
    """``{group: {metric: (mean, std, n)}}`` over the finished runs of each group.

    Args:
      groups: from :func:`group_runs`.
      keys: metric names (``"test/accuracy"``); default every numeric result.
    """
    summary = {}
    for group, runs in groups.items():
        done = [r for r in runs if r.finished]
        names = keys or sorted({k for r in done for k in r.results})
        summary[group] = {k: mean_std([r.results.get(k, float("nan")) for r in done]) for k in names}
    return summary


def format_mean_std(stats: tuple[float, float, int], digits: int = 3) -> str:
    """``"0.912 +- 0.004"`` (``"-"`` when there are no values)."""
    mean, std, n = stats
    if n == 0:
        return "-"
    return f"{mean:.{digits}f} +- {std:.{digits}f}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub Markdown table."""
    lines = ["| " + " | ".join(map(str, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def page_block(page: str, name: str) -> str:
    """The text of a page (Markdown) between ``<!-- NAME: how it is made -->`` and ``<!-- /NAME -->``.

    A page keeps each table that code makes from committed results in such a block, so that a test can
    check that the text and the results agree (compare with the code's output) and a command can
    rewrite it (:func:`with_page_block`).

    Raises:
      ValueError: the page has no such block, or more than one.
    """
    opening, closing = f"<!-- {name}:", f"<!-- /{name} -->"
    if page.count(opening) != 1 or page.count(closing) != 1:
        raise ValueError(f"the page needs exactly one block '{opening} ... -->' ... '{closing}'")
    return page.split(opening, 1)[1].split("-->", 1)[1].split(closing, 1)[0]


def with_page_block(page: str, name: str, content: str) -> str:
    """``page`` with the block ``name`` (:func:`page_block`) holding ``content`` between blank lines."""
    old = page_block(page, name)
    head, tail = page.split(f"<!-- {name}:", 1)
    comment, rest = tail.split("-->", 1)
    return head + f"<!-- {name}:" + comment + "-->" + rest.replace(old, f"\n{content.strip()}\n", 1)


def write_page_block(path: str, name: str, content: str) -> None:
    """Rewrites the block ``name`` of the page at ``path`` (:func:`with_page_block`) in place."""
    with open(path, encoding="utf-8") as f:
        page = with_page_block(f.read(), name, content)
    with open(path, "w", encoding="utf-8") as f:
        f.write(page)


def summary_table(
    summary: Mapping[str, Mapping[str, tuple[float, float, int]]],
    keys: Sequence[str],
    digits: int = 3,
) -> str:
    """One row per group: ``seeds`` and ``mean +- std`` of each key."""
    header = ["run", "seeds"] + list(keys)
    rows = []
    for group, stats in summary.items():
        n = max((stats[k][2] for k in keys if k in stats), default=0)
        rows.append([group, n] + [format_mean_std(stats.get(k, (0, 0, 0)), digits) for k in keys])
    return markdown_table(header, rows)


def saturation(values: np.ndarray, eps: float = 0.1) -> dict[str, float]:
    """The fraction of gate values ``< eps`` (near 0), ``> 1 - eps`` (near 1) and between."""
    values = np.asarray(values, np.float64).ravel()
    if values.size == 0:
        raise ValueError("no gate values to measure")
    low = float(np.mean(values < eps))
    high = float(np.mean(values > 1 - eps))
    return {"near_0": low, "near_1": high, "middle": 1.0 - low - high}


def parse_target(text: str) -> tuple[str, str, float]:
    """``"valid/mse<=0.01"`` -> ``("valid/mse", "min", 0.01)``; ``">="`` gives ``"max"``."""
    for op, mode in (("<=", "min"), (">=", "max")):
        if op in text:
            key, _, value = text.partition(op)
            return key.strip(), mode, float(value)
    raise ValueError(f"a target is METRIC<=VALUE or METRIC>=VALUE, got {text!r}")


def target_table(groups: Mapping[str, Sequence[RunRecord]], target: str) -> tuple[str, dict]:
    """Per group: seeds that reach ``target`` on their logged curve, the step and the training time.

    Steps and seconds (:func:`train_seconds_to_step`) are mean +- std over the
    seeds that reach it.

    Returns:
      ``(markdown, {group: {"reached": k, "seeds": n, "step": stats, "seconds": stats, "per_seed":
      {"seeds", "steps", "seconds"} (None for a seed that misses it)}})``.
    """
    key, mode, threshold = parse_target(target)
    rows, data = [], {}
    for group, runs in groups.items():
        done = [r for r in runs if r.finished]
        steps = [first_step_reaching(r.metrics, key, threshold, mode) for r in done]
        hits = [(r, s) for r, s in zip(done, steps) if s is not None]
        seconds = [train_seconds_to_step(r.metrics, s) for r, s in hits]
        data[group] = {"reached": len(hits), "seeds": len(done), "step": mean_std([s for _, s in hits]),
                       "seconds": mean_std(seconds),
                       "per_seed": {"seeds": [r.seed for r in done], "steps": steps,
                                    "seconds": [train_seconds_to_step(r.metrics, s) if s is not None else None
                                                for r, s in zip(done, steps)]}}
        rows.append([group, f"{len(hits)}/{len(done)}", format_mean_std(data[group]["step"], 0),
                     format_mean_std(data[group]["seconds"], 1)])
    md = f"\nTarget `{target}` (first logged evaluation reaching it):\n\n"
    return md + markdown_table(["run", "seeds reaching", "step", "train seconds"], rows), data


def per_seed(groups: Mapping[str, Sequence[RunRecord]], keys: Sequence[str],
             level: float = LEVEL) -> dict[str, dict[str, dict[str, Any]]]:
    """``{group: {key: describe(...)}}``: each finished seed's value with mean, std and t-interval.

    Args:
      groups: from :func:`group_runs`.
      keys: metric names (``"test/accuracy"``).
      level: the interval's coverage.
    """
    out = {}
    for group, runs in groups.items():
        done = [r for r in runs if r.finished]
        out[group] = {k: describe([r.results.get(k) for r in done], [r.seed for r in done], level) for k in keys}
    return out


def steady_steps_per_sec(metrics: Sequence[Mapping[str, Any]]) -> float:
    """Training speed after compilation: the median ``train/steps_per_sec`` of the log windows
    after the first (the first window includes compiling the train step).

    Returns NaN when the log holds fewer than 2 windows.
    """
    rates = curve(metrics, "train/steps_per_sec")[1]
    return float(np.median(rates[1:])) if rates.size > 1 else float("nan")


def first_window_overhead(metrics: Sequence[Mapping[str, Any]]) -> float:
    """Seconds the first log window took beyond its steps at the steady speed: an estimate of
    compile and start-up time, ``s1 / r1 - s1 / steady`` (``s1`` steps at ``r1`` steps/s).

    Returns NaN when the log holds fewer than 2 windows.
    """
    steps, rates = curve(metrics, "train/steps_per_sec")
    steady = steady_steps_per_sec(metrics)
    if math.isnan(steady) or rates[0] <= 0 or steady <= 0:
        return float("nan")
    return float(steps[0] / rates[0] - steps[0] / steady)
