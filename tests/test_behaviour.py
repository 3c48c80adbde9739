"""Tests of rnnlab.analysis.behaviour: templates, failure rules on a hand-built classifier, unknown words,
suites as files, and the command on a smoke run of the generated negation corpus."""

import json

import numpy as np
import pytest

from rnnlab.analysis import behaviour
from rnnlab.analysis.behaviour import Case, Group, Suite
from rnnlab.data.registry import UNK_ID


class WordScores:
    """A hand-built classifier: P(positive) = sigmoid(sum of the words' scores); a known word of score 0 is
    neutral, a word not in ``scores`` is read as <unk>. ``encode`` and ``__call__`` as a Predictor's."""

    class_names = ("negative", "positive")

    def __init__(self, scores):
        self.scores = dict(scores)
        self.vocab = ["<pad>", "<unk>", *self.scores]
        self.calls = 0

    def encode(self, texts):
        tokens = [t.split() for t in texts]
        ids = np.zeros((len(texts), max(map(len, tokens))), np.int32)
        for row, toks in zip(ids, tokens):
            row[: len(toks)] = [self.vocab.index(w) if w in self.scores else UNK_ID for w in toks]
        return ids, np.asarray([len(t) for t in tokens], np.int32), tokens

    def __call__(self, texts):
        self.calls += 1
        logits = np.asarray([sum(self.scores.get(w, 0.0) for w in t.split()) for t in texts])
        positive = 1 / (1 + np.exp(-logits))
        return np.stack([1 - positive, positive], axis=1).astype(np.float32)


SCORES = {"good": 2.0, "great": 3.0, "bad": -2.0, "dull": -1.0, "not": -0.5, "film": 0.0, "a": 0.0,
          "is": 0.0, "the": 0.0, "very": 0.0}
LEXICON = {"pos": ["good", "great"], "neg": ["bad", "dull"], "noun": ["film"]}


def test_expand_gives_every_fill_in_product_order_and_numbered_names_fill_independently():
    texts = behaviour.expand("{pos} and {pos2} {noun}", LEXICON)
    assert texts == [("good and good film",), ("good and great film",), ("great and good film",),
                     ("great and great film",)]
    # one name used twice gets one word; a pair of templates shares the fill
    assert behaviour.expand("{pos} , {pos}", LEXICON) == [("good , good",), ("great , great",)]
    assert behaviour.expand(("{neg} {noun}", "not {neg} {noun}"), LEXICON) == [
        ("bad film", "not bad film"), ("dull film", "not dull film")]


def test_expand_caps_with_a_seeded_sample_of_distinct_fills():
    lexicon = {"a": [f"a{i}" for i in range(30)], "b": [f"b{i}" for i in range(40)]}
    full = behaviour.expand("{a} {b}", lexicon)
    capped = behaviour.expand("{a} {b}", lexicon, cap=50, seed=3)
    # Then cap distinct fills, a subset of the product in its order, the same for the same seed only
    assert len(full) == 1200 and len(capped) == 50 and len(set(capped)) == 50
    assert set(capped) <= set(full) and capped == sorted(capped, key=full.index)
    assert capped == behaviour.expand("{a} {b}", lexicon, cap=50, seed=3)
    assert capped != behaviour.expand("{a} {b}", lexicon, cap=50, seed=4)
    assert behaviour.expand("{a} {b}", lexicon, cap=5000) == full


def test_expand_refuses_unknown_placeholders_and_bad_templates():
    with pytest.raises(ValueError, match=r"unknown placeholder \{adj\}; the lexicon has neg, noun, pos"):
        behaviour.expand("a {adj} film", LEXICON)
    with pytest.raises(ValueError, match="non-empty list"):
        behaviour.expand("{x}", {"x": []})
    with pytest.raises(ValueError, match="template"):
        behaviour.expand("{pos", LEXICON)
    with pytest.raises(ValueError, match="placeholders are"):
        behaviour.expand("{pos:>5}", LEXICON)
    with pytest.raises(ValueError, match="cap must be >= 1"):
        behaviour.expand("{pos}", LEXICON, cap=0)


def test_groups_from_templates_count_cases_per_template_and_drop_repeats():
    group = behaviour.mft_group("pos", [("the film is {pos}", "positive"), ("a {pos} film", "positive"),
                                        ("a {pos} film", "positive")], LEXICON)
    assert len(group.cases) == 4 and {c.template for c in group.cases} == {"the film is {pos}", "a {pos} film"}
    lexicon = {"w": [f"w{i}" for i in range(100)]}
    capped = behaviour.mft_group("many", [("{w} {w2}", 1), ("{w2} {w} x", 0)], lexicon, cap=7, seed=1)
    assert len(capped.cases) == 14
    assert capped == behaviour.mft_group("many", [("{w} {w2}", 1), ("{w2} {w} x", 0)], lexicon, cap=7, seed=1)
    pairs = behaviour.pair_group("neg", "DIR", [("{neg}", "not {neg}")], LEXICON, target="positive", direction="up")
    assert [c.texts for c in pairs.cases] == [("bad", "not bad"), ("dull", "not dull")]


def test_groups_and_suites_refuse_what_cannot_be_scored():
    with pytest.raises(ValueError, match="group 'e' has no cases"):
        Group("e", "MFT", ())
    with pytest.raises(ValueError, match="kind 'XYZ'"):
        Group("k", "XYZ", (Case(("good",), 1),))
    with pytest.raises(ValueError, match="every MFT case has an expected label"):
        Group("m", "MFT", (Case(("good",)),))
    with pytest.raises(ValueError, match="holds 2 non-blank"):
        Group("d", "DIR", (Case(("good",)),), target=1, direction="up")
    with pytest.raises(ValueError, match="needs a target class and a direction"):
        Group("d", "DIR", (Case(("bad", "not bad")),), target=1, direction="sideways")
    with pytest.raises(ValueError, match="no groups"):
        Suite("s", ())
    group = Group("g", "MFT", (Case(("good",), 1),))
    with pytest.raises(ValueError, match="used twice: g"):
        Suite("s", (group, group))


def _suite():
    return Suite("tiny", (
        # MFT: "not good" (-0.5 + 2 > 0) is read positive: 1 failure of 3; "good" and "bad" pass
        Group("mft", "MFT", (Case(("good",), "positive", "t1"), Case(("not good",), "negative", "t2"),
                             Case(("bad",), "negative", "t1"))),
        # DIR up: "bad" -> "not bad" falls (-0.5), "dull" -> "good dull" rises, "film" -> "a film" stays
        Group("dir", "DIR", (Case(("bad", "not bad")), Case(("dull", "good dull")), Case(("film", "a film"))),
              target="positive", direction="up"),
        # INV: "good" vs "very good" keep the label; "good" vs "not not not not not good" flips
        Group("inv", "INV", (Case(("good", "very good")), Case(("good", "not not not not not good")))),
    ))


def test_run_suite_failure_rates_directions_and_worst_examples_on_a_hand_built_classifier():
    # Given a classifier whose probabilities are known in closed form
    predictor = WordScores(SCORES)
    # When the suite runs
    result = behaviour.run_suite(_suite(), predictor, batch_size=2, examples=5)
    mft, dir_, inv = result["groups"]
    # Then MFT fails on the wrong label only, with the per-template counts
    assert (mft["n"], mft["failures"]) == (3, 1) and mft["failure_rate"] == pytest.approx(1 / 3)
    assert mft["by_template"] == {"t1": {"n": 2, "failures": 0, "failure_rate": 0.0},
                                  "t2": {"n": 1, "failures": 1, "failure_rate": 1.0}}
    assert mft["examples"][0]["texts"] == ["not good"] and mft["examples"][0]["label"] == "negative"
    # margin: P(negative) - P(positive) of "not good" = 1 - 2 sigmoid(1.5)
    assert mft["examples"][0]["margin"] == pytest.approx(1 - 2 / (1 + np.exp(-1.5)), abs=1e-4)
    # DIR fails when the positive probability falls, and when it does not move at all
    assert (dir_["n"], dir_["failures"]) == (3, 2)
    assert [e["texts"][1] for e in dir_["examples"]] == ["not bad", "a film"]  # the worst first
    # INV fails when the label flips
    assert (inv["n"], inv["failures"]) == (2, 1) and inv["examples"][0]["texts"][1].startswith("not not")
    assert result["unknown"] == {} and result["suite"] == "tiny"


def test_dir_tolerance_and_direction_down():
    predictor = WordScores(SCORES)
    cases = (Case(("dull", "good dull")), Case(("good", "great")))  # P(positive) rises by ~0.46, by ~0.07
    up = Group("up", "DIR", cases, target="positive", direction="up", tolerance=0.1)
    down = Group("down", "DIR", cases, target="negative", direction="down")
    result = behaviour.run_suite(Suite("s", (up, down)), predictor)
    assert [g["failures"] for g in result["groups"]] == [1, 0]  # the small rise is within the tolerance
    down_wrong = Group("down", "DIR", cases, target="positive", direction="down")
    assert behaviour.run_suite(Suite("s", (down_wrong,)), predictor)["groups"][0]["failures"] == 2


def test_unknown_words_are_refused_by_name_or_scored_and_listed():
    predictor = WordScores(SCORES)
    suite = Suite("s", (Group("g", "MFT", (Case(("a superb film",), "positive"), Case(("superb zzz",), 1),
                                           Case(("good",), 1))),))
    with pytest.raises(behaviour.UnknownWords, match=r"2 word\(s\).*'superb' \(2\), 'zzz' \(1\)") as error:
        behaviour.run_suite(suite, predictor)
    assert error.value.words == {"superb": 2, "zzz": 1} and predictor.calls == 0  # refused before the model ran
    result = behaviour.run_suite(suite, predictor, allow_unknown=True)
    assert result["unknown"] == {"superb": 2, "zzz": 1} and result["groups"][0]["n"] == 3
    assert "read as <unk>: superb, zzz" in behaviour.result_markdown(result)


def test_labels_must_be_classes_of_the_run():
    predictor = WordScores(SCORES)
    with pytest.raises(ValueError, match="unknown class 'happy'; the run's classes are negative, positive"):
        behaviour.run_suite(Suite("s", (Group("g", "MFT", (Case(("good",), "happy"),)),)), predictor)
    with pytest.raises(ValueError, match="index in 0..1"):
        behaviour.run_suite(Suite("s", (Group("g", "MFT", (Case(("good",), 2),)),)), predictor)


def test_each_text_is_scored_once_however_many_groups_hold_it():
    predictor = WordScores(SCORES)
    behaviour.run_suite(_suite(), predictor, batch_size=1000)
    assert predictor.calls == 1


def test_suite_round_trips_through_json_and_python_files(tmp_path):
    suite = _suite()
    path = tmp_path / "suite.json"
    path.write_text(json.dumps(behaviour.suite_to_dict(suite)))
    assert behaviour.load_suite(str(path)) == suite
    py = tmp_path / "my_suite.py"
    py.write_text("from rnnlab.analysis.behaviour import Case, Group, Suite\n"
                  "def get_suite():\n    return Suite('p', (Group('g', 'MFT', (Case(('good',), 1),)),))\n")
    assert behaviour.load_suite(str(py)).groups[0].cases == (Case(("good",), 1),)
    (tmp_path / "none.py").write_text("x = 1\n")
    with pytest.raises(ValueError, match="defines no get_suite"):
        behaviour.load_suite(str(tmp_path / "none.py"))
    with pytest.raises(FileNotFoundError, match="no suite file"):
        behaviour.load_suite(str(tmp_path / "missing.json"))
    (tmp_path / "bad.json").write_text(json.dumps({"name": "b", "groups": [{"name": "g", "kind": "MFT"}]}))
    with pytest.raises(ValueError, match="KeyError: 'cases'"):
        behaviour.load_suite(str(tmp_path / "bad.json"))


def test_json_suites_may_give_templates_over_their_lexicon():
    data = {"name": "j", "lexicon": LEXICON, "cap": 3, "seed": 2, "groups": [
        {"name": "neg", "kind": "MFT", "templates": [["the {noun} is not {pos}", "negative"]],
         "cases": [{"texts": ["not good"], "label": "negative"}]},
        {"name": "dir", "kind": "DIR", "templates": [["{neg} {noun}", "not {neg} {noun}"]], "target": "positive",
         "direction": "up", "cap": 1},
    ]}
    suite = behaviour.suite_from_dict(data)
    neg, dir_ = suite.groups
    assert [c.texts[0] for c in neg.cases] == ["not good", "the film is not good", "the film is not great"]
    assert len(dir_.cases) == 1 and dir_.cases[0].texts[1] == "not " + dir_.cases[0].texts[0]
    assert suite == behaviour.suite_from_dict(data)  # seeded
    with pytest.raises(ValueError, match="unknown placeholder"):
        behaviour.suite_from_dict({"name": "j", "groups": [{"name": "g", "kind": "MFT", "templates": [["{x}", 1]]}]})


def test_result_markdown_rows():
    result = behaviour.run_suite(_suite(), WordScores(SCORES))
    lines = behaviour.result_markdown(result).splitlines()
    assert lines[0] == "| group | kind | n | failures | failure rate % |"
    assert lines[2:] == ["| mft | MFT | 3 | 1 | 33.3 |", "| dir | DIR | 3 | 2 | 66.7 |", "| inv | INV | 2 | 1 | 50.0 |"]


@pytest.fixture(scope="module")
def negation_run(tmp_path_factory):
    """A 1-layer LSTM of the generated negation corpus trained for a few steps."""
    from rnnlab.training import train
    from tests.train_fixtures import smoke_config

    root = tmp_path_factory.mktemp("behaviour")
    workdir = str(root / "run")
    train.train_and_evaluate(smoke_config(root / "tfds", "cell=lstm,smoke"), workdir)
    return workdir


def test_behaviour_report_runs_a_suite_file_on_a_trained_run_and_writes_json(negation_run, tmp_path):
    # (the one call of ``python -m rnnlab behaviour``; in-process, as its absl flags are global)
    from rnnlab.inference import predict

    # Given a suite over words of the corpus, one group per kind
    suite = Suite("negation", (
        behaviour.mft_group("plain", [("the plot is {adj}", "positive")], {"adj": ["good", "wonderful"]}),
        behaviour.pair_group("negated", "DIR", [("the plot is bad", "the plot is not bad")], {},
                             target="positive", direction="up"),
        Group("inv", "INV", (Case(("good", "very good")),)),
    ))
    path = tmp_path / "suite.json"
    path.write_text(json.dumps(behaviour.suite_to_dict(suite)))
    out = tmp_path / "out" / "result.json"
    # When the command's call runs it
    result = behaviour.behaviour_report(negation_run, str(path), str(out))
    # Then it gives the table and writes per group what run_suite gives from Python
    assert result["markdown"].startswith("| group | kind | n | failures | failure rate % |")
    assert "| plain | MFT | 2 |" in result["markdown"]
    written = json.loads(out.read_text())
    expected = behaviour.run_suite(suite, predict.load(negation_run))
    assert written == json.loads(json.dumps(expected)) and written["step"] == expected["step"]
    assert [g["n"] for g in written["groups"]] == [2, 1, 1] and written["unknown"] == {}
    # And a word outside the corpus is refused by name; a bad batch size before the run is restored
    (tmp_path / "oov.json").write_text(json.dumps(behaviour.suite_to_dict(
        Suite("o", (Group("g", "MFT", (Case(("a zzyzx plot",), "positive"),)),)))))
    with pytest.raises(behaviour.UnknownWords, match="'zzyzx' \\(1\\)"):
        behaviour.behaviour_report(negation_run, str(tmp_path / "oov.json"))
    with pytest.raises(ValueError, match="--batch_size must be a positive integer"):
        behaviour.behaviour_report(str(tmp_path / "nowhere"), str(path), batch_size=0)
