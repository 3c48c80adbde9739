"""Table 2's paper-recipe rows in chunks (studies.music.chunked_paper): the summary and the page block."""

import json
import os

import pytest

from rnnlab.analysis.stats import page_block
from studies.music import chunked, chunked_paper

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
FOLDERS = ("piano_chunked_paper", "musedata_chunked_paper")


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
    assert row.endswith("| 9.03 (5.64) | 3/3 |")


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
