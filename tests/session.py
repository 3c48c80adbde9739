"""A pytest plugin (``-p tests.session`` in pyproject.toml): one persistent XLA compilation cache for
the whole test session.

The xdist workers and every process a test starts (the commands, notebook kernels) inherit
``JAX_COMPILATION_CACHE_DIR``, so a step function compiled once (the smoke models many tests train)
is loaded from disk after. A folder set by the user is kept; the session's own is removed at the end.
Cache hits do not count as compilations (``train.CompileCounter`` counts backend compiles), which is
why tests assert at most, never exactly, so many compilations of a run.

It also compiles for speed of compiling (``XLA_FLAGS``, inherited the same way): XLA's backend
optimisation level 0, the CPU backend's legacy code generator for fusions instead of its MLIR fusion
emitters (``--xla_cpu_use_fusion_emitters=false``), and each program compiled as one LLVM module
(``--xla_cpu_parallel_codegen_split_count=1``; splitting a tiny program across threads costs more CPU
time than it saves, and the two test workers keep both cores busy). The tests' programs are tiny, so
compiling is most of their time: with the three, a small scan's gradient compiles in about a fifth of
the default's CPU time, while the compiled code runs about 3.5x slower
(``benchmarks/results/compile_time.md``), a bad trade for training and a good one here. The flags
change no arithmetic that the tests check: XLA's CPU backend keeps IEEE semantics under every setting
(no fast math), and every test that compares runs bitwise runs both in this session. A flag the user
sets in ``XLA_FLAGS`` is kept.

Tests marked ``slow`` (end-to-end runs of several seconds to a minute: several processes, notebooks)
are scheduled first: pytest-xdist hands out tests in collection order, so a long test collected last
would keep one worker busy while the other idles; ``--dist=worksteal`` (pyproject.toml) lets a worker
that runs out take queued tests from the other.
"""

import os
import shutil
import tempfile

_CREATED = "RNNLAB_TEST_JAX_CACHE_CREATED"


FAST_COMPILE = {"xla_backend_optimization_level": "0", "xla_cpu_use_fusion_emitters": "false",
                "xla_cpu_parallel_codegen_split_count": "1"}


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: an end-to-end test of several seconds or more, scheduled first")
    flags = os.environ.get("XLA_FLAGS", "")
    added = [f"--{name}={value}" for name, value in FAST_COMPILE.items() if name not in flags]  # the user's win
    os.environ["XLA_FLAGS"] = " ".join([flags, *added]).strip()
    if "JAX_COMPILATION_CACHE_DIR" in os.environ:  # the user's, or the controller's for an xdist worker
        return
    os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="rnnlab-tests-jax-cache-")
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")  # smaller ones compile faster than they load
    os.environ[_CREATED] = os.environ["JAX_COMPILATION_CACHE_DIR"]


def pytest_collection_modifyitems(config, items):
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable: the rest keep their order


def pytest_unconfigure(config):
    if os.environ.get(_CREATED) and not os.environ.get("PYTEST_XDIST_WORKER"):
        shutil.rmtree(os.environ.pop(_CREATED), ignore_errors=True)
