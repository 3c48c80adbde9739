"""Collects the JSB runs of docs/reproduction.md into docs/results/music/jsb.json (per-seed values).

    python studies/music/collect.py runs/music > docs/results/music/jsb.json

Reads each search folder's ``search.json`` (trials, chosen learning rate) and
the seed runs' ``config.json`` / ``results.json`` through
``rnnlab.search.seed_results``; the Adam runs (a plain ``rnnlab sweep``) have
no search. Prints JSON: ``{setup: {cell: {"search": ..., "seeds": [...], "test_nll":
[mean, std], "valid_nll": [mean, std]}}}``; unfinished setups are left out.
"""

import glob
import json
import os
import sys

import numpy as np

from rnnlab import search

CELLS = ("tanh", "gru", "lstm")


def _stats(values):
    values = np.asarray(values, float)
    return [float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0]


def _entry(workdirs, out_root, search_summary=None):
    seeds = [s for s in search.seed_results(sorted(workdirs), relative_to=out_root) if s["results"]]
    if not seeds:
        return None
    entry = {
        "seeds": [{
            "seed": s["seed"], "workdir": s["workdir"], "learning_rate": s["learning_rate"],
            "valid_nll": s["results"]["valid"]["nll"], "test_nll": s["results"]["test"]["nll"],
            "steps": s["results"]["step"], "best_step": s["results"].get("best_step"),
            "wall_time_sec": round(s["results"]["wall_time_sec"], 1), "num_params": s["results"]["num_params"],
        } for s in seeds],
    }
    entry["valid_nll"] = _stats([s["valid_nll"] for s in entry["seeds"]])
    entry["test_nll"] = _stats([s["test_nll"] for s in entry["seeds"]])
    if search_summary:
        entry["search"] = {
            "trials_budget": search_summary["trials_budget"],
            "space": search_summary["space"],
            "best_trial": search_summary["best"]["number"] if search_summary["best"] else None,
            "trials": [{k: t.get(k) for k in ("number", "state", "params", "value", "seconds", "step")}
                       for t in search_summary["trials"]],
        }
    return entry


def main(root):
    collected = {}
    for folder in sorted(glob.glob(os.path.join(root, "jsb-*-*"))):
        summary_path = os.path.join(folder, search.SUMMARY_FILE)
        if not os.path.isdir(folder) or not os.path.exists(summary_path):
            continue
        name = os.path.basename(folder)  # jsb-CELL-SETUP
        _, cell, setup = name.split("-", 2)
        with open(summary_path) as f:
            summary = json.load(f)
        entry = _entry(glob.glob(os.path.join(folder, f"{search.BEST_NAME}__seed*")), root, summary)
        if entry:
            collected.setdefault(setup, {})[cell] = entry
    for cell in CELLS:  # the Adam baseline: a sweep of configs/music.py:cell=CELL, learning rate 1e-3
        entry = _entry(glob.glob(os.path.join(root, "jsb-adam", f"music-cell={cell}__seed*")), root)
        if entry:
            collected.setdefault("adam", {})[cell] = entry
    json.dump(collected, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/music")
