"""``python -m rnnlab search``: hyperparameter search on Optuna, then seeds of the best.

    python -m rnnlab search configs/music.py:dataset=jsb,cell=gru,paper --trials=10 \\
        --space='optim.learning_rate=loguniform(6e-6,2.5e-3)' --metric=valid/nll:min \\
        --seeds=3 --out=runs/music/jsb-gru-paper

The work lives in :mod:`rnnlab.experiments.search`. A search that cannot run as asked (a bad
flag, config, metric or study) exits with status 1 and one line saying why.
"""

import errno
import sys
from typing import Optional, Sequence

from absl import app, flags, logging

from rnnlab.experiments.search_space import KINDS, parse_metric, parse_param
from rnnlab.experiments.search_trials import Interrupted, StudyError
from rnnlab.experiments.search import SearchError, SearchFailed, SearchSpec, search_and_rerun
from rnnlab.commands.common import fail, run_app


def main(argv: Sequence[str]) -> None:
    """absl entry: ``argv[1]`` is the config spec; flags from :func:`_define_flags`."""
    if len(argv) != 2:
        raise app.UsageError("give one config, e.g. configs/music.py:dataset=jsb,cell=gru,paper")
    f = flags.FLAGS
    try:
        spec = SearchSpec(argv[1], tuple(parse_param(s) for s in f.space), parse_metric(f.metric), f.trials, f.out)
    except ValueError as e:  # a --space or --metric that does not parse
        fail("rnnlab search", e)
    try:
        summary = search_and_rerun(
            spec, f.seeds, seed=f.sampler_seed, storage=f.storage, study_name=f.study, retries=f.retries,
            new_study=f.new_study, allow_test_metric=f.allow_test_metric, vary_data_seed=f.vary_data_seed,
            startup_trials=f.startup_trials, warmup_steps=f.warmup_steps, grace_period=f.grace_period,
        )
    except Interrupted as e:
        logging.warning("%s; run the same command again to continue the search", e)
        sys.exit(130)
    except (SearchError, StudyError, SearchFailed, ImportError) as e:  # ImportError: the experiments extra
        fail("rnnlab search", e)
    except OSError as e:
        if e.errno != errno.ENOSPC:
            raise
        fail("rnnlab search", f"no space left on the disk of {e.filename or spec.out}: free some space and "
             "run the same command again (the search resumes)")
    best = summary["best"]
    logging.info("search %s: best trial %s (point %s), %s = %s, params %s", spec.out, best["number"],
                 best["point"], spec.metric.key, best["value"], best["params"])


def _define_flags() -> None:
    flags.DEFINE_string("out", None, "the search folder (study.db, trials/, best__seedN/)", required=True)
    flags.DEFINE_integer("trials", 10, "the study's points, each trained until completed or pruned")
    flags.DEFINE_multi_string("space", [], "FIELD=KIND(ARGS), KIND one of " + ", ".join(KINDS))
    flags.DEFINE_string("metric", "valid/nll:min", "SPLIT/NAME:min|max from results.json")
    flags.DEFINE_integer("seeds", 0, "rerun the best config with this many new seeds")
    flags.DEFINE_string("storage", "", "database URL of the study (default: sqlite file OUT/study.db)")
    flags.DEFINE_string("study", "search", "study name within the storage")
    flags.DEFINE_integer("sampler_seed", 0, "seed of the points' random draws")
    flags.DEFINE_integer("startup_trials", 2, "trials finished before the median pruner prunes")
    flags.DEFINE_integer("warmup_steps", 0, "training steps before a trial can be pruned")
    flags.DEFINE_bool("vary_data_seed", False, "seed runs also set data.gen_seed to their seed (new generated data)")
    flags.DEFINE_integer("grace_period", 120, "seconds without heartbeat before a trial is queued again")
    flags.DEFINE_integer("retries", 2, "times a point whose training failed is retried from its checkpoint")
    flags.DEFINE_bool("new_study", False, "OUT holds a study of another spec: start this one in OUT-2 (OUT-3, ...)")
    flags.DEFINE_bool("allow_test_metric", False, "allow a --metric on the test split (selects on the test set)")



def run(argv: Optional[Sequence[str]] = None) -> None:
    """``python -m rnnlab search`` (``argv`` defaults to ``sys.argv``)."""
    run_app("rnnlab search", main, _define_flags, argv)


if __name__ == "__main__":
    run()
