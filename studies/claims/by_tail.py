"""Negation accuracy by tail length: each run's best checkpoint on its test split, broken down by the
number of neutral filler tokens after the sentence and by the ``negated`` flag (``--by=tail`` of
``python -m studies.claims.breakdown``, which documents it).
"""

from __future__ import annotations

import functools
import json
import os
from typing import Any, Mapping, Optional, Sequence

import numpy as np

import rnnlab.data
from rnnlab.analysis import plots
from rnnlab.data import grammar
from rnnlab.analysis.stats import format_mean_std, markdown_table
from rnnlab.analysis.significance import mean_std
from rnnlab.experiments.sweep import group_name
from rnnlab.training.workdir import RESULTS_FILE, read_json

TAIL_BUCKETS = ((0, 0), (1, 10), (11, 20), (21, 30), (31, 40))
"""Inclusive ranges of tail length (filler tokens after the sentence)."""
SUBSETS = ("all", "negated", "not_negated")



def tail_length(tokens: Sequence[str]) -> int:
    """The number of neutral filler tokens after the sentence (the ``tail`` of ``data.tail_len``).

    A sentence of :mod:`rnnlab.data.grammar` ends with its last sentiment word,
    or with a distractor suffix right after it (``", no doubt"``); the tail
    (:func:`rnnlab.data.grammar.neutral_tail`) holds neither sentiment words nor
    negators, so whatever follows is the tail.

    Args:
      tokens: one sentence, tail included.

    Raises:
      ValueError: no sentiment word.
    """
    words = [i for i, t in enumerate(tokens) if grammar.polarity(t)]
    if not words:
        raise ValueError(f"no sentiment word in {' '.join(tokens)!r}")
    end = words[-1] + 1
    for suffix in grammar.DISTRACTOR_SUFFIXES:
        if tuple(tokens[end:end + len(suffix)]) == suffix:
            end += len(suffix)
            break
    return len(tokens) - end


def bucket_name(bucket: tuple[int, int]) -> str:
    """``"0"`` or ``"1-10"``."""
    lo, hi = bucket
    return str(lo) if lo == hi else f"{lo}-{hi}"


def bucket_index(lengths: np.ndarray, buckets: Sequence[tuple[int, int]] = TAIL_BUCKETS) -> np.ndarray:
    """``int[N]``: the bucket holding each tail length (``-1``: none).

    Args:
      lengths: ``int[N]`` tail lengths.
      buckets: inclusive ``(lo, hi)`` ranges.
    """
    lengths = np.asarray(lengths)
    out = np.full(lengths.shape, -1, np.int64)
    for k, (lo, hi) in enumerate(buckets):
        out[(lengths >= lo) & (lengths <= hi)] = k
    return out


def count_by_bucket(tails: np.ndarray, correct: np.ndarray, negated: np.ndarray,
                    buckets: Sequence[tuple[int, int]] = TAIL_BUCKETS) -> dict[str, dict[str, dict[str, float]]]:
    """Examples and accuracy per bucket of tail length, overall and by the ``negated`` flag.

    Args:
      tails: ``int[N]`` tail lengths.
      correct: ``bool[N]``: the prediction was right.
      negated: ``bool[N]``: the sentence holds a negator.
      buckets: inclusive ``(lo, hi)`` ranges of tail length.

    Returns:
      ``{bucket name: {subset: {"n": examples, "correct": right, "accuracy": right / n
      (NaN when n is 0)}}}`` for the subsets :data:`SUBSETS`.

    Raises:
      ValueError: a tail length lies in no bucket.
    """
    tails, correct, negated = np.asarray(tails), np.asarray(correct, bool), np.asarray(negated, bool)
    which = bucket_index(tails, buckets)
    if (which < 0).any():
        raise ValueError(f"tail lengths {sorted(set(tails[which < 0].tolist()))} lie in no bucket of {buckets}")
    out = {}
    for k, bucket in enumerate(buckets):
        inside = which == k
        out[bucket_name(bucket)] = {
            subset: _accuracy(correct[inside & keep])
            for subset, keep in zip(SUBSETS, (np.ones_like(negated), negated, ~negated))
        }
    return out


def _accuracy(correct: np.ndarray) -> dict[str, float]:
    n = int(correct.size)
    right = int(correct.sum())
    return {"n": n, "correct": right, "accuracy": right / n if n else float("nan")}


@functools.lru_cache(maxsize=None)
def apply_fn(model: Any):
    """The jitted ``(params, inputs[B, T], lengths[B]) -> logits`` of a restored model, deterministic."""
    import jax

    return jax.jit(lambda params, inputs, lengths: model.apply({"params": params}, inputs, lengths,
                                                               deterministic=True))


def evaluate_by_tail(workdir: str, split: str = "test",
                     buckets: Sequence[tuple[int, int]] = TAIL_BUCKETS) -> dict[str, Any]:
    """A classification run's best checkpoint on ``split``, broken down by tail length.

    The split is read as training evaluates it (``rnnlab.data.make_loader``,
    in order, padding rows skipped), so ``overall`` is the accuracy the run
    reported when its best parameters were the ones it evaluated.

    Args:
      workdir: a finished run of the ``negation`` dataset (any ``tail_len``).
      split: the split to evaluate.
      buckets: inclusive ``(lo, hi)`` ranges of tail length.

    Returns:
      ``{"workdir", "group", "seed", "checkpoint_step": the restored checkpoint's step,
      "best_step": the step of the best parameters (``results.json``), "overall":
      {subset: {n, correct, accuracy}}, "by_tail": (see :func:`count_by_bucket`),
      "reported": the run's ``results.json`` accuracy on ``split`` (or None)}``.

    Raises:
      ValueError: the run's dataset has no ``negated`` flag, or its task is not classification.
    """
    from rnnlab.inference import trained_run

    run = trained_run.restore(workdir)
    if run.spec.task != "classify" or "negated" not in run.spec.extras or run.spec.vocab is None:
        raise ValueError(f"run {workdir!r} ({run.spec.name}, {run.spec.task}) is not a classifier of "
                         "sentences with a 'negated' flag")
    apply = apply_fn(run.model)
    tails, correct, negated = [], [], []
    loader = rnnlab.data.make_loader(run.config.data, split, seed=run.config.train.seed, shuffle=False,
                                     num_epochs=1)
    for batch in loader:
        logits = np.asarray(apply(run.params, batch["inputs"], batch["lengths"]))
        keep = np.asarray(batch["weights"]) > 0
        for ids, n in zip(batch["inputs"][keep], batch["lengths"][keep]):
            tails.append(tail_length(rnnlab.data.decode(run.spec, ids, n)))
        correct.append((logits.argmax(-1) == np.asarray(batch["targets"]))[keep])
        negated.append(np.asarray(batch["negated"], bool)[keep])
    tails, correct, negated = np.asarray(tails), np.concatenate(correct), np.concatenate(negated)
    overall = {subset: _accuracy(correct[keep])
               for subset, keep in zip(SUBSETS, (np.ones_like(negated), negated, ~negated))}
    results = read_results(workdir)
    return {
        "workdir": workdir,
        "group": group_name(workdir),
        "seed": int(run.config.train.seed),
        "checkpoint_step": run.step,
        "best_step": results.get("best_step"),
        "overall": overall,
        "by_tail": count_by_bucket(tails, correct, negated, buckets),
        "reported": results.get(split, {}).get("accuracy"),
    }


def read_results(workdir: str) -> dict:
    """The run's ``results.json``, or ``{}`` when it has none (not finished)."""
    path = os.path.join(workdir, RESULTS_FILE)
    return read_json(path) if os.path.isfile(path) else {}


def group_labels(workdirs: Sequence[str]) -> dict[str, str]:
    """``{workdir: group label}``: :func:`group_name`, with the parent folder's name in front
    when directories of different parents share it (``cell=gru/best``)."""
    parents: dict[str, set] = {}
    for w in workdirs:
        parents.setdefault(group_name(w), set()).add(os.path.dirname(os.path.normpath(os.path.abspath(w))))
    out = {}
    for w in workdirs:
        name = group_name(w)
        parent = os.path.basename(os.path.dirname(os.path.normpath(os.path.abspath(w))))
        out[w] = f"{parent}/{name}" if len(parents[name]) > 1 else name
    return out


def display_path(path: str) -> str:
    """``path`` relative to the working directory when under it (no machine paths in outputs)."""
    rel = os.path.relpath(os.path.abspath(path))
    return rel if not rel.startswith("..") else os.path.basename(os.path.normpath(path))


def summarize_by_tail(per_run: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Mean +- std over seeds of each group's accuracy per bucket and subset.

    Args:
      per_run: :func:`evaluate_by_tail` results, each with ``"label"`` (its group label).

    Returns:
      ``{group: {"seeds": [..], "overall": {subset: (mean, std, n)}, "by_tail": {bucket:
      {subset: (mean, std, n)}}, "examples": {bucket: mean examples per seed}}}``.
    """
    groups: dict[str, list] = {}
    for r in per_run:
        groups.setdefault(r["label"], []).append(r)
    out = {}
    for label, runs in groups.items():
        runs = sorted(runs, key=lambda r: r["seed"])
        buckets = list(runs[0]["by_tail"])
        out[label] = {
            "seeds": [r["seed"] for r in runs],
            "overall": {s: mean_std([r["overall"][s]["accuracy"] for r in runs]) for s in SUBSETS},
            "by_tail": {b: {s: mean_std([r["by_tail"][b][s]["accuracy"] for r in runs]) for s in SUBSETS}
                        for b in buckets},
            "examples": {b: float(np.mean([r["by_tail"][b]["all"]["n"] for r in runs])) for b in buckets},
        }
    return out


def by_tail_tables(summary: Mapping[str, Mapping[str, Any]]) -> str:
    """Markdown: accuracy per tail bucket (mean +- std over seeds), then negated / not negated."""
    buckets = list(next(iter(summary.values()))["by_tail"])
    header = ["model", "seeds", *[f"tail {b}" for b in buckets], "all"]
    text = []
    for subset, title in (("all", "Test accuracy by tail length"),
                          ("negated", "Negated sentences (holding any negator)"),
                          ("not_negated", "Sentences without a negator")):
        rows = [[label, len(g["seeds"]), *[format_mean_std(g["by_tail"][b][subset]) for b in buckets],
                 format_mean_std(g["overall"][subset])] for label, g in summary.items()]
        text.append(f"### {title}\n\n{markdown_table(header, rows)}")
    first = next(iter(summary.values()))
    counts = [["examples per seed (mean)", *[f"{first['examples'][b]:.0f}" for b in buckets]]]
    text.append(markdown_table(["", *[f"tail {b}" for b in buckets]], counts))
    return "\n\n".join(text) + "\n"


def plot_by_tail(summary: Mapping[str, Mapping[str, Any]], path: Optional[str]):
    """Accuracy (mean, error bar = std over seeds) against the tail bucket, one line per group.

    Returns:
      The ``matplotlib.figure.Figure`` (written as a PNG to ``path`` when given).
    """
    fig = plots.new_figure((6, 3.6))
    ax = fig.subplots()
    buckets = list(next(iter(summary.values()))["by_tail"])
    x = np.arange(len(buckets))
    low = 0.4
    for label, g in summary.items():
        mean = np.asarray([g["by_tail"][b]["all"][0] for b in buckets])
        std = np.asarray([g["by_tail"][b]["all"][1] for b in buckets])
        ax.errorbar(x, mean, yerr=std, marker="o", capsize=3, label=label)
        low = min(low, float(np.nanmin(mean - std)) - 0.03)
    ax.set_xticks(x, [f"{b}" for b in buckets])
    ax.set_xlabel("filler tokens after the sentence")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(max(low, 0.0), 1.02)
    ax.axhline(0.5, color="gray", lw=0.8, ls=":")
    ax.legend(fontsize=8, loc="best")
    if path:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        fig.savefig(path, dpi=90, bbox_inches="tight")
    return fig


def write_by_tail(workdirs: Sequence[str], out: str, split: str = "test") -> dict[str, Any]:
    """Evaluates every run by tail length and writes ``by_tail.md``, ``by_tail.json``, ``by_tail.png``.

    Args:
      workdirs: finished ``negation`` runs.
      out: the output folder.
      split: the split evaluated.

    Returns:
      ``{"runs": [per run], "groups": summary, "markdown": the tables}``.
    """
    labels = group_labels(workdirs)
    per_run = []
    for w in workdirs:
        r = evaluate_by_tail(w, split)
        r["label"] = labels[w]
        r["workdir"] = display_path(w)
        per_run.append(r)
    summary = summarize_by_tail(per_run)
    markdown = by_tail_tables(summary)
    rows = [[r["label"], r["seed"], r["best_step"], f"{r['overall']['all']['accuracy']:.3f}", format_value(r["reported"], 3)]
            + [f"{r['by_tail'][bucket_name(b)]['all']['accuracy']:.3f}" for b in TAIL_BUCKETS] for r in per_run]
    markdown += "\n### Per seed\n\n" + markdown_table(
        ["model", "seed", "best step", "accuracy (recomputed)", "accuracy (results.json)",
         *[f"tail {bucket_name(b)}" for b in TAIL_BUCKETS]], rows) + "\n"
    os.makedirs(out, exist_ok=True)
    intro = (f"# Accuracy by tail length ({split} split)\n\nEach run's best checkpoint; tail = neutral filler "
             "tokens after the sentence. Mean +- std over seeds.\n\n")
    with open(os.path.join(out, "by_tail.md"), "w") as f:
        f.write(intro + markdown)
    payload = {"split": split, "buckets": [bucket_name(b) for b in TAIL_BUCKETS], "runs": per_run,
               "groups": summary}
    with open(os.path.join(out, "by_tail.json"), "w") as f:
        json.dump(payload, f, indent=1, default=float)
    plot_by_tail(summary, os.path.join(out, "by_tail.png"))
    return {"runs": per_run, "groups": summary, "markdown": intro + markdown}


def format_value(value: Optional[float], digits: int = 4) -> str:
    """``value`` with ``digits`` decimals; ``-`` for None."""
    return "-" if value is None else f"{value:.{digits}f}"
