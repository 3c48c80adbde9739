"""Table 2's rows trained in chunks (truncated BPTT, ``data.chunk_len``), from their committed summary.

    python -m studies.music.chunked --summary=docs/results/music/nottingham_chunked/summary.json \\
        --page=docs/reproduction.md

The summary (``docs/results/music/nottingham_chunked/summary.json``, written by that folder's
``collect_nott.py`` from every run's JSON) holds per cell the seed-0 learning-rate grid on validation
NLL, the chosen rate, and each seed's valid / test / train NLL, best and stop step, whether patience
ended it, and its wall time. :func:`summary_markdown` makes the table of ``docs/reproduction.md``'s
``nottingham-chunked`` block (a test checks the two agree).
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

from absl import app, flags

from rnnlab.analysis.stats import markdown_table, write_page_block

NAMES = {"tanh": "tanh", "gru": "GRU", "lstm": "LSTM"}


def summary_markdown(summary: Mapping[str, Any]) -> str:
    """One row per cell: parameters, the rate chosen on seed 0's validation NLL (the grid in brackets),
    each seed's test NLL, their mean +- sample std, the train NLL's mean, the paper's test (train), and
    whether every seed was stopped by patience (not by the step cap)."""
    rows = []
    for cell, entry in summary["cells"].items():
        grid = ", ".join(f"{float(rate):g}: {value:.3f}" for rate, value in
                         sorted(entry["grid_seed0_valid_nll"].items(), key=lambda kv: float(kv[0])))
        seeds = " / ".join(f"{v:.3f}" for v in entry["test_nll"])
        paper = entry["paper_chung2014"]
        rows.append([NAMES.get(cell, cell), entry["num_params"], f"{entry['chosen_learning_rate']:g} ({grid})", seeds,
                     f"{entry['test_mean']:.3f} +- {entry['test_sd']:.3f}", f"{entry['train_mean']:.3f}",
                     f"{paper['test']:.2f} ({paper['train']:.2f})",
                     f"{sum(entry['stopped_early'])}/{len(entry['stopped_early'])}"])
    return markdown_table(["cell", "params", "rate (seed-0 valid NLL per rate)", "test NLL, seeds 0 / 1 / 2",
                           "test mean +- sd", "train mean", "paper test (train)", "early-stopped"], rows)


def main(argv: Sequence[str]) -> None:
    """absl entry: ``--summary`` (and ``--page`` to rewrite its block)."""
    del argv
    with open(flags.FLAGS.summary) as f:
        text = summary_markdown(json.load(f))
    if flags.FLAGS.page:
        write_page_block(flags.FLAGS.page, "nottingham-chunked", text)
    print(text)


if __name__ == "__main__":
    flags.DEFINE_string("summary", "docs/results/music/nottingham_chunked/summary.json", "the rows' summary")
    flags.DEFINE_string("page", "", "also rewrite this page's nottingham-chunked block")
    app.run(main)
