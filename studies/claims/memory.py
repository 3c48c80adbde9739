"""Claim 3 on the bracketed rate grid (:mod:`studies.claims.memory_plan`): the table and figure of
``docs/findings.md`` section 3, made from the plan's tuned report.

    python -m rnnlab report --plan=studies/claims/memory_plan.py --runs=runs/memory --out=docs/results/memory
    python -m studies.claims.memory --tuned=docs/results/memory/tuned.json --out=docs/results/memory \\
        --page=docs/findings.md

Per task and model: the rate the grid chose and whether it lay at the grid's edge (then two more
rates beyond it were tried, :func:`rnnlab.experiments.plan.bracket_values`), the rate finally chosen
and whether values on both sides of it were tried, the seeds whose validation curve reached the
task's target, and the test metric over the seeds. Each variant is compared with the LSTM (forget
bias 1) on the same task by the paired t-test on the test metric (the seed runs of two models with the
same seed share their generated data); the comparisons are one family, Holm-Bonferroni adjusted. Everything is computed from the committed ``tuned.json``
(:func:`memory_summary`), so a test can check the page against it.
"""

from __future__ import annotations

import json
import os
from typing import Any, Mapping, Optional, Sequence

from absl import app, flags

from rnnlab.analysis.plots import plot_seed_bars
from rnnlab.analysis.significance import compare, holm
from rnnlab.analysis.stats import markdown_table, write_page_block
from rnnlab.analysis.tuned_markdown import format_comparison, format_stats
from rnnlab.experiments.plan import bracket_values
from studies.claims import memory_plan
from studies.claims.figures import COLORS

ALPHA = 0.05
REFERENCE = "lstm"
LABELS = {
    "lstm": "LSTM (forget bias 1)", "lstm+fb=3": "LSTM, forget bias 3", "lstm_nfg": "LSTM, no forget gate",
    "lstm_cifg": "CIFG LSTM (coupled)", "gru": "GRU",
    "adding100": "adding T=100", "copy100": "copy T=100", "adding400": "adding T=400", "copy400": "copy T=400",
}
PLAN_NAMES = {"lstm": "cell=lstm", "lstm+fb=3": "cell=lstm+fb=3.0", "lstm_nfg": "cell=lstm_nfg",
              "lstm_cifg": "cell=lstm_cifg", "gru": "cell=gru"}  # the tuned plan's names: its figures' colours
CHANCE = {"adding": ("always 1.0 (1/6)", 1 / 6), "copy": ("chance (1/8)", 1 / 8)}
METRIC_NAMES = {"adding": "mse", "copy": "recalled acc."}  # of each task kind, as the table heads them
TARGET_LINE = {"adding": ("target (0.01)", 0.01), "copy": ("target (0.95)", 0.95)}
RULE = (
    "Each cell: seeds whose validation curve reached the target (k/n), the test metric's mean +- sample std "
    "over the seeds, and the learning rate chosen (`edge`: the grid's best lay at its edge, so two more rates "
    "beyond it were tried; `*` after the rate: the chosen rate is itself the largest or smallest tried; "
    "`k at cap`: k seeds stopped at the 2000-step cap, not by early stopping: still improving; `k failed`: k "
    "seed runs stopped with an error, such as a non-finite gradient, counted as not reaching the target, "
    "the mean and the test over the seeds that finished). "
    "Each variant against the LSTM with forget bias 1 on the same task: the difference of the test metric's "
    "means with its 95% interval and the paired t-test by seed (the seed runs of two models with the same seed "
    f"share their generated data); the table's tests are one family, Holm-Bonferroni adjusted (family-wise "
    f"error {ALPHA}). 'not separable' is no evidence of equality. A seed that fails lands far from one that "
    "succeeds, so a test over 5 seeds of which some fail has wide intervals: the seeds at target are the "
    "plainer reading."
)


def _rows_by_name(tuned: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {row["name"]: row for entry in tuned["tasks"].values() for row in entry["rows"]}


def model_summary(task: str, model: str, rows: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """One (task, model): grid rate, tried rates, chosen rate, seeds at target, test statistics.

    Returns:
      ``{"model", "label", "state", "grid_rate", "grid_edge", "tried": [rates], "rate", "bracketed",
      "reached", "n", "failed", "capped", "test": {mean, std, ci, n, values, seeds}}`` (rates None while
      not run). ``failed``: seed runs that stopped with an error (the row's ``failed_seeds``; the search's
      state is then ``failed``, and with some seeds finished the model counts as done): they count in
      ``n``, not in ``reached``, and ``test`` holds the finished seeds only.
    """
    grid_row, row = rows.get(f"grid/{task}/{model}"), rows.get(f"{task}/{model}")
    grid_rate = grid_row["learning_rate"] if grid_row else None
    extension = bracket_values(grid_rate, memory_plan.LEARNING_RATES) if grid_rate else ()
    tried = sorted(set(memory_plan.LEARNING_RATES) | set(extension))
    rate = row["learning_rate"] if row else None
    test = row["test"] if row else {"n": 0, "values": [], "seeds": []}
    target = row["target"] if row else {"count": 0, "n": 0}
    state = row["state"] if row else "waiting"
    failed = len(row.get("failed_seeds", ())) if row else 0  # seed runs that stopped with an error
    return {
        "model": model, "label": LABELS[model], "state": "done" if state == "failed" and target["n"] else state,
        "grid_rate": grid_rate, "grid_edge": len(extension) > 1,  # bracket goes past the grid at its edges only
        "tried": tried, "rate": rate, "bracketed": bool(rate) and min(tried) < rate < max(tried),
        "reached": target["count"], "n": target["n"] + failed, "failed": failed,
        "capped": sum(bool(c) for c in (row or {}).get("hit_cap", [])), "test": test,
    }


def memory_summary(tuned: Mapping[str, Any]) -> dict[str, Any]:
    """Every task and model of the plan, with each variant's paired test against the LSTM, Holm-adjusted.

    Args:
      tuned: the plan's tuned report (``tuned.json`` of ``python -m rnnlab report --plan``).

    Returns:
      ``{"tasks": {task: {"metric", "mode", "models": [model_summary + "vs_lstm"]}}, "alpha", "rule"}``;
      ``vs_lstm`` is :func:`compare`'s result (paired by seed) with ``p_holm`` and ``rejected``, or None
      (the LSTM itself, or a side not done).
    """
    rows = _rows_by_name(tuned)
    tasks, tests = {}, []
    for task in memory_plan.TASKS:
        entry = tuned["tasks"].get(task, {})
        models = [model_summary(task, m, rows) for m in memory_plan.MODELS]
        reference = models[list(memory_plan.MODELS).index(REFERENCE)]
        for m in models:
            m["vs_lstm"] = None
            done = m["state"] == reference["state"] == "done" and m["n"] and reference["n"]
            if m["model"] != REFERENCE and done:
                test = m["test"], reference["test"]
                tests.append((m, compare(test[0]["values"], test[1]["values"], test[0]["seeds"], test[1]["seeds"])))
        tasks[task] = {"metric": entry.get("metric"), "mode": entry.get("mode"), "models": models}
    for (m, result), adjusted in zip(tests, holm([result["p"] for _, result in tests], ALPHA)):
        m["vs_lstm"] = {**result, "p_holm": adjusted["p_holm"], "rejected": adjusted["rejected"]}
    return {"tasks": tasks, "alpha": ALPHA, "rule": RULE}


def _kind(task: str) -> str:
    """``"adding"`` or ``"copy"``: the task of a plan task name such as ``copy400``."""
    return "adding" if task.startswith("adding") else "copy"


def _rate_text(m: Mapping[str, Any]) -> str:
    if m["rate"] is None:
        return "-"
    return f"{m['rate']:.3g}" + ("" if m["bracketed"] else "*") + (" edge" if m["grid_edge"] else "")


def _cell_text(m: Mapping[str, Any], mode: str) -> str:
    if m["state"] != "done":
        return m["state"]
    capped = f", {m['capped']} at cap" if m["capped"] else ""
    failed = f", {m['failed']} failed" if m.get("failed") else ""
    return (f"{m['reached']}/{m['n']}, {format_stats(m['test'], mode, ci=False)}, lr {_rate_text(m)}{capped}"
            f"{failed}")


def memory_markdown(summary: Mapping[str, Any]) -> str:
    """The page's block: models x tasks, then each variant against the LSTM with p and p_holm."""
    tasks = summary["tasks"]
    header = ["model"] + [f"{LABELS[t]} ({METRIC_NAMES[_kind(t)]})" for t in tasks]
    table = markdown_table(header, [[LABELS[model]] + [_cell_text(tasks[t]["models"][i], tasks[t]["mode"] or "max")
                                                        for t in tasks]
                                    for i, model in enumerate(memory_plan.MODELS)])
    comparisons = []
    for task, entry in tasks.items():
        reference = next(m for m in entry["models"] if m["model"] == REFERENCE)
        for m in entry["models"]:
            if m["vs_lstm"]:
                v = m["vs_lstm"]
                comparisons.append([LABELS[task], m["label"], f"{m['reached']}/{m['n']} vs {reference['reached']}/"
                                    f"{reference['n']}", format_comparison(v, entry["mode"]), f"{v['p_holm']:.2g}",
                                    "yes" if v["rejected"] else "not separable"])
    versus = markdown_table(["task", "model", "seeds at target (vs LSTM)", "difference [95% CI], p", "p_holm",
                             "separable"],
                            comparisons) if comparisons else "No comparison is complete yet.\n"
    return f"\n{summary['rule']}\n\n{table}\n{versus}"


def write_memory(tuned: Mapping[str, Any], out: str, page: Optional[str] = None) -> dict[str, Any]:
    """Writes ``out/memory.json``, ``out/memory.md`` and ``out/memory.png``, and the page's ``memory``
    block when ``page`` is given; returns the summary."""
    summary = memory_summary(tuned)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "memory.json"), "w") as f:
        json.dump(summary, f, indent=1)
    text = memory_markdown(summary)
    with open(os.path.join(out, "memory.md"), "w") as f:
        f.write("# Claim 3 on the bracketed rate grid\n" + text)
    write_figure(summary, os.path.join(out, "memory.png"))
    if page:
        write_page_block(page, "memory", text)
    return summary


def write_figure(summary: Mapping[str, Any], path: str) -> None:
    """Per task: each model's test metric per seed (bar: mean), with chance and the target as lines."""
    panels, metrics, lines, logy = {}, {}, {}, {}
    for task, entry in summary["tasks"].items():
        models = {m["model"]: [v for v in m["test"]["values"] if v is not None] for m in entry["models"]}
        models = {k: v for k, v in models.items() if v}
        if not models:
            continue
        kind = _kind(task)
        name = LABELS[task]
        panels[name], metrics[name] = models, "mse" if kind == "adding" else "recalled accuracy"
        lines[name] = dict([CHANCE[kind], TARGET_LINE[kind]])
        logy[name] = kind == "adding"
    if panels:
        plot_seed_bars(panels, path, metrics, logy=logy, lines=lines, labels=LABELS,
                       colors={m: COLORS[PLAN_NAMES[m]] for m in PLAN_NAMES})


def main(argv: Sequence[str]) -> None:
    """absl entry: ``--tuned``, ``--out``, ``--page``."""
    del argv
    f = flags.FLAGS
    with open(f.tuned) as handle:
        tuned = json.load(handle)
    write_memory(tuned, f.out, f.page or None)


if __name__ == "__main__":
    flags.DEFINE_string("tuned", "docs/results/memory/tuned.json", "the plan's tuned report (tuned.json)")
    flags.DEFINE_string("out", "docs/results/memory", "folder for memory.json, memory.md, memory.png")
    flags.DEFINE_string("page", "", "a page whose <!-- memory: ... --> block to rewrite")
    app.run(main)
