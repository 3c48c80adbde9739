"""Table 2's Piano-midi and MuseData rows with the paper's recipe, in chunks, to early stopping (issue 25).

Chung et al.'s sizes (``configs/music.py``), the ``paper`` variant (RMSProp, weight noise 0.075,
clipping at 1), ``data.chunk_len=100``, the step cap raised to 100,000 so that patience ends the runs,
seeds 0, 1, 2 at each cell's rate carried over from JSB's paper-recipe search
(``docs/results/music/table2.json``, ``jsb-paper``); the LSTM with ``optim.peephole_lr_scale=0.01``.
Run from a checkout's root (``data.path`` is relative to it), one run at a time on core 1::

    python -m studies.music.chunked_paper drive piano musedata nottingham
    python -m studies.music.chunked_paper collect piano docs/results/music/piano_chunked_paper
    python -m studies.music.chunked_paper readme piano docs/results/music/piano_chunked_paper  # its tables

A run's wall time is what the driver measured around each process (``<workdir>.wall``, one line per
process); a process the driver did not time (one started by hand) has its time reconstructed from the
timestamps of the run's log (:func:`log_spans`, :data:`WALL_FROM_LOG`).
"""

from __future__ import annotations

import datetime
import json
import os
import re
import subprocess
import sys
import time

import numpy as np

from rnnlab.analysis.stats import curve, load_run, markdown_table, write_page_block
from rnnlab.analysis.tuned_rows import hit_cap
from studies.music.table2 import CELL_NAMES, CELLS, PUBLISHED

OUT = "runs/chunked_paper"
STEP_CAP = 100000
SEEDS = (0, 1, 2)
TABLE2 = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "results", "music", "table2.json")


def jsb_rates(path: str = TABLE2) -> dict[str, float]:
    """Each cell's rate of JSB's paper-recipe row (``table2.json``, ``jsb-paper``: the best of a 10-trial
    search on validation NLL, shared by its seeds)."""
    with open(path) as f:
        row = json.load(f)["jsb-paper"]
    rates = {cell: {s["learning_rate"] for s in row[cell]["seeds"]} for cell in CELLS}
    if any(len(r) != 1 for r in rates.values()):
        raise ValueError(f"{path}: the seeds of a jsb-paper cell differ in learning rate: {rates}")
    return {cell: r.pop() for cell, r in rates.items()}


JSB_RATES = jsb_rates()
CELL_EXTRA = {"lstm": ",optim.peephole_lr_scale=0.01"}  # the faithful stall fix (lstm_stall_fix/)
# Runs that needed more than the driver's one process.
NOTES = {
    "musedata-lstm-s1": (
        "trained in two processes: first the driver's command (cap 100000; it reached step 100000, best step 99000, "
        "still improving, not stopped early), then the same workdir resumed with the same variant but "
        "train.num_steps=200000 (by hand, the driver stopped), where patience ended it. wall_seconds sums both."),
    "musedata-lstm-s2": (
        "trained in two processes with the driver's command (cap 100000): the first, started by hand in an "
        "earlier session, was stopped by signal 15 at step 14075 (its checkpoint saved); the driver resumed it "
        "from that checkpoint. The driver timed only the second process; the first one's wall time is the span "
        "of its log lines (first line to the signal-15 line), which misses the interpreter's start before the "
        "first line (2.5-4.4 s on the runs that have both measures). wall_seconds sums both."),
    "nottingham-lstm-s0": (
        "trained in two processes: first the driver's command (cap 100000; it reached step 100000, best step 96000, "
        "not stopped early), then the same workdir resumed with the same variant but train.num_steps=200000 (by "
        "hand, after the driver), where patience ended it at step 102000 with the best step still 96000. "
        "wall_seconds sums both."),
}
# Runs whose first N processes the driver did not time (no line in <workdir>.wall): their wall seconds
# are the spans of those processes' log lines (log_spans), in front of the driver's lines.
WALL_FROM_LOG = {"musedata-lstm-s2": 1}
_GLOG = re.compile(r"[IWEF](\d{4}) (\d\d:\d\d:\d\d\.\d+) +(\d+) ")


def log_spans(path: str, year: int = 2026) -> list[float]:
    """Seconds from the first to the last glog line of each process that wrote the log at ``path``, in
    the order they started. A process is told apart by the thread id glog writes on every line (each
    training process logs from one thread); the span misses the interpreter's start before the first
    line and any output after the last."""
    spans: dict[str, list[datetime.datetime]] = {}
    with open(path) as f:
        for line in f:
            m = _GLOG.match(line)
            if m:
                t = datetime.datetime.strptime(f"{year}{m.group(1)} {m.group(2)}", "%Y%m%d %H:%M:%S.%f")
                spans.setdefault(m.group(3), [t, t])[1] = t
    return [round((last - first).total_seconds(), 1) for first, last in spans.values()]


def name(corpus: str, cell: str, seed: int) -> str:
    """The run's workdir name under :data:`OUT`."""
    return f"{corpus}-{cell}-s{seed}"


def variant(corpus: str, cell: str, seed: int) -> str:
    """The ``configs/music.py`` variant string of one run."""
    return (f"dataset={corpus},cell={cell},paper,data.chunk_len=100,data.path=../shared/data/polyphonic,"
            f"optim.learning_rate={JSB_RATES[cell]!r}{CELL_EXTRA.get(cell, '')},seed={seed},"
            f"train.num_steps={STEP_CAP}")


def command(corpus: str, cell: str, seed: int) -> list[str]:
    """The exact command line of one run (from the checkout's root)."""
    return ["taskset", "-c", "1", "python", "launch.py", f"--config=configs/music.py:{variant(corpus, cell, seed)}",
            f"--workdir={OUT}/{name(corpus, cell, seed)}"]


def finished(wd: str) -> dict | None:
    """The run's ``results.json`` if it ended (patience or cap), else None."""
    path = f"{wd}/results.json"
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def run(corpus: str, cell: str, seed: int) -> dict:
    """Train one run unless it already finished; its wall time is appended to ``<workdir>.wall``."""
    wd = f"{OUT}/{name(corpus, cell, seed)}"
    done = finished(wd)
    if done is not None:
        return done
    os.makedirs(OUT, exist_ok=True)
    cmd = command(corpus, cell, seed)
    cmd[3] = sys.executable
    start = time.time()
    with open(f"{wd}.log", "a") as log:
        subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=False, env=dict(os.environ, PYTHONPATH="."))
    wall = time.time() - start
    with open(f"{wd}.wall", "a") as f:
        f.write(f"{wall:.1f}\n")
    r = finished(wd)
    print(corpus, cell, seed, "step", r and r["step"], "best", r and r["best_step"], "early",
          r and r["stopped_early"], "valid", r and round(r["valid"]["nll"], 4), "wall", round(wall), flush=True)
    return r


def drive(corpora: list[str]) -> None:
    """Every cell's three seeds, corpus by corpus, cell by cell (complete cells land first)."""
    for corpus in corpora:
        for cell in CELLS:
            for seed in SEEDS:
                run(corpus, cell, seed)
    print("done", flush=True)


def record(corpus: str, cell: str, seed: int, note: str | None = None) -> dict | None:
    """One finished run as the per-run JSON of the results folder (None while it has not finished):
    the best-validation parameters' valid / test / train NLL, best and stop step, whether patience ended
    it or the cap, wall seconds (every process that trained it), the command and the validation curve."""
    wd = f"{OUT}/{name(corpus, cell, seed)}"
    if finished(wd) is None:
        return None
    run = load_run(wd)
    res, cfg = finished(wd), run.config
    walls = [float(x) for x in open(f"{wd}.wall").read().split()] if os.path.exists(f"{wd}.wall") else []
    untimed = WALL_FROM_LOG.get(name(corpus, cell, seed), 0)
    walls = log_spans(f"{wd}.log")[:untimed] + walls
    steps, values = curve(run.metrics, "valid/nll")
    valid_curve = [[int(step), round(float(v), 5)] for step, v in dict(zip(steps, values)).items()]
    train_paper, test_paper = PUBLISHED[corpus][cell]
    return {
        "corpus": corpus, "cell": cell, "hidden_size": cfg["model"]["hidden_size"], "num_params": res["num_params"],
        "learning_rate": JSB_RATES[cell], "rate_source": "carried over from JSB's paper-recipe search (not searched here)",
        "seed": seed, "valid_nll": res["valid"]["nll"], "test_nll": res["test"]["nll"], "train_nll": res["train"]["nll"],
        "best_step": res["best_step"], "stop_step": res["step"], "stopped_early": res["stopped_early"],
        "hit_cap": hit_cap(run), "step_cap": cfg["train"]["num_steps"], "patience_evals": cfg["train"]["patience"],
        "eval_every": cfg["train"]["eval_every"], "wall_seconds": round(sum(walls), 1),
        "wall_seconds_per_process": walls, "wall_seconds_from_log": untimed, "results_wall_time_sec": round(res["wall_time_sec"], 1),
        "optimizer": cfg["optim"], "weight_noise": cfg["train"]["weight_noise"],
        "chunk_len": cfg["data"]["chunk_len"], "batch_size": cfg["data"]["batch_size"],
        "config_variant": variant(corpus, cell, seed),
        "command": "PYTHONPATH=. " + " ".join(command(corpus, cell, seed)), "note": note,
        "valid_curve": valid_curve, "paper_chung2014": {"train": train_paper, "test": test_paper},
        "machine": "shared 2-core CPU, one core (taskset -c 1), one run at a time, 2026-12-06",
    }


def _mean_sd(values: list[float]) -> tuple[float, float]:
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def summary(corpus: str, records: list[dict]) -> dict:
    """The corpus's ``summary.json`` (the schema of ``nottingham_chunked/summary.json``, which
    :func:`studies.music.chunked.summary_markdown` reads), cells with all three seeds only; a cell's
    rate is carried over (``rate_source``), so it has no grid."""
    cells = {}
    for cell in CELLS:
        rows = sorted((r for r in records if r["cell"] == cell), key=lambda r: r["seed"])
        if [r["seed"] for r in rows] != list(SEEDS):
            continue
        entry = {"hidden_size": rows[0]["hidden_size"], "num_params": rows[0]["num_params"],
                 "chosen_learning_rate": JSB_RATES[cell], "rate_source": "JSB", "seeds": list(SEEDS)}
        for key in ("test_nll", "valid_nll", "train_nll", "best_step", "stop_step", "stopped_early",
                    "hit_cap", "wall_seconds"):
            entry[key] = [r[key] for r in rows]
        entry["test_mean"], entry["test_sd"] = _mean_sd(entry["test_nll"])
        entry["train_mean"], _ = _mean_sd(entry["train_nll"])
        entry["valid_mean"], _ = _mean_sd(entry["valid_nll"])
        entry["paper_chung2014"] = rows[0]["paper_chung2014"]
        cells[cell] = entry
    return {"corpus": corpus,
            "recipe": ("the paper's (RMSProp, weight noise 0.075, clip_norm 1), batch 16, data.chunk_len=100 "
                       "(truncated BPTT, state carried), whole-piece validation, patience 6 evaluations, step cap "
                       f"{STEP_CAP}, best-validation params on test and train; rates carried over from JSB's "
                       "paper-recipe search; LSTM with optim.peephole_lr_scale=0.01"),
            "cells": cells}


def load_records(corpus: str, folder: str) -> list[dict]:
    """The per-run JSON files ``folder/<corpus>-<cell>-s<seed>.json`` that exist, cell by cell, seed by seed."""
    paths = [f"{folder}/{name(corpus, cell, seed)}.json" for cell in CELLS for seed in SEEDS]
    records = []
    for path in paths:
        if os.path.exists(path):
            with open(path) as f:
                records.append(json.load(f))
    return records


def runs_markdown(records: list[dict]) -> str:
    """One row per run: wall seconds (each process's in brackets where there were several), best / stop
    step, whether patience ended it, whether it stopped at its step cap, and the best-validation
    parameters' valid / test / train NLL."""
    rows = []
    for r in records:
        walls = r["wall_seconds_per_process"]
        wall = f"{r['wall_seconds']:.0f}" + (" (" + " + ".join(f"{w:.0f}" for w in walls) + ")" if len(walls) > 1 else "")
        rows.append([CELL_NAMES[r["cell"]], r["seed"], wall, f"{r['best_step']} / {r['stop_step']}",
                     "yes" if r["stopped_early"] else "no", "yes" if r["hit_cap"] else "no",
                     f"{r['valid_nll']:.3f}", f"{r['test_nll']:.3f}", f"{r['train_nll']:.3f}"])
    return markdown_table(["cell", "seed", "wall s", "best / stop step", "early-stopped", "at the cap", "valid",
                           "test", "train"], rows)


def curves_markdown(records: list[dict], steps: tuple[int, ...]) -> str:
    """Each run's validation NLL at those of ``steps`` that some run evaluated (a dash where the run had
    stopped or did not evaluate)."""
    curves = [dict(r["valid_curve"]) for r in records]
    steps = tuple(s for s in steps if any(s in at for at in curves))
    rows = [[CELL_NAMES[r["cell"]], r["seed"], *(f"{at[s]:.3f}" if s in at else "-" for s in steps)]
            for r, at in zip(records, curves)]
    return markdown_table(["cell", "seed", *(f"{s // 1000}k" for s in steps)], rows)


CURVE_STEPS = (1000, 5000, 10000, 20000, 30000, 40000, 60000, 80000, 100000)


def cells_markdown(summary: dict) -> str:
    """One row per complete cell of a ``summary.json``: parameters, the carried rate, each seed's test NLL,
    their mean +- sample sd, the train and valid means, Chung et al.'s test (train), the test mean minus
    the paper's, how many seeds patience stopped, and the runs' wall seconds (least - most)."""
    rows = []
    for cell, e in summary["cells"].items():
        paper = e["paper_chung2014"]
        rows.append([CELL_NAMES[cell], f"{e['num_params']:,}", f"{e['chosen_learning_rate']:.3e} ({e['rate_source']})",
                     " / ".join(f"{v:.3f}" for v in e["test_nll"]), f"{e['test_mean']:.3f} +- {e['test_sd']:.3f}",
                     f"{e['train_mean']:.3f}", f"{e['valid_mean']:.3f}", f"{paper['test']:.2f} ({paper['train']:.2f})",
                     f"{e['test_mean'] - paper['test']:+.2f}", f"{sum(e['stopped_early'])}/{len(e['stopped_early'])}",
                     f"{min(e['wall_seconds']):.0f} - {max(e['wall_seconds']):.0f}"])
    return markdown_table(["cell", "params", "rate", "test NLL, seeds 0 / 1 / 2", "test mean +- sd", "train mean",
                           "valid mean", "Chung et al. test (train)", "test - Chung", "early-stopped", "wall s"], rows)


def write_readme_blocks(corpus: str, folder: str) -> None:
    """Rewrites the ``cells``, ``runs`` and ``curves`` blocks of ``folder/README.md`` from its
    ``summary.json`` and per-run JSON files."""
    with open(f"{folder}/summary.json") as f:
        write_page_block(f"{folder}/README.md", "cells", cells_markdown(json.load(f)))
    records = load_records(corpus, folder)
    write_page_block(f"{folder}/README.md", "runs", runs_markdown(records))
    write_page_block(f"{folder}/README.md", "curves", curves_markdown(records, CURVE_STEPS))


def collect(corpus: str, dst: str, notes: dict[str, str] | None = None) -> dict:
    """Writes ``dst/<corpus>-<cell>-s<seed>.json`` per finished run and ``dst/summary.json``."""
    os.makedirs(dst, exist_ok=True)
    records = []
    for cell in CELLS:
        for seed in SEEDS:
            rec = record(corpus, cell, seed, (NOTES if notes is None else notes).get(name(corpus, cell, seed)))
            if rec is None:
                continue
            records.append(rec)
            with open(f"{dst}/{name(corpus, cell, seed)}.json", "w") as f:
                json.dump(rec, f, indent=1)
            print(name(corpus, cell, seed), "valid %.3f test %.3f train %.3f" % (
                rec["valid_nll"], rec["test_nll"], rec["train_nll"]), "best", rec["best_step"], "stop",
                rec["stop_step"], "early", rec["stopped_early"], "wall", rec["wall_seconds"])
    result = summary(corpus, records)
    with open(f"{dst}/summary.json", "w") as f:
        json.dump(result, f, indent=1)
    return result


if __name__ == "__main__":
    if sys.argv[1] == "drive":
        drive(sys.argv[2:])
    elif sys.argv[1] == "collect":
        collect(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "readme":
        write_readme_blocks(sys.argv[2], sys.argv[3])
