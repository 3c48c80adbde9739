"""Claim 1 on minimal pairs: the same words in another order, with the opposite label (issue 24).

Overall accuracy on the negation corpus mixes many cues. A minimal pair isolates word order: two
sentences with exactly the same words whose labels differ, made by swapping the clauses of a
contrast sentence of the grammar (:mod:`rnnlab.data.grammar`; the last clause decides)::

    the plot was n't good , but the acting is great , honestly   -> positive
    the acting is great , but the plot was n't good , honestly   -> negative

A reader that ignores order (a bag of words) gives both sentences the same answer, so it gets
exactly one of each pair wrong: pair accuracy (both right) 0. Every pair is checked against the
grammar's rule (:func:`rnnlab.data.grammar.sentence_polarity`). The pairs are drawn fresh (their own
seed), with the neutral tails of the run's corpus, and scored on each run's best checkpoint through
:func:`rnnlab.inference.predict.load`::

    python -m studies.claims.minimal_pairs --run=lstm=runs/neg/lstm-s1 --run=lstm=runs/neg/lstm-s2 ... \\
        --out=docs/results/by_tail/minimal_pairs.json --page=docs/findings.md
"""

from __future__ import annotations

import collections
import json
import os
from typing import Any, Mapping, Sequence

import numpy as np
from absl import app, flags

from rnnlab.analysis.significance import describe
from rnnlab.analysis.stats import markdown_table, write_page_block
from rnnlab.commands.common import named_runs
from rnnlab.data import grammar, negation
from rnnlab.training.workdir import RESULTS_FILE, read_json

STRUCTURES = ("but", "yet", "although")
CORPUS_STRUCTURES = tuple(s for s in STRUCTURES if s in negation.STRUCTURES)  # "although" is never trained on
# ``--run`` names: the page's label, and the tuned round's model (docs/results/tuned/tuned.json, negation_tail)
LABELS = {"bow": "bag of words", "tanh": "tanh RNN", "gru": "GRU", "lstm": "LSTM", "bilstm": "BiLSTM"}
TUNED_MODELS = {"bow": "bow", "tanh": "cell=tanh", "gru": "cell=gru", "lstm": "cell=lstm",
                "bilstm": "cell=lstm+bidirectional"}
SEED = 2024  # the pairs' own stream: no training or test sentence is drawn from it


def swap_clauses(tokens: Sequence[str], clause_of: Sequence[int], structure: str) -> list[str]:
    """The sentence with its two clauses in the other order, joined as before (same words).

    ``although A , B`` becomes ``although B , A``; ``A , but B`` becomes ``B , but A`` (likewise yet).
    """
    lead = ["although"] if structure == "although" else []
    body = list(tokens[len(lead):])
    owners = list(clause_of[len(lead):])
    first = [t for t, c in zip(body, owners) if c == 0]
    rest = [t for t, c in zip(body, owners) if c == 1]
    join_len = {"but": 2, "yet": 2, "although": 1}[structure]
    joins, second = rest[:join_len], rest[join_len:]
    return lead + second + joins + first


def clause_order_pairs(count: int, tail_len: int, max_len: int, seed: int = SEED,
                       negation_probs: Sequence[float] = (0.5, 0.35, 0.15),
                       distractor_prob: float = 0.35) -> list[dict[str, Any]]:
    """``count`` minimal pairs: ``{"a": tokens, "b": tokens, "label_a": 0|1, "label_b": 1 - label_a, "structure"}``.

    Each ``a`` is a contrast sentence of the grammar (its clauses of opposite polarity), ``b`` the same
    with the clauses swapped; both end in the same neutral tail of up to ``tail_len`` tokens and
    hold at most ``max_len`` tokens. Labels are 1 positive, 0 negative.

    Raises:
      AssertionError: a pair whose labels the grammar's rule does not give opposite (a bug).
    """
    rng = np.random.default_rng(seed)
    pairs = []
    while len(pairs) < count:
        structure = str(rng.choice(STRUCTURES))
        label = 1 if rng.random() < 0.5 else -1
        tokens, clause_of = grammar.sentence(rng, label, structure, negation_probs, distractor_prob)
        if len(tokens) > max_len:
            continue
        swapped = swap_clauses(tokens, clause_of, structure)
        tail = grammar.neutral_tail(rng, min(int(rng.integers(tail_len + 1)), max_len - len(tokens)))
        a, b = tokens + tail, swapped + tail
        label_a, label_b = grammar.sentence_polarity(a), grammar.sentence_polarity(b)
        if sorted(a) != sorted(b) or label_a != label or label_b != -label:
            raise AssertionError(f"not a minimal pair: {' '.join(a)!r} / {' '.join(b)!r}")
        pairs.append({"a": a, "b": b, "label_a": int(label_a > 0), "label_b": int(label_b > 0),
                      "structure": structure})
    return pairs


def score_pairs(predicted_a: np.ndarray, predicted_b: np.ndarray, pairs: Sequence[Mapping[str, Any]]) -> dict:
    """Sentence accuracy, pair accuracy (both right) and the fraction answered alike (order-blind).

    Pair accuracy is also given apart for the connectives of the training corpus (``but``, ``yet``:
    ``pair_accuracy_seen``) and for ``although``, which the corpus never holds
    (``pair_accuracy_unseen``: generalisation to a new connective with the same rule).

    Args:
      predicted_a, predicted_b: ``int[N]`` predicted labels of each pair's two sentences.
      pairs: the N pairs (:func:`clause_order_pairs`).
    """
    label_a = np.asarray([p["label_a"] for p in pairs])
    label_b = np.asarray([p["label_b"] for p in pairs])
    right_a, right_b = predicted_a == label_a, predicted_b == label_b
    both = right_a & right_b
    seen = np.asarray([p["structure"] in CORPUS_STRUCTURES for p in pairs])
    part = lambda mask: float(np.mean(both[mask])) if mask.any() else float("nan")  # noqa: E731
    return {"n": len(pairs), "n_seen": int(seen.sum()),
            "sentence_accuracy": float(np.mean(np.concatenate([right_a, right_b]))),
            "pair_accuracy": float(np.mean(both)), "pair_accuracy_seen": part(seen),
            "pair_accuracy_unseen": part(~seen), "same_answer": float(np.mean(predicted_a == predicted_b))}


def score_run(workdir: str, count: int = 500, seed: int = SEED) -> dict:
    """:func:`score_pairs` of the run's best checkpoint on ``count`` pairs made for its corpus, with the
    run's own test accuracy (``results.json``) beside it."""
    from rnnlab.inference import predict

    predictor = predict.load(workdir)
    data = predictor.run.config.data
    pairs = clause_order_pairs(count, int(data.get("tail_len", 0)), int(data.max_len), seed)
    texts = [" ".join(p["a"]) for p in pairs] + [" ".join(p["b"]) for p in pairs]
    if predictor.tokenize(texts) != [p["a"] for p in pairs] + [p["b"] for p in pairs]:
        raise ValueError(f"run {workdir!r} does not read the grammar's sentences back as their tokens")
    probs = predictor(texts)
    labels = np.argmax(np.asarray(probs), axis=-1)
    results = read_json(os.path.join(workdir, RESULTS_FILE))
    return {**score_pairs(labels[:count], labels[count:], pairs), "test_accuracy": results["test"]["accuracy"]}


KEYS = ("test_accuracy", "pair_accuracy", "pair_accuracy_seen", "pair_accuracy_unseen", "same_answer")


def table(results: Mapping[str, Sequence[Mapping[str, Any]]]) -> str:
    """Models as rows: each key's mean +- std over the runs (seeds), and the per-run values."""
    rows = []
    for model, runs in results.items():
        cells = []
        for key in KEYS:
            stats = describe([r[key] for r in runs])
            cells.append(f"{stats['mean']:.3f} +- {stats['std']:.3f} ({' / '.join(f'{r[key]:.3f}' for r in runs)})")
        n, seen = runs[0]["n"], runs[0]["n_seen"]
        rows.append([LABELS.get(model, model), len(runs), f"{n} ({seen} / {n - seen})", *cells])
    return markdown_table(["model", "seeds", "pairs (but, yet / although)", "test accuracy (corpus)",
                           "pairs both right", "both right: but, yet (trained)", "both right: although (never trained)",
                           "same answer to both"], rows)


def main(argv: Sequence[str]) -> None:
    """absl entry: ``--run=MODEL=WORKDIR`` (repeated), ``--count``, ``--out``, ``--page``."""
    del argv
    f = flags.FLAGS
    results: dict[str, list] = collections.defaultdict(list)
    for model, workdir in named_runs(f.run):
        results[model].append({"workdir": workdir, **score_run(workdir, f.count)})
    with open(f.out, "w") as handle:
        json.dump(results, handle, indent=1)
    if f.page:
        write_page_block(f.page, "minimal-pairs", "\n" + table(results))
    print(table(results))


if __name__ == "__main__":
    flags.DEFINE_multi_string("run", [], "MODEL=WORKDIR of a trained negation run (repeat per seed and model)")
    flags.DEFINE_integer("count", 500, "minimal pairs per run")
    flags.DEFINE_string("out", "docs/results/by_tail/minimal_pairs.json", "the per-run results")
    flags.DEFINE_string("page", "", "a page whose <!-- minimal-pairs: ... --> block to rewrite")
    app.run(main)
