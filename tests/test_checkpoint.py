"""Tests of rnnlab.training.checkpoint and resuming: bitwise resume, fallback, config pinning."""

from __future__ import annotations

import json
import os

import jax
import numpy as np
import pytest

import rnnlab.data
from rnnlab.training import checkpoint, steps, train
from rnnlab.training.workdir import CHECKPOINT_DIR, RESULTS_FILE, read_metrics
from tests.train_fixtures import smoke_config, stop_after

@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("tfds")


def _final_arrays(workdir, config):
    """The arrays of a workdir's newest checkpoint, restored without a target structure check."""
    checkpoints = checkpoint.Checkpointer(os.path.join(workdir, CHECKPOINT_DIR))
    step = checkpoints.steps()[-1]
    return step, checkpoints._manager.restore(step)["arrays"]


@pytest.mark.parametrize("average_decay", [0.0, 0.5])  # 0.5: the optimizer state also holds the params' average
def test_resume_after_stop_is_bitwise_identical_to_an_uninterrupted_run(data_dir, tmp_path, monkeypatch, average_decay):
    # Given: one uninterrupted run of 2N steps with dropout and weight noise (RNG use) and
    # early-stopping state
    config = smoke_config(data_dir, **{"model.dropout": 0.2, "model.embed_dropout": 0.2,
                                       "train.weight_noise": 0.05, "train.checkpoint_every": 0,
                                       "optim.average_decay": average_decay})
    straight = train.train_and_evaluate(config, str(tmp_path / "straight"))

    # When: the same run stops after N = 2 steps (as on SIGTERM) and is launched again
    stop_after(monkeypatch, 2)
    resumed_dir = str(tmp_path / "resumed")
    assert train.train_and_evaluate(config, resumed_dir) is None
    assert not os.path.exists(os.path.join(resumed_dir, RESULTS_FILE))
    assert checkpoint.Checkpointer(os.path.join(resumed_dir, "checkpoints")).steps() == [2]
    monkeypatch.undo()
    resumed = train.train_and_evaluate(config, resumed_dir)

    # Then: params, optimizer state, step and rng are bitwise equal, and so are the metrics
    step_a, a = _final_arrays(str(tmp_path / "straight"), config)
    step_b, b = _final_arrays(resumed_dir, config)
    assert step_a == step_b == config.train.num_steps
    leaves_a, tree_a = jax.tree.flatten(a)
    leaves_b, tree_b = jax.tree.flatten(b)
    assert tree_a == tree_b and len(leaves_a) > 10
    for x, y in zip(leaves_a, leaves_b):
        np.testing.assert_array_equal(x, y)
    for split in ("valid", "test"):
        assert straight[split] == resumed[split]
    evals = lambda d: [r for r in read_metrics(d) if "valid/loss" in r]
    assert evals(str(tmp_path / "straight")) == evals(resumed_dir)


def _without_wall_clock(records):
    return [{k: v for k, v in r.items() if not k.endswith("_per_sec")} for r in records]


def test_metrics_after_a_resume_mid_window_equal_the_uninterrupted_runs(data_dir, tmp_path):
    # Given: an uninterrupted run logging every 2 steps and checkpointing every 3 (steps 3 and 6)
    config = smoke_config(data_dir, "bow,smoke")
    straight, killed = str(tmp_path / "straight"), tmp_path / "killed"
    train.train_and_evaluate(config, straight)
    # When: the same run dies after step 6's metrics row but before its checkpoint (step 6 and
    # results.json removed), so the relaunch resumes from step 3, inside the window of steps 3-4
    train.train_and_evaluate(config, str(killed))
    import shutil

    shutil.rmtree(killed / CHECKPOINT_DIR / "6")
    os.remove(killed / RESULTS_FILE)
    train.train_and_evaluate(config, str(killed))
    # Then: every row equals the uninterrupted run's (row 4 averages steps 3 and 4 in both), but wall-clock rates
    rows = _without_wall_clock(read_metrics(straight))
    assert [r["step"] for r in rows if "train/loss" in r] == [2, 4, 6]
    assert _without_wall_clock(read_metrics(str(killed))) == rows


def test_corrupt_latest_checkpoint_and_empty_step_folder_fall_back_to_the_previous(data_dir, tmp_path, caplog):
    config = smoke_config(data_dir, "bow,smoke")
    workdir = tmp_path / "run"
    train.train_and_evaluate(config, str(workdir))  # checkpoints at steps 3 and 6
    ckdir = workdir / "checkpoints"
    os.makedirs(ckdir / "9")  # an empty folder named like a step
    for root, _, files in os.walk(ckdir / "6" / "arrays"):  # damage every array file of step 6
        for name in files:
            with open(os.path.join(root, name), "r+b") as f:
                f.write(b"\x00garbage\xff" * 4)
    checkpoints = checkpoint.Checkpointer(str(ckdir))
    assert checkpoints.steps() == [3, 6, 9]
    with caplog.at_level("WARNING"):
        restored = checkpoints.restore(_target(config, data_dir))
    assert restored is not None and restored[0] == 3
    assert "checkpoint step 9" in caplog.text and "checkpoint step 6" in caplog.text


def _target(config, data_dir):
    """The restore target of a smoke run: its freshly initialised state and best params."""
    spec = rnnlab.data.prepare(config.data)
    from rnnlab.training import models

    model = models.build_model(config.model, spec)
    tx = train.make_optimizer(config.optim, config.train.num_steps)
    batch = steps.example_batch(spec, config.data.batch_size, min(config.data.buckets))
    state = jax.device_get(train.init_state(model, tx, jax.random.PRNGKey(0), batch))
    return {"state": state, "best_params": state.params}


def test_checksum_mismatch_is_refused(tmp_path):
    checkpoints = checkpoint.Checkpointer(str(tmp_path / "ck"))
    checkpoints.save(1, {"w": np.arange(4.0)}, {"data": {}})
    checkpoints.save(2, {"w": np.arange(4.0) + 1}, {"data": {}})
    info_path = tmp_path / "ck" / "2" / "info" / "metadata"
    info = json.loads(info_path.read_text())
    info["sha256"] = "0" * 64  # as if the array bytes had changed under the saved checksum
    info_path.write_text(json.dumps(info))
    step, arrays, _ = checkpoint.Checkpointer(str(tmp_path / "ck")).restore({"w": np.zeros(4)})
    assert step == 1 and np.array_equal(arrays["w"], np.arange(4.0))


def test_workdir_with_a_different_config_is_refused_naming_the_fields(tmp_path):
    config = smoke_config(tmp_path / "tfds")
    checkpoint.write_config(str(tmp_path), config)
    os.makedirs(tmp_path / "checkpoints" / "3")  # a run that has started
    checkpoint.check_config(str(tmp_path), config)  # the same config: accepted
    other = smoke_config(tmp_path / "tfds", **{"model.cell": "gru", "train.seed": 7})
    with pytest.raises(ValueError, match=r"(?s)different config.*model.cell: saved 'lstm', requested 'gru'"
                                         r".*train.seed: saved 0, requested 7"):
        checkpoint.check_config(str(tmp_path), other)
    with pytest.raises(ValueError, match="model.cell"):
        train.train_and_evaluate(other, str(tmp_path))


def test_config_diff_reports_added_and_removed_fields():
    assert checkpoint.config_diff({"a": {"b": 1}}, {"a": {"b": 1, "c": 2}}) == ["a.c: saved (absent), requested 2"]
    assert checkpoint.config_diff({"a": [1, 2]}, {"a": [1, 2]}) == []


@pytest.mark.parametrize("field", ["model.word_dropout", "model.recurrent_dropout", "model.zoneout"])
def test_config_saved_before_a_model_field_existed_resumes_at_its_off_value(tmp_path, field):
    # Given a started run whose config.json predates ``field``
    section, name = field.split(".")
    saved = checkpoint.config_to_dict(smoke_config(tmp_path / "tfds"))
    del saved[section][name]
    with open(tmp_path / "config.json", "w") as f:
        json.dump(saved, f)
    os.makedirs(tmp_path / "checkpoints" / "3")
    # Then it equals the config with the field at 0.0, and differs from one at 0.1
    assert checkpoint.check_config(str(tmp_path), smoke_config(tmp_path / "tfds", **{field: 0.0})) == saved
    with pytest.raises(ValueError, match=rf"{field}: saved 0.0, requested 0.1"):
        checkpoint.check_config(str(tmp_path), smoke_config(tmp_path / "tfds", **{field: 0.1}))


def test_a_checkpoint_saved_before_the_added_fields_existed_resumes():
    # Given: the pinned config of a checkpoint written before model.word_dropout, recurrent_dropout, zoneout
    # and train.weight_noise existed
    from rnnlab.training import position

    pinned = checkpoint.pinned_config(smoke_config("tfds"))
    old = {k: v for k, v in pinned.items() if k not in checkpoint.ADDED_FIELDS}
    assert len(old) == len(pinned) - len(checkpoint.ADDED_FIELDS)
    # When / Then: its own config check fills them as config.json's does, and still refuses a real change
    position.check_restored({"config": old}, 3, "/ck", pinned, {})
    with pytest.raises(ValueError, match=r"(?s)saved by another run.*model.zoneout: saved 0.1, requested 0.0"):
        position.check_restored({"config": {**old, "model.zoneout": 0.1}}, 3, "/ck", pinned, {})
