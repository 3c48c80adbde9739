"""Breakdowns of trained runs: negation accuracy by tail length, future-context runs against their ceiling.

    python -m rnnlab.experiments.breakdown runs/tuned/negation_tail/*/best__seed* --out=docs/results/by_tail
    python -m rnnlab.experiments.breakdown --by=ceiling configs/claims/future_context.py \\
        runs/tuned/future_context/*/best__seed* --fresh=20000 --out=docs/results/ceilings

``--by=tail`` (claim 1 with tails, the ``tail`` variant of ``configs/claims/negation.py``):
each run's best checkpoint (:func:`rnnlab.experiments.predict.restore`) is
evaluated on its test split, read as training evaluates it, and its accuracy
is broken down by the number of neutral filler tokens after the sentence
(:func:`tail_length`, recovered from the tokens: the generated data is not
touched) in the buckets :data:`TAIL_BUCKETS`, and within each bucket by the
dataset's ``negated`` flag. Writes ``by_tail.md``, ``by_tail.json`` (per seed
and mean +- std per group) and ``by_tail.png``.

``--by=ceiling`` (claim 2): the Bayes-optimal left-to-right tagger of
:mod:`rnnlab.data.ceilings` scored on the test split of each config file
(``path[:variant]``) and each run's own data (from its ``config.json``;
regenerated and checked against the run's recorded data fingerprint), beside
the run's test accuracy on the sentiment words. Writes ``ceilings.md`` and
``ceilings.json``. With ``--fresh=N`` each run and the optimal rule also tag N
new sentences of the run's generator, where sampling luck is small.

Groups are run directories that differ only in their ``__seedS`` suffix
(:func:`rnnlab.experiments.sweep.group_name`); when directories of different
parents share that name (``.../cell=gru/best__seed1``, ``.../bow/best__seed1``),
the parent's name goes in front: ``cell=gru/best``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sys
from typing import Any, Mapping, Optional, Sequence

import numpy as np

import rnnlab.data
from rnnlab.data import ceilings, grammar
from rnnlab.experiments.stats import format_mean_std, markdown_table, mean_std
from rnnlab.experiments.sweep import group_name
from rnnlab.training.workdir import CONFIG_FILE, RESULTS_FILE, read_json

TAIL_BUCKETS = ((0, 0), (1, 10), (11, 20), (21, 30), (31, 40))
"""Inclusive ranges of tail length (filler tokens after the sentence)."""
SUBSETS = ("all", "negated", "not_negated")


# ----------------------------------------------------------------------------- tails


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
def _apply_fn(model: Any):
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
    from rnnlab.experiments import predict

    run = predict.restore(workdir)
    if run.spec.task != "classify" or "negated" not in run.spec.extras or run.spec.vocab is None:
        raise ValueError(f"run {workdir!r} ({run.spec.name}, {run.spec.task}) is not a classifier of "
                         "sentences with a 'negated' flag")
    apply = _apply_fn(run.model)
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
    results = _results(workdir)
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


def _results(workdir: str) -> dict:
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


def _display_path(path: str) -> str:
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
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.6))
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
        r["workdir"] = _display_path(w)
        per_run.append(r)
    summary = summarize_by_tail(per_run)
    markdown = by_tail_tables(summary)
    rows = [[r["label"], r["seed"], r["best_step"], f"{r['overall']['all']['accuracy']:.3f}", _fmt(r["reported"], 3)]
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


# ----------------------------------------------------------------------------- ceilings


def examples_hash(splits: Mapping[str, Sequence[Mapping[str, Any]]]) -> str:
    """The ``"examples"`` entry of :func:`rnnlab.data.data_fingerprint` for generated ``splits``
    (a hash of every split's example lengths): compare it with a run's ``results.json``."""
    lengths = json.dumps({k: [int(ex["length"]) for ex in v] for k, v in splits.items()}, sort_keys=True)
    return hashlib.sha256(lengths.encode()).hexdigest()[:16]


def ceiling_of(data_config: Any, split: str = "test") -> dict[str, Any]:
    """The Bayes-optimal left-to-right tagger on ``split`` of a ``future_context`` data config.

    Returns:
      ``{"gen_seed", "expected": :func:`rnnlab.data.ceilings.left_to_right_ceiling`,
      "expected_per_sentence", **:func:`rnnlab.data.ceilings.score_causal` on the split,
      "examples_hash": :func:`examples_hash` of the regenerated splits}``.

    Raises:
      ValueError: not the ``future_context`` dataset (the ceiling is derived from its generator).
    """
    from rnnlab.data.future_context import FutureContext

    dataset = rnnlab.data.get_dataset(data_config.name)
    if not isinstance(dataset, FutureContext):
        raise ValueError(f"the left-to-right ceiling is derived for future_context, not {data_config.name!r}")
    options = dataset.options(data_config)
    splits, _ = dataset.generate(options)
    terms = ceilings.ceiling_terms(options)
    return {"gen_seed": options.gen_seed, "expected": terms.correct / terms.words,
            "expected_per_sentence": terms.per_sentence, **ceilings.score_causal(splits[split], options),
            "examples_hash": examples_hash(splits)}


FRESH_STREAM = 999
"""The random stream of fresh sentences (``default_rng([gen_seed, FRESH_STREAM])``), apart from the
splits' streams (``[gen_seed, 100 + k]`` for ``future_context``)."""


def fresh_comparison(workdir: str, num: int) -> dict[str, Any]:
    """A ``future_context`` run and the Bayes-optimal causal tagger on ``num`` fresh sentences.

    A split of 1000 sentences leaves about 0.01 of sampling error on either
    number; a model may beat the expected ceiling on one split by luck (its
    decisions at the near coin flips of the first clause happen to fit), but
    not on many new sentences from the same generator. They are drawn from
    ``default_rng([gen_seed, FRESH_STREAM])`` with the run's data options.

    Returns:
      :func:`compare_with_rule` on them.
    """
    from rnnlab.data.future_context import future_context_example
    from rnnlab.experiments import predict

    run = predict.restore(workdir)
    options = rnnlab.data.get_dataset(run.config.data.name).options(run.config.data)
    rng = np.random.default_rng([options.gen_seed, FRESH_STREAM])
    return compare_with_rule(run, [future_context_example(rng, options) for _ in range(num)], options)


def compare_with_rule(run: Any, examples: Sequence[Mapping[str, Any]], options: Any,
                      batch_size: int = 1000) -> dict[str, Any]:
    """A restored tagger run and the Bayes-optimal causal tagger on the same ``future_context`` examples.

    Args:
      run: a :class:`rnnlab.experiments.predict.TrainedRun` of ``future_context``.
      examples: ``{inputs int32[L], length, targets int32[L], target_mask f32[L]}`` each.
      options: their data options.
      batch_size: sentences per forward pass.

    Returns:
      ``{"sentences", "words", "model": its accuracy on the sentiment words,
      "ceiling": the optimal causal rule's, "disagree": words where they differ}``.
    """
    from rnnlab.data.negation import VOCAB

    table = ceilings.view_table(options)
    apply = _apply_fn(run.model)
    steps = max(max(run.config.data.buckets), max(int(ex["length"]) for ex in examples))
    model_right = rule_right = words = disagree = 0
    for start in range(0, len(examples), batch_size):
        chunk = examples[start:start + batch_size]
        ids = np.zeros((len(chunk), steps), np.int32)
        for row, ex in zip(ids, chunk):
            row[: ex["length"]] = ex["inputs"]
        lengths = np.asarray([ex["length"] for ex in chunk], np.int32)
        predicted = np.asarray(apply(run.params, ids, lengths)).argmax(-1)
        for row, ex in zip(predicted, chunk):
            mask = np.asarray(ex["target_mask"]) > 0
            targets = np.asarray(ex["targets"])[mask]
            rule = ceilings.causal_tags([VOCAB[i] for i in np.asarray(ex["inputs"]).tolist()], options, table)[mask]
            model = row[: ex["length"]][mask]
            model_right += int((model == targets).sum())
            rule_right += int((rule == targets).sum())
            disagree += int((model != rule).sum())
            words += int(mask.sum())
    return {"sentences": len(examples), "words": words, "model": model_right / words,
            "ceiling": rule_right / words, "disagree": disagree}


def _load_config(spec: str) -> Any:
    """``path[:variant]`` of a config file -> its ``get_config(variant)``."""
    from rnnlab.experiments.sweep import load_module

    path, _, arg = spec.partition(":")
    return load_module(path).get_config(arg or None)


def write_ceilings(sources: Sequence[str], out: str, split: str = "test", fresh: int = 0) -> dict[str, Any]:
    """The left-to-right ceiling on the data of config files and runs; ``ceilings.md`` / ``ceilings.json``.

    Args:
      sources: config files (``path[:variant]``) and ``future_context`` run directories.
      out: the output folder.
      split: the split scored.
      fresh: with ``fresh > 0``, each run and the optimal rule also tag that many fresh
        sentences of the run's generator (:func:`fresh_comparison`).

    Returns:
      ``{"configs": {spec: ceiling}, "runs": [per run], "groups": {label: ...}, "markdown"}``.
    """
    from rnnlab.experiments.predict import read_config

    workdirs = [s for s in sources if os.path.isdir(s)]
    configs = {s: ceiling_of(_load_config(s).data, split) for s in sources if s not in workdirs}
    labels = group_labels(workdirs)
    runs = []
    for w in workdirs:
        config = read_config(w)
        c = ceiling_of(config.data, split)
        results = _results(w)
        recorded = results.get("data_fingerprint", {}).get("examples")
        runs.append({
            "workdir": _display_path(w), "label": labels[w], "seed": int(config.train.seed),
            "ceiling": c, "masked_accuracy": results.get(split, {}).get("masked_accuracy"),
            "data_matches_run": None if recorded is None else recorded == c["examples_hash"],
            "fresh": fresh_comparison(w, fresh) if fresh > 0 else None,
        })
    groups: dict[str, dict] = {}
    for r in runs:
        g = groups.setdefault(r["label"], {"seeds": [], "model": [], "ceiling": []})
        g["seeds"].append(r["seed"])
        g["model"].append(r["masked_accuracy"])
        g["ceiling"].append(r["ceiling"]["masked_accuracy"])
    for r in runs:
        if r["fresh"] is not None:
            g = groups[r["label"]]
            g.setdefault("fresh_model", []).append(r["fresh"]["model"])
            g.setdefault("fresh_ceiling", []).append(r["fresh"]["ceiling"])
    for g in groups.values():
        if "fresh_model" in g:
            g["fresh_model_mean_std"] = mean_std(g["fresh_model"])
            g["fresh_above_ceiling"] = int(sum(m > c for m, c in zip(g["fresh_model"], g["fresh_ceiling"])))
        g["model_mean_std"] = mean_std(g["model"])
        g["ceiling_mean_std"] = mean_std(g["ceiling"])
        g["above_ceiling"] = int(sum(m is not None and m > c for m, c in zip(g["model"], g["ceiling"])))
    markdown = _ceiling_markdown(configs, runs, groups, split)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "ceilings.md"), "w") as f:
        f.write(markdown)
    with open(os.path.join(out, "ceilings.json"), "w") as f:
        json.dump({"split": split, "configs": configs, "runs": runs, "groups": groups}, f, indent=1, default=float)
    return {"configs": configs, "runs": runs, "groups": groups, "markdown": markdown}


def _ceiling_markdown(configs, runs, groups, split) -> str:
    text = [f"# Left-to-right ceiling of future_context ({split} split)\n",
            "The Bayes-optimal causal tagger (`rnnlab.data.ceilings`): accuracy on the sentiment words, "
            "pooled over words as `masked_accuracy` is. 'expected' is the exact expectation under the "
            "generator; 'on the split' applies the optimal rule to each sentence of the split.\n"]
    if configs:
        rows = [[spec, c["gen_seed"], f"{c['expected']:.4f}", f"{c['masked_accuracy']:.4f}",
                 f"{c['per_sentence']:.4f}", c["words"], c["sentences"]] for spec, c in configs.items()]
        text.append(markdown_table(["config", "gen_seed", "expected", "on the split", "per-sentence mean",
                                    "sentiment words", "sentences"], rows))
    if runs:
        fresh = all(r["fresh"] is not None for r in runs)
        header = ["model", "seed (= gen_seed)", "model masked_accuracy", "ceiling on its split", "same data"]
        rows = [[r["label"], r["seed"], _fmt(r["masked_accuracy"]), f"{r['ceiling']['masked_accuracy']:.4f}",
                 r["data_matches_run"]] for r in runs]
        if fresh:
            header += ["fresh: model", "fresh: ceiling", "fresh: words where they differ"]
            for row, r in zip(rows, runs):
                f = r["fresh"]
                row += [f"{f['model']:.4f}", f"{f['ceiling']:.4f}", f"{f['disagree']} of {f['words']}"]
        text.append("\n### Runs against the ceiling of their own test split\n")
        if fresh:
            n = runs[0]["fresh"]["sentences"]
            text.append(f"'fresh': {n} new sentences of each run's generator (not its splits), tagged by the "
                        "run and by the optimal causal rule.\n")
        text.append(markdown_table(header, rows))
        header = ["model", "seeds", "model", "ceiling", "seeds above the ceiling"]
        rows = [[label, len(g["seeds"]), format_mean_std(g["model_mean_std"]),
                 format_mean_std(g["ceiling_mean_std"]), f"{g['above_ceiling']}/{len(g['seeds'])}"]
                for label, g in groups.items()]
        if fresh:
            header += ["fresh: model", "fresh: seeds above the ceiling"]
            for row, g in zip(rows, groups.values()):
                row += [format_mean_std(g["fresh_model_mean_std"]), f"{g['fresh_above_ceiling']}/{len(g['seeds'])}"]
        text.append("\n" + markdown_table(header, rows))
    return "\n".join(text) + "\n"


def _fmt(value: Optional[float], digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


# ----------------------------------------------------------------------------- command line


def main(argv: Sequence[str]) -> None:
    """absl entry: ``argv[1:]`` are run directories (and, with ``--by=ceiling``, config files)."""
    from absl import app, flags

    f = flags.FLAGS
    sources = list(argv[1:])
    if not sources:
        raise app.UsageError("give run directories (and, with --by=ceiling, config files)")
    if f.by == "tail":
        missing = [s for s in sources if not os.path.isfile(os.path.join(s, CONFIG_FILE))]
        if missing:
            raise app.UsageError(f"not run directories: {missing}")
        sys.stdout.write(write_by_tail(sources, f.out, f.split)["markdown"])
    else:
        sys.stdout.write(write_ceilings(sources, f.out, f.split, fresh=f.fresh)["markdown"])


def _define_flags() -> None:
    from absl import flags

    flags.DEFINE_string("out", None, "output folder (docs/results/by_tail or docs/results/ceilings)", required=True)
    flags.DEFINE_enum("by", "tail", ["tail", "ceiling"], "negation runs by tail length, or the left-to-right "
                      "ceiling of future_context configs and runs")
    flags.DEFINE_string("split", "test", "the split evaluated")
    flags.DEFINE_integer("fresh", 0, "--by=ceiling: also tag this many fresh sentences per run (model vs ceiling)")


if __name__ == "__main__":
    from absl import app

    _define_flags()
    app.run(main)
