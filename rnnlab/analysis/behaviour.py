"""Behavioural test suites of a trained text classifier, CheckList-style (Ribeiro et al. 2020).

    python -m rnnlab behaviour --workdir=runs/sst --suite=studies/sst/checklist.py --out=behaviour.json

A **suite** is named groups of test cases, each group of one kind:

- ``MFT`` (minimum functionality test): sentences with an expected label; a case fails when the
  model's label (the most probable class) is another.
- ``DIR`` (directional expectation): pairs ``(base, edited)``; the probability of one class must
  move ``"up"`` (or ``"down"``) from base to edited by more than ``tolerance``; a case fails when it
  moves the wrong way or not at all beyond the tolerance.
- ``INV`` (invariance): pairs ``(base, edited)``; a case fails when the two get different labels.

Cases come from **templates** over word lists: ``"the movie is {pos_adj}"`` with a lexicon
``{"pos_adj": ["good", "great"]}``. Each placeholder names a list of the lexicon (``{pos_adj2}``, the
name with digits added, is an independent fill of the same list); every combination is a case, or,
past ``cap`` combinations, ``cap`` of them drawn without replacement by a seeded generator. The
texts of a pair (DIR, INV) share one fill.

A suite runs on a :class:`rnnlab.inference.predict.Predictor` of a ``classify`` run (or any object
with its ``encode(texts)``, ``__call__(texts) -> f32[B, C]`` and ``class_names``). Words the run
would read as ``<unk>`` are an error that lists them (``allow_unknown=True`` scores them anyway and
reports them). The result gives per group the failure rate with its counts, per template, and the
worst failing cases::

    suite = behaviour.load_suite("studies/sst/checklist.py")  # get_suite(), or a .json file (suite_from_dict)
    result = behaviour.run_suite(suite, rnnlab.inference.predict.load("runs/sst"))
    print(behaviour.result_markdown(result))
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import os
import re
import string
from typing import Any, Mapping, NamedTuple, Optional, Sequence

import numpy as np

from rnnlab.inference.predict import check_batch_size, load

KINDS = ("MFT", "DIR", "INV")
DIRECTIONS = ("up", "down")
_NUMBERED = re.compile(r"^(.*?)(\d+)$")


class Case(NamedTuple):
    """One test case.

    Attributes:
      texts: ``(text,)`` (MFT) or ``(base, edited)`` (DIR, INV).
      label: MFT: the expected class name (or index); ``None`` for DIR and INV.
      template: the template it came from (``"+"``-joined for a pair), or ``""`` for a case given as is.
    """

    texts: tuple[str, ...]
    label: Any = None
    template: str = ""


@dataclasses.dataclass(frozen=True)
class Group:
    """A named group of cases of one kind (see the module docstring).

    Attributes:
      name: shown in tables; unique within a suite.
      kind: ``"MFT"``, ``"DIR"`` or ``"INV"``.
      cases: at least one :class:`Case`.
      target: DIR: the class (name or index) whose probability must move.
      direction: DIR: ``"up"`` or ``"down"``.
      tolerance: DIR: the least move of the target's probability that counts (>= 0).
      description: one line for readers.
    """

    name: str
    kind: str
    cases: tuple[Case, ...]
    target: Any = None
    direction: Optional[str] = None
    tolerance: float = 0.0
    description: str = ""

    def __post_init__(self):
        where = f"group {self.name!r}"
        if self.kind not in KINDS:
            raise ValueError(f"{where}: kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if not self.cases:
            raise ValueError(f"{where} has no cases")
        size = 1 if self.kind == "MFT" else 2
        for case in self.cases:
            if len(case.texts) != size or not all(isinstance(t, str) and t.strip() for t in case.texts):
                raise ValueError(f"{where}: a {self.kind} case holds {size} non-blank text(s), got {case.texts!r}")
            if (case.label is None) == (self.kind == "MFT"):
                raise ValueError(f"{where}: {'every' if self.kind == 'MFT' else 'no'} {self.kind} case has an "
                                 f"expected label, got {case.label!r} for {case.texts!r}")
        if self.kind == "DIR":
            if self.target is None or self.direction not in DIRECTIONS:
                raise ValueError(f"{where}: a DIR group needs a target class and a direction in {DIRECTIONS}, "
                                 f"got {self.target!r}, {self.direction!r}")
            if not self.tolerance >= 0:
                raise ValueError(f"{where}: tolerance must be >= 0, got {self.tolerance!r}")


@dataclasses.dataclass(frozen=True)
class Suite:
    """Named groups of test cases. ``groups``: at least one :class:`Group`, names unique."""

    name: str
    groups: tuple[Group, ...]
    description: str = ""

    def __post_init__(self):
        if not self.groups:
            raise ValueError(f"suite {self.name!r} has no groups")
        names = [g.name for g in self.groups]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"suite {self.name!r}: group names used twice: {', '.join(repeated)}")


# ----------------------------------------------------------------------------- templates


def placeholders(template: str) -> list[str]:
    """The placeholder names of ``template`` in order of first use: ``"{a} and {b} {a}"`` -> ``["a", "b"]``.

    Raises:
      ValueError: a malformed template (an unmatched brace, a format spec or an empty name).
    """
    names = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as e:
        raise ValueError(f"template {template!r}: {e}") from None
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if not name or spec or conversion or not name.isidentifier():
            raise ValueError(f"template {template!r}: placeholders are {{name}} with a word list's name, "
                             f"got {{{name}{'!' + conversion if conversion else ''}{':' + spec if spec else ''}}}")
        if name not in names:
            names.append(name)
    return names


def word_list(name: str, lexicon: Mapping[str, Sequence[str]]) -> Sequence[str]:
    """The words a placeholder ``name`` stands for: ``lexicon[name]``, or for ``name`` = a key + digits
    (``pos_adj2``) the key's list.

    Raises:
      ValueError: no such list (the message lists the lexicon's), or an empty one.
    """
    key = name
    if key not in lexicon:
        numbered = _NUMBERED.match(name)
        key = numbered.group(1) if numbered else name
    if key not in lexicon:
        raise ValueError(f"unknown placeholder {{{name}}}; the lexicon has {', '.join(sorted(lexicon)) or 'no lists'}")
    words = lexicon[key]
    if isinstance(words, str) or not words:
        raise ValueError(f"word list {key!r} must be a non-empty list of words, got {words!r}")
    return words


def expand(templates: str | Sequence[str], lexicon: Mapping[str, Sequence[str]], cap: Optional[int] = None,
           seed: int = 0) -> list[tuple[str, ...]]:
    """The texts of one template (or of a pair that shares its fill) over every fill of its placeholders.

    Args:
      templates: one template, or a tuple of them (a DIR or INV pair) filled alike.
      lexicon: ``{list name: [word]}``.
      cap: at most this many fills; when there are more, ``cap`` distinct ones drawn by
        ``np.random.default_rng(seed)``, kept in the order of the full product. ``None``: all.
      seed: the sampler's seed (the same seed, the same cases).

    Returns:
      ``[(text, ...)]``, one tuple per fill (as many texts as templates); the fills in the order of
      ``itertools.product`` over the placeholders in order of first use.

    Raises:
      ValueError: an unknown placeholder, an empty word list, a malformed template or ``cap < 1``.
    """
    templates = (templates,) if isinstance(templates, str) else tuple(templates)
    if not templates:
        raise ValueError("no template to expand")
    if cap is not None and cap < 1:
        raise ValueError(f"cap must be >= 1 (or None: every fill), got {cap!r}")
    names = []
    for template in templates:
        names += [n for n in placeholders(template) if n not in names]
    lists = [word_list(n, lexicon) for n in names]
    total = math.prod(len(words) for words in lists)
    if cap is None or total <= cap:
        fills = itertools.product(*lists)
    else:
        picked = np.sort(np.random.default_rng(seed).choice(total, size=cap, replace=False))
        fills = (_fill_at(int(i), lists) for i in picked)
    return [tuple(t.format(**dict(zip(names, fill))) for t in templates) for fill in fills]


def _fill_at(index: int, lists: Sequence[Sequence[str]]) -> tuple[str, ...]:
    """The ``index``-th tuple of ``itertools.product(*lists)`` (the last list varies fastest)."""
    fill = []
    for words in reversed(lists):
        index, i = divmod(index, len(words))
        fill.append(words[i])
    return tuple(reversed(fill))


def mft_group(name: str, templates: Sequence[tuple[str, Any]], lexicon: Mapping[str, Sequence[str]],
              cap: Optional[int] = None, seed: int = 0, description: str = "") -> Group:
    """An MFT group from ``[(template, expected label)]``, each template expanded (:func:`expand`) with at
    most ``cap`` cases, the i-th drawn with seed ``(seed, i)``."""
    cases = [Case((text,), label, template)
             for i, (template, label) in enumerate(templates)
             for (text,) in expand(template, lexicon, cap, _template_seed(seed, i))]
    return Group(name, "MFT", _unique(cases), description=description)


def pair_group(name: str, kind: str, templates: Sequence[tuple[str, str]], lexicon: Mapping[str, Sequence[str]],
               cap: Optional[int] = None, seed: int = 0, target: Any = None, direction: Optional[str] = None,
               tolerance: float = 0.0, description: str = "") -> Group:
    """A DIR or INV group from ``[(base template, edited template)]``, each pair filled alike (:func:`expand`)
    with at most ``cap`` cases, the i-th drawn with seed ``(seed, i)``; ``target``, ``direction`` and
    ``tolerance`` as :class:`Group`'s."""
    cases = [Case(texts, None, " + ".join(pair))
             for i, pair in enumerate(templates)
             for texts in expand(tuple(pair), lexicon, cap, _template_seed(seed, i))]
    return Group(name, kind, _unique(cases), target, direction, tolerance, description)


def _template_seed(seed: int, index: int) -> int:
    """The seed of the ``index``-th template of a group: a function of both, never of call order."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def _unique(cases: Sequence[Case]) -> tuple[Case, ...]:
    """``cases`` without repeats of the same texts (the first kept): two templates can make one sentence."""
    seen, kept = set(), []
    for case in cases:
        if case.texts not in seen:
            seen.add(case.texts)
            kept.append(case)
    return tuple(kept)


# ----------------------------------------------------------------------------- suites as files


def suite_to_dict(suite: Suite) -> dict[str, Any]:
    """The JSON-ready form of ``suite``, as :func:`suite_from_dict` reads it."""
    return {"name": suite.name, "description": suite.description,
            "groups": [{"name": g.name, "kind": g.kind, "description": g.description,
                        **({"target": g.target, "direction": g.direction, "tolerance": g.tolerance}
                           if g.kind == "DIR" else {}),
                        "cases": [_case_dict(c) for c in g.cases]}
                       for g in suite.groups]}


def _case_dict(case: Case) -> dict[str, Any]:
    out: dict[str, Any] = {"texts": list(case.texts)}
    if case.label is not None:
        out["label"] = case.label
    if case.template:
        out["template"] = case.template
    return out


def suite_from_dict(data: Mapping[str, Any]) -> Suite:
    """A :class:`Suite` from its JSON form: ``{"name", "groups": [group]}``, a group
    ``{"name", "kind", "cases"?, "templates"?, "target"?, "direction"?, "tolerance"?, "description"?}``.

    ``cases`` are ``[{"texts": [text] or [base, edited], "label"?, "template"?}]`` (as
    :func:`suite_to_dict` writes them); ``templates`` are expanded over the suite's ``"lexicon"``
    (:func:`mft_group`: ``[[template, label]]``; :func:`pair_group`: ``[[base, edited]]``) with the
    group's (or the suite's) ``"cap"`` and ``"seed"`` (default: every fill, seed 0). A group may give both.

    Raises:
      ValueError: a missing field or a group that :class:`Group` refuses (the message names it).
    """
    try:
        groups = []
        for g in data["groups"]:
            if "cases" not in g and "templates" not in g:
                raise KeyError("cases")
            cases = tuple(Case(tuple(c["texts"]), c.get("label"), c.get("template", "")) for c in g.get("cases", ()))
            if g.get("templates"):
                cap, seed = g.get("cap", data.get("cap")), int(g.get("seed", data.get("seed", 0)))
                lexicon = data.get("lexicon", {})
                made = (mft_group(g["name"], [tuple(t) for t in g["templates"]], lexicon, cap, seed)
                        if g["kind"] == "MFT" else
                        pair_group(g["name"], g["kind"], [tuple(t) for t in g["templates"]], lexicon, cap, seed,
                                   g.get("target"), g.get("direction"), float(g.get("tolerance", 0.0))))
                cases = _unique(cases + made.cases)
            groups.append(Group(g["name"], g["kind"], cases, g.get("target"), g.get("direction"),
                                float(g.get("tolerance", 0.0)), g.get("description", "")))
        return Suite(data["name"], tuple(groups), data.get("description", ""))
    except (KeyError, TypeError) as e:
        raise ValueError(f"a suite is {{'name', 'groups': [{{'name', 'kind', 'cases' or 'templates'}}]}}; "
                         f"{type(e).__name__}: {e}") from None


def load_suite(path: str) -> Suite:
    """The suite in ``path``: a ``.py`` file whose ``get_suite()`` returns a :class:`Suite`, or a ``.json``
    file as :func:`suite_from_dict` reads it.

    Raises:
      FileNotFoundError: no file at ``path``.
      ValueError: another extension, no ``get_suite()``, or not a suite.
    """
    from rnnlab.training.config_files import load_module

    if not os.path.isfile(path):
        raise FileNotFoundError(f"no suite file at {path!r} (working directory {os.getcwd()!r})")
    if path.endswith(".json"):
        with open(path, encoding="utf-8") as f:
            return suite_from_dict(json.load(f))
    if not path.endswith(".py"):
        raise ValueError(f"suite file {path!r}: give a .py file defining get_suite() or a .json file")
    module = load_module(path)
    if not hasattr(module, "get_suite"):
        raise ValueError(f"suite file {path!r} defines no get_suite()")
    suite = module.get_suite()
    if not isinstance(suite, Suite):
        raise ValueError(f"get_suite() of {path!r} returned a {type(suite).__name__}, not a behaviour.Suite")
    return suite


# ----------------------------------------------------------------------------- running a suite


def suite_texts(suite: Suite) -> list[str]:
    """Every distinct text of ``suite``, in order of first appearance."""
    return list(dict.fromkeys(t for g in suite.groups for c in g.cases for t in c.texts))


def class_index(label: Any, class_names: Optional[Sequence[str]], num_classes: int) -> int:
    """The index of a class given by name (in ``class_names``) or by index.

    Raises:
      ValueError: an unknown name (listing the known ones), or an index outside ``0 .. num_classes - 1``.
    """
    if isinstance(label, str):
        if not class_names or label not in class_names:
            raise ValueError(f"unknown class {label!r}; the run's classes are "
                             f"{', '.join(class_names) if class_names else f'unnamed, 0..{num_classes - 1}'}")
        return list(class_names).index(label)
    if isinstance(label, (int, np.integer)) and not isinstance(label, bool) and 0 <= label < num_classes:
        return int(label)
    raise ValueError(f"class {label!r} is neither a class name nor an index in 0..{num_classes - 1}")


def unknown_words(predictor: Any, texts: Sequence[str], batch_size: int = 256) -> dict[str, int]:
    """``{word: texts holding it}`` for the words of ``texts`` that the run reads as ``<unk>`` (from
    :meth:`Predictor.encode`: its own tokenizer and vocabulary), ``batch_size`` texts at a time."""
    from rnnlab.data.registry import UNK_ID

    unknown: dict[str, int] = {}
    for start in range(0, len(texts), batch_size):
        ids, _, tokens = predictor.encode(list(texts[start:start + batch_size]))
        for row, toks in zip(np.asarray(ids), tokens):
            for word in {w for w, i in zip(toks, row) if i == UNK_ID}:
                unknown[word] = unknown.get(word, 0) + 1
    return unknown


def class_probs(predictor: Any, texts: Sequence[str], batch_size: int = 256) -> np.ndarray:
    """``f32[N, C]``: the class probabilities of each of the N ``texts``, ``batch_size`` per forward pass."""
    chunks = [list(texts[start:start + batch_size]) for start in range(0, len(texts), batch_size)]
    return np.concatenate([np.asarray(predictor(c), np.float32).reshape(len(c), -1) for c in chunks])


def case_failures(group: Group, probs: Sequence[np.ndarray], classes: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """``(failed bool[N], margin f32[N])`` of a group's N cases from the probabilities of their texts.

    Args:
      group: the cases.
      probs: per text position of a case, ``f32[N, C]`` (one for MFT, base and edited for DIR and INV).
      classes: MFT: the expected class index of each case; DIR: ``[target index]``; INV: unused.

    The margin orders failures from the worst (smallest): MFT, the expected class's probability minus
    the best other class's; DIR, the move of the target's probability in the expected direction minus
    the tolerance; INV, minus the largest change of any class's probability (when the label flips).
    """
    if group.kind == "MFT":
        (p,) = probs
        expected = np.asarray(classes)
        rows = np.arange(len(p))
        others = np.where(np.arange(p.shape[1])[None, :] == expected[:, None], -np.inf, p)
        margin = p[rows, expected] - others.max(axis=1)
        return p.argmax(axis=1) != expected, margin
    base, edited = probs
    if group.kind == "DIR":
        sign = 1.0 if group.direction == "up" else -1.0
        margin = sign * (edited[:, classes[0]] - base[:, classes[0]]) - group.tolerance
        return margin <= 0, margin
    flipped = base.argmax(axis=1) != edited.argmax(axis=1)
    return flipped, -np.abs(edited - base).max(axis=1)


def evaluate_group(group: Group, probs: Mapping[str, np.ndarray], class_names: Optional[Sequence[str]],
                   examples: int = 5) -> dict[str, Any]:
    """One group's result from ``{text: f32[C]}``.

    Returns:
      ``{"name", "kind", "description", "n", "failures", "failure_rate", "by_template": {template: {"n",
      "failures", "failure_rate"}}, "examples": [the worst ``examples`` failures: {"texts", "label"?,
      "probs": [[C] per text], "margin"}]}``.
    """
    size = len(group.cases[0].texts)
    stacked = [np.stack([probs[c.texts[k]] for c in group.cases]) for k in range(size)]
    num_classes = stacked[0].shape[1]
    if group.kind == "MFT":
        classes = [class_index(c.label, class_names, num_classes) for c in group.cases]
    else:
        classes = [class_index(group.target, class_names, num_classes)] if group.kind == "DIR" else []
    failed, margin = case_failures(group, stacked, classes)
    by_template: dict[str, list[int]] = {}
    for case, f in zip(group.cases, failed):
        counts = by_template.setdefault(case.template, [0, 0])
        counts[0] += 1
        counts[1] += int(f)
    worst = [i for i in np.argsort(margin, kind="stable") if failed[i]][:examples]
    return {"name": group.name, "kind": group.kind, "description": group.description,
            **_rate(len(group.cases), int(failed.sum())),
            "by_template": {t: _rate(n, k) for t, (n, k) in by_template.items()},
            "examples": [{"texts": list(group.cases[i].texts),
                          **({"label": group.cases[i].label} if group.kind == "MFT" else {}),
                          "probs": [np.round(s[i], 4).tolist() for s in stacked],
                          "margin": round(float(margin[i]), 4)} for i in worst]}


def _rate(n: int, failures: int) -> dict[str, Any]:
    return {"n": n, "failures": failures, "failure_rate": failures / n}


class UnknownWords(ValueError):
    """A suite holds words the run reads as ``<unk>``; ``words`` maps each to the number of texts holding it."""

    def __init__(self, words: Mapping[str, int], workdir: str = ""):
        self.words = dict(words)
        listed = ", ".join(f"{w!r} ({n})" for w, n in sorted(self.words.items(), key=lambda kv: (-kv[1], kv[0])))
        run = f" of run {workdir!r}" if workdir else ""
        super().__init__(f"{len(self.words)} word(s) of the suite are not in the vocabulary{run} and would be "
                         f"read as <unk> (texts holding each): {listed}; use words of the training data, or "
                         "allow_unknown (--allow_unknown) to score them anyway")


def run_suite(suite: Suite, predictor: Any, batch_size: int = 256, examples: int = 5,
              allow_unknown: bool = False) -> dict[str, Any]:
    """Runs every group of ``suite`` on a classifier.

    Args:
      suite: the cases.
      predictor: a :class:`rnnlab.inference.predict.Predictor` of a ``classify`` run (one output per input),
        or any object with its ``encode``, ``__call__`` and ``class_names``.
      batch_size: texts per forward pass.
      examples: the worst failing cases kept per group.
      allow_unknown: score texts holding words outside the run's vocabulary (read as ``<unk>``) rather
        than refuse them; they are listed in ``"unknown"`` either way.

    Returns:
      ``{"suite", "unknown": {word: texts}, "groups": [evaluate_group records]}`` (plus ``"workdir"`` and
      ``"step"`` for a Predictor).

    Raises:
      UnknownWords: words outside the vocabulary, without ``allow_unknown``.
      ValueError: a model that is not a per-input classifier, a label that is not one of its classes, or
        ``batch_size < 1``.
    """
    run = getattr(predictor, "run", None)
    if run is not None and (run.spec.task != "classify" or predictor.per_step):
        raise ValueError(f"run {run.workdir!r} is a {run.spec.task!r} task; behaviour suites test classifiers "
                         "of whole texts (task 'classify')")
    check_batch_size(batch_size)
    texts = suite_texts(suite)
    unknown = unknown_words(predictor, texts, batch_size)
    if unknown and not allow_unknown:  # before the model runs: a quick answer
        raise UnknownWords(unknown, getattr(run, "workdir", ""))
    by_text = dict(zip(texts, class_probs(predictor, texts, batch_size)))
    result: dict[str, Any] = {"suite": suite.name}
    if run is not None:
        result.update(workdir=run.workdir, step=run.step)
    result["unknown"] = unknown
    result["groups"] = [evaluate_group(g, by_text, predictor.class_names, examples) for g in suite.groups]
    return result


def result_markdown(result: Mapping[str, Any]) -> str:
    """A run's suite result as a table: group, kind, n, failures, failure rate (%); unknown words below."""
    from rnnlab.analysis.stats import markdown_table

    rows = [[g["name"], g["kind"], g["n"], g["failures"], f"{100 * g['failure_rate']:.1f}"] for g in result["groups"]]
    text = markdown_table(["group", "kind", "n", "failures", "failure rate %"], rows)
    if result.get("unknown"):
        text += f"\nScored with words read as <unk>: {', '.join(sorted(result['unknown']))}\n"
    return text


def write_result(result: Mapping[str, Any], path: str) -> None:
    """Writes ``result`` (:func:`run_suite`'s, or any JSON-ready mapping) as indented JSON to ``path`` (its folder
    made if missing)."""
    if os.path.dirname(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)
        f.write("\n")


def behaviour_report(workdir: str, suite_path: str, out: str = "", batch_size: int = 256, examples: int = 5,
                     allow_unknown: bool = False) -> dict[str, Any]:
    """``python -m rnnlab behaviour``: the suite in ``suite_path`` (:func:`load_suite`) on the run in
    ``workdir`` (:func:`rnnlab.inference.predict.load`); the result written to ``out`` (JSON) when given.

    Returns:
      :func:`run_suite`'s result, with ``"markdown"`` (:func:`result_markdown`) not written to ``out``.
    """
    check_batch_size(batch_size)  # before the run is loaded
    suite = load_suite(suite_path)
    result = run_suite(suite, load(workdir), batch_size, examples, allow_unknown)
    if out:
        write_result(result, out)
    return {**result, "markdown": result_markdown(result)}
