"""What the treebank's labels teach about the suite's rules (studies.sst.coverage), and its page block."""

import json
import os

import numpy as np
import pytest

from rnnlab.analysis.stats import page_block
from rnnlab.data import sst
from studies.sst import behaviour, checklist, coverage
from tests import committed

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
DATA = os.path.join(ROOT, "..", "shared", "data", "sst")

TREES = [
    # "not good" negative (follows), "never dull" positive (a negated negative that follows)
    "(1 (2 not) (3 good))",
    "(3 (2 never) (1 dull))",
    # "not bad" neutral: an instance, not in SST-2; its X "bad" negative
    "(2 (2 not) (1 bad))",
    # A , but B with A positive and B negative, the whole negative (follows), with a final "."
    "(1 (1 (1 (3 (2 the) (3 cast)) (2 ,)) (1 (2 but) (1 (2 the) (1 (2 plot) (1 drags))))) (2 .))",
    # although A , B: A negative, B positive, the whole negative (does not follow)
    "(1 (1 (2 although) (1 (2 it) (1 drags))) (2 (2 ,) (3 (2 it) (3 charms))))",
    # B , although A: B positive, A negative, the whole positive (follows)
    "(3 (3 (2 it) (3 charms)) (2 (2 ,) (1 (2 although) (1 (2 it) (1 drags)))))",
    # a clausal frame before a positive phrase, the whole negative (follows)
    "(1 (2 i) (1 (2 do) (1 (2 n't) (2 (2 think) (3 (2 it) (3 charms))))))",
    # clauses of the same polarity: no contrast instance
    "(3 (3 (3 good) (2 ,)) (3 (2 but) (3 fun)))",
    # "not good" again, labelled neutral in a later tree: the later label wins, one instance
    "(2 (2 not) (3 good))",
]


def test_each_rule_finds_its_instances_in_small_trees():
    outcomes = coverage.rule_outcomes(map(sst.parse_tree_spans, TREES))
    assert outcomes["negated positive"] == {("not", "good"): (2, False)}
    assert outcomes["negated negative"] == {("never", "dull"): (3, True), ("not", "bad"): (2, True)}
    assert outcomes["clausal negation"] == {("i", "do", "n't", "think", "it", "charms"): (1, False),
                                            ("do", "n't", "think", "it", "charms"): (1, False)}
    # the sentence with its final "." and the phrase without it (a node of the tree) are two phrases
    assert outcomes["contrast: but"] == {("the", "cast", ",", "but", "the", "plot", "drags", "."): (1, False),
                                         ("the", "cast", ",", "but", "the", "plot", "drags"): (1, False)}
    assert list(outcomes["contrast: although A , B"].values()) == [(1, True)]
    assert list(outcomes["contrast: B , although A"].values()) == [(3, True)]


def test_summary_counts_neutral_apart_and_rates_the_polar_with_a_wilson_interval():
    summary = coverage.summarize(coverage.rule_outcomes(map(sst.parse_tree_spans, TREES)))
    negated = summary["negated negative"]
    # "never dull" (3, follows), "not bad" (2, neutral: not in SST-2)
    assert (negated["instances"], negated["neutral"], negated["polar"], negated["follow"]) == (2, 1, 1, 1)
    assert negated["labels"] == [0, 0, 1, 1, 0] and negated["follow_rate"] == 1.0
    assert 0 < negated["ci"][0] < 1.0 == negated["ci"][1]
    assert summary["negated positive"]["polar"] == 0 and summary["negated positive"]["follow_rate"] is None
    assert summary["contrast: although A , B"]["follow"] == 0
    text = coverage.coverage_markdown({"source": "trees", "trees": len(TREES), "rules": summary})
    assert "| negated positive: NEG X, X positive: negative | 1 | 1 | - | 0 / 0 / 1 / 0 / 0 |" in text
    assert "| 2 | 1 | 1 of 1 (100%) [" in text and "| 2 | 0 | 2 of 2 (100%) [" in text


def test_coverage_reads_the_training_trees_of_a_data_folder(tmp_path):
    (tmp_path / "train.txt").write_text("\n".join(TREES) + "\n\n")
    data = coverage.coverage(str(tmp_path))
    assert data["trees"] == len(TREES) and data["rules"]["contrast: but"]["follow"] == 2
    out = tmp_path / "coverage.json"
    page = tmp_path / "page.md"
    page.write_text("a\n<!-- sst2-coverage: cmd -->\nold\n<!-- /sst2-coverage -->\nb\n")
    text = coverage.write_coverage(str(out), str(page), str(tmp_path))
    assert json.loads(out.read_text()) == data
    assert page_block(page.read_text(), "sst2-coverage").strip() == text.strip()


def _committed():
    return committed.results("sst2", "coverage.json")


def test_reproduction_coverage_block_is_what_the_code_makes_of_the_committed_json():
    with open(os.path.join(ROOT, "docs", "reproduction.md")) as f:
        block = page_block(f.read(), "sst2-coverage")
    assert block.strip() == coverage.coverage_markdown(_committed()).strip()


@pytest.mark.skipif(not os.path.isfile(os.path.join(DATA, "train.txt")), reason="no SST data here")
def test_committed_coverage_is_a_recount_of_the_training_trees():
    assert coverage.coverage(DATA) == _committed()


def test_reproduction_coverage_prose_holds_in_the_committed_json():
    rules = _committed()["rules"]
    with open(os.path.join(ROOT, "docs", "reproduction.md")) as f:
        page = f.read()
    reading = page[page.index("<!-- /sst2-coverage -->"):page.index("### The first round: SST trees")]
    but, first, second = (rules[f"contrast: {form}"] for form in ("but", "although A , B", "B , although A"))
    clausal, positive, negative = rules["clausal negation"], rules["negated positive"], rules["negated negative"]
    quoted = [f"{but['polar']} labelled \"A , but B\"", f"{round(100 * but['follow_rate'])}% of them labelled as B",
              f"{first['polar']} \"although A , B\", {second['polar']} \"B , although A\"",
              f"and {clausal['polar']} clausal negations",
              f"Of the {negative['polar']} polar", f"{negative['follow']} ({round(100 * negative['follow_rate'])}%) are",
              f"{round(100 * positive['follow_rate'])}% of their {positive['polar']} phrases",
              f"({but['neutral']} of the \"but\" instances, {negative['neutral']} of the negated negatives)"]
    missing = [q for q in quoted if q not in reading.replace("\n  ", " ")]
    assert not missing, missing
    # "Each of the six recurrent models trained on the phrases fails "although" more often than "but" and clausal
    # negation more often than short negation"; the two that learn nothing from the phrases each break one order
    models = committed.results("sst2", "behaviour.json")["models"]

    def rate(model, group):
        return np.mean([r["groups"][group]["failure_rate"] for r in models[model]])

    def orders(model):
        return (rate(model, "contrast: although") > rate(model, "contrast: but"),
                rate(model, "negated positive: clausal") > rate(model, "negated positive: short"))

    unphrased = ["sst2/bow", "sst2/lstm_last_sentences"]
    phrased = [m for m in models if m not in unphrased and "_augmented" not in m]  # the phrases alone
    assert len(phrased) == 6 and all(orders(m) == (True, True) for m in phrased)
    assert all(False in orders(m) for m in unphrased)
    assert all(rate(m, "negated positive: short") > rate(m, "negated positive: clausal") for m in unphrased)
    assert set(checklist.FAMILIES["contrast"]) == {"contrast: but", "contrast: although"}


def test_findings_quote_the_committed_counts():
    rules = _committed()["rules"]
    with open(os.path.join(ROOT, "docs", "findings.md")) as f:
        text = " ".join(f.read().split())
    quoted = (f"are {rules['contrast: but']['polar']} labelled \"A , but B\" contrasts of opposite clauses, "
              f"{rules['contrast: although A , B']['polar']} \"although A , B\", "
              f"{rules['contrast: B , although A']['polar']} \"B , although A\" (one sentence) and "
              f"{rules['clausal negation']['polar']} clausal negations of the suite's frames")
    assert quoted in text


def test_reproduction_summary_of_sst_holds_in_the_behaviour_json():
    models = committed.results("sst2", "behaviour.json")["models"]
    with open(os.path.join(ROOT, "docs", "reproduction.md")) as f:
        summary = " ".join(f.read().split("- **SST**:", 1)[1].split("\n- ", 1)[0].split())
    dev = {m: 100 * np.mean([r["dev"] for r in records]) for m, records in models.items()}
    best = max(dev, key=dev.get)
    test = 100 * np.mean([r["test"] for r in models[best]])
    assert best == "sst2/lstm_last_augmented" and f"dev mean is {dev[best]:.1f}" in summary
    assert f"test {test:.1f})" in summary and dev[best] < 85.2
    assert f"the LSTM reaches {dev['sst2/lstm']:.1f} and the BiLSTM {dev['sst2/bilstm']:.1f}" in summary
    assert f"Flax's SGD in place of Adam lowers the augmented LSTM to {dev['sst2/lstm_last_augmented_sgd']:.1f}" in summary
    with open(os.path.join(ROOT, "docs", "reproduction.md")) as f:
        page = " ".join(f.read().split())
    cells = {m: behaviour._cell([r["dev"] for r in models[m]])
             for m in ("sst2/lstm_last", "sst2/lstm_last_deep", "sst2/lstm_last_augmented", "sst2/lstm_last_augmented_sgd")}
    assert (f"the LSTM read at its last step reaches {cells['sst2/lstm_last']} (\"The pooling and direction axes\"), "
            f"with two layers {cells['sst2/lstm_last_deep']} (\"The length, width and depth axes\"), and trained also "
            f"on the augmentation {cells['sst2/lstm_last_augmented']} (\"The augmentation axis\"), the best of the "
            f"models at the rates their tuning chose") in page
    assert max(dev, key=dev.get) == "sst2/lstm_last_augmented"  # the models at the rates their tuning chose
    for model, quoted in (("sst2/lstm_last_augmented_mlp", "its MLP head to"),
                          ("sst2/lstm_last_augmented_embed300", "300-wide embeddings to"),
                          ("sst2/lstm_last_augmented_average_above", "averaged weights give")):
        assert f"{quoted} {dev[model]:.1f}" in summary
    held_out = committed.results("sst2_average", "behaviour.json")["models"]["sst2/lstm_last_augmented_average_held_out"]
    assert f"and {100 * np.mean([r['dev'] for r in held_out]):.1f} on held-out seeds" in summary
    assert f"on the augmented last-step LSTM lowered dev to {cells['sst2/lstm_last_augmented_sgd']}" in page

    def passes(model, family, records=None):
        rates = [behaviour.family_rate(r, family) for r in (records or models[model])]
        return np.mean(rates) <= checklist.GOALS[family] + 1e-12

    # "that augmented LSTM is within every family's goal in each seed"
    assert all(passes(best, f, [r]) for r in models[best] for f in checklist.FAMILIES)
    alone = [m for m in models if "_augmented" not in m]
    phrased = [m for m in alone if m not in ("sst2/bow", "sst2/lstm_last_sentences")]
    assert all(passes(m, "controls") for m in alone if m != "sst2/lstm_last_sentences")  # the bag of words too
    assert not passes("sst2/lstm_last_sentences", "controls")
    last = [m for m in phrased if "_last" in m]
    assert len(last) == 4 and [m for m in alone if passes(m, "negated negatives")] == last
    assert not any(passes(m, f) for m in alone for f in ("negated positives", "contrast"))


def test_findings_takeaway_on_the_augmented_lstm_quotes_the_behaviour_json():
    records = committed.results("sst2", "behaviour.json")["models"]["sst2/lstm_last_augmented"]
    with open(os.path.join(ROOT, "docs", "findings.md")) as f:
        text = " ".join(f.read().split())
    assert len(records) == 3 and all(behaviour.family_rate(r, family) <= goal + 1e-12
                                     for r in records for family, goal in checklist.GOALS.items())
    dev = behaviour._cell([r["dev"] for r in records])
    assert np.mean([r["dev"] for r in records]) < 0.852
    assert (f"the last-step LSTM is within every behaviour goal in each of its 3 seeds, and its dev accuracy "
            f"({dev}) stays just under the issue's 85.2") in text
