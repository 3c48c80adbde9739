"""The claims study's configs: the variants that change the task, beyond the smoke run every config
gets in tests/test_configs.py."""

import os

import pytest

from tests.test_configs import smoke_two_steps
from tests.train_fixtures import compile_cache  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("compile_cache")


def test_long_memory_copy_variant_runs_two_steps(tmp_path):
    smoke_two_steps(os.path.join("studies", "claims", "configs", "long_memory.py"), "copy,smoke", tmp_path)
