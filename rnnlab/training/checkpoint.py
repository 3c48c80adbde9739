"""A run's workdir: checkpoints, the pinned config and the lock.

Checkpoints: orbax ``CheckpointManager`` in ``workdir/checkpoints``. A checkpoint
holds one pytree of arrays (the train state and whatever else the loop keeps,
saved as host NumPy arrays) and one JSON object (the data iterator position,
early-stopping counters, ...), plus a SHA-256 over both: every array's path,
dtype, shape and bytes and the JSON object, because orbax can restore flipped
bytes silently and reads the JSON part unchecked. :meth:`Checkpointer.restore`
walks back from the latest step to the newest checkpoint that restores whole
and matches its checksum, logging why each newer one was skipped (an empty
step folder, a damaged file).

The workdir's ``config.json`` pins the configuration: :func:`check_config`
refuses a run whose config differs outside :data:`RESUMABLE_FIELDS`, naming
the differing fields; :func:`write_config` writes it once every check passed.

One process trains in a workdir at a time: :class:`rnnlab.training.lock.WorkdirLock`.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import sys
from typing import Any, Mapping, Optional

import jax
import numpy as np
import orbax.checkpoint as ocp
from absl import logging

from rnnlab.training.models import CELL_OPTION_FIELDS, unused_cell_options
from rnnlab.training.workdir import CHECKPOINT_DIR, CONFIG_FILE, RESULTS_FILE, flatten, read_json, write_json
from rnnlab.types import PyTree

# Config fields that may differ between the launches of one run, and why that is safe. Every
# other field is pinned by config.json: a resumed run repeats the uninterrupted one bit for bit.
RESUMABLE_FIELDS = {
    "train.num_steps": "may grow, to extend a run that has not stopped early (constant "
                       "learning-rate schedule only: the other schedules decay over num_steps)",
    "train.log_every": "how often training metrics are logged",
    "train.checkpoint_every": "how often checkpoints are saved (the data position is in each)",
    "train.max_to_keep": "how many checkpoints are kept",
    "train.final_splits": "which more splits are evaluated once at the end",
    "data.num_threads": "read-ahead threads; the batch order does not depend on them",
    "data.data_dir": "where prepared datasets live; the data fingerprint checks their source",
    "plugins": "the user's modules imported first (a path may be written another way; the data and cell "
               "names they register are checked with the rest of the config)",
    "train.coordinator_address": "per launch (several hosts)",
    "train.process_id": "per process (several hosts)",
}
# Config fields added after runs existed: a config.json without one means this value.
ADDED_FIELDS = {
    "train.weight_noise": 0.0,
    "model.word_dropout": 0.0,
    "model.recurrent_dropout": 0.0,
    "model.zoneout": 0.0,
    "model.dtype": "float32",
    "model.param_dtype": "float32",
    "model.kernel_init": "glorot_uniform",
    "model.recurrent_init": "orthogonal",
    "data.chunk_len": 0,
    "data.chunk_eval": False,
    "model.cell_clip": 0.0,
    "optim.peephole_lr_scale": 1.0,
    "optim.average_decay": 0.0,
}


def config_to_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready dict of a ConfigDict (or dict): tuples become lists, as JSON would store them."""
    as_dict = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    return json.loads(json.dumps(as_dict, default=str))


def config_diff(saved: Mapping[str, Any], requested: Mapping[str, Any]) -> list[str]:
    """One line per differing field, ``"model.cell: saved 'lstm', requested 'gru'"``."""
    old, new = flatten(saved, "."), flatten(requested, ".")
    missing = object()
    return [
        f"{key}: saved {old.get(key, missing)!r}, requested {new.get(key, missing)!r}".replace(
            repr(missing), "(absent)"
        )
        for key in sorted(set(old) | set(new))
        if old.get(key, missing) != new.get(key, missing)
    ]


def pinned_config(config: Any) -> dict[str, Any]:
    """The fields of ``config`` that a resumed run must keep: all but :data:`RESUMABLE_FIELDS`.

    Fields of :data:`ADDED_FIELDS` that ``config`` lacks get their stated value,
    so a config saved before they existed compares equal to one at that value;
    cell options that ``model.cell`` does not take (they change nothing) count as
    their off value (a config saved before they were refused, e.g. a GRU with
    ``model.peephole=True``, compares equal to one without).
    """
    flat = flatten(config_to_dict(config), ".")
    for key, value in ADDED_FIELDS.items():
        flat.setdefault(key, value)
    for name in unused_cell_options(flat.get("model.cell", "")):
        if f"model.{name}" in flat:
            flat[f"model.{name}"] = CELL_OPTION_FIELDS[name]
    return {k: v for k, v in flat.items() if k not in RESUMABLE_FIELDS}


def pinned_diff(saved: Any, requested: Any) -> list[str]:
    """The :func:`config_diff` lines of the pinned fields (:func:`pinned_config` of both sides).

    The one comparison of a saved config with a requested one: ``config.json``'s
    (:func:`refused_changes`) and a checkpoint's own
    (:func:`rnnlab.training.position.check_restored`). Either side may be nested
    or already flat and pinned; fields of :data:`ADDED_FIELDS` that a side
    lacks (saved before they existed) count as their stated value.
    """
    return config_diff(pinned_config(saved), pinned_config(requested))


def refused_changes(saved: Mapping[str, Any], requested: Mapping[str, Any]) -> list[str]:
    """The :func:`config_diff` lines a resume may not make (``saved`` is the workdir's config).

    Fields outside :data:`RESUMABLE_FIELDS` must be equal; ``train.num_steps``
    may only grow, and only with a constant learning-rate schedule.
    """
    diff = pinned_diff(saved, requested)
    old, new = flatten(saved, "."), flatten(requested, ".")
    steps_old, steps_new = old.get("train.num_steps"), new.get("train.num_steps")
    if steps_old != steps_new and steps_old is not None:
        if steps_new < steps_old:
            diff.append(f"train.num_steps: saved {steps_old!r}, requested {steps_new!r} (may only grow)")
        elif new.get("optim.schedule", "constant") != "constant":
            diff.append(f"train.num_steps: saved {steps_old!r}, requested {steps_new!r} (may grow only "
                        f"with optim.schedule 'constant', not {new.get('optim.schedule')!r})")
    return diff


def has_run_state(workdir: str) -> bool:
    """Whether ``workdir`` holds a checkpoint step folder or ``results.json`` of a run."""
    directory = os.path.join(workdir, CHECKPOINT_DIR)
    steps = [n for n in os.listdir(directory) if n.isdigit()] if os.path.isdir(directory) else []
    return bool(steps) or os.path.exists(os.path.join(workdir, RESULTS_FILE))


def check_config(workdir: str, config: Any) -> Optional[dict[str, Any]]:
    """Checks ``config`` against ``workdir/config.json``; writes nothing.

    A workdir without checkpoints or results (a launch that failed a check, or
    was killed before its first checkpoint) takes the new config. Otherwise
    only :data:`RESUMABLE_FIELDS` may differ.

    Returns:
      The saved config dict, or ``None`` when there is none to keep.

    Raises:
      ValueError: the workdir belongs to a run with a different config (the
        message lists the differing fields), or its ``config.json`` is unreadable.
    """
    path = os.path.join(workdir, CONFIG_FILE)
    if not os.path.exists(path):
        return None
    started = has_run_state(workdir)
    try:
        saved = read_json(path)
    except ValueError as e:
        if not started:
            logging.warning("%s; the workdir has no checkpoint yet, so this run's config replaces it", e)
            return None
        raise ValueError(f"{e}. It pins the config of the run whose checkpoints are in "
                         f"{os.path.join(workdir, CHECKPOINT_DIR)}: restore it, or use a new --workdir") from None
    refused = refused_changes(saved, config_to_dict(config))
    if refused and not started:
        logging.warning("%s is replaced: the workdir has no checkpoint yet (fields changed: %s)",
                        path, "; ".join(refused))
        return None
    if refused:
        allowed = ", ".join(RESUMABLE_FIELDS)
        raise ValueError(
            f"{path} holds a different config; resuming would mix two runs. Use a new --workdir "
            f"or the saved config (only {allowed} may change on resume; see docs/training.md). "
            "Differing fields:\n  " + "\n  ".join(refused)
        )
    return saved


def write_config(workdir: str, config: Any) -> None:
    """Writes ``workdir/config.json`` (atomically)."""
    os.makedirs(workdir, exist_ok=True)
    write_json(os.path.join(workdir, CONFIG_FILE), config_to_dict(config))


# ---------------------------------------------------------------------------
# Checksums


def checksum(tree: PyTree) -> str:
    """SHA-256 over every leaf's dtype, shape and bytes, in tree order (the checksum before v2)."""
    digest = hashlib.sha256()
    for leaf in jax.tree.leaves(tree):
        leaf = np.asarray(leaf)
        digest.update(f"{leaf.dtype}{leaf.shape}".encode())
        digest.update(np.ascontiguousarray(leaf).tobytes())
    return digest.hexdigest()


def _canonical_json(info: Mapping[str, Any]) -> str:
    return json.dumps(info, sort_keys=True, separators=(",", ":"))


def checksum_v2(arrays: PyTree, info: Mapping[str, Any]) -> str:
    """SHA-256 over every leaf's path, dtype, shape and bytes, then the JSON of ``info``."""
    digest = hashlib.sha256(b"rnnlab-checkpoint-v2")
    for path, leaf in jax.tree_util.tree_leaves_with_path(arrays):
        leaf = np.asarray(leaf)
        digest.update(f"{jax.tree_util.keystr(path)}|{leaf.dtype}|{leaf.shape}|".encode())
        digest.update(np.ascontiguousarray(leaf).tobytes())
    digest.update(_canonical_json(info).encode())
    return digest.hexdigest()


def _verify(arrays: PyTree, info: dict[str, Any]) -> dict[str, Any]:
    """``info`` without its checksum, once the checksum matches ``arrays`` and ``info``."""
    if "checksum" in info:
        saved = info.pop("checksum")
        if checksum_v2(arrays, info) != saved:
            raise ValueError("the arrays or the JSON part do not match the checksum saved with them")
    elif "sha256" in info:  # written before the checksum covered the JSON part
        if checksum(arrays) != info.pop("sha256"):
            raise ValueError("the arrays do not match the checksum saved with them")
        logging.warning("this checkpoint predates checksums of its JSON part (data position, "
                        "early-stopping counters): only its arrays are verified")
    else:
        raise ValueError("it has no checksum")
    return info


# ---------------------------------------------------------------------------
# Noise from tensorstore reads that finish after a failed restore


def _closed_loop_callback(unraisable) -> bool:
    """Whether ``unraisable`` is a tensorstore read finishing after orbax closed its event loop."""
    value = unraisable.exc_value
    if not (isinstance(value, RuntimeError) and str(value) == "Event loop is closed"):
        return False
    tb = unraisable.exc_traceback
    while tb is not None:
        if tb.tb_frame.f_code.co_name == "call_soon_threadsafe":
            return True
        tb = tb.tb_next
    return False


def _install_quiet_unraisable_hook() -> Any:
    """Drops the "Event loop is closed" reports of a failed restore; passes on everything else.

    When a damaged checkpoint fails to restore, orbax closes its asyncio loop
    while tensorstore still has reads of the other arrays in flight; each one
    that finishes later reports ``RuntimeError: Event loop is closed`` through
    ``sys.unraisablehook`` (25-42 tracebacks on stderr, all harmless). Installed
    by :meth:`Checkpointer.restore` (never at import), which puts the previous
    hook back unless a restore failed: those late reports outlive the call.

    Returns:
      the hook it replaced (itself when already installed).
    """
    previous = sys.unraisablehook
    if getattr(previous, "_rnnlab_quiet", False):
        return previous

    def hook(unraisable):
        if not _closed_loop_callback(unraisable):
            previous(unraisable)

    hook._rnnlab_quiet = True
    sys.unraisablehook = hook
    return previous


# ---------------------------------------------------------------------------
# Checkpoints


def _no_space(error: BaseException) -> bool:
    """Whether ``error`` or an exception it came from says the disk is full."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if getattr(error, "errno", None) == errno.ENOSPC or "No space left on device" in str(error):
            return True
        error = error.__cause__ or error.__context__
    return False


class Checkpointer:
    """Saves and restores ``(arrays, info)`` checkpoints in ``directory``; a context manager that closes it.

    Args:
      directory: the checkpoint folder (``workdir/checkpoints``), created if missing.
      max_to_keep: how many of the newest checkpoints to keep.
    """

    def __init__(self, directory: str, max_to_keep: int = 3):
        self.directory = os.path.abspath(directory)
        options = ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep, create=True, enable_async_checkpointing=False
        )
        self._manager = ocp.CheckpointManager(self.directory, options=options)

    def steps(self) -> list[int]:
        """The saved steps, oldest first (including damaged ones)."""
        return sorted(self._manager.all_steps())

    def save(self, step: int, arrays: PyTree, info: Mapping[str, Any]) -> None:
        """Saves ``arrays`` (copied to host NumPy) and the JSON-serialisable ``info`` as ``step``.

        Raises:
          OSError: ``errno.ENOSPC`` when the disk is full (the message says where
            and which checkpoint the next launch resumes from).
        """
        arrays = jax.device_get(arrays)
        info = json.loads(json.dumps(dict(info)))  # as a restore will read it back
        info["checksum"] = checksum_v2(arrays, info)
        try:
            if step in self._manager.all_steps():  # a damaged checkpoint we fell back from
                self._manager.delete(step)
            self._manager.save(
                step,
                args=ocp.args.Composite(arrays=ocp.args.StandardSave(arrays), info=ocp.args.JsonSave(info)),
                force=True,
            )
            self._manager.wait_until_finished()
        except Exception as e:
            if not _no_space(e):
                raise
            free = shutil.disk_usage(self.directory).free
            kept = [s for s in self.steps() if s != step]
            resume = f"step {kept[-1]}" if kept else "the start (no checkpoint was saved)"
            raise OSError(
                errno.ENOSPC,
                f"No space left on device while saving checkpoint step {step} in {self.directory} "
                f"({free / 2**20:.1f} MiB free). Free some space and run the same command again: "
                f"it resumes from {resume}",
            ) from e
        logging.info("saved checkpoint step %d in %s", step, self.directory)

    def restore(self, target: PyTree) -> Optional[tuple[int, PyTree, dict[str, Any]]]:
        """``(step, arrays, info)`` of the newest checkpoint that restores whole, or ``None``.

        Both the arrays and the JSON ``info`` are verified against the checksum
        saved with them.

        Args:
          target: a pytree with the structure, shapes and dtypes of the saved
            arrays (e.g. the freshly initialised state); restored leaves are NumPy.
        """
        target = jax.device_get(target)
        previous_hook, failed = _install_quiet_unraisable_hook(), False
        try:
            for step in reversed(self.steps()):
                try:
                    restored = self._manager.restore(
                        step,
                        args=ocp.args.Composite(
                            arrays=ocp.args.StandardRestore(target), info=ocp.args.JsonRestore()
                        ),
                    )
                    arrays, info = jax.device_get(restored["arrays"]), dict(restored["info"])
                    info = _verify(arrays, info)
                except Exception as e:  # noqa: BLE001 - any failure means: use the previous one
                    failed = True
                    logging.warning(
                        "checkpoint step %d in %s does not restore (%s: %s); trying the previous one",
                        step, self.directory, type(e).__name__, str(e).splitlines()[0][:300] if str(e) else "",
                    )
                    continue
                logging.info("restored checkpoint step %d from %s", step, self.directory)
                return step, arrays, info
            return None
        finally:
            if not failed:  # no read left in flight: the process's own hook again
                sys.unraisablehook = previous_hook

    def close(self) -> None:
        """Waits for pending saves and releases the manager."""
        self._manager.wait_until_finished()
        self._manager.close()

    def __enter__(self) -> "Checkpointer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
