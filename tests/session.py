"""A pytest plugin (``-p tests.session`` in pyproject.toml): one persistent XLA compilation cache for
the whole test session.

The xdist workers and every process a test starts (the commands, notebook kernels) inherit
``JAX_COMPILATION_CACHE_DIR``, so a step function compiled once (the smoke models many tests train)
is loaded from disk after. A folder set by the user is kept; the session's own is removed at the end.
Cache hits do not count as compilations (``train.CompileCounter`` counts backend compiles), which is
why tests assert at most, never exactly, so many compilations of a run.
"""

import os
import shutil
import tempfile

_CREATED = "RNNLAB_TEST_JAX_CACHE_CREATED"


def pytest_configure(config):
    if "JAX_COMPILATION_CACHE_DIR" in os.environ:  # the user's, or the controller's for an xdist worker
        return
    os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="rnnlab-tests-jax-cache-")
    os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0.2"  # smaller ones compile faster than they load
    os.environ[_CREATED] = os.environ["JAX_COMPILATION_CACHE_DIR"]


def pytest_unconfigure(config):
    if os.environ.get(_CREATED) and not os.environ.get("PYTEST_XDIST_WORKER"):
        shutil.rmtree(os.environ.pop(_CREATED), ignore_errors=True)
