"""Tests of rnnlab.analysis.tuned on a fake plan output (search.json, trial and seed run directories)."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from rnnlab.analysis import tuned
from rnnlab.analysis import tuned_rows

PLAN = '''
from rnnlab.experiments.plan import Search

TARGETS = {"toy": "valid/accuracy>=0.95"}


def get_plan():
    toy = [Search("toy/cell=lstm", "c.py:lstm", "valid/accuracy:max", "optim.learning_rate=loguniform(1e-3,1e-1)", 5),
           Search("toy/cell=gru", "c.py:gru", "valid/accuracy:max", "optim.learning_rate=loguniform(1e-3,1e-1)", 5)]
    variants = [Search(f"toy/cell={v}", f"c.py:{v}", "valid/accuracy:max", "optim.learning_rate=grid(0.01)", 3,
                       after=(f"toy/cell={family}",))
                for v, family in [("lstm_nfg", "lstm"), ("lstm_cifg", "lstm"), ("lstm+fb=3.0", "lstm"),
                                  ("gru_nug", "gru")]]
    other = [Search("mse/cell=lstm", "c.py:m", "valid/mse:min", "optim.learning_rate=loguniform(1e-3,1e-1)", 5),
             Search("mse/cell=gru", "c.py:m", "valid/mse:min", "optim.learning_rate=loguniform(1e-3,1e-1)", 5)]
    return toy + variants + other
'''

CAP = 1000
# model: (test accuracies of seeds 1-3, first step each seed's valid curve reaches 0.95 (None: never),
#         seeds that stop at the step cap)
TOY = {
    "cell=lstm": ([0.99, 0.98, 0.99], [300, 400, 500], {3}),
    "cell=gru": ([0.97, 0.96, 0.98], [200, 200, 300], set()),
    "cell=lstm_nfg": ([0.60, 0.62, 0.58], [None, None, None], set()),  # far worse, never solves: breaks
    "cell=lstm_cifg": ([0.99, 0.97, 0.985], [300, 300, 400], set()),  # within noise: =
    "cell=lstm+fb=3.0": ([0.995, 0.986, 0.997], [200, 300, 300], set()),  # +0.005..0.007 every seed: helps
    "cell=gru_nug": ([0.93, 0.925, 0.935], [500, 600, 700], set()),  # worse but solves: hurts
}


def _write_run(workdir, seed, lr, test, valid_curve, at_cap, metric="accuracy", params=1000):
    os.makedirs(workdir)
    last = valid_curve[-1][0]
    step = CAP if at_cap else last
    json.dump({"train": {"seed": seed, "num_steps": CAP}, "optim": {"learning_rate": lr},
               "data": {"gen_seed": seed}}, open(os.path.join(workdir, "config.json"), "w"))
    with open(os.path.join(workdir, "metrics.jsonl"), "w") as f:
        for i, s in enumerate(range(100, step + 1, 100)):  # first window slow (compilation): 10 steps/s
            f.write(json.dumps({"step": s, "train/steps_per_sec": 10.0 if i == 0 else 100.0 + 10 * (i % 3)}) + "\n")
        for s, v in valid_curve:
            f.write(json.dumps({"step": s, f"valid/{metric}": v}) + "\n")
    best = max(valid_curve, key=lambda sv: sv[1] if metric == "accuracy" else -sv[1])[0]
    results = {"step": step, "stopped_early": not at_cap, "best_step": best, "num_params": params,
               "test": {metric: test}, "valid": {metric: best}}
    results["valid"][metric] = dict(valid_curve)[best]
    json.dump(results, open(os.path.join(workdir, "results.json"), "w"))


def _valid_curve(reach):
    """0.5 until the step ``reach`` (then 0.97); never above 0.9 when ``reach`` is None."""
    return [(s, 0.9 if reach is None else (0.97 if s >= reach else 0.5)) for s in range(100, 801, 100)]


def _write_search(folder, lr, seeds, trials):
    records = []
    for seed, test, reach, at_cap in seeds:
        _write_run(os.path.join(folder, f"best__seed{seed}"), seed, lr, test, _valid_curve(reach), at_cap)
        records.append({"seed": seed, "gen_seed": seed, "workdir": f"best__seed{seed}", "learning_rate": lr,
                        "results": json.load(open(os.path.join(folder, f"best__seed{seed}", "results.json")))})
    best = max((t for t in trials if t["state"] == "COMPLETE"), key=lambda t: t["value"])
    json.dump({"config": "c.py", "metric": "valid/accuracy:max", "trials_budget": len(trials), "trials": trials,
               "best": best, "seeds": records}, open(os.path.join(folder, "search.json"), "w"))


@pytest.fixture
def plan_output(tmp_path):
    plan_path = tmp_path / "plan.py"
    plan_path.write_text(PLAN)
    out = tmp_path / "runs"
    for model, (tests, reaches, caps) in TOY.items():
        lr = 0.01 if "lstm" in model else 0.02
        trials = [{"number": 0, "state": "COMPLETE", "params": {"optim.learning_rate": lr}, "value": 0.96,
                   "workdir": "trials/trial_000"},
                  {"number": 1, "state": "COMPLETE", "params": {"optim.learning_rate": lr / 3}, "value": 0.9},
                  {"number": 2, "state": "PRUNED", "params": {"optim.learning_rate": 0.09}, "value": 0.5,
                   "diverged": True}]
        seeds = [(s, t, r, s in caps) for s, t, r in zip((1, 2, 3), tests, reaches)]
        _write_search(str(out / "toy" / model), lr, seeds, trials)
    # mse/cell=lstm is running: one finished trial, one going; mse/cell=gru has not started
    running = out / "mse" / "cell=lstm" / "trials"
    _write_run(str(running / "trial_000"), 0, 0.003, 0.02, [(100, 0.5), (200, 0.02)], False, metric="mse")
    os.makedirs(running / "trial_001")
    json.dump({"optim": {"learning_rate": 0.03}}, open(running / "trial_001" / "config.json", "w"))
    return str(plan_path), str(out)


def _rows(tasks):
    return {row["model"]: row for row in tasks["toy"]["rows"]}


def test_tuned_tables_rows_hold_seeds_ci_cap_target_and_speed(plan_output):
    # Given a fake plan output, When it is read
    plan_path, out = plan_output
    from rnnlab.experiments import plan as plan_lib

    tasks = tuned_rows.tuned_tables(plan_lib.load_plan(plan_path), out, tuned_rows.load_targets(plan_path))
    rows = _rows(tasks)
    lstm = rows["cell=lstm"]
    # Then the row has the parameters, the chosen rate, trials, per-seed values, mean +- std and t-interval
    assert (lstm["state"], lstm["params"], lstm["learning_rate"]) == ("done", 1000, 0.01)
    assert lstm["trials"] == {"complete": 2, "pruned": 1, "diverged": 1, "running": 0, "budget": 3}
    assert lstm["test"]["seeds"] == [1, 2, 3] and lstm["test"]["values"] == [0.99, 0.98, 0.99]
    values = np.array([0.99, 0.98, 0.99])
    half = 4.302653 * values.std(ddof=1) / math.sqrt(3)
    assert lstm["test"]["mean"] == pytest.approx(values.mean())
    assert lstm["test"]["ci"] == pytest.approx([values.mean() - half, values.mean() + half], abs=1e-6)
    # seed 3 stopped at the step cap; the others went flat
    assert lstm["hit_cap"] == [False, False, True] and lstm["step"] == [800, 800, CAP]
    assert lstm["target"]["target"] == "valid/accuracy>=0.95"  # the plan's TARGETS
    assert lstm["target"]["reached"] == [300, 400, 500] and lstm["target"]["median_step"] == 400
    assert rows["cell=lstm_nfg"]["target"]["count"] == 0
    # training speed: the first (compiling) window is left out; windows 110, 120, 100, ... -> median 110
    assert lstm["ms_per_step"]["median"] == pytest.approx(1000 / 110.0)
    assert lstm["first_window_s"]["per_seed"][0] == pytest.approx(100 / 10.0 - 100 / 110.0)
    # a variant is compared with its intact cell, paired by seed
    cifg = rows["cell=lstm_cifg"]["vs_reference"]
    d = np.array([0.99, 0.97, 0.985]) - values
    t = d.mean() / (d.std(ddof=1) / math.sqrt(3))
    assert (cifg["test"], cifg["diff"], cifg["t"]) == ("paired", pytest.approx(d.mean()), pytest.approx(t))
    assert cifg["p"] == pytest.approx(1 - abs(t) / math.sqrt(2 + t * t))  # t CDF with 2 df, closed form
    assert lstm["vs_reference"] is None and rows["cell=lstm_nfg"]["reference"] == "toy/cell=lstm"


def test_tuned_tables_running_and_waiting_searches(plan_output):
    plan_path, out = plan_output
    from rnnlab.experiments import plan as plan_lib

    tasks = tuned_rows.tuned_tables(plan_lib.load_plan(plan_path), out, tuned_rows.load_targets(plan_path))
    running, waiting = tasks["mse"]["rows"]
    assert (tasks["mse"]["metric"], tasks["mse"]["mode"], tasks["mse"]["target"]) == ("test/mse", "min", None)
    assert running["state"] == "running" and running["test"]["n"] == 0
    assert (running["trials"]["complete"], running["trials"]["running"]) == (1, 1)
    assert waiting["state"] == "waiting" and waiting["learning_rate"] is None
    assert "adding100" not in tuned_rows.load_targets(plan_path)  # only the plan's own targets


def test_a_failed_search_names_its_seed_runs_without_results(plan_output):
    # Given a search whose seed 3 stopped with an error (its workdir, no results.json) and was marked failed
    plan_path, out = plan_output
    from rnnlab.experiments import plan as plan_lib

    folder = os.path.join(out, "toy", "cell=gru")
    os.remove(os.path.join(folder, "best__seed3", "results.json"))
    summary = json.load(open(os.path.join(folder, "search.json")))
    summary["seeds"][2]["results"] = None  # as the search records a seed run that did not finish
    json.dump(summary, open(os.path.join(folder, "search.json"), "w"))
    with open(os.path.join(folder, plan_lib.FAILED_FILE), "w") as f:
        f.write("seed runs failed\n")
    rows = _rows(tuned_rows.tuned_tables(plan_lib.load_plan(plan_path), out, tuned_rows.load_targets(plan_path)))
    # Then its row says so, beside the seeds that finished; a search that is done names none
    gru = rows["cell=gru"]
    assert (gru["state"], gru["failed_seeds"], gru["test"]["seeds"]) == ("failed", [3], [1, 2])
    assert rows["cell=lstm"]["failed_seeds"] == []


def test_write_tuned_report_files_and_strict_json(plan_output, tmp_path):
    plan_path, out = plan_output
    report_dir = str(tmp_path / "report")
    result = tuned.write_tuned_report(plan_path, out, report_dir)
    assert sorted(os.listdir(report_dir)) == ["seeds.png", "trials_lr.png", "tuned.json", "tuned.md"]
    for path in result["figures"]:
        with open(path, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"

    def no_nan(name):
        raise ValueError(f"non-strict JSON constant {name}")

    data = json.loads(open(os.path.join(report_dir, "tuned.json")).read(), parse_constant=no_nan)
    rows = {r["model"]: r for r in data["tasks"]["toy"]["rows"]}
    assert rows["cell=gru_nug"]["test"]["values"] == [0.93, 0.925, 0.935]
    md = open(os.path.join(report_dir, "tuned.md")).read()
    assert "| cell=lstm | done | 1000 | 0.01 | 2/1 of 3 (1 diverged) | 0.987 +- 0.006 [0.972, 1.001] |" in md
    assert "1: 0.990, 2: 0.980, 3: 0.990 | 300, 400, 500* | 3/3 @ 400 |" in md
    assert "| cell=gru | waiting | - | - | - |" in md


def test_report_cli_with_plan(plan_output, tmp_path):
    plan_path, out = plan_output
    report_dir = str(tmp_path / "cli")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run([sys.executable, "-m", "rnnlab", "report", f"--plan={plan_path}", f"--runs={out}",
                           f"--out={report_dir}"], cwd=root, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| cell=lstm | done |" in done.stdout
    assert {"tuned.md", "tuned.json"} <= set(os.listdir(report_dir))


def test_recorded_compile_seconds_and_cap(tmp_path):
    from rnnlab.analysis import stats

    workdir = str(tmp_path / "run")
    _write_run(workdir, 1, 0.01, 0.9, [(100, 0.5)], at_cap=True)
    run = stats.load_run(workdir)
    assert tuned_rows.recorded_compile_seconds(run) is None and tuned_rows.hit_cap(run)
    results = json.load(open(os.path.join(workdir, "results.json")))
    results["compilations"] = {"total": 3, "seconds": 4.5}
    results["stopped_early"] = True  # early stopping at the last step is no cap
    json.dump(results, open(os.path.join(workdir, "results.json"), "w"))
    run = stats.load_run(workdir)
    assert tuned_rows.recorded_compile_seconds(run) == 4.5 and not tuned_rows.hit_cap(run)
