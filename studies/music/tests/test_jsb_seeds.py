"""JSB with 8 seeds (studies.music.jsb_seeds): Table 2's seeds and the new runs together, Welch with Holm."""

import json
import os

import pytest

from rnnlab.analysis import significance
from studies.music import jsb_seeds
from tests import committed

RATES = {"tanh": 1e-3, "gru": 1e-3, "lstm": 2e-3}


def _table2(values):
    return {"jsb-paper": {cell: {"seeds": [{"seed": s, "learning_rate": RATES[cell], "valid_nll": v - 0.05,
                                             "test_nll": v} for s, v in zip((1, 2, 3), values[cell])]}
                          for cell in RATES}}


def _run(folder, cell, seed, test, rate=None):
    os.makedirs(folder)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump({"train": {"seed": seed, "num_steps": 100}, "optim": {"learning_rate": rate or RATES[cell]}}, f)
    with open(os.path.join(folder, "results.json"), "w") as f:
        json.dump({"step": 60, "best_step": 40, "stopped_early": True, "valid": {"nll": test - 0.05},
                   "test": {"nll": test}, "train": {"nll": test - 0.5}}, f)


def test_collects_eight_seeds_per_cell_and_tests_every_pair_with_holm(tmp_path):
    first = {"tanh": [8.55, 8.56, 8.52], "gru": [8.48, 8.49, 8.47], "lstm": [8.48, 8.49, 8.49]}
    more = {"tanh": [8.53, 8.54, 8.57, 8.55, 8.56], "gru": [8.47, 8.50, 8.48, 8.49, 8.48],
            "lstm": [8.49, 8.48, 8.50, 8.47, 8.49]}
    for cell, values in more.items():
        for seed, value in zip(range(4, 9), values):
            _run(tmp_path / cell / f"seed{seed}", cell, seed, value)
    collected = jsb_seeds.collect(_table2(first), str(tmp_path))
    gru = collected["cells"]["gru"]
    assert [s["seed"] for s in gru["seeds"]] == list(range(1, 9))
    assert gru["test"]["values"] == pytest.approx(first["gru"] + more["gru"])
    tests = {(t["a"], t["b"], t["split"]): t for t in collected["comparisons"]}
    assert len(tests) == 6
    welch = significance.welch_test(first["tanh"] + more["tanh"], first["lstm"] + more["lstm"])
    assert tests[("tanh", "lstm", "test")]["p"] == pytest.approx(welch["p"])
    holm = significance.holm([t["p"] for t in collected["comparisons"]])
    assert [t["p_holm"] for t in collected["comparisons"]] == pytest.approx([h["p_holm"] for h in holm])
    text = jsb_seeds.jsb_seeds_markdown(collected)
    assert "| GRU | 8 |" in text and "| tanh - LSTM | test |" in text


def test_refuses_repeated_seeds_and_another_rate(tmp_path):
    first = {cell: [8.5, 8.5, 8.5] for cell in RATES}
    _run(tmp_path / "gru" / "seed3", "gru", 3, 8.5)
    with pytest.raises(ValueError, match="repeat Table 2's"):
        jsb_seeds.collect(_table2(first), str(tmp_path))
    other = tmp_path / "other"
    _run(other / "lstm" / "seed4", "lstm", 4, 8.5, rate=5e-3)
    with pytest.raises(ValueError, match="not at Table 2's rate"):
        jsb_seeds.collect(_table2(first), str(other))


def test_reproduction_block_is_what_the_code_makes_of_the_committed_json():
    collected = committed.results("music", "jsb_seeds.json")
    assert committed.block("reproduction.md", "jsb-seeds") == jsb_seeds.jsb_seeds_markdown(collected).strip()
    table2_json = committed.results("music", "table2.json")
    for cell, entry in collected["cells"].items():  # seeds 1-3 are Table 2's, unchanged
        assert entry["seeds"][:3] == table2_json["jsb-paper"][cell]["seeds"]
        assert [s["seed"] for s in entry["seeds"]] == list(range(1, 9))


def test_the_pages_reading_is_what_the_committed_json_says():
    # reproduction.md and findings.md: on test the tanh RNN is separable from both gated cells and the
    # gated cells are not; on validation no two cells are
    separable = {(t["a"], t["b"], t["split"]): t["rejected"] for t in committed.results("music", "jsb_seeds.json")
                 ["comparisons"]}
    assert separable == {("tanh", "gru", "test"): True, ("tanh", "lstm", "test"): True,
                         ("gru", "lstm", "test"): False, ("tanh", "gru", "valid"): False,
                         ("tanh", "lstm", "valid"): False, ("gru", "lstm", "valid"): False}
