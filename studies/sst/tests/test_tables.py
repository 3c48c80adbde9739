"""The SST study's tables (studies.sst.tables): each seed run broken down into negated and other sentences."""

import json
import os

import pytest

from studies.sst import tables


def test_negation_breakdown_other_accuracy_from_counts(tmp_path):
    # Given a finished run with 10 test sentences, 4 of them negated: 7 right overall, 2 of the negated
    workdir = str(tmp_path / "bow__seed3")
    os.makedirs(workdir)
    json.dump({"train": {"seed": 3}, "optim": {"learning_rate": 0.002}}, open(os.path.join(workdir, "config.json"), "w"))
    json.dump({"test": {"accuracy": 0.7, "negated_accuracy": 0.5}, "wall_time_sec": 12.0},
              open(os.path.join(workdir, "results.json"), "w"))
    unfinished = str(tmp_path / "bow__seed4")
    os.makedirs(unfinished)
    # When it is broken down, Then the other 6 sentences hold the other 5 right answers
    (record,) = tables.negation_breakdown([workdir, unfinished], splits=("test",), counts={"test": (10, 4)})
    assert (record["group"], record["seed"], record["learning_rate"]) == ("bow", 3, 0.002)
    assert record["test"]["other_accuracy"] == pytest.approx(5 / 6)
    assert record["test"]["negated"] == 4 and record["wall_time_sec"] == 12.0


def test_negation_markdown_means_over_seeds_in_percent():
    def record(acc, neg, other, wall):
        return {"valid": {"accuracy": acc, "negated_accuracy": neg},
                "test": {"accuracy": acc, "negated_accuracy": neg, "other_accuracy": other}, "wall_time_sec": wall}

    text = tables.negation_markdown({"bilstm": [record(0.84, 0.78, 0.86, 100.0), record(0.86, 0.80, 0.90, 120.0)]})
    row = text.splitlines()[2]
    # dev / test 85.0 +- 1.4, negated 79.0 +- 1.4, other 88.0 +- 2.8, gap (8, 10) -> 9.0 +- 1.4, 110 s
    assert row == ("| bilstm | 2 | 85.0 +- 1.4 | 85.0 +- 1.4 | 79.0 +- 1.4 | 88.0 +- 2.8 | 9.0 +- 1.4 "
                   "| 79.0 +- 1.4 | 110 |")


def test_negated_counts_on_small_sst_trees(tmp_path):
    from tests.test_data_files import sst_config, write_trees

    write_trees(tmp_path / "trees")
    assert tables.negated_counts(sst_config(tmp_path), "test") == (2, 1)  # "no fun" holds a negator
    assert tables.negated_counts(sst_config(tmp_path), "train") == (3, 1)




SST_PLAN = '''
from rnnlab.experiments.plan import Search
def get_plan():
    return [Search("sst2/bow", "configs/sst.py:glue,bow", "valid/accuracy:max",
                   "optim.learning_rate=grid(0.001, 0.002)", trials=2, seeds=2)]
'''


def test_sst_tables_break_each_seed_run_into_negated_and_other_sentences(tmp_path):
    from tests.test_data_files import sst_config, write_trees

    write_trees(tmp_path / "trees")
    plan = tmp_path / "plan.py"
    plan.write_text(SST_PLAN)
    folder = tmp_path / "runs" / "sst2" / "bow"
    results = {"valid": {"accuracy": 0.5, "negated_accuracy": 0.0}, "test": {"accuracy": 0.5, "negated_accuracy": 1.0},
               "step": 10, "best_step": 5, "wall_time_sec": 3.0}
    for name, seed in (("trials/trial_000", 0), ("best__seed1", 1), ("best__seed2", 2)):
        (folder / name).mkdir(parents=True)
        (folder / name / "config.json").write_text(json.dumps(
            {"train": {"seed": seed}, "optim": {"learning_rate": 0.002}, "data": sst_config(tmp_path)}))
        (folder / name / "results.json").write_text(json.dumps(results))
    models = tables.write_sst_tables(str(plan), str(tmp_path / "runs"), str(tmp_path / "out"))
    # the 2 test sentences, 1 negated ("no fun"): negated right, so the other one is wrong
    assert [r["seed"] for r in models["sst2/bow"]] == [1, 2]
    assert models["sst2/bow"][0]["test"]["other_accuracy"] == 0.0
    text = (tmp_path / "out" / "sst.md").read_text()
    assert "| sst2/bow | 2 | 50.0 +- 0.0 | 50.0 +- 0.0 | 100.0 +- 0.0 | 0.0 +- 0.0 | -100.0 +- 0.0 |" in text
    assert "| sst2/bow | 0.002 | 50.0 | 50.0 | 10 | 5 | 3 |" in text
    assert json.loads((tmp_path / "out" / "per_seed.json").read_text())["sst2/bow"][1]["workdir"] == \
        "sst2/bow/best__seed2"


def test_comparisons_are_welch_tests_with_holm_over_the_family():
    from scipy import stats as scipy_stats

    def record(valid, test, negated, other):
        return {"valid": {"accuracy": valid, "negated_accuracy": negated},
                "test": {"accuracy": test, "negated_accuracy": negated, "other_accuracy": other}}

    models = {"sst2/lstm": [record(0.84, 0.83, 0.80, 0.84), record(0.85, 0.84, 0.81, 0.85), record(0.83, 0.83, 0.79, 0.84)],
              "sst2/bow": [record(0.80, 0.82, 0.75, 0.84), record(0.81, 0.83, 0.78, 0.85), record(0.80, 0.82, 0.76, 0.84)]}
    tests = tables.comparisons(models, pairs=(("sst2/lstm", "sst2/bow"),))
    assert [t["column"] for t in tests] == list(tables.COLUMNS)
    dev = tests[0]
    reference = scipy_stats.ttest_ind([84, 85, 83], [80, 81, 80], equal_var=False)
    assert dev["p"] == pytest.approx(reference.pvalue, rel=1e-6) and dev["diff"] == pytest.approx(11 / 3)
    # Holm over the 6: the smallest p times 6, and no adjusted p below its raw one
    assert min(t["p_holm"] for t in tests) == pytest.approx(6 * min(t["p"] for t in tests))
    assert all(t["p_holm"] >= t["p"] for t in tests)


SST2_FOLDERS = ("sst2", "sst2_pooling", "sst2_size", "sst2_phrases", "sst2_augment", "sst2_sgd", "sst2_head",
                "sst2_average", "sst2_batch_decay", "sst2_select")  # docs/results/<folder>/per_seed.json of each round


def committed_sst2_models() -> dict:
    """``{model: per-seed records}`` of every SST-2 round's committed ``per_seed.json``: the accuracy family."""
    from tests import committed

    return {name: records for folder in SST2_FOLDERS for name, records in committed.results(folder, "per_seed.json").items()}


def trial_devs(text: str) -> dict[tuple[str, str], str]:
    """``{(model, lr): dev}`` of the learning-rate trials table in ``text`` (an ``sst.md`` or its page block),
    each dev accuracy as the table writes it; the seed-run table's rows (9 cells) are left out."""
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 7 and cells[0].startswith("sst2/"):
            rows[(cells[0], cells[1])] = cells[2]
    return rows


def committed_trial_devs(folder: str) -> dict[tuple[str, str], str]:
    """:func:`trial_devs` of a round's committed ``docs/results/<folder>/sst.md``."""
    from tests import committed

    with open(os.path.join(committed.ROOT, "docs", "results", folder, "sst.md")) as f:
        return trial_devs(f.read())


def test_reproduction_sst_tests_block_is_what_the_code_makes_of_the_committed_json():
    from tests import committed

    made = tables.write_comparisons([os.path.join(committed.ROOT, "docs", "results", folder, "per_seed.json")
                                     for folder in SST2_FOLDERS])
    assert committed.block("reproduction.md", "sst2-tests") == made.strip()


def test_first_round_held_out_drops_each_groups_selection_seed_and_matches_the_page():
    from studies.sst import tables
    from tests import committed

    records = committed.results("sst", "per_seed.json")
    kept = tables.held_out(records)
    assert [r["seed"] for r in kept["sst-bow+lr=5e-4"]] == [1, 2]
    assert [r["seed"] for r in kept["sst-lstm+lr=2e-3"]] == [1, 2]
    assert [r["seed"] for r in kept["sst-bilstm+phrases+lr=1e-3"]] == [0, 1, 2]  # its rate was not searched
    assert committed.block("reproduction.md", "sst-first-held-out") == tables.negation_markdown(kept).strip()


def test_the_prose_quotes_the_holm_family_of_the_committed_per_seed_json():
    from tests import committed

    models = committed_sst2_models()
    tests = tables.comparisons(models)
    by = {(t["a"], t["b"], t["column"]): t for t in tests}
    quoted = lambda a, b, column: f"p_holm = {by[(a, b, column)]['p_holm']:.2g}"
    with open(os.path.join(committed.ROOT, "docs", "reproduction.md")) as f:
        page = f.read()
    assert f"The {len(tests)} comparisons of the table above ({len(tables.COMPARED)} pairs" in page
    assert quoted("sst2/lstm", "sst2/bow", "test, negated") + ")" in page
    assert quoted("sst2/lstm", "sst2/bow", "gap other - negated") + ": not" in page
    assert quoted("sst2/bilstm", "sst2/bow", "dev") + "), on the set that selected it" in page
    assert [(t["a"], t["b"], t["column"]) for t in tests if t["separable"]] == [("sst2/bilstm", "sst2/bow", "dev")]
    pooling = [by[("sst2/bilstm_last", "sst2/bilstm", column)] for column in ("dev", "test")]  # "pooling ... axes"
    assert (f"(dev p = {pooling[0]['p']:.2g}, test p = {pooling[1]['p']:.2g}, Holm over the {len(tests)} SST\n"
            f"  comparisons: p_holm = {min(t['p_holm'] for t in pooling):.2g})") in page
    assert not any(t["separable"] for t in tests if t["a"] == "sst2/lstm_last")  # "not separable from the last-step BiLSTM"
    assert f"about {0.05 / len(tests):.1g} to separate in a family of {len(tests)}" in " ".join(page.split())
    with open(os.path.join(committed.ROOT, "docs", "findings.md")) as f:
        findings = f.read()
    assert f"over the {len(tests)} SST comparisons\n    ({quoted('sst2/lstm', 'sst2/bow', 'gap other - negated')};" \
        in findings


@pytest.mark.parametrize("block, folder", [("sst2", "sst2"), ("sst2-pooling", "sst2_pooling"), ("sst2-size", "sst2_size"),
                                           ("sst2-phrases", "sst2_phrases"), ("sst2-augment", "sst2_augment"), ("sst2-sgd", "sst2_sgd"),
                                           ("sst2-head", "sst2_head"), ("sst2-average", "sst2_average"),
                                           ("sst2-batch-decay", "sst2_batch_decay"), ("sst2-select", "sst2_select")])
def test_the_plan_tables_in_the_page_are_the_committed_sst_md_made_from_per_seed_json(block, folder):
    from tests import committed

    with open(os.path.join(committed.ROOT, "docs", "results", folder, "sst.md")) as f:
        made = f.read()
    assert committed.block("reproduction.md", block) == made.strip()
    assert tables.negation_markdown(committed.results(folder, "per_seed.json")) in made


def test_every_quoted_size_of_the_sst_and_behaviour_families_is_the_committed_one():
    import re

    from studies.sst import behaviour
    from tests import committed

    sst_tests = len(tables.comparisons(committed_sst2_models()))
    models = committed.results("sst2", "behaviour.json")["models"]
    behaviour_tests = len(behaviour.family_comparisons(models))
    for page in ("reproduction.md", "findings.md"):
        with open(os.path.join(committed.ROOT, "docs", page)) as f:
            text = " ".join(f.read().split())
        assert {int(n) for n in re.findall(r"(\d+) SST comparisons", text)} <= {sst_tests}, page
        assert {int(n) for n in re.findall(r"(\d+) behaviour tests", text)} <= {behaviour_tests}, page


def test_the_trials_caption_names_the_held_out_seeds_where_a_plan_has_them():
    from studies.sst import average_plan, plan, select_plan
    from tests import committed

    assert tables._trials_caption(plan.get_plan(), True) == (
        "seed 0; the rate with the best dev accuracy was rerun with seeds 1, 2, 3")
    assert tables._trials_caption(plan.get_plan(), False) == "seed 0; no seed runs"
    for module, folder in ((average_plan, "sst2_average"), (select_plan, "sst2_select")):
        caption = tables._trials_caption(module.get_plan(), True)
        assert caption.endswith("or the held-out 4, 5, 6") and "train.seed, 3;" in caption
        held_out = [r for name, records in committed.results(folder, "per_seed.json").items() if name.endswith("_held_out")
                    for r in records]
        assert sorted(r["seed"] for r in held_out) == [4, 5, 6]
        with open(os.path.join(committed.ROOT, "docs", "results", folder, "sst.md")) as f:
            assert f"Learning-rate trials ({caption}):" in f.read()
