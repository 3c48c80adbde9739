"""The claims study's gate-ablation table: each gate variant of a plan marked against its intact cell.

    python -m studies.claims.ablation --plan=studies/claims/plan.py --runs=runs/tuned --out=docs/results/tuned

Reads the plan's searches with :func:`rnnlab.analysis.tuned_rows.tuned_tables` (a variant is a search whose
``after`` names its family's cell on the same task) and writes ``ablation.md`` and ``ablation.json``
(:func:`write_ablation`); ``python -m rnnlab report --plan`` writes the tuned table itself.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any, Mapping, Optional, Sequence

from absl import app, flags

from rnnlab.analysis.stats import markdown_table
from rnnlab.analysis.tuned import jsonable
from rnnlab.analysis.tuned_markdown import format_stats
from rnnlab.analysis.tuned_rows import load_targets, reference_of, split_name, tuned_tables
from rnnlab.experiments import plan as plan_lib

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


def write_ablation(plan_path: str, runs: str, out: str) -> dict[str, Any]:
    """Writes ``out/ablation.md`` and ``out/ablation.json`` for the plan's output; returns the table."""
    plan = plan_lib.load_plan(plan_path)
    tasks = tuned_tables(plan, runs, load_targets(plan_path))
    table = ablation_table(plan, tasks)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "ablation.md"), "w") as f:
        f.write(ablation_markdown(table, tasks))
    with open(os.path.join(out, "ablation.json"), "w") as f:
        json.dump(jsonable(table), f, indent=1)
    return table


def main(argv: Sequence[str]) -> None:
    """absl entry: ``--plan``, ``--runs``, ``--out``."""
    del argv
    f = flags.FLAGS
    write_ablation(f.plan, f.runs, f.out)
    with open(os.path.join(f.out, "ablation.md")) as text:
        print(text.read(), end="")


if __name__ == "__main__":
    flags.DEFINE_string("plan", "studies/claims/plan.py", "the claims plan file")
    flags.DEFINE_string("runs", "runs/tuned", "the plan's output folder")
    flags.DEFINE_string("out", "docs/results/tuned", "where ablation.md and ablation.json go")
    app.run(main)
