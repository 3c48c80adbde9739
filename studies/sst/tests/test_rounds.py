"""The SST rounds of issue 24's item 5 (studies/sst/size_plan.py, phrases_plan.py): what their docs say of them."""

import os

import pytest

from studies.sst import phrases_plan, size_plan
from studies.sst.tests.test_checklist import DATA
from studies.sst.tests.test_tables import committed_sst2_models, trial_devs
from tests import committed


def test_glue_texts_in_trees_counts_distinct_lower_cased_phrases_of_the_training_trees(tmp_path):
    # Given training trees whose phrases are "Not good", "Not", "good", "-LRB- fun -RRB-" ... and a GLUE file
    # holding two of them (one twice, lower-cased, the brackets as GLUE writes them) and a text of no tree
    (tmp_path / "train.txt").write_text("(1 (2 Not) (3 good))\n(3 (2 -LRB-) (3 (3 fun) (2 -RRB-)))\n")
    (tmp_path / "glue_sst2").mkdir()
    (tmp_path / "glue_sst2" / "train.tsv").write_text(
        "sentence\tlabel\nnot good \t0\nnot good \t0\n( fun ) \t1\nbad film \t0\n")
    # Then 2 of its 3 distinct texts are phrases of the trees
    assert phrases_plan.glue_texts_in_trees(str(tmp_path)) == (2, 3)


def test_each_round_changes_one_thing_of_the_last_step_lstm():
    from studies.sst import pooling_plan

    base = next(s for s in pooling_plan.get_plan() if s.name == "sst2/lstm_last")
    extra = {s.name: s.config[len(base.config):] for s in size_plan.get_plan() if s.config.startswith(base.config)}
    assert extra == {"sst2/lstm_last_long": ",steps=24000",
                     "sst2/lstm_last_wide": ",steps=24000,model.hidden_size=300",
                     "sst2/lstm_last_deep": ",steps=24000,model.num_layers=2,model.dropout=0.3"}
    (sentences,) = phrases_plan.get_plan()
    assert sentences.config == base.config.replace("glue,", "", 1)
    searches = [base, *size_plan.get_plan(), sentences]
    assert {(s.metric, s.space, s.trials, s.seeds, s.vary_data_seed) for s in searches} == {
        (base.metric, base.space, base.trials, base.seeds, base.vary_data_seed)}  # the same tuning effort


def test_the_longer_cap_gives_the_same_seed_runs_as_the_12000_step_cap():
    # reproduction.md, "The length, width and depth axes": the same checkpoints, hence the same suite results
    long = committed.results("sst2_size", "per_seed.json")["sst2/lstm_last_long"]
    capped = committed.results("sst2_pooling", "per_seed.json")["sst2/lstm_last"]
    same = lambda r: (r["seed"], r["learning_rate"], r["valid"], r["test"])
    assert [same(r) for r in long] == [same(r) for r in capped] and len(long) == 3
    assert [r["best_step"] for r in long] == [7000, 12000, 6500] and all(r["step"] < 24000 for r in long)
    assert "best checkpoints at steps 7,000, 12,000 and 6,500" in _page()


@pytest.mark.skipif(not os.path.isfile(os.path.join(DATA, "glue_sst2", "train.tsv")), reason="no SST data here")
def test_the_share_of_glue_texts_that_are_treebank_phrases_is_what_the_page_quotes():
    inside, distinct = phrases_plan.glue_texts_in_trees(DATA)
    assert f"{inside:,} of its {distinct:,} distinct" in _page()


def _page():
    """reproduction.md with every run of white space (line breaks, list indents) as one space."""
    with open(os.path.join(committed.ROOT, "docs", "reproduction.md")) as f:
        return " ".join(f.read().split())


def test_the_readings_of_the_width_depth_and_phrase_rounds_quote_the_committed_json():
    from studies.sst import behaviour

    models = committed.results("sst2", "behaviour.json")["models"]
    page = _page()
    group = lambda m, g: behaviour._cell([r["groups"][g]["failure_rate"] for r in models[m]])
    family = lambda m, f: behaviour._cell([behaviour.family_rate(r, f) for r in models[m]])
    accuracy = lambda m, split: behaviour._cell([r[split] for r in models[m]])
    wide, deep, one, sentences = (f"sst2/lstm_last{s}" for s in ("_wide", "_deep", "", "_sentences"))
    # width
    assert f"reaches dev {accuracy(wide, 'dev')} and test {accuracy(wide, 'test')}" in page
    assert all(r["groups"][g]["failures"] == 0 for r in models[wide]
               for g in ("negated negative", "negated negative: length-matched", "negated positive: short"))
    for quoted in (f"across-word negation {group(wide, 'negated positive: across words')}%",
                   f"\"but\" {group(wide, 'contrast: but')}%", f"clausal negation {group(wide, 'negated positive: clausal')}%",
                   f"\"although\" {group(wide, 'contrast: although')}%",
                   f"negated positives {family(wide, 'negated positives')}% against 10%",
                   f"contrast {family(wide, 'contrast')}% against 15%"):
        assert quoted in page, quoted
    # depth
    assert f"reaches dev {accuracy(deep, 'dev')} (one seed of three above 85.2) and test {accuracy(deep, 'test')}" in page
    assert sum(r["dev"] > 0.852 for r in models[deep]) == 1
    for quoted in (f"negated positives {family(deep, 'negated positives')}% (short negation "
                   f"{group(deep, 'negated positive: short')}%)", f"negated negatives {family(deep, 'negated negatives')}%",
                   f"contrast {family(deep, 'contrast')}%; none"):
        assert quoted in page, quoted
    # the behaviour family: none of the width or depth differences separable
    assert not any(t["separable"] for t in behaviour.family_comparisons(models) if t["a"] in (wide, deep))
    # what no size changes
    rate = lambda m, g: 100 * sum(r["groups"][g]["failure_rate"] for r in models[m]) / len(models[m])
    clausal = [rate(m, "negated positive: clausal") for m in (one, wide, deep)]
    although = [rate(m, "contrast: although") for m in (one, wide, deep)]
    assert f"Clausal negation fails {min(clausal):.1f}-{max(clausal):.1f}% and \"although\" " \
           f"{min(although):.1f}-{max(although):.1f}% at every size" in page
    # phrases
    for quoted in (f"fails {group(sentences, 'negated positive: short')}% of short negations (\"not good\") against "
                   f"{group(one, 'negated positive: short')}%",
                   f"{family(sentences, 'negated negatives')}% of its negated negatives against {family(one, 'negated negatives')}%",
                   f"{family(sentences, 'controls')}% of the controls ({group(sentences, 'positive controls')}% of the positive"):
        assert quoted in page, quoted
    assert f"Dev {accuracy(sentences, 'dev')} and test {accuracy(sentences, 'test')}" in page
    assert min(r["dev"] for r in models[one]) > max(r["dev"] for r in models[sentences])
    assert min(r["test"] for r in models[one]) > max(r["test"] for r in models[sentences])


def test_the_size_and_phrase_rounds_quote_the_sst_accuracy_family():
    from studies.sst import tables

    models = committed_sst2_models()
    tests = {(t["a"], t["b"], t["column"]): t for t in tables.comparisons(models)}
    page = _page()
    interval = lambda t: f"{t['diff']:+.1f} [{t['ci'][0]:+.1f}, {t['ci'][1]:+.1f}], p = {t['p']:.2g}"
    assert f"(against hidden size 150: dev {interval(tests[('sst2/lstm_last_wide', 'sst2/lstm_last', 'dev')])})" in page
    assert f"(against one layer: dev {interval(tests[('sst2/lstm_last_deep', 'sst2/lstm_last', 'dev')])})" in page
    dev, test = (tests[("sst2/lstm_last", "sst2/lstm_last_sentences", c)] for c in ("dev", "test"))
    assert f"{dev['diff']:.1f} and {test['diff']:.1f} points under the same model" in page
    assert f"Welch's p is {dev['p']:.2g} (dev) and {test['p']:.2g} (test)" in page
    assert f"(p_holm = {dev['p_holm']:.2g} and {test['p_holm']:.2g})" in page and not dev["separable"]
    assert f"Holm over the {len(tests)} SST comparisons" in page


def test_the_findings_take_away_on_sst_quotes_the_committed_behaviour():
    from studies.sst import behaviour

    models = committed.results("sst2", "behaviour.json")["models"]
    mean = lambda m, f: 100 * sum(behaviour.family_rate(r, f) for r in models[m]) / len(models[m])
    short = 100 * sum(r["groups"]["negated positive: short"]["failure_rate"]
                      for r in models["sst2/lstm_last_sentences"]) / 3
    with open(os.path.join(committed.ROOT, "docs", "findings.md")) as f:
        page = f.read().replace("\n  ", " ")
    assert f"without them it fails {short:.1f}% of \"not good\" cases" in page
    assert (f"(negated positives {mean('sst2/lstm_last_wide', 'negated positives'):.1f}% against 10%, contrast "
            f"{mean('sst2/lstm_last_wide', 'contrast'):.1f}% against 15%)") in page


def _trial_dev(block: str, model: str, rate: str) -> float:
    """The dev accuracy of ``model``'s trial at ``rate`` in the trials table of a reproduction.md block."""
    trials = trial_devs(committed.block("reproduction.md", block))
    if (model, rate) not in trials:
        raise AssertionError(f"no trial {model} at {rate} in {block}")
    return float(trials[(model, rate)])


def test_one_rate_above_the_grid_did_worse_for_every_model_at_the_top_as_the_page_says():
    from studies.sst import above_grid_plan

    page = _page()
    assert committed.block("reproduction.md", "sst2-above-grid") == open(
        os.path.join(committed.ROOT, "docs", "results", "sst2_above_grid", "sst.md")).read().strip()
    homes = {"sst2/bilstm_last": "sst2-pooling", "sst2/lstm_last_wide": "sst2-size", "sst2/lstm_last_sentences": "sst2-phrases"}
    assert set(above_grid_plan.AT_THE_TOP) == set(homes)
    quoted = []
    for model, block in homes.items():
        top, above = _trial_dev(block, model, "0.002"), _trial_dev("sst2-above-grid", f"{model}_0.004", "0.004")
        assert above < top and max(_trial_dev(block, model, r) for r in ("0.0005", "0.001", "0.002")) == top
        quoted.append(f"{above:.1f} against {top:.1f}")
    assert ("the last-step BiLSTM {}, the 300-unit LSTM {}, the LSTM on sentences {}".format(*quoted)) in page
    for text in quoted:  # and each round's own reading says so
        assert f"did worse on dev ({text}" in page
