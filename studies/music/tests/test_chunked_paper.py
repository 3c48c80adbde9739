"""Table 2's paper-recipe rows in chunks (studies.music.chunked_paper): the summary and the page block."""

import json
import os

import pytest

from rnnlab.analysis.stats import page_block
from studies.music import chunked, chunked_paper

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
FOLDERS = ("piano_chunked_paper", "musedata_chunked_paper", "nottingham_chunked_paper")


def fake_record(cell, seed, test):
    return {"cell": cell, "seed": seed, "hidden_size": 100, "num_params": 27788, "test_nll": test,
            "valid_nll": test + 0.5, "train_nll": test - 0.5, "best_step": 1000, "stop_step": 4000,
            "stopped_early": True, "hit_cap": False, "wall_seconds": 100.0,
            "paper_chung2014": {"train": 5.64, "test": 9.03}}


def test_summary_keeps_complete_cells_and_the_table_says_where_the_rate_came_from():
    # Given: tanh with all three seeds, GRU with one
    records = [fake_record("tanh", s, 7.0 + 0.1 * s) for s in (0, 1, 2)] + [fake_record("gru", 0, 7.5)]
    # When
    summary = chunked_paper.summary("piano", records)
    # Then: only the complete cell, its mean +- sample sd, and the rate's origin in the table
    assert list(summary["cells"]) == ["tanh"]
    assert summary["cells"]["tanh"]["test_mean"] == pytest.approx(7.1)
    assert summary["cells"]["tanh"]["test_sd"] == pytest.approx(0.1)
    row = chunked.corpora_markdown([summary]).splitlines()[2]
    assert row.startswith("| Piano-midi | tanh | 27788 | 0.000871 (from JSB) | 7.000 / 7.100 / 7.200 | 7.100 +- 0.100 |")
    assert row.endswith("| 9.03 (5.64) | -1.93 | 3/3 |")


def fake_summary(corpus, tests):
    """A summary with one tanh cell whose seeds' test NLLs are ``tests``."""
    records = [dict(fake_record("tanh", s, t), paper_chung2014={"train": 3.22, "test": 3.13})
               for s, t in enumerate(tests)]
    return chunked_paper.summary(corpus, records)


def test_corpora_table_follows_table2s_order_whatever_the_order_given():
    summaries = [fake_summary("piano", (7.0, 7.1, 7.2)), fake_summary("nottingham", (3.5, 3.6, 3.7))]
    rows = chunked.corpora_markdown(summaries).splitlines()[2:]
    assert [row.split(" | ")[0] for row in rows] == ["| Nottingham", "| Piano-midi"]
    assert chunked.corpora_markdown(summaries[::-1]) == chunked.corpora_markdown(summaries)


def test_recipes_table_puts_both_recipes_beside_the_paper():
    # Given: Nottingham's tanh with the paper's recipe (mean 3.6) and with Adam (mean 3.7); the paper's 3.13
    paper_recipe = fake_summary("nottingham", (3.5, 3.6, 3.7))
    adam = fake_summary("nottingham", (3.6, 3.7, 3.8))
    # When
    lines = chunked.recipes_markdown(paper_recipe, adam).splitlines()
    # Then: one row, each recipe's mean +- sd, train mean, distance to the paper, patience count, and the gap
    assert len(lines) == 3
    assert lines[2] == ("| tanh | 3.13 (3.22) | 3.600 +- 0.100 | 3.100 | +0.470 | 3/3 | 3.700 +- 0.100 | 3.200 | "
                        "+0.570 | 3/3 | -0.100 |")
    with pytest.raises(ValueError):
        chunked.recipes_markdown(paper_recipe, fake_summary("piano", (7.0, 7.1, 7.2)))


def test_log_spans_times_each_process_of_a_log_by_its_thread_id(tmp_path):
    # Given: a log written by two processes (thread ids 11 and 22), with untimestamped lines between
    log = tmp_path / "run.log"
    log.write_text("I1206 12:01:05.500000 11 train.py:1] start\nconfig:\n  a: 1\n"
                   "I1206 12:03:13.000000 11 loop.py:2] signal 15: saved\n"
                   "I1206 12:45:38.000000 22 train.py:1] start\nW1206 12:46:00.250000    22 x.py:3] end\n")
    # Then: first to last line of each, in the order they started
    assert chunked_paper.log_spans(str(log)) == [127.5, 22.2]


def test_reproduction_chunked_paper_block_is_what_the_code_makes_of_the_committed_summaries():
    summaries = []
    for folder in FOLDERS:
        path = os.path.join(ROOT, "docs", "results", "music", folder, "summary.json")
        if os.path.exists(path):
            with open(path) as f:
                summaries.append(json.load(f))
    with open(os.path.join(ROOT, "docs", "reproduction.md")) as f:
        block = page_block(f.read(), "table2-chunked-paper")
    assert summaries and block.strip() == chunked.corpora_markdown(summaries).strip()
    # every seed of every cell in the table was ended by patience, not by the cap
    assert all(not any(entry["hit_cap"]) for summary in summaries for entry in summary["cells"].values())


def test_cells_table_of_a_summary():
    summary = fake_summary("nottingham", (3.5, 3.6, 3.7))
    row = chunked_paper.cells_markdown(summary).splitlines()[2]
    assert row == ("| tanh | 27,788 | 8.706e-04 (JSB) | 3.500 / 3.600 / 3.700 | 3.600 +- 0.100 | 3.100 | 4.100 | "
                   "3.13 (3.22) | +0.47 | 3/3 | 100 - 100 |")


def test_runs_and_curves_tables_of_records():
    # Given: two runs, the second in two processes and stopped at its cap
    a = dict(fake_record("tanh", 0, 3.6), wall_seconds=100.0, wall_seconds_per_process=[100.0],
             valid_curve=[[1000, 4.0], [5000, 3.8]])
    b = dict(fake_record("gru", 1, 3.7), wall_seconds=250.0, wall_seconds_per_process=[200.0, 50.0],
             stopped_early=False, hit_cap=True, valid_curve=[[1000, 4.1]])
    # When
    runs = chunked_paper.runs_markdown([a, b]).splitlines()
    curves = chunked_paper.curves_markdown([a, b], (1000, 5000, 10000)).splitlines()
    # Then
    assert runs[2] == "| tanh | 0 | 100 | 1000 / 4000 | yes | no | 4.100 | 3.600 | 3.100 |"
    assert runs[3] == "| GRU | 1 | 250 (200 + 50) | 1000 / 4000 | no | yes | 4.200 | 3.700 | 3.200 |"
    assert curves[0] == "| cell | seed | 1k | 5k |"  # 10k: no run evaluated it
    assert curves[3] == "| GRU | 1 | 4.100 | - |"


@pytest.mark.parametrize("folder", FOLDERS)
def test_results_readme_tables_are_what_the_code_makes_of_the_folders_json(folder):
    path = os.path.join(ROOT, "docs", "results", "music", folder)
    if not os.path.exists(os.path.join(path, "summary.json")):
        pytest.skip(f"{folder} not collected yet")
    records = chunked_paper.load_records(folder.split("_")[0], path)
    with open(os.path.join(path, "README.md")) as f:
        readme = f.read()
    with open(os.path.join(path, "summary.json")) as f:
        assert page_block(readme, "cells").strip() == chunked_paper.cells_markdown(json.load(f)).strip()
    assert page_block(readme, "runs").strip() == chunked_paper.runs_markdown(records).strip()
    assert page_block(readme, "curves").strip() == chunked_paper.curves_markdown(records, chunked_paper.CURVE_STEPS).strip()


def test_reproduction_nottingham_recipes_block_is_what_the_code_makes_of_the_two_summaries():
    folder = os.path.join(ROOT, "docs", "results", "music")
    with open(os.path.join(folder, "nottingham_chunked_paper", "summary.json")) as f:
        paper_recipe = json.load(f)
    with open(os.path.join(folder, "nottingham_chunked", "summary.json")) as f:
        adam = json.load(f)
    with open(os.path.join(ROOT, "docs", "reproduction.md")) as f:
        block = page_block(f.read(), "nottingham-recipes")
    assert block.strip() == chunked.recipes_markdown(paper_recipe, adam).strip()
