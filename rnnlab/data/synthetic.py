"""Long-memory tasks: the adding problem and delayed recall (copy).

``adding`` (Hochreiter & Schmidhuber 1997): ``inputs f32[T, 2]``; channel 0 holds
uniform values in [0, 1), channel 1 marks two of them (one in the first half,
one in the second); the target is the sum of the two marked values. Predicting
1.0 always gives a mean squared error of 1/6.

``copy`` (delayed recall): ``seq_len`` tokens: ``copy_length`` random symbols,
blanks, a go marker ``:`` at ``T - copy_length - 1``, then blanks during which
the model must output the symbols in order. Targets are token ids: the blank
``_`` everywhere except the last ``copy_length`` steps, which hold the symbols;
``target_mask`` is 1.0 on those steps. The delay between reading a symbol and
writing it is ``seq_len - copy_length`` steps. Guessing gives accuracy
``1 / num_symbols`` on the masked steps.
"""

from __future__ import annotations

import dataclasses
import string

import numpy as np
import tensorflow_datasets as tfds

from rnnlab.data.registry import (
    Dataset,
    GeneratedOptions,
    TokenTagging,
    make_vocab,
    register,
    require,
    vocab_fields,
)


@dataclasses.dataclass(frozen=True)
class AddingOptions(GeneratedOptions):
    """Data config fields of ``adding`` (defaults used when absent).

    Attributes:
      num_train, num_valid, num_test, gen_seed: see :class:`GeneratedOptions`.
      seq_len: T, the length of every sequence.
    """

    seq_len: int = 100

    def validate(self) -> None:
        super().validate()
        require(self.seq_len >= 2, "seq_len", "must be >= 2", self.seq_len)


@dataclasses.dataclass(frozen=True)
class CopyOptions(AddingOptions):
    """Data config fields of ``copy`` (defaults used when absent).

    Attributes:
      num_train, num_valid, num_test, gen_seed, seq_len: see :class:`AddingOptions`.
      copy_length: symbols to remember (``seq_len >= 2 * copy_length + 1``).
      num_symbols: alphabet size (at most 26).
    """

    copy_length: int = 10
    num_symbols: int = 8

    def validate(self) -> None:
        super().validate()
        require(self.copy_length >= 1, "copy_length", "must be >= 1", self.copy_length)
        require(2 <= self.num_symbols <= 26, "num_symbols", "must lie in [2, 26]", self.num_symbols)
        require(self.seq_len >= 2 * self.copy_length + 1, "seq_len",
                f"must be >= 2 * data.copy_length + 1 = {2 * self.copy_length + 1}", self.seq_len)


def adding_example(rng: np.random.Generator, seq_len: int) -> dict:
    """One adding-problem example: ``inputs f32[T, 2]``, ``targets`` the marked sum."""
    values = rng.random(seq_len).astype(np.float32)
    half = seq_len // 2
    marks = np.zeros(seq_len, np.float32)
    marks[[rng.integers(half), half + rng.integers(seq_len - half)]] = 1.0
    return {
        "inputs": np.stack([values, marks], axis=-1),
        "targets": np.float32((values * marks).sum()),
        "length": seq_len,
    }


@register
class Adding(Dataset):
    """The adding problem (regression, features D = 2)."""

    name = "adding"
    Options = AddingOptions
    task = "regress"
    input_kind = "features"

    def features(self, options):
        return {
            "inputs": tfds.features.Tensor(shape=(None, 2), dtype=np.float32),
            "targets": np.float32,
            "length": np.int32,
        }

    def generate(self, options):
        return options.draw_splits(200, lambda rng: adding_example(rng, options.seq_len)), {}

    def describe(self, options, metadata):
        return {"vocab": None, "vocab_size": None, "input_size": 2, "num_outputs": 1}


BLANK, GO = "_", ":"


def copy_vocab(num_symbols: int) -> tuple[str, ...]:
    """``<pad>, <unk>, _, :`` then the symbols ``a, b, ...``."""
    return make_vocab([BLANK, GO, *string.ascii_lowercase[:num_symbols]])


def copy_example(rng: np.random.Generator, options: CopyOptions) -> dict:
    """One delayed-recall example (see the module docstring)."""
    t, n = options.seq_len, options.copy_length
    blank, go, first_symbol = 2, 3, 4
    symbols = rng.integers(first_symbol, first_symbol + options.num_symbols, size=n).astype(np.int32)
    inputs = np.full(t, blank, np.int32)
    inputs[:n] = symbols
    inputs[t - n - 1] = go
    targets = np.full(t, blank, np.int32)
    targets[t - n :] = symbols
    mask = np.zeros(t, np.float32)
    mask[t - n :] = 1.0
    return {"inputs": inputs, "targets": targets, "target_mask": mask, "length": t}


@register
class Copy(TokenTagging):
    """Delayed recall over tokens (tagging; classes are the vocabulary ids)."""

    name = "copy"
    Options = CopyOptions

    def generate(self, options):
        splits = options.draw_splits(300, lambda rng: copy_example(rng, options))
        return splits, {"vocab": list(copy_vocab(options.num_symbols))}

    def describe(self, options, metadata):
        return vocab_fields(metadata["vocab"], num_outputs=len(metadata["vocab"]))
