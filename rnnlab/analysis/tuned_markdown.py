"""The text of the tuned report (:mod:`rnnlab.analysis.tuned`): the tuned table per task."""

from __future__ import annotations

import math
from typing import Any, Mapping, Optional

from rnnlab.analysis.stats import markdown_table
from rnnlab.analysis.significance import LEVEL

from rnnlab.analysis.tuned_rows import CAP_MARK

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
        f"trained with new seeds (those of the *per seed* column; data drawn with `gen_seed` = seed). Test metric: mean +- sample std "
        f"[{pct} t-interval of the mean] over the seeds, and each seed's value. *best step*: the step of "
        f"the best validation (the reported parameters) per seed; `{CAP_MARK}` = the run stopped at the "
        "step cap, not by early stopping (validation still improving: more steps could help). *target*: "
        "seeds whose validation curve reaches the task's success target @ the median first step at which "
        "they do. *ms/step*: training time per step after compilation (median over seeds of each run's "
        "median log window after the first; on a machine shared by several runs, compare within a "
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
