"""Does the forget gate close at a contrast? The seed's picture, tested on the SST models (issue 24, item 5).

The seed's example, "Although this person is very hardworking, he really has no achievements", comes
with a picture: at the clause boundary the LSTM's forget gate closes, so the first clause's sentiment
is dropped and the second one's decides. This study measures it on the contrast sentences of the
behavioural suite (``studies/sst/checklist.py``): for every sentence, the forward LSTM's forget gate
(mean over units; layer 0, the forward direction of a BiLSTM) at the step that reads the boundary
word, against its mean over the sentence's other steps (the first step, which has no state to keep,
left out). Three boundaries:

- ``but``: the step reading "but" in "A , but B" (the label is B's: A should be let go);
- ``although A , B``: the step reading the comma that ends the "although" clause (A should be let go);
- ``B , although A``: the step reading "although" (B is the main clause: a gate that closes here
  drops what decides the label, so the picture predicts no closing, or the model must keep B elsewhere);
- ``B , although A: its comma``: the control, a comma that ends no clause to let go of; a gate that
  closes at every comma would close here too;
- ``and``: every "A , but B" sentence again with "and" for "but", the control of "but": a gate that
  closes at "but" because it marks a contrast closes less at "and".

Per run and boundary: the mean difference (boundary minus elsewhere, forget-gate units) over the
sentences with its 95% interval (paired t over sentences), and the share of sentences whose smallest
forget gate (steps after the first) is at the boundary. The tests of all runs and boundaries are one
family, Holm-Bonferroni adjusted. Sentences of one run are not independent draws of a model; the
seeds are: the claim holds for a model when every seed closes the gate, separably::

    python -m studies.sst.contrast_gates --run=sst2/lstm=runs/sst_checklist/lstm-s1 ... \\
        --behaviour=docs/results/sst2/behaviour.json --out=docs/results/sst2 --page=docs/findings.md
"""

from __future__ import annotations

import json
import os
from typing import Any, Mapping, Sequence

import numpy as np
from absl import app, flags

from rnnlab.analysis import plots
from rnnlab.analysis.behaviour import load_suite, write_result
from rnnlab.analysis.significance import holm, paired_test
from rnnlab.analysis.stats import markdown_table, write_page_block
from rnnlab.commands.common import named_runs
from studies.sst.tables import LABELS

SUITE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "checklist.py")
GROUPS = ("contrast: but", "contrast: although")
BOUNDARIES = ("but", "and (the but-sentence's twin)", "although A , B", "B , although A", "B , although A: its comma")
TITLES = {"but": '"A , but B": at "but"', BOUNDARIES[1]: '"A , and B": at "and"',  # a boundary kind, for a reader
          "although A , B": '"although A , B": at ","', "B , although A": '"B , although A": at "although"',
          "B , although A: its comma": '"B , although A": at ","'}
WINDOW = 3  # steps either side of the boundary in the profile


def boundaries(tokens: Sequence[str]) -> list[tuple[str, int]]:
    """The boundaries of a tokenized suite sentence: ``[(kind of :data:`BOUNDARIES`, step index)]``.

    "B , although A" has two: "although", and the comma before it (a control: a comma that ends no
    clause to let go of); "A , and B", the twin of a "but" sentence, has "and" (the control of "but").

    Raises:
      ValueError: a sentence with neither "but" nor "although".
    """
    if "but" in tokens:
        return [("but", tokens.index("but"))]
    joined = [t for t in range(1, len(tokens)) if tokens[t - 1:t + 1] == [",", "and"]]
    if joined:
        return [(BOUNDARIES[1], joined[0])]
    if "although" in tokens:
        where = tokens.index("although")
        if where == 0:
            return [("although A , B", tokens.index(","))]
        return [("B , although A", where), ("B , although A: its comma", where - 1)]
    raise ValueError(f"no contrast word in {' '.join(tokens)!r}")


def sentence_record(forget: np.ndarray, kind: str, at: int) -> dict[str, Any]:
    """One sentence's forget gate at one boundary against its other steps.

    Args:
      forget: ``f32[L, H]``, the forget gate of layer 0, forward direction, over the sentence's L steps.
      kind, at: the boundary (:func:`boundaries`).

    Returns:
      ``{"kind", "at", "boundary", "elsewhere", "lowest_at_boundary", "profile"}``: the boundary, the mean
      over units at the boundary and over the other steps after the first, whether the boundary holds
      the lowest of the steps after the first, and ``profile``, the mean over units at offsets
      ``-WINDOW..WINDOW`` from the boundary (``None`` outside the sentence).
    """
    mean = np.asarray(forget, np.float64).mean(axis=1)  # [L]
    steps = len(mean)
    others = [t for t in range(1, steps) if t != at]
    profile = [float(mean[at + k]) if 0 <= at + k < steps else None for k in range(-WINDOW, WINDOW + 1)]
    return {"kind": kind, "at": at, "boundary": float(mean[at]), "elsewhere": float(mean[others].mean()),
            "lowest_at_boundary": bool(at == 1 + int(np.argmin(mean[1:]))), "profile": profile}


def run_records(workdir: str, sentences: Sequence[str]) -> list[dict[str, Any]]:
    """:func:`sentence_record` of each sentence for the run in ``workdir`` (its served checkpoint)."""
    from rnnlab.inference.predict import load

    predictor = load(workdir)
    records = []
    for text in sentences:
        tokens = predictor.tokenize(text)
        forward = next(t for t in predictor.gates(text) if t["layer"] == 0 and t["direction"] == "fwd")
        forget = np.asarray(forward["gates"]["forget"])
        records.extend({"text": text, **sentence_record(forget, kind, at)} for kind, at in boundaries(tokens))
    return records


def suite_sentences(suite_path: str = SUITE) -> list[str]:
    """The contrast sentences of the suite (:data:`GROUPS`), and each "A , but B" again as "A , and B"."""
    suite = load_suite(suite_path)
    texts = [case.texts[0] for group in suite.groups if group.name in GROUPS for case in group.cases]
    return texts + [text.replace(" , but ", " , and ") for text in texts if " , but " in text]


def summarize(runs: Mapping[str, Sequence[Mapping[str, Any]]], alpha: float = 0.05) -> list[dict[str, Any]]:
    """Per run and boundary kind: sentences, mean forget at the boundary and elsewhere, the paired test of the
    difference over sentences, Holm over every run and kind (``runs``: ``{model/seed label: records}``)."""
    rows = []
    for label, records in runs.items():
        for kind in BOUNDARIES:
            chosen = [r for r in records if r["kind"] == kind]
            at, other = [r["boundary"] for r in chosen], [r["elsewhere"] for r in chosen]
            test = paired_test(at, other)
            rows.append({"run": label, "kind": kind, "n": len(chosen), "boundary": float(np.mean(at)),
                         "elsewhere": float(np.mean(other)), "diff": test["diff"], "ci": test["ci"], "p": test["p"],
                         "lowest_share": float(np.mean([r["lowest_at_boundary"] for r in chosen]))})
    for row, adjusted in zip(rows, holm([r["p"] for r in rows], alpha)):
        row["p_holm"], row["closes"] = adjusted["p_holm"], bool(adjusted["rejected"] and row["diff"] < 0)
    return rows


def behaviour_link(rows: Sequence[Mapping[str, Any]], workdirs: Mapping[str, str],
                   behaviour: Mapping[str, Any], kind: str = "but", group: str = "contrast: but") -> dict[str, Any]:
    """Do the runs whose gate closes deeper at ``kind`` fail fewer sentences of ``group``? Spearman's rank
    correlation over the runs found in ``behaviour`` (the JSON of ``studies.sst.behaviour``, matched by
    workdir), between the boundary-minus-elsewhere difference and the group's failure rate."""
    from scipy import stats as scipy_stats

    failure = {os.path.normpath(r["workdir"]): r["groups"][group]["failure_rate"]
               for records in behaviour["models"].values() for r in records}
    pairs = [(row["run"], row["diff"], failure[os.path.normpath(workdirs[row["run"]])]) for row in rows
             if row["kind"] == kind and os.path.normpath(workdirs[row["run"]]) in failure]
    rho, p = scipy_stats.spearmanr([d for _, d, _ in pairs], [f for *_, f in pairs])
    return {"kind": kind, "group": group, "runs": [{"run": r, "diff": d, "failure_rate": f} for r, d, f in pairs],
            "spearman": float(rho), "p": float(p)}


def summary_markdown(rows: Sequence[Mapping[str, Any]], link: Mapping[str, Any] | None = None) -> str:
    """The rows of :func:`summarize` as a table, a row per run and a column per boundary kind (the difference,
    marked where the gate closes; the intervals, p values and means are in the rows), and the
    :func:`behaviour_link` when given."""
    runs = list(dict.fromkeys(r["run"] for r in rows))
    by = {(r["run"], r["kind"]): r for r in rows}
    cell = lambda r: f"**{r['diff']:+.3f}**" if r["closes"] else f"{r['diff']:+.3f}"
    table = [[run, *(cell(by[(run, kind)]) if (run, kind) in by else "-" for kind in BOUNDARIES)] for run in runs]
    closing = {kind: sum(by[(run, kind)]["closes"] for run in runs if (run, kind) in by) for kind in BOUNDARIES}
    table.append(["**runs where it closes**", *(f"{closing[kind]} of {len(runs)}" for kind in BOUNDARIES)])
    sentences = {kind: max((r["n"] for r in rows if r["kind"] == kind), default=0) for kind in BOUNDARIES}
    return (f"Forget gate (layer 0, forward; mean over units) at the contrast boundary minus its mean over the "
            f"sentence's other steps, averaged over the sentences of each kind ({', '.join(map(str, sentences.values()))} "
            "in the columns' order); "
            f"**bold**: the gate closes there (lower at the boundary, separably: paired t over sentences, the "
            f"{len(rows)} tests one family, Holm-Bonferroni adjusted). Intervals, p values and the share of "
            "sentences whose lowest gate is at the boundary: `contrast_gates.json`.\n\n"
            + markdown_table(["run", *(TITLES[kind] for kind in BOUNDARIES)], table)
            + ("" if not link else
               f"\nAcross the {len(link['runs'])} runs, the difference at \"{link['kind']}\" against the run's "
               f"failure rate on \"{link['group']}\" of the suite: Spearman's rho = {link['spearman']:+.2f} "
               f"(p = {link['p']:.2g}; above 0: a deeper closing, a more negative difference, goes with "
               "fewer failures).\n"))


def mean_profiles(records: Sequence[Mapping[str, Any]]) -> dict[str, list[float]]:
    """``{boundary kind: the mean over its sentences of the forget gate at offsets -WINDOW..WINDOW}`` of one run
    (offsets outside a sentence left out of their mean)."""
    profiles = {}
    for kind in BOUNDARIES:
        values = np.array([[np.nan if v is None else v for v in r["profile"]] for r in records if r["kind"] == kind])
        profiles[kind] = [float(v) for v in np.nanmean(values, axis=0)]
    return profiles


def plot_profiles(profiles: Mapping[str, Mapping[str, Sequence[float]]], path: str) -> None:
    """The mean forget gate at offsets from the boundary (``{run label: mean_profiles}``): a panel per model
    and boundary kind, a line per seed."""
    models = list(dict.fromkeys(label.rsplit("/seed", 1)[0] for label in profiles))
    fig = plots.new_figure((12, 2.3 * len(models) + 0.9))
    axes = fig.subplots(len(models), len(BOUNDARIES), squeeze=False, sharex=True, sharey=True)
    offsets = np.arange(-WINDOW, WINDOW + 1)
    for i, model in enumerate(models):
        for j, kind in enumerate(BOUNDARIES):
            ax = axes[i, j]
            for label, profile in profiles.items():
                if label.rsplit("/seed", 1)[0] == model:
                    ax.plot(offsets, profile[kind], marker="o", ms=3, label=f"seed {label.rsplit('/seed', 1)[1]}")
            ax.axvline(0, color="0.6", lw=0.8, ls="--")
            ax.set_xticks(offsets)
            ax.tick_params(labelsize=9)
            if i == 0:
                ax.set_title(TITLES[kind], fontsize=9)
            if i == len(models) - 1:
                ax.set_xlabel("steps from the boundary", fontsize=9)
            if j == 0:
                ax.set_ylabel(f"{LABELS.get(model, model)}\nforget gate, mean", fontsize=9)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.savefig(path, dpi=110)


def write_contrast_gates(runs: Sequence[tuple[str, str]], out: str, page: str = "", behaviour: str = "",
                         block: str = "contrast-gates") -> str:
    """Traces every run (``[(model, workdir)]``; a model's runs are its seeds, numbered 1, 2, ... in order),
    writes ``out/contrast_gates.json`` and ``out/contrast_gates.png``, and the ``block`` of ``page`` when
    given; with ``behaviour`` (a ``studies.sst.behaviour`` JSON of the same runs), also the
    :func:`behaviour_link`. Returns the block's text."""
    sentences = suite_sentences()
    traced, seeds, workdirs = {}, {}, {}
    for model, workdir in runs:
        seeds[model] = seeds.get(model, 0) + 1
        label = f"{model}/seed{seeds[model]}"
        traced[label], workdirs[label] = run_records(workdir, sentences), workdir
    rows = summarize(traced)
    link = None
    if behaviour:
        with open(behaviour) as f:
            link = behaviour_link(rows, workdirs, json.load(f))
    profiles = {label: mean_profiles(records) for label, records in traced.items()}
    write_result({"runs": workdirs, "summary": rows, "link": link, "profiles": profiles},
                 os.path.join(out, "contrast_gates.json"))
    plot_profiles(profiles, os.path.join(out, "contrast_gates.png"))
    text = summary_markdown(rows, link)
    if page:
        write_page_block(page, block, text)
    return text


def main(argv: Sequence[str]) -> None:
    """absl entry: ``--run=MODEL=WORKDIR`` (repeated), ``--out``, ``--page``."""
    del argv
    runs = named_runs(flags.FLAGS.run)
    if not runs:
        raise app.UsageError("give at least one --run=MODEL=WORKDIR")
    print(write_contrast_gates(runs, flags.FLAGS.out, flags.FLAGS.page, flags.FLAGS.behaviour, flags.FLAGS.block))


if __name__ == "__main__":
    flags.DEFINE_multi_string("run", [], "MODEL=WORKDIR of a trained SST-2 run (repeat; a model's runs are its seeds)")
    flags.DEFINE_string("out", "docs/results/sst2", "where contrast_gates.json and contrast_gates.png go")
    flags.DEFINE_string("page", "", "rewrite this page's --block")
    flags.DEFINE_string("block", "contrast-gates", "the page's block for the table")
    flags.DEFINE_string("behaviour", "", "the suite's JSON of the same runs (studies.sst.behaviour): link the "
                        "closing at 'but' to the failures on 'contrast: but'")
    app.run(main)
