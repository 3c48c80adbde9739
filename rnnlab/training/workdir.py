"""The run directory (workdir) of one training run: its file names and how they are read and written.

    workdir/
      config.json      the config (a different one is refused on resume)
      checkpoints/     orbax step folders
      metrics.jsonl    one JSON object per logged step / evaluation, metrics named ``split/name``
      tensorboard/     the same scalars for TensorBoard
      results.json     final metrics per split, ``{split: {name: value}}``
      lock             held by the process that trains in the workdir

Every module that reads or writes a workdir takes the names and helpers from here.
"""

from __future__ import annotations

import json
import os
from typing import Any, Mapping

CONFIG_FILE = "config.json"
CHECKPOINT_DIR = "checkpoints"
METRICS_FILE = "metrics.jsonl"
TENSORBOARD_DIR = "tensorboard"
RESULTS_FILE = "results.json"
LOCK_FILE = "lock"


def write_json(path: str, obj: Any) -> None:
    """Writes ``obj`` as indented JSON to ``path`` atomically (a ``.tmp`` file, then a rename)."""
    with open(path + ".tmp", "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
    os.replace(path + ".tmp", path)


def write_lines(path: str, records: list[Mapping[str, Any]]) -> None:
    """Writes ``records`` as JSON lines to ``path`` atomically (a ``.tmp`` file, then a rename)."""
    with open(path + ".tmp", "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in records)
    os.replace(path + ".tmp", path)


def read_json(path: str) -> Any:
    """The JSON value in ``path``.

    Raises:
      ValueError: the file is empty or not JSON (the message names the file, line and column).
    """
    with open(path) as f:
        text = f.read()
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        what = "is empty" if not text.strip() else f"is not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})"
        raise ValueError(f"{path} {what}") from None


def read_metrics(workdir: str) -> list[dict[str, Any]]:
    """The records of ``workdir/metrics.jsonl`` in file order (empty if there is none).

    A line that is not JSON (the torn last line of a killed run) is dropped.
    """
    path = os.path.join(workdir, METRICS_FILE)
    if not os.path.isfile(path):
        return []
    records = []
    with open(path) as f:
        for line in f:
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
    return records


def is_finished(workdir: str) -> bool:
    """Whether ``workdir`` holds its final ``results.json``."""
    return os.path.isfile(os.path.join(workdir, RESULTS_FILE))


def flatten(tree: Mapping[str, Any], sep: str = "/", prefix: str = "") -> dict[str, Any]:
    """A nested dict flattened, its keys joined by ``sep`` (any depth).

    ``flatten({"test": {"accuracy": 0.9}}) == {"test/accuracy": 0.9}``; configs
    use ``sep="."`` (``"model.cell"``).
    """
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}{sep}{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            flat.update(flatten(value, sep, name))
        else:
            flat[name] = value
    return flat
