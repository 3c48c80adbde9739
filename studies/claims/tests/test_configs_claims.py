"""The claims study's configs: the variants that change the task, beyond the smoke run every config
gets in tests/test_configs.py."""

import os

from tests.test_configs import smoke_two_steps


def test_long_memory_copy_variant_runs_two_steps(tmp_path):
    smoke_two_steps(os.path.join("studies", "claims", "configs", "long_memory.py"), "copy,smoke", tmp_path)
