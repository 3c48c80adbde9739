"""What the treebank's training labels teach about the behaviour suite's rules (issue 24, item 5).

    python -m studies.sst.coverage --data=../shared/data/sst --out=docs/results/sst2/coverage.json \
        --page=docs/reproduction.md

Every SST-2 model learns from the labelled phrases of ``train.txt``'s trees (GLUE SST-2's training set is
those phrases, binary, neutral dropped). The suite (:mod:`studies.sst.checklist`) expects three rules;
this module finds each rule's instances among the training trees' labelled phrases and counts how
often the treebank's own label follows it:

- **negated positive**: a phrase "NEG X" (NEG one of :data:`NEGATORS`, X a labelled phrase, positive):
  the suite expects negative;
- **negated negative**: the same with X negative: the suite expects P(positive) to rise; a binary
  label teaches that only when "NEG X" is positive;
- **clausal negation**: a phrase that starts with one of the suite's clausal frames (:data:`CLAUSAL`,
  "do n't think", ...) followed by a labelled positive phrase X: expected negative;
- **contrast**, with two clauses A and B of opposite polarity, both labelled phrases: "A , but B",
  "although A , B" and "B , although A", where the suite expects B's polarity.

A rule's instance whose phrase is neutral (label 2) gives the binary models no signal at all: GLUE
drops it. The result: per rule, the instances, the neutral ones, how many of the others carry the
polarity the suite expects (with a 95% Wilson interval), and the labels 0..4 of the phrases.
"""

from __future__ import annotations

import json
from typing import Iterable, Iterator, Mapping, Optional, Sequence

from absl import app, flags

from rnnlab.analysis.behaviour import write_result
from rnnlab.analysis.significance import wilson_interval
from rnnlab.analysis.stats import markdown_table, write_page_block
from rnnlab.data.registry import locate
from rnnlab.data.sst import SST_FILES, SST_HOW_TO_GET, read_tree_spans

NEGATORS = ("not", "n't", "never")  # the suite's negators, directly before what they negate
CLAUSAL = (("do", "n't", "think"), ("do", "not", "think"), ("would", "not", "say"), ("no", "one", "would", "call"))
NEUTRAL = 2

Spans = Mapping[tuple[int, int], int]  # (start, end) -> label 0..4


def polarity(label: int) -> Optional[bool]:
    """``True`` positive (3, 4), ``False`` negative (0, 1), ``None`` neutral (2)."""
    return None if label == NEUTRAL else label > NEUTRAL




def _clause_end(words: Sequence[str], spans: Spans, start: int, end: int) -> Optional[int]:
    """The label of ``words[start:end]``, or of it without a final ".", when either is a node."""
    for stop in (end, end - 1 if words[end - 1] == "." else None):
        if stop is not None and (start, stop) in spans:
            return spans[(start, stop)]
    return None


def negations(words: Sequence[str], spans: Spans) -> Iterator[tuple[tuple[int, int], int, int]]:
    """``((start, end), label of X, label of "NEG X")`` for each phrase "NEG X" whose X is a phrase too."""
    for (start, end), label in spans.items():
        if end - start > 1 and words[start] in NEGATORS and (start + 1, end) in spans:
            yield (start, end), spans[(start + 1, end)], label


def clausal_negations(words: Sequence[str], spans: Spans) -> Iterator[tuple[tuple[int, int], int, int]]:
    """``((start, end), label of X, label of "FRAME X")`` for each phrase that starts with a :data:`CLAUSAL` frame
    (optionally after "i") followed by a phrase X."""
    for (start, end), label in spans.items():
        first = start + (words[start] == "i")
        for frame in CLAUSAL:
            after = first + len(frame)
            if tuple(words[first:after]) == frame and after < end and (after, end) in spans:
                yield (start, end), spans[(after, end)], label


def contrasts(words: Sequence[str], spans: Spans) -> Iterator[tuple[tuple[int, int], str, int, int, int]]:
    """``((start, end), form, label of A, label of B, label of the whole)`` for each phrase "A , but B" (or "A but B"),
    "although A , B" or "B , although A" whose clauses A and B, without the connective, are phrases (the clause
    at the end may leave out a final ".")."""
    for (start, end), label in spans.items():
        for k in range(start + 1, end - 1):
            if words[k] == "but":
                a = spans.get((start, k - 1 if words[k - 1] == "," else k))
                b = _clause_end(words, spans, k + 1, end)
                if a is not None and b is not None:
                    yield (start, end), "but", a, b, label
            if words[k] == "," and words[k + 1] == "although" and k + 2 < end:
                b, a = spans.get((start, k)), _clause_end(words, spans, k + 2, end)
                if a is not None and b is not None:
                    yield (start, end), "B , although A", a, b, label
        if words[start] == "although":
            for comma in range(start + 2, end - 1):
                if words[comma] == "," and (start + 1, comma) in spans:
                    b = _clause_end(words, spans, comma + 1, end)
                    if b is not None:
                        yield (start, end), "although A , B", spans[(start + 1, comma)], b, label


RULES = {  # rule -> the suite's expectation
    "negated positive": "NEG X, X positive: negative",
    "negated negative": "NEG X, X negative: positive (the suite: P(positive) rises)",
    "clausal negation": "do n't think X (or the suite's other frames), X positive: negative",
    "contrast: but": "A , but B, A and B of opposite polarity: B's polarity",
    "contrast: although A , B": "although A , B, of opposite polarity: B's polarity",
    "contrast: B , although A": "B , although A, of opposite polarity: B's polarity",
}


def rule_outcomes(trees: Iterable[tuple[Sequence[str], Sequence[tuple[int, int, int]]]]
                  ) -> dict[str, dict[tuple[str, ...], tuple[int, bool]]]:
    """``{rule: {phrase: (its label 0..4, the polarity the suite expects of it)}}`` over ``trees`` (``(words,
    [(label, start, end)])``, :func:`rnnlab.data.sst.read_tree_spans`), words lower-cased as GLUE SST-2 writes
    them: each distinct phrase once (a later tree's label wins, as :func:`rnnlab.data.sst.read_tree_file` and
    GLUE SST-2 keep it)."""
    out: dict[str, dict] = {rule: {} for rule in RULES}
    for tree_words, nodes in trees:
        words = [w.lower() for w in tree_words]
        spans = {(start, end): label for label, start, end in nodes}
        for (start, end), (rule, whole, expected) in _instances(words, spans):
            out[rule][tuple(words[start:end])] = (whole, expected)
    return out


def _instances(words: Sequence[str], spans: Spans) -> Iterator[tuple[tuple[int, int], tuple[str, int, bool]]]:
    """``((start, end), (rule, label, expected polarity))`` of each rule's instance in one tree."""
    for where, x, whole in negations(words, spans):
        if polarity(x) is not None:
            yield where, ("negated positive" if polarity(x) else "negated negative", whole, not polarity(x))
    for where, x, whole in clausal_negations(words, spans):
        if polarity(x):
            yield where, ("clausal negation", whole, False)
    for where, form, a, b, whole in contrasts(words, spans):
        if None not in (polarity(a), polarity(b)) and polarity(a) != polarity(b):
            yield where, (f"contrast: {form}", whole, polarity(b))


def summarize(outcomes: Mapping[str, Mapping[tuple[str, ...], tuple[int, bool]]]) -> dict[str, dict]:
    """Per rule: ``{"expects", "instances", "labels": [count of each label 0..4], "neutral", "polar",
    "follow", "follow_rate", "ci": [low, high]}``.

    ``polar`` counts the instances whose phrase is not neutral (those GLUE SST-2 keeps), ``follow`` those
    of them whose polarity is the expected one; ``follow_rate`` is ``follow / polar`` and ``ci`` its 95%
    Wilson interval (both ``None`` when no instance is polar).
    """
    summary = {}
    for rule, phrases in outcomes.items():
        cases = list(phrases.values())
        polar = [(label, expected) for label, expected in cases if polarity(label) is not None]
        follow = sum(polarity(label) == expected for label, expected in polar)
        summary[rule] = {"expects": RULES[rule], "instances": len(cases),
                         "labels": [sum(label == k for label, _ in cases) for k in range(5)],
                         "neutral": len(cases) - len(polar), "polar": len(polar), "follow": follow,
                         "follow_rate": follow / len(polar) if polar else None,
                         "ci": list(wilson_interval(follow, len(polar))) if polar else None}
    return summary


def coverage(path: str) -> dict:
    """The rules' summary (:func:`summarize`) on the training trees ``path/train.txt``, with their count."""
    trees = read_tree_spans(locate(path, SST_FILES["train"], SST_HOW_TO_GET, folder=True))
    return {"source": f"data.path/{SST_FILES['train']}", "trees": len(trees), "rules": summarize(rule_outcomes(trees))}


def coverage_markdown(data: Mapping) -> str:
    """The table of :func:`coverage`'s result: per rule its instances, the neutral ones (no SST-2 label), and
    of the rest how many carry the polarity the suite expects (%, 95% Wilson interval)."""
    header = ["rule: the suite's expectation", "instances", "neutral (not in SST-2)",
              "in SST-2, as the suite expects [95% CI]", "labels 0 / 1 / 2 / 3 / 4"]
    rows = []
    for rule, r in data["rules"].items():
        follows = (f"{r['follow']} of {r['polar']} ({100 * r['follow_rate']:.0f}%) "
                   f"[{100 * r['ci'][0]:.0f}, {100 * r['ci'][1]:.0f}]" if r["polar"] else "-")
        rows.append([f"{rule}: {r['expects']}", r["instances"], r["neutral"], follows,
                     " / ".join(str(c) for c in r["labels"])])
    intro = (f"The suite's rules among the labelled phrases of the {data['trees']:,} training trees "
             f"(`{data['source']}`): each rule's instances, and how many of those that GLUE SST-2 keeps "
             "(not neutral) carry the polarity the suite expects.\n\n")
    return intro + markdown_table(header, rows)


def write_coverage(out: str, page: str = "", path: str = "") -> str:
    """With ``path``, counts (:func:`coverage`) and writes ``out`` (JSON); then the table of ``out``, also
    written to the ``sst2-coverage`` block of ``page`` when given."""
    if path:
        write_result(coverage(path), out)
    with open(out, encoding="utf-8") as f:
        text = coverage_markdown(json.load(f))
    if page:
        write_page_block(page, "sst2-coverage", text)
    return text


def main(argv: Sequence[str]) -> None:
    """absl entry: ``--data`` (count), ``--out``, ``--page``."""
    del argv
    f = flags.FLAGS
    print(write_coverage(f.out, f.page, f.data))


if __name__ == "__main__":
    flags.DEFINE_string("data", "", "the SST folder holding train.txt (empty: only re-render --out)")
    flags.DEFINE_string("out", "docs/results/sst2/coverage.json", "the JSON written (with --data) and read")
    flags.DEFINE_string("page", "", "rewrite this page's sst2-coverage block")
    app.run(main)
