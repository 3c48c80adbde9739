"""Sentences that show the behaviour suite's rules on other words: an augmentation of SST-2 (issue 24, item 5).

    python -m studies.sst.augment --out=runs/sst_augment/extra_train.tsv
    python -m rnnlab plan studies/sst/augment_plan.py --out=runs/sst_augment

The treebank's training labels show "A , but B" hundreds of times but "although" a handful of times
and the suite's clausal negations twice (:mod:`studies.sst.coverage`). If that is why every model
fails those groups, showing the rules in training should lift them; if the models fail anyway,
coverage was not the reason. The test must not be trained on: every adjective, noun and aspect word
here is outside the suite's lexicon (:data:`studies.sst.checklist.LEXICON`), the clausal frames are
others ("i don't believe", "nobody would find", "i can't say" against the suite's "i don't think",
"no one would call", ...), and the sentences speak in the past tense of "this" / "its" where the
suite's speak in the present of "the". A model that passes the suite after this training has carried
the rule over to words and frames it was not shown.

The sentences (:func:`augmentation`), each labelled as the rule says (2,000, 770 of them positive):
controls; negated positives (short, across words, clausal), negative; negated negatives, positive;
contrast, the main clause's label ("A , but B", "although A , B", "B , although A"), both polarity
orders. :data:`PER_TEMPLATE` sentences per template, drawn with seed :data:`SEED`; written tokenized and
lower-cased as GLUE SST-2's rows are (``data.extra_train``).
"""

from __future__ import annotations

import os
import random
from typing import Sequence

from absl import app, flags

from rnnlab.analysis.behaviour import placeholders
from rnnlab.data import text as text_lib

PER_TEMPLATE = 100
SEED = 0
LEXICON = {  # no word shared with studies.sst.checklist.LEXICON (a test checks it)
    "pos": ["funny", "smart", "moving", "fresh", "witty", "touching", "solid", "gorgeous", "sweet", "stunning",
            "intelligent", "hilarious", "thoughtful", "inventive", "satisfying"],
    "neg": ["flat", "messy", "clumsy", "shallow", "ugly", "hollow", "unfunny", "sloppy", "dumb", "formulaic",
            "pretentious", "bloated", "incoherent", "stale", "dreary"],
    "work": ["picture", "drama", "comedy", "thriller", "documentary", "feature"],
    "part": ["music", "writing", "pacing", "humor", "score", "editing"],
    "degree": ["so", "quite", "truly"],
}
POSITIVE, NEGATIVE = 1, 0


def _contrast(first: str, second: str) -> list[tuple[str, int]]:
    """The contrast templates with clause polarities ``first`` / ``second`` ("pos" / "neg"); label: the main
    clause's (B)."""
    label = POSITIVE if second == "pos" else NEGATIVE
    return [(f"its {{part}} was {{{first}}} , but this {{work}} was {{{second}}}", label),
            (f"{{{first}}} {{part}} , but a {{{second}}} {{work}}", label),
            (f"although its {{part}} was {{{first}}} , this {{work}} was {{{second}}}", label),
            (f"this {{work}} was {{{second}}} , although its {{part}} was {{{first}}}", label)]


TEMPLATES: list[tuple[str, int]] = [
    # controls
    ("this {work} was {pos}", POSITIVE), ("this {work} was {neg}", NEGATIVE),
    ("its {part} was {degree} {pos}", POSITIVE), ("its {part} was {degree} {neg}", NEGATIVE),
    # negated positives: short, across words, clausal
    ("this {work} was not {pos}", NEGATIVE), ("this {work} wasn't {pos}", NEGATIVE),
    ("its {part} was never {pos}", NEGATIVE), ("this was not a {degree} {pos} {work}", NEGATIVE),
    ("i don't believe this {work} was {pos}", NEGATIVE), ("nobody would find this {work} {pos}", NEGATIVE),
    ("i can't say its {part} was {pos}", NEGATIVE),
    # negated negatives
    ("this {work} was not {neg}", POSITIVE), ("its {part} was never {neg}", POSITIVE),
    # contrast, both polarity orders
    *_contrast("pos", "neg"), *_contrast("neg", "pos"),
]


def fill(template: str, rng: random.Random) -> str:
    """``template`` with each ``{slot}`` replaced by a word of :data:`LEXICON` drawn by ``rng``."""
    return template.format(**{slot: rng.choice(LEXICON[slot]) for slot in placeholders(template)})


def augmentation(per_template: int = PER_TEMPLATE, seed: int = SEED) -> list[tuple[list[str], int]]:
    """``[(tokens, label 0 / 1)]``: ``per_template`` distinct sentences of each of :data:`TEMPLATES` (fewer where
    the template has fewer fillings), tokenized as the treebank (:func:`rnnlab.data.text.tokenize`)."""
    rng = random.Random(seed)
    rows = []
    for template, label in TEMPLATES:
        seen: dict[str, None] = {}
        for _ in range(50 * per_template):
            if len(seen) == per_template:
                break
            seen.setdefault(fill(template, rng))
        rows += [(text_lib.tokenize(sentence), label) for sentence in seen]
    return rows


def write_tsv(rows: Sequence[tuple[Sequence[str], int]], path: str) -> None:
    """Writes ``rows`` as a GLUE SST-2 TSV (header ``sentence<TAB>label``), the format of ``data.extra_train``."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write("sentence\tlabel\n")
        f.writelines(f"{' '.join(tokens)}\t{label}\n" for tokens, label in rows)


def main(argv: Sequence[str]) -> None:
    """absl entry: writes the augmentation to ``--out``."""
    del argv
    rows = augmentation()
    write_tsv(rows, flags.FLAGS.out)
    print(f"{len(rows)} sentences ({sum(label for _, label in rows)} positive) from {len(TEMPLATES)} templates "
          f"-> {flags.FLAGS.out}")


if __name__ == "__main__":
    flags.DEFINE_string("out", "runs/sst_augment/extra_train.tsv", "the TSV written (data.extra_train)")
    app.run(main)
