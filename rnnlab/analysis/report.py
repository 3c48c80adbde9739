"""Reports of run directories: ``summary.md``, ``summary.json`` and figures, grouped over seeds.

    python -m rnnlab report runs/claims/negation-* --out=docs/results/negation

:func:`write_report` assembles them from :mod:`rnnlab.analysis.stats`
(reading runs, statistics, tables), :mod:`rnnlab.analysis.plots` (figures) and
:mod:`rnnlab.analysis.gate_analysis` (the gates of trained LSTMs). ``--out``
is a folder that receives ``summary.md`` (the tables), ``summary.json`` and PNG
figures: learning curves, bars of a final metric and, for runs with a recurrent
model, forget-gate histograms and per-word gate heat maps of the trained cells.
"""

from __future__ import annotations

import json
import os
from typing import Any, Optional, Sequence

import numpy as np

from rnnlab.analysis.gate_analysis import count_params, gate_report
from rnnlab.analysis.saturation_report import saturation_report
from rnnlab.analysis.plots import plot_bars, plot_learning_curves
from rnnlab.analysis.stats import (RunRecord, curve, format_mean_std, group_runs, load_run, markdown_table, per_seed,
                                   summarize, summary_table, target_table)
from rnnlab.analysis.significance import LEVEL, mean_std
from rnnlab.training.workdir import CHECKPOINT_DIR


def quiet() -> None:
    """Keeps a notebook's output to what it prints itself: absl logging at WARNING, tfds bars off.

    Training then logs nothing below a warning and dataset preparation draws no
    progress bars; call it once at the top of a notebook.
    """
    import tensorflow_datasets as tfds
    from absl import logging

    logging.set_verbosity(logging.WARNING)
    tfds.disable_progress_bar()


def _metric_keys(runs: Sequence[RunRecord], split: str) -> list[str]:
    keys = sorted({k for r in runs for k in r.results if k.startswith(split + "/")})
    return keys


def _loss_like(key: str) -> bool:
    return any(w in key for w in ("loss", "mse", "nll"))


def write_report(
    workdirs: Sequence[str],
    out: str,
    split: str = "test",
    curve_key: Optional[str] = None,
    gates: bool = True,
    targets: Sequence[str] = (),
) -> dict[str, Any]:
    """Writes ``summary.md``, ``summary.json`` and figures for a set of runs.

    Args:
      workdirs: run directories (several seeds of each group).
      out: the output folder.
      split: the results split whose metrics go into the table and bars.
      curve_key: the metric plotted over steps; default ``valid/accuracy``
        when logged, else ``valid/loss``.
      gates: also trace the gates of recurrent models (forget-gate histogram,
        heat maps) of the runs whose model is recurrent, and write the per-unit
        saturation report (:func:`rnnlab.analysis.saturation_report.saturation_report`)
        into ``out/saturation``.
      targets: ``"valid/accuracy>=0.95"``-style targets; each adds a table of
        the seeds reaching it, the step and the training time to it.

    ``summary.json`` holds ``summary`` (``{group: {metric: [mean, std, n]}}``), ``per_seed``
    (``{group: {metric: {"seeds", "values", "mean", "std", "n", "ci", "level"}}}``: each seed's
    value and the 95% t-interval of the mean, :func:`rnnlab.analysis.significance.describe`),
    ``timing``, ``targets`` and ``workdirs``.

    Returns:
      ``{"summary": ..., "per_seed": ..., "figures": [paths], "table": markdown}``.
    """
    runs = [load_run(w) for w in workdirs]
    if not runs:
        raise ValueError("no run directories given")
    groups = group_runs(runs)
    keys = _metric_keys(runs, split)
    summary = summarize(groups, keys)
    extra = {g: _timing(rs) for g, rs in groups.items()}
    seeds = per_seed(groups, keys)
    table = summary_table(summary, keys)
    table += "\n" + per_seed_table(seeds, keys)
    timing_rows = [[g, t["params"], format_mean_std(t["steps_per_sec"], 1), format_mean_std(t["wall_s"], 1)]
                   for g, t in extra.items()]
    table += "\n" + markdown_table(["run", "params (no embedding)", "train steps/s (median of log)", "wall s"],
                                    timing_rows)
    reached = {}
    for target in targets:
        md, reached[target] = target_table(groups, target)
        table += md
    os.makedirs(out, exist_ok=True)
    figures = []
    logged = {k for r in runs for m in r.metrics for k in m}
    if curve_key is None:
        curve_key = next((k for k in ("valid/accuracy", "valid/loss", "train/loss") if k in logged), None)
    if curve_key:
        curves = {g: [curve(r.metrics, curve_key) for r in rs] for g, rs in groups.items()}
        figures.append(os.path.join(out, "curves.png"))
        plot_learning_curves(curves, figures[-1], curve_key, _loss_like(curve_key))
    if keys:
        bar_keys = [k for k in keys if not _loss_like(k)] or keys
        figures.append(os.path.join(out, "bars.png"))
        plot_bars(summary, bar_keys, figures[-1], split)
    if gates:
        gate_md, gate_figs = gate_report(groups, out)
        table += gate_md
        figures += gate_figs
        # per-unit keep-gate statistics at init, first, last and best checkpoints (saturation/)
        saturation_report([r.workdir for r in runs], os.path.join(out, "saturation"), split=split,
                          targets=targets)
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write(f"Mean +- sample std over seeds; split `{split}`.\n\n" + table)
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump({"summary": summary, "per_seed": seeds, "timing": extra, "targets": reached,
                   "workdirs": [r.workdir for r in runs]}, f, indent=1)
    return {"summary": summary, "per_seed": seeds, "figures": figures, "table": table}


def per_seed_table(seeds: dict[str, dict[str, dict[str, Any]]], keys: Sequence[str], digits: int = 3) -> str:
    """One row per group: its seeds, and each key's per-seed values with the t-interval of the mean.

    Args:
      seeds: :func:`rnnlab.analysis.stats.per_seed`'s ``{group: {key: describe(...)}}``.
      keys: the metric names (columns).
      digits: decimals.
    """
    def cell(d: dict[str, Any]) -> str:
        values = ", ".join("-" if v is None else f"{v:.{digits}f}" for v in d["values"]) or "-"
        low, high = d["ci"]
        return values if np.isnan(low) else f"{values} [{low:.{digits}f}, {high:.{digits}f}]"

    rows = []
    for group, by_key in seeds.items():
        some = next(iter(by_key.values()), {"seeds": []})
        rows.append([group, ", ".join(map(str, some["seeds"])) or "-"] + [cell(by_key[k]) for k in keys])
    return (f"\nPer seed, [{LEVEL:.0%} t-interval of the mean]:\n\n"
            + markdown_table(["run", "seed"] + list(keys), rows))


def _timing(runs: Sequence[RunRecord]) -> dict[str, Any]:
    """Parameter count, training steps/s (median of the log) and wall time, over seeds."""
    params = sorted({int(r.results[k]) for r in runs for k in r.results if k.endswith("num_params")})
    if not params:
        params = sorted({count_params(r.workdir) for r in runs
                         if r.finished and os.path.isdir(os.path.join(r.workdir, CHECKPOINT_DIR))})
    sps = [float(np.median(curve(r.metrics, "train/steps_per_sec")[1])) for r in runs if len(curve(r.metrics, "train/steps_per_sec")[1])]
    wall = [float(r.results[k]) for r in runs for k in r.results if k.startswith("wall_time")]
    return {
        "params": "/".join(map(str, params)) or "-",
        "steps_per_sec": mean_std(sps),
        "wall_s": mean_std(wall),
    }
