"""The SST behavioural suite (studies.sst.checklist) and its table (studies.sst.behaviour)."""

import json
import os

import numpy as np
import pytest

from rnnlab.analysis import behaviour as behaviour_lib
from rnnlab.analysis.stats import page_block
from rnnlab.data import text as text_lib
from studies.sst import behaviour, checklist, tables
from tests import committed

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
DATA = os.path.join(ROOT, "..", "shared", "data", "sst")
POSITIVE, NEGATIVE = set(checklist.LEXICON["pos_adj"]), set(checklist.LEXICON["neg_adj"])


def _polarities(tokens):
    """The polarity of each sentiment adjective of ``tokens``, in order."""
    return [checklist.POS if t in POSITIVE else checklist.NEG for t in tokens if t in POSITIVE | NEGATIVE]


def test_suite_is_deterministic_with_every_group_of_the_issue_capped_per_template():
    suite = checklist.get_suite()
    assert suite == checklist.get_suite()
    names = [g.name for g in suite.groups]
    assert names == [g for groups in checklist.FAMILIES.values() for g in groups]
    assert set(checklist.FAMILIES) == set(checklist.GOALS)
    for group in suite.groups:
        templates = {c.template for c in group.cases}
        assert 100 <= len(group.cases) <= checklist.CAP * len(templates) <= 300, group.name
    # "{pos_adj}" alone: its 20 words; "the {noun} is {pos_adj}": 120 fills, capped at CAP
    positive = suite.groups[0]
    assert sum(c.template == "{pos_adj}" for c in positive.cases) == 20
    assert sum(c.template == "the {noun} is {pos_adj}" for c in positive.cases) == checklist.CAP


def test_expected_labels_follow_the_adjectives_negation_and_the_main_clause():
    suite = {g.name: g for g in checklist.get_suite().groups}
    for name in checklist.FAMILIES["controls"]:
        for case in suite[name].cases:
            assert _polarities(text_lib.tokenize(case.texts[0])) == [case.label], case
    for name in checklist.FAMILIES["negated positives"]:
        for case in suite[name].cases:
            tokens = text_lib.tokenize(case.texts[0])
            assert case.label == checklist.NEG and _polarities(tokens) == [checklist.POS]
            assert text_lib.has_negator(tokens), case
    for base, edited in (map(text_lib.tokenize, c.texts) for c in suite["negated negative"].cases):
        assert _polarities(base) == [checklist.NEG] and not text_lib.has_negator(base)
        assert text_lib.has_negator(edited) and set(base) < set(edited)  # the same sentence, negated
    for base, edited in (map(text_lib.tokenize, c.texts) for c in suite["negated negative: length-matched"].cases):
        changed = [(b, e) for b, e in zip(base, edited) if b != e]  # one neutral word became a negator
        assert len(base) == len(edited) and len(changed) == 1
        assert changed[0][0] in checklist.LEXICON["filler"] and text_lib.has_negator([changed[0][1]])
    for name in checklist.FAMILIES["negated negatives"]:
        assert suite[name].target == "positive" and suite[name].direction == "up"
    for name in checklist.FAMILIES["contrast"]:
        labels = set()
        for case in suite[name].cases:
            tokens = text_lib.tokenize(case.texts[0])
            first, second = _polarities(tokens)
            assert first != second
            # the main clause: after "but"; the clause without "although"
            subordinate_first = "but" in tokens or tokens[0] == "although"
            assert case.label == (second if subordinate_first else first), case
            labels.add(case.label)
        assert labels == {checklist.POS, checklist.NEG}  # both polarity orders


def test_missing_words_reads_a_glue_training_file_and_names_each_absent_word(tmp_path):
    # Given a GLUE-format training file holding every token of the suite but "tedious" and "although"
    texts = behaviour_lib.suite_texts(checklist.get_suite())
    words = sorted({w for t in texts for w in text_lib.tokenize(t)} - {"tedious", "although"})
    (tmp_path / "glue_sst2").mkdir()
    rows = [" ".join(words[i:i + 10]) + "\t1" for i in range(0, len(words), 10)]
    (tmp_path / "glue_sst2" / "train.tsv").write_text("sentence\tlabel\n" + "\n".join(rows) + "\n")
    # When the suite is checked against it
    vocab = checklist.training_vocabulary(str(tmp_path))
    missing = checklist.missing_words(texts, vocab)
    # Then exactly the two are missing, each with a text holding it; "isn't" was read as is n't
    assert set(missing) == {"tedious", "although"}
    assert "tedious" in missing["tedious"] and "although" in missing["although"]
    assert {"is", "n't", "do"} <= vocab


@pytest.mark.skipif(not os.path.isfile(os.path.join(DATA, "glue_sst2", "train.tsv")), reason="no SST data here")
def test_every_word_of_the_suite_is_in_the_sst2_training_phrases():
    vocab = checklist.training_vocabulary(DATA)
    assert checklist.missing_words(behaviour_lib.suite_texts(checklist.get_suite()), vocab) == {}


def _record(dev, rates):
    """A run's record with every group of the suite at the failure rate ``rates.get(group, 0)`` of 100 cases."""
    groups = {g: {"n": 100, "failures": round(100 * rates.get(g, 0.0)), "failure_rate": rates.get(g, 0.0),
                  "examples": []} for gs in checklist.FAMILIES.values() for g in gs}
    return {"workdir": "runs/x", "seed": 1, "step": 10, "dev": dev, "test": dev, "groups": groups}


def test_behaviour_record_takes_accuracy_from_the_run_and_counts_from_the_suite_result(tmp_path):
    workdir = tmp_path / "lstm-s2"
    workdir.mkdir()
    (workdir / "config.json").write_text(json.dumps({"train": {"seed": 2}}))
    (workdir / "results.json").write_text(json.dumps({"valid": {"accuracy": 0.84}, "test": {"accuracy": 0.83}}))
    result = {"step": 500, "groups": [{"name": "g", "n": 10, "failures": 4, "failure_rate": 0.4,
                                       "examples": [{"texts": [str(i)]} for i in range(5)]}]}
    record = behaviour.behaviour_record(str(workdir), result)
    assert (record["seed"], record["step"], record["dev"], record["test"]) == (2, 500, 0.84, 0.83)
    assert record["groups"]["g"]["failures"] == 4 and len(record["groups"]["g"]["examples"]) == behaviour.EXAMPLES
    assert not os.path.isabs(record["workdir"])  # no machine paths in the committed JSON


def test_family_rates_pool_cases_and_the_goal_needs_three_seeds_every_family_and_dev():
    record = _record(0.86, {"negated positive: short": 0.3, "negated positive: clausal": 0.0})
    assert behaviour.family_rate(record, "negated positives") == pytest.approx(0.1)
    assert behaviour.passes([record] * 3) and not behaviour.passes([record] * 2)
    assert not behaviour.passes([_record(0.85, {})] * 3)  # dev not above 85.2
    assert not behaviour.passes([_record(0.86, {"contrast: but": 0.4})] * 3)  # contrast 20% > 15%


def test_behaviour_markdown_has_a_column_per_model_and_a_row_per_group_and_family():
    data = {"suite": behaviour.SUITE, "goals": checklist.GOALS,
            "models": {"sst2/lstm": [_record(0.84, {"contrast: but": 0.5}), _record(0.86, {"contrast: but": 0.3})],
                       "sst2/bow": [_record(0.82, {})]}}
    text = behaviour.behaviour_markdown(data)
    lines = text.splitlines()
    assert "sst2/lstm: does not meet, sst2/bow: does not meet" in lines[0]
    assert lines[2] == "|  | n | goal | sst2/lstm (2 seeds) | sst2/bow (1 seed) |"
    assert "| dev accuracy % | 872 | > 85.2 | 85.0 +- 1.4 | 82.0 |" in lines
    assert "| contrast: but (fail %) | 100 |  | 40.0 +- 14.1 | 0.0 |" in lines
    assert "| **contrast** (fail %) | 200 | <= 15 | 20.0 +- 7.1 | 0.0 |" in lines
    assert len(lines) == 4 + 2 + len(checklist.get_suite().groups) + len(checklist.FAMILIES)


def test_behaviour_markdown_compares_the_families_across_models_when_each_has_the_same_seeds():
    from scipy import stats as scipy_stats

    lstm = [_record(0.84, {"contrast: but": r}) for r in (0.1, 0.2, 0.3)]
    bow = [_record(0.82, {"contrast: but": r}) for r in (0.5, 0.6, 0.8)]
    text = behaviour.behaviour_markdown({"suite": behaviour.SUITE, "goals": checklist.GOALS,
                                         "models": {"sst2/lstm": lstm, "sst2/bow": bow}})
    assert "Welch's test over the 3 seeds, failure-rate points" in text and "the 4 tests are one family" in text
    # contrast pools "but" with "although" (0): per seed 5, 10, 15 against 25, 30, 40 points
    reference = scipy_stats.ttest_ind([5, 10, 15], [25, 30, 40], equal_var=False)
    row = next(line for line in text.splitlines() if line.startswith("| sst2/lstm - sst2/bow | contrast |"))
    assert row.split(" | ")[2].startswith("-21.7 [") and f"{reference.pvalue:.2g}" == row.split(" | ")[3]
    one_seed = behaviour.behaviour_markdown({"suite": behaviour.SUITE, "goals": checklist.GOALS,
                                             "models": {"sst2/lstm": lstm[:1], "sst2/bow": bow[:1]}})
    assert "Welch" not in one_seed


def test_reproduction_behaviour_block_is_what_the_code_makes_of_the_committed_json():
    path = os.path.join(ROOT, "docs", "results", "sst2", "behaviour.json")
    with open(os.path.join(ROOT, "docs", "reproduction.md")) as f:
        block = page_block(f.read(), "sst2-behaviour")
    with open(path) as f:
        data = json.load(f)
    assert block.strip() == behaviour.behaviour_markdown(data).strip()
    # and the JSON's groups are the suite's, with its case counts
    sizes = {g.name: len(g.cases) for g in checklist.get_suite().groups}
    for records in data["models"].values():
        for record in records:
            assert {g: r["n"] for g, r in record["groups"].items()} == sizes


def test_reproduction_behaviour_prose_holds_in_the_committed_json():
    # The claims of the reading under the sst2-behaviour block, checked against the JSON they read
    models = committed.results("sst2", "behaviour.json")["models"]
    with open(os.path.join(ROOT, "docs", "results", "sst2", "per_seed.json")) as f:
        per_seed = json.load(f)
    with open(os.path.join(ROOT, "docs", "reproduction.md")) as f:
        page = f.read()
    # "Eight of the nine retrained runs reproduce ... exactly (the bag of words' seed 1 is one dev sentence off)"
    differ = []
    for model, records in per_seed.items():
        for old in records:
            (new,) = [r for r in models[model] if r["seed"] == old["seed"]]
            if (new["dev"], new["test"]) != (old["valid"]["accuracy"], old["test"]["accuracy"]):
                sentences = round(behaviour.DEV_SENTENCES * abs(new["dev"] - old["valid"]["accuracy"]))
                differ.append((model, old["seed"], sentences))
    assert differ == [("sst2/bow", 1, 1)]
    # "None of the 56 comparisons between models is separable after Holm's correction, not even the LSTM
    # trained without phrases against the same LSTM with them (controls p = 0.023, p_holm = 1) or the augmented
    # LSTM against the same LSTM without the augmentation (negated positives p = 0.015, p_holm = 0.84)"
    tests = behaviour.family_comparisons(models)
    assert len(tests) == 4 * len(tables.COMPARED) and not any(t["separable"] for t in tests)
    assert f"None of the {len(tests)} comparisons" in page
    assert f"cannot separate a family of {len(tests)}" in " ".join(page.split())
    by = {(t["a"], t["b"], t["column"]): t for t in tests}
    for a, b, column in (("sst2/lstm_last", "sst2/lstm_last_sentences", "controls"),
                         ("sst2/lstm_last_augmented", "sst2/lstm_last", "negated positives")):
        quoted = f"{by[(a, b, column)]['p']:.2g}", f"{by[(a, b, column)]['p_holm']:.2g}"
        assert by[(a, b, column)]["p"] < 0.025  # small, and still not separable
        assert f"{column} p = {quoted[0]}, p_holm = {quoted[1]})" in " ".join(page.split())

    def mean(model, name):
        return np.mean([r["groups"][name]["failure_rate"] for r in models[model]])

    flat = " ".join(page.split())
    families = {m: {f: 100 * np.mean([behaviour.family_rate(r, f) for r in records]) for f in checklist.FAMILIES}
                for m, records in models.items()}
    dev = {m: 100 * np.mean([r["dev"] for r in records]) for m, records in models.items()}
    # the augmented one-layer LSTM: every family within its goal in every seed (two seeds on an edge), the highest
    # dev accuracy, under 85.2; its two-layer form misses contrast and dev
    augmented = models["sst2/lstm_last_augmented"]
    per_seed = [{f: behaviour.family_rate(r, f) for f in checklist.FAMILIES} for r in augmented]
    assert all(rates[f] <= checklist.GOALS[f] + 1e-12 for rates in per_seed for f in checklist.FAMILIES)
    edges = sorted((f, round(100 * rates[f], 1)) for rates in per_seed for f in checklist.FAMILIES
                   if abs(rates[f] - checklist.GOALS[f]) < 1e-12)
    assert edges == [("contrast", 15.0), ("negated negatives", 10.0)]
    cells = {f: behaviour._cell([behaviour.family_rate(r, f) for r in augmented]) for f in checklist.FAMILIES}
    assert (f"(controls {cells['controls']}%, negated positives {cells['negated positives']}%, negated negatives "
            f"{cells['negated negatives']}%, contrast {cells['contrast']}%;") in flat
    assert max(dev, key=dev.get) == "sst2/lstm_last_augmented" and max(dev.values()) < 85.2
    assert f"its dev accuracy, {behaviour._cell([r['dev'] for r in augmented])}, is the highest" in flat
    deep_augmented = models["sst2/lstm_last_deep_augmented"]
    assert families["sst2/lstm_last_deep_augmented"]["contrast"] > 100 * checklist.GOALS["contrast"]
    deep_contrast = behaviour._cell([behaviour.family_rate(r, "contrast") for r in deep_augmented])
    assert (f"misses the contrast goal ({deep_contrast}%) and dev "
            f"({behaviour._cell([r['dev'] for r in deep_augmented])})") in flat
    # with Flax's MLP head or its 300-wide embeddings: dev missed, every family's goal met in one seed of three
    head, embed = models["sst2/lstm_last_augmented_mlp"], models["sst2/lstm_last_augmented_embed300"]
    assert (f"it misses dev ({behaviour._cell([r['dev'] for r in head])} and "
            f"{behaviour._cell([r['dev'] for r in embed])}) and is within every family's goal in one seed of three") in flat
    for records in (head, embed):
        assert sum(all(behaviour.family_rate(r, f) <= checklist.GOALS[f] + 1e-12 for f in checklist.FAMILIES)
                   for r in records) == 1
    # averaged weights: every family in each seed, dev missed at the rate its tuning chose
    averaged = models["sst2/lstm_last_augmented_average_above"]
    assert all(behaviour.family_rate(r, f) <= checklist.GOALS[f] for r in averaged for f in checklist.FAMILIES)
    assert (f"with wider margins (contrast {behaviour._cell([behaviour.family_rate(r, 'contrast') for r in averaged])}%) "
            f"but misses dev ({behaviour._cell([r['dev'] for r in averaged])})") in flat
    held_out = committed.results("sst2_average", "behaviour.json")["models"]["sst2/lstm_last_augmented_average_held_out"]
    assert f"and {behaviour._cell([r['dev'] for r in held_out])} on the held-out seeds 4, 5, 6" in flat
    assert max(behaviour.family_rate(r, "contrast") for r in averaged) < min(
        behaviour.family_rate(r, "contrast") for r in models["sst2/lstm_last_augmented"])
    # the eight models without the augmentation: every one but the one trained without phrases passes the
    # controls; none is within the goal on negated positives or contrast; none reaches dev 85.2, the two-layer LSTM
    # comes closest
    eight = [m for m in models if "_augmented" not in m]  # trained on the treebank's data alone
    assert len(eight) == 8
    passing = [m for m in eight if families[m]["controls"] <= 100 * checklist.GOALS["controls"]]
    assert passing == [m for m in eight if m != "sst2/lstm_last_sentences"]
    assert max(eight, key=dev.get) == "sst2/lstm_last_deep" and max(dev[m] for m in eight) < 85.2
    assert f"comes closest, {behaviour._cell([r['dev'] for r in models['sst2/lstm_last_deep']])})" in flat
    for name, goal in (("negated positives", "10%"), ("contrast", "15%")):
        rates = [families[m][name] for m in eight]
        assert min(rates) > 100 * checklist.GOALS[name]
        assert f"{name} ({min(rates):.1f}-{max(rates):.1f}% against {goal})" in flat
    # every last-step reader trained on the phrases within the goal on negated negatives on average (one
    # seed of the two-layer LSTM at 12.9%); the 300-unit LSTM closest on the rest
    last = [m for m in eight if "_last" in m and m != "sst2/lstm_last_sentences"]
    assert all(families[m]["negated negatives"] <= 100 * checklist.GOALS["negated negatives"] for m in last)
    deep = [behaviour.family_rate(r, "negated negatives") for r in models["sst2/lstm_last_deep"]]
    assert f"{100 * max(deep):.1f}%" == "12.9%" and "fails 12.9%" in page
    rest = {m: families[m]["negated positives"] + families[m]["contrast"] for m in eight}
    assert min(rest, key=rest.get) == "sst2/lstm_last_wide"
    # recurrent seeds within 10% and one at half or more on negated negatives
    for model in ("sst2/lstm", "sst2/bilstm"):
        rates = [behaviour.family_rate(r, "negated negatives") for r in models[model]]
        assert min(rates) <= 0.10 and max(rates) >= 0.5
    # the bag of words: length-matched fails more than "bad" -> "not bad"; clausal least of the eight
    assert mean("sst2/bow", "negated negative: length-matched") > mean("sst2/bow", "negated negative")
    assert mean("sst2/bow", "negated positive: clausal") < min(
        mean(m, "negated positive: clausal") for m in eight if m != "sst2/bow")
    # contrast: "although" 37-45% for each of the eight, 10.4-23.3% with the augmentation and Adam, 43.5% with SGD;
    # "but" less for every recurrent model than for the bag of words
    although = [mean(m, "contrast: although") for m in eight]
    assert f"{100 * min(although):.0f}-{100 * max(although):.0f}%" == "37-45%" and "fails 37-45%" in page
    adam = [mean(m, "contrast: although") for m in models if "_augmented" in m and not m.endswith("_sgd")]
    assert len(adam) == 7 and f"{100 * min(adam):.1f}-{100 * max(adam):.1f}% for the seven trained with it and Adam" in flat
    assert f"{100 * mean('sst2/lstm_last_augmented_sgd', 'contrast: although'):.1f}% for the one trained with it and SGD" in flat
    assert max(mean(m, "contrast: but") for m in models if m != "sst2/bow") < mean("sst2/bow", "contrast: but")
    # recurrent models fail mostly on positive-labelled contrast sentences; the bag of words both alike
    suite = {g.name: g for g in checklist.get_suite().groups}
    labels = {c.template: c.label for name in checklist.FAMILIES["contrast"] for c in suite[name].cases}
    for model, records in models.items():
        failures = {checklist.POS: 0, checklist.NEG: 0}
        for r in records:
            for name in checklist.FAMILIES["contrast"]:
                for template, counts in r["groups"][name]["by_template"].items():
                    failures[labels[template]] += counts["failures"]
        ratio = failures[checklist.POS] / failures[checklist.NEG]
        alike = model in ("sst2/bow", "sst2/lstm_last_sentences")  # trained without the phrase labels
        if model.endswith("_sgd"):  # "lies between (206 failures on positive sentences against 159 ...)"
            assert 1.25 <= ratio <= 2 and (f"({failures[checklist.POS]} failures on positive sentences against "
                                           f"{failures[checklist.NEG]} on negative ones") in flat
            continue
        if model.endswith("_embed300"):  # "but the one with 300-wide embeddings (94 failures against 51)"
            assert 1 < ratio <= 2 and (f"({failures[checklist.POS]} failures against "
                                       f"{failures[checklist.NEG]})") in flat
            continue
        assert 0.8 < ratio < 1.25 if alike else ratio > 2, (model, failures)


def test_the_pooling_reading_holds_in_the_committed_json():
    # reproduction.md, "The pooling and direction axes": each number it quotes, from the JSON it reads
    models = committed.results("sst2", "behaviour.json")["models"]
    with open(os.path.join(ROOT, "docs", "reproduction.md")) as f:
        page = f.read()
    last, attention = models["sst2/bilstm_last"], models["sst2/bilstm"]

    def cell(records, name):
        return behaviour._cell([r["groups"][name]["failure_rate"] for r in records])

    negated = [behaviour.family_rate(r, "negated negatives") for r in last]
    assert "but 0.3 +- 0.5% of the cases" in page and behaviour._cell(negated) == "0.3 +- 0.5"
    assert max(negated) < 0.02  # "every seed under 2%"
    assert sum(behaviour.family_rate(r, "negated negatives") < 0.02 for r in attention) == 1  # "one seed of three"
    for name, quoted in (("negated positive: short", "15.3 +- 17.6"), ("negated positive: across words", "24.6 +- 17.9"),
                         ("negated positive: clausal", "59.2 +- 13.1"), ("contrast: but", "14.0 +- 6.7"),
                         ("contrast: although", "42.7 +- 5.1")):
        assert cell(last, name) == quoted and quoted + "%" in page
    assert cell(attention, "negated positive: clausal").startswith("36.9") and "BiLSTM's 36.9" in page
    seed2 = next(r for r in last if r["workdir"].endswith("seed2"))
    assert seed2["groups"]["negated positive: short"]["failures"] == 0 and "(seed 2: 0 of 200)" in page
    assert f"(seed 2: {100 * seed2['groups']['contrast: but']['failure_rate']:.1f}%" in page
    lstm = models["sst2/lstm_last"]  # the direction axis: the LSTM read at its last step
    negated = [behaviour.family_rate(r, "negated negatives") for r in lstm]
    assert behaviour._cell(negated) == "3.1 +- 2.4" and max(negated) <= 0.10 and "fails 3.1 +- 2.4%, every seed" in page
    for name, quoted in (("negated positive: short", "0.3 +- 0.6"), ("negated positive: across words", "10.0 +- 2.9"),
                         ("negated positive: clausal", "47.9 +- 17.7"), ("contrast: but", "13.8 +- 8.1"),
                         ("contrast: although", "39.6 +- 7.8")):
        assert cell(lstm, name) == quoted and quoted + "%" in page
    for family, quoted in (("negated positives", "17.9 +- 4.6"), ("contrast", "26.7 +- 6.9")):
        assert behaviour._cell([behaviour.family_rate(r, family) for r in lstm]) == quoted and quoted + "%" in page


def test_write_behaviour_keep_adds_a_round_to_the_json_without_the_earlier_runs(tmp_path, monkeypatch):
    out = tmp_path / "behaviour.json"
    old = {"suite": behaviour.SUITE, "goals": checklist.GOALS,
           "models": {"sst2/lstm": [_record(0.84, {})], "sst2/bow": [_record(0.82, {})]}}
    out.write_text(json.dumps(old))
    new = {"suite": behaviour.SUITE, "goals": checklist.GOALS,
           "models": {"sst2/bow": [_record(0.83, {})], "sst2/new": [_record(0.85, {})]}}
    monkeypatch.setattr(behaviour, "run_behaviour", lambda runs: json.loads(json.dumps(new)))
    monkeypatch.setattr(behaviour, "plot_families", lambda data, path: None)
    behaviour.write_behaviour(str(out), runs=[("sst2/new", "runs/new")], keep=True)
    models = json.loads(out.read_text())["models"]
    # the kept model first, then the run ones; the re-run model replaced
    assert list(models) == ["sst2/lstm", "sst2/bow", "sst2/new"] and models["sst2/bow"][0]["dev"] == 0.83
    behaviour.write_behaviour(str(out), runs=[("sst2/new", "runs/new")])  # without keep: the runs alone
    assert list(json.loads(out.read_text())["models"]) == ["sst2/bow", "sst2/new"]
