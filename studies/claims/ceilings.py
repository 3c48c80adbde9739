"""Future-context runs against the Bayes-optimal left-to-right ceiling of :mod:`rnnlab.data.ceilings`
(``--by=ceiling`` of ``python -m studies.claims.breakdown``, which documents it).
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any, Mapping, Sequence

import numpy as np

import rnnlab.data
from rnnlab.data import ceilings
from studies.claims.by_tail import apply_fn, display_path, format_value, read_results, group_labels
from rnnlab.analysis.stats import format_mean_std, markdown_table
from rnnlab.analysis.significance import mean_std

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
    from rnnlab.inference import trained_run

    run = trained_run.restore(workdir)
    options = rnnlab.data.get_dataset(run.config.data.name).options(run.config.data)
    rng = np.random.default_rng([options.gen_seed, FRESH_STREAM])
    return compare_with_rule(run, [future_context_example(rng, options) for _ in range(num)], options)


def compare_with_rule(run: Any, examples: Sequence[Mapping[str, Any]], options: Any,
                      batch_size: int = 1000) -> dict[str, Any]:
    """A restored tagger run and the Bayes-optimal causal tagger on the same ``future_context`` examples.

    Args:
      run: a :class:`rnnlab.inference.trained_run.TrainedRun` of ``future_context``.
      examples: ``{inputs int32[L], length, targets int32[L], target_mask f32[L]}`` each.
      options: their data options.
      batch_size: sentences per forward pass.

    Returns:
      ``{"sentences", "words", "model": its accuracy on the sentiment words,
      "ceiling": the optimal causal rule's, "disagree": words where they differ}``.
    """
    from rnnlab.data.negation import VOCAB

    table = ceilings.view_table(options)
    apply = apply_fn(run.model)
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
    from rnnlab.inference.trained_run import read_config

    workdirs = [s for s in sources if os.path.isdir(s)]
    configs = {s: ceiling_of(_load_config(s).data, split) for s in sources if s not in workdirs}
    labels = group_labels(workdirs)
    runs = []
    for w in workdirs:
        config = read_config(w)
        c = ceiling_of(config.data, split)
        results = read_results(w)
        recorded = results.get("data_fingerprint", {}).get("examples")
        runs.append({
            "workdir": display_path(w), "label": labels[w], "seed": int(config.train.seed),
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
        rows = [[r["label"], r["seed"], format_value(r["masked_accuracy"]), f"{r['ceiling']['masked_accuracy']:.4f}",
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
