"""Data parallelism: 4 fake CPU devices give the loss curve of 1 device (float tolerance); two
processes on localhost (jax.distributed, gloo CPU collectives) give the run of one, and resume
bitwise after a SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

import rnnlab.data
from rnnlab.training import checkpoint
from rnnlab.training.workdir import CHECKPOINT_DIR, read_metrics
from tests.train_fixtures import cpu_devices_env, smoke_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = textwrap.dedent("""
    import functools, json
    import jax, numpy as np
    from rnnlab.training import models, tasks, train
    from tests.train_fixtures import fake_batch, fake_spec, smoke_config

    assert len(jax.devices()) == 4, jax.devices()
    config = smoke_config("unused")
    config.model.hidden_size, config.model.embed_size, config.model.dropout = 8, 6, 0.0
    spec = fake_spec("classify")
    model = models.build_model(config.model, spec)
    tx = train.make_optimizer(config.optim, 10)
    batches = [fake_batch(spec, batch_size=8, steps=9, seed=s) for s in range(5)]
    curves, placements = {}, {}
    for n in (1, 4):
        mesh = train.make_mesh(n)
        state = train.replicate(train.init_state(model, tx, jax.random.PRNGKey(0), batches[0]), mesh)
        train_fn, eval_fn = train.compile_steps(model, tx, tasks.classify_stats, mesh)
        losses = []
        for batch in batches:
            sharded = train.shard_batch(batch, mesh)
            placements[n] = len(sharded["inputs"].sharding.device_set)
            state, stats = train_fn(state, sharded)
            losses.append(tasks.finalize(jax.device_get(stats))["loss"])
        placements[f"params{n}"] = len(jax.tree.leaves(state.params)[0].sharding.device_set)
        losses.append(train.evaluate(eval_fn, state.params, [train.shard_batch(batches[0], mesh)])["loss"])
        curves[n] = losses
    print(json.dumps({"curves": curves, "placements": placements}))
""")


@pytest.mark.slow
def test_four_devices_give_the_loss_curve_of_one():
    env = cpu_devices_env(4)
    result = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    one, four = out["curves"]["1"], out["curves"]["4"]
    assert out["placements"] == {"1": 1, "4": 4, "params1": 1, "params4": 4}
    assert len(one) == 6 and one[0] != one[-1]
    for a, b in zip(one, four):
        assert abs(a - b) <= 1e-5 * max(1.0, abs(a)), (one, four)


# --- several processes (hosts) on localhost: jax.distributed with gloo CPU collectives -------------

HOSTS_SCRIPT = textwrap.dedent("""
    import json, os, signal, sys
    import numpy as np
    import rnnlab.data
    from rnnlab.training import train
    from tests.train_fixtures import smoke_config

    out, workdir, data_dir = sys.argv[1], sys.argv[2], sys.argv[3]
    processes, process_id, port, kill_at = (int(a) for a in sys.argv[4:8])
    config = smoke_config(data_dir, "bow,smoke", **{
        "train.num_steps": 9, "train.log_every": 1, "train.eval_every": 3, "train.checkpoint_every": 3,
        "train.num_processes": processes, "train.process_id": process_id,
        "train.coordinator_address": f"127.0.0.1:{port}"})
    make_loader = rnnlab.data.make_loader

    def recording_loader(data_config, split, **kwargs):
        loader = make_loader(data_config, split, **kwargs)
        if split != "train":
            return loader
        count = {"n": 0}

        class Recording:
            def __iter__(self):
                return self

            def __next__(self):
                batch = next(loader)
                count["n"] += 1
                if count["n"] == kill_at:
                    os.kill(os.getpid(), signal.SIGKILL)
                if count["n"] == 1:
                    np.save(os.path.join(out, f"rows{process_id}.npy"), batch["inputs"])
                return batch

            get_state, set_state = loader.get_state, loader.set_state

        return Recording()

    rnnlab.data.make_loader = recording_loader
    results = train.train_and_evaluate(config, workdir)
    with open(os.path.join(out, f"results{process_id}.json"), "w") as f:
        json.dump({k: results[k] for k in ("step", "valid", "test")}, f)
""")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch_hosts(tmp_path, workdir, processes, kill_at=0, devices=1):
    """Starts ``processes`` processes of :data:`HOSTS_SCRIPT` training into ``workdir``; each logs to a file."""
    env = cpu_devices_env(devices, JAX_CPU_COLLECTIVES_IMPLEMENTATION="gloo",
                          # the relaunch loads the programs the killed launch compiled
                          JAX_COMPILATION_CACHE_DIR=str(tmp_path / "jax_cache"),
                          JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")
    port = _free_port()
    started = []
    for i in range(processes):
        log = open(tmp_path / f"{os.path.basename(workdir)}-{port}-{i}.log", "w")
        started.append(subprocess.Popen(
            [sys.executable, "-c", HOSTS_SCRIPT, str(tmp_path), str(workdir), str(tmp_path / "tfds"),
             str(processes), str(i), str(port), str(kill_at if i == processes - 1 else 0)],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, text=True))
        started[-1].log = log.name
        log.close()
    return started


def _output(process) -> str:
    with open(process.log) as f:
        return f.read()[-3000:]


def _wait(processes, timeout=240):
    for p in processes:
        p.wait(timeout=timeout)
    for p in processes:
        assert p.returncode == 0, _output(p)


def _final_checkpoint(workdir):
    checkpoints = checkpoint.Checkpointer(os.path.join(workdir, CHECKPOINT_DIR))
    step = checkpoints.steps()[-1]
    arrays = checkpoints._manager.restore(step)["arrays"]
    checkpoints.close()
    return step, [np.asarray(x) for x in jax.tree.leaves(arrays)]


@pytest.mark.slow
def test_two_processes_read_their_own_rows_match_one_process_and_resume_bitwise_after_a_sigkill(tmp_path):
    # Given: the data prepared once, and one process with 2 devices as the reference
    rnnlab.data.prepare(smoke_config(tmp_path / "tfds", "bow,smoke").data)
    single = tmp_path / "single"
    _wait(_launch_hosts(tmp_path, single, processes=1, devices=2))
    reference_rows = np.load(tmp_path / "rows0.npy")
    reference = json.loads((tmp_path / "results0.json").read_text())

    # When: two processes train into one workdir; the second is SIGKILLed at its 5th batch (after
    # the checkpoint of step 3), the first then killed too, and both are launched again
    two = tmp_path / "two"
    first = _launch_hosts(tmp_path, two, processes=2, kill_at=5)
    first[1].wait(timeout=240)
    assert first[1].returncode == -signal.SIGKILL, _output(first[1])
    first[0].kill()  # blocked in a collective with its dead peer
    first[0].wait()
    assert not (two / "results.json").exists()
    rows = [np.load(tmp_path / f"rows{i}.npy") for i in range(2)]
    _wait(_launch_hosts(tmp_path, two, processes=2))

    # Then: each process read its own half of every batch; the losses, final state and results
    # equal the single process's bit for bit
    half = len(reference_rows) // 2
    assert rows[0].shape[0] == rows[1].shape[0] == half
    np.testing.assert_array_equal(np.concatenate(rows), reference_rows)
    losses = lambda d: [(r["step"], r["train/loss"]) for r in read_metrics(str(d)) if "train/loss" in r]
    assert losses(two) == losses(single) and len(losses(single)) == 9
    step_a, a = _final_checkpoint(str(single))
    step_b, b = _final_checkpoint(str(two))
    assert step_a == step_b == 9 and len(a) == len(b) > 4
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    for i in range(2):
        assert json.loads((tmp_path / f"results{i}.json").read_text()) == reference
    assert json.loads((two / "results.json").read_text())["test"] == reference["test"]
    assert not list(two.glob("lock*"))  # both processes released their locks
