"""End-to-end tests of launch.py in subprocesses: flags, SIGTERM, SIGKILL and resume."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _launch(workdir, data_dir, *flags, wait=True):
    """Runs ``python launch.py --config=configs/negation.py:smoke`` with a slower run than smoke."""
    command = [
        sys.executable, "launch.py", "--config=configs/negation.py:smoke", f"--workdir={workdir}",
        f"--config.data.data_dir={data_dir}", "--config.train.num_steps=200",
        "--config.train.checkpoint_every=10", "--config.train.eval_every=0", "--config.train.log_every=10",
        *flags,
    ]
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    if wait:
        return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)


def _wait_for_checkpoint(process, ckdir, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if os.path.isdir(ckdir) and any(name.isdigit() for name in os.listdir(ckdir)):
            return
        assert process.poll() is None, process.stderr.read()[-3000:]
        time.sleep(0.05)
    raise AssertionError("no checkpoint appeared")


@pytest.mark.slow
def test_sigkill_mid_training_then_the_same_command_resumes_and_completes(tmp_path):
    workdir, data_dir = tmp_path / "run", tmp_path / "tfds"
    process = _launch(workdir, data_dir, wait=False)
    _wait_for_checkpoint(process, workdir / "checkpoints")
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    assert not (workdir / "results.json").exists()

    finished = _launch(workdir, data_dir)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert "restored checkpoint step" in finished.stderr
    results = json.loads((workdir / "results.json").read_text())
    assert results["step"] == 200 and 0.0 <= results["test"]["accuracy"] <= 1.0
    steps = [json.loads(line)["step"] for line in (workdir / "metrics.jsonl").read_text().splitlines()
             if "train/loss" in line]
    assert steps == list(range(10, 201, 10))  # no step logged twice, none missing


def test_sigterm_saves_a_checkpoint_and_exits_cleanly(tmp_path):
    workdir, data_dir = tmp_path / "run", tmp_path / "tfds"
    process = _launch(workdir, data_dir, "--config.train.num_steps=100000", "--config.model.cell=gru",
                      wait=False)
    _wait_for_checkpoint(process, workdir / "checkpoints")
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr[-3000:]
    stopped_at = int(re.search(r"signal 15: saved step (\d+) in .* run the same command again to resume",
                               stderr).group(1))
    steps = sorted(int(n) for n in os.listdir(workdir / "checkpoints") if n.isdigit())
    assert steps[-1] == stopped_at >= 10
    saved = json.loads((workdir / "config.json").read_text())  # flags override config fields
    assert saved["model"]["cell"] == "gru" and saved["train"]["num_steps"] == 100000
    assert not (workdir / "results.json").exists()


def test_missing_workdir_and_bad_flag_values_are_errors(tmp_path):
    missing = subprocess.run([sys.executable, "-m", "rnnlab", "launch", "--config=configs/negation.py"],
                             cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert missing.returncode != 0 and "workdir" in missing.stderr
    bad = _launch(tmp_path / "bad", tmp_path / "tfds", "--config.model.pooling=sum")
    assert bad.returncode != 0 and "config.model.pooling: unknown pooling 'sum'" in bad.stderr


def test_python_m_rnnlab_lists_its_commands_and_refuses_an_unknown_one():
    from rnnlab.commands import COMMANDS

    for argv, said in ((["-m", "rnnlab"], ""), (["-m", "rnnlab", "sweeep"], "unknown command 'sweeep'; ")):
        done = subprocess.run([sys.executable, *argv], cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert done.returncode == 1
        assert done.stderr.strip() == f"usage: python -m rnnlab COMMAND [flags]: {said}commands: {', '.join(COMMANDS)}"
    # and a command runs its own flags: --help lists them
    done = subprocess.run([sys.executable, "-m", "rnnlab", "gates", "--help"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0 and "--memory_fraction" in done.stdout


def test_named_runs_reads_name_equals_workdir_and_names_a_bad_item():
    from absl import app

    from rnnlab.commands.common import named_runs

    assert named_runs(["lstm=runs/a", "lstm=runs/b", "gru=runs/x=1"]) == [
        ("lstm", "runs/a"), ("lstm", "runs/b"), ("gru", "runs/x=1")]  # a workdir may hold '='
    for bad in ("runs/a", "=runs/a", "lstm="):
        with pytest.raises(app.UsageError, match=f"--run takes NAME=WORKDIR, got '{re.escape(bad)}'"):
            named_runs([bad])
