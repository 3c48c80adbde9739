"""The keep-gate saturation report over groups of runs: summaries over seeds, histograms, saturation.{md,json,png}.

Each run is measured by :func:`rnnlab.analysis.saturation.run_saturation`;
the command is ``python -m rnnlab gates RUN_DIRS --out=DIR``.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from rnnlab.analysis import plots
from rnnlab.analysis.saturation import CHECKPOINTS, KEEP_GATES, LAYER_KEYS, keep_gate, run_saturation
from rnnlab.analysis.stats import format_mean_std, markdown_table
from rnnlab.analysis.significance import mean_std
from rnnlab.experiments.sweep import group_name

def _group_key(workdir: str) -> str:
    """The run's path without its ``__seedS`` suffix (runs of one group differ only in it)."""
    path = os.path.abspath(workdir)
    return os.path.join(os.path.dirname(path), group_name(path))


def _labels(keys: Sequence[str]) -> dict[str, str]:
    """``{key: the key relative to the folder all keys share}`` (at least the last component)."""
    if not keys:
        return {}
    common = os.path.commonpath([os.path.dirname(k) for k in keys])
    return {k: os.path.relpath(k, common) for k in keys}


def _jsonable(tree: Any) -> Any:
    """NumPy arrays and scalars to lists and floats (rounded to 4 digits), NaN to ``None``."""
    if isinstance(tree, Mapping):
        return {str(k): _jsonable(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return [_jsonable(v) for v in tree]
    if isinstance(tree, np.ndarray):
        return _jsonable(tree.tolist())
    if isinstance(tree, (bool, np.bool_)):
        return bool(tree)
    if isinstance(tree, (int, np.integer)):
        return int(tree)
    if isinstance(tree, (float, np.floating)):
        return None if math.isnan(tree) else round(float(tree), 4)
    return tree


def _layer_name(layer: Mapping[str, Any]) -> str:
    return f"L{layer['layer']} {layer['direction']}"


def summarize_group(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Mean +- std over the seeds of one group, per checkpoint and layer/direction.

    Args:
      records: :func:`run_saturation` results of the group's seeds.

    Returns:
      ``{checkpoint: {"step": (mean, std, n), "params_step": ..., "L0 fwd": {key: (mean, std, n)}}}``
      for the keys ``memory_units, reset_units, near_1, near_0, mean_keep`` and
      ``units``; a checkpoint counts the seeds that have it.
    """
    out = {}
    for name in CHECKPOINTS:
        have = [r["checkpoints"][name] for r in records if name in r["checkpoints"]]
        if not have:
            continue
        entry = {"step": mean_std([c["step"] for c in have]),
                 "params_step": mean_std([c["params_step"] for c in have])}
        for layer_name in dict.fromkeys(_layer_name(l) for c in have for l in c["layers"]):
            layers = [l for c in have for l in c["layers"] if _layer_name(l) == layer_name]
            entry[layer_name] = {k: mean_std([l[k] for l in layers]) for k in LAYER_KEYS + ("units",)}
        out[name] = entry
    return out


def plot_keep_histograms(groups: Mapping[str, Sequence[Mapping[str, Any]]], path: Optional[str],
                         memory_fraction: float = 0.5, high: float = 0.9,
                         titles: Optional[Mapping[str, str]] = None, columns: int = 3):
    """Per group, histograms over units, init vs trained: each unit's mean kept fraction (top) and
    the fraction of steps it keeps ``>= high`` (bottom; right of ``memory_fraction``: memory units).

    Args:
      groups: ``{label: [run_saturation record per seed]}``; units of every
        seed, layer and direction are pooled. "Trained" is the best checkpoint
        (the last one without early stopping). LSTM-family groups are blue,
        GRU-family ones orange.
      path: the PNG to write (``None``: none).
      memory_fraction: drawn as a dashed line in the bottom panels.
      high: the "near 1" threshold, for the labels.
      titles: ``{label: a reader's name}`` for the panels' titles; by default the labels without the
        folder path they share (:func:`short_titles`).
      columns: groups per row of panels (3, the default, keep the figure page-wide at its 9-point text:
        864 pixels).

    Returns:
      The ``matplotlib.figure.Figure``.
    """
    labels = list(groups)
    titles = [titles[label] for label in labels] if titles else short_titles(labels)
    cols = min(columns, max(1, len(labels)))
    rows = math.ceil(len(labels) / cols) if labels else 1
    fig = plots.new_figure((3.2 * cols, 4.4 * rows))
    axes = fig.subplots(2 * rows, cols, squeeze=False)
    bins = np.linspace(0.0, 1.0, 26)
    for k in range(rows * cols):
        top, bottom = axes[2 * (k // cols), k % cols], axes[2 * (k // cols) + 1, k % cols]
        if k >= len(labels):
            top.set_visible(False)
            bottom.set_visible(False)
            continue
        records = groups[labels[k]]
        trained = "best" if all("best" in r["checkpoints"] for r in records) else "last"
        color = "tab:blue" if records[0]["family"] == "lstm" else "tab:orange"
        memory = {}
        for name, style in (("init", {"color": "grey", "alpha": 0.5}), (trained, {"color": color, "alpha": 0.6})):
            layers = [l for r in records for l in r["checkpoints"][name]["layers"]]
            memory[name] = sum(l["memory_units"] for l in layers) / len(records)
            for ax, key in ((top, "mean"), (bottom, "near_1")):
                values = np.concatenate([np.asarray(l["per_unit"][key], np.float64) for l in layers])
                ax.hist(values, bins=bins, weights=np.full(values.shape, 1.0 / values.size), label=name, **style)
        units = sum(l["units"] for l in records[0]["checkpoints"]["init"]["layers"])
        top.set_title(f"{titles[k]}\n{records[0]['cell']}, keep = {records[0]['keep']}\nmemory units "
                      f"{memory['init']:.3g} -> {memory[trained]:.3g} of {units}", fontsize=9)
        top.set_xlabel("unit's mean keep", fontsize=9)
        bottom.set_xlabel(f"fraction of steps with keep >= {high:g}", fontsize=9)
        bottom.axvline(memory_fraction, color="black", lw=0.8, ls="--")
        for ax in (top, bottom):
            ax.set_xlim(0.0, 1.0)
            ax.set_ylabel("fraction of units", fontsize=9)
            ax.tick_params(labelsize=9)
        top.legend(fontsize=9)
    fig.tight_layout()
    if path:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        fig.savefig(path, dpi=90, bbox_inches="tight")
    return fig


def short_titles(labels: Sequence[str]) -> list[str]:
    """The group labels without the folder path they all share (``runs/tuned/copy100/cell=gru`` and
    ``runs/tuned/adding100/cell=gru`` -> ``copy100/cell=gru``, ``adding100/cell=gru``)."""
    parts = [label.split("/") for label in labels]
    shared = 0
    while len(parts) > 1 and all(len(p) > shared + 1 for p in parts) and len({p[shared] for p in parts}) == 1:
        shared += 1
    return ["/".join(p[shared:]) for p in parts]


def saturation_report(workdirs: Sequence[str], out: str, split: str = "test", max_examples: int = 256,
                      high: float = 0.9, low: float = 0.1, memory_fraction: float = 0.5,
                      targets: Sequence[str] = ()) -> dict[str, Any]:
    """Per-unit keep-gate saturation of runs, grouped over seeds: ``saturation.md``, ``.json``, ``.png``.

    Each run is measured by :func:`run_saturation` (init, first kept, last and
    best checkpoints; per layer and direction: memory units, reset units and
    the fractions of all values near 1 / near 0). Runs whose paths differ only
    in their ``__seedS`` suffix form a group, labelled by its path relative to
    the folder all groups share; a group's numbers are mean +- sample std over
    its seeds. Runs that cannot be measured are listed as skipped with the
    reason: not a run directory, unfinished (no ``results.json``), a bag of
    words, a cell without keep gate (:data:`NO_KEEP_GATE`, any non LSTM/GRU
    family cell), no checkpoint.

    Args:
      workdirs: run directories (other folders are skipped).
      out: the output folder.
      split, max_examples, high, low, memory_fraction, targets: see
        :func:`run_saturation`.

    Returns:
      The JSON written to ``out/saturation.json``: ``{"settings", "groups":
      {label: {"cell", "family", "keep", "seeds", "summary", "runs"}}, "skipped":
      [{"run", "reason"}]}`` (per-seed values in ``runs``, per-unit lists included),
      plus ``"markdown"`` (the text of ``saturation.md``) and ``"figure"`` (its path,
      ``None`` when no run was measured).
    """
    from absl import logging

    keys = {w: _group_key(w) for w in workdirs}
    labels = _labels(sorted(set(keys.values())))
    groups: dict[str, list[dict]] = {}
    skipped = []
    for workdir in workdirs:
        name = os.path.join(os.path.dirname(labels[keys[workdir]]), os.path.basename(os.path.normpath(workdir)))
        reason = _skip_reason(workdir)
        if reason is None:
            try:
                record = run_saturation(workdir, split, max_examples, high, low, memory_fraction, targets)
            except ValueError as e:
                reason = str(e)
        if reason is not None:
            logging.info("saturation: skipping %s: %s", workdir, reason)
            skipped.append({"run": name, "reason": reason.replace(os.path.abspath(workdir), name)
                            .replace(workdir, name)})
            continue
        record["run"] = name
        groups.setdefault(labels[keys[workdir]], []).append(record)
    groups = {label: sorted(rs, key=lambda r: r["seed"]) for label, rs in sorted(groups.items())}
    settings = {"split": split, "max_examples": max_examples, "high": high, "low": low,
                "memory_fraction": memory_fraction, "targets": list(targets),
                "keep_gates": {c: g.transform for c, g in KEEP_GATES.items()}}
    data = {"settings": settings, "skipped": skipped, "groups": {
        label: {"cell": rs[0]["cell"], "family": rs[0]["family"], "keep": rs[0]["keep"],
                "seeds": [r["seed"] for r in rs], "summary": summarize_group(rs), "runs": rs}
        for label, rs in groups.items()}}
    os.makedirs(out, exist_ok=True)
    figure = None
    if groups:
        figure = os.path.join(out, "saturation.png")
        plot_keep_histograms(groups, figure, memory_fraction, high)
    markdown = _saturation_markdown(data)
    with open(os.path.join(out, "saturation.md"), "w", encoding="utf-8") as f:
        f.write(markdown)
    with open(os.path.join(out, "saturation.json"), "w", encoding="utf-8") as f:
        json.dump(_jsonable(data), f, separators=(",", ":"))  # compact: per-unit lists of every run
        f.write("\n")
    return {**data, "markdown": markdown, "figure": figure}


def _skip_reason(workdir: str) -> Optional[str]:
    """Why ``workdir`` cannot be measured before anything is restored, or ``None``."""
    from rnnlab.training.workdir import CONFIG_FILE, RESULTS_FILE, read_json

    if not os.path.isfile(os.path.join(workdir, CONFIG_FILE)):
        return f"not a run directory (no {CONFIG_FILE})"
    if not os.path.isfile(os.path.join(workdir, RESULTS_FILE)):
        return f"unfinished (no {RESULTS_FILE})"
    model = read_json(os.path.join(workdir, CONFIG_FILE)).get("model", {})
    if model.get("kind") == "bag_of_words":
        return "a bag of words: no recurrent layer"
    try:
        keep_gate(model.get("cell", ""))
    except ValueError as e:
        return str(e)
    return None


def _fmt(stats: tuple[float, float, int], digits: int) -> str:
    """``mean +- std``; the mean alone when the seeds agree (or there is one), ``-`` when none."""
    mean, std, n = stats
    return "-" if n == 0 else f"{mean:.{digits}f}" if std == 0 else format_mean_std(stats, digits)


def _saturation_markdown(data: Mapping[str, Any]) -> str:
    """``saturation.md`` from the :func:`saturation_report` data."""
    s = data["settings"]
    keeps = sorted({(g["cell"], g["keep"]) for g in data["groups"].values()})
    lines = [
        "# Keep-gate saturation per unit\n",
        f"The fraction of its old state each unit keeps at every valid step of the first {s['max_examples']} "
        f"`{s['split']}` examples: " + ", ".join(f"{c}: keep = `{k}`" for c, k in keeps)
        + " (rnnlab's GRU: h_t = (1 - z) n_t + z h_{t-1}, so the update gate z is the kept fraction; minGRU "
        "keeps 1 - z). ",
        f"A value >= {s['high']:g} is near 1, <= {s['low']:g} near 0. A *memory unit* is near 1 at >= "
        f"{s['memory_fraction']:.0%} of the steps, a *reset unit* near 0 at >= {s['memory_fraction']:.0%} of them; "
        "counted per layer and direction. `near 1` / `near 0`: fractions of all values (units x steps).\n",
        "Checkpoints: `init` = the initialisation rebuilt from the run's config and seed; `first` = the "
        "earliest checkpoint still kept (runs keep only their newest `max_to_keep` checkpoints, so this is "
        "usually not the first one saved: see `first saved?`); `last` = the newest checkpoint; `best` = the "
        "early-stopping best params (step = `best_step`). Mean +- std over seeds (the mean alone when the seeds "
        "agree).\n",
    ]
    if s["targets"]:
        lines.append("Learned: the run's `results.json` meets " + ", ".join(f"`{t}`" for t in s["targets"])
                     + " (where it has that metric).\n")
    rows = []
    for label, g in data["groups"].items():
        for r in g["runs"]:
            steps = r["checkpoints"]
            metric = ", ".join(f"{k} {v:.4g}" for k, v in r["results"].items()
                               if k.split("/")[0] in ("valid", "test") and k.split("/")[-1] in
                               ("accuracy", "masked_accuracy", "mse", "nll"))
            rows.append([label, r["seed"], r["cell"], r["keep"], " ".join(map(str, r["kept_steps"])),
                         steps["first"]["step"], "yes" if r["first_is_first_saved"] else "no",
                         steps["last"]["step"], "-" if r["best_step"] is None else r["best_step"], metric or "-",
                         {True: "yes", False: "no", None: "-"}[r["learned"]]])
    if rows:
        lines.append("## Runs\n")
        lines.append(markdown_table(["group", "seed", "cell", "keep", "kept steps", "first", "first saved?",
                                     "last", "best_step", "results", "learned"], rows))
        rows = []
        for label, g in data["groups"].items():
            for name, entry in g["summary"].items():
                for layer_name, st in entry.items():
                    if layer_name in ("step", "params_step"):
                        continue
                    rows.append([label, layer_name, name, st["units"][2], _fmt(entry["params_step"], 0),
                                 _fmt(st["units"], 0),
                                 _fmt(st["memory_units"], 1), _fmt(st["reset_units"], 1), _fmt(st["near_1"], 3),
                                 _fmt(st["near_0"], 3), _fmt(st["mean_keep"], 3)])
        lines.append("\n## Memory units per layer and direction\n")
        lines.append(markdown_table(["group", "layer", "checkpoint", "seeds", "params step", "units",
                                     "memory units", "reset units", f"near 1 (>= {s['high']:g})",
                                     f"near 0 (<= {s['low']:g})", "mean keep"], rows))
        lines.append("\n![per-unit mean keep and fraction of steps near 1, init vs trained](saturation.png)\n")
    if data["skipped"]:
        lines.append("\n## Skipped\n")
        lines += [f"- `{x['run']}`: {x['reason']}" for x in data["skipped"]]
        lines.append("")
    return "\n".join(lines) + "\n"

