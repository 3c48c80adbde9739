"""The claims study's configs: the variants that change the task, beyond the smoke run every config
gets in tests/test_configs.py."""

import os

from tests.test_configs import smoke_two_steps


def test_long_memory_copy_variant_runs_two_steps(tmp_path):
    smoke_two_steps(os.path.join("studies", "claims", "configs", "long_memory.py"), "copy,smoke", tmp_path)


def test_matched_hidden_is_the_closest_size_by_counting_every_size():
    from studies.claims import configs as claims

    for cell, bidirectional in (("tanh", False), ("gru", True), ("lstm_cifg", False)):
        target = claims.model_params("lstm", 5, 8, 3, bidirectional)
        counts = {h: claims.model_params(cell, 5, h, 3, bidirectional) for h in range(1, 40)}
        closest = min(counts, key=lambda h: (abs(counts[h] - target), h))
        assert claims.matched_hidden(target, cell, 5, 3, bidirectional) == closest
