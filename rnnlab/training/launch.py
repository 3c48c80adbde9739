"""The absl entry point behind ``launch.py`` and ``python -m rnnlab.launch``.

    python launch.py --config=configs/negation.py --workdir=runs/negation [--config.model.cell=gru]

It parses flags, logs the config and calls
:func:`rnnlab.train.train_and_evaluate`, which locks the workdir, writes
``workdir/config.json`` once every check has passed, resumes from the workdir's
checkpoints, and returns the results of a finished run without training.
"""

from absl import app, flags, logging
from ml_collections import config_flags

from rnnlab import train

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Experiment config file, e.g. configs/negation.py[:variants].", lock_config=True
)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and results.")
flags.mark_flags_as_required(["config", "workdir"])


def _quiet_orbax(record) -> bool:
    """Drops orbax's INFO chatter (a dozen lines per save); keeps its warnings."""
    return record.levelno > logging.converter.STANDARD_INFO or "/orbax/" not in record.pathname


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    logging.get_absl_handler().addFilter(_quiet_orbax)
    logging.info("config:\n%s", _CONFIG.value)
    train.train_and_evaluate(_CONFIG.value, _WORKDIR.value)


def run() -> None:
    """Console entry point (``rnnlab-launch``)."""
    app.run(main)


if __name__ == "__main__":
    run()
