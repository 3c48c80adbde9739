"""Checkpoints of a run: orbax ``CheckpointManager`` in ``workdir/checkpoints``.

A checkpoint holds one pytree of arrays (the train state and whatever else
the loop keeps, saved as host NumPy arrays) and one JSON object (the data
iterator position, early-stopping counters, ...), plus a SHA-256 of every
array, because orbax can restore flipped bytes silently. :meth:`Checkpointer.restore`
walks back from the latest step to the newest checkpoint that restores whole
and matches its checksum, logging why each newer one was skipped (an empty
step folder, a damaged file).

The workdir's ``config.json`` pins the configuration: :func:`check_config`
refuses a run whose config differs, naming the differing fields.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any, Mapping, Optional

import jax
import numpy as np
import orbax.checkpoint as ocp
from absl import logging

from rnnlab.types import PyTree

CONFIG_FILE = "config.json"
CHECKPOINT_DIR = "checkpoints"


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def config_to_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready dict of a ConfigDict (or dict): tuples become lists, as JSON would store them."""
    as_dict = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    return json.loads(json.dumps(as_dict, default=str))


def config_diff(saved: Mapping[str, Any], requested: Mapping[str, Any]) -> list[str]:
    """One line per differing field, ``"model.cell: saved 'lstm', requested 'gru'"``."""
    old, new = _flatten(saved), _flatten(requested)
    missing = object()
    return [
        f"{key}: saved {old.get(key, missing)!r}, requested {new.get(key, missing)!r}".replace(
            repr(missing), "(absent)"
        )
        for key in sorted(set(old) | set(new))
        if old.get(key, missing) != new.get(key, missing)
    ]


def check_config(workdir: str, config: Any) -> None:
    """Writes ``workdir/config.json``, or checks that the one there equals ``config``.

    Raises:
      ValueError: the workdir belongs to a run with a different config; the
        message lists the differing fields.
    """
    path = os.path.join(workdir, CONFIG_FILE)
    requested = config_to_dict(config)
    if os.path.exists(path):
        with open(path) as f:
            saved = json.load(f)
        diff = config_diff(saved, requested)
        if diff:
            raise ValueError(
                f"{path} holds a different config; resuming would mix two runs. Use a new "
                "--workdir or the saved config. Differing fields:\n  " + "\n  ".join(diff)
            )
        return
    os.makedirs(workdir, exist_ok=True)
    with open(path + ".tmp", "w") as f:
        json.dump(requested, f, indent=2, sort_keys=True)
    os.replace(path + ".tmp", path)


def checksum(tree: PyTree) -> str:
    """SHA-256 over every leaf's dtype, shape and bytes, in tree order."""
    digest = hashlib.sha256()
    for leaf in jax.tree.leaves(tree):
        leaf = np.asarray(leaf)
        digest.update(f"{leaf.dtype}{leaf.shape}".encode())
        digest.update(np.ascontiguousarray(leaf).tobytes())
    return digest.hexdigest()


class Checkpointer:
    """Saves and restores ``(arrays, info)`` checkpoints in ``directory``.

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
        """Saves ``arrays`` (copied to host NumPy) and the JSON-serialisable ``info`` as ``step``."""
        arrays = jax.device_get(arrays)
        info = {**info, "sha256": checksum(arrays)}
        if step in self._manager.all_steps():  # a damaged checkpoint we fell back from
            self._manager.delete(step)
        self._manager.save(
            step,
            args=ocp.args.Composite(
                arrays=ocp.args.StandardSave(arrays), info=ocp.args.JsonSave(dict(info))
            ),
            force=True,
        )
        self._manager.wait_until_finished()
        logging.info("saved checkpoint step %d in %s", step, self.directory)

    def restore(self, target: PyTree) -> Optional[tuple[int, PyTree, dict[str, Any]]]:
        """``(step, arrays, info)`` of the newest checkpoint that restores whole, or ``None``.

        Args:
          target: a pytree with the structure, shapes and dtypes of the saved
            arrays (e.g. the freshly initialised state); restored leaves are NumPy.
        """
        target = jax.device_get(target)
        for step in reversed(self.steps()):
            try:
                restored = self._manager.restore(
                    step,
                    args=ocp.args.Composite(
                        arrays=ocp.args.StandardRestore(target), info=ocp.args.JsonRestore()
                    ),
                )
                arrays, info = jax.device_get(restored["arrays"]), dict(restored["info"])
                if checksum(arrays) != info.pop("sha256", None):
                    raise ValueError("the arrays do not match the checksum saved with them")
            except Exception as e:  # noqa: BLE001 - any failure means: use the previous one
                logging.warning(
                    "checkpoint step %d in %s does not restore (%s: %s); trying the previous one",
                    step, self.directory, type(e).__name__, str(e).splitlines()[0] if str(e) else "",
                )
                continue
            logging.info("restored checkpoint step %d from %s", step, self.directory)
            return step, arrays, info
        return None

    def close(self) -> None:
        """Waits for pending saves and releases the manager."""
        self._manager.wait_until_finished()
        self._manager.close()
