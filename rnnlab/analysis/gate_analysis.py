"""Gate analysis of trained models: restored runs, gate traces, forget-gate heat maps, negators.

A trained run comes back through :func:`rnnlab.inference.trained_run.restore`
(checksums verified); its gates through :func:`trace_batch`. Keep-gate saturation
per unit lives in :mod:`rnnlab.analysis.saturation` (one run) and
:mod:`rnnlab.analysis.saturation_report` (groups of runs, ``python -m rnnlab gates``).
"""

from __future__ import annotations

import os
from typing import Mapping, Sequence

import numpy as np

from rnnlab.analysis.plots import plot_gate_heatmap, plot_gate_histograms
from rnnlab.analysis.stats import RunRecord, format_mean_std, markdown_table, saturation
from rnnlab.analysis.significance import mean_std


def restore_params(workdir: str) -> tuple[int, dict]:
    """``(step, params)``: the best params of a run, from :func:`rnnlab.inference.trained_run.restore`."""
    from rnnlab.inference import trained_run

    run = trained_run.restore(workdir)
    return run.step, run.params


def count_params(workdir: str, exclude: Sequence[str] = ("embed",)) -> int:
    """Parameters of a run's model from its checkpoint, leaving out paths containing ``exclude``.

    The embedding is left out by default: it is the same for every model of an
    experiment and would hide the difference between the cells.
    """
    from rnnlab.training import train  # the training stack; imported only when needed

    return train.count_params(restore_params(workdir)[1], tuple(exclude))


def load_trained(workdir: str):
    """The restored run (:class:`rnnlab.inference.trained_run.TrainedRun`) of a model with recurrent layers.

    Its best (early-stopping) params come back through the checkpoint code
    (:func:`rnnlab.inference.trained_run.restore`, checksums verified); its gates through
    :func:`trace_batch`.

    Raises:
      ValueError: the run has no checkpoint or its model has no recurrent layer.
      FileNotFoundError: not a run directory.
    """
    from rnnlab.inference import trained_run

    run = trained_run.restore(workdir)
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
