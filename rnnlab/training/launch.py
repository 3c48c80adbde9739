"""One training run, as ``python -m rnnlab launch`` starts it.

:func:`launch` quiets orbax's logging and calls
:func:`rnnlab.training.train.train_and_evaluate`, which locks the workdir, writes
``workdir/config.json`` once every check has passed, resumes from the workdir's
checkpoints, and returns the results of a finished run without training.
"""

from typing import Any, Optional

from absl import logging

from rnnlab.training import train


def _quiet_orbax(record) -> bool:
    """Drops orbax's INFO chatter (a dozen lines per save); keeps its warnings."""
    return record.levelno > logging.converter.STANDARD_INFO or "/orbax/" not in record.pathname


def quiet_orbax() -> None:
    """Drops orbax's INFO lines from absl's log handler (once per process)."""
    handler = logging.get_absl_handler()
    if _quiet_orbax not in handler.filters:
        handler.addFilter(_quiet_orbax)


def launch(config: Any, workdir: str) -> Optional[dict[str, Any]]:
    """Trains (or resumes, or returns the results of) the run of ``config`` in ``workdir``.

    Returns:
      What :func:`rnnlab.training.train.train_and_evaluate` returns: the results
      dict, or ``None`` when stopped by a signal.
    """
    quiet_orbax()
    return train.train_and_evaluate(config, workdir)
