"""Gate analysis of trained models: restored runs, gate traces, forget-gate saturation, negators.

A trained run comes back through :func:`rnnlab.experiments.predict.restore`
(checksums verified); its gates through :func:`trace_batch`.

Keep-gate saturation per unit (:func:`saturation_report`): for LSTM-family
cells the forget gate, for GRU-family cells the update gate, both as the
fraction of the old state each unit *keeps* (see :data:`KEEP_GATES`), per
layer and direction, at the initialisation and at the first kept, last and
best (early-stopping) checkpoints. From the command line::

    python -m rnnlab.experiments.gate_analysis runs/tuned/adding100/cell=*/best__seed* \
        --out=docs/results/saturation
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from rnnlab.experiments.plots import plot_gate_heatmap, plot_gate_histograms
from rnnlab.experiments.stats import (RunRecord, format_mean_std, load_run, markdown_table, mean_std,
                                      parse_target, saturation)
from rnnlab.experiments.sweep import group_name


def restore_params(workdir: str) -> tuple[int, dict]:
    """``(step, params)``: the best params of a run, from :func:`rnnlab.experiments.predict.restore`."""
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
    """The restored run (:class:`rnnlab.experiments.predict.TrainedRun`) of a model with recurrent layers.

    Its best (early-stopping) params come back through the checkpoint code
    (:func:`rnnlab.experiments.predict.restore`, checksums verified); its gates through
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


# ----------------------------------------------------------------------------- keep-gate saturation


@dataclasses.dataclass(frozen=True)
class KeepGate:
    """Which traced gate of a cell sets the fraction of the old state each unit keeps, and how.

    Attributes:
      gate: the gate's name in :func:`rnnlab.gate_trace` (``"forget"``, ``"update"``).
      complement: the kept fraction is ``1 - gate`` (else the gate itself).
      family: ``"lstm"`` or ``"gru"``.
    """

    gate: str
    complement: bool
    family: str

    @property
    def transform(self) -> str:
        """The kept fraction as a formula of the gate: ``"forget"``, ``"update"`` or ``"1 - update"``."""
        return f"1 - {self.gate}" if self.complement else self.gate

    def keep(self, values: np.ndarray) -> np.ndarray:
        """``f32[...]``: the kept fraction from the gate's values ``f32[...]``."""
        values = np.asarray(values)
        return 1.0 - values if self.complement else values


# rnnlab's cells (rnnlab/cells/): the LSTM family keeps f * c_{t-1} (minLSTM: the normalised f', which
# gate_trace reports); the GRU and its reset-gate ablation keep z * h_{t-1} (PyTorch's convention,
# h_t = (1 - z) n + z h_{t-1}), minGRU keeps (1 - z) * h_{t-1}.
KEEP_GATES: dict[str, KeepGate] = {
    **{name: KeepGate("forget", False, "lstm") for name in (
        "lstm", "lstm_nig", "lstm_nog", "lstm_niaf", "lstm_noaf", "lstm_cifg", "lstm_fgr",
        "layer_norm_lstm", "min_lstm")},
    "gru": KeepGate("update", False, "gru"),
    "gru_nrg": KeepGate("update", False, "gru"),
    "min_gru": KeepGate("update", True, "gru"),
}
# Cells the report names when it skips them (any other cell is skipped as not LSTM- or GRU-family).
NO_KEEP_GATE = {
    "tanh": "the tanh RNN has no gate",
    "lstm_nfg": "no forget gate: the cell keeps all of c at every step",
    "gru_nug": "no update gate: the state is replaced at every step",
}


def keep_gate(cell: str) -> KeepGate:
    """The :class:`KeepGate` of a registered cell name.

    Raises:
      ValueError: the cell has no gate that keeps the old state, or is not of
        the LSTM or GRU family (the message says which).
    """
    if cell in KEEP_GATES:
        return KEEP_GATES[cell]
    why = NO_KEEP_GATE.get(cell, "not an LSTM- or GRU-family cell of rnnlab.cells")
    raise ValueError(f"cell {cell!r} has no keep gate to measure ({why})")


def evaluation_batches(run, split: str = "test", max_examples: int = 256
                       ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The first ``max_examples`` examples of ``split``, in file order, as padded batches.

    Args:
      run: a :class:`rnnlab.experiments.predict.TrainedRun`.
      split: a split of the run's dataset.
      max_examples: how many examples (rows of weight > 0) count; later rows
        of the last batch are masked out.

    Returns:
      ``[(inputs int32[B, T] | f32[B, T, D], lengths int32[B], valid bool[B, T])]``:
      ``valid`` marks the steps ``t < length`` of the counted examples.
    """
    import rnnlab.data

    loader = rnnlab.data.make_loader(run.config.data, split, seed=0, shuffle=False, num_epochs=1)
    batches, seen = [], 0
    for batch in loader:
        weights = np.asarray(batch["weights"]) > 0
        counted = weights & (seen + np.cumsum(weights) <= max_examples)
        seen += int(counted.sum())
        lengths = np.asarray(batch["lengths"], np.int32)
        steps = np.asarray(batch["inputs"]).shape[1]
        valid = (np.arange(steps)[None, :] < lengths[:, None]) & counted[:, None]
        batches.append((np.asarray(batch["inputs"]), lengths, valid))
        if seen >= max_examples:
            break
    return batches


def keep_values(run, batches: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
                gate: Optional[KeepGate] = None) -> list[dict[str, Any]]:
    """The kept fraction of every unit at every valid step, per recurrent layer and direction.

    Args:
      run: a :class:`rnnlab.experiments.predict.TrainedRun` (its ``params`` are traced).
      batches: from :func:`evaluation_batches`.
      gate: default :func:`keep_gate` of ``run.config.model.cell``.

    Returns:
      ``[{"layer": i, "direction": "fwd" | "bwd", "keep": f32[S, H]}]`` with S
      the valid steps of all batches, layers in order.
    """
    gate = gate or keep_gate(run.config.model.cell)
    parts: list[list[np.ndarray]] = []
    labels: list[tuple[int, str]] = []
    for inputs, lengths, valid in batches:
        traces = run.trace_gates(inputs, lengths)
        if not labels:
            labels = [(t["layer"], t["direction"]) for t in traces]
            parts = [[] for _ in traces]
        for part, trace in zip(parts, traces):
            part.append(gate.keep(trace["gates"][gate.gate][valid]))
    return [{"layer": layer, "direction": direction, "keep": np.concatenate(part).astype(np.float32)}
            for (layer, direction), part in zip(labels, parts)]


def unit_statistics(keep: np.ndarray, high: float = 0.9, low: float = 0.1,
                    memory_fraction: float = 0.5) -> dict[str, Any]:
    """Per-unit saturation of a kept fraction over S steps.

    Args:
      keep: ``f32[S, H]``, the kept fraction of H units at S valid steps.
      high: a value ``>= high`` is "near 1" (the unit keeps its state).
      low: a value ``<= low`` is "near 0" (the unit overwrites its state).
      memory_fraction: a *memory unit* is near 1 at ``>= memory_fraction`` of
        the steps; a *reset unit* near 0 at ``>= memory_fraction`` of them.

    Returns:
      ``{"units": H, "steps": S, "memory_units", "reset_units", "near_1", "near_0",
      "mean_keep", "per_unit": {"near_1": f64[H], "near_0": f64[H], "mean": f64[H]}}``:
      ``near_1`` / ``near_0`` are fractions of all ``S * H`` values, the
      ``per_unit`` ones fractions of each unit's S steps.

    Raises:
      ValueError: ``keep`` is not 2-D or has no step.
    """
    keep = np.asarray(keep, np.float64)
    if keep.ndim != 2 or keep.shape[0] == 0:
        raise ValueError(f"keep must be f32[S, H] with S > 0, got shape {keep.shape}")
    per_high, per_low = np.mean(keep >= high, axis=0), np.mean(keep <= low, axis=0)
    return {
        "units": int(keep.shape[1]), "steps": int(keep.shape[0]),
        "memory_units": int(np.sum(per_high >= memory_fraction)),
        "reset_units": int(np.sum(per_low >= memory_fraction)),
        "near_1": float(np.mean(keep >= high)), "near_0": float(np.mean(keep <= low)),
        "mean_keep": float(np.mean(keep)),
        "per_unit": {"near_1": per_high, "near_0": per_low, "mean": keep.mean(axis=0)},
    }


CHECKPOINTS = ("init", "first", "last", "best")
_LAYER_KEYS = ("memory_units", "reset_units", "near_1", "near_0", "mean_keep")


def _learned(results: Mapping[str, float], targets: Sequence[str]) -> Optional[bool]:
    """Whether ``results`` meet every target whose metric they hold; ``None`` when none applies."""
    verdicts = []
    for target in targets:
        key, mode, threshold = parse_target(target)
        if key in results:
            verdicts.append(results[key] >= threshold if mode == "max" else results[key] <= threshold)
    return all(verdicts) if verdicts else None


def run_saturation(workdir: str, split: str = "test", max_examples: int = 256, high: float = 0.9,
                   low: float = 0.1, memory_fraction: float = 0.5,
                   targets: Sequence[str] = ()) -> dict[str, Any]:
    """Keep-gate saturation of one run at its initialisation and its first kept, last and best checkpoints.

    ``init`` is the model's initialisation rebuilt from the run's config and
    seed (``predict.restore(workdir, step=0)``); ``first`` the earliest
    checkpoint still kept (``config.train.max_to_keep`` deletes older ones:
    ``first_is_first_saved`` says whether it is the first saved), ``last`` the
    newest that restores, both with the params trained up to their step;
    ``best`` the early-stopping best params held by the newest checkpoint
    (absent without early stopping). Every one is traced over the same first
    ``max_examples`` examples of ``split``.

    Args:
      workdir: a run directory with checkpoints.
      split, max_examples: the examples traced (``split`` falls back to the
        run's ``eval_split`` when the dataset lacks it).
      high, low, memory_fraction: see :func:`unit_statistics`.
      targets: ``"METRIC>=VALUE"`` / ``"METRIC<=VALUE"`` on ``results.json``
        (``"valid/mse<=0.01"``): ``learned`` is whether the run meets those
        whose metric it has (``None`` when none applies).

    Returns:
      ``{"seed", "cell", "family", "gate", "keep", "kept_steps", "checkpoint_every",
      "max_to_keep", "first_is_first_saved", "best_step", "results", "learned",
      "checkpoints": {name: {"step", "params_step", "layers": [{"layer",
      "direction", **unit_statistics}]}}}`` with NumPy per-unit arrays.

    Raises:
      ValueError: the run's cell has no keep gate (:func:`keep_gate`), or it
        has no checkpoint that restores.
    """
    from rnnlab.experiments import predict

    config = predict.read_config(workdir)
    gate = keep_gate(config.model.cell)
    if config.model.kind == "bag_of_words":
        raise ValueError(f"run {workdir!r} is a bag of words: it has no recurrent layer")
    run = predict.restore(workdir, params="state")  # the newest checkpoint that restores: "last"
    kept = predict.checkpoint_steps(workdir)
    if split not in run.spec.splits:
        split = config.train.eval_split
    batches = evaluation_batches(run, split, max_examples)
    points = {"init": run.at_step(0, "state")}
    first_error = None
    for step in kept:
        if step >= run.step:
            break
        try:
            points["first"] = run.at_step(step, "state")
            break
        except ValueError as e:  # a damaged checkpoint: the next kept one is the first that restores
            first_error = str(e)
    points.setdefault("first", run)
    points["last"] = run
    if run.best_step is not None:
        points["best"] = run.at_step(run.step, "best")
    results = load_run(workdir).results  # {"split/name": value}; {} while unfinished
    record = {
        "seed": int(config.train.seed), "cell": config.model.cell, "family": gate.family, "gate": gate.gate,
        "keep": gate.transform, "kind": config.model.kind, "dataset": config.data.name, "split": split,
        "examples": int(sum(v.any(axis=1).sum() for _, _, v in batches)),
        "kept_steps": kept, "checkpoint_every": int(config.train.checkpoint_every),
        "max_to_keep": int(config.train.max_to_keep),
        "first_is_first_saved": points["first"].step == min(int(config.train.checkpoint_every) or run.step, run.step),
        "best_step": run.best_step, "results": results, "learned": _learned(results, targets),
        "checkpoints": {},
    }
    if first_error:
        record["first_note"] = first_error
    for name, point in points.items():
        layers = [{"layer": v["layer"], "direction": v["direction"],
                   **unit_statistics(v["keep"], high, low, memory_fraction)}
                  for v in keep_values(point, batches, gate)]
        record["checkpoints"][name] = {"step": point.step, "params_step": point.params_step, "layers": layers}
    return record


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
            entry[layer_name] = {k: mean_std([l[k] for l in layers]) for k in _LAYER_KEYS + ("units",)}
        out[name] = entry
    return out


def plot_keep_histograms(groups: Mapping[str, Sequence[Mapping[str, Any]]], path: Optional[str],
                         memory_fraction: float = 0.5, high: float = 0.9):
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

    Returns:
      The ``matplotlib.figure.Figure``.
    """
    from matplotlib.figure import Figure

    labels = list(groups)
    cols = min(4, max(1, len(labels)))
    rows = math.ceil(len(labels) / cols) if labels else 1
    fig = Figure(figsize=(3.0 * cols, 4.4 * rows))
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
        top.set_title(f"{labels[k]}\n{records[0]['cell']}: keep = {records[0]['keep']}; memory units "
                      f"{memory['init']:.3g} -> {memory[trained]:.3g} of {units}", fontsize=7)
        top.set_xlabel("unit's mean keep", fontsize=7)
        bottom.set_xlabel(f"unit's fraction of steps with keep >= {high:g}", fontsize=7)
        bottom.axvline(memory_fraction, color="black", lw=0.8, ls="--")
        for ax in (top, bottom):
            ax.set_xlim(0.0, 1.0)
            ax.set_ylabel("fraction of units", fontsize=7)
            ax.tick_params(labelsize=6)
        top.legend(fontsize=6)
    fig.tight_layout()
    if path:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        fig.savefig(path, dpi=80, bbox_inches="tight")
    return fig


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


def main(argv: Sequence[str]) -> None:
    """absl entry: ``argv[1:]`` are run directories; writes ``--out``/saturation.{md,json,png}."""
    import sys

    from absl import flags

    f = flags.FLAGS
    result = saturation_report(argv[1:], f.out, split=f.split, max_examples=f.max_examples, high=f.high,
                               low=f.low, memory_fraction=f.memory_fraction, targets=f.target)
    sys.stdout.write(result["markdown"])


def _define_flags() -> None:
    from absl import flags

    flags.DEFINE_string("out", None, "output folder (docs/results/saturation)", required=True)
    flags.DEFINE_string("split", "test", "split whose first examples are traced")
    flags.DEFINE_integer("max_examples", 256, "examples traced per run")
    flags.DEFINE_float("high", 0.9, "keep >= high is near 1")
    flags.DEFINE_float("low", 0.1, "keep <= low is near 0")
    flags.DEFINE_float("memory_fraction", 0.5, "memory unit: near 1 at >= this fraction of steps")
    flags.DEFINE_multi_string("target", [], "METRIC>=VALUE or METRIC<=VALUE on results.json: learned or not")


if __name__ == "__main__":
    from absl import app

    _define_flags()
    app.run(main)
