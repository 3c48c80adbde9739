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
