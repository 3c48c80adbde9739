"""Tests of rnnlab.experiments.sweep: grid expansion, skip finished, resume unfinished, failures."""

import json
import os
import textwrap

import pytest

from rnnlab.experiments import sweep

_CONFIG = textwrap.dedent(
    """
    import ml_collections

    def get_config(arg=""):
        config = ml_collections.ConfigDict()
        config.train = ml_collections.ConfigDict({"seed": 0, "num_steps": 4})
        config.model = ml_collections.ConfigDict({"cell": "lstm"})
        for item in filter(None, arg.split(",")):
            key, _, value = item.partition("=")
            if key == "smoke":
                config.train.num_steps = 1
            else:
                config.model[key] = value
        config.lock()
        return config

    def get_sweep():
        return ["cell=lstm", "cell=gru"]
    """
)


@pytest.fixture
def config_path(tmp_path):
    folder = tmp_path / "configs"
    folder.mkdir()
    path = folder / "toy.py"
    path.write_text(_CONFIG)
    return str(path)


class FakeTrainer:
    """Counts steps in workdir/progress.json; crashes once at ``crash_at`` steps."""

    def __init__(self, crash_at=None, fail_cells=()):
        self.crash_at = crash_at
        self.fail_cells = fail_cells
        self.calls = []

    def __call__(self, config, workdir):
        self.calls.append((workdir, config.model.cell, config.train.seed))
        if config.model.cell in self.fail_cells:
            raise ValueError("bad cell")
        progress = os.path.join(workdir, "progress.json")
        step = json.load(open(progress))["step"] if os.path.exists(progress) else 0
        while step < config.train.num_steps:
            step += 1
            json.dump({"step": step}, open(progress, "w"))
            if step == self.crash_at:
                self.crash_at = None
                raise KeyboardInterrupt  # like a kill: the sweep itself dies
        json.dump({"test": {"accuracy": 1.0}, "step": step}, open(os.path.join(workdir, "results.json"), "w"))


def test_expand_grid_from_get_sweep_times_seeds(config_path):
    runs = sweep.expand([config_path], seeds=[0, 1, 2])
    names = [(r.name, r.seed) for r in runs]
    assert names == [(n, s) for n in ("toy-cell=lstm", "toy-cell=gru") for s in (0, 1, 2)]
    explicit = sweep.expand([config_path + ":cell=tanh", config_path + ":cell=tanh"], seeds=[3], also="smoke")
    assert [(r.name, r.arg, r.seed) for r in explicit] == [("toy-cell=tanh+smoke", "cell=tanh,smoke", 3)]


def test_expand_rejects_empty_seeds(config_path):
    with pytest.raises(ValueError, match="no seeds"):
        sweep.expand([config_path], seeds=[])


def test_load_config_sets_seed_and_missing_file_is_named(config_path, tmp_path):
    config = sweep.load_config(config_path, "cell=gru,smoke", seed=7)
    assert (config.train.seed, config.model.cell, config.train.num_steps) == (7, "gru", 1)
    with pytest.raises(FileNotFoundError, match="nope.py"):
        sweep.load_config(str(tmp_path / "nope.py"))


def test_run_sweep_skips_finished_and_resumes_interrupted(config_path, tmp_path):
    # Given a sweep that is killed in the middle of its second run
    out = str(tmp_path / "runs")
    runs = sweep.expand([config_path], seeds=[0, 1])
    sweep.run_sweep(runs[:1], out, train_fn=FakeTrainer())
    trainer = FakeTrainer(crash_at=2)
    with pytest.raises(KeyboardInterrupt):
        sweep.run_sweep(runs, out, train_fn=trainer)
    interrupted = runs[1].workdir(out)
    assert not sweep.is_finished(interrupted)
    assert json.load(open(os.path.join(interrupted, "progress.json")))["step"] == 2
    # When it is run again
    again = FakeTrainer()
    status = sweep.run_sweep(runs, out, train_fn=again)
    # Then the finished run is skipped, the interrupted one resumes, the rest run
    assert status["skipped"] == [runs[0].workdir(out)]
    assert [c[0] for c in again.calls] == [r.workdir(out) for r in runs[1:]]
    assert all(sweep.is_finished(r.workdir(out)) for r in runs)
    assert [c[2] for c in again.calls] == [1, 0, 1]  # the seed reaches the config
    # and a third run does nothing
    third = FakeTrainer()
    assert len(sweep.run_sweep(runs, out, train_fn=third)["skipped"]) == len(runs)
    assert third.calls == []


def test_run_sweep_logs_failures_and_goes_on(config_path, tmp_path):
    out = str(tmp_path / "runs")
    runs = sweep.expand([config_path], seeds=[0])
    status = sweep.run_sweep(runs, out, train_fn=FakeTrainer(fail_cells=("lstm",)))
    assert status["failed"] == [runs[0].workdir(out)]
    assert status["finished"] == [runs[1].workdir(out)]
    log = [json.loads(line) for line in open(os.path.join(out, sweep.LOG_FILE))]
    assert [(r["name"], r["status"]) for r in log] == [("toy-cell=lstm", "failed"), ("toy-cell=gru", "finished")]
    assert "bad cell" in log[0]["error"]


def test_run_sweep_stops_when_a_run_was_stopped_by_a_signal(config_path, tmp_path):
    # Given a trainer that returns without results.json, as training does after SIGTERM
    out = str(tmp_path / "runs")
    runs = sweep.expand([config_path + ":cell=gru"], seeds=[0, 1])
    calls = []
    status = sweep.run_sweep(runs, out, train_fn=lambda config, workdir: calls.append(workdir))
    # Then the sweep stops after it (the signal was meant for the sweep too) and says so
    assert status["interrupted"] == [runs[0].workdir(out)] and calls == [runs[0].workdir(out)]
    assert not status["failed"] and not status["finished"]


def test_group_name_strips_seed():
    assert sweep.group_name("runs/claims/negation-cell=gru__seed12/") == "negation-cell=gru"
    assert sweep.group_name("runs/x") == "x"
