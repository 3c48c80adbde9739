"""JSB Chorales with the paper's recipe, 8 seeds per cell: the 3 of Table 2 and 5 more (issue 24).

The 3 seeds of ``docs/results/music/table2.json`` (``jsb-paper``) separated the tanh RNN from the
gated cells but not the GRU from the LSTM. Seeds 4-8 rerun each cell at the same chosen rate::

    python -m rnnlab sweep "configs/music.py:cell=gru,paper,steps=20000,optim.learning_rate=0.0008705983213691405" \\
        --seeds=4-8 --out=runs/jsb_seeds/gru      # lstm at 0.0009332304306093449, tanh at 0.0008705983213691405
    python -m studies.music.jsb_seeds --runs=runs/jsb_seeds --out=docs/results/music/jsb_seeds.json \\
        --page=docs/reproduction.md

Validation (the early-stopping set: each run's reported parameters are its best on it) and test NLL
per cell over the 8 seeds, and Welch's test between every two cells on both, one family of 6 tests
with Holm's correction.
"""

from __future__ import annotations

import glob
import itertools
import json
import os
from typing import Any, Mapping, Sequence

from absl import app, flags

from rnnlab.analysis.significance import describe, holm, welch_test
from rnnlab.analysis.stats import load_run, markdown_table, write_page_block
from rnnlab.analysis.tuned_markdown import format_comparison, format_stats
from studies.music import table2

SPLITS = ("valid", "test")


def collect(table2_json: Mapping[str, Any], runs: str) -> dict[str, Any]:
    """Per cell: the seed records of Table 2's ``jsb-paper`` and of the runs under ``runs/<cell>/``.

    Returns:
      ``{"cells": {cell: {"seeds": [record by seed], "valid": describe, "test": describe}},
      "comparisons": [{"a", "b", "split", **welch_test, "p_holm", "rejected"}]}``.

    Raises:
      ValueError: a seed of the new runs that Table 2 already has, or runs at another rate.
    """
    cells = {}
    for cell in table2.CELLS:
        first = list(table2_json["jsb-paper"][cell]["seeds"])
        workdirs = sorted(w for w in glob.glob(os.path.join(runs, cell, "*")) if os.path.isdir(w))
        more = table2.cell_entry(sorted((r for r in map(load_run, workdirs) if r.finished),
                                        key=lambda r: r.seed))["seeds"]
        if {s["seed"] for s in more} & {s["seed"] for s in first}:
            raise ValueError(f"{cell}: seeds {sorted({s['seed'] for s in more})} repeat Table 2's")
        if {s["learning_rate"] for s in more} - {first[0]["learning_rate"]}:
            raise ValueError(f"{cell}: the new runs are not at Table 2's rate {first[0]['learning_rate']}")
        seeds = first + more
        cells[cell] = {"seeds": seeds, **{split: describe([s[f"{split}_nll"] for s in seeds],
                                                           [s["seed"] for s in seeds]) for split in SPLITS}}
    tests = []
    for a, b in itertools.combinations(table2.CELLS, 2):
        for split in SPLITS:
            result = welch_test(cells[a][split]["values"], cells[b][split]["values"])
            tests.append({"a": a, "b": b, "split": split, **result})
    for test, adjusted in zip(tests, holm([t["p"] for t in tests])):
        test.update(p_holm=adjusted["p_holm"], rejected=adjusted["rejected"])
    return {"cells": cells, "comparisons": tests}


def jsb_seeds_markdown(collected: Mapping[str, Any]) -> str:
    """The page's block: NLL per cell over the seeds, then the 6 Welch tests with Holm."""
    names = table2.CELL_NAMES
    rows = []
    for cell, entry in collected["cells"].items():
        seeds = entry["seeds"]
        rows.append([names[cell], len(seeds), format_stats(entry["valid"], "min"), format_stats(entry["test"], "min"),
                     " / ".join(f"{s['test_nll']:.3f}" for s in seeds)])
    table = markdown_table(["cell", "seeds", "valid NLL (early-stopping set)", "test NLL", "test NLL per seed (1-8)"],
                           rows)
    versus = markdown_table(
        ["difference", "split", "mean [95% CI], p", "p_holm", "separable"],
        [[f"{names[t['a']]} - {names[t['b']]}", t["split"], format_comparison(t, "min"), f"{t['p_holm']:.2g}",
          "yes" if t["rejected"] else "no"] for t in collected["comparisons"]])
    return (f"\nJSB Chorales, the paper's recipe at Table 2's rates, seeds 1-3 (Table 2) and 4-8; NLL per "
            f"time step, mean +- sample std [95% t-interval]. Welch's test between cells; the "
            f"{len(collected['comparisons'])} tests are one family, Holm-Bonferroni adjusted (family-wise "
            f"error 0.05). Not separable is no evidence of equality.\n\n{table}\n{versus}")


def main(argv: Sequence[str]) -> None:
    """absl entry: ``--table2``, ``--runs``, ``--out``, ``--page``."""
    del argv
    f = flags.FLAGS
    with open(f.table2) as handle:
        collected = collect(json.load(handle), f.runs)
    with open(f.out, "w") as handle:
        json.dump(collected, handle, indent=1)
    text = jsb_seeds_markdown(collected)
    if f.page:
        write_page_block(f.page, "jsb-seeds", text)
    print(text)


if __name__ == "__main__":
    flags.DEFINE_string("table2", "docs/results/music/table2.json", "Table 2's results (seeds 1-3)")
    flags.DEFINE_string("runs", "runs/jsb_seeds", "folder of the new seeds' sweeps, one subfolder per cell")
    flags.DEFINE_string("out", "docs/results/music/jsb_seeds.json", "the collected seeds and tests")
    flags.DEFINE_string("page", "", "a page whose <!-- jsb-seeds: ... --> block to rewrite")
    app.run(main)
