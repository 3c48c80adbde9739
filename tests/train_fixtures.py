"""Small configs, specs and batches shared by the training-stack tests."""

from __future__ import annotations

import os
import signal

import numpy as np

import rnnlab.data
from configs import negation
from rnnlab.data import DatasetSpec
from rnnlab.training import train


def cpu_devices_env(devices: int, **extra: str) -> dict:
    """The environment of a subprocess that sees ``devices`` CPU devices: the session's ``XLA_FLAGS``
    (tests/session.py) kept, the device count added, plus ``extra`` variables."""
    flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={devices}".strip()
    return {**os.environ, "XLA_FLAGS": flags, "JAX_PLATFORMS": "cpu", **extra}


def smoke_config(data_dir, arg: str = "smoke", **fields):
    """``configs/negation.py:<arg>`` with its data in ``data_dir`` and ``fields`` set ("train.seed": 1)."""
    config = negation.get_config(arg)
    config.data.data_dir = str(data_dir)
    for path, value in fields.items():
        section, field = path.split(".")
        config[section][field] = value
    return config


def fake_spec(task: str = "classify", input_kind: str = "tokens", num_outputs: int = 3) -> DatasetSpec:
    """A DatasetSpec for batches made by :func:`fake_batch` (vocab 20 or D = 5)."""
    return DatasetSpec(
        name="fake", task=task, input_kind=input_kind,
        vocab_size=20 if input_kind == "tokens" else None,
        input_size=None if input_kind == "tokens" else 5,
        num_outputs=1 if task == "regress" else num_outputs,
        vocab=None, splits=("train",), num_examples={"train": 8},
    )


def fake_batch(spec: DatasetSpec, batch_size: int = 4, steps: int = 7, seed: int = 0) -> dict:
    """A random padded batch of the contract's shapes for ``spec``; lengths include 0 and T."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, steps + 1, batch_size).astype(np.int32)
    lengths[0], lengths[-1] = steps, max(1, steps // 2)
    mask = np.arange(steps)[None, :] < lengths[:, None]
    if spec.input_kind == "tokens":
        inputs = rng.integers(2, spec.vocab_size, (batch_size, steps)).astype(np.int32) * mask
    else:
        inputs = rng.normal(size=(batch_size, steps, spec.input_size)).astype(np.float32) * mask[..., None]
    targets = {
        "classify": lambda: rng.integers(0, spec.num_outputs, batch_size).astype(np.int32),
        "tag": lambda: rng.integers(0, spec.num_outputs, (batch_size, steps)).astype(np.int32) * mask,
        "density": lambda: (rng.random((batch_size, steps, spec.num_outputs)) < 0.3).astype(np.float32)
        * mask[..., None],
        "regress": lambda: rng.normal(size=batch_size).astype(np.float32),
    }[spec.task]()
    return {"inputs": inputs, "lengths": lengths, "targets": targets,
            "weights": np.ones(batch_size, np.float32)}


def stop_after(monkeypatch, n: int) -> None:
    """Makes ``train.train_and_evaluate`` stop as on SIGTERM once its train loader gave ``n`` batches.

    The run saves a checkpoint and returns None; ``monkeypatch.undo()`` puts the loader and the
    signal handler back for the relaunch.
    """
    make_loader, received = rnnlab.data.make_loader, {}

    class StopAfter:
        """Stands in for train.StopSignal."""

        def __init__(self):
            self.received = None
            received["signal"] = self

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            pass

    def stopping_loader(data_config, split, **kwargs):
        loader = make_loader(data_config, split, **kwargs)
        if split != "train":
            return loader
        count = {"n": 0}

        class Wrapped:
            def __iter__(self):
                return self

            def __next__(self):
                count["n"] += 1
                if count["n"] == n:
                    received["signal"].received = signal.SIGTERM
                return next(loader)

            get_state, set_state = loader.get_state, loader.set_state

        return Wrapped()

    monkeypatch.setattr(rnnlab.data, "make_loader", stopping_loader)
    monkeypatch.setattr(train, "StopSignal", StopAfter)
