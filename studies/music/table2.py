"""Chung et al. 2014's Table 2 beside a music plan's runs: ``python -m studies.music.table2``.

    python -m studies.music.table2 --plan=studies/music/plan.py --runs=runs/music_plan \\
        --out=docs/results/music
    python -m studies.music.table2 --figure_from=docs/results/music/table2.json --out=docs/results/music

A music plan (``studies/music/plan.py``) names its searches ``SETUP/CELL``:
``SETUP`` is a corpus (``jsb``, ``nottingham``, ``piano``, ``musedata``) trained
with Adam, or ``CORPUS-paper`` with the paper's recipe (RMSProp, weight noise);
``CELL`` is ``tanh``, ``gru``, ``lstm`` or a gate variant. Each cell's numbers
are its seed runs (``best__seedS``) and, when the search space is a single
point (no selection took place), the trial run of seed 0 too.

Writes ``OUT/table2.png`` (:func:`plot_table2`), ``OUT/table2.json`` (every seed's train / valid / test NLL, learning
rate, steps, best step, wall time, parameters) and ``OUT/table2.md`` (the wall
time of every run, and Table 2:
published train / test beside rnnlab's mean +- sample std over seeds, marking
the runs that stopped at their step cap, and the other cells of the plan, e.g.
JSB's gate variants).
"""

from __future__ import annotations

import json
import os
from typing import Any, Mapping, Optional, Sequence

import numpy as np
from absl import app, flags

from rnnlab.experiments import plan as plan_lib
from rnnlab.experiments import search
from rnnlab.experiments import search_trials
from rnnlab.experiments import search_space

from rnnlab.analysis import plots
from rnnlab.analysis import significance
from rnnlab.analysis.stats import RunRecord, load_run
from rnnlab.analysis.tuned_rows import CAP_MARK, hit_cap

# Chung et al. 2014, Table 2: average negative log-probability per time step, (train, test). Checked
# number by number against the table of arXiv:1412.3555v1 (the PDF, sha256 ad4f4611...3d, stored in
# github.com/aridiosilva/AI_Technical_Papers at da025e9, "PAPER  AI - GRU - Empirical Evaluation of
# Gated Recurrent Neural Networkson Sequence Modeling - 2014.pdf"): the paper prints tanh's train NLL
# as 5.64 for both MuseData and Piano-midi, and the LSTM's test NLL as 6.23 (MuseData) and 9.03
# (Piano-midi), the same as tanh's; these repeats are the paper's, not copying errors.
PUBLISHED = {
    "nottingham": {"tanh": (3.22, 3.13), "gru": (2.79, 3.23), "lstm": (3.08, 3.20)},
    "jsb": {"tanh": (8.82, 9.10), "gru": (6.94, 8.54), "lstm": (8.15, 8.67)},
    "musedata": {"tanh": (5.64, 6.23), "gru": (5.06, 5.99), "lstm": (5.18, 6.23)},
    "piano": {"tanh": (5.64, 9.03), "gru": (4.93, 8.82), "lstm": (6.49, 9.03)},
}
CORPUS_NAMES = {"nottingham": "Nottingham", "jsb": "JSB Chorales", "musedata": "MuseData", "piano": "Piano-midi"}
CELLS = ("tanh", "gru", "lstm")
CELL_NAMES = {"tanh": "tanh", "gru": "GRU", "lstm": "LSTM"}  # as the tables print them
SPLITS = ("train", "valid", "test")


def recipe_of(setup: str) -> tuple[str, str]:
    """``"jsb-paper"`` -> ``("jsb", "paper")``; ``"nottingham"`` -> ``("nottingham", "adam")``."""
    corpus, _, recipe = setup.partition("-")
    return corpus, recipe or "adam"


def single_point(item: plan_lib.Search, out: str) -> bool:
    """Whether the search's space is one value (``grid(x)``, also from :func:`plan.around`): no selection."""
    try:
        space = item.space if isinstance(item.space, str) else item.space(out)
    except (OSError, ValueError):  # the search it is taken from has not finished
        return False
    param = search_space.parse_param(space)
    return param.kind == "grid" and len(param.args) == 1


def cell_runs(out: str, item: plan_lib.Search) -> list[RunRecord]:
    """The finished runs that count as seeds of ``item``, by seed (see the module docstring)."""
    folder = os.path.join(out, item.name)
    if not os.path.isdir(folder):
        return []
    workdirs = [os.path.join(folder, name) for name in sorted(os.listdir(folder))
                if name.startswith(f"{search.BEST_NAME}__seed")]
    if single_point(item, out):
        workdirs.append(os.path.join(folder, search_trials.TRIALS_DIR, "trial_000"))
    runs = [load_run(w) for w in workdirs if os.path.isdir(w)]
    return sorted((r for r in runs if r.finished), key=lambda r: r.seed)


def cell_entry(runs: Sequence[RunRecord]) -> dict[str, Any]:
    """``{"seeds": [per-seed record], "n", "train" / "valid" / "test": [mean, std] or None}`` of finished runs."""
    seeds = []
    for run in runs:
        r = run.results
        seeds.append({
            "seed": run.seed, "workdir": run.workdir,
            "learning_rate": run.config.get("optim", {}).get("learning_rate"),
            **{f"{split}_nll": r.get(f"{split}/nll") for split in SPLITS},
            "steps": r.get("step"), "best_step": r.get("best_step"), "stopped_early": bool(r.get("stopped_early")),
            "hit_cap": hit_cap(run),
            "wall_time_sec": round(r["wall_time_sec"], 1) if "wall_time_sec" in r else None,
            "num_params": r.get("num_params"),
        })
    entry = {"seeds": seeds, "n": len(seeds), "hit_cap": sum(s["hit_cap"] for s in seeds)}
    for split in SPLITS:
        values = [s[f"{split}_nll"] for s in seeds if s[f"{split}_nll"] is not None]
        entry[split] = list(significance.mean_std(values)[:2]) if values and len(values) == len(seeds) else None
    return entry


def collect(plan: Sequence[plan_lib.Search], out: str) -> dict[str, dict[str, Any]]:
    """``{setup: {cell: cell_entry}}`` of every search of ``plan`` with a finished run in ``out``."""
    collected: dict[str, dict[str, Any]] = {}
    for item in plan:
        setup, _, cell = item.name.partition("/")
        runs = cell_runs(out, item)
        if runs:
            collected.setdefault(setup, {})[cell] = {"search": item.name, **cell_entry(runs)}
    return collected


def _value(mean_and_std: Optional[Sequence[float]], n: int) -> str:
    if mean_and_std is None:
        return "-"
    mean, std = mean_and_std
    return f"{mean:.2f} +- {std:.2f}" if n > 1 else f"{mean:.2f}"


def _cell_text(entry: Optional[Mapping[str, Any]]) -> str:
    """``"train / test (n=3, lr 1.0e-03)"``, or ``"not run"``."""
    if entry is None:
        return "not run"
    rates = sorted({s["learning_rate"] for s in entry["seeds"] if s["learning_rate"] is not None})
    lr = f", lr {rates[0]:.2g}" if len(rates) == 1 else ""
    capped = f", {CAP_MARK} {entry['hit_cap']} of {entry['n']}" if entry.get("hit_cap") else ""
    return (f"{_value(entry['train'], entry['n'])} / {_value(entry['test'], entry['n'])} "
            f"(n={entry['n']}{lr}{capped})")


def table2_markdown(collected: Mapping[str, Mapping[str, Any]]) -> str:
    """Table 2 (train / test NLL per time step) per corpus: the paper's row, then one row per rnnlab recipe;
    then the plan's other cells (gate variants) per setup."""
    lines = ["| corpus | source | tanh | GRU | LSTM |", "| --- | --- | --- | --- | --- |"]
    for corpus, published in PUBLISHED.items():
        lines.append(f"| {CORPUS_NAMES[corpus]} | Chung et al. 2014 | "
                     + " | ".join(f"{published[c][0]:.2f} / {published[c][1]:.2f}" for c in CELLS) + " |")
        for setup in sorted(collected):
            if recipe_of(setup)[0] == corpus and any(c in collected[setup] for c in CELLS):
                recipe = {"paper": "rnnlab, the paper's recipe", "adam": "rnnlab, Adam"}.get(
                    recipe_of(setup)[1], f"rnnlab, {recipe_of(setup)[1]}")
                lines.append(f"| | {recipe} | "
                             + " | ".join(_cell_text(collected[setup].get(c)) for c in CELLS) + " |")
    others = [(setup, cell, entry) for setup, cells in sorted(collected.items())
              for cell, entry in sorted(cells.items()) if cell not in CELLS]
    if others:
        lines += ["", "| setup | cell | train / test |", "| --- | --- | --- |"]
        lines += [f"| {setup} | {cell} | {_cell_text(entry)} |" for setup, cell, entry in others]
    lines += ["", f"`{CAP_MARK} k of n`: k runs stopped at their step cap, not by early stopping (their validation "
              "NLL may still have been falling: more steps could lower it)."]
    return "\n".join(lines) + "\n"


def wall_time_markdown(collected: Mapping[str, Mapping[str, Any]]) -> str:
    """One row per setup and cell: each run's wall time (compilation included), steps and best step."""
    lines = ["| setup | cell | parameters | per run: wall s, steps (best step) |", "| --- | --- | --- | --- |"]
    for setup, cells in sorted(collected.items()):
        for cell, entry in sorted(cells.items()):
            runs = "; ".join(f"{s['wall_time_sec']:.0f} s, {s['steps']} ({s['best_step']})" for s in entry["seeds"])
            lines.append(f"| {setup} | {cell} | {entry['seeds'][0]['num_params']} | {runs} |")
    return "\n".join(lines) + "\n"


CELL_COLORS = {"tanh": "tab:green", "gru": "tab:orange", "lstm": "tab:blue"}  # as in the claims study's figures
RECIPE_MARKERS = {"adam": ("o", "rnnlab, Adam"), "paper": ("s", "rnnlab, the paper's recipe")}


def plot_table2(collected: Mapping[str, Mapping[str, Any]], path: str) -> None:
    """Table 2's test NLL as a figure: a panel per corpus, the cells along x; each rnnlab run a point (its
    recipe the marker, hollow where it stopped at its step cap), the paper's value a black bar."""
    from matplotlib.lines import Line2D

    fig = plots.new_figure((9.4, 3.4))
    axes = fig.subplots(1, len(PUBLISHED), squeeze=False)
    for ax, (corpus, published) in zip(axes[0], PUBLISHED.items()):
        for i, cell in enumerate(CELLS):
            ax.hlines(published[cell][1], i - 0.35, i + 0.35, color="black", lw=2)
            setups = [s for s in sorted(collected) if recipe_of(s)[0] == corpus and cell in collected[s]]
            for j, setup in enumerate(setups):
                marker, _ = RECIPE_MARKERS.get(recipe_of(setup)[1], ("^", setup))
                seeds = collected[setup][cell]["seeds"]
                x = i + (j - (len(setups) - 1) / 2) * 0.25 + np.linspace(-0.04, 0.04, len(seeds))
                for xi, seed in zip(x, seeds):
                    ax.plot(xi, seed["test_nll"], marker, ms=5, color=CELL_COLORS[cell],
                            mfc="none" if seed["hit_cap"] else CELL_COLORS[cell])
        ax.set_xticks(range(len(CELLS)), [CELL_NAMES[c] for c in CELLS])
        ax.set_title(CORPUS_NAMES[corpus], fontsize=9)
        ax.tick_params(labelsize=9)
    axes[0, 0].set_ylabel("test NLL per time step (lower is better)", fontsize=9)
    handles = [Line2D([], [], color="black", lw=2, label="Chung et al. 2014")]
    handles += [Line2D([], [], marker=m, ls="none", color="0.3", label=label) for m, label in RECIPE_MARKERS.values()]
    handles.append(Line2D([], [], marker="o", ls="none", color="0.3", mfc="none", label="stopped at its step cap"))
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(path, dpi=90)


def write_table2(plan_path: str, runs: str, out: str) -> dict[str, Any]:
    """Writes ``out/table2.json``, ``out/table2.md`` and ``out/table2.png`` (:func:`plot_table2`) of the plan's
    runs; returns the collected dict."""
    collected = collect(plan_lib.load_plan(plan_path), runs)
    os.makedirs(out, exist_ok=True)
    for entry in (e for cells in collected.values() for e in cells.values()):
        for seed in entry["seeds"]:
            seed["workdir"] = os.path.relpath(seed["workdir"], runs)
    with open(os.path.join(out, "table2.json"), "w") as f:
        json.dump(collected, f, indent=1, sort_keys=True)
        f.write("\n")
    with open(os.path.join(out, "table2.md"), "w") as f:
        f.write(table2_markdown(collected) + "\nWall time per run (a shared 2-core CPU):\n\n"
                + wall_time_markdown(collected))
    plot_table2(collected, os.path.join(out, "table2.png"))
    return collected


def main(argv: Sequence[str]) -> None:
    """absl entry: ``--plan``, ``--runs``, ``--out``."""
    del argv
    from rnnlab.analysis.report import quiet

    quiet()
    f = flags.FLAGS
    if f.figure_from:
        with open(f.figure_from) as json_file:
            plot_table2(json.load(json_file), os.path.join(f.out, "table2.png"))
        return
    write_table2(f.plan, f.runs, f.out)


if __name__ == "__main__":
    flags.DEFINE_string("plan", "studies/music/plan.py", "the music plan file")
    flags.DEFINE_string("runs", "runs/music_plan", "the plan's output folder")
    flags.DEFINE_string("out", "docs/results/music", "where table2.json, table2.md and table2.png go")
    flags.DEFINE_string("figure_from", "", "only redraw OUT/table2.png from this table2.json (the committed one)")
    app.run(main)
