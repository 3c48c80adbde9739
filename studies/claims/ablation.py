"""The claims study's gate-ablation table: each gate variant marked against its intact cell.

    python -m studies.claims.ablation --tuned=docs/results/tuned/tuned.json --out=docs/results/tuned \\
        --page=docs/findings.md
    python -m studies.claims.ablation --plan=studies/claims/plan.py --runs=runs/tuned --out=docs/results/tuned

The rows are the tuned report's (:func:`rnnlab.analysis.tuned_rows.tuned_tables`, saved in
``tuned.json`` by ``python -m rnnlab report --plan``): a variant is a row whose ``reference`` names its
family's intact cell on the same task, and its ``vs_reference`` holds the paired test by seed. The
table is made from those rows alone, so the committed ``tuned.json`` regenerates the committed
``ablation.md`` and ``ablation.json`` (:func:`write_ablation`; a test checks that they agree).
"""

from __future__ import annotations

import json
import math
import os
from typing import Any, Mapping, Optional, Sequence

from absl import app, flags

from rnnlab.analysis.significance import holm
from rnnlab.analysis.stats import markdown_table, write_page_block
from rnnlab.analysis.tuned import jsonable
from rnnlab.analysis.tuned_markdown import format_stats
from rnnlab.analysis.tuned_rows import load_targets, split_name, tuned_tables
from rnnlab.experiments import plan as plan_lib

ALPHA = 0.05  # family-wise error rate of each ablation table (Holm-Bonferroni)
ABLATION_RULE = (
    "Each cell: the test metric's mean +- sample std over the seeds and the seeds reaching the task's "
    "success target on their validation curve (k/n; targets in tuned.md), then a mark against the intact "
    "cell of the variant's family on the same task. The test is the paired t-test by seed (the seed runs of "
    "two models with the same seed share the generated data); the table is one family, its p-values "
    f"Holm-Bonferroni adjusted (p_holm, family-wise error {ALPHA}). **helps** / **worse**: p_holm <= {ALPHA}, "
    "better / worse, and no seed of the variant stopped at its step cap; **breaks**: worse and the variant "
    "misses the target in more than half of its seeds; **hurts**: worse but reaching the target in most "
    "seeds; **capped**: worse, but at least one seed stopped at the step cap (still improving: no verdict "
    "that it cannot learn); **n.s.**: not separable (p_holm > "
    f"{ALPHA}), which is no evidence of equality (with 3 seeds only large, consistent differences "
    "separate); **n.s., fails k/n**: not separable, yet the variant misses the target in more than half "
    "of its seeds where the intact cell reaches it in more than half. 'running' / 'waiting': the search "
    "has not finished / not started."
)


def _more_than_half_miss(target: Mapping[str, Any]) -> bool:
    return bool(target["target"] and target["n"] and 2 * (target["n"] - target["count"]) > target["n"])


def ablation_mark(row: Mapping[str, Any], p_holm: float, reference: Optional[Mapping[str, Any]] = None) -> str:
    """The mark of a variant's row (:data:`ABLATION_RULE`) given its Holm-adjusted p and its intact
    cell's row; its state while it is not done, ``-`` without a comparison."""
    if row["state"] != "done":
        return row["state"]
    result = row["vs_reference"]
    if not result or math.isnan(result["diff"]) or math.isnan(p_holm):
        return "-"
    target = row["target"]
    if p_holm > ALPHA:
        if reference is not None and _more_than_half_miss(target) and not _more_than_half_miss(reference["target"]):
            return f"n.s., fails {target['n'] - target['count']}/{target['n']}"
        return "n.s."
    better = result["diff"] > 0 if row["mode"] == "max" else result["diff"] < 0
    if better:
        return "helps"
    if any(row.get("hit_cap") or []):
        return "capped"
    if not target["target"] or not target["n"]:
        return "worse"
    return "breaks" if _more_than_half_miss(target) else "hurts"


def ablation_table(tasks: Mapping[str, Any]) -> dict[str, Any]:
    """Rows = each intact cell and its variants; columns = the tasks the variants run on.

    Args:
      tasks: the tuned report's tasks (``tuned.json["tasks"]``, :func:`tuned_tables`).

    Returns:
      ``{"tasks": [task], "metrics", "rows": [{"model", "reference" (model or None), "cells": {task:
      {"mark", "state", "test", "vs_reference", "p_holm", "target"}}}], "alpha", "tests" (the family's
      size), "rule"}``.
    """
    rows_by_name = {row["name"]: row for entry in tasks.values() for row in entry["rows"]}
    variants = [row for row in rows_by_name.values() if row.get("reference")]
    family = [row for row in variants if row["state"] == "done" and row["vs_reference"]]
    adjusted = dict(zip([row["name"] for row in family], holm([row["vs_reference"]["p"] for row in family], ALPHA)))
    columns = list(dict.fromkeys(row["task"] for row in variants))
    order: list[tuple[str, Optional[str]]] = []  # (model, its intact cell's model or None)
    for row in variants:
        reference_model = split_name(row["reference"])[1]
        for entry in ((reference_model, None), (row["model"], reference_model)):
            if entry not in order:
                order.append(entry)
    families = [model for model, reference in order if reference is None]
    order.sort(key=lambda m: families.index(m[1] or m[0]))  # each family's block: its cell, then variants
    table_rows = []
    for model, reference_model in order:
        cells = {}
        for task in columns:
            row = rows_by_name.get(f"{task}/{model}")
            if row is None:
                continue
            p_holm = adjusted.get(row["name"], {"p_holm": float("nan")})["p_holm"]
            reference = rows_by_name.get(row["reference"]) if row.get("reference") else None
            cells[task] = {"mark": "ref" if reference_model is None else ablation_mark(row, p_holm, reference),
                           "state": row["state"], "test": row["test"], "vs_reference": row["vs_reference"],
                           "p_holm": p_holm, "target": row["target"]}
        table_rows.append({"model": model, "reference": reference_model, "cells": cells})
    return {"tasks": columns, "metrics": {t: tasks[t]["metric"] for t in columns if t in tasks},
            "rows": table_rows, "alpha": ALPHA, "tests": len(family), "rule": ABLATION_RULE}


def _cell_text(cell: Optional[Mapping[str, Any]], mode: str, value_of, p_label: str) -> str:
    """One cell of an ablation table: the value, the seeds reaching the target, the mark with its p_holm
    (or the search's state while it is not done)."""
    if cell is None:
        return "-"
    value = value_of(cell["test"], mode)
    target = cell["target"]
    if value != "-" and target["target"] and target["n"]:
        value += f", {target['count']}/{target['n']}"
    mark = cell["state"] if cell["mark"] == "ref" and cell["state"] != "done" else cell["mark"]
    if mark == "ref":
        return value
    if mark in ("running", "waiting", "failed", "-"):
        return mark if value == "-" else f"{value} ({mark})"
    return f"{value} **{mark}** ({p_label}{cell['p_holm']:.2g})"


def _rows(table: Mapping[str, Any], tasks: Mapping[str, Any], name_of, value_of, p_label: str) -> list[list[str]]:
    return [[name_of(row)] + [_cell_text(row["cells"].get(task), tasks[task]["mode"], value_of, p_label)
                              for task in table["tasks"]] for row in table["rows"]]


def ablation_markdown(table: Mapping[str, Any], tasks: Mapping[str, Any]) -> str:
    """``ablation.md``: the table of :func:`ablation_table`, each mark with its p_holm, the rule under it."""
    header = ["variant"] + [f"{t} (`{table['metrics'].get(t, '')}`)" for t in table["tasks"]]
    rows = _rows(table, tasks, lambda row: row["model"] + (" (intact)" if row["reference"] is None else ""),
                 lambda test, mode: format_stats(test, mode, ci=False), "p_holm ")
    return (f"# Gate ablations\n\n{markdown_table(header, rows)}\n{table['rule']} This table: "
            f"{table['tests']} tests.\n")


LABELS = {  # the findings page's names of the plan's models and tasks
    "cell=lstm": "LSTM (intact, forget bias 1)", "cell=lstm_nig": "no input gate (NIG)",
    "cell=lstm_nfg": "no forget gate (NFG)", "cell=lstm_nog": "no output gate (NOG)",
    "cell=lstm_cifg": "coupled input-forget (CIFG)", "cell=lstm+peephole": "peepholes (Graves)",
    "cell=min_lstm": "minLSTM (gates and candidate read x only)", "cell=lstm+fb=0.0": "forget bias 0",
    "cell=lstm+fb=3.0": "forget bias 3", "cell=gru": "GRU (intact)", "cell=gru_nrg": "no reset gate",
    "cell=gru_nug": "no update gate", "cell=min_gru": "minGRU (gates and candidate read x only)",
    "negation_tail": "negation with tails", "adding100": "adding T=100", "copy100": "copy T=100",
    "future_context": "future context", "adding400": "adding T=400",
}


def _page_value(test: Mapping[str, Any], mode: str) -> str:
    if not test["n"]:
        return "-"
    return f"{test['mean']:.3f} +- {test['std']:.3f}" if mode == "max" else f"{test['mean']:.2g} +- {test['std']:.1g}"


def findings_markdown(table: Mapping[str, Any], tasks: Mapping[str, Any]) -> str:
    """The table of docs/findings.md, section 4: :func:`ablation_table` with the page's names; each cell
    the mean +- sample std over seeds, the seeds reaching the target, the mark and its p_holm."""
    header = ["variant"] + [LABELS.get(t, t) for t in table["tasks"]]
    return markdown_table(header, _rows(table, tasks, lambda row: LABELS.get(row["model"], row["model"]),
                                        _page_value, ""))


def write_ablation(tasks: Mapping[str, Any], out: str) -> dict[str, Any]:
    """Writes ``out/ablation.md`` and ``out/ablation.json`` from the tuned report's tasks; returns the table."""
    table = ablation_table(tasks)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "ablation.md"), "w") as f:
        f.write(ablation_markdown(table, tasks))
    with open(os.path.join(out, "ablation.json"), "w") as f:
        json.dump(jsonable(table), f, indent=1)
        f.write("\n")
    return table


def tasks_of(tuned: str = "", plan: str = "", runs: str = "") -> dict[str, Any]:
    """The tuned report's tasks: from a saved ``tuned.json``, or read from a plan's output folder."""
    if tuned:
        with open(tuned) as f:
            return json.load(f)["tasks"]
    return tuned_tables(plan_lib.load_plan(plan), runs, load_targets(plan))


def main(argv: Sequence[str]) -> None:
    """absl entry: ``--tuned`` (a saved tuned.json) or ``--plan`` and ``--runs``; ``--out``."""
    del argv
    f = flags.FLAGS
    tasks = tasks_of(f.tuned, f.plan, f.runs)
    table = write_ablation(tasks, f.out)
    if f.page:
        write_page_block(f.page, "ablation", findings_markdown(table, tasks))
    print(ablation_markdown(table, tasks), end="")


if __name__ == "__main__":
    flags.DEFINE_string("tuned", "", "a tuned.json written by python -m rnnlab report --plan")
    flags.DEFINE_string("plan", "studies/claims/plan.py", "the claims plan file (without --tuned)")
    flags.DEFINE_string("runs", "runs/tuned", "the plan's output folder (without --tuned)")
    flags.DEFINE_string("out", "docs/results/tuned", "where ablation.md and ablation.json go")
    flags.DEFINE_string("page", "", "also rewrite this page's ablation block (docs/findings.md)")
    app.run(main)
