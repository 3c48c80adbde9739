"""Tests of rnnlab.experiments.search: parsing, the study (best trial, pruning, a budget shared by workers,
resume after an interruption) with a stand-in trainer, and one real smoke search."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import optuna
import pytest

from rnnlab.experiments import search
from rnnlab.experiments import search_trials
from rnnlab.experiments import search_space

# A stand-in for `python -m rnnlab launch`: evaluations of valid/nll at steps 10, 20, ... 60, whose
# value is smallest at learning rate 1e-4; resumes after the last step in metrics.jsonl; SIGTERM
# stops it between steps (exit 0, no results.json), as rnnlab.training.train does; lr > 1e-2 "diverges".
FAKE_TRAINER = textwrap.dedent('''
    import json, math, os, signal, sys, time
    workdir, lr = sys.argv[1], float(sys.argv[2])
    delay = float(os.environ.get("FAKE_DELAY", "0.01"))
    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    os.makedirs(workdir, exist_ok=True)
    path = os.path.join(workdir, "metrics.jsonl")
    start = 0
    if os.path.exists(path):
        start = max(json.loads(l)["step"] for l in open(path) if l.strip())
    with open(os.path.join(os.path.dirname(os.path.dirname(workdir)), "calls.txt"), "a") as f:
        f.write(f"{os.path.basename(workdir)} {start}\\n")
    if lr > 1e-2:
        sys.exit("FloatingPointError: training stopped at step 10: loss nan")
    if os.environ.get("FAKE_FAIL"):  # a deterministic crash, e.g. a bug the config triggers
        sys.exit("ValueError: something the trainer cannot do")
    value = None
    for step in range(start + 10, 70, 10):
        if stop:
            sys.exit(0)
        value = 1.0 + (math.log(lr) - math.log(1e-4)) ** 2 + 10.0 / step
        with open(path, "a") as f:
            f.write(json.dumps({"step": step, "valid/nll": value}) + "\\n")
        marker = os.path.join(os.path.dirname(os.path.dirname(workdir)), "killed")  # once per search
        if step == int(os.environ.get("FAKE_KILL_AT", "0")) and not os.path.exists(marker):
            open(marker, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)  # as the OOM killer or `kill -9` would
        time.sleep(delay)
    with open(os.path.join(workdir, "results.json"), "w") as f:
        json.dump({"step": 60, "valid": {"nll": value}}, f)
''')

WORKER = textwrap.dedent('''
    import os, sys
    from rnnlab.experiments import search, search_space
    fake, out, trials = sys.argv[1], sys.argv[2], int(sys.argv[3])
    spec = search.SearchSpec("unused.py", (search_space.parse_param("optim.learning_rate=loguniform(1e-6,1e-2)"),),
                             search_space.parse_metric("valid/nll:min"), trials, out)
    search.run_search(spec, command=lambda c, w, o: [sys.executable, fake, w, repr(o["optim.learning_rate"])],
                      poll=0.02, startup_trials=100, grace_period=int(os.environ.get("GRACE", "3")), heartbeat=1)
''')


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def negation_data(tmp_path_factory):
    """A tfds data dir holding the negation smoke corpus (prepared once for the module's real searches)."""
    import rnnlab.data
    from configs import negation

    data_dir = str(tmp_path_factory.mktemp("tfds"))
    config = negation.get_config("smoke")
    config.data.data_dir = data_dir
    rnnlab.data.prepare(config.data)
    return data_dir


@pytest.fixture
def fake(tmp_path):
    path = tmp_path / "fake_train.py"
    path.write_text(FAKE_TRAINER)
    return str(path)


def _fake_command(fake):
    return lambda config, workdir, overrides: [sys.executable, fake, workdir, repr(overrides["optim.learning_rate"])]


def _spec(out, trials, space="optim.learning_rate=loguniform(1e-6,1e-2)"):
    return search.SearchSpec("unused.py", (search_space.parse_param(space),), search_space.parse_metric("valid/nll:min"),
                             trials, str(out))


def _calls(out):
    with open(os.path.join(out, "calls.txt")) as f:
        return [line.split() for line in f if line.strip()]


def _study(out):
    return optuna.load_study(study_name="search", storage=f"sqlite:///{out}/study.db")


def test_parse_param_kinds_and_errors():
    assert search_space.parse_param("optim.learning_rate=loguniform(6e-6,2.5e-3)") == search_space.Param(
        "optim.learning_rate", "loguniform", (6e-6, 2.5e-3))
    assert search_space.parse_param("model.cell=choice(gru,lstm)").args == ("gru", "lstm")
    assert search_space.parse_param("model.hidden_size=intuniform(8, 64)").args == (8, 64)
    for bad, message in [("lr", "FIELD=KIND"), ("a.b=normal(1,2)", "unknown kind"),
                         ("a.b=loguniform(0,1)", "low > 0"), ("a.b=uniform(2,1)", "low < high"),
                         ("a.b=intuniform(1.5,3)", "integer")]:
        with pytest.raises(ValueError, match=message):
            search_space.parse_param(bad)


def test_grid_text_reads_back_as_the_grid_it_writes():
    text = search_space.grid_text([1e-3, 0.3, 1 / 3])
    assert text == "optim.learning_rate=grid(0.001, 0.3, 0.3333333333333333)"
    assert search_space.parse_param(text) == search_space.Param("optim.learning_rate", "grid", (1e-3, 0.3, 1 / 3))
    assert search_space.parse_param(search_space.grid_text([32], "model.hidden_size")).args == (32,)


def test_parse_metric():
    metric = search_space.parse_metric("valid/nll:min")
    assert (metric.key, metric.direction) == ("valid/nll", "minimize")
    assert search_space.parse_metric("test/accuracy:max").direction == "maximize"
    with pytest.raises(ValueError, match="SPLIT/NAME"):
        search_space.parse_metric("valid/nll")


def test_new_evaluations_reads_only_complete_new_lines(tmp_path):
    # Given a metrics file whose last line is still being written
    (tmp_path / "metrics.jsonl").write_text('{"step": 5, "train/loss": 3}\n{"step": 5, "valid/nll": 2.5}\n{"step": 1')
    # When read twice
    found, seen = search_trials.new_evaluations(str(tmp_path), "valid/nll", 0)
    again, seen2 = search_trials.new_evaluations(str(tmp_path), "valid/nll", seen)
    # Then each evaluation comes once and the partial line waits
    assert found == [(5, 2.5)] and seen == 2
    assert again == [] and seen2 == 2


def test_points_depend_on_seed_and_index_only():
    space = (search_space.parse_param("optim.learning_rate=loguniform(1e-6,1e-2)"),
             search_space.parse_param("model.cell=choice(gru,lstm)"))
    points = [search_space.draw_point(space, 0, k) for k in range(4)]
    assert points == [search_space.draw_point(space, 0, k) for k in range(4)]
    assert points != [search_space.draw_point(space, 1, k) for k in range(4)]
    assert len({p["optim.learning_rate"] for p in points}) == 4 and all(1e-6 <= p["optim.learning_rate"] <= 1e-2
                                                                         for p in points)
    # the values of a search made before points were indexed: RandomSampler seeded per (seed, number, field)
    assert points[0]["optim.learning_rate"] == pytest.approx(0.0019976547065708354, rel=1e-12)


def test_search_records_best_trial_and_prunes(tmp_path, fake):
    # Given a search of 6 trials whose value is best near lr = 1e-4, pruning after 2 trials
    out = tmp_path / "s"
    spec = _spec(out, trials=6)
    # When it runs
    study = search.run_search(spec, command=_fake_command(fake), poll=0.02, startup_trials=2)
    summary = search.summarize(spec, study)
    # Then exactly 6 trials counted, the best is the completed one closest to 1e-4 in log space
    states = [t.state for t in study.get_trials()]
    assert len(states) == 6 and optuna.trial.TrialState.FAIL not in states
    complete = [t for t in study.get_trials() if t.state == optuna.trial.TrialState.COMPLETE]
    expected = min(complete, key=lambda t: abs(np.log(t.params["optim.learning_rate"] / 1e-4)))
    assert summary["best"]["number"] == expected.number
    assert summary["best"]["value"] == pytest.approx(
        json.load(open(out / expected.user_attrs["workdir"] / "results.json"))["valid"]["nll"])
    assert json.load(open(out / "search.json"))["best"]["params"] == expected.params
    # and the pruned trials were stopped before their last evaluation
    pruned = [t for t in study.get_trials() if t.state == optuna.trial.TrialState.PRUNED]
    assert pruned and all(max(t.intermediate_values) < 60 for t in pruned)
    # and a second call finds the budget used and runs nothing
    calls = len(_calls(out))
    search.run_search(spec, command=_fake_command(fake), poll=0.02)
    assert len(_calls(out)) == calls and len(_study(out).get_trials()) == 6


def test_diverged_trial_counts_as_pruned(tmp_path, fake):
    out = tmp_path / "d"
    study = search.run_search(_spec(out, 2, "optim.learning_rate=loguniform(2e-2,1e-1)"),
                              command=_fake_command(fake), poll=0.02)
    assert [t.state for t in study.get_trials()] == [optuna.trial.TrialState.PRUNED] * 2
    assert all(t.user_attrs["diverged"] for t in study.get_trials())


@pytest.mark.slow
def test_two_workers_share_one_study(tmp_path, fake):
    # Given two worker processes on one study of 5 trials
    out = tmp_path / "w"
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, fake, str(out), "5"],
                                env={**os.environ, "FAKE_DELAY": "0.05"}) for _ in range(2)]
    # When both finish
    assert [w.wait(timeout=120) for w in workers] == [0, 0]
    # Then exactly 5 trials counted, each run once in its own workdir
    study = _study(out)
    counted = [t for t in study.get_trials() if t.state != optuna.trial.TrialState.FAIL]
    assert len(counted) == 5
    # (a worker that asked when the last queued point had just been taken got a trial of no point: skipped)
    assert all(t.user_attrs.get("skipped") for t in study.get_trials() if t not in counted)
    calls = _calls(out)
    assert sorted(c[0] for c in calls) == sorted(f"trial_{t.number:03d}" for t in counted)
    assert len({t.params["optim.learning_rate"] for t in counted}) == 5


def test_interrupted_search_resumes_the_trial(tmp_path, fake):
    # Given a worker stopped by SIGTERM during its first trial
    out = tmp_path / "r"
    worker = subprocess.Popen([sys.executable, "-c", WORKER, fake, str(out), "2"],
                              env={**os.environ, "FAKE_DELAY": "0.3"})
    metrics = out / "trials" / "trial_000" / "metrics.jsonl"
    deadline = time.time() + 60
    while not (metrics.exists() and metrics.read_text().count("\n") >= 2) and time.time() < deadline:
        time.sleep(0.05)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=60) != 0
    # When the same search runs again
    again = subprocess.run([sys.executable, "-c", WORKER, fake, str(out), "2"], timeout=120)
    assert again.returncode == 0
    # Then trial 0 was queued again with the same value, resumed in its workdir, and 2 trials count
    study = _study(out)
    counted = [t for t in study.get_trials() if t.state != optuna.trial.TrialState.FAIL]
    assert len(counted) == 2 and all(t.state == optuna.trial.TrialState.COMPLETE for t in counted)
    retried = [t for t in counted if t.system_attrs.get("failed_trial") == 0]
    assert len(retried) == 1 and retried[0].params == study.trials[0].params
    # and the points are those of an uninterrupted search: point k's values, k = 0, 1 (issue 26.1)
    space = _spec(out, 2).space
    assert sorted(t.params["optim.learning_rate"] for t in counted) == sorted(
        search_space.draw_point(space, 0, k)["optim.learning_rate"] for k in range(2))
    starts = [int(start) for name, start in _calls(out) if name == "trial_000"]
    assert starts[0] == 0 and len(starts) == 2 and starts[1] >= 20  # resumed, not restarted
    steps = [json.loads(line)["step"] for line in metrics.read_text().splitlines()]
    assert steps == sorted(set(steps)) and steps[-1] == 60


@pytest.mark.slow
def test_a_search_waits_for_the_trial_of_a_killed_worker_and_runs_it_again(tmp_path, fake):
    # Given a worker killed (SIGKILL: its trial stays RUNNING in the study) during the last trial
    out = tmp_path / "k"
    worker = subprocess.Popen([sys.executable, "-c", WORKER, fake, str(out), "2"],
                              env={**os.environ, "FAKE_DELAY": "0.15", "GRACE": "5"})
    metrics = out / "trials" / "trial_001" / "metrics.jsonl"
    deadline = time.time() + 60
    while not (metrics.exists() and metrics.read_text().count("\n") >= 1) and time.time() < deadline:
        time.sleep(0.05)
    worker.kill()
    worker.wait(timeout=60)
    assert [t.state for t in _study(out).get_trials()] == [optuna.trial.TrialState.COMPLETE,
                                                            optuna.trial.TrialState.RUNNING]
    # When the search is started again at once (the trial's heartbeat not yet stale: grace 5 s, heartbeat 1 s)
    again = subprocess.run([sys.executable, "-c", WORKER, fake, str(out), "2"], timeout=120,
                           env={**os.environ, "GRACE": "5"})
    # Then it returns only after running that trial again (same values, its workdir resumed):
    # both trials are complete, and none is left running for a best-trial choice to miss
    assert again.returncode == 0
    study = _study(out)
    assert not [t for t in study.get_trials() if t.state == optuna.trial.TrialState.RUNNING]
    complete = [t for t in study.get_trials() if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 2 and complete[1].system_attrs.get("failed_trial") == 1
    assert complete[1].params == study.trials[1].params
    assert [name for name, _ in _calls(out)].count("trial_001") == 2


def test_grid_search_runs_every_point_once(tmp_path, fake):
    # Given a grid of 3 learning rates and a budget larger than the grid
    out = tmp_path / "g"
    spec = _spec(out, trials=10, space="optim.learning_rate=grid(1e-5,1e-4,1e-3)")
    # When it runs, twice (a resumed search)
    search.run_search(spec, command=_fake_command(fake), poll=0.02, startup_trials=100)
    search.run_search(spec, command=_fake_command(fake), poll=0.02, startup_trials=100)
    # Then each point trained exactly once and the best is the middle one (the fake's optimum)
    assert sorted(call[0] for call in _calls(out)) == ["trial_000", "trial_001", "trial_002"]
    study = _study(out)
    rates = sorted(t.params["optim.learning_rate"] for t in study.get_trials())
    assert rates == pytest.approx([1e-5, 1e-4, 1e-3])
    assert study.best_trial.params["optim.learning_rate"] == pytest.approx(1e-4)


def test_grid_cannot_mix_with_sampled_fields():
    space = (search_space.parse_param("optim.learning_rate=grid(1e-3,1e-2)"),
             search_space.parse_param("model.hidden_size=intuniform(8,64)"))
    with pytest.raises(ValueError, match="mixes grid"):
        search_space.draw_point(space, 0, 0)
    assert search_space.grid_of(space[:1]) == {"optim.learning_rate": [1e-3, 1e-2]}
    assert search_space.grid_of(space[1:]) is None


def _finished_study(out, trials):
    """An in-memory study of completed trials ``[(accuracy, loss)]``, each loss in its workdir's results.json."""
    study = optuna.create_study(direction="maximize")
    distribution = optuna.distributions.FloatDistribution(1e-6, 1e-2, log=True)
    for number, (accuracy, loss) in enumerate(trials):
        workdir = search_trials.trial_workdir(str(out), number)
        os.makedirs(workdir)
        with open(os.path.join(workdir, "results.json"), "w") as f:
            json.dump({"step": 60, "valid": {"accuracy": accuracy, "loss": loss}}, f)
        study.add_trial(optuna.trial.create_trial(
            value=accuracy, params={"optim.learning_rate": 10.0 ** -(number + 3)},
            distributions={"optim.learning_rate": distribution},
            user_attrs={"workdir": os.path.relpath(workdir, out)}))
    return study


def test_best_trial_breaks_a_tie_on_accuracy_by_the_lower_validation_loss(tmp_path, monkeypatch):
    # Given trials 0 and 1 tied on validation accuracy, the later one with the lower loss, and a
    # worse-accuracy trial 2 with the lowest loss of all
    spec = search.SearchSpec("configs/negation.py:smoke", (), search_space.parse_metric("valid/accuracy:max"),
                             3, str(tmp_path))
    study = _finished_study(tmp_path, [(0.85, 0.40), (0.85, 0.35), (0.80, 0.10)])
    # When the best trial is chosen, for the summary and for the seed runs
    seeded = []

    def run_seeds(spec, overrides, num_seeds, **options):
        seeded.append(overrides)
        return {"failed": [], "interrupted": []}

    monkeypatch.setattr(search, "check_search", lambda *args, **options: None)
    monkeypatch.setattr(search, "run_search", lambda spec, **options: study)
    monkeypatch.setattr(search, "run_seeds", run_seeds)
    summary = search.search_and_rerun(spec, 1)
    # Then both take trial 1: best accuracy first, then the lower loss
    assert search.best_trial(spec, study).number == 1
    assert summary["best"]["number"] == 1
    assert seeded == [{"optim.learning_rate": pytest.approx(1e-4)}]
    # and a tie on both goes to the earlier trial
    tied = tmp_path / "tied"
    assert search.best_trial(dataclasses.replace(spec, out=str(tied)),
                             _finished_study(tied, [(0.85, 0.35), (0.85, 0.35)])).number == 0


def test_vary_data_seed_sets_gen_seed_of_seed_runs(tmp_path):
    # Given a generated-data smoke config whose trials use gen_seed 0
    spec = search.SearchSpec("configs/negation.py:smoke", (), search_space.parse_metric("valid/mse:min"),
                             1, str(tmp_path))
    seen = []

    def train_fn(config, workdir):
        seen.append((config.train.seed, config.data.gen_seed, config.optim.learning_rate))
        with open(os.path.join(workdir, "results.json"), "w") as f:
            json.dump({"step": 1}, f)

    # When its best config is rerun with 2 seeds and a new dataset per seed
    search.run_seeds(spec, {"optim.learning_rate": 0.01}, 2, train_fn=train_fn, vary_data_seed=True)
    # Then each seed run draws its data with its own seed, at the chosen learning rate
    assert sorted(seen) == [(1, 1, 0.01), (2, 2, 0.01)]


def _search_command(data_dir, out):
    """``python -m rnnlab search`` of 2 points and 1 seed run on the negation smoke config (30 steps)."""
    return [sys.executable, "-m", "rnnlab", "search", f"configs/negation.py:smoke,steps=30,data.data_dir={data_dir}",
            "--space=optim.learning_rate=loguniform(1e-3,1e-1)", "--metric=valid/accuracy:max", "--trials=2",
            "--seeds=1", "--startup_trials=100", "--grace_period=3", f"--out={out}"]


def _workers(data_dir, out, env, count=2):
    """``count`` workers of the search, each logging to ``OUT.worker<i>.log`` (a pipe nobody reads would fill up)."""
    os.makedirs(os.path.dirname(out), exist_ok=True)
    logs = [open(f"{out}.worker{i}.log", "a") for i in range(count)]
    return [subprocess.Popen(_search_command(data_dir, out), cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                             stderr=log) for log in logs]


def _log_tail(out, count=2):
    return "\n".join(open(f"{out}.worker{i}.log").read()[-2000:] for i in range(count))


def _children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(c) for c in f.read().split()]
    except OSError:
        return []


def _outcome(out):
    """What a search answers: its points' values and states, the best point, the seed runs' results."""
    summary = json.load(open(os.path.join(out, "search.json")))
    points = {t["point"]: (t["params"], t["state"], t["value"]) for t in summary["trials"]
              if t["state"] in ("COMPLETE", "PRUNED")}
    seeds = [(s["seed"], s["learning_rate"], s["results"]["valid"], s["results"]["test"]) for s in summary["seeds"]]
    return points, summary["best"]["point"], summary["best"]["params"], seeds


@pytest.mark.slow
@pytest.mark.parametrize("kill_seed", [0])
def test_a_search_killed_anywhere_gives_the_answer_of_an_uninterrupted_one(tmp_path, negation_data, kill_seed):
    import random

    env = dict(os.environ)  # with the session's compilation cache (tests/session.py)
    # Given the answer of an uninterrupted search by one worker: 2 points, then 1 seed run of the best
    start = time.time()
    reference = _workers(negation_data, tmp_path / "ref", env, count=1)
    assert [w.wait(timeout=300) for w in reference] == [0], _log_tail(tmp_path / "ref", 1)
    duration = time.time() - start
    expected = _outcome(tmp_path / "ref")
    assert sorted(expected[0]) == [0, 1]
    best = json.load(open(tmp_path / "ref" / "search.json"))["best"]
    assert best["value"] == pytest.approx(json.load(open(tmp_path / "ref" / best["workdir"] / "results.json"))
                                          ["valid"]["accuracy"])
    # When the same search by two workers is killed (SIGKILL) at a seeded random moment, a worker or a
    # trial's child,
    rng = random.Random(kill_seed)
    out = tmp_path / "killed"
    workers = _workers(negation_data, out, env)
    time.sleep(rng.uniform(0.1, 0.5) * duration)  # two workers take about 2/3 of one's time (3 trials, 2 at once)
    assert any(w.poll() is None for w in workers), "the search ended before the kill"
    target = rng.choice(["worker", "child"])
    victims = [w.pid for w in workers] if target == "worker" else [c for w in workers for c in _children(w.pid)]
    victim = rng.choice(victims or [w.pid for w in workers])
    os.kill(victim, signal.SIGKILL)
    for w in workers:
        w.wait(timeout=300)
    # and run again to completion
    again = _workers(negation_data, out, env, count=1)[0]
    assert again.wait(timeout=300) == 0, _log_tail(out, 1)
    # Then it has the same points (values and results), the same best point and the same seed run: neither
    # the kill nor the number of workers changes the answer
    assert _outcome(out) == expected, f"killed {target} {victim}"


# ---------------------------------------------------------------------------
# Issue 26: the same answer after any interruption; errors that name what is wrong


def _counted(study):
    return [t for t in study.get_trials() if t.state in (optuna.trial.TrialState.COMPLETE,
                                                         optuna.trial.TrialState.PRUNED)]


def test_a_trial_whose_child_is_killed_is_retried_from_its_checkpoint(tmp_path, fake, monkeypatch):
    # Given a search whose first child is killed (SIGKILL) after its evaluation at step 30
    monkeypatch.setenv("FAKE_KILL_AT", "30")
    out = tmp_path / "c"
    # When the search runs
    study = search.run_search(_spec(out, 2), command=_fake_command(fake), poll=0.02, startup_trials=100)
    # Then each point completed once, with its own values, point 0 after one retry that resumed its workdir
    counted = _counted(study)
    assert sorted(search_trials.point_of(t) for t in counted) == [0, 1]
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in counted)
    failed = [t for t in study.get_trials() if t.state == optuna.trial.TrialState.FAIL]
    assert [(search_trials.point_of(t), t.user_attrs["status"]) for t in failed] == [(0, "failed")]
    assert "-9" in failed[0].user_attrs["error"]
    assert [int(start) for name, start in _calls(out) if name == "trial_000"] == [0, 30]
    assert {search_trials.point_of(t): t.params for t in counted} == {k: search_space.draw_point(_spec(out, 2).space, 0, k)
                                                             for k in (0, 1)}


def test_a_point_that_always_fails_is_given_up_after_its_retries(tmp_path, fake, monkeypatch):
    # Given a trainer that crashes at once, every time
    monkeypatch.setenv("FAKE_FAIL", "1")
    monkeypatch.setattr(search, "check_search", lambda *args, **options: None)
    out = tmp_path / "f"
    # When a search of 1 point with 1 retry runs (and is run again)
    for _ in range(2):
        with pytest.raises(search.SearchFailed, match=r"point\(s\) \[0\] failed 2 times .*cannot do"):
            search.search_and_rerun(_spec(out, 1), 1, retries=1, command=_fake_command(fake), poll=0.02)
    # Then it tried twice, not for ever, and ran no seed run
    assert [name for name, _ in _calls(out)] == ["trial_000", "trial_000"]
    assert not list(out.glob("best__seed*"))


def test_a_rerun_with_another_spec_is_refused_or_starts_a_new_study_beside(tmp_path, fake):
    out = tmp_path / "m"
    spec = _spec(out, 2)
    search.run_search(spec, command=_fake_command(fake), poll=0.02, startup_trials=100)
    # When the same folder is searched on another metric (or space, or sampler seed)
    other = dataclasses.replace(spec, metric=search_space.parse_metric("valid/nll:max"))
    with pytest.raises(search.SearchError, match=r"metric valid/nll:min -> valid/nll:max.*--new_study"):
        search.run_search(other, command=_fake_command(fake), poll=0.02)
    with pytest.raises(search.SearchError, match="sampler_seed 0 -> 1"):
        search.run_search(spec, seed=1, command=_fake_command(fake), poll=0.02)
    # Then nothing ran; more trials extend the study (its first points stay), fewer are refused
    assert len(_calls(out)) == 2
    with pytest.raises(search.SearchError, match="trials 2 -> 1"):
        search.run_search(dataclasses.replace(spec, trials=1), command=_fake_command(fake), poll=0.02)
    study = search.run_search(dataclasses.replace(spec, trials=3), command=_fake_command(fake), poll=0.02,
                              startup_trials=100)
    assert sorted(search_trials.point_of(t) for t in _counted(study)) == [0, 1, 2]
    # and with --new_study the other spec gets its own study in OUT-2, again on a rerun
    record = search.spec_record(other, 0, 0)
    assert search.beside(other, record, "search")[0].out == str(out) + "-2"
    search.run_search(dataclasses.replace(other, out=str(out) + "-2"), record=record,
                      command=_fake_command(fake), poll=0.02)
    assert search.beside(other, record, "search")[0].out == str(out) + "-2"


@pytest.mark.parametrize("name", ["s/q?mode=ro", "a%20b", "a#b"])
def test_out_with_url_characters_keeps_the_study_in_the_folder(tmp_path, fake, name):
    out = tmp_path / name
    search.run_search(_spec(out, 1), command=_fake_command(fake), poll=0.02)
    assert (out / "study.db").is_file() and (out / "trials" / "trial_000" / "results.json").is_file()


def test_out_must_be_a_folder_path(tmp_path):
    (tmp_path / "file").write_text("")
    for out, message in [("sqlite:///x.db", "not a database URL"), (str(tmp_path / "file"), "not a folder")]:
        with pytest.raises(search.SearchError, match=f"--out=.*{message}"):
            search.check_out(out)


def test_a_damaged_study_database_is_named(tmp_path, fake):
    out = tmp_path / "d"
    out.mkdir()
    (out / "study.db").write_bytes(b"not a database" * 100)
    with pytest.raises(search_trials.StudyError, match=f"{out}/study.db.*damaged"):
        search.run_search(_spec(out, 1), command=_fake_command(fake), poll=0.02)


def test_a_full_disk_is_named(tmp_path, fake, monkeypatch):
    import sqlite3

    import sqlalchemy

    out = tmp_path / "full"

    def full(*args, **kwargs):
        raise sqlalchemy.exc.OperationalError("UPDATE trials", {}, sqlite3.OperationalError("database or disk is full"))

    monkeypatch.setattr(optuna.storages.RDBStorage, "set_trial_state_values", full)
    with pytest.raises(search_trials.StudyError, match=f"the disk of {out}/study.db is full"):
        search.run_search(_spec(out, 1), command=_fake_command(fake), poll=0.02)


LOCKER = textwrap.dedent('''
    import sqlite3, sys, time
    db = sqlite3.connect(sys.argv[1], isolation_level=None)
    db.execute("BEGIN EXCLUSIVE")
    open(sys.argv[1] + ".held", "w").close()
    time.sleep(float(sys.argv[2]))
''')


@pytest.mark.slow
def test_a_locked_study_database_is_waited_for_then_named(tmp_path, fake):
    out = tmp_path / "l"
    spec = _spec(out, 1)
    search.run_search(spec, command=_fake_command(fake), poll=0.02, startup_trials=100)  # makes the database
    db = out / "study.db"

    def hold(seconds):
        locker = subprocess.Popen([sys.executable, "-c", LOCKER, str(db), str(seconds)])
        while not (out / "study.db.held").exists():
            time.sleep(0.02)
        (out / "study.db.held").unlink()
        return locker

    # When another process holds the database shorter than the timeout, the search waits and goes on
    locker = hold(1.0)
    more = dataclasses.replace(spec, trials=2)
    study = search.run_search(more, command=_fake_command(fake), poll=0.02, startup_trials=100, db_timeout=10)
    locker.wait()
    assert len(_counted(study)) == 2
    # and when it holds it longer, the error names the file, not Optuna's UnboundLocalError
    locker = hold(2.5)  # the search gives up after db_timeout (0.5 s) of waiting
    with pytest.raises(search_trials.StudyError, match=f"{db} stayed locked"):
        search.run_search(more, command=_fake_command(fake), poll=0.02, db_timeout=0.5)
    locker.wait()


SEEDS_WORKER = textwrap.dedent('''
    import json, os, sys, time
    from rnnlab.experiments import search, search_space
    from rnnlab.training.lock import WorkdirLock
    spec = search.SearchSpec("configs/negation.py:smoke", (), search_space.parse_metric("valid/mse:min"),
                             1, sys.argv[1])

    def train(config, workdir):
        with WorkdirLock(workdir):
            if not os.path.exists(os.path.join(workdir, "results.json")):
                time.sleep(1.0)
                with open(os.path.join(workdir, "results.json"), "w") as f:
                    json.dump({"step": 1}, f)

    status = search.run_seeds(spec, {"optim.learning_rate": 0.01}, 2, train_fn=train, poll=0.2)
    sys.exit(1 if status["failed"] or status["interrupted"] else 0)
''')


@pytest.mark.slow
def test_workers_that_lose_the_race_for_a_seed_run_wait_for_it(tmp_path):
    # Given three workers that reach the seed runs together
    workers = [subprocess.Popen([sys.executable, "-c", SEEDS_WORKER, str(tmp_path / "race")], cwd=ROOT,
                                stderr=subprocess.PIPE) for _ in range(3)]
    # Then every one ends well (those that lost a run waited for it) and each seed run trained once
    logs = [w.communicate(timeout=120)[1].decode() for w in workers]
    assert [w.returncode for w in workers] == [0, 0, 0], logs[-1][-2000:]
    assert sorted(os.listdir(tmp_path / "race")) == ["best__seed1", "best__seed2", "sweep.jsonl"]


def test_check_search_refuses_before_any_work(tmp_path, negation_data):
    config = f"configs/negation.py:smoke,data.data_dir={negation_data}"
    good = search.SearchSpec(config, (search_space.parse_param("optim.learning_rate=loguniform(1e-3,1e-2)"),),
                             search_space.parse_metric("valid/accuracy:max"), 2, str(tmp_path / "o"))
    search.check_search(good, 1)
    assert search.metric_names(search.sweep.load_config("configs/negation.py", "smoke,data.data_dir="
                                                        + negation_data)) == {"loss", "accuracy", "negated_accuracy"}
    for change, message in [
        (dict(metric=search_space.parse_metric("valid/nll:min")), "write accuracy, loss, negated_accuracy per split, not 'nll'"),
        (dict(metric=search_space.parse_metric("test/accuracy:max")), "test split.*--allow_test_metric"),
        (dict(metric=search_space.parse_metric("train/accuracy:max")), "splits valid, test, not 'train'"),
        (dict(space=(search_space.parse_param("optim.lr=loguniform(1e-3,1e-2)"),)), "'optim.lr': the config has no such"),
        (dict(space=(search_space.parse_param("model.cell=choice(lstm,lstmm)"),)), "point 1 .*unknown cell 'lstmm'"),
        (dict(trials=0), "--trials=0: give a positive"),
        (dict(out="sqlite:///s.db"), "--out=.*not a database URL"),
    ]:
        with pytest.raises(search.SearchError, match=message):
            search.check_search(dataclasses.replace(good, **change), 1)
    with pytest.raises(search.SearchError, match="--seeds=-1"):
        search.check_search(good, -1)
    search.check_search(dataclasses.replace(good, metric=search_space.parse_metric("test/accuracy:max")), 1,
                        allow_test_metric=True)
    assert not os.path.exists(good.out)


def test_the_command_says_what_is_wrong_in_one_line(tmp_path, negation_data):
    # Given the default --metric (valid/nll) on a classification config
    out = tmp_path / "cli"
    run = subprocess.run([sys.executable, "-m", "rnnlab", "search", f"configs/negation.py:smoke,data.data_dir={negation_data}",
                          "--space=optim.learning_rate=loguniform(1e-3,1e-2)", f"--out={out}"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    # Then it exits 1 at once with one line naming the metric, having trained nothing
    assert run.returncode == 1
    assert run.stderr.strip().splitlines()[-1].startswith("rnnlab search: --metric=valid/nll")
    assert "Traceback" not in run.stderr and not out.exists()


def test_workers_taking_queued_trials_together_each_take_another(tmp_path, monkeypatch):
    # Given a study with one queued point, and SQLite reads made slow (a window in which another
    # worker reads the same trial still WAITING: Optuna's check-then-set is not atomic in SQLite)
    import threading

    from optuna.storages._rdb import models

    spec = _spec(tmp_path / "race", 4)
    study = search_trials.open_study(spec.out, spec.metric)
    study.enqueue_trial({"optim.learning_rate": 1e-3})
    find = models.TrialModel.find_or_raise_by_id

    def slow_find(*args, **kwargs):
        trial = find(*args, **kwargs)
        time.sleep(0.2)
        return trial

    monkeypatch.setattr(models.TrialModel, "find_or_raise_by_id", slow_find)
    # When four workers (each with its own connection) ask for a trial at once
    taken = []

    def worker():
        own = search_trials.open_study(spec.out, spec.metric)
        taken.append(own.ask().number)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Then each runs a trial of its own: the queued one went to one worker only
    assert sorted(taken) == [0, 1, 2, 3]
