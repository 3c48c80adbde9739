"""The two helpers of every config check in the training stack: one message shape, one integer test.

Each section is checked by the module that owns it (``config.model`` by
:func:`rnnlab.training.models.check_model_config`, ``config.optim`` by
:func:`rnnlab.training.optim.check_optim_config`, ``config.train`` by
:func:`rnnlab.training.loop.check_train_config`), and
:func:`rnnlab.training.train.check_config` runs them all once, before a run
builds anything.
"""

from __future__ import annotations

import ast
from typing import Any

import numpy as np


def require(condition: bool, field: str, message: str, value: Any) -> None:
    """Raises ``ValueError("config.<field> <message>, got <value>")`` unless ``condition``."""
    if not condition:
        raise ValueError(f"config.{field} {message}, got {value!r}")


def is_int(value: Any) -> bool:
    """Whether ``value`` is an integer (Python or NumPy), not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


# Errors a user can fix by changing the config, the data or the command: raised while a run is set
# up (before anything trains), they are marked so that a command prints their one-line message.
SETUP_ERRORS = (ValueError, TypeError, KeyError, FileNotFoundError, ImportError, RuntimeError)


class SetupPhase:
    """Context manager around a command: a :data:`SETUP_ERRORS` exception raised before :meth:`done` is the user's.

    Such an exception propagates unchanged (same type, message and
    traceback), marked for :func:`is_setup_error`; commands print it as one line
    and exit non-zero. Errors after :meth:`done` (training itself) keep their traceback.
    """

    def __init__(self):
        self.over = False

    def done(self) -> None:
        """Ends the setup: later errors are not the user's to fix by a config change."""
        self.over = True

    def __enter__(self) -> "SetupPhase":
        return self

    def __exit__(self, kind, error, traceback) -> bool:
        if error is not None and not self.over and isinstance(error, SETUP_ERRORS):
            error.rnnlab_setup_error = True
        return False


def is_setup_error(error: BaseException) -> bool:
    """Whether ``error`` was raised while a run was set up (:class:`SetupPhase`)."""
    return bool(getattr(error, "rnnlab_setup_error", False))


def error_line(error: BaseException) -> str:
    """The one line a command prints for ``error``: its message (KeyError's without the quotes), newlines folded."""
    message = str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)
    if len(message) > 1 and message[0] == message[-1] and message[0] in "'\"":  # a repr() inside the message
        try:
            message = str(ast.literal_eval(message))
        except (ValueError, SyntaxError):
            pass
    return " ".join(message.split()) or type(error).__name__
