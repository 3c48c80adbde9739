"""Devices: a 1-D ``jax.sharding.Mesh`` whose ``"data"`` axis splits every batch; params replicated."""

from __future__ import annotations

from typing import Mapping

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from rnnlab.types import Array, PyTree

DATA_AXIS = "data"


def make_mesh(num_devices: int) -> jax.sharding.Mesh:
    """A 1-D mesh with axis ``"data"`` over the first ``num_devices`` devices (0 = all)."""
    devices = jax.devices()
    if num_devices > len(devices):
        raise ValueError(f"config.train.mesh asks for {num_devices} devices, but JAX sees {len(devices)}")
    devices = devices[: num_devices or len(devices)]
    return jax.sharding.Mesh(np.asarray(devices), (DATA_AXIS,))


def batch_sharding(mesh: jax.sharding.Mesh) -> NamedSharding:
    """Arrays split along their leading (batch) axis over the mesh's ``"data"`` axis."""
    return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def replicated(mesh: jax.sharding.Mesh) -> NamedSharding:
    """Arrays copied whole to every device of the mesh."""
    return NamedSharding(mesh, PartitionSpec())


def numeric(batch: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The arrays of a host batch that a step reads: booleans, integers and floats (no strings)."""
    return {k: v for k, v in batch.items() if np.asarray(v).dtype.kind in "biuf"}


def shard_batch(batch: Mapping[str, np.ndarray], mesh: jax.sharding.Mesh) -> dict[str, Array]:
    """Puts the :func:`numeric` arrays of a host batch (``[B, ...]`` each) on the mesh, split along B."""
    sharding = batch_sharding(mesh)
    return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v)) for k, v in numeric(batch).items()}


def host_rows(tree: PyTree) -> PyTree:
    """Host NumPy copies of ``tree``'s leaves split along the batch, every process's rows (``[B, ...]`` each)."""
    if jax.process_count() == 1:
        return jax.device_get(tree)
    from jax.experimental import multihost_utils

    return multihost_utils.process_allgather(tree, tiled=True)


def replicate(tree: PyTree, mesh: jax.sharding.Mesh) -> PyTree:
    """Copies every leaf of ``tree`` to all devices of ``mesh``."""
    return jax.device_put(tree, replicated(mesh))
