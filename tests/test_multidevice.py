"""Data parallelism: 4 fake CPU devices give the loss curve of 1 device (float tolerance)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = textwrap.dedent("""
    import functools, json
    import jax, numpy as np
    from rnnlab import models, tasks, train
    from tests.train_fixtures import fake_batch, fake_spec, smoke_config

    assert len(jax.devices()) == 4, jax.devices()
    config = smoke_config("unused")
    config.model.hidden_size, config.model.embed_size, config.model.dropout = 8, 6, 0.0
    spec = fake_spec("classify")
    model = models.build_model(config.model, spec)
    tx = train.make_optimizer(config.optim, 10)
    batches = [fake_batch(spec, batch_size=8, steps=9, seed=s) for s in range(5)]
    curves, placements = {}, {}
    for n in (1, 4):
        mesh = train.make_mesh(n)
        state = train.replicate(train.init_state(model, tx, jax.random.PRNGKey(0), batches[0]), mesh)
        train_fn, eval_fn = train.compile_steps(model, tx, tasks.classify_stats, mesh)
        losses = []
        for batch in batches:
            sharded = train.shard_batch(batch, mesh)
            placements[n] = len(sharded["inputs"].sharding.device_set)
            state, stats = train_fn(state, sharded)
            losses.append(tasks.finalize(jax.device_get(stats))["loss"])
        placements[f"params{n}"] = len(jax.tree.leaves(state.params)[0].sharding.device_set)
        losses.append(train.evaluate(eval_fn, state.params, [train.shard_batch(batches[0], mesh)])["loss"])
        curves[n] = losses
    print(json.dumps({"curves": curves, "placements": placements}))
""")


def test_four_devices_give_the_loss_curve_of_one():
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4", "JAX_PLATFORMS": "cpu"}
    result = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    one, four = out["curves"]["1"], out["curves"]["4"]
    assert out["placements"] == {"1": 1, "4": 4, "params1": 1, "params4": 4}
    assert len(one) == 6 and one[0] != one[-1]
    for a, b in zip(one, four):
        assert abs(a - b) <= 1e-5 * max(1.0, abs(a)), (one, four)
