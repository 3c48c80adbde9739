"""The claims study's gate-ablation marks (studies.claims.ablation): on the toy plan output of
tests/test_tuned_report.py, on hand-made rows, and on the committed tuned.json (text equals JSON)."""

import json
import math
import os

import pytest

from rnnlab.analysis import tuned_rows
from rnnlab.analysis.significance import holm
from rnnlab.experiments import plan as plan_lib
from studies.claims import ablation
from tests.test_tuned_report import plan_output  # noqa: F401 (the fixture the tests below take)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
TUNED = os.path.join(ROOT, "docs", "results", "tuned")


def _tasks(plan_path, out):
    return tuned_rows.tuned_tables(plan_lib.load_plan(plan_path), out, tuned_rows.load_targets(plan_path))


def test_ablation_marks_with_holm_over_the_table(plan_output):  # noqa: F811
    tasks = _tasks(*plan_output)
    table = ablation.ablation_table(tasks)
    assert table["tasks"] == ["toy"] and table["tests"] == 4  # the four variants: one family
    marks = {row["model"]: row["cells"]["toy"]["mark"] for row in table["rows"]}
    assert list(marks) == ["cell=lstm", "cell=lstm_nfg", "cell=lstm_cifg", "cell=lstm+fb=3.0", "cell=gru",
                           "cell=gru_nug"]
    assert marks == {"cell=lstm": "ref", "cell=lstm_nfg": "breaks", "cell=lstm_cifg": "n.s.",
                     "cell=lstm+fb=3.0": "helps", "cell=gru": "ref", "cell=gru_nug": "hurts"}
    # each cell's p_holm is Holm's adjustment of the four raw p-values
    rows = [r for r in table["rows"] if r["reference"]]
    raw = [r["cells"]["toy"]["vs_reference"]["p"] for r in rows]
    assert [r["cells"]["toy"]["p_holm"] for r in rows] == pytest.approx([h["p_holm"] for h in holm(raw)])
    md = ablation.ablation_markdown(table, tasks)
    assert "| cell=lstm_nfg | 0.600 +- 0.020, 0/3 **breaks** (p_holm " in md
    assert "| cell=lstm (intact) | 0.987 +- 0.006, 3/3 |" in md
    assert "Holm-Bonferroni" in md and "This table: 4 tests." in md  # the rule under the table


def _row(diff, count, hit_cap=(False, False, False), state="done", mode="min"):
    return {"state": state, "mode": mode, "hit_cap": list(hit_cap), "vs_reference": {"diff": diff, "p": 0.01},
            "target": {"target": "valid/mse<=0.01", "n": 3, "count": count}}


def test_ablation_mark_rule():
    # mse: lower is better
    assert ablation.ablation_mark(_row(-0.02, 3), 0.01) == "helps"
    assert ablation.ablation_mark(_row(0.02, 0), 0.01) == "breaks"  # worse, misses the target in 3 of 3
    assert ablation.ablation_mark(_row(0.02, 2), 0.01) == "hurts"  # worse, reaches it in most seeds
    assert ablation.ablation_mark(_row(0.02, 0, (False, True, False)), 0.01) == "capped"  # a seed at its cap
    assert ablation.ablation_mark(_row(0.02, 0), 0.2) == "n.s."  # not separable after Holm
    reference = {"target": {"target": "valid/mse<=0.01", "n": 3, "count": 3}}
    assert ablation.ablation_mark(_row(0.02, 1), 0.2, reference) == "n.s., fails 2/3"
    assert ablation.ablation_mark(_row(0.02, 1, state="running"), 0.01) == "running"
    assert ablation.ablation_mark(_row(math.nan, 1), 0.01) == "-"
    no_target = {**_row(0.02, 0), "target": {"target": None, "n": 0, "count": 0}}
    assert ablation.ablation_mark(no_target, 0.01) == "worse"


def test_write_ablation_files(plan_output, tmp_path):  # noqa: F811
    tasks = _tasks(*plan_output)
    table = ablation.write_ablation(tasks, str(tmp_path / "report"))
    assert sorted(os.listdir(tmp_path / "report")) == ["ablation.json", "ablation.md"]
    data = json.load(open(tmp_path / "report" / "ablation.json"))
    assert data["rows"][1]["cells"]["toy"]["mark"] == table["rows"][1]["cells"]["toy"]["mark"] == "breaks"


def test_committed_ablation_table_is_what_the_code_makes_of_the_committed_tuned_json(tmp_path):
    tasks = ablation.tasks_of(tuned=os.path.join(TUNED, "tuned.json"))
    ablation.write_ablation(tasks, str(tmp_path))
    for name in ("ablation.md", "ablation.json"):
        with open(os.path.join(TUNED, name)) as committed, open(tmp_path / name) as made:
            assert committed.read() == made.read(), f"docs/results/tuned/{name} is stale: run python -m " \
                "studies.claims.ablation --tuned=docs/results/tuned/tuned.json --out=docs/results/tuned"


def test_findings_ablation_block_is_what_the_code_makes_of_the_committed_tuned_json():
    from rnnlab.analysis.stats import page_block

    tasks = ablation.tasks_of(tuned=os.path.join(TUNED, "tuned.json"))
    with open(os.path.join(ROOT, "docs", "findings.md")) as f:
        block = page_block(f.read(), "ablation")
    assert block.strip() == ablation.findings_markdown(ablation.ablation_table(tasks), tasks).strip()


def test_findings_embeds_the_claims_figures_made_from_the_committed_json(tmp_path):
    from studies.claims import figures

    with open(os.path.join(ROOT, "docs", "findings.md")) as f:
        page = f.read()
    tasks = ablation.tasks_of(tuned=os.path.join(TUNED, "tuned.json"))
    for path in figures.write_figures(tasks, str(tmp_path)):
        name = os.path.basename(path)
        assert f"](results/tuned/{name})" in page and os.path.isfile(os.path.join(TUNED, name))


def test_findings_embeds_the_saturation_figure_made_from_the_committed_json_with_every_group(tmp_path):
    from studies.claims import figures

    with open(os.path.join(ROOT, "docs", "results", "saturation", "saturation.json")) as f:
        saturation = json.load(f)
    assert set(figures.SATURATION_TITLES) == set(saturation["groups"])  # no group left out, none named twice
    path = figures.write_saturation_figure(saturation, str(tmp_path / "keep_histograms.png"))
    assert os.path.getsize(path) > 0
    with open(os.path.join(ROOT, "docs", "findings.md")) as f:
        assert "](results/saturation/keep_histograms.png)" in f.read()


def test_findings_embeds_the_cell_cost_figure_drawn_from_the_committed_benchmark(tmp_path):
    from studies.claims import cell_cost

    with open(os.path.join(ROOT, "benchmarks", "results", "cell_cost_cpu.json")) as f:
        results = json.load(f)
    cell_cost.plot_ratios(results, str(tmp_path / "cell_cost.png"))
    assert os.path.getsize(tmp_path / "cell_cost.png") > 0
    assert {job["job"] for job in results["jobs"]} <= set(cell_cost.JOB_NAMES)  # every job has a reader's name
    with open(os.path.join(ROOT, "docs", "findings.md")) as f:
        assert "](../benchmarks/results/cell_cost_cpu.png)" in f.read()
