"""The text of the tuned report (:mod:`rnnlab.experiments.tuned`): the tuned table per task, and the
gate-ablation table that marks each variant against its intact cell (:data:`ABLATION_RULE`).
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Optional, Sequence

from rnnlab.experiments import plan as plan_lib
from rnnlab.experiments import search
from rnnlab.experiments.stats import LEVEL, compare, describe, markdown_table

from rnnlab.experiments.tuned_rows import CAP_MARK, hit_cap, reference_of, split_name, tuned_tables

ABLATION_RULE = (
    "Each cell: the test metric's mean +- sample std over the seeds, the seeds reaching the task's "
    "success target (k/n; targets in tuned.md), then a mark against the intact "
    "cell of the variant's family on the same task, from the paired difference by seed (the seed runs "
    "of two models with the same seed share the generated data): **breaks** = significantly worse "
    "(the 95% t-interval of the mean paired difference excludes 0) and the variant misses the success "
    "target in >= 2 of 3 seeds (more than half of its seeds); **hurts** = significantly worse but "
    "reaching the target in most seeds; **worse** = significantly worse, the task has no target; "
    "**=** = not separable at 3 seeds (the interval includes 0); **helps** = significantly better. "
    "With 3 seeds the interval is the mean difference +- 4.303 sd / sqrt(3), so only large and "
    "consistent differences separate: '=' is no evidence of equality. 'running' / 'waiting': the "
    "search has not finished / not started."
)



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
        f"trained with seeds 1-3 (data drawn with `gen_seed` = seed). Test metric: mean +- sample std "
        f"[{pct} t-interval of the mean] over the seeds, and each seed's value. *best step*: the step of "
        f"the best validation (the reported parameters) per seed; `{CAP_MARK}` = the run stopped at the "
        "step cap, not by early stopping (validation still improving: more steps could help). *target*: "
        "seeds whose validation curve reaches the task's success target @ the median first step at which "
        "they do. *ms/step*: training time per step after compilation (median over seeds of each run's "
        "median log window after the first; the machine ran two lanes at once, so compare within a "
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


# ---------------------------------------------------------------------------
# The gate-ablation table


def ablation_mark(row: Mapping[str, Any]) -> str:
    """``breaks`` | ``hurts`` | ``worse`` | ``=`` | ``helps`` for a variant's row (:data:`ABLATION_RULE`);
    ``running`` / ``waiting`` / ``failed`` while it is not done, ``-`` without a comparison."""
    if row["state"] != "done":
        return row["state"]
    result = row["vs_reference"]
    if not result or math.isnan(result["diff"]):
        return "-"
    if not result["separable"]:
        return "="
    better = result["diff"] > 0 if row["mode"] == "max" else result["diff"] < 0
    if better:
        return "helps"
    target = row["target"]
    if not target["target"] or not target["n"]:
        return "worse"
    misses = target["n"] - target["count"]
    return "breaks" if 2 * misses > target["n"] else "hurts"


def ablation_table(plan: Sequence[plan_lib.Search], tasks: Mapping[str, Any]) -> dict[str, Any]:
    """Rows = each reference cell (``cell=lstm``, ``cell=gru``) and its variants; columns = the
    tasks the variants run on.

    Args:
      plan: the plan's searches; a variant is a search with a reference (:func:`reference_of`).
      tasks: :func:`tuned_tables`'s output.

    Returns:
      ``{"tasks": [task], "rows": [{"model", "reference" (model or None), "cells": {task:
      {"mark", "test" (describe), "vs_reference", "target"}}}], "rule"}``.
    """
    rows_by_name = {row["name"]: row for entry in tasks.values() for row in entry["rows"]}
    variants = [item for item in plan if reference_of(item)]
    columns = list(dict.fromkeys(split_name(item.name)[0] for item in variants))
    order: list[tuple[str, Optional[str]]] = []  # (model, reference model)
    for item in variants:
        ref_model = split_name(reference_of(item))[1]
        if (ref_model, None) not in order:
            order.append((ref_model, None))
        if (split_name(item.name)[1], ref_model) not in order:
            order.append((split_name(item.name)[1], ref_model))
    families = [model for model, ref in order if ref is None]
    order.sort(key=lambda m: families.index(m[1] or m[0]))  # each family's block: its cell, then variants
    table_rows = []
    for model, ref_model in order:
        cells = {}
        for task in columns:
            row = rows_by_name.get(f"{task}/{model}")
            if row is None:
                continue
            cells[task] = {"mark": "ref" if ref_model is None else ablation_mark(row),
                           "state": row["state"], "test": row["test"], "vs_reference": row["vs_reference"],
                           "target": row["target"]}
        table_rows.append({"model": model, "reference": ref_model, "cells": cells})
    return {"tasks": columns, "metrics": {t: tasks[t]["metric"] for t in columns if t in tasks},
            "rows": table_rows, "rule": ABLATION_RULE}


def ablation_markdown(table: Mapping[str, Any], tasks: Mapping[str, Any]) -> str:
    """``ablation.md``: the table of :func:`ablation_table`, the rule printed under it."""
    header = ["variant"] + [f"{t} (`{table['metrics'].get(t, '')}`)" for t in table["tasks"]]
    rows = []
    for row in table["rows"]:
        name = row["model"] + (" (intact)" if row["reference"] is None else "")
        line = [name]
        for task in table["tasks"]:
            cell = row["cells"].get(task)
            if cell is None:
                line.append("-")
                continue
            mode = tasks[task]["mode"]
            value = format_stats(cell["test"], mode, ci=False)
            target = cell["target"]
            if value != "-" and target["target"] and target["n"]:
                value += f", {target['count']}/{target['n']}"
            mark = cell["mark"]
            if mark == "ref" and cell["state"] != "done":
                mark = cell["state"]
            if mark == "ref":
                line.append(value)
            elif mark in ("running", "waiting", "failed"):
                line.append(mark if value == "-" else f"{value} ({mark})")
            else:
                line.append(f"{value} **{mark}**")
        rows.append(line)
    return "# Gate ablations\n\n" + markdown_table(header, rows) + "\n" + table["rule"] + "\n"
