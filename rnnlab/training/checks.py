"""The two helpers of every config check in the training stack: one message shape, one integer test.

Each section is checked by the module that owns it (``config.model`` by
:func:`rnnlab.training.models.check_model_config`, ``config.optim`` by
:func:`rnnlab.training.optim.check_optim_config`, ``config.train`` by
:func:`rnnlab.training.loop.check_train_config`), and
:func:`rnnlab.training.train.check_config` runs them all once, before a run
builds anything.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def require(condition: bool, field: str, message: str, value: Any) -> None:
    """Raises ``ValueError("config.<field> <message>, got <value>")`` unless ``condition``."""
    if not condition:
        raise ValueError(f"config.{field} {message}, got {value!r}")


def is_int(value: Any) -> bool:
    """Whether ``value`` is an integer (Python or NumPy), not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)
