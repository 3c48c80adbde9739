"""Table 2's rows trained in chunks (truncated BPTT, ``data.chunk_len``), from their committed summary.

    python -m studies.music.chunked --summary=docs/results/music/nottingham_chunked/summary.json \\
        --page=docs/reproduction.md

The summary (``docs/results/music/nottingham_chunked/summary.json``, written by that folder's
``collect_nott.py`` from every run's JSON) holds per cell the seed-0 learning-rate grid on validation
NLL, the chosen rate, and each seed's valid / test / train NLL, best and stop step, whether patience
ended it, and its wall time. :func:`summary_markdown` makes the table of ``docs/reproduction.md``'s
``nottingham-chunked`` block (a test checks the two agree).

The paper-recipe rows of Piano-midi and MuseData (``studies/music/chunked_paper.py`` writes their
summaries, same schema, rates carried over from JSB instead of a grid) share one table with a corpus
column, :func:`corpora_markdown`, the ``table2-chunked-paper`` block::

    python -m studies.music.chunked --block=table2-chunked-paper --page=docs/reproduction.md \
        --summary=docs/results/music/nottingham_chunked_paper/summary.json \
        --summary=docs/results/music/piano_chunked_paper/summary.json \
        --summary=docs/results/music/musedata_chunked_paper/summary.json

A corpus trained both ways (Nottingham: Adam with a rate grid, and the paper's recipe) gets one row per
cell beside the paper, :func:`recipes_markdown`, the ``nottingham-recipes`` block::

    python -m studies.music.chunked --block=nottingham-recipes --page=docs/reproduction.md \
        --summary=docs/results/music/nottingham_chunked_paper/summary.json \
        --summary=docs/results/music/nottingham_chunked/summary.json
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

from absl import app, flags

from rnnlab.analysis.stats import markdown_table, write_page_block
from studies.music.table2 import CELL_NAMES, CORPUS_NAMES, PUBLISHED


def _rate_text(entry: Mapping[str, Any]) -> str:
    """The chosen rate with seed 0's validation NLL per rate in brackets, or where it was carried from."""
    if "grid_seed0_valid_nll" not in entry:
        return f"{entry['chosen_learning_rate']:.3g} (from {entry['rate_source']})"
    grid = ", ".join(f"{float(rate):g}: {value:.3f}" for rate, value in
                     sorted(entry["grid_seed0_valid_nll"].items(), key=lambda kv: float(kv[0])))
    return f"{entry['chosen_learning_rate']:g} ({grid})"


def _cell_row(cell: str, entry: Mapping[str, Any]) -> list[Any]:
    seeds = " / ".join(f"{v:.3f}" for v in entry["test_nll"])
    paper = entry["paper_chung2014"]
    return [CELL_NAMES.get(cell, cell), entry["num_params"], _rate_text(entry), seeds,
            f"{entry['test_mean']:.3f} +- {entry['test_sd']:.3f}", f"{entry['train_mean']:.3f}",
            f"{paper['test']:.2f} ({paper['train']:.2f})", f"{entry['test_mean'] - paper['test']:+.2f}",
            f"{sum(entry['stopped_early'])}/{len(entry['stopped_early'])}"]


HEADER = ["cell", "params", "rate (seed-0 valid NLL per rate)", "test NLL, seeds 0 / 1 / 2", "test mean +- sd",
          "train mean", "paper test (train)", "test - paper", "early-stopped"]


def summary_markdown(summary: Mapping[str, Any]) -> str:
    """One row per cell: parameters, the rate chosen on seed 0's validation NLL (the grid in brackets),
    each seed's test NLL, their mean +- sample std, the train NLL's mean, the paper's test (train), the
    test mean minus the paper's, and how many seeds were stopped by patience (not by the step cap)."""
    return markdown_table(HEADER, [_cell_row(cell, entry) for cell, entry in summary["cells"].items()])


def corpora_markdown(summaries: Sequence[Mapping[str, Any]]) -> str:
    """:func:`summary_markdown`'s rows of several corpora in one table, the corpus first, corpora in
    Table 2's order whatever the order given; a cell whose rate was carried over from another corpus
    says so in the rate column."""
    order = list(PUBLISHED)
    rows = [[CORPUS_NAMES[summary["corpus"]]] + _cell_row(cell, entry)
            for summary in sorted(summaries, key=lambda s: order.index(s["corpus"]))
            for cell, entry in summary["cells"].items()]
    return markdown_table(["corpus", *HEADER[:2], "rate", *HEADER[3:]], rows)


def _recipe_text(entry: Mapping[str, Any] | None, paper_test: float) -> list[str]:
    if entry is None:
        return ["-"] * 4
    return [f"{entry['test_mean']:.3f} +- {entry['test_sd']:.3f}", f"{entry['train_mean']:.3f}",
            f"{entry['test_mean'] - paper_test:+.3f}",
            f"{sum(entry['stopped_early'])}/{len(entry['stopped_early'])}"]


def recipes_markdown(paper_recipe: Mapping[str, Any], adam: Mapping[str, Any]) -> str:
    """One corpus trained in chunks two ways, one row per cell: Chung et al.'s test (train) NLL; for the
    paper's recipe, then Adam: the test mean +- sample sd over seeds, the train mean, the test mean minus
    the paper's, and how many seeds patience stopped; last, the paper recipe's test mean minus Adam's."""
    if paper_recipe["corpus"] != adam.get("corpus", paper_recipe["corpus"]):
        raise ValueError(f"two corpora: {paper_recipe['corpus']} and {adam['corpus']}")
    rows = []
    for cell in CELL_NAMES:
        ours, theirs = paper_recipe["cells"].get(cell), adam["cells"].get(cell)
        if ours is None and theirs is None:
            continue
        train, test = PUBLISHED[paper_recipe["corpus"]][cell]
        diff = f"{ours['test_mean'] - theirs['test_mean']:+.3f}" if ours and theirs else "-"
        rows.append([CELL_NAMES[cell], f"{test:.2f} ({train:.2f})", *_recipe_text(ours, test),
                     *_recipe_text(theirs, test), diff])
    header = ["cell", "Chung et al. test (train)"]
    for recipe in ("paper recipe", "Adam"):
        header += [f"{recipe}: test mean +- sd", "train mean", "test - Chung", "early-stopped"]
    return markdown_table(header + ["paper recipe - Adam (test)"], rows)


# How each block of docs/reproduction.md is made from its summaries (any other name: corpora_markdown).
BLOCKS = {
    "nottingham-chunked": lambda summaries: summary_markdown(summaries[0]),
    "nottingham-recipes": lambda summaries: recipes_markdown(*summaries),
    "table2-chunked-paper": corpora_markdown,
}


def main(argv: Sequence[str]) -> None:
    """absl entry: ``--summary`` (and ``--page`` to rewrite its block)."""
    del argv
    summaries = []
    for path in flags.FLAGS.summary:
        with open(path) as f:
            summaries.append(json.load(f))
    block = flags.FLAGS.block
    text = BLOCKS.get(block, corpora_markdown)(summaries)
    if flags.FLAGS.page:
        write_page_block(flags.FLAGS.page, block, text)
    print(text)


if __name__ == "__main__":
    flags.DEFINE_multi_string("summary", ["docs/results/music/nottingham_chunked/summary.json"],
                              "the rows' summary; several for a block with a corpus column; for "
                              "nottingham-recipes the paper recipe's, then Adam's")
    flags.DEFINE_string("block", "nottingham-chunked",
                        "the page's block: nottingham-chunked (one summary), nottingham-recipes (two), "
                        "or any other name for the corpora table")
    flags.DEFINE_string("page", "", "also rewrite this page's block")
    app.run(main)
