"""``python -m rnnlab predict``: a trained run of any task on new inputs, one JSON line each.

    python -m rnnlab predict --workdir=runs/sst < sentences.txt
    python -m rnnlab predict --workdir=runs/sst --input=sentences.txt --gates
    python -m rnnlab predict --workdir=runs/mytext --input=new.tsv
    python -m rnnlab predict --workdir=runs/jsb --input=new.npz

Runs over tokens read raw text, one input per line, or a ``.tsv`` / ``.csv``
(with a header) / ``.jsonl`` file in the format of the text-classification
training files, its ``--text_field`` column (default: the run's
``data.text_field``, else ``text``; a label column is ignored); runs over
feature vectors an ``.npz`` file holding ``inputs``. Each JSON record ends with ``"step"``, the
checkpoint step that served it (also logged to stderr, with a warning when a
damaged newer checkpoint was skipped). The records per task, and how inputs
are read, are in :mod:`rnnlab.inference.predict`, where the work lives
(``rnnlab.inference.predict.load(workdir)`` restores a run for use in Python). Every error a user can cause prints one line
``rnnlab predict: <message>`` and exits with status 1.
"""

import os
import sys
from typing import Optional, Sequence

from absl import app, flags

from rnnlab.commands.common import fail, run_app
from rnnlab.inference.predict import predict_file


def main(argv: Sequence[str]) -> None:
    """absl entry: reads inputs from ``--input`` or stdin, writes JSON lines to stdout; every error a user
    can cause is one line on stderr and exit status 1."""
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    f = flags.FLAGS
    try:
        predict_file(f.workdir, f.input, gates=f.gates, batch_size=f.batch_size, text_field=f.text_field)
    except BrokenPipeError:  # stdout closed early (`| head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    except (ValueError, OSError) as e:  # a clear sentence, not a traceback (OSError: missing or unreadable files)
        fail("rnnlab predict", e)


def _define_flags() -> None:
    flags.DEFINE_string("workdir", None, "run directory of a trained model (any task)", required=True)
    flags.DEFINE_string("input", None, "text file of one input per line (default: stdin); a .tsv, .csv or .jsonl "
                        "file's --text_field; or an .npz file holding 'inputs' for runs over feature vectors")
    flags.DEFINE_string("text_field", None, "the column (key) of a .tsv, .csv or .jsonl --input holding the text "
                        "(default: the run's data.text_field, else 'text')")
    flags.DEFINE_bool("gates", False, "add every layer's gate activations per step")
    flags.DEFINE_integer("batch_size", 64, "inputs per forward pass (a positive integer)")


def run(argv: Optional[Sequence[str]] = None) -> None:
    """``python -m rnnlab predict`` (``argv`` defaults to ``sys.argv``)."""
    run_app("rnnlab predict", main, _define_flags, argv)


if __name__ == "__main__":
    run()
