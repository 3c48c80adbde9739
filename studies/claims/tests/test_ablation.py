"""The claims study's gate-ablation marks (studies.claims.ablation), on the toy plan output of
tests/test_tuned_report.py."""

import json
import os

from rnnlab.analysis import tuned_rows
from rnnlab.experiments import plan as plan_lib
from studies.claims import ablation
from tests.test_tuned_report import plan_output  # noqa: F401 (the fixture the tests below take)


def test_ablation_marks_breaks_hurts_equal_helps(plan_output):  # noqa: F811
    plan_path, out = plan_output
    plan = plan_lib.load_plan(plan_path)
    tasks = tuned_rows.tuned_tables(plan, out, tuned_rows.load_targets(plan_path))
    table = ablation.ablation_table(plan, tasks)
    assert table["tasks"] == ["toy"]
    marks = {row["model"]: row["cells"]["toy"]["mark"] for row in table["rows"]}
    assert list(marks) == ["cell=lstm", "cell=lstm_nfg", "cell=lstm_cifg", "cell=lstm+fb=3.0", "cell=gru",
                           "cell=gru_nug"]
    assert marks == {"cell=lstm": "ref", "cell=lstm_nfg": "breaks", "cell=lstm_cifg": "=",
                     "cell=lstm+fb=3.0": "helps", "cell=gru": "ref", "cell=gru_nug": "hurts"}
    md = ablation.ablation_markdown(table, tasks)
    assert "| cell=lstm_nfg | 0.600 +- 0.020, 0/3 **breaks** |" in md
    assert "| cell=lstm (intact) | 0.987 +- 0.006, 3/3 |" in md
    assert "**breaks** = significantly worse" in md  # the rule is printed under the table


def test_ablation_mark_for_a_lower_is_better_metric():
    # mse: a variant with lower mse on every seed helps; a higher one that misses the target breaks
    base = {"state": "done", "mode": "min", "target": {"target": "valid/mse<=0.01", "n": 3, "count": 0}}
    lower = {**base, "vs_reference": {"diff": -0.02, "ci": [-0.03, -0.01], "separable": True}}
    higher = {**base, "vs_reference": {"diff": 0.02, "ci": [0.01, 0.03], "separable": True}}
    assert ablation.ablation_mark(lower) == "helps"
    assert ablation.ablation_mark(higher) == "breaks"
    assert ablation.ablation_mark({**higher, "target": {"target": "valid/mse<=0.01", "n": 3, "count": 2}}) == "hurts"
    assert ablation.ablation_mark({**higher, "state": "running"}) == "running"


def test_write_ablation_files(plan_output, tmp_path):  # noqa: F811
    plan_path, out = plan_output
    table = ablation.write_ablation(plan_path, out, str(tmp_path / "report"))
    assert sorted(os.listdir(tmp_path / "report")) == ["ablation.json", "ablation.md"]
    data = json.load(open(tmp_path / "report" / "ablation.json"))
    assert data["rows"][1]["cells"]["toy"]["mark"] == table["rows"][1]["cells"]["toy"]["mark"] == "breaks"
