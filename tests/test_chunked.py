"""Truncated BPTT (data.chunk_len): the chunk loader, carries across batches, exact chunked evaluation,
bitwise resume mid-sequence, equality with whole sequences when a chunk covers them, several devices."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import optax
import pytest

import rnnlab.data as rd
from configs import music
from rnnlab.training import checkpoint, models, steps, tasks, train
from rnnlab.training.workdir import CHECKPOINT_DIR, read_metrics
from tests.test_data_files import write_mat
from tests.train_fixtures import cpu_devices_env, smoke_config, stop_after

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LENGTHS = {"traindata": [5, 9, 12, 3, 7, 21, 30, 14], "validdata": [6, 16, 2, 25, 11], "testdata": [4, 30, 9]}


@pytest.fixture(scope="module")
def mat_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("music")
    write_mat(folder / "JSB_Chorales.mat", LENGTHS)
    return folder


def music_config(folder, **fields):
    """``configs/music.py:smoke`` on the tiny corpus of ``folder`` (batch 4, buckets (16, 32)), ``fields`` set."""
    config = music.get_config("smoke")
    config.data.path, config.data.data_dir = str(folder), str(folder / "tfds")
    config.data.buckets, config.data.crop, config.data.batch_size = (16, 32), False, 4
    config.train.final_splits = ()
    for path, value in fields.items():
        section, field = path.split(".")
        config[section][field] = value
    return config


def take(loader, n):
    return [next(loader) for _ in range(n)]


def whole_sequences(config, split):
    """``{example: targets f32[L, 88]}`` of ``split`` read whole, keyed by the bytes of the targets."""
    loader = rd.make_loader(config.data, split, seed=0, shuffle=False, num_epochs=1)
    return sorted(y[:n].tobytes() for b in loader for y, n, w in zip(b["targets"], b["lengths"], b["weights"]) if w)


# --- the loader ------------------------------------------------------------------------------------


def test_rows_read_their_sequence_chunk_after_chunk_resetting_exactly_at_starts(mat_dir):
    # Given: chunks of 4 steps of the training split, one epoch, shuffled
    config = music_config(mat_dir, **{"data.chunk_len": 4})
    batches = list(rd.make_loader(config.data, "train", seed=3, shuffle=True, num_epochs=1, chunked=True))
    # When: each row's chunks are joined, a new piece begun at every reset (and ended by an empty row)
    pieces, current = [], [[] for _ in range(4)]
    for b in batches:
        assert b["inputs"].shape == (4, 4, 88) and b["reset"].dtype == np.bool_
        for r in range(4):
            if (b["reset"][r] or b["weights"][r] == 0) and current[r]:
                pieces.append(current[r])
                current[r] = []
            if b["weights"][r] > 0:
                current[r].append(b["targets"][r, : b["lengths"][r]])
    pieces += [c for c in current if c]
    # Then: they are exactly the training pieces, each once, in full chunks of 4 steps but the last
    assert sorted(np.concatenate(p).tobytes() for p in pieces) == whole_sequences(config, "train")
    assert all(len(c) == 4 for p in pieces for c in p[:-1]) and all(0 < len(p[-1]) <= 4 for p in pieces)


def test_every_step_of_every_sequence_is_read_once_per_epoch_and_inputs_shift_across_chunks(mat_dir):
    config = music_config(mat_dir, **{"data.chunk_len": 5})
    loader = rd.make_loader(config.data, "valid", seed=0, shuffle=False, num_epochs=2, chunked=True)
    batches = list(loader)
    steps_read = sum(int(b["lengths"].sum()) for b in batches)
    assert steps_read == 2 * sum(LENGTHS["validdata"])
    # a chunk after the first of its sequence starts with the previous chunk's last frame as input
    for prev, b in zip(batches, batches[1:]):
        for r in np.flatnonzero(~b["reset"] & (b["weights"] > 0)):
            np.testing.assert_array_equal(b["inputs"][r, 0], prev["targets"][r, prev["lengths"][r] - 1])


def test_the_stream_state_resumes_exactly_mid_sequence(mat_dir):
    config = music_config(mat_dir, **{"data.chunk_len": 4})
    loader = rd.make_loader(config.data, "train", seed=2, shuffle=True, num_epochs=None, chunked=True)
    take(loader, 7)  # past the first epoch's end, rows mid-sequence
    state = json.loads(json.dumps(loader.get_state()))
    assert any(row is not None and row[1] > 0 for row in state["stream"]["rows"])
    expected = take(loader, 6)
    resumed = rd.make_loader(config.data, "train", seed=2, shuffle=True, num_epochs=None, chunked=True)
    resumed.set_state(state)
    for a, b in zip(take(resumed, 6), expected):
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    other = rd.make_loader(music_config(mat_dir, **{"data.chunk_len": 5}).data, "train", seed=2, shuffle=True,
                           num_epochs=None, chunked=True)
    with pytest.raises(ValueError, match="chunk_len"):
        other.set_state(state)
    whole = rd.make_loader(config.data, "train", seed=2, shuffle=True, num_epochs=None)
    with pytest.raises(ValueError, match="does not match"):
        whole.set_state(state)
    with pytest.raises(ValueError, match="no chunk stream"):
        resumed.set_state({**whole.get_state(), "chunk_len": 4})


def test_per_sequence_targets_weigh_only_the_last_chunk(tmp_path):
    config = smoke_config(tmp_path, **{"data.chunk_len": 3})
    batches = list(rd.make_loader(config.data, "valid", seed=0, shuffle=False, num_epochs=1, chunked=True))
    rows = [(b["weights"][r], b["lengths"][r]) for b in batches for r in range(len(b["weights"]))]
    assert sum(w for w, _ in rows) == config.data.num_valid  # each sentence's label counts once
    assert all(w == 0 or n <= 3 for w, n in rows) and any(w == 0 and n == 3 for w, n in rows)


# --- carries across batches and exact chunked evaluation ------------------------------------------


def _setup(config, tx, seed=0):
    """``(model, task, state with carries, jitted train_step)`` of ``config``'s model on its dataset."""
    spec = rd.prepare(config.data)
    model = models.build_model(config.model, spec)
    task = tasks.get_task(spec.task)
    example = steps.example_batch(spec, config.data.batch_size, 4)
    state = steps.init_state(model, tx, jax.random.PRNGKey(seed), example, carry=True)
    return model, task, state, jax.jit(functools.partial(steps.train_step, model=model, tx=tx, task=task))


def _chunk_losses(config, train_fn, state, reset_always=False):
    """The summed loss of one pass of chunks of ``valid`` through ``train_fn`` (SGD at rate 0: params fixed)."""
    total = 0.0
    for batch in rd.make_loader(config.data, "valid", seed=0, shuffle=False, num_epochs=1, chunked=True):
        if reset_always:
            batch["reset"] = np.ones_like(batch["reset"])
        state, stats = train_fn(state, batch)
        total += float(stats["loss"][0])
    return total


def test_the_carry_passed_across_batches_gives_the_whole_sequence_loss_and_resetting_it_does_not(mat_dir):
    # Given: a GRU density model whose params stay fixed (SGD at rate 0), chunks of 4 steps
    config = music_config(mat_dir, **{"data.chunk_len": 4})
    model, task, state, train_fn = _setup(config, optax.sgd(0.0))
    eval_fn = jax.jit(functools.partial(steps.eval_step, model=model, task=task))
    # When: the chunks of every validation piece go through training steps with their carries passed on
    passed = _chunk_losses(config, train_fn, state)
    reset = _chunk_losses(config, train_fn, state, reset_always=True)
    # Then: the summed NLL equals the whole pieces' (a hand computation: one unroll per piece); a carry reset
    # at every chunk does not
    whole_batches = rd.make_loader(config.data, "valid", seed=0, shuffle=False, num_epochs=1)
    whole = sum(float(eval_fn(state.params, b)["loss"][0]) for b in whole_batches)
    np.testing.assert_allclose(passed, whole, rtol=2e-6)
    assert abs(reset - whole) > 1e-3 * whole


@pytest.mark.parametrize("dataset", ["music", "negation"])
def test_chunked_evaluation_equals_whole_sequence_evaluation(mat_dir, tmp_path, dataset):
    # Given: a density model (per-step targets) or a classifier (one label per sentence, pooling 'last')
    if dataset == "music":
        config = music_config(mat_dir, **{"data.chunk_len": 3, "data.chunk_eval": True, "model.cell": "lstm"})
    else:
        config = smoke_config(tmp_path, **{"data.chunk_len": 3, "data.chunk_eval": True})
    tx = optax.sgd(0.0)
    model, task, state, _ = _setup(config, tx, seed=1)
    mesh = train.make_mesh(1)
    _, chunk_eval = steps.compile_steps(model, tx, task, mesh, chunk_eval=True)
    _, whole_eval = steps.compile_steps(model, tx, task, mesh)
    for split in ("valid", "test"):
        chunks = rd.make_loader(config.data, split, seed=0, shuffle=False, num_epochs=1, chunked=True)
        whole = rd.make_loader(config.data, split, seed=0, shuffle=False, num_epochs=1)
        got = steps.evaluate(chunk_eval, state.params, chunks, carry=state.carry)
        want = steps.evaluate(whole_eval, state.params, whole)
        assert got.keys() == want.keys()
        for name in want:
            np.testing.assert_allclose(got[name], want[name], rtol=1e-5, err_msg=name)


def test_a_batch_whose_loss_counts_nothing_changes_no_parameter(tmp_path):
    config = smoke_config(tmp_path, **{"data.chunk_len": 3})
    model, task, state, train_fn = _setup(config, optax.adam(0.1))
    loader = rd.make_loader(config.data, "train", seed=0, shuffle=True, num_epochs=None, chunked=True)
    batch = next(loader)  # first chunks of 3 steps: sentences of the negation corpus are longer
    assert batch["weights"].sum() == 0
    new, _ = train_fn(state, batch)
    for a, b in zip(jax.tree.leaves((state.params, state.opt_state)), jax.tree.leaves((new.params, new.opt_state))):
        np.testing.assert_array_equal(a, b)
    assert not all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(state.carry), jax.tree.leaves(new.carry)))


# --- whole runs ------------------------------------------------------------------------------------


def _final_arrays(workdir):
    checkpoints = checkpoint.Checkpointer(os.path.join(workdir, CHECKPOINT_DIR))
    step = checkpoints.steps()[-1]
    arrays = checkpoints._manager.restore(step)["arrays"]
    checkpoints.close()
    return step, arrays


def test_one_chunk_per_sequence_trains_exactly_as_whole_sequences(mat_dir, tmp_path):
    # Given: pieces of at most 16 steps (train and eval), one bucket of 16, 8 pieces in batches of 4
    folder = tmp_path / "short"
    folder.mkdir()
    write_mat(folder / "JSB_Chorales.mat", {"traindata": [5, 9, 12, 3, 7, 16, 11, 14],
                                            "validdata": [6, 16, 2], "testdata": [4, 13]})
    fields = {"data.buckets": (16,), "train.num_steps": 6, "model.dropout": 0.0}
    whole = train.train_and_evaluate(music_config(folder, **fields), str(tmp_path / "whole"))
    # When: the same run in chunks of 16 steps (each piece one chunk)
    chunked = train.train_and_evaluate(music_config(folder, **fields, **{"data.chunk_len": 16}),
                                       str(tmp_path / "chunked"))
    # Then: the same losses, metrics and params
    rows = lambda d: [{k: v for k, v in r.items() if "per_sec" not in k} for r in read_metrics(str(tmp_path / d))]
    for a, b in zip(rows("whole"), rows("chunked"), strict=True):
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_allclose(a[key], b[key], rtol=1e-6, err_msg=key)
    _, a = _final_arrays(str(tmp_path / "whole"))
    _, b = _final_arrays(str(tmp_path / "chunked"))
    for x, y in zip(jax.tree.leaves(a["state"]["params"]), jax.tree.leaves(b["state"]["params"]), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7)
    assert whole["test"]["nll"] == pytest.approx(chunked["test"]["nll"], rel=1e-6)


def test_a_run_stopped_mid_sequence_resumes_bitwise(mat_dir, tmp_path, monkeypatch):
    # Given: an uninterrupted chunked run (chunks of 4 steps, chunked evaluation, dropout: RNG use)
    config = music_config(mat_dir, **{"data.chunk_len": 4, "data.chunk_eval": True, "train.num_steps": 8,
                                      "train.checkpoint_every": 0, "model.dropout": 0.2, "model.num_layers": 2})
    straight = train.train_and_evaluate(config, str(tmp_path / "straight"))
    # When: the same run stops after 3 steps (as on SIGTERM), with rows in the middle of pieces, and relaunches
    stop_after(monkeypatch, 3)
    resumed_dir = str(tmp_path / "resumed")
    assert train.train_and_evaluate(config, resumed_dir) is None
    monkeypatch.undo()
    step, saved = _final_arrays(resumed_dir)
    info = checkpoint.Checkpointer(os.path.join(resumed_dir, CHECKPOINT_DIR))._manager.restore(step)["info"]
    assert step == 3 and any(row is not None and row[1] > 0 for row in info["data"]["stream"]["rows"])
    assert len(jax.tree.leaves(saved["state"]["carry"])) == 2  # a GRU carry per layer
    resumed = train.train_and_evaluate(config, resumed_dir)
    # Then: every array (params, optimizer state, rng, carries) is bitwise equal, and so are the metrics
    _, a = _final_arrays(str(tmp_path / "straight"))
    _, b = _final_arrays(resumed_dir)
    leaves_a, tree_a = jax.tree.flatten(a)
    leaves_b, tree_b = jax.tree.flatten(b)
    assert tree_a == tree_b
    for x, y in zip(leaves_a, leaves_b):
        np.testing.assert_array_equal(x, y)
    assert straight["valid"] == resumed["valid"] and straight["test"] == resumed["test"]
    rows = lambda d: [{k: v for k, v in r.items() if "per_sec" not in k} for r in read_metrics(d)]
    assert rows(str(tmp_path / "straight")) == rows(resumed_dir)


def test_a_bidirectional_model_is_refused_naming_both_fields(tmp_path):
    config = smoke_config(tmp_path, **{"data.chunk_len": 8, "model.bidirectional": True})
    with pytest.raises(ValueError, match=r"config\.data\.chunk_len = 8 .*config\.model\.bidirectional = True"):
        train.check_config(config)
    config = smoke_config(tmp_path, **{"data.chunk_len": 8, "model.pooling": "mean"})
    with pytest.raises(ValueError, match=r"config\.model\.pooling = 'mean'"):
        train.check_config(config)
    with pytest.raises(ValueError, match="data.chunk_len must be >= 0"):
        train.check_config(smoke_config(tmp_path, **{"data.chunk_len": -1}))


# --- several devices -------------------------------------------------------------------------------

DEVICES_SCRIPT = textwrap.dedent("""
    import functools, json, sys
    import jax, numpy as np, optax
    import rnnlab.data as rd
    from rnnlab.training import models, steps, tasks, train
    from tests.test_chunked import music_config
    import pathlib

    assert len(jax.devices()) == 4, jax.devices()
    config = music_config(pathlib.Path(sys.argv[1]), **{"data.chunk_len": 4, "data.batch_size": 8})
    spec = rd.prepare(config.data)
    model = models.build_model(config.model, spec)
    tx = optax.adam(0.01)
    example = steps.example_batch(spec, 8, 4)
    curves, placements = {}, {}
    for n in (1, 4):
        mesh = train.make_mesh(n)
        state = steps.place_state(steps.init_state(model, tx, jax.random.PRNGKey(0), example, carry=True), mesh)
        train_fn, eval_fn = steps.compile_steps(model, tx, tasks.get_task("density"), mesh, chunk_eval=True)
        loader = rd.make_loader(config.data, "train", seed=0, shuffle=True, num_epochs=None, chunked=True)
        losses = []
        for _ in range(6):
            state, stats = train_fn(state, train.shard_batch(next(loader), mesh))
            losses.append(tasks.finalize(jax.device_get(stats))["loss"])
        placements[n] = len(jax.tree.leaves(state.carry)[0].sharding.device_set)
        valid = rd.make_loader(config.data, "valid", seed=0, shuffle=False, num_epochs=1, chunked=True)
        losses.append(steps.evaluate(eval_fn, state.params, (train.shard_batch(b, mesh) for b in valid),
                                     state.carry)["loss"])
        curves[n] = losses
    print(json.dumps({"curves": curves, "placements": placements}))
""")


@pytest.mark.slow
def test_four_devices_shard_the_carries_and_give_the_loss_curve_of_one(mat_dir):
    rd.prepare(music_config(mat_dir).data)  # prepared here, read by the subprocess
    env = cpu_devices_env(4)
    result = subprocess.run([sys.executable, "-c", DEVICES_SCRIPT, str(mat_dir)], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    one, four = out["curves"]["1"], out["curves"]["4"]
    assert out["placements"] == {"1": 1, "4": 4}
    assert one[0] != one[-2]
    np.testing.assert_allclose(four, one, rtol=1e-5)
