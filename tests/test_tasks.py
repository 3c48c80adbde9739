"""Tests of rnnlab.training.tasks' loss mask: the loss over the masked steps only, the metrics over all."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import expit, log_softmax

from rnnlab.training import tasks


def _batch(task: str, seed: int = 0) -> dict:
    """A tiny tag / density batch: B=3, T=5, lengths 5, 3, 4 (the middle row weighted 0.5)."""
    rng = np.random.default_rng(seed)
    lengths = np.array([5, 3, 4], np.int32)
    if task == "tag":
        targets = rng.integers(0, 4, (3, 5)).astype(np.int32)
    else:
        targets = (rng.random((3, 5, 2)) < 0.4).astype(np.float32)
    target_mask = np.zeros((3, 5), np.float32)
    target_mask[:, -2:] = 1.0  # the last two steps count: both valid in row 0, one in row 2, none in row 1
    target_mask[1, 1] = 1.0  # so row 1 (length 3) gets one valid masked step too
    return {"targets": targets, "lengths": lengths, "weights": np.array([1.0, 0.5, 1.0], np.float32),
            "target_mask": target_mask}


def _numpy_losses(task: str, outputs: np.ndarray, batch: dict) -> tuple[np.ndarray, np.ndarray]:
    """``f64[B, T]`` loss per step (cross-entropy or frame NLL) and per-step weights over valid steps."""
    t = batch["targets"]
    valid = (np.arange(t.shape[1])[None] < batch["lengths"][:, None]) * batch["weights"][:, None]
    if task == "tag":
        loss = -np.take_along_axis(log_softmax(outputs.astype(np.float64), -1), t[..., None], -1)[..., 0]
    else:
        p = expit(outputs.astype(np.float64))
        loss = -(t * np.log(p) + (1 - t) * np.log(1 - p)).sum(-1)
    return loss, valid


@pytest.mark.parametrize("task, shape, metric", [("tag", (3, 5, 4), "accuracy"), ("density", (3, 5, 2), "nll")])
def test_loss_mask_averages_the_loss_over_masked_steps_only(task, shape, metric):
    # Given a tiny batch with padding, a half-weighted row and a mask on a few steps
    batch = _batch(task)
    outputs = np.random.default_rng(1).normal(size=shape).astype(np.float32)
    loss, valid = _numpy_losses(task, outputs, batch)
    masked = valid * batch["target_mask"]
    # When the stats are computed with and without the mask
    plain = tasks.finalize(jax.device_get(tasks.get_task(task)(jnp.asarray(outputs), batch)))
    masked_task = tasks.get_task(task, "target_mask", accuracies=[("target_mask", "masked_accuracy")])
    got = tasks.finalize(jax.device_get(masked_task(jnp.asarray(outputs), batch)))
    # Then the masked loss is the weighted mean over masked valid steps, and the metric is unchanged
    assert masked.sum() == pytest.approx(2 + 0.5 + 1)  # rows 0, 1 (weight 0.5), 2
    np.testing.assert_allclose(got["loss"], (loss * masked).sum() / masked.sum(), rtol=1e-5)
    np.testing.assert_allclose(plain["loss"], (loss * valid).sum() / valid.sum(), rtol=1e-5)
    assert abs(got["loss"] - plain["loss"]) > 1e-3  # the mask made a difference here
    np.testing.assert_allclose(got[metric], plain[metric], rtol=1e-6)
    if task == "tag":
        correct = outputs.argmax(-1) == batch["targets"]
        np.testing.assert_allclose(got["masked_accuracy"], (correct * masked).sum() / masked.sum(), rtol=1e-6)


def test_loss_mask_counts_add_up_across_batches():
    batch = _batch("tag")
    outputs = jnp.asarray(np.random.default_rng(2).normal(size=(3, 5, 4)), jnp.float32)
    stats = tasks.get_task("tag", "target_mask")
    halves = [{k: v[:2] for k, v in batch.items()}, {k: v[2:] for k, v in batch.items()}]
    totals = tasks.accumulate(tasks.accumulate(None, stats(outputs[:2], halves[0])), stats(outputs[2:], halves[1]))
    whole = tasks.finalize(jax.device_get(stats(outputs, batch)))
    np.testing.assert_allclose(tasks.finalize(jax.device_get(totals))["loss"], whole["loss"], rtol=1e-6)


def test_loss_mask_gives_zero_gradient_to_steps_outside_the_mask():
    # Given logits for every step (the head's output)
    batch = _batch("tag")
    outputs = jnp.asarray(np.random.default_rng(3).normal(size=(3, 5, 4)), jnp.float32)

    def mean_loss(logits, loss_mask):
        total, count = tasks.get_task("tag", loss_mask)(logits, batch)["loss"]
        return total / count

    # When the loss is differentiated with respect to the logits
    masked = np.asarray(jax.grad(mean_loss)(outputs, "target_mask"))
    plain = np.asarray(jax.grad(mean_loss)(outputs, ""))
    # Then only masked valid steps get a gradient with the mask; all valid steps without it
    valid = np.arange(5)[None] < batch["lengths"][:, None]
    inside = valid & (batch["target_mask"] > 0)
    assert np.all(masked[~inside] == 0.0) and np.all(np.abs(masked[inside]).sum(-1) > 0)
    assert np.all(np.abs(plain[valid]).sum(-1) > 0) and np.all(plain[~valid] == 0.0)


@pytest.mark.parametrize("loss_mask, task, keys, message", [
    ("target_mask", "classify", ("negated",), "config.train.loss_mask 'target_mask' needs a per-step task"),
    ("target_mask", "regress", (), "config.train.loss_mask 'target_mask' needs a per-step task"),
    ("mask", "tag", ("target_mask",), "config.train.loss_mask 'mask' is not a key of the dataset's batches; "
                                      "its optional keys: 'target_mask'"),
    ("target_mask", "density", (), "its optional keys: none"),
])
def test_check_loss_mask_names_the_field(loss_mask, task, keys, message):
    with pytest.raises(ValueError, match=message):
        tasks.check_loss_mask(loss_mask, task, keys)


def test_check_loss_mask_accepts_no_mask_and_a_present_key():
    tasks.check_loss_mask("", "classify", ())
    tasks.check_loss_mask("target_mask", "tag", ("target_mask",))


def test_get_task_refuses_a_loss_mask_for_a_task_without_steps():
    with pytest.raises(ValueError, match="needs a per-step task"):
        tasks.get_task("classify", "target_mask")
