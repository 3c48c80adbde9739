"""The augmentation of SST-2 that shows the suite's rules on other words (studies.sst.augment)."""

import math
import os

import pytest

from rnnlab.analysis.behaviour import placeholders, suite_texts
from rnnlab.data import sst
from rnnlab.data import text as text_lib
from studies.sst import augment, checklist

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
DATA = os.path.join(ROOT, "..", "shared", "data", "sst")


def test_no_word_of_the_suites_lexicon_and_no_suite_sentence_in_the_augmentation():
    suite_words = {w for words in checklist.LEXICON.values() for w in words}
    rows = augment.augmentation()
    assert not suite_words & {w for words in augment.LEXICON.values() for w in words}
    assert not suite_words & {t for tokens, _ in rows for t in tokens}
    suite = {" ".join(text_lib.tokenize(t)) for t in suite_texts(checklist.get_suite())}
    assert not suite & {" ".join(tokens) for tokens, _ in rows}
    # the suite's clausal frames are not the augmentation's
    for frame in ("think", "call", "would not say"):
        assert not any(frame in " ".join(tokens) for tokens, _ in rows)


def test_each_sentence_is_labelled_as_its_rule_says():
    rows = augment.augmentation()
    positive, negative = set(augment.LEXICON["pos"]), set(augment.LEXICON["neg"])
    # every distinct filling of a template when it has at most PER_TEMPLATE of them
    fillings = [math.prod(len(augment.LEXICON[s]) for s in placeholders(t)) for t, _ in augment.TEMPLATES]
    assert len(rows) == sum(min(augment.PER_TEMPLATE, n) for n in fillings) == 2000
    assert len({" ".join(t) for t, _ in rows}) == len(rows) and rows == augment.augmentation()
    for tokens, label in rows:
        adjectives = [positive.__contains__(t) for t in tokens if t in positive | negative]
        negated = any(t in ("not", "n't", "never", "nobody") for t in tokens)
        if "but" in tokens:
            main = adjectives[-1]  # B: after "but"
        elif "although" in tokens:
            main = adjectives[0] if tokens[0] != "although" else adjectives[-1]  # the clause without "although"
        else:
            (main,) = adjectives
            main = main != negated
        assert label == int(main), tokens


def test_the_tsv_is_what_glue_sst2_reads_as_extra_training_rows(tmp_path):
    rows = augment.augmentation(per_template=3)
    path = tmp_path / "extra.tsv"
    augment.write_tsv(rows, str(path))
    assert sst.read_glue_tsv(str(path)) == [(list(tokens), label) for tokens, label in rows]
    assert any(tokens[2:4] == ["was", "n't"] for tokens, _ in rows)  # "wasn't", tokenized as the treebank


@pytest.mark.skipif(not os.path.isfile(os.path.join(DATA, "glue_sst2", "train.tsv")), reason="no SST data here")
def test_every_word_of_the_augmentation_is_in_the_sst2_training_phrases():
    vocab = checklist.training_vocabulary(DATA)
    assert checklist.missing_words([" ".join(t) for t, _ in augment.augmentation()], vocab) == {}
