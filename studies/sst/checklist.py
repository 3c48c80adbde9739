"""The SST study's behavioural test suite (issue 24, item 5): negation and contrast on generated sentences.

    python -m rnnlab behaviour --workdir=runs/sst_checklist/lstm-s1 --suite=studies/sst/checklist.py
    python -m studies.sst.checklist --data=../shared/data/sst     # every word in the training vocabulary?

Sentences come from templates over words of the GLUE SST-2 training phrases (:data:`LEXICON`; checked
against the data by :func:`missing_words`), written as raw text and tokenized as the treebank is
("isn't" -> ``is n't``, lower-case). Groups (CheckList's kinds, :mod:`rnnlab.analysis.behaviour`):

- **controls**: plain positive and plain negative sentences ("the movie is good", "a dull film");
- **negated positives**, expected negative: short ("not good", "never good", "the film isn't good"),
  across a few words ("not a very good film", "the plot is not at all good") and clausal
  ("i don't think the film is good");
- **negated negatives** (DIR): the positive probability must rise from "the film is bad" to
  "the film is not bad" (and the other negations), and from "the film is just bad" to "the film is
  not bad" (length-matched: a bag of words moves towards positive when any word is added);
- **contrast**, expected label the main clause's polarity: "A , but B" (B's), "although A , B" and
  "B , although A" (B's), each in both polarity orders.

:data:`FAMILIES` pools the groups into the four families that issue 24 sets goals for (:data:`GOALS`:
the highest failure rate a passing model may have).
"""

from __future__ import annotations

import os
from typing import Iterable, Sequence

from absl import app, flags

from rnnlab.analysis.behaviour import Group, Suite, mft_group, pair_group, suite_texts

CAP = 40  # cases per template at most
SEED = 0
LEXICON = {
    "pos_adj": ["good", "great", "excellent", "wonderful", "brilliant", "terrific", "superb", "beautiful",
                "enjoyable", "charming", "delightful", "impressive", "entertaining", "engaging", "clever",
                "lovely", "remarkable", "compelling", "memorable", "powerful"],
    "neg_adj": ["bad", "terrible", "awful", "boring", "dull", "horrible", "stupid", "poor", "weak", "tedious",
                "lame", "mediocre", "pointless", "annoying", "dreadful", "bland", "tiresome", "mindless",
                "disappointing", "forgettable"],
    "noun": ["movie", "film", "story", "plot", "script", "ending"],  # the work, or its story
    "aspect": ["acting", "cast", "dialogue", "direction", "soundtrack", "performance"],  # a part of it
    "intens": ["very", "really", "particularly"],
    "filler": ["also", "just", "still"],  # neutral words in a negator's place
}
POS, NEG = "positive", "negative"


def controls(polarity: str) -> Group:
    """Plain sentences of one polarity: the label is the adjective's."""
    adj = "{pos_adj}" if polarity == POS else "{neg_adj}"
    templates = [adj, f"the {{noun}} is {adj}", f"a {adj} {{noun}}", f"it is a {{intens}} {adj} {{noun}}",
                 f"i think the {{noun}} is {adj}", f"the {{aspect}} is {adj}"]
    return mft_group(f"{polarity} controls", [(t, polarity) for t in templates], LEXICON, CAP, SEED,
                     f"plain {polarity} sentences")


def negated_positives() -> list[Group]:
    """A positive adjective under negation, expected negative: short, across words, clausal."""
    forms = {
        "short": ["not {pos_adj}", "never {pos_adj}", "the {noun} is not {pos_adj}", "the {noun} isn't {pos_adj}",
                  "the {noun} is never {pos_adj}", "it is not a {pos_adj} {noun}"],
        "across words": ["not a {intens} {pos_adj} {noun}", "this is not a {intens} {pos_adj} {noun}",
                         "the {noun} is not at all {pos_adj}", "the {noun} is never {intens} {pos_adj}"],
        "clausal": ["i don't think the {noun} is {pos_adj}", "i do not think it is a {pos_adj} {noun}",
                    "no one would call this {noun} {pos_adj}", "i would not say the {noun} is {pos_adj}"],
    }
    return [mft_group(f"negated positive: {form}", [(t, NEG) for t in templates], LEXICON, CAP, SEED,
                      f"a positive adjective negated ({form}), expected negative")
            for form, templates in forms.items()]


def negated_negatives() -> Group:
    """Pairs (a negative sentence, its negation): the positive probability must rise (DIR)."""
    pairs = [("{neg_adj}", "not {neg_adj}"),
             ("the {noun} is {neg_adj}", "the {noun} is not {neg_adj}"),
             ("the {noun} is {neg_adj}", "the {noun} isn't {neg_adj}"),
             ("the {noun} is {neg_adj}", "the {noun} is never {neg_adj}"),
             ("a {intens} {neg_adj} {noun}", "not a {intens} {neg_adj} {noun}"),
             ("i think the {noun} is {neg_adj}", "i don't think the {noun} is {neg_adj}")]
    return pair_group("negated negative", "DIR", pairs, LEXICON, CAP, SEED, target=POS, direction="up",
                      description="a negative sentence and its negation: P(positive) must rise")


def negated_negatives_matched() -> Group:
    """As :func:`negated_negatives`, the base with a neutral word where the negator stands (DIR).

    A model that averages its words (the bag of words) moves a negative sentence towards positive
    when any word is added to it, so "bad" -> "not bad" can pass with no reading of "not"; "just bad"
    -> "not bad" holds the length and the position.
    """
    pairs = [("{filler} {neg_adj}", "not {neg_adj}"),
             ("the {noun} is {filler} {neg_adj}", "the {noun} is not {neg_adj}"),
             ("the {noun} is {filler} {neg_adj}", "the {noun} is never {neg_adj}")]
    return pair_group("negated negative: length-matched", "DIR", pairs, LEXICON, CAP, SEED, target=POS,
                      direction="up", description="a neutral word replaced by a negator: P(positive) must rise")


def contrast() -> list[Group]:
    """Two clauses of opposite polarity: the label is the main clause's (after "but"; not the "although" one)."""
    but = [("the {aspect} is {pos_adj} , but the {noun} is {neg_adj}", NEG),
           ("the {aspect} is {neg_adj} , but the {noun} is {pos_adj}", POS),
           ("{pos_adj} {aspect} , but a {neg_adj} {noun}", NEG),
           ("{neg_adj} {aspect} , but a {pos_adj} {noun}", POS)]
    although = [("although the {aspect} is {pos_adj} , the {noun} is {neg_adj}", NEG),
                ("although the {aspect} is {neg_adj} , the {noun} is {pos_adj}", POS),
                ("the {noun} is {neg_adj} , although the {aspect} is {pos_adj}", NEG),
                ("the {noun} is {pos_adj} , although the {aspect} is {neg_adj}", POS)]
    return [mft_group("contrast: but", but, LEXICON, CAP, SEED, "A , but B: the label is B's"),
            mft_group("contrast: although", although, LEXICON, CAP, SEED,
                      "although A , B (or B , although A): the label is B's")]


def get_suite() -> Suite:
    """The SST suite: controls, negated positives (3 forms), negated negatives (2), contrast (2 forms)."""
    groups = (controls(POS), controls(NEG), *negated_positives(), negated_negatives(), negated_negatives_matched(),
              *contrast())
    return Suite("sst", groups, "negation and contrast on sentences over SST-2 training words")


FAMILIES = {  # issue 24's goal families -> the groups pooled in each
    "controls": ("positive controls", "negative controls"),
    "negated positives": ("negated positive: short", "negated positive: across words", "negated positive: clausal"),
    "negated negatives": ("negated negative", "negated negative: length-matched"),
    "contrast": ("contrast: but", "contrast: although"),
}
GOALS = {"controls": 0.02, "negated positives": 0.10, "negated negatives": 0.10, "contrast": 0.15}


# ----------------------------------------------------------------------------- the words, against the data


def training_vocabulary(path: str) -> set[str]:
    """The words of the GLUE SST-2 training phrases, ``path/glue_sst2/train.tsv`` (as the ``glue_sst2``
    dataset reads them: tokenized, lower-case)."""
    from rnnlab.data.sst import GLUE_FILES, read_glue_tsv

    return {w.lower() for words, _ in read_glue_tsv(os.path.join(path, GLUE_FILES["train"])) for w in words}


def missing_words(texts: Iterable[str], vocab: set[str]) -> dict[str, str]:
    """``{word: the first text holding it}`` for each token of ``texts`` (tokenized as the treebank,
    :func:`rnnlab.data.text.tokenize`) that is not in ``vocab``."""
    from rnnlab.data import text as text_lib

    missing: dict[str, str] = {}
    for t in texts:
        for word in text_lib.tokenize(t):
            if word not in vocab:
                missing.setdefault(word, t)
    return missing


def main(argv: Sequence[str]) -> None:
    """absl entry: checks every word of the suite against ``--data``'s training phrases."""
    del argv
    suite = get_suite()
    texts = suite_texts(suite)
    missing = missing_words(texts, training_vocabulary(flags.FLAGS.data))
    for group in suite.groups:
        print(f"{group.name}: {len(group.cases)} cases")
    if missing:
        raise app.UsageError("not in the training phrases: " + ", ".join(f"{w!r} ({t!r})" for w, t in missing.items()))
    print(f"all words of the {len(texts)} texts are in the training phrases")


if __name__ == "__main__":
    flags.DEFINE_string("data", "../shared/data/sst", "the SST folder (holding glue_sst2/train.tsv)")
    app.run(main)
