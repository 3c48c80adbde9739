"""Figures of runs and gates: learning curves, bars of a final metric, gate histograms and heat maps.

Plotting functions take plain arrays and dicts and return a
``matplotlib.figure.Figure`` (not registered with pyplot, so no backend is
chosen or forced: a notebook displays it inline, a script never opens a
window); with ``path`` they also write it as a PNG.
"""

from __future__ import annotations

import math
import os
from typing import Mapping, Optional, Sequence

import numpy as np

from rnnlab.analysis.stats import saturation
from rnnlab.analysis.significance import t_interval
from rnnlab.extras import optional_import


def new_figure(figsize: tuple[float, float]):
    """A new ``matplotlib.figure.Figure`` of ``figsize`` (width, height) inches, outside pyplot: nothing to
    close, and the caller's backend (a notebook's inline one) stays. Without Matplotlib, an ImportError
    names the extra to install (:func:`rnnlab.extras.optional_import`)."""
    Figure = optional_import("matplotlib.figure", "experiments", "figures").Figure
    return Figure(figsize=figsize)


def _save(fig, path: Optional[str]):
    """Writes ``fig`` to ``path`` (a PNG) when given; returns ``fig``."""
    if path:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        fig.savefig(path, dpi=90, bbox_inches="tight")
    return fig


def plot_learning_curves(
    curves: Mapping[str, Sequence[tuple[np.ndarray, np.ndarray]]],
    path: Optional[str],
    ylabel: str,
    logy: bool = False,
):
    """Mean (line) and min..max over seeds (band) of one metric per group.

    Args:
      curves: ``{group: [(steps int[N], values f[N]) per seed]}``; seeds are
        aligned on the steps they share.
      path: the PNG to write (``None``: none).
      ylabel: the metric's name.
      logy: log scale on y (losses, mse) where the curves span a decade or more (a narrower range
        stays linear: a log axis would show it with one or two ticks).

    Returns:
      The ``matplotlib.figure.Figure``.
    """
    matplotlib = optional_import("matplotlib", "experiments", "figures")

    fig = new_figure((6, 3.6))
    ax = fig.subplots()
    colors = matplotlib.colormaps["tab20" if len(curves) > 10 else "tab10"].colors
    shown = []
    for color, (group, per_seed) in zip(colors * 2, curves.items()):
        per_seed = [(s, v) for s, v in per_seed if len(s)]
        if not per_seed:
            continue
        common = sorted(set.intersection(*(set(s.tolist()) for s, _ in per_seed)))
        if not common:
            continue
        stacked = np.stack([v[np.searchsorted(s, common)] for s, v in per_seed])
        line = ax.plot(common, stacked.mean(0), label=f"{group} ({len(per_seed)})", color=color)[0]
        ax.fill_between(common, stacked.min(0), stacked.max(0), color=line.get_color(), alpha=0.2)
        shown.append(stacked)
    ax.set_xlabel("step", fontsize=9)
    ax.set_ylabel(ylabel, fontsize=9)
    values = np.concatenate([v.ravel() for v in shown]) if shown else np.zeros(0)
    if logy and values.size and values.min() > 0 and values.max() / values.min() >= 10:
        ax.set_yscale("log")  # only over a decade or more: a narrower range gets one or two log ticks
    ax.grid(alpha=0.3)
    ax.tick_params(labelsize=9)
    ax.legend(fontsize=9)
    return _save(fig, path)


def plot_bars(
    summary: Mapping[str, Mapping[str, tuple[float, float, int]]],
    keys: Sequence[str],
    path: Optional[str],
    ylabel: str = "",
):
    """Grouped bars: mean with +- std error bars, one bar per (group, key).

    Returns the ``Figure`` (also written to ``path`` unless ``None``).
    """
    groups = list(summary)
    width = 0.8 / max(len(keys), 1)
    fig = new_figure((max(4, 0.9 * len(groups) + 2), 3.6))
    ax = fig.subplots()
    x = np.arange(len(groups))
    for i, key in enumerate(keys):
        means = [summary[g].get(key, (np.nan, 0, 0))[0] for g in groups]
        stds = [summary[g].get(key, (np.nan, 0, 0))[1] for g in groups]
        ax.bar(x + i * width, means, width, yerr=stds, capsize=3, label=key)
    ax.set_xticks(x + width * (len(keys) - 1) / 2)
    ax.set_xticklabels(groups, rotation=30, ha="right", fontsize=7)
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)
    if len(keys) > 1:
        ax.legend(fontsize=7)
    return _save(fig, path)


def plot_gate_histograms(
    values: Mapping[str, np.ndarray], path: Optional[str], gate: str = "forget", eps: float = 0.1
):
    """Histograms of gate activations in [0, 1], one panel per group/model.

    Args:
      values: ``{label: f[N]}`` activations at valid steps.
      path: the PNG to write (``None``: none).
      gate: the gate's name, for the labels.
      eps: the "near 0 / near 1" margin shaded and written in each title.

    Returns:
      The ``matplotlib.figure.Figure``.
    """
    labels = list(values)
    fig = new_figure((3.2 * len(labels), 2.8))
    axes = fig.subplots(1, len(labels), squeeze=False)
    for ax, label in zip(axes[0], labels):
        v = np.asarray(values[label]).ravel()
        ax.hist(v, bins=40, range=(0.0, 1.0), density=True, color="tab:blue")
        ax.axvspan(0, eps, color="grey", alpha=0.2)
        ax.axvspan(1 - eps, 1, color="grey", alpha=0.2)
        s = saturation(v, eps)
        ax.set_title(f"{label}\n<{eps}: {s['near_0']:.0%}  >{1 - eps:g}: {s['near_1']:.0%}", fontsize=8)
        ax.set_xlabel(f"{gate} gate")
    return _save(fig, path)


def plot_gate_heatmap(
    gates: Mapping[str, np.ndarray],
    words: Sequence[str],
    path: Optional[str] = None,
    max_units: int = 32,
    title: str = "",
):
    """Heat maps of gates over the words of one sentence: one panel per gate.

    Args:
      gates: ``{gate name: f[T, H]}`` (e.g. from ``rnnlab.gate_trace``), cut
        to the sentence's length.
      words: the T words, shown on the x axis.
      path: the PNG to write (``None``: none).
      max_units: show at most this many hidden units (the first ones).
      title: the figure title.

    Returns:
      The ``matplotlib.figure.Figure``.

    Raises:
      ValueError: a gate's number of steps differs from the number of words.
    """
    names = list(gates)
    T = len(words)
    fig = new_figure((max(4, 0.3 * T + 2.0), 1.6 * len(names) + 1.0))  # about 0.3 inch a word: labels do not collide
    axes = fig.subplots(len(names), 1, squeeze=False)
    for ax, name in zip(axes[:, 0], names):
        g = np.asarray(gates[name])[:T, :max_units]
        if g.shape[0] != T:
            raise ValueError(f"gate {name!r} has {g.shape[0]} steps, the sentence has {T} words")
        lo, hi = (-1.0, 1.0) if g.min() < 0 else (0.0, 1.0)
        im = ax.imshow(g.T, aspect="auto", cmap="viridis", vmin=lo, vmax=hi, interpolation="nearest")
        ax.set_ylabel(f"{name}\n(units)", fontsize=9)
        ax.set_yticks([])
        ax.set_xticks(range(T))
        ax.set_xticklabels(words if ax is axes[-1, 0] else [], rotation=90, fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.02, pad=0.01).ax.tick_params(labelsize=9)
    if title:
        axes[0, 0].set_title(title, fontsize=10)
    return _save(fig, path)


def _panels(n: int, width: float, height: float):
    """A figure with ``n`` panels in rows of at most 3; returns ``(fig, [axes])``."""
    cols = min(3, max(n, 1))
    rows = -(-max(n, 1) // cols)
    fig = new_figure((width * cols, height * rows))
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, list(axes[:n])


def metric_range(name: str) -> tuple[float, float]:
    """The values a metric can take: ``(0, 1)`` for accuracies and F1, ``(0, inf)`` for losses, NLL, mse."""
    if any(word in name for word in ("accuracy", "f1", "precision", "recall")):
        return 0.0, 1.0
    return 0.0, math.inf


def plot_seed_bars(
    panels: Mapping[str, Mapping[str, np.ndarray]],
    path: Optional[str],
    ylabels: Optional[Mapping[str, str]] = None,
    logy: Optional[Mapping[str, bool]] = None,
    level: float = 0.95,
    lines: Optional[Mapping[str, Mapping[str, float]]] = None,
    labels: Optional[Mapping[str, str]] = None,
    colors: Optional[Mapping[str, str]] = None,
):
    """One panel per task: a bar per model at its mean over seeds, the t-interval of the mean as
    error bar (clipped to the metric's range, :func:`metric_range`), each seed's value as a dot, and
    labelled horizontal reference lines (chance, a ceiling, a published value).

    Args:
      panels: ``{task: {model: f[S] per-seed values}}``.
      path: the PNG to write (``None``: none).
      ylabels: ``{task: metric name}`` (also decides the range: accuracies lie in [0, 1]).
      logy: ``{task: log scale on y}`` (losses, mse; only when every value is positive).
      level: the interval's coverage.
      lines: ``{task: {label: value}}`` reference lines, each labelled on the line.
      labels: ``{model: the name shown}`` (default: the model's name without ``cell=``).
      colors: ``{model: a Matplotlib colour}`` of its bar, so a study can give each model one colour
        in every figure (default: one blue for all).

    Returns:
      The ``matplotlib.figure.Figure``; its caption (the figure's suptitle) defines the error bars.
    """
    ylabels, logy, lines, labels, colors = ylabels or {}, logy or {}, lines or {}, labels or {}, colors or {}
    widest = max((len(m) for m in panels.values()), default=1)
    fig, axes = _panels(len(panels), max(3.5, 0.35 * widest + 1.5), 3.6)
    for ax, (task, models) in zip(axes, panels.items()):
        names = list(models)
        x = np.arange(len(names))
        means = np.asarray([np.mean(models[m]) for m in names])
        low, high = metric_range(ylabels.get(task, ""))
        low_high = np.clip(np.asarray([t_interval(models[m], level) for m in names]).reshape(-1, 2), low, high)
        err = np.abs(np.stack([means - low_high[:, 0], low_high[:, 1] - means]))
        err = np.nan_to_num(err)  # one seed: no interval
        ax.bar(x, means, 0.7, color=[colors.get(m, "tab:blue") for m in names], alpha=0.45)
        ax.errorbar(x, means, yerr=err, fmt="none", ecolor="black", capsize=3, lw=1)
        for i, m in enumerate(names):
            values = np.asarray(models[m], np.float64)
            jitter = np.linspace(-0.15, 0.15, len(values)) if len(values) > 1 else np.zeros(1)
            ax.plot(x[i] + jitter, values, "o", color="tab:red", ms=3.5)
        for style, (label, value) in zip(("--", ":", "-."), lines.get(task, {}).items()):
            ax.axhline(value, color="gray", ls=style, lw=1)
            ax.text(0.01, value, label, transform=ax.get_yaxis_transform(), va="bottom", fontsize=9,
                    color="dimgray", bbox={"facecolor": "white", "alpha": 0.8, "lw": 0, "pad": 1})
        if logy.get(task) and all(np.all(np.asarray(v) > 0) for v in models.values()):
            ax.set_yscale("log")
        elif high == 1.0:
            ax.set_ylim(low, high + 0.02)
        ax.set_xticks(x)
        ax.set_xticklabels([labels.get(n, n.replace("cell=", "")) for n in names], rotation=40, ha="right",
                           fontsize=9)
        ax.tick_params(axis="y", labelsize=9)
        ax.set_title(task, fontsize=10)
        ax.set_ylabel(ylabels.get(task, ""), fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(f"bars: mean over seeds; whiskers: {100 * level:.0f}% t-interval of the mean, clipped to the "
                 "metric's range; dots: seeds", fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def plot_trials_vs_param(
    panels: Mapping[str, Mapping[str, Mapping[str, Sequence]]],
    path: Optional[str],
    ylabels: Optional[Mapping[str, str]] = None,
    logy: Optional[Mapping[str, bool]] = None,
    xlabel: str = "learning rate",
    colors: Optional[Mapping[str, str]] = None,
):
    """One panel per task: each trial's searched metric against its parameter (log x), one colour
    per model, the same in every panel; completed trials filled, pruned ones hollow (at their last
    reported value); the seed runs' test values as crosses at the chosen value. One legend for the
    figure, below the panels (off the data).

    Args:
      panels: ``{task: {model: {"trials": [(x, value, completed bool)], "seeds": [(x, test value)]}}}``.
      path: the PNG to write (``None``: none).
      ylabels: ``{task: metric name}`` (the metric without its split: trials are on validation, seeds on test).
      logy: ``{task: log scale on y}`` (only when every value is positive).
      xlabel: the parameter's name.
      colors: ``{model: a Matplotlib colour}`` (default: tab10 / tab20 in order of first appearance).

    Returns:
      The ``matplotlib.figure.Figure``.
    """
    matplotlib = optional_import("matplotlib", "experiments", "figures")

    ylabels, logy = ylabels or {}, logy or {}
    models = list(dict.fromkeys(m for task_models in panels.values() for m in task_models))
    palette = matplotlib.colormaps["tab20" if len(models) > 10 else "tab10"].colors
    colors = {**{m: palette[i % len(palette)] for i, m in enumerate(models)}, **(colors or {})}
    fig, axes = _panels(len(panels), 4.2, 3.4)
    for ax, (task, task_models) in zip(axes, panels.items()):
        positive = True
        for model, data in task_models.items():
            color = colors[model]
            for x, y, complete in data["trials"]:
                ax.plot([x], [y], "o", ms=4, color=color, mfc=color if complete else "none")
                positive &= y > 0
            for x, y in data.get("seeds", ()):
                ax.plot([x], [y], "x", ms=5, color=color)
                positive &= y > 0
        ax.set_xscale("log")
        if logy.get(task) and positive:
            ax.set_yscale("log")
        ax.set_title(task, fontsize=10)
        ax.set_xlabel(xlabel, fontsize=9)
        ax.set_ylabel(ylabels.get(task, ""), fontsize=9)
        ax.tick_params(labelsize=9)
        ax.grid(alpha=0.3)
    handles = [matplotlib.lines.Line2D([], [], marker="o", ls="", color=colors[m], label=m.replace("cell=", ""))
               for m in models]
    fig.suptitle("o: trials on validation (hollow: pruned); x: the chosen rate's seed runs on test", fontsize=9)
    fig.tight_layout()
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=min(len(models), 6), fontsize=9,
               frameon=False)
    return _save(fig, path)
