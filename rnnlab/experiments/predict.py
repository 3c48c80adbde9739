"""A trained classifier on new text: class probabilities and, on request, its gates.

    python -m rnnlab.predict --workdir=runs/sst < sentences.txt
    python -m rnnlab.predict --workdir=runs/sst --input=sentences.txt --gates

One raw sentence per line (blank lines are skipped) is tokenized as the run's
training data was (the dataset's ``tokenize``: for SST the treebank's
tokenization, lower-cased), words outside the run's vocabulary map to
``<unk>`` as in training, and one JSON object per line comes out::

    {"text": "not good", "tokens": ["not", "good"], "label": 0,
     "label_name": "negative", "probs": [0.91, 0.09]}

``--gates`` adds ``"gates"``: one entry per recurrent layer and direction,
``{"layer": 0, "direction": "fwd", "gates": {"forget": [[...H] per token], ...}}``.

From Python::

    predictor = rnnlab.predict.load("runs/sst")
    probs = predictor(["a gorgeous film", "not good at all"])   # f32[2, C]

:func:`restore` is THE way a trained run comes back (config, dataset spec,
model and best parameters, checksums verified): it lives in
:mod:`rnnlab.experiments.trained_run` with :class:`TrainedRun`,
:func:`read_config` and :func:`checkpoint_steps`, all re-exported here.
"""

from __future__ import annotations

import functools
import json
import sys
from typing import Any, Optional, Sequence

import numpy as np

from rnnlab.experiments.trained_run import (PARAMS_KINDS, TrainedRun, checkpoint_steps, read_config,  # noqa: F401
                                            restore)


class Predictor:
    """A restored classification run that maps raw sentences to class probabilities.

    Attributes:
      run: the :class:`TrainedRun`.
      class_names: a name per class when the dataset gives them, else ``None``.
    """

    def __init__(self, run: TrainedRun):
        import jax

        import rnnlab.data

        if run.spec.task != "classify":
            raise ValueError(
                f"run {run.workdir!r} is a {run.spec.task!r} task on dataset {run.spec.name!r}; "
                "rnnlab.predict serves classification runs only (one label per sentence)"
            )
        if run.spec.input_kind != "tokens" or run.spec.vocab is None:
            raise ValueError(f"run {run.workdir!r} reads {run.spec.input_kind} inputs, not words")
        self.run = run
        dataset = rnnlab.data.get_dataset(run.spec.name)
        options = dataset.options(run.config.data)
        tokenize = getattr(dataset, "tokenize", None)
        self._tokenize = functools.partial(tokenize, options) if tokenize is not None else _default_tokenizer
        names = getattr(dataset, "class_names", None)
        self.class_names = tuple(names(options)) if names is not None else None
        self._word_ids = {w: i for i, w in enumerate(run.spec.vocab)}
        model = run.model
        self._apply = jax.jit(lambda params, x, n: jax.nn.softmax(model.apply({"params": params}, x, n)))

    def tokenize(self, sentence: str) -> list[str]:
        """The tokens of one raw sentence, as the run's training data was tokenized."""
        return self._tokenize(sentence)

    def encode(self, sentences: Sequence[str]) -> tuple[np.ndarray, np.ndarray, list[list[str]]]:
        """``(ids int32[B, T], lengths int32[B], tokens)``; T is a power of two >= the longest.

        Unknown words map to ``<unk>`` (id 1), as in training.

        Raises:
          ValueError: ``sentences`` is a string or empty, or a sentence has no words.
        """
        from rnnlab.data.registry import encode

        if isinstance(sentences, str) or not len(sentences):
            raise ValueError("give a non-empty list of sentences (strings), not one string")
        tokens = [self.tokenize(s) for s in sentences]
        empty = [i for i, t in enumerate(tokens) if not t]
        if empty:
            raise ValueError(f"sentence {empty[0]} ({sentences[empty[0]]!r}) has no words")
        longest = max(len(t) for t in tokens)
        steps = 1 << (longest - 1).bit_length()  # few distinct shapes: few compilations
        ids = np.zeros((len(tokens), steps), np.int32)
        for row, t in zip(ids, tokens):
            row[: len(t)] = encode(t, self._word_ids)
        return ids, np.asarray([len(t) for t in tokens], np.int32), tokens

    def __call__(self, sentences: Sequence[str]) -> np.ndarray:
        """``f32[B, C]``: the class probabilities of each raw sentence."""
        ids, lengths, _ = self.encode(sentences)
        return np.asarray(self._apply(self.run.params, ids, lengths))

    def predict(self, sentences: Sequence[str], gates: bool = False) -> list[dict[str, Any]]:
        """One JSON-ready dict per sentence: text, tokens, label, label_name, probs (and gates).

        Args:
          sentences: raw sentences.
          gates: add ``"gates"`` (see :meth:`TrainedRun.trace_gates`) as nested lists over the tokens.

        Raises:
          ValueError: ``gates`` for a model without recurrent layers.
        """
        ids, lengths, tokens = self.encode(sentences)
        probs = np.asarray(self._apply(self.run.params, ids, lengths))
        traces = self._traces(ids, lengths) if gates else []
        out = []
        for i, (text, toks, p) in enumerate(zip(sentences, tokens, probs)):
            label = int(np.argmax(p))
            record = {"text": text, "tokens": toks, "label": label}
            if self.class_names:
                record["label_name"] = self.class_names[label]
            record["probs"] = [round(float(x), 6) for x in p]
            if gates:
                record["gates"] = [
                    {**t, "gates": {k: np.round(v[i, : len(toks)], 4).tolist() for k, v in t["gates"].items()}}
                    for t in traces
                ]
            out.append(record)
        return out

    def gates(self, sentence: str) -> list[dict[str, Any]]:
        """The gates of one sentence: ``[{"layer", "direction", "gates": {gate: f32[L, H]}}]`` (L tokens).

        Raises:
          ValueError: the model has no recurrent layers.
        """
        ids, lengths, _ = self.encode([sentence])
        return [{**t, "gates": {k: v[0, : lengths[0]] for k, v in t["gates"].items()}}
                for t in self._traces(ids, lengths)]

    def _traces(self, ids: np.ndarray, lengths: np.ndarray) -> list[dict[str, Any]]:
        traces = self.run.trace_gates(ids, lengths)
        if not traces:
            raise ValueError(f"run {self.run.workdir!r} ({self.run.config.model.kind}) has no recurrent layers "
                             "to show gates of")
        return traces


def _default_tokenizer(sentence: str) -> list[str]:
    """Datasets without their own ``tokenize``: the treebank tokenizer, lower-cased."""
    from rnnlab.data import text

    return text.tokenize(sentence, lowercase=True)


def load(workdir: str) -> Predictor:
    """A :class:`Predictor` for the classification run in ``workdir`` (see :func:`restore`).

    Raises:
      ValueError: the run is not a classification run over words, or has no checkpoint.
      FileNotFoundError: not a run directory.
    """
    return Predictor(restore(workdir))


# ----------------------------------------------------------------------------- command line


def predict_file(workdir: str, input_path: Optional[str] = None, gates: bool = False,
                 batch_size: int = 64) -> None:
    """Writes one JSON line per sentence of ``input_path`` (or stdin) to stdout (``python -m rnnlab.predict``).

    Args:
      workdir: a classification run (see :func:`load`).
      input_path: a file of one sentence per line; ``None`` reads stdin. Blank lines are skipped.
      gates: add every layer's gate activations per token.
      batch_size: sentences per forward pass.

    Raises:
      ValueError, FileNotFoundError: as :func:`load`.
    """
    predictor = load(workdir)
    stream = open(input_path, encoding="utf-8") if input_path else sys.stdin
    try:
        lines = [line.strip() for line in stream]
    finally:
        if input_path:
            stream.close()
    sentences = [line for line in lines if line]
    for start in range(0, len(sentences), batch_size):
        for record in predictor.predict(sentences[start:start + batch_size], gates=gates):
            sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()
