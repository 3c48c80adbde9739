"""Table 2 of a music plan's output (studies.music.table2), on run folders written here."""

import json

import numpy as np
import pytest

from studies.music import table2

PLAN = '''
from rnnlab.experiments.plan import Search
def get_plan():
    return [
        Search("jsb-paper/gru", "configs/music.py:cell=gru,paper", "valid/nll:min",
               "optim.learning_rate=loguniform(6e-6,2.5e-3)", trials=3, seeds=2),
        Search("nottingham/lstm", "configs/music.py:dataset=nottingham,cell=lstm", "valid/nll:min",
               "optim.learning_rate=grid(0.001)", trials=1, seeds=1),
        Search("jsb/min_gru", "configs/music.py:cell=min_gru,hidden=46", "valid/nll:min",
               "optim.learning_rate=grid(0.001, 0.003)", trials=2, seeds=1),
    ]
'''


def write_run(folder, seed, lr, nll=None, stopped_early=True):
    """A run folder of at most 1000 steps; finished (``results.json``) when ``nll = (train, valid, test)`` is
    given, at step 1000: by early stopping, or at the step cap."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"train": {"seed": seed, "num_steps": 1000},
                                                    "optim": {"learning_rate": lr}}))
    if nll is not None:
        results = {split: {"nll": v, "loss": v} for split, v in zip(("train", "valid", "test"), nll)}
        results.update(step=1000, best_step=750, stopped_early=stopped_early, wall_time_sec=12.34,
                       num_params=21364)
        (folder / "results.json").write_text(json.dumps(results))


@pytest.fixture
def plan_output(tmp_path):
    plan = tmp_path / "plan.py"
    plan.write_text(PLAN)
    runs = tmp_path / "runs"
    paper = runs / "jsb-paper" / "gru"
    write_run(paper / "trials" / "trial_000", 0, 1e-3, (7.0, 8.4, 8.5))  # a selection trial: not a seed
    write_run(paper / "best__seed1", 1, 9e-4, (7.1, 8.5, 8.6))
    write_run(paper / "best__seed2", 2, 9e-4, (7.3, 8.6, 8.8))
    write_run(paper / "best__seed3", 3, 9e-4)  # unfinished: left out
    notts = runs / "nottingham" / "lstm"
    write_run(notts / "trials" / "trial_000", 0, 1e-3, (3.0, 3.3, 3.4))  # one point: it counts as seed 0
    write_run(notts / "best__seed1", 1, 1e-3, (3.2, 3.5, 3.6), stopped_early=False)  # at the cap
    write_run(runs / "jsb" / "min_gru" / "best__seed1", 1, 3e-3, (8.0, 8.7, 8.75))
    return plan, runs


def test_seeds_are_the_seed_runs_and_a_single_point_trial(plan_output, tmp_path):
    plan, runs = plan_output
    collected = table2.write_table2(str(plan), str(runs), str(tmp_path / "out"))
    paper = collected["jsb-paper"]["gru"]
    assert [s["seed"] for s in paper["seeds"]] == [1, 2]
    np.testing.assert_allclose(paper["test"], [8.7, np.std([8.6, 8.8], ddof=1)])
    np.testing.assert_allclose(paper["train"], [7.2, np.std([7.1, 7.3], ddof=1)])
    notts = collected["nottingham"]["lstm"]
    assert [s["seed"] for s in notts["seeds"]] == [0, 1]
    assert notts["seeds"][0]["workdir"] == "nottingham/lstm/trials/trial_000"
    np.testing.assert_allclose(notts["test"][0], 3.5)
    assert [s["hit_cap"] for s in notts["seeds"]] == [False, True] and notts["hit_cap"] == 1
    assert paper["hit_cap"] == 0
    assert json.loads((tmp_path / "out" / "table2.json").read_text()) == collected


def test_the_markdown_puts_each_recipe_under_its_corpus(plan_output, tmp_path):
    plan, runs = plan_output
    table2.write_table2(str(plan), str(runs), str(tmp_path / "out"))
    text = (tmp_path / "out" / "table2.md").read_text()
    lines = text.splitlines()
    jsb = lines.index(next(line for line in lines if line.startswith("| JSB Chorales | Chung")))
    assert lines[jsb + 1] == ("| | rnnlab, the paper's recipe | not run | 7.20 +- 0.14 / 8.70 +- 0.14 "
                              "(n=2, lr 0.0009) | not run |")
    notts = lines.index(next(line for line in lines if line.startswith("| Nottingham | Chung")))
    assert lines[notts + 1].endswith("| 3.10 +- 0.14 / 3.50 +- 0.14 (n=2, lr 0.001, * 1 of 2) |")
    assert "| jsb | min_gru | 8.00 / 8.75 (n=1, lr 0.003) |" in lines
    assert "| nottingham | lstm | 21364 | 12 s, 1000 (750); 12 s, 1000 (750) |" in lines


def test_recipe_of():
    assert table2.recipe_of("jsb-paper") == ("jsb", "paper")
    assert table2.recipe_of("piano") == ("piano", "adam")


def test_reproduction_nottingham_chunked_block_is_what_the_code_makes_of_the_committed_summary():
    import os

    from rnnlab.analysis.stats import page_block
    from studies.music import chunked

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    summary = json.load(open(os.path.join(root, "docs", "results", "music", "nottingham_chunked", "summary.json")))
    with open(os.path.join(root, "docs", "reproduction.md")) as f:
        block = page_block(f.read(), "nottingham-chunked")
    assert block.strip() == chunked.summary_markdown(summary).strip()
    # and every seed of every cell was ended by patience, not by the cap
    assert all(all(entry["stopped_early"]) for entry in summary["cells"].values())


def test_reproduction_embeds_the_table2_figure_drawn_from_the_committed_json(tmp_path):
    import os

    from tests import committed

    collected = committed.results("music", "table2.json")
    table2.plot_table2(collected, str(tmp_path / "table2.png"))
    assert os.path.getsize(tmp_path / "table2.png") > 0
    with open(os.path.join(committed.ROOT, "docs", "reproduction.md")) as f:
        assert "](results/music/table2.png)" in f.read()
    # every corpus of the paper has a run to draw
    assert {table2.recipe_of(setup)[0] for setup in collected} == set(table2.PUBLISHED)
