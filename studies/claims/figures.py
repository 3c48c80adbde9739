"""The claims study's figures, made from the committed ``docs/results/tuned/tuned.json``.

    python -m studies.claims.figures --tuned=docs/results/tuned/tuned.json --out=docs/results/tuned \
        --saturation=docs/results/saturation/saturation.json

``claims.png``: the tuned models of claims 1-3 (negation with tails, future context, adding and copy),
``ablation.png``: the gate variants of section 4 beside their intact cells; both with chance (and,
for future context, the left-to-right ceiling) as labelled lines. Each bar is the test metric's mean
over seeds 1-3, its whisker the 95% t-interval of the mean clipped to the metric's range, its dots the
seeds (:func:`rnnlab.analysis.plots.plot_seed_bars`). With ``--saturation``, also section 5's
``keep_histograms.png`` from the committed ``docs/results/saturation/saturation.json``.
"""

from __future__ import annotations

import json
import os
from typing import Any, Mapping, Sequence

import numpy as np
from absl import app, flags

from rnnlab.analysis.plots import plot_seed_bars
from studies.claims.ablation import LABELS

CHANCE = {  # what a model without the claimed ability scores (test metric of each task)
    "negation_tail": {"chance (0.5)": 0.5},
    "future_context": {"left-to-right ceiling (29/36)": 29 / 36},
    "adding100": {"always 1.0 (1/6)": 1 / 6},
    "adding400": {"always 1.0 (1/6)": 1 / 6},
    "copy100": {"chance (1/8)": 1 / 8},
}
MODELS = ("bow", "cell=tanh", "cell=gru", "cell=lstm", "cell=lstm+bidirectional", "cell=lstm+bi", "cell=gru+bi")
# One colour per model in every figure of the study (the plan's model names; memory_plan's short ones map here
# through memory.PLAN_NAMES).
COLORS = {
    "bow": "tab:gray", "cell=tanh": "tab:green", "cell=gru": "tab:orange", "cell=lstm": "tab:blue",
    "cell=lstm+bidirectional": "tab:purple", "cell=lstm+bi": "tab:purple", "cell=gru+bi": "tab:brown",
    "cell=lstm_nig": "#9edae5", "cell=lstm_nfg": "tab:cyan", "cell=lstm_nog": "#c5b0d5",
    "cell=lstm_cifg": "tab:red", "cell=lstm+peephole": "#aec7e8", "cell=min_lstm": "#17becf",
    "cell=lstm+fb=0.0": "#393b79", "cell=lstm+fb=3.0": "tab:olive", "cell=gru_nrg": "#ffbb78",
    "cell=gru_nug": "#e7969c", "cell=min_gru": "tab:pink",
}
SHORT = {"bow": "bag of words", "cell=tanh": "tanh", "cell=gru": "GRU", "cell=lstm": "LSTM",
         "cell=lstm+bidirectional": "BiLSTM", "cell=lstm+bi": "BiLSTM", "cell=gru+bi": "BiGRU"}


def _panels(tasks: Mapping[str, Any], names: Sequence[str], variants: bool) -> dict[str, dict[str, np.ndarray]]:
    panels = {}
    for task in names:
        rows = tasks[task]["rows"]
        if variants:  # each family: its intact cell, then its variants; the LSTM's first
            chosen = [r for r in rows if r.get("reference") or r["model"] in ("cell=lstm", "cell=gru")]
            family = lambda r: r.get("reference") or r["name"]  # noqa: E731
            chosen.sort(key=lambda r: ("gru" in family(r), bool(r.get("reference"))))
        else:
            chosen = [r for r in rows if r["model"] in MODELS]
        values = {r["model"]: np.asarray([v for v in r["test"]["values"] if v is not None], np.float64) for r in chosen}
        panels[task] = {m: v for m, v in values.items() if v.size}
    return panels


def write_figures(tasks: Mapping[str, Any], out: str) -> list[str]:
    """Writes ``out/claims.png`` and ``out/ablation.png``; returns their paths."""
    os.makedirs(out, exist_ok=True)
    paths = []
    for name, task_names, variants in (("claims", ["negation_tail", "future_context", "adding100", "copy100",
                                                   "adding400"], False),
                                       ("ablation", ["negation_tail", "adding100", "copy100"], True)):
        names = [t for t in task_names if t in tasks]
        panels = {LABELS.get(t, t): p for t, p in _panels(tasks, names, variants).items()}
        metrics = {LABELS.get(t, t): tasks[t]["metric"] for t in names}
        lines = {LABELS.get(t, t): CHANCE.get(t, {}) for t in names}
        logy = {LABELS.get(t, t): tasks[t]["mode"] == "min" for t in names}
        labels = {m: label.split(" (")[0] for m, label in LABELS.items()} if variants else {**LABELS, **SHORT}
        paths.append(os.path.join(out, f"{name}.png"))
        plot_seed_bars(panels, paths[-1], metrics, logy=logy, lines=lines, labels=labels, colors=COLORS)
    return paths


SATURATION_TITLES = {  # the saturation report's groups (docs/results/saturation/README.md), in the page's order
    "tuned/adding100/cell=lstm/best": "adding, T=100: LSTM", "tuned/adding100/cell=gru/best": "adding, T=100: GRU",
    "tuned/copy100/cell=lstm/best": "copy, T=100: LSTM", "tuned/copy100/cell=gru/best": "copy, T=100: GRU",
    "tuned/negation_tail/cell=lstm/best": "negation with tails: LSTM",
    "tuned/negation_tail/cell=gru/best": "negation with tails: GRU",
    "tuned/negation_tail/cell=lstm+bidirectional/best": "negation with tails: BiLSTM",
    "sst/search/sst-lstm+lr=2e-3": "SST sentences: LSTM", "sst/search/sst-bilstm+phrases+lr=1e-3": "SST phrases: BiLSTM",
    "music/jsb-lstm-adamsearch-20k/best": "JSB chorales: LSTM", "music/jsb-gru-adamsearch/best": "JSB chorales: GRU",
}


def write_saturation_figure(saturation: Mapping[str, Any], path: str) -> str:
    """The keep histograms of a saturation report's JSON (``python -m rnnlab gates``, which wrote its own
    ``saturation.png`` with the runs' paths as titles), its groups in :data:`SATURATION_TITLES`'s order and
    names (:func:`rnnlab.analysis.saturation_report.plot_keep_histograms`). Returns ``path``."""
    from rnnlab.analysis.saturation_report import plot_keep_histograms

    groups = {label: saturation["groups"][label]["runs"] for label in SATURATION_TITLES if label in saturation["groups"]}
    settings = saturation["settings"]
    plot_keep_histograms(groups, path, settings["memory_fraction"], settings["high"], titles=SATURATION_TITLES)
    return path


def main(argv: Sequence[str]) -> None:
    """absl entry: ``--tuned``, ``--out``, ``--saturation``."""
    del argv
    with open(flags.FLAGS.tuned) as f:
        tasks = json.load(f)["tasks"]
    for path in write_figures(tasks, flags.FLAGS.out):
        print(path)
    if flags.FLAGS.saturation:
        with open(flags.FLAGS.saturation) as f:
            saturation = json.load(f)
        print(write_saturation_figure(saturation, os.path.join(os.path.dirname(flags.FLAGS.saturation),
                                                               "keep_histograms.png")))


if __name__ == "__main__":
    flags.DEFINE_string("tuned", "docs/results/tuned/tuned.json", "a tuned.json (python -m rnnlab report --plan)")
    flags.DEFINE_string("out", "docs/results/tuned", "where claims.png and ablation.png go")
    flags.DEFINE_string("saturation", "", "also a saturation report's JSON (python -m rnnlab gates): its "
                        "keep_histograms.png beside it, with the findings page's names")
    app.run(main)
