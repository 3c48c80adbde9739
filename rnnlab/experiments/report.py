"""Results tables and figures from run directories.

    python -m rnnlab.report runs/claims/negation-* --out=docs/results/negation

A run directory (a workdir of ``rnnlab.training.train.train_and_evaluate``) holds
``config.json``, ``metrics.jsonl`` (one JSON object per logged step, metrics
named ``split/name``) and ``results.json`` (``{split: {name: value}}``). Runs
whose directory names differ only in their ``__seedS`` suffix form a *group*
(see :mod:`rnnlab.experiments.sweep`); tables give each group's mean +- sample standard
deviation over its seeds. ``--out`` is a folder that receives ``summary.md``
(the tables), ``summary.json`` and PNG figures: learning curves, bars of a
final metric and, for runs with a recurrent model, forget-gate histograms and
per-word gate heat maps of the trained cells.

Plotting functions take plain arrays and dicts and return a
``matplotlib.figure.Figure`` (not registered with pyplot, so no backend is
chosen or forced: a notebook displays it inline, a script never opens a
window); with ``path`` they also write it as a PNG.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Any, Iterable, Mapping, Optional, Sequence

import numpy as np

from rnnlab.experiments.sweep import group_name
from rnnlab.training.workdir import CHECKPOINT_DIR, CONFIG_FILE, RESULTS_FILE, flatten, read_json, read_metrics


@dataclasses.dataclass
class RunRecord:
    """What one finished (or unfinished) run directory holds.

    Attributes:
      workdir: the directory.
      group: its name without the seed suffix.
      seed: ``config.train.seed`` (or -1 when unknown).
      config: ``config.json`` as a nested dict (``{}`` when missing).
      metrics: the ``metrics.jsonl`` lines in file order.
      results: ``results.json`` flattened to ``{"split/name": value}``
        (``{}`` while the run is unfinished).
    """

    workdir: str
    group: str
    seed: int
    config: dict
    metrics: list
    results: dict

    @property
    def finished(self) -> bool:
        return bool(self.results)


def _read_json(path: str, default: Any) -> Any:
    if not os.path.isfile(path):
        return default
    return read_json(path)


def load_run(workdir: str) -> RunRecord:
    """Reads one run directory; raises ``FileNotFoundError`` if it is not a folder."""
    if not os.path.isdir(workdir):
        raise FileNotFoundError(f"not a run directory: {workdir!r}")
    config = _read_json(os.path.join(workdir, CONFIG_FILE), {})
    seed = config.get("train", {}).get("seed", -1)
    results = _read_json(os.path.join(workdir, RESULTS_FILE), {})
    return RunRecord(
        workdir=workdir,
        group=group_name(workdir),
        seed=int(seed),
        config=config,
        metrics=read_metrics(workdir),
        results={k: v for k, v in flatten(results).items() if _is_number(v)},
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def group_runs(runs: Iterable[RunRecord]) -> dict[str, list[RunRecord]]:
    """``{group: runs sorted by seed}``, groups in order of first appearance."""
    groups: dict[str, list[RunRecord]] = {}
    for run in runs:
        groups.setdefault(run.group, []).append(run)
    return {g: sorted(rs, key=lambda r: r.seed) for g, rs in groups.items()}


def mean_std(values: Sequence[float]) -> tuple[float, float, int]:
    """``(mean, sample std (ddof=1; 0 for one value), count)``, NaNs ignored."""
    arr = np.asarray([v for v in values if v is not None and not math.isnan(v)], np.float64)
    if arr.size == 0:
        return float("nan"), float("nan"), 0
    std = float(arr.std(ddof=1)) if arr.size > 1 else 0.0
    return float(arr.mean()), std, int(arr.size)


def first_step_reaching(
    metrics: Sequence[Mapping[str, Any]], key: str, threshold: float, mode: str = "max"
) -> Optional[int]:
    """The first logged step at which ``key`` is ``>= threshold`` (mode max) or ``<=`` (min).

    Returns ``None`` when it never gets there.
    """
    if mode not in ("max", "min"):
        raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
    for record in metrics:
        value = record.get(key)
        if value is None or not _is_number(value) or math.isnan(value):
            continue
        if (value >= threshold) if mode == "max" else (value <= threshold):
            return int(record["step"])
    return None


def train_seconds_to_step(metrics: Sequence[Mapping[str, Any]], step: int) -> float:
    """Training time until ``step``, summed from the logged ``train/steps_per_sec`` windows.

    Each training log line covers the steps since the previous one at its
    rate; compile, evaluation and checkpoint time are excluded. The window
    holding ``step`` counts in full (``step`` is normally a log step).
    """
    seconds, previous = 0.0, 0
    for record in metrics:
        sps = record.get("train/steps_per_sec")
        if sps is None or not _is_number(sps) or sps <= 0 or record["step"] <= previous:
            continue
        seconds += (record["step"] - previous) / sps
        previous = record["step"]
        if previous >= step:
            return seconds
    raise ValueError(f"the log stops at step {previous}, before step {step}")


def curve(metrics: Sequence[Mapping[str, Any]], key: str) -> tuple[np.ndarray, np.ndarray]:
    """``(steps int[N], values f64[N])`` of one metric over a run's log."""
    pairs = [(r["step"], r[key]) for r in metrics if key in r and _is_number(r[key])]
    if not pairs:
        return np.zeros(0, np.int64), np.zeros(0, np.float64)
    steps, values = zip(*pairs)
    return np.asarray(steps, np.int64), np.asarray(values, np.float64)


def summarize(
    groups: Mapping[str, Sequence[RunRecord]], keys: Optional[Sequence[str]] = None
) -> dict[str, dict[str, tuple[float, float, int]]]:
    """``{group: {metric: (mean, std, n)}}`` over the finished runs of each group.

    Args:
      groups: from :func:`group_runs`.
      keys: metric names (``"test/accuracy"``); default every numeric result.
    """
    summary = {}
    for group, runs in groups.items():
        done = [r for r in runs if r.finished]
        names = keys or sorted({k for r in done for k in r.results})
        summary[group] = {k: mean_std([r.results.get(k, float("nan")) for r in done]) for k in names}
    return summary


def format_mean_std(stats: tuple[float, float, int], digits: int = 3) -> str:
    """``"0.912 +- 0.004"`` (``"-"`` when there are no values)."""
    mean, std, n = stats
    if n == 0:
        return "-"
    return f"{mean:.{digits}f} +- {std:.{digits}f}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub Markdown table."""
    lines = ["| " + " | ".join(map(str, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def summary_table(
    summary: Mapping[str, Mapping[str, tuple[float, float, int]]],
    keys: Sequence[str],
    digits: int = 3,
) -> str:
    """One row per group: ``seeds`` and ``mean +- std`` of each key."""
    header = ["run", "seeds"] + list(keys)
    rows = []
    for group, stats in summary.items():
        n = max((stats[k][2] for k in keys if k in stats), default=0)
        rows.append([group, n] + [format_mean_std(stats.get(k, (0, 0, 0)), digits) for k in keys])
    return markdown_table(header, rows)


def quiet() -> None:
    """Keeps a notebook's output to what it prints itself: absl logging at WARNING, tfds bars off.

    Training then logs nothing below a warning and dataset preparation draws no
    progress bars; call it once at the top of a notebook.
    """
    import tensorflow_datasets as tfds
    from absl import logging

    logging.set_verbosity(logging.WARNING)
    tfds.disable_progress_bar()


def negated_counts(data_config: Any, split: str) -> tuple[int, int]:
    """``(examples, examples with negated == True)`` in ``split`` of a dataset with a ``negated`` flag.

    Raises:
      ValueError: the dataset's batches carry no ``negated`` flag.
    """
    import rnnlab.data

    total = negated = 0
    for batch in rnnlab.data.make_loader(data_config, split, seed=0, shuffle=False, num_epochs=1):
        if "negated" not in batch:
            raise ValueError(f"dataset {data_config.get('name')!r} has no 'negated' flag")
        weights = np.asarray(batch["weights"]) > 0
        total += int(weights.sum())
        negated += int((np.asarray(batch["negated"]).astype(bool) & weights).sum())
    return total, negated


def negation_breakdown(
    workdirs: Sequence[str],
    splits: Sequence[str] = ("valid", "test"),
    counts: Optional[Mapping[str, tuple[int, int]]] = None,
) -> list[dict[str, Any]]:
    """Per finished run: accuracy on all, negated and other (non-negated) sentences of each split.

    The other sentences' accuracy is ``(accuracy * N - negated_accuracy * N_neg) / (N - N_neg)``
    from ``results.json``.

    Args:
      workdirs: run directories of classification runs with a ``negated`` flag.
      splits: the result splits to break down.
      counts: ``{split: (N, N_neg)}``; default counted from each run's dataset
        (:func:`negated_counts`).

    Returns:
      ``[{"workdir", "group", "seed", "learning_rate", "wall_time_sec",
      split: {"accuracy", "negated_accuracy", "other_accuracy", "count", "negated"}}]``.
    """
    records = []
    for workdir in workdirs:
        run = load_run(workdir)
        if not run.finished:
            continue
        record = {"workdir": workdir, "group": run.group, "seed": run.seed,
                  "learning_rate": run.config.get("optim", {}).get("learning_rate"),
                  "wall_time_sec": run.results.get("wall_time_sec")}
        for split in splits:
            n, n_neg = counts[split] if counts else negated_counts(run.config["data"], split)
            acc, neg = run.results[f"{split}/accuracy"], run.results[f"{split}/negated_accuracy"]
            other = (acc * n - neg * n_neg) / (n - n_neg) if n > n_neg else float("nan")
            record[split] = {"accuracy": acc, "negated_accuracy": neg, "other_accuracy": other,
                             "count": n, "negated": n_neg}
        records.append(record)
    return records


# ----------------------------------------------------------------------------------- figures


def _figure(figsize: tuple[float, float]):
    """A new ``matplotlib.figure.Figure`` outside pyplot (nothing to close, no backend forced)."""
    from matplotlib.figure import Figure

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
      logy: log scale on y (losses, mse).

    Returns:
      The ``matplotlib.figure.Figure``.
    """
    import matplotlib

    fig = _figure((6, 3.6))
    ax = fig.subplots()
    colors = matplotlib.colormaps["tab20" if len(curves) > 10 else "tab10"].colors
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
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
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
    fig = _figure((max(4, 0.9 * len(groups) + 2), 3.6))
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


def saturation(values: np.ndarray, eps: float = 0.1) -> dict[str, float]:
    """The fraction of gate values ``< eps`` (near 0), ``> 1 - eps`` (near 1) and between."""
    values = np.asarray(values, np.float64).ravel()
    if values.size == 0:
        raise ValueError("no gate values to measure")
    low = float(np.mean(values < eps))
    high = float(np.mean(values > 1 - eps))
    return {"near_0": low, "near_1": high, "middle": 1.0 - low - high}


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
    fig = _figure((3.2 * len(labels), 2.8))
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
    fig = _figure((max(4, 0.45 * T + 1.5), 1.6 * len(names) + 0.6))
    axes = fig.subplots(len(names), 1, squeeze=False)
    for ax, name in zip(axes[:, 0], names):
        g = np.asarray(gates[name])[:T, :max_units]
        if g.shape[0] != T:
            raise ValueError(f"gate {name!r} has {g.shape[0]} steps, the sentence has {T} words")
        lo, hi = (-1.0, 1.0) if g.min() < 0 else (0.0, 1.0)
        im = ax.imshow(g.T, aspect="auto", cmap="viridis", vmin=lo, vmax=hi, interpolation="nearest")
        ax.set_ylabel(name, fontsize=8)
        ax.set_yticks([])
        ax.set_xticks(range(T))
        ax.set_xticklabels(words if ax is axes[-1, 0] else [], rotation=45, ha="right", fontsize=8)
        fig.colorbar(im, ax=ax, fraction=0.02, pad=0.01)
    if title:
        axes[0, 0].set_title(title, fontsize=9)
    return _save(fig, path)


# ------------------------------------------------------------------------------- gates


def restore_params(workdir: str) -> tuple[int, dict]:
    """``(step, params)``: the best params of a run, from :func:`rnnlab.predict.restore`."""
    from rnnlab.experiments import predict

    run = predict.restore(workdir)
    return run.step, run.params


def count_params(workdir: str, exclude: Sequence[str] = ("embed",)) -> int:
    """Parameters of a run's model from its checkpoint, leaving out paths containing ``exclude``.

    The embedding is left out by default: it is the same for every model of an
    experiment and would hide the difference between the cells.
    """
    from rnnlab.training import train  # the training stack; imported only when needed

    return train.count_params(restore_params(workdir)[1], tuple(exclude))


def load_trained(workdir: str):
    """The restored run (:class:`rnnlab.predict.TrainedRun`) of a model with recurrent layers.

    Its best (early-stopping) params come back through the checkpoint code
    (:func:`rnnlab.predict.restore`, checksums verified); its gates through
    :func:`trace_batch`.

    Raises:
      ValueError: the run has no checkpoint or its model has no recurrent layer.
      FileNotFoundError: not a run directory.
    """
    from rnnlab.experiments import predict

    run = predict.restore(workdir)
    steps = min(run.config.data.buckets)
    if run.spec.input_kind == "tokens":
        probe = np.zeros((1, steps), np.int32)
    else:
        probe = np.zeros((1, steps, run.spec.input_size), np.float32)
    if not run.trace_gates(probe, np.ones((1,), np.int32)):
        raise ValueError(f"run {workdir!r} ({run.config.model.kind}) has no recurrent layer")
    return run


def trace_batch(model, inputs: np.ndarray, lengths: np.ndarray) -> dict[str, np.ndarray]:
    """``{gate: f32[B, T, H]}`` of the first layer (forward direction) over a batch, zero past each length.

    Args:
      model: from :func:`load_trained`.
      inputs: ``int32[B, T]`` ids (or ``f32[B, T, D]`` features).
      lengths: ``int32[B]``.
    """
    return model.trace_gates(inputs, lengths)[0]["gates"]


def gate_values(model, gate: str = "forget", split: str = "test",
                max_examples: int = 256, at_words: Sequence[str] = ()) -> np.ndarray:
    """``f32[N]``: one gate's activations at every valid step and unit of up to ``max_examples``.

    With ``at_words`` (token datasets), only the steps that read one of those
    words count (:func:`gate_at_words` also gives the other steps).
    """
    return _gate_values(model, gate, split, max_examples, at_words)[0]


def gate_at_words(model, words: Sequence[str], gate: str = "forget", split: str = "test",
                  max_examples: int = 256) -> tuple[float, float]:
    """Mean activation of ``gate`` at steps reading one of ``words`` and at all other valid steps."""
    at, other = _gate_values(model, gate, split, max_examples, words)
    return (float(at.mean()) if at.size else float("nan")), float(other.mean())


def _gate_values(model, gate, split, max_examples, at_words):
    import rnnlab.data

    ids = [model.spec.vocab.index(w) for w in at_words if model.spec.vocab and w in model.spec.vocab]
    loader = rnnlab.data.make_loader(model.config.data, split, seed=0, shuffle=False, num_epochs=1)
    values, others, seen = [], [], 0
    for batch in loader:
        gates = trace_batch(model, batch["inputs"], batch["lengths"])
        if gate not in gates:
            raise ValueError(f"cell {model.config.model.cell!r} has no {gate!r} gate; it has {', '.join(gates)}")
        T = gates[gate].shape[1]
        valid = (np.arange(T)[None, :] < batch["lengths"][:, None]) & (batch["weights"][:, None] > 0)
        if at_words:
            hit = np.isin(batch["inputs"], ids) & valid
            values.append(gates[gate][hit].ravel())
            others.append(gates[gate][valid & ~hit].ravel())
        else:
            values.append(gates[gate][valid].ravel())
        seen += int(np.sum(batch["weights"] > 0))
        if seen >= max_examples:
            break
    return np.concatenate(values), (np.concatenate(others) if others else np.zeros(0))


def example_sentences(model, words: Sequence[str] = ("not", "n't", "never"),
                      count: int = 2, split: str = "test") -> list[tuple[np.ndarray, list[str]]]:
    """The first ``count`` examples of ``split`` holding one of ``words``: ``(ids int32[L], words)``."""
    import rnnlab.data

    vocab = model.spec.vocab
    if vocab is None:
        return []
    wanted = {vocab.index(w) for w in words if w in vocab}
    found = []
    loader = rnnlab.data.make_loader(model.config.data, split, seed=0, shuffle=False, num_epochs=1)
    for batch in loader:
        for ids, n, w in zip(batch["inputs"], batch["lengths"], batch["weights"]):
            ids = np.asarray(ids[:n])
            if w > 0 and wanted & set(ids.tolist()):
                found.append((ids, [vocab[i] for i in ids]))
                if len(found) == count:
                    return found
    return found


def _is_lstm_run(run: RunRecord) -> bool:
    model = run.config.get("model", {})
    return model.get("cell") == "lstm" and model.get("kind") != "bag_of_words" and run.finished


def gate_report(groups: Mapping[str, Sequence[RunRecord]], out: str, eps: float = 0.1,
                max_examples: int = 256) -> tuple[str, list[str]]:
    """Forget-gate saturation of the trained LSTMs in ``groups``: a table, histograms, heat maps.

    For every group of finished LSTM runs: the fraction of forget-gate values
    (first layer, forward direction, valid steps of ``max_examples`` test
    examples) below ``eps`` and above ``1 - eps``, mean +- std over seeds; one
    histogram panel per group (all seeds pooled); and for token datasets heat
    maps of every gate over test sentences with a negator (seed of the first run).

    Returns:
      ``(markdown, figure paths)``; ``("", [])`` when no group holds an LSTM.
    """
    from rnnlab.data.text import NEGATORS

    rows, hist, figures = [], {}, []
    for group, runs in groups.items():
        lstm_runs = [r for r in runs if _is_lstm_run(r)]
        if not lstm_runs:
            continue
        per_seed, pooled = [], []
        for i, run in enumerate(lstm_runs):
            model = load_trained(run.workdir)
            values = gate_values(model, "forget", max_examples=max_examples)
            per_seed.append(saturation(values, eps))
            if model.spec.vocab and any(w in model.spec.vocab for w in NEGATORS):
                at, other = gate_at_words(model, NEGATORS, "forget", max_examples=max_examples)
                per_seed[-1].update(at_negator=at, elsewhere=other)
            pooled.append(values)
            if i == 0:
                for k, (ids, words) in enumerate(example_sentences(model)):
                    gates = trace_batch(model, ids[None], np.array([len(ids)]))
                    path = os.path.join(out, f"gates_{_slug(group)}_{k}.png")
                    title = f"{group}, seed {run.seed}: gates of 8 units over a test sentence"
                    plot_gate_heatmap({g: v[0] for g, v in gates.items()}, words, path, max_units=8, title=title)
                    figures.append(path)
        hist[group] = np.concatenate(pooled)
        rows.append([group, len(per_seed)] + [
            format_mean_std(mean_std([s.get(k, float("nan")) for s in per_seed]))
            for k in ("near_0", "middle", "near_1", "at_negator", "elsewhere")])
    if not rows:
        return "", []
    figures.insert(0, os.path.join(out, "forget_hist.png"))
    plot_gate_histograms(hist, figures[0], "forget", eps)
    header = ["run", "seeds", f"forget < {eps}", "in between", f"forget > {1 - eps:g}",
              "mean forget at negators", "mean forget elsewhere"]
    md = (f"\nForget-gate saturation (first layer, forward direction, {max_examples} test examples, "
          "valid steps; mean +- std over seeds):\n\n")
    return md + markdown_table(header, rows), figures


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text)


# ------------------------------------------------------------------------------------- main


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
        heat maps) of the runs whose model is recurrent.
      targets: ``"valid/accuracy>=0.95"``-style targets; each adds a table of
        the seeds reaching it, the step and the training time to it.

    Returns:
      ``{"summary": ..., "figures": [paths], "table": markdown}``.
    """
    runs = [load_run(w) for w in workdirs]
    if not runs:
        raise ValueError("no run directories given")
    groups = group_runs(runs)
    keys = _metric_keys(runs, split)
    summary = summarize(groups, keys)
    extra = {g: _timing(rs) for g, rs in groups.items()}
    table = summary_table(summary, keys)
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
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write(f"Mean +- sample std over seeds; split `{split}`.\n\n" + table)
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump({"summary": summary, "timing": extra, "targets": reached,
                   "workdirs": [r.workdir for r in runs]}, f, indent=1)
    return {"summary": summary, "figures": figures, "table": table}


def parse_target(text: str) -> tuple[str, str, float]:
    """``"valid/mse<=0.01"`` -> ``("valid/mse", "min", 0.01)``; ``">="`` gives ``"max"``."""
    for op, mode in (("<=", "min"), (">=", "max")):
        if op in text:
            key, _, value = text.partition(op)
            return key.strip(), mode, float(value)
    raise ValueError(f"a target is METRIC<=VALUE or METRIC>=VALUE, got {text!r}")


def target_table(groups: Mapping[str, Sequence[RunRecord]], target: str) -> tuple[str, dict]:
    """Per group: seeds that reach ``target`` on their logged curve, the step and the training time.

    Steps and seconds (:func:`train_seconds_to_step`) are mean +- std over the
    seeds that reach it.

    Returns:
      ``(markdown, {group: {"reached": k, "seeds": n, "step": stats, "seconds": stats}})``.
    """
    key, mode, threshold = parse_target(target)
    rows, data = [], {}
    for group, runs in groups.items():
        done = [r for r in runs if r.finished]
        steps = [first_step_reaching(r.metrics, key, threshold, mode) for r in done]
        hits = [(r, s) for r, s in zip(done, steps) if s is not None]
        seconds = [train_seconds_to_step(r.metrics, s) for r, s in hits]
        data[group] = {"reached": len(hits), "seeds": len(done), "step": mean_std([s for _, s in hits]),
                       "seconds": mean_std(seconds)}
        rows.append([group, f"{len(hits)}/{len(done)}", format_mean_std(data[group]["step"], 0),
                     format_mean_std(data[group]["seconds"], 1)])
    md = f"\nTarget `{target}` (first logged evaluation reaching it):\n\n"
    return md + markdown_table(["run", "seeds reaching", "step", "train seconds"], rows), data


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
