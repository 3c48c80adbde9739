"""What rnnlab guarantees about a run's workdir (docs/training.md, 'What rnnlab guarantees').

Finished runs train no further step; every byte a checkpoint restore reads is checksummed;
source data that changed since a checkpoint is refused; every check passes before config.json
is written or anything compiles; only some fields may change on resume; one process per workdir;
clear errors for an empty split, an unreadable config.json, a checkpoint of another run, a full
disk; no tracebacks of noise during a fallback restore; a second Ctrl-C stops at once.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from typing import Optional

import jax
import numpy as np
import pytest

import rnnlab.data as rd
from rnnlab.training import checkpoint, lock, train
from rnnlab.training.workdir import CHECKPOINT_DIR, RESULTS_FILE, read_metrics
from rnnlab.data.registry import encode, make_vocab, token_features, vocab_fields
from tests.train_fixtures import smoke_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("tfds")


# --- a file-based dataset of these tests: "<label> <word> <word> ..." per line -----------------


@dataclasses.dataclass(frozen=True)
class LinesOptions:
    path: Optional[str] = None


@rd.register
class Lines(rd.Dataset):
    """Reads ``train.txt``, ``valid.txt``, ``test.txt`` from ``data.path``: one labelled sentence a line."""

    name = "test_reliability_lines"
    Options = LinesOptions
    task = "classify"
    input_kind = "tokens"

    def source_files(self, options):
        return [os.path.join(options.path, f"{split}.txt") for split in self.splits]

    def features(self, options):
        return token_features(per_step_targets=False)

    def generate(self, options):
        rows = {}
        for split, path in zip(self.splits, self.source_files(options)):
            with open(path) as f:
                rows[split] = [line.split() for line in f if line.strip()]
        vocab = make_vocab(w for split in rows.values() for row in split for w in row[1:])
        ids = {w: i for i, w in enumerate(vocab)}
        examples = {split: [{"inputs": encode(row[1:], ids), "length": len(row) - 1, "targets": int(row[0])}
                            for row in split_rows] for split, split_rows in rows.items()}
        return examples, {"vocab": list(vocab)}

    def describe(self, options, metadata):
        return vocab_fields(metadata["vocab"], num_outputs=2)


def write_lines(folder, sizes=(("train", 40), ("valid", 12), ("test", 12)), seed=0):
    """Random sentences labelled by whether they hold the word 'good'."""
    rng = np.random.default_rng(seed)
    words = ["good", "bad", "film", "plot", "very", "the", "a", "not"]
    os.makedirs(folder, exist_ok=True)
    for split, n in sizes:
        with open(os.path.join(folder, f"{split}.txt"), "w") as f:
            for _ in range(n):
                sentence = list(rng.choice(words, int(rng.integers(2, 9))))
                f.write(f"{int('good' in sentence)} {' '.join(sentence)}\n")


def lines_config(data_dir, folder, **fields):
    return smoke_config(data_dir, "bow,smoke", **{"data.name": Lines.name, "data.path": str(folder), **fields})


# --- 1. a finished run is finished --------------------------------------------------------------


def test_rerunning_a_finished_run_trains_no_step_whether_or_not_results_were_written(data_dir, tmp_path):
    # Given: a run that stopped early (patience 1) well before num_steps
    config = smoke_config(data_dir, "bow,smoke", **{"train.num_steps": 300, "train.patience": 1})
    workdir = str(tmp_path / "run")
    first = train.train_and_evaluate(config, workdir)
    assert first["stopped_early"] and first["step"] < 300
    ckdir = os.path.join(workdir, "checkpoints")
    steps, records = sorted(os.listdir(ckdir)), read_metrics(workdir)

    # When: it is launched again, then again after losing results.json (as after a kill between
    # the final checkpoint and results.json)
    with train.CompileCounter() as compiles:
        again = train.train_and_evaluate(config, workdir)
    assert compiles.count == 0  # nothing built at all: the results are read back
    os.remove(os.path.join(workdir, RESULTS_FILE))
    evaluated = train.train_and_evaluate(config, workdir)

    # Then: the same results, no step trained, no checkpoint or metrics line added
    assert again == json.loads(json.dumps(first))
    assert evaluated["compilations"]["train_step"] == 0
    for key in ("step", "best_step", "stopped_early", "valid", "test"):
        assert evaluated[key] == first[key], key
    assert sorted(os.listdir(ckdir)) == steps
    assert read_metrics(workdir) == records


def _arrays(workdir):
    checkpoints = checkpoint.Checkpointer(os.path.join(workdir, CHECKPOINT_DIR))
    step = checkpoints.steps()[-1]
    arrays = checkpoints._manager.restore(step)["arrays"]
    checkpoints.close()
    return step, jax.tree.leaves(arrays)


def test_num_steps_may_grow_to_extend_a_run_bitwise(data_dir, tmp_path):
    # Given: a 6-step run with dropout, and a straight 9-step run
    fields = {"model.embed_dropout": 0.3}
    extended = str(tmp_path / "extended")
    assert train.train_and_evaluate(smoke_config(data_dir, "bow,smoke", **fields), extended)["step"] == 6
    straight = str(tmp_path / "straight")
    nine = smoke_config(data_dir, "bow,smoke", **fields, **{"train.num_steps": 9})
    want = train.train_and_evaluate(nine, straight)

    # When: the 6-step run is launched again with num_steps 9
    got = train.train_and_evaluate(nine, extended)

    # Then: it trains steps 7-9 into the state of the straight run; config.json records 9
    step_a, a = _arrays(straight)
    step_b, b = _arrays(extended)
    assert step_a == step_b == 9
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert got["valid"] == want["valid"] and got["test"] == want["test"]
    with open(os.path.join(extended, "config.json")) as f:
        assert json.load(f)["train"]["num_steps"] == 9


# --- 2. every byte a restore reads is verified ----------------------------------------------------

INFO = {"data": {"grain": {"next_index": 24}}, "early_stopping": [0.5, 3, 0]}


@pytest.mark.parametrize("edit", [
    lambda info: info["data"]["grain"].update(next_index=25),
    lambda info: info.update(early_stopping=[0.5, 3, 1]),
    lambda info: info.update(extra=1),
], ids=["data-position", "early-stopping-counter", "added-key"])
def test_an_edited_json_part_of_a_checkpoint_is_refused_and_the_previous_one_used(tmp_path, caplog, edit):
    checkpoints = checkpoint.Checkpointer(str(tmp_path / "ck"))
    checkpoints.save(1, {"w": np.arange(4.0)}, {**INFO, "data": {"grain": {"next_index": 16}}})
    checkpoints.save(2, {"w": np.arange(4.0) + 1}, INFO)
    checkpoints.close()
    path = tmp_path / "ck" / "2" / "info" / "metadata"
    info = json.loads(path.read_text())
    edit(info)
    path.write_text(json.dumps(info))
    with caplog.at_level("WARNING"):
        step, arrays, restored = checkpoint.Checkpointer(str(tmp_path / "ck")).restore({"w": np.zeros(4)})
    assert step == 1 and restored["data"]["grain"]["next_index"] == 16
    assert "checkpoint step 2" in caplog.text and "checksum" in caplog.text


def test_checkpoint_arrays_under_other_names_are_refused(tmp_path):
    checkpoints = checkpoint.Checkpointer(str(tmp_path / "ck"))
    checkpoints.save(1, {"a": np.zeros(3), "b": np.ones(3)}, INFO)
    # the checksum covers the paths: swapped values under the same names do not match
    arrays, info = {"a": np.ones(3), "b": np.zeros(3)}, dict(INFO)
    assert checkpoint.checksum_v2(arrays, info) != checkpoint.checksum_v2({"a": np.zeros(3), "b": np.ones(3)}, info)
    assert checkpoints.restore({"a": np.zeros(3), "b": np.zeros(3)})[0] == 1


def test_a_checkpoint_from_before_json_checksums_restores_with_a_warning(tmp_path, caplog):
    import orbax.checkpoint as ocp

    checkpoints = checkpoint.Checkpointer(str(tmp_path / "ck"))
    arrays = {"w": np.arange(3.0)}
    checkpoints._manager.save(1, args=ocp.args.Composite(
        arrays=ocp.args.StandardSave(arrays),
        info=ocp.args.JsonSave({**INFO, "sha256": checkpoint.checksum(arrays)})), force=True)
    checkpoints._manager.wait_until_finished()
    with caplog.at_level("WARNING"):
        step, restored, info = checkpoints.restore({"w": np.zeros(3)})
    assert step == 1 and info == INFO and "predates checksums of its JSON part" in caplog.text


# --- 5. the data a run reads is fingerprinted -------------------------------------------------------


def test_source_data_changed_since_the_checkpoint_is_refused_naming_the_file(data_dir, tmp_path):
    # Given: a run on files, "killed" after its checkpoint of step 3 (the later state removed)
    folder = tmp_path / "lines"
    write_lines(folder)
    config = lines_config(data_dir, folder)
    workdir = tmp_path / "run"
    finished = train.train_and_evaluate(config, str(workdir))
    assert finished["data_fingerprint"]["files"][str(folder / "train.txt")]
    shutil.rmtree(workdir / "checkpoints" / "6")
    os.remove(workdir / "results.json")

    # When: a label of train.txt is flipped (same size) before the relaunch
    original = (folder / "train.txt").read_text()
    flipped = ("0" if original[0] == "1" else "1") + original[1:]
    (folder / "train.txt").write_text(flipped)

    # Then: the relaunch is refused, naming the file; with the original file back it resumes
    with pytest.raises(ValueError, match=r"(?s)data changed since checkpoint step 3 .*train\.txt: sha256"):
        train.train_and_evaluate(config, str(workdir))
    (folder / "train.txt").write_text(original)
    resumed = train.train_and_evaluate(config, str(workdir))
    assert resumed["test"] == finished["test"]


def test_an_empty_split_names_the_dataset_split_and_files(data_dir, tmp_path):
    folder = tmp_path / "lines"
    write_lines(folder, sizes=(("train", 10), ("valid", 0), ("test", 3)))
    with pytest.raises(ValueError, match=r"test_reliability_lines.*valid\.txt.*split 'valid' has no examples"):
        rd.prepare(lines_config(data_dir, folder).data)


# --- 6, 7. every check before anything is compiled or written ---------------------------------------

FAILED_CHECKS = [
    ("train.test_split", "tst", r"config.train.test_split 'tst' is not a split of dataset 'negation'; "
                                r"its splits: train, valid, test"),
    ("train.eval_split", "validation", r"config.train.eval_split 'validation' is not a split"),
    ("train.final_splits", ("train", "dev"), r"config.train.final_splits 'dev' is not a split"),
    ("train.early_stopping_metric", "acc", r"config.train.early_stopping_metric 'acc' is not among the valid "
                                           r"metrics: accuracy, loss, negated_accuracy"),
    ("train.mesh", 64, r"config.train.mesh asks for 64 devices"),
    ("data.buckets", (4,), r"longer than the largest bucket"),
]


@pytest.mark.parametrize("path, value, message", FAILED_CHECKS, ids=[c[0] for c in FAILED_CHECKS])
def test_a_failed_check_compiles_nothing_writes_no_config_and_the_corrected_launch_runs(
        data_dir, tmp_path, path, value, message):
    workdir = tmp_path / "run"
    with train.CompileCounter() as compiles, pytest.raises(ValueError, match=message):
        train.train_and_evaluate(smoke_config(data_dir, "bow,smoke", **{path: value}), str(workdir))
    assert compiles.count == 0
    assert not (workdir / "config.json").exists()
    if path == "train.test_split":  # once: the corrected relaunch in the same workdir is not refused
        assert train.train_and_evaluate(smoke_config(data_dir, "bow,smoke"), str(workdir))["step"] == 6


def test_a_workdir_without_checkpoints_takes_a_new_config(data_dir, tmp_path):
    # e.g. config.json of a launch killed before its first checkpoint, or an empty one
    workdir = tmp_path / "run"
    checkpoint.write_config(str(workdir), smoke_config(data_dir, "bow,smoke", **{"optim.learning_rate": 1.0}))
    config = smoke_config(data_dir, "bow,smoke")
    assert checkpoint.check_config(str(workdir), config) is None
    (workdir / "config.json").write_text("")
    assert checkpoint.check_config(str(workdir), config) is None


# --- 8. what may change on resume ---------------------------------------------------------------------


def _started(tmp_path, config):
    checkpoint.write_config(str(tmp_path), config)
    os.makedirs(tmp_path / "checkpoints" / "3")
    return str(tmp_path)


def test_only_the_documented_fields_may_change_on_resume(tmp_path):
    config = smoke_config("tfds")
    workdir = _started(tmp_path, config)
    allowed = smoke_config("elsewhere", **{
        "train.num_steps": 60, "train.log_every": 7, "train.checkpoint_every": 9, "train.max_to_keep": 1,
        "data.num_threads": 4, "train.coordinator_address": "h:1", "train.process_id": 0,
        "train.final_splits": ("train",)})
    assert checkpoint.check_config(workdir, allowed) is not None
    for fields, why in [
        ({"optim.learning_rate": 1e-4}, "optim.learning_rate: saved 0.003, requested 0.0001"),
        ({"train.num_steps": 3}, r"train.num_steps: saved 6, requested 3 \(may only grow\)"),
        ({"train.num_steps": 60, "optim.schedule": "cosine"}, "may grow only with optim.schedule 'constant'"),
        ({"train.weight_noise": 0.1}, "train.weight_noise"),
    ]:
        with pytest.raises(ValueError, match=rf"(?s)only train.num_steps, .* may change on resume.*{why}"):
            checkpoint.check_config(workdir, smoke_config("tfds", **fields))


def test_a_config_saved_before_weight_noise_existed_resumes(tmp_path):
    config = smoke_config("tfds")
    workdir = _started(tmp_path, config)
    saved = json.loads((tmp_path / "config.json").read_text())
    del saved["train"]["weight_noise"]
    (tmp_path / "config.json").write_text(json.dumps(saved))
    assert checkpoint.check_config(workdir, config) is not None


# --- 9. one process per workdir ---------------------------------------------------------------------


def test_a_second_lock_names_the_holder_and_a_released_lock_leaves_nothing(tmp_path):
    workdir = tmp_path / "run"
    with lock.WorkdirLock(str(workdir)):
        holder = json.loads((workdir / "lock").read_text())
        assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
        with pytest.raises(RuntimeError, match=rf"in use by pid {os.getpid()} on host {socket.gethostname()}"):
            with lock.WorkdirLock(str(workdir)):
                pass
    assert not workdir.exists()  # created by the lock, empty again: removed


def test_locks_racing_to_create_the_workdir_never_raise_file_exists(tmp_path, monkeypatch):
    import threading

    # Given: a workdir made by another process between the check and the creation (the race, made certain)
    made = tmp_path / "made"
    os.makedirs(made)
    monkeypatch.setattr(lock.os.path, "isdir", lambda path: False)
    with lock.WorkdirLock(str(made)):
        pass
    monkeypatch.undo()
    # And: 8 threads locking one workdir that does not exist yet, all at once
    workdir, barrier, errors = str(tmp_path / "new"), threading.Barrier(8), []

    def take():
        barrier.wait()
        try:
            with lock.WorkdirLock(workdir):
                time.sleep(0.05)
        except Exception as e:  # noqa: BLE001 - collected and checked below
            errors.append(e)

    threads = [threading.Thread(target=take) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Then: no FileExistsError; a thread that lost the race is refused naming the holder
    assert all(isinstance(e, RuntimeError) and "is in use by" in str(e) for e in errors), errors


def test_a_stale_lock_is_taken_over_and_another_hosts_lock_is_refused(tmp_path, caplog):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / "lock").write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname(), "since": "then"}))
    with caplog.at_level("WARNING"), lock.WorkdirLock(str(tmp_path)):
        assert json.loads((tmp_path / "lock").read_text())["pid"] == os.getpid()
    assert f"taking over the stale lock {tmp_path / 'lock'} of pid {dead.pid}" in caplog.text
    (tmp_path / "lock").write_text(json.dumps({"pid": 1, "host": "elsewhere", "since": "then"}))
    with pytest.raises(RuntimeError, match="in use by pid 1 on host elsewhere .*another host.*delete the file"):
        with lock.WorkdirLock(str(tmp_path)):
            pass


HOLD = "import sys, time; from rnnlab.training.lock import WorkdirLock\n" \
       "with WorkdirLock(sys.argv[1]):\n    print('held', flush=True); time.sleep(600)"


def test_a_second_process_training_into_a_workdir_exits_naming_the_holder(data_dir, tmp_path, caplog):
    # Given: another process holds the workdir
    workdir = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(workdir)], cwd=ROOT, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        # When / Then: this one is refused before it writes anything
        with pytest.raises(RuntimeError, match=rf"run is in use by pid {holder.pid} on host "):
            train.train_and_evaluate(smoke_config(data_dir, "bow,smoke"), str(workdir))
        assert sorted(os.listdir(workdir)) == ["lock"]
    finally:
        holder.kill()  # SIGKILL: its lock file stays behind
        holder.wait()
    # and once the holder is dead, its stale lock is taken over
    with caplog.at_level("WARNING"):
        assert train.train_and_evaluate(smoke_config(data_dir, "bow,smoke"), str(workdir))["step"] == 6
    assert f"of pid {holder.pid}" in caplog.text and not (workdir / "lock").exists()


# --- unclear errors ----------------------------------------------------------------------------------


def test_an_unreadable_config_json_of_a_started_run_names_the_file(tmp_path):
    workdir = _started(tmp_path, smoke_config("tfds"))
    (tmp_path / "config.json").write_text("")
    with pytest.raises(ValueError, match=rf"{tmp_path / 'config.json'} is empty\. It pins the config"):
        checkpoint.check_config(workdir, smoke_config("tfds"))
    (tmp_path / "config.json").write_text('{"train":\n  {"seed": 0,}}')
    with pytest.raises(ValueError, match=r"config.json is not valid JSON \(line 2, column"):
        checkpoint.check_config(workdir, smoke_config("tfds"))


def test_a_checkpoint_of_another_run_is_refused_naming_its_path_and_the_fields(data_dir, tmp_path):
    # Given: the checkpoints of a seed-0 run copied into the workdir of a seed-1 run
    train.train_and_evaluate(smoke_config(data_dir, "bow,smoke", **{"train.num_steps": 3}), str(tmp_path / "a"))
    shutil.copytree(tmp_path / "a" / "checkpoints", tmp_path / "b" / "checkpoints")
    # When / Then
    with pytest.raises(ValueError, match=rf"(?s)checkpoint step 3 in {tmp_path / 'b' / 'checkpoints'} was saved "
                                         r"by another run.*train.seed: saved 0, requested 1.*Move"):
        train.train_and_evaluate(smoke_config(data_dir, "bow,smoke", **{"train.num_steps": 3, "train.seed": 1}),
                                 str(tmp_path / "b"))
    assert not (tmp_path / "b" / "config.json").exists()


def test_a_full_disk_says_so_where_and_what_the_next_launch_resumes_from(tmp_path):
    checkpoints = checkpoint.Checkpointer(str(tmp_path / "ck"))
    checkpoints.save(1, {"w": np.zeros(2)}, INFO)

    def full(*args, **kwargs):
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as e:
            raise ValueError('INTERNAL: Error writing local file "/x/d/abc": [OS error 28: No space left on '
                             'device] [tensorstore_spec=\'{"driver": "zarr", ...}\']') from e

    checkpoints._manager.save = full
    with pytest.raises(OSError, match=rf"No space left on device while saving checkpoint step 2 in "
                                      rf"{tmp_path / 'ck'} \(.* MiB free\).*resumes from step 1") as raised:
        checkpoints.save(2, {"w": np.zeros(2)}, INFO)
    assert raised.value.errno == errno.ENOSPC


def test_a_fallback_restore_reports_no_event_loop_errors(tmp_path):
    # Reads still in flight when orbax gives up on a damaged manifest report "Event loop is closed"
    # through sys.unraisablehook (printed as tracebacks; pytest would turn them into warnings)
    reported = []
    previous, sys.unraisablehook = sys.unraisablehook, lambda unraisable: reported.append(unraisable.exc_value)
    try:
        tree = {"s": {f"w{i}": np.full(10, i, np.float32) for i in range(20)}, "step": np.int32(3)}
        for k in range(4):
            directory = str(tmp_path / f"ck{k}")
            checkpoints = checkpoint.Checkpointer(directory)
            checkpoints.save(1, tree, INFO)
            checkpoints.save(2, tree, INFO)
            checkpoints.close()
            manifest = os.path.join(directory, "2", "arrays", "manifest.ocdbt")
            data = bytearray(open(manifest, "rb").read())
            data[len(data) // 2 + k] ^= 0x10
            open(manifest, "wb").write(data)
            checkpoints = checkpoint.Checkpointer(directory)
            assert checkpoints.restore(tree)[0] == 1
            checkpoints.close()
        time.sleep(0.5)
    finally:
        sys.unraisablehook = previous
    assert not [e for e in reported if "Event loop is closed" in str(e)], reported


def test_the_quiet_hook_passes_every_other_unraisable_on():
    seen = []
    previous, sys.unraisablehook = sys.unraisablehook, seen.append
    try:
        checkpoint._install_quiet_unraisable_hook()
        other = type("U", (), {"exc_value": RuntimeError("something else"), "exc_traceback": None})()
        sys.unraisablehook(other)
        assert seen == [other]
    finally:
        sys.unraisablehook = previous


def test_a_restore_that_does_not_fail_leaves_the_unraisable_hook_alone(tmp_path):
    mine = lambda unraisable: None
    previous, sys.unraisablehook = sys.unraisablehook, mine
    try:
        checkpoints = checkpoint.Checkpointer(str(tmp_path / "ck"))
        assert checkpoints.restore({"w": np.zeros(2)}) is None  # nothing saved yet
        checkpoints.save(1, {"w": np.arange(2.0)}, INFO)
        assert checkpoints.restore({"w": np.zeros(2)})[0] == 1
        checkpoints.close()
        assert sys.unraisablehook is mine
    finally:
        sys.unraisablehook = previous


def test_a_second_signal_stops_at_once():
    for signum, raised in ((signal.SIGINT, KeyboardInterrupt), (signal.SIGTERM, SystemExit)):
        with train.StopSignal() as stop:
            stop._handle(signum, None)
            assert stop.received == signum  # the first: stop after the current step or evaluation
            with pytest.raises(raised):
                stop._handle(signum, None)  # the second: now
        assert signal.getsignal(signal.SIGINT) != stop._handle


def test_final_splits_are_evaluated_with_the_params_that_test_is(data_dir, tmp_path):
    # The train NLL of Chung et al.'s Table 2: the best-validation params evaluated on "train" too.
    fields = {"train.early_stopping_metric": "accuracy", "train.patience": 50}
    with_train = train.train_and_evaluate(
        smoke_config(data_dir, "bow,smoke", **fields, **{"train.final_splits": ("train",)}), str(tmp_path / "a"))
    # the same run, whose test split is "train": an independent evaluation of the same params
    as_test = train.train_and_evaluate(
        smoke_config(data_dir, "bow,smoke", **fields, **{"train.test_split": "train"}), str(tmp_path / "b"))
    assert set(with_train["train"]) == set(with_train["test"])
    assert with_train["train"] == as_test["train"]
    assert with_train["train"] != with_train["test"]
    logged = [json.loads(line) for line in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    assert [row["final/train/accuracy"] for row in logged if "final/train/accuracy" in row] == [
        with_train["train"]["accuracy"]]
