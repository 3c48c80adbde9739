"""A trained model of any task on new inputs: its outputs as JSON-ready records and, on request, its gates.

    python -m rnnlab predict --workdir=runs/sst < sentences.txt
    python -m rnnlab predict --workdir=runs/sst --input=sentences.txt --gates
    python -m rnnlab predict --workdir=runs/jsb --input=new.npz

**Inputs.** A run over tokens reads raw text, one input per line (blank lines
skipped, UTF-8; any other byte is an error naming the file, or ``<stdin>``,
and the line). Each line is tokenized by the dataset's ``tokenize(options,
text)`` when it has one (SST: the treebank's tokenization, lower-cased), else
split on whitespace; tokens outside the run's vocabulary are read as
``<unk>``, as in training. A run over feature vectors reads an ``.npz`` file
holding ``inputs`` as the ``arrays`` dataset reads it
(:func:`rnnlab.data.arrays.read_inputs`): an object array of ``f32[T_i, D]``
(``np.savez(path, inputs=np.array(seqs, dtype=object))``), or a padded
``f32[N, T, D]`` with ``lengths int[N]`` (without ``lengths``: all ``T``
steps). Object arrays are stored pickled: read only files you trust. The
inputs are what the model reads, as in the dataset's batches (for the music
corpora ``inputs[t]`` is frame ``t - 1``, zeros at ``t = 0``).

**Outputs.** One JSON object per input; every record ends with ``"step"``, the
step of the checkpoint that served it (the newest checkpoint that restores: a
damaged newer one is skipped, and a warning on stderr says so). A run that kept
its best parameters on the early-stopping set is served with those; the log
line on stderr names the step they come from. Per task::

    classify  {"text", "tokens", "unknown", "label", "label_name", "probs": [C], "step"}
    tag       {"text", "tokens", "unknown", "labels": [L], "label_names": [L], "probs": [L][C], "step"}
    density   {"index", "length", "probs": [L][F], "step"}   per-step Bernoulli probabilities
    regress   {"index", "length", "value", "step"}            ("values": [L] for a per-step model)

Token runs give ``"text"``, ``"tokens"`` (as tokenized, unknown words as
written) and ``"unknown"``: the positions in ``tokens`` the model read as
``<unk>`` (``[]`` when it knew every word); feature runs give ``"index"`` (the
input's position in the file, from 0) and ``"length"``. The record's other
fields follow the task, whatever the input kind. Label names come from the
dataset's spec (``labels``) or its ``class_names(options)``; without either
``label_name(s)`` is left out. ``--gates`` adds ``"gates"``: one entry per
recurrent layer and direction, ``{"layer": 0, "direction": "fwd", "gates":
{"forget": [[...H] per step], ...}}``.

From Python, one input or a list alike (one input gives one result)::

    predictor = rnnlab.inference.predict.load("runs/sst")
    predictor(["a gorgeous film", "not good at all"])   # f32[2, C]
    predictor("not good at all")                        # f32[C]
    predictor.predict("not good at all")                # one record

:func:`restore` is THE way a trained run comes back (config, dataset spec,
model and best parameters, checksums verified): it lives in
:mod:`rnnlab.inference.trained_run` with :class:`TrainedRun`,
:func:`read_config` and :func:`checkpoint_steps`, all re-exported here.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from typing import Any, Callable, Optional, Sequence

import numpy as np
from absl import logging

from rnnlab.inference.trained_run import TrainedRun, checkpoint_steps, restore

# What turns a model's outputs into what a record shows, per task: a jax.nn function, or none.
ACTIVATIONS = {"classify": "softmax", "tag": "softmax", "density": "sigmoid", "regress": None}
DECIMALS = 6  # probabilities and values are rounded to this many decimals in records
STDIN = "<stdin>"


def _padded_steps(longest: int) -> int:
    """T: the power of two >= ``longest`` (few distinct shapes: few compilations)."""
    return 1 << (max(longest, 1) - 1).bit_length()


def _rounded(values: np.ndarray) -> Any:
    """``values`` as nested lists of Python floats (a float for a scalar), rounded to :data:`DECIMALS`."""
    return np.round(np.asarray(values, np.float64), DECIMALS).tolist()


def _outputs_per_step(model: Any, params: Any, spec: Any) -> bool:
    """Whether the model's outputs have a time axis (``[B, T, ...]``), found from their shape alone.

    The model runs abstractly (``jax.eval_shape``) on one input of ``C + 1``
    steps, so a time axis cannot be mistaken for the ``C`` outputs.
    """
    import jax

    steps = spec.num_outputs + 1
    shape = (1, steps) if spec.input_kind == "tokens" else (1, steps, spec.input_size)
    inputs = np.zeros(shape, np.int32 if spec.input_kind == "tokens" else np.float32)
    out = jax.eval_shape(lambda p: model.apply({"params": p}, inputs, np.full(1, steps, np.int32),
                                               deterministic=True), params)
    return len(out.shape) >= 2 and out.shape[1] == steps


def _whitespace(text: str) -> list[str]:
    """The tokens of datasets without their own ``tokenize``: ``text`` split on whitespace."""
    return text.split()


class Predictor:
    """A restored run of any task that maps new inputs to its outputs.

    Every method takes one input or a list of them: one input gives one
    result, a list a result per input. An input is a raw text (runs over
    tokens) or an array ``f32[T, D]`` (runs over features; a list of them, or
    ``f32[B, T, D]``, for several).

    Attributes:
      run: the :class:`TrainedRun`.
      class_names: a name per class (or tag) when the dataset gives them, else ``None``.
      per_step: whether the model gives an output per step (taggers, density,
        per-step regression) rather than one per input.
      reads_text: whether the run reads tokens (raw text in) or feature vectors.
    """

    def __init__(self, run: TrainedRun):
        import jax

        import rnnlab.data

        spec = run.spec
        if spec.task not in ACTIVATIONS:
            raise ValueError(f"run {run.workdir!r} is a {spec.task!r} task on dataset {spec.name!r}; "
                             f"rnnlab.predict serves the tasks {', '.join(ACTIVATIONS)}")
        self.reads_text = spec.input_kind == "tokens"
        if self.reads_text and not spec.vocab:
            raise ValueError(f"run {run.workdir!r} reads tokens, but dataset {spec.name!r} gives no vocabulary "
                             "to map new text to token ids")
        if not self.reads_text and not spec.input_size:
            raise ValueError(f"run {run.workdir!r} reads {spec.input_kind!r} inputs of no known width "
                             f"(dataset {spec.name!r} gives no input_size)")
        self.run = run
        dataset = rnnlab.data.get_dataset(spec.name)
        options = dataset.options(run.config.data)
        tokenize = getattr(dataset, "tokenize", None)
        self._tokenize = functools.partial(tokenize, options) if tokenize is not None else _whitespace
        class_names = getattr(dataset, "class_names", None)
        if getattr(spec, "labels", None):
            self.class_names = tuple(spec.labels)
        else:
            self.class_names = tuple(class_names(options)) if class_names is not None else None
        self._word_ids = {w: i for i, w in enumerate(spec.vocab)} if self.reads_text else {}
        self.per_step = _outputs_per_step(run.model, run.params, spec)
        model, activation = run.model, ACTIVATIONS[spec.task]
        activate: Callable = getattr(jax.nn, activation) if activation else (lambda y: y)
        self._apply = jax.jit(lambda params, x, n: activate(model.apply({"params": params}, x, n,
                                                                        deterministic=True)))

    # ------------------------------------------------------------------ one input or a list

    def _batch(self, inputs: Any) -> tuple[list, bool]:
        """``(list of inputs, whether one input was given)``.

        Raises:
          ValueError: an empty list.
        """
        one = isinstance(inputs, str) if self.reads_text else getattr(inputs, "ndim", None) == 2
        items = [inputs] if one else list(inputs)
        if not items:
            raise ValueError("no inputs: give one input or a non-empty list of them")
        return items, one

    def tokenize(self, texts: str | Sequence[str]) -> list[str] | list[list[str]]:
        """The tokens of one raw text (a list of them for a list), as the run's training data was tokenized.

        Raises:
          ValueError: the run reads feature vectors, not text.
        """
        if not self.reads_text:
            raise ValueError(self.not_text("give arrays f32[T, D]"))
        items, one = self._batch(texts)
        tokens = [self._tokenize(text) for text in items]
        return tokens[0] if one else tokens

    def encode(self, inputs: Any, first_index: int = 0) -> tuple[np.ndarray, np.ndarray, Optional[list]]:
        """``(inputs, lengths, tokens)``, the model's batch of new inputs.

        For a list: ``int32[B, T]`` token ids (or ``f32[B, T, D]`` features),
        ``int32[B]`` lengths and the tokens of each text (``None`` for
        features); T is a power of two >= the longest, padded with 0. For one
        input: the first row of each (``int32[T]`` or ``f32[T, D]``, a length,
        its tokens). Unknown words map to ``<unk>`` (id 1), as in training.

        Args:
          inputs: one input or a list (see :class:`Predictor`).
          first_index: the number of the first input in error messages.

        Raises:
          ValueError: an empty list, a text without tokens, features of the
            wrong shape or not finite (the message names the input).
        """
        items, one = self._batch(inputs)
        if self.reads_text:
            x, lengths, tokens = self._encode_texts(items, first_index)
        else:
            (x, lengths), tokens = self._encode_features(items, first_index), None
        return (x[0], lengths[0], tokens and tokens[0]) if one else (x, lengths, tokens)

    def _encode_texts(self, texts: list, first_index: int) -> tuple[np.ndarray, np.ndarray, list[list[str]]]:
        from rnnlab.data.registry import encode

        if not all(isinstance(t, str) for t in texts):
            raise ValueError("run over tokens: give raw texts (strings), one or a list")
        tokens = [self._tokenize(text) for text in texts]
        for i, (text, toks) in enumerate(zip(texts, tokens)):
            if not toks:
                raise ValueError(f"input {first_index + i} ({text!r}) has no tokens")
        ids = np.zeros((len(tokens), _padded_steps(max(map(len, tokens)))), np.int32)
        for row, toks in zip(ids, tokens):
            row[: len(toks)] = encode(toks, self._word_ids)
        return ids, np.asarray([len(t) for t in tokens], np.int32), tokens

    def _encode_features(self, arrays: list, first_index: int) -> tuple[np.ndarray, np.ndarray]:
        xs = [self._check_features(first_index + i, x) for i, x in enumerate(arrays)]
        lengths = np.asarray([len(x) for x in xs], np.int32)
        batch = np.zeros((len(xs), _padded_steps(int(lengths.max())), self.run.spec.input_size), np.float32)
        for row, x in zip(batch, xs):
            row[: len(x)] = x
        return batch, lengths

    def _check_features(self, index: int, x: Any) -> np.ndarray:
        """``x`` as ``f32[T, D]`` with D the run's input width and T >= 1, all finite.

        Raises:
          ValueError: naming the input, its shape and the expected one.
        """
        width = self.run.spec.input_size
        expected = f"run {self.run.workdir!r} reads f32[T, {width}] (T >= 1 steps of {width} features)"
        try:
            x = np.asarray(x, np.float32)
        except (TypeError, ValueError) as e:
            raise ValueError(f"input {index} is not an array of numbers ({e}); {expected}") from None
        if x.ndim != 2 or x.shape[1] != width or not len(x):
            raise ValueError(f"input {index} has shape {x.shape}; {expected}")
        if not np.isfinite(x).all():
            raise ValueError(f"input {index} holds NaN or infinite values")
        return x

    def not_text(self, hint: str) -> str:
        """The error message of a feature run given text, ending with ``hint`` (what to give instead)."""
        spec = self.run.spec
        return (f"run {self.run.workdir!r} (dataset {spec.name!r}) reads feature vectors f32[T, {spec.input_size}], "
                f"not text: {hint}")

    # ------------------------------------------------------------------ outputs

    def _per_input(self, x: np.ndarray, lengths: np.ndarray) -> list[np.ndarray]:
        """The activated outputs of each input: ``f32[C]`` (or a scalar) per input, ``f32[L, ...]`` per step."""
        out = np.asarray(self._apply(self.run.params, x, lengths))
        if self.run.spec.task == "regress":  # one value per input (or step): drop a trailing axis of 1
            out = out.reshape(out.shape[:2] if self.per_step else out.shape[:1])
        return [o[:n] for o, n in zip(out, lengths)] if self.per_step else list(out)

    def __call__(self, inputs: Any) -> Any:
        """The model's outputs: probabilities (classify, tag, density) or values (regress).

        For one input: ``f32[C]`` (classify), ``f32[L, C]`` (tag), ``f32[L, F]``
        (density), a scalar or ``f32[L]`` (regress, per input or per step).
        For a list: the per-input results stacked (``f32[B, C]``, ``f32[B]``)
        when the model gives one output per input, else a list of them (L differs).
        """
        items, one = self._batch(inputs)
        x, lengths, _ = self.encode(items)
        outs = self._per_input(x, lengths)
        if one:
            return outs[0]
        return outs if self.per_step else np.stack(outs)

    def predict(self, inputs: Any, gates: bool = False, first_index: int = 0) -> Any:
        """One JSON-ready record per input (see the module docstring; one record for one input).

        Args:
          inputs: one input or a list (see :class:`Predictor`).
          gates: add ``"gates"`` (see :meth:`TrainedRun.trace_gates`) as nested lists over the steps.
          first_index: the ``"index"`` of the first input (feature runs) and its number in errors.

        Raises:
          ValueError: as :meth:`encode`; ``gates`` for a model without recurrent layers.
        """
        items, one = self._batch(inputs)
        x, lengths, tokens = self.encode(items, first_index)
        outs = self._per_input(x, lengths)
        layers = self._gates(x, lengths) if gates else None
        records = []
        for i, (item, out) in enumerate(zip(items, outs)):
            record = self._input_fields(item, x[i, : lengths[i]], tokens and tokens[i], first_index + i)
            record.update(self._task_fields(out))
            if layers is not None:
                record["gates"] = [{**t, "gates": {k: np.round(v, 4).tolist() for k, v in t["gates"].items()}}
                                   for t in layers[i]]
            record["step"] = self.run.step
            records.append(record)
        return records[0] if one else records

    def _input_fields(self, item: Any, x: np.ndarray, tokens: Optional[list[str]], index: int) -> dict[str, Any]:
        """A record's first fields: the text, its tokens and the positions read as ``<unk>`` (ids ``x int32[L]``),
        or a feature input's index and length (``x f32[L, D]``)."""
        from rnnlab.data.registry import UNK_ID

        if not self.reads_text:
            return {"index": index, "length": len(x)}
        return {"text": item, "tokens": tokens, "unknown": np.flatnonzero(x == UNK_ID).tolist()}

    def _task_fields(self, out: np.ndarray) -> dict[str, Any]:
        """The task's part of a record from one input's activated outputs."""
        task = self.run.spec.task
        if task == "density":
            return {"probs": _rounded(out)}
        if task == "regress":
            return {"values" if self.per_step else "value": _rounded(out)}
        labels = np.argmax(out, axis=-1)  # classify, tag
        plural = "s" if self.per_step else ""
        fields = {f"label{plural}": labels.tolist()}
        if self.class_names:
            names = [self.class_names[i] for i in np.ravel(labels)]
            fields[f"label_name{plural}"] = names if self.per_step else names[0]
        fields["probs"] = _rounded(out)
        return fields

    def gates(self, inputs: Any) -> Any:
        """The gates of one input: ``[{"layer", "direction", "gates": {gate: f32[L, H]}}]`` (L steps).

        A list gives such a list per input.

        Raises:
          ValueError: the model has no recurrent layers.
        """
        items, one = self._batch(inputs)
        x, lengths, _ = self.encode(items)
        layers = self._gates(x, lengths)
        return layers[0] if one else layers

    def _gates(self, x: np.ndarray, lengths: np.ndarray) -> list[list[dict[str, Any]]]:
        """Per input, every layer's and direction's gates over its own steps."""
        traces = self.run.trace_gates(x, lengths)
        if not traces:
            raise ValueError(f"run {self.run.workdir!r} ({self.run.config.model.kind}) has no recurrent layers "
                             "to show gates of")
        return [[{**t, "gates": {k: v[i, :n] for k, v in t["gates"].items()}} for t in traces]
                for i, n in enumerate(lengths)]


def load(workdir: str) -> Predictor:
    """A :class:`Predictor` for the run in ``workdir`` (see :func:`restore`), any task.

    Logs the checkpoint step it serves, and warns when that is not the newest
    kept checkpoint (a newer one did not restore).

    Raises:
      ValueError: the run has no checkpoint that restores, or inputs it cannot read.
      FileNotFoundError: not a run directory, or its dataset's files are missing.
    """
    run = restore(workdir)
    newest = max(checkpoint_steps(workdir), default=run.step)
    if run.step != newest:
        logging.warning("serving checkpoint step %d of %s: the newest kept one, step %d, does not restore",
                        run.step, workdir, newest)
    logging.info("serving %s at checkpoint step %d (its params from step %s)", workdir, run.step, run.params_step)
    return Predictor(run)


# ----------------------------------------------------------------------------- reading inputs


def read_text_lines(path: Optional[str] = None) -> list[str]:
    """The non-blank lines of a UTF-8 text file (or stdin), stripped.

    Raises:
      ValueError: a line is not UTF-8 (the message names the file, or
        ``<stdin>``, the line and the byte).
      FileNotFoundError: no file at ``path``.
    """
    name = path or STDIN
    stream = open(path, "rb") if path else sys.stdin.buffer
    lines = []
    try:
        for number, raw in enumerate(stream, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise ValueError(f"{name}, line {number}: not UTF-8 text (byte {raw[e.start]:#04x} at "
                                 f"column {e.start + 1}); save the file as UTF-8") from None
            line = line.lstrip("\ufeff") if number == 1 else line  # a byte-order mark
            if line.strip():
                lines.append(line.strip())
    finally:
        if path:
            stream.close()
    return lines


def read_input_file(predictor: Predictor, input_path: Optional[str], text_field: Optional[str] = None) -> list:
    """The inputs of ``predictor``'s run from a file (or stdin): texts, or an ``.npz`` file's sequences.

    Text runs read a ``.tsv``, ``.csv`` (with a header) or ``.jsonl`` file as
    the ``text_classification`` dataset reads its training files, taking the
    ``text_field`` of each row (default: the run's ``data.text_field``, else
    ``"text"``) and ignoring the rest (a label); any other file, or stdin, as
    text lines (:func:`read_text_lines`). An ``.npz`` file is read as the
    ``arrays`` dataset reads its ``inputs``
    (:func:`rnnlab.data.arrays.read_inputs`: a list of ``f32[T_i, D]``, or a
    padded ``[N, T, D]`` with ``lengths``).

    Raises:
      ValueError: the file does not hold what the run reads (the message names the file, and the line); a
        ``text_field`` for an input that is not a table.
      FileNotFoundError: no file at ``input_path``.
    """
    from rnnlab.data import arrays, text_files

    if predictor.reads_text and input_path and input_path.endswith(".npz"):
        raise ValueError(f"run {predictor.run.workdir!r} reads text, one input per line; {input_path} "
                         "is an .npz file")
    if input_path and not os.path.isfile(input_path):
        raise FileNotFoundError(f"no input file at {input_path!r}")
    table = predictor.reads_text and input_path and os.path.splitext(input_path)[1].lower() in text_files.EXTENSIONS
    if text_field and not table:
        raise ValueError(f"--text_field names a column of a .tsv, .csv or .jsonl input; {input_path or '<stdin>'} "
                         f"is read as {'text lines' if predictor.reads_text else 'feature vectors'}")
    if table:
        field = text_field or predictor.run.config.data.get("text_field", "text")
        return text_files.read_texts(input_path, field, option="--text_field")
    if predictor.reads_text:
        return read_text_lines(input_path)
    if not input_path:
        raise ValueError(predictor.not_text("give them as --input=FILE.npz holding 'inputs'"))
    return arrays.read_inputs(input_path)  # refuses a file that is not an .npz archive, unread


# ----------------------------------------------------------------------------- command line


def check_batch_size(batch_size: Any) -> None:
    """Raises ``ValueError`` naming ``--batch_size`` unless it is a positive integer."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"--batch_size must be a positive integer (inputs per forward pass), got {batch_size!r}")


def write_records(predictor: Predictor, inputs: Sequence[Any], gates: bool = False, batch_size: int = 64) -> None:
    """Writes one JSON line per input to stdout (:meth:`Predictor.predict`), ``batch_size`` inputs per forward pass."""
    check_batch_size(batch_size)
    for start in range(0, len(inputs), batch_size):
        for record in predictor.predict(inputs[start:start + batch_size], gates=gates, first_index=start):
            sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


def predict_file(workdir: str, input_path: Optional[str] = None, gates: bool = False,
                 batch_size: int = 64, text_field: Optional[str] = None) -> None:
    """Writes one JSON line per input of ``input_path`` (or stdin) to stdout (``python -m rnnlab predict``).

    Args:
      workdir: a run directory (see :func:`load`).
      input_path: for token runs, text lines (``None`` reads stdin) or a ``.tsv`` / ``.csv`` / ``.jsonl`` file;
        for feature runs, an ``.npz`` file (see :func:`read_input_file`).
      gates: add every layer's gate activations per step.
      batch_size: inputs per forward pass.
      text_field: the field of a ``.tsv`` / ``.csv`` / ``.jsonl`` input holding the text (default: the run's
        ``data.text_field``, else ``"text"``).

    Raises:
      ValueError, FileNotFoundError: as :func:`load` and :func:`read_input_file`; a bad ``batch_size``.
    """
    check_batch_size(batch_size)  # before the run is restored: a quick answer
    predictor = load(workdir)
    inputs = read_input_file(predictor, input_path, text_field)
    write_records(predictor, inputs, gates=gates, batch_size=batch_size)
