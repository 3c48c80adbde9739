"""Claim 3 on the bracketed grid (studies.claims.memory): edges, brackets, paired tests with Holm, the page."""

import json
import os

import pytest

from rnnlab.analysis import significance
from rnnlab.analysis.stats import page_block
from studies.claims import memory, memory_plan
from tests import committed



def _row(name, rate, values=(), reached=(), capped=()):
    seeds = list(range(1, len(values) + 1))
    return {"name": name, "state": "done", "learning_rate": rate,
            "test": {**significance.describe(list(values), seeds), "values": list(values), "seeds": seeds},
            "target": {"count": sum(r is not None for r in reached), "n": len(reached)}, "hit_cap": list(capped)}


def _tuned():
    """adding100: the LSTM (grid best inside), the GRU (grid best at the top edge, chosen past it)."""
    lstm = [0.0002, 0.0001, 0.0003, 0.17, 0.0002]
    gru = [0.00005, 0.00004, 0.00006, 0.00005, 0.00007]
    return {"tasks": {
        "grid": {"metric": "test/mse", "mode": "min", "rows": [_row("grid/adding100/lstm", 0.01),
                                                              _row("grid/adding100/gru", 0.1)]},
        "adding100": {"metric": "test/mse", "mode": "min", "rows": [
            _row("adding100/lstm", 0.01, lstm, [500, 400, 600, None, 500], [True, True, False, False, True]),
            _row("adding100/gru", 0.3, gru, [200] * 5, [False] * 5)]},
    }}


def test_summary_marks_edges_brackets_and_compares_by_seed_with_holm():
    summary = memory.memory_summary(_tuned())
    models = {m["model"]: m for m in summary["tasks"]["adding100"]["models"]}
    lstm, gru = models["lstm"], models["gru"]
    # The LSTM's grid best lies inside the grid: no extension, bracketed
    assert not lstm["grid_edge"] and lstm["bracketed"] and lstm["tried"] == list(memory_plan.LEARNING_RATES)
    assert (lstm["reached"], lstm["n"], lstm["capped"]) == (4, 5, 3)
    # The GRU's lies at the top: 0.3 and 0.9 were tried too, and the chosen 0.3 has values on both sides
    assert gru["grid_edge"] and gru["tried"][-2:] == pytest.approx([0.3, 0.9]) and gru["bracketed"]
    # Its comparison with the LSTM is the paired test by seed; the only one, so p_holm = p
    expected = significance.paired_test(gru["test"]["values"], lstm["test"]["values"])
    assert gru["vs_lstm"]["p"] == pytest.approx(expected["p"]) and gru["vs_lstm"]["p_holm"] == pytest.approx(expected["p"])
    assert lstm["vs_lstm"] is None
    # Models and tasks not run yet are 'waiting' in the table, and have no comparison
    assert models["lstm_cifg"]["state"] == "waiting" and models["lstm_cifg"]["vs_lstm"] is None
    text = memory.memory_markdown(summary)
    assert "| GRU | 5/5, " in text and "lr 0.3 edge" in text and "waiting" in text
    assert "| adding T=100 | GRU | 5/5 vs 4/5 |" in text


def test_a_rate_at_the_edge_of_everything_tried_is_starred():
    tuned = _tuned()
    tuned["tasks"]["adding100"]["rows"][1]["learning_rate"] = 0.9  # the largest rate tried
    gru = memory.memory_summary(tuned)["tasks"]["adding100"]["models"][-1]
    assert not gru["bracketed"] and "lr 0.9* edge" in memory.memory_markdown({**memory.memory_summary(tuned)})


def test_a_search_whose_seed_runs_partly_failed_counts_them_as_seeds_not_reaching_the_target():
    tuned = _tuned()
    gru = tuned["tasks"]["adding100"]["rows"][1]
    gru.update(_row("adding100/gru", 0.3, [0.00005, 0.00004, 0.00006], [200] * 3, [False] * 3), state="failed",
               failed_seeds=[4, 5])  # as the report writes a failed search's seed runs without results
    models = {m["model"]: m for m in memory.memory_summary(tuned)["tasks"]["adding100"]["models"]}
    # 3 of the plan's 5 seed runs finished: 2 failed, counted in n, not in reached; the test pairs 3 seeds
    assert (models["gru"]["state"], models["gru"]["reached"], models["gru"]["n"], models["gru"]["failed"]) == (
        "done", 3, memory_plan.SEEDS, 2)
    assert models["gru"]["vs_lstm"]["n"] == 3
    assert "| GRU | 3/5, " in memory.memory_markdown(memory.memory_summary(tuned)) and "2 failed" in \
        memory.memory_markdown(memory.memory_summary(tuned))
    # a search that failed with no seed run finished stays 'failed'
    gru.update(_row("adding100/gru", 0.3), state="failed", failed_seeds=[1, 2, 3, 4, 5])
    assert memory.memory_summary(tuned)["tasks"]["adding100"]["models"][-1]["state"] == "failed"


def test_write_memory_writes_json_table_figure_and_the_page_block(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# p\n<!-- memory: made by code -->\nold\n<!-- /memory -->\n")
    memory.write_memory(_tuned(), str(tmp_path / "out"), str(page))
    assert sorted(os.listdir(tmp_path / "out")) == ["memory.json", "memory.md", "memory.png"]
    saved = json.loads((tmp_path / "out" / "memory.json").read_text())
    assert page_block(page.read_text(), "memory").strip() == memory.memory_markdown(saved).strip()


def test_findings_memory_block_is_what_the_code_makes_of_the_committed_tuned_json():
    summary = memory.memory_summary(committed.results("memory", "tuned.json"))
    assert committed.block("findings.md", "memory") == memory.memory_markdown(summary).strip()
    assert committed.results("memory", "memory.json") == json.loads(json.dumps(summary))


def test_the_findings_reading_of_claim_3_is_what_the_committed_json_says():
    # findings.md section 3, "Reading": each count and rate it quotes
    tasks = committed.results("memory", "memory.json")["tasks"]
    by = {task: {m["model"]: m for m in entry["models"]} for task, entry in tasks.items()}
    assert [by["adding100"][m]["reached"] for m in memory_plan.MODELS] == [4, 2, 5, 5, 5]
    assert sum(by["adding100"][m]["capped"] for m in memory_plan.MODELS) == 14  # "14 of the 25 runs"
    assert all(by["adding100"][m]["vs_lstm"] and not by["adding100"][m]["vs_lstm"]["rejected"]
               for m in memory_plan.MODELS if m != "lstm")
    copy = by["copy100"]
    assert [copy[m]["reached"] for m in memory_plan.MODELS] == [0, 0, 4, 5, 3]
    assert copy["lstm"]["rate"] == pytest.approx(0.3) and copy["lstm"]["bracketed"] and copy["lstm"]["grid_edge"]
    assert copy["lstm+fb=3"]["rate"] == pytest.approx(0.01)
    assert copy["lstm_nfg"]["vs_lstm"]["rejected"] and copy["lstm_cifg"]["vs_lstm"]["rejected"]
    assert not copy["gru"]["vs_lstm"]["rejected"]
    long = by["adding400"]  # "Adding at T=400 separates them too"
    assert [long[m]["reached"] for m in memory_plan.MODELS] == [0, 0, 1, 5, 5]
    assert long["lstm_cifg"]["vs_lstm"]["rejected"] and long["gru"]["vs_lstm"]["rejected"]
    assert not long["lstm_nfg"]["vs_lstm"]["rejected"]
    with open(os.path.join(committed.ROOT, "docs", "findings.md")) as f:
        page = f.read()
    assert "LSTM 4\n  of 5, forget bias 3 2 of 5" in page and "The GRU solves 3 of 5" in page
    recall = by["copy400"]  # "Delayed recall at T=400: only the CIFG LSTM solves it"
    assert [recall[m]["reached"] for m in memory_plan.MODELS] == [0, 0, 0, 3, 1]
    assert [recall[m]["failed"] for m in memory_plan.MODELS] == [0, 0, 0, 2, 1]  # "Three seed runs (CIFG 2, GRU 1)"
    assert all(recall[m]["n"] == memory_plan.SEEDS for m in memory_plan.MODELS)
    assert recall["lstm_cifg"]["test"]["values"] == [1.0, 1.0, 1.0] and recall["lstm_cifg"]["vs_lstm"]["rejected"]
    assert recall["lstm_nfg"]["vs_lstm"]["rejected"] and f"{recall['lstm_nfg']['test']['mean']:.3f}" == "0.434"
    assert min(recall["lstm_nfg"]["test"]["values"]) > 2 * memory.CHANCE["copy"][1]  # "well above chance in every seed"
    assert not recall["gru"]["vs_lstm"]["rejected"] and not recall["lstm+fb=3"]["vs_lstm"]["rejected"]
    assert (recall["lstm_cifg"]["rate"], recall["gru"]["rate"]) == pytest.approx((0.03, 0.01))
    assert "the GRU solves 1 of 5 (not separable)" in page and "recalls well above chance in every seed (0.434" in page
