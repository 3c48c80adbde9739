"""The augmentation of SST-2 that shows the suite's rules on other words (studies.sst.augment)."""

import math
import os

import numpy as np
import pytest

from rnnlab.analysis.behaviour import placeholders, suite_texts
from rnnlab.data import sst
from rnnlab.data import text as text_lib
from studies.sst import augment, checklist
from studies.sst.tests.test_tables import committed_sst2_models, committed_trial_devs
from tests import committed

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
DATA = os.path.join(ROOT, "..", "shared", "data", "sst")


def _reading(block: str) -> tuple[dict, dict, str]:
    """The committed behaviour JSON's models, every SST-2 round's per-seed records, and reproduction.md's text after
    ``block``'s tables up to the next section (one space for each run of white space): a round's reading."""
    with open(os.path.join(ROOT, "docs", "reproduction.md")) as f:
        page = f.read()
    start = page.index(f"<!-- /{block} -->")
    text = page[start:page.index("\n### ", start)]
    return committed.results("sst2", "behaviour.json")["models"], committed_sst2_models(), " ".join(text.split())


def _augmented_search():
    """The search of the augmented last-step LSTM (``sst2/lstm_last_augmented``), the twin of the later rounds."""
    from studies.sst import augment_plan

    (base,) = [s for s in augment_plan.get_plan() if s.name == "sst2/lstm_last_augmented"]
    return base


def _assert_each_changes_one_thing(plan_module, changes: dict) -> None:
    """Each search of ``plan_module`` named in ``changes`` (``{name: config suffix}``) is the augmented last-step
    LSTM's config plus that suffix, with the augmented model's tuning effort (grid, trials, seeds)."""
    base = _augmented_search()
    plan = {s.name: s for s in plan_module.get_plan()}
    for name, suffix in changes.items():
        assert plan[name].config == base.config + suffix
        assert (plan[name].space, plan[name].trials, plan[name].seeds) == (base.space, base.trials, base.seeds)


def _assert_dev_and_test_quoted(reading: str, per_seed: dict, first: tuple, second: tuple) -> dict:
    """The reading's "With <first> dev is D and test T; with <second> dev D and test T; the augmented model with
    neither has D and T" holds in ``per_seed`` (``first``, ``second``: ``(model, words)``), and neither model's
    dev accuracy is separable from the augmented model's; returns the SST family's tests by ``(model, column)``."""
    from studies.sst import behaviour, tables

    cell = lambda model, split: behaviour._cell([r[split]["accuracy"] for r in per_seed[model]])
    twin = "sst2/lstm_last_augmented"
    (a, a_words), (b, b_words) = first, second
    assert (f"With {a_words} dev is {cell(a, 'valid')} and test {cell(a, 'test')}; with {b_words} dev "
            f"{cell(b, 'valid')} and test {cell(b, 'test')}; the augmented model with neither has "
            f"{cell(twin, 'valid')} and {cell(twin, 'test')}") in reading
    by = {(t["a"], t["column"]): t for t in tables.comparisons(per_seed)}
    assert not by[(a, "dev")]["separable"] and not by[(b, "dev")]["separable"]
    assert by[(a, "dev")]["b"] == by[(b, "dev")]["b"] == twin
    return by


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


def test_the_augmentation_reading_is_what_the_committed_json_says():
    from studies.sst import behaviour, tables

    models, per_seed, reading = _reading("sst2-augment")

    def family(model, name):
        return [100 * behaviour.family_rate(r, name) for r in models[model]]

    def group(model, name):
        return np.mean([100 * r["groups"][name]["failure_rate"] for r in models[model]])

    one, two = ("sst2/lstm_last", "sst2/lstm_last_augmented"), ("sst2/lstm_last_deep", "sst2/lstm_last_deep_augmented")
    quoted = [f"negated positives fall from {np.mean(family(one[0], 'negated positives')):.1f} to "
              f"{np.mean(family(one[1], 'negated positives')):.1f}%",
              f"(clausal negation from {group(one[0], 'negated positive: clausal'):.1f} to "
              f"{group(one[1], 'negated positive: clausal'):.1f}%)",
              f"contrast from {np.mean(family(one[0], 'contrast')):.1f} to {np.mean(family(one[1], 'contrast')):.1f}%",
              f"(\"although\" from {group(one[0], 'contrast: although'):.1f} to {group(one[1], 'contrast: although'):.1f}%, "
              f"\"but\" from {group(one[0], 'contrast: but'):.1f} to {group(one[1], 'contrast: but'):.1f}%)",
              f"contrast ({np.mean(family(two[0], 'contrast')):.1f} to {np.mean(family(two[1], 'contrast')):.1f}%)",
              f"negated positives ({np.mean(family(two[0], 'negated positives')):.1f} to "
              f"{np.mean(family(two[1], 'negated positives')):.1f}%)"]
    missing = [q for q in quoted if q not in reading]
    assert not missing, missing
    # "every augmented seed fails fewer ... than every seed without it"; two layers: contrast apart, negated positives
    # overlapping
    for name in ("negated positives", "contrast"):
        assert max(family(one[1], name)) < min(family(one[0], name))
    assert max(family(two[1], "contrast")) < min(family(two[0], "contrast"))
    assert max(family(two[1], "negated positives")) > min(family(two[0], "negated positives"))
    # negated negatives within the goal on average, with and without
    assert all(np.mean(family(m, "negated negatives")) <= 10 for m in (*one, *two))
    # the behaviour family: the smallest p of the augmentation's comparisons, not separable
    tests = [t for t in behaviour.family_comparisons(models) if t["a"].endswith("_augmented")]
    smallest = min(tests, key=lambda t: t["p"])
    assert (smallest["a"], smallest["column"]) == (one[1], "negated positives") and not any(t["separable"] for t in tests)
    assert f"p = {smallest['p']:.2g}, p_holm = {smallest['p_holm']:.2g})" in reading
    # accuracy: the SST family
    by = {(t["a"], t["column"]): t for t in tables.comparisons(per_seed)}
    for model, layers in ((one[1], "for one layer"), (two[1], "for two")):
        dev, test = by[(model, "dev")], by[(model, "test")]
        assert min(dev["p"], test["p"]) >= 0.39
        cell = lambda t: f"{t['diff']:+.1f} [{t['ci'][0]:+.1f}, {t['ci'][1]:+.1f}]"
        assert f"{cell(dev)}" in reading and f"{cell(test)}" in reading
    negated = by[(one[1], "test, negated")]
    accuracy = lambda model: behaviour._cell([r["test"]["negated_accuracy"] for r in per_seed[model]])
    assert (f"the augmented LSTM is {accuracy(one[1])} against {accuracy(one[0])} without "
            f"({negated['diff']:+.1f} [{negated['ci'][0]:+.1f}, {negated['ci'][1]:+.1f}] points, p = {negated['p']:.2g})"
            ) in reading
    # "the trial at 4e-3 tied it on dev (735 of 872 sentences each)": both rows of the trials table
    rows = committed_trial_devs("sst2_augment")
    assert rows[("sst2/lstm_last_augmented", "0.002")] == rows[("sst2/lstm_last_augmented_0.004", "0.004")] == \
        f"{100 * 735 / behaviour.DEV_SENTENCES:.1f}"
    assert "tied it on dev (735 of 872 sentences each)" in reading


def test_the_predict_example_uses_no_word_of_the_augmentation_where_the_page_says_so():
    with open(os.path.join(ROOT, "docs", "reproduction.md")) as f:
        page = f.read()
    example = page[page.index("$ cat sentences.txt"):page.index("$ python -m rnnlab predict")]
    sentences = example.splitlines()[1:]
    words = {w for words in augment.LEXICON.values() for w in words}
    composed = [t for t in sentences if any(k in t.lower() for k in ("not", "n't", "never", "but", "although"))]
    assert len(composed) == 8
    assert not words & {w for t in composed for w in text_lib.tokenize(t)}
    assert {"dull", "clever"} <= {w for ws in checklist.LEXICON.values() for w in ws}
    assert not {"joy", "thin"} & (words | {w for ws in checklist.LEXICON.values() for w in ws})


def test_the_optimizer_reading_is_what_the_committed_json_says():
    from studies.sst import behaviour, tables

    models, per_seed, reading = _reading("sst2-sgd")
    with open(os.path.join(ROOT, "docs", "reproduction.md")) as f:
        flat = " ".join(f.read().split())
    sgd, adam = "sst2/lstm_last_augmented_sgd", "sst2/lstm_last_augmented"
    cell = lambda model, split: behaviour._cell([r[split]["accuracy"] for r in per_seed[model]])
    assert (f"Dev {cell(sgd, 'valid')} and test {cell(sgd, 'test')}, against {cell(adam, 'valid')} and "
            f"{cell(adam, 'test')} with Adam") in reading
    dev = {(t["a"], t["column"]): t for t in tables.comparisons(per_seed)}[(sgd, "dev")]
    assert not dev["separable"]
    assert f"(dev {dev['diff']:+.1f} [{dev['ci'][0]:+.1f}, {dev['ci'][1]:+.1f}] points, p = {dev['p']:.2g}" in reading
    seeds = [f"{100 * r['valid']['accuracy']:.1f}" for r in sorted(per_seed[sgd], key=lambda r: r["seed"])]
    assert f"reached {seeds[0]}, {seeds[1]} and {seeds[2]} on dev" in reading
    assert all(r["step"] < 24000 for r in per_seed[sgd])  # "each stopped by patience well before its cap"
    trials = committed_trial_devs("sst2_sgd")
    chosen, below = trials[(sgd, "0.05")], trials[(sgd + "_0.025", "0.025")]
    assert max((v for (m, _), v in trials.items() if m == sgd), key=float) == chosen and float(below) < float(chosen)
    assert f"against {chosen} for the seed-0 trial" in reading and f"The trial at 0.025 reached {below}" in reading
    rates = {m: {f: behaviour._cell([behaviour.family_rate(r, f) for r in models[m]]) for f in checklist.FAMILIES}
             for m in (sgd, adam)}
    assert (f"fail {rates[sgd]['controls']}% of the controls (goal 2%), {rates[sgd]['negated positives']}% of the "
            f"negated positives and {rates[sgd]['contrast']}% of the contrast sentences") in reading
    assert all(behaviour.family_rate(r, f) > 0 for r in models[sgd][:1] for f in checklist.FAMILIES)
    means = {f: rates[adam][f].split(" +- ")[0] for f in ("controls", "negated positives", "contrast")}
    assert f"against {means['controls']}, {means['negated positives']} and {means['contrast']}% for the same" in reading
    families = {f: np.mean([behaviour.family_rate(r, f) for r in models[sgd]]) for f in checklist.FAMILIES}
    assert all(families[f] > checklist.GOALS[f] for f in checklist.FAMILIES)  # "misses every family"
    assert "misses every family and dev (82.2 +- 2.7" in flat and cell(sgd, "valid") == "82.2 +- 2.7"


def test_the_head_and_embedding_reading_is_what_the_committed_json_says():
    from studies.sst import behaviour, head_plan

    models, per_seed, reading = _reading("sst2-head")
    twin, head, embed = "sst2/lstm_last_augmented", "sst2/lstm_last_augmented_mlp", "sst2/lstm_last_augmented_embed300"
    _assert_each_changes_one_thing(head_plan, {head: ",model.mlp_sizes=(150,)", embed: ",model.embed_size=300"})
    by = _assert_dev_and_test_quoted(reading, per_seed, (head, "the MLP head"), (embed, "300-wide embeddings"))
    for model, how in ((head, "with the MLP head"), (embed, "with the wider embeddings")):
        dev = by[(model, "dev")]
        assert all(r["valid"]["accuracy"] < 0.852 for r in per_seed[model])
        unit = "points " if model == head else ""
        interval = f"{dev['diff']:+.1f} [{dev['ci'][0]:+.1f}, {dev['ci'][1]:+.1f}]"
        assert f"{interval} {unit}{how}, p = {dev['p']:.2g}" in reading
    # the trials: chosen at an edge, the trial beyond it lower
    trials = committed_trial_devs("sst2_head")
    for model, edge, beyond in ((head, "0.002", "0.004"), (embed, "0.0005", "0.00025")):
        grid = {rate: dev for (m, rate), dev in trials.items() if m == model}
        assert max(grid, key=lambda r: float(grid[r])) == edge and len(grid) == 3
        outside = trials[(f"{model}_{float(beyond):g}", beyond)]
        assert float(outside) < float(grid[edge])
        written = {"0.002": "2e-3", "0.0005": "5e-4"}[edge]
        assert f"{outside} against {grid[edge]} at {written}" in reading
    seeds = [f"{100 * r['valid']['accuracy']:.1f}" for r in sorted(per_seed[head], key=lambda r: r["seed"])]
    assert f"reached {trials[(head, '0.002')]} on dev, its seed runs {seeds[0]}, {seeds[1]} and {seeds[2]}" in reading
    # the suite
    rate = lambda m, f: behaviour._cell([behaviour.family_rate(r, f) for r in models[m]])
    group = lambda m, g: behaviour._cell([r["groups"][g]["failure_rate"] for r in models[m]])
    assert (f"fails {rate(head, 'negated positives')}% of the negated positives (clausal negation "
            f"{group(head, 'negated positive: clausal')}% against {group(twin, 'negated positive: clausal')}% with the "
            f"linear head) and {rate(head, 'contrast')}% of the contrast sentences") in reading
    worst = max(behaviour.family_rate(r, "negated negatives") for r in models[embed])
    assert (f"fails {rate(embed, 'negated negatives')}% of the negated negatives (one seed {100 * worst:.1f}%) and "
            f"{rate(embed, 'contrast')}% of the contrast sentences") in reading
    tests = [t for t in behaviour.family_comparisons(models) if t["a"] in (head, embed)]
    assert len(tests) == 8 and all(t["b"] == twin and not t["separable"] for t in tests)
    assert f"Holm over the {len(behaviour.family_comparisons(models))} behaviour tests" in reading


def test_the_weight_averaging_reading_is_what_the_committed_json_says():
    from studies.sst import average_plan, behaviour, tables

    models, per_seed, reading = _reading("sst2-average")
    above, grid = "sst2/lstm_last_augmented_average_above", "sst2/lstm_last_augmented_average"
    # one change to the augmented model; the search above the grid has the grid's seeds
    base = _augmented_search()
    plan = {s.name: s for s in average_plan.get_plan()}
    assert plan[grid].config == plan[above].config == base.config + f",optim.average_decay={average_plan.DECAY}"
    assert (plan[grid].space, plan[grid].trials, plan[grid].seeds) == (base.space, base.trials, base.seeds)
    assert plan[above].seeds == base.seeds and average_plan.ABOVE == (4e-3, 8e-3)
    # the trials: 2e-3 the grid's choice, 4e-3 above it better, rerun to the same dev, 8e-3 worse
    trials = {key: float(dev) for key, dev in committed_trial_devs("sst2_average").items()}
    on_grid = {rate: dev for (m, rate), dev in trials.items() if m == grid}
    assert max(on_grid, key=on_grid.get) == "0.002"
    outside = trials[(grid + "_0.004", "0.004")]
    assert outside == trials[(above, "0.004")] > on_grid["0.002"] > trials[(above, "0.008")]
    with open(os.path.join(ROOT, "docs", "reproduction.md")) as f:
        page = f.read()
    intro = " ".join(page[page.index("### The weight-averaging axis"):page.index("<!-- sst2-average:")].split())
    assert f"({outside:.1f} against {on_grid['0.002']:.1f} on dev)" in intro
    assert f"reran to the same {outside:.1f}" in intro
    assert {r["learning_rate"] for r in per_seed[above]} == {4e-3}
    assert {r["learning_rate"] for r in per_seed[grid]} == {2e-3}
    # accuracy at the protocol's rate, and its comparison with the twin (SST family)
    cell = lambda model, split: behaviour._cell([r[split]["accuracy"] for r in per_seed[model]])
    assert f"dev is {cell(above, 'valid')}: under the goal.** Test is {cell(above, 'test')}." in reading
    by = {(t["a"], t["column"]): t for t in tables.comparisons(per_seed)}
    dev, test = by[(above, "dev")], by[(above, "test")]
    assert not dev["separable"] and not test["separable"]
    assert f"{dev['diff']:+.1f} [{dev['ci'][0]:+.1f}, {dev['ci'][1]:+.1f}] points (p = {dev['p']:.2g})" in reading
    assert f"test by {test['diff']:+.1f} [{test['ci'][0]:+.1f}, {test['ci'][1]:+.1f}]" in reading
    assert f"Holm over the {len(tables.comparisons(per_seed))} SST comparisons" in reading
    # the suite: every seed within every goal, the lowest "although" of any model
    rate = lambda records, f: behaviour._cell([behaviour.family_rate(r, f) for r in records])
    assert all(behaviour.family_rate(r, f) <= checklist.GOALS[f] for r in models[above] for f in checklist.FAMILIES)
    mine = {f: rate(models[above], f) for f in checklist.FAMILIES}
    assert (f"Controls {mine['controls']}%, negated positives {mine['negated positives']}%, "
            f"negated negatives {mine['negated negatives']}%, contrast {mine['contrast']}%") in reading
    although = {m: np.mean([r["groups"]["contrast: although"]["failure_rate"] for r in rs]) for m, rs in models.items()}
    assert min(although, key=although.get) == above
    lowest = behaviour._cell([r["groups"]["contrast: although"]["failure_rate"] for r in models[above]])
    assert f"(\"although\" {lowest}%, the lowest" in reading
    family = {(t["a"], t["column"]): t for t in behaviour.family_comparisons(models)}
    mine = [t for (a, _), t in family.items() if a == above]
    assert len(mine) == 4 and not any(t["separable"] for t in mine)
    contrast = family[(above, "contrast")]
    assert f"(contrast {contrast['diff']:+.1f} points, p = {contrast['p']:.2g})" in reading
    assert f"Holm over the {len(behaviour.family_comparisons(models))} behaviour tests" in reading
    # the grid's rate, superseded: its dev, test (the highest of the SST models) and suite
    assert f"reach dev {cell(grid, 'valid')} and test {cell(grid, 'test')}, the highest test accuracy" in reading
    test_means = {m: np.mean([r["test"]["accuracy"] for r in rs]) for m, rs in per_seed.items()}
    assert max(test_means, key=test_means.get) == grid
    sentences = [round(r["valid"]["accuracy"] * behaviour.DEV_SENTENCES) for r in per_seed[grid]]
    total = 3 * behaviour.DEV_SENTENCES
    assert sum(sentences) - 1 == math.floor(0.852 * total) + 1  # one more than the fewest above 85.2%
    assert (f"Their dev mean, {100 * sum(sentences) / total:.2f}, is {sum(sentences):,} of the {total:,} dev sentences"
            ) in reading
    superseded = committed.results("sst2_average", "behaviour.json")["models"][grid]
    assert all(behaviour.family_rate(r, f) <= checklist.GOALS[f] for r in superseded for f in checklist.FAMILIES)
    assert (f"(controls {rate(superseded, 'controls')}%, negated positives {rate(superseded, 'negated positives')}%, "
            f"negated negatives {rate(superseded, 'negated negatives')}%, contrast {rate(superseded, 'contrast')}%)"
            ) in reading
    assert [round(r["dev"], 12) for r in superseded] == [round(r["valid"]["accuracy"], 12) for r in per_seed[grid]]
    # seed 0 against seeds 1-3
    means = {m: 100 * np.mean([r["valid"]["accuracy"] for r in per_seed[m]]) for m in (grid, above)}
    assert f"4e-3 beat 2e-3 by {outside - on_grid['0.002']:.1f} points" in reading
    assert f"2e-3 beat 4e-3 by {means[grid] - means[above]:.1f} points on average" in reading
    devs = [r["valid"]["accuracy"] for r in per_seed[grid]]
    spread = 100 * (max(devs) - min(devs))
    assert f"spread over {spread:.1f} points" in reading


def test_the_held_out_seeds_reading_is_what_the_committed_json_says():
    from studies.sst import average_plan, behaviour

    _, per_seed, reading = _reading("sst2-average")
    grid, above, held_out = ("sst2/lstm_last_augmented_average", "sst2/lstm_last_augmented_average_above",
                             "sst2/lstm_last_augmented_average_held_out")
    # the rate: the better mean dev over seeds 0-3, seed 0 being each rate's trial (sst.md)
    trials = {key: float(dev) for key, dev in committed_trial_devs("sst2_average").items()}
    mean = lambda seed0, model: (seed0 + sum(100 * r["valid"]["accuracy"] for r in per_seed[model])) / 4
    at_2e3, at_4e3 = mean(trials[(grid, "0.002")], grid), mean(trials[(above, "0.004")], above)
    assert at_2e3 > at_4e3 and average_plan.HELD_OUT_RATE == 2e-3
    with open(os.path.join(ROOT, "docs", "reproduction.md")) as f:
        page = " ".join(f.read().split())
    assert f"(2e-3: {at_2e3:.1f} against {at_4e3:.1f} for 4e-3) on seeds 4, 5, 6" in page
    # seeds 4, 5, 6, and the trial that reran seed 3 to the same dev
    assert sorted(r["seed"] for r in per_seed[held_out]) == [4, 5, 6]
    assert {r["learning_rate"] for r in per_seed[held_out]} == {2e-3}
    seed3 = next(r for r in per_seed[grid] if r["seed"] == 3)
    assert trials[(held_out, "0.002")] == round(100 * seed3["valid"]["accuracy"], 1)
    assert f"reruns seed 3 and gave the same dev, {trials[(held_out, '0.002')]:.1f}." in page
    # what they reach, and the suite on them
    cell = lambda model, split: behaviour._cell([r[split]["accuracy"] for r in per_seed[model]])
    assert f"the seeds 4, 5, 6 reach dev {cell(held_out, 'valid')} and test {cell(held_out, 'test')}" in reading
    assert f"Held-out seeds: {cell(held_out, 'valid')} on dev" in reading
    assert np.mean([r["valid"]["accuracy"] for r in per_seed[held_out]]) < 0.852
    suite = committed.results("sst2_average", "behaviour.json")["models"][held_out]
    assert all(behaviour.family_rate(r, f) <= checklist.GOALS[f] for r in suite for f in checklist.FAMILIES)
    rates = {f: behaviour._cell([behaviour.family_rate(r, f) for r in suite]) for f in checklist.FAMILIES}
    assert (f"(controls {rates['controls']}%, negated positives {rates['negated positives']}%, negated negatives "
            f"{rates['negated negatives']}%, contrast {rates['contrast']}%)") in reading
    assert (f"it reaches {cell(above, 'valid')} at the rate its tuning chose and {cell(held_out, 'valid')} on held-out "
            f"seeds at the grid's rate; the {cell(grid, 'valid')} of that rate's first three seeds") in page
    with open(os.path.join(ROOT, "docs", "findings.md")) as f:
        findings = " ".join(f.read().split())
    assert f"(averaged, on three held-out seeds, dev {cell(held_out, 'valid')})" in findings
    assert (f"(85.6 +- 0.5 and {cell(held_out, 'test')}, against {cell('sst2/lstm_last_augmented', 'test')} for the "
            f"augmented model without averaging)") in reading and cell(grid, "test") == "85.6 +- 0.5"


def test_the_batch_and_weight_decay_reading_is_what_the_committed_json_says():
    from studies.sst import batch_decay_plan, behaviour, tables

    models, per_seed, reading = _reading("sst2-batch-decay")
    twin, batch, decay = "sst2/lstm_last_augmented", "sst2/lstm_last_augmented_batch64", "sst2/lstm_last_augmented_decay"
    _assert_each_changes_one_thing(batch_decay_plan, {batch: ",data.batch_size=64",
                                                      decay: f",optim.weight_decay={batch_decay_plan.WEIGHT_DECAY}"})
    base = _augmented_search()
    # both chose 1e-3, inside the grid (so no trial beyond an edge), and no seed reached the goal (no held-out seeds)
    trials = {key: float(dev) for key, dev in committed_trial_devs("sst2_batch_decay").items()}
    for model in (batch, decay):
        grid = {rate: dev for (m, rate), dev in trials.items() if m == model}
        assert len(grid) == 3 and max(grid, key=grid.get) == "0.001"
        assert {r["learning_rate"] for r in per_seed[model]} == {1e-3}
        assert all(r["valid"]["accuracy"] < 0.852 for r in per_seed[model])
    assert len(trials) == 6 and set(per_seed) >= {batch, decay} and all(len(per_seed[m]) == 3 for m in (batch, decay))
    by = _assert_dev_and_test_quoted(reading, per_seed, (batch, "batches of 64"), (decay, "weight decay"))
    for model, how in ((batch, "points with batches of 64"), (decay, "with weight decay")):
        dev = by[(model, "dev")]
        assert f"{dev['diff']:+.1f} [{dev['ci'][0]:+.1f}, {dev['ci'][1]:+.1f}] {how}" in reading
        assert f"(p = {dev['p']:.2g})" in reading
    assert f"Holm over the {len(tables.comparisons(per_seed))} SST comparisons" in reading
    # weight decay's seed-0 trial against its seed runs
    seeds = [f"{100 * r['valid']['accuracy']:.1f}" for r in sorted(per_seed[decay], key=lambda r: r["seed"])]
    assert trials[(decay, "0.001")] == max(trials.values())
    assert (f"trial at 1e-3 reached {trials[(decay, '0.001')]:.1f} on dev, the best of the round's grids; its seed runs "
            f"reached {seeds[0]}, {seeds[1]} and {seeds[2]}") in reading
    # the suite: seeds within every goal, the family rates, the worst contrast seed
    passing = lambda m: sum(all(behaviour.family_rate(r, f) <= checklist.GOALS[f] + 1e-12 for f in checklist.FAMILIES)
                            for r in models[m])
    assert (passing(batch), passing(decay)) == (2, 0)
    rate = lambda m, f: behaviour._cell([behaviour.family_rate(r, f) for r in models[m]])
    assert (f"in two seeds of three (controls {rate(batch, 'controls')}%, negated positives "
            f"{rate(batch, 'negated positives')}%, negated negatives {rate(batch, 'negated negatives')}%, contrast "
            f"{rate(batch, 'contrast')}%; one seed fails {100 * max(behaviour.family_rate(r, 'contrast') for r in models[batch]):.1f}%"
            ) in reading
    assert (f"decay in none (negated positives {rate(decay, 'negated positives')}%, negated negatives "
            f"{rate(decay, 'negated negatives')}%, contrast {rate(decay, 'contrast')}%)") in reading
    tests = [t for t in behaviour.family_comparisons(models) if t["a"] in (batch, decay)]
    assert len(tests) == 8 and all(t["b"] == twin and not t["separable"] for t in tests)
    assert f"Holm over the {len(behaviour.family_comparisons(models))} behaviour tests" in reading
    # stopping: one run at the cap (12,000 steps), four evaluations (of 500 steps) after its best, patience six
    at_cap = [r for m in (batch, decay) for r in per_seed[m] if r["step"] == 12000]
    assert len(at_cap) == 1 and at_cap[0] in per_seed[decay] and (12000 - at_cap[0]["best_step"]) // 500 == 4
    assert "Five of the six seed runs stopped by patience. One seed of the weight-decay model" in reading
    assert "12,000-step cap, four evaluations after its best (patience is six)" in reading
    assert "train.patience=6" in base.config and "steps=12000" in base.config
    # where this leaves the goal: the models within every goal in each seed, at the rates their tuning chose
    axes = reading.split("Thirteen axes have now been tried, each with its own rate grid: ")[1].split(".")[0]
    assert len(axes.replace(" and ", ", ").split(", ")) == 13
    passing_devs = [np.mean([100 * r["valid"]["accuracy"] for r in per_seed[m]]) for m in models
                    if len(models[m]) == passing(m)]
    assert f"sits at dev {min(passing_devs):.1f}-{max(passing_devs):.1f} at the rate its tuning chose" in reading
    assert max(passing_devs) < 85.2
    # the SST family's pairs: the three of the first round, the rest from the rounds below
    with open(os.path.join(ROOT, "docs", "reproduction.md")) as f:
        page = " ".join(f.read().split())
    words = {11: "eleven", 13: "thirteen"}
    assert f"({len(tables.COMPARED)} pairs of models x 6 columns)" in page
    assert f"The last {words[len(tables.COMPARED) - 3]} pairs are from the rounds below" in page


def test_the_held_out_measurement_of_the_documented_model_is_what_the_committed_json_says():
    from studies.sst import behaviour, select_plan

    _, per_seed, reading = _reading("sst2-select")
    twin, held_out = "sst2/lstm_last_augmented", "sst2/lstm_last_augmented_held_out"
    at = {0.0005: "sst2/lstm_last_augmented_at_0.0005", 0.001: "sst2/lstm_last_augmented_at_0.001"}
    # the documented model's config at the grid's other rates, and on the held-out seeds
    base = _augmented_search()
    plan = {s.name: s for s in select_plan.get_plan()}
    assert all(plan[name].config == base.config and plan[name].seeds == 3 for name in at.values())
    assert plan[held_out].config == base.config + ",train.seed=3" and plan[held_out].seeds == 3
    # each rerun of seed 0 gave the grid trial's dev; the held-out search's trial reran seed 3
    grid = committed_trial_devs("sst2_augment")
    rerun = committed_trial_devs("sst2_select")
    for rate, name in at.items():
        assert rerun[(name, f"{rate:g}")] == grid[(twin, f"{rate:g}")]
    seed3 = next(r for r in per_seed[twin] if r["seed"] == 3)
    assert float(rerun[(held_out, "0.002")]) == round(100 * seed3["valid"]["accuracy"], 1)
    # the rate: the best mean dev over seeds 0-3
    mean = lambda rate, model: (float(grid[(twin, f"{rate:g}")]) + sum(100 * r["valid"]["accuracy"]
                                                                       for r in per_seed[model])) / 4
    means = {rate: mean(rate, model) for rate, model in {**at, 0.002: twin}.items()}
    assert max(means, key=means.get) == select_plan.HELD_OUT_RATE == select_plan.CHOSEN_ON_SEED_0
    assert (f"{means[0.0005]:.1f} at 5e-4, {means[0.001]:.1f}\n  at 1e-3 and {means[0.002]:.1f} at 2e-3".replace("\n  ", " ")
            ) in reading
    # the held-out seeds: dev, test, each under 85.2, and the gap to seeds 1-3
    assert sorted(r["seed"] for r in per_seed[held_out]) == [4, 5, 6]
    assert {r["learning_rate"] for r in per_seed[held_out]} == {2e-3}
    assert all(r["valid"]["accuracy"] < 0.852 for r in per_seed[held_out])
    cell = lambda model, split: behaviour._cell([r[split]["accuracy"] for r in per_seed[model]])
    assert (f"Seeds 4, 5, 6 reach dev {cell(held_out, 'valid')} and test {cell(held_out, 'test')}, against "
            f"{cell(twin, 'valid')} and {cell(twin, 'test')} on seeds 1, 2, 3.") in reading
    dev = lambda model: 100 * np.mean([r["valid"]["accuracy"] for r in per_seed[model]])
    assert f"The held-out mean is about {dev(twin) - dev(held_out):.1f} points under that of seeds 1-3" in reading
    averaged = ("sst2/lstm_last_augmented_average", "sst2/lstm_last_augmented_average_held_out")
    assert f"({dev(averaged[0]):.1f} there, {dev(averaged[1]):.1f} on its held-out seeds)" in reading
    # the suite on the held-out seeds
    suite = committed.results("sst2_select", "behaviour.json")["models"][held_out]
    assert [round(r["dev"], 12) for r in suite] == [round(r["valid"]["accuracy"], 12) for r in per_seed[held_out]]
    within = [all(behaviour.family_rate(r, f) <= checklist.GOALS[f] + 1e-12 for f in checklist.FAMILIES) for r in suite]
    assert sum(within) == 2
    rates = {f: behaviour._cell([behaviour.family_rate(r, f) for r in suite]) for f in checklist.FAMILIES}
    worst = 100 * max(behaviour.family_rate(r, "contrast") for r in suite)
    assert (f"Controls {rates['controls']}%, negated positives {rates['negated positives']}%, negated negatives "
            f"{rates['negated negatives']}%, contrast {rates['contrast']}%; one seed fails {worst:.1f}% of the "
            f"contrast sentences") in reading
    failing = suite[within.index(False)]
    assert [f for f in checklist.FAMILIES if behaviour.family_rate(failing, f) > checklist.GOALS[f]] == ["contrast"]
    # stopping: one seed at the 12,000-step cap, five evaluations of 500 steps after its best
    at_cap = [r for r in per_seed[held_out] if r["step"] == 12000]
    assert len(at_cap) == 1 and (12000 - at_cap[0]["best_step"]) // 500 == 5
    # the summaries say the same
    with open(os.path.join(ROOT, "docs", "reproduction.md")) as f:
        page = " ".join(f.read().split())
    with open(os.path.join(ROOT, "docs", "findings.md")) as f:
        findings = " ".join(f.read().split())
    assert f"reaches dev {cell(held_out, 'valid')} and is within every family's goal in two seeds of three" in reading
    assert f"and {dev(held_out):.1f} on three held-out seeds with its rate chosen on four" in page
    assert f"that model reaches {cell(held_out, 'valid')} (\"The documented model's rate" in page
    assert (f"it reaches dev {cell(held_out, 'valid')} and is within every family's goal in two of them (one fails "
            f"{worst:.1f}% of the contrast sentences") in page
    assert f"the same LSTM reaches dev {cell(held_out, 'valid')} and is within every behaviour goal in two of them" in findings


def test_the_reading_of_flaxs_single_runs_is_what_the_committed_json_says():
    _, per_seed, _ = _reading("sst2-select")
    six = per_seed["sst2/lstm_last_augmented"] + per_seed["sst2/lstm_last_augmented_held_out"]
    assert sorted(r["seed"] for r in six) == [1, 2, 3, 4, 5, 6] and {r["learning_rate"] for r in six} == {2e-3}
    devs = [100 * r["valid"]["accuracy"] for r in six]
    with open(os.path.join(ROOT, "docs", "reproduction.md")) as f:
        page = " ".join(f.read().split())
    above = sum(d > 85.2 for d in devs)
    assert (f"range from {min(devs):.1f} to {max(devs):.1f} on dev, mean {np.mean(devs):.1f}; "
            f"{['none', 'one', 'two'][above]} of the six is above 85.2") in page
