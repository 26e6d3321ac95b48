"""Distill-CF: distil a user-item matrix into μ synthetic fake users (Sachdeva et al., NeurIPS 2022, §4).

Learnable logits X^s ∈ ℝ^{μ×|I|}, initialised from μ random real rows (times ``init_scale``).
Each step draws X̂^s = hardtanh(Σ_{k≤γ} softmax((X^s + G_k)/τ)) (:mod:`models.gumbel`), fits
∞-AE (kernel ridge regression with the NTK, :mod:`models.krr`) on X̂^s in closed form, and
scores a minibatch X_b of real rows (Eq. 6):

    pred = Θ(X_b, X̂^s)·(Θ(X̂^s, X̂^s) + λ·tr/μ·I)⁻¹·X̂^s
    loss = mean_u −Σ_i x_ui·log_softmax(pred_u)_i + λ₂·mean rowsum(X̂^s)/mean rowsum(X)

minimised with Adam (optax). Every ``eval_every`` steps a fresh draw is sparsified and scored on
validation (∞-AE on the draw, HR@100, inner λ grid: :func:`models.infinite_ae.fit_with_lambda_grid`);
the best one is the summary, early stopping after ``patience`` steps.
Fixes over the authors' code: distinct noise per sample and step; τ tuned on validation instead
of τ = 10 (a near-uniform dense draw whose L1 term has zero gradient); the stored summary is
sparsified (entries < ``threshold`` dropped, then the top ``keep_top`` per fake user, by default
twice as many as a real row has on average, so the summary is twice as dense as the data).

The module is pure: a run can resume from the arrays of :func:`checkpoint_arrays` and hands new
checkpoints to a callback; writing them to disk is the caller's business.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import asdict
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import scipy.sparse as sp
from jax import Array
from models import krr
from models.configs import DistillConfig
from models.device import jax_device
from models.gumbel import COMPILER_OPTIONS, SAMPLERS
from models.infinite_ae import fit_with_lambda_grid
from models.splits import holdout_fold

Progress = Callable[[int, float, float], None]
Checkpoint = Callable[[dict[str, np.ndarray]], None]
VAL_KEY = "hr@100"
VAL_ITEM_FRACTION = 0.2  # share of each row's items held out to validate a period's summary
PAD_ROWS = 128  # training rows are zero-padded to a multiple of this (fewer recompilations)
_RESUMABLE_FIELDS = ("steps", "patience", "checkpoint_every", "device")


class DistillState(NamedTuple):
    """Everything a run needs to continue; checkpointed whole (:func:`checkpoint_arrays`)."""

    logits: Array  # (μ, |I|) X^s
    opt_state: optax.OptState
    step: Array  # () int32, optimisation steps done
    key: Array  # (2,) uint32 raw threefry key data of the run
    lam: Array  # () inner λ in use (best of the last validation)
    loss: Array  # () loss of the last step
    best_summary: Array  # (μ, |I|) sparsified draw X̂^s with the best validation HR@100
    best_step: Array  # () int32
    best_val: Array  # () its validation HR@100 (-1 before the first validation)
    best_lam: Array  # () its inner λ


@dataclasses.dataclass(frozen=True)
class DistillResult:
    """A distilled summary and how it was obtained."""

    summary: sp.csr_matrix  # (μ, |I|) float32 in [0, 1], sparsified
    best_step: int
    best_val_hr100: float  # validation HR@100 of the stored (sparsified) summary
    lam: float  # inner λ chosen for the stored summary
    loss: float
    density: float  # nnz / (μ·|I|) of the stored summary
    seconds: float
    seconds_per_step: float  # mean wall time of a step, validation and the first (compiling) step excluded
    steps: int
    device: str  # where it ran ("cpu", "gpu")


def make_optimizer(config: DistillConfig) -> optax.GradientTransformation:
    """Adam with the configured learning rate (``optax.chain(scale_by_adam, scale(-lr))``)."""
    return optax.adam(config.lr)


def draw_summary(logits: Array, key: Array, *, gamma: int, tau: float, noise: str) -> Array:
    """X̂^s = hardtanh(Σ_k softmax((X^s + G_k)/τ)); (μ, |I|) in [0, 1]. ``noise`` names the sampler."""
    return jnp.minimum(SAMPLERS[noise](logits, key, gamma, tau), 1.0)


def distill_loss(
    logits: Array, key: Array, batch: Array, lam: Array, *, config: DistillConfig, real_rowsum: Array | float,
    weights: Array | None = None,
) -> Array:
    """Eq. 6 of the paper: multinomial log-likelihood of ``batch`` under KRR on the draw + λ₂·L1.

    ``weights`` (b,) average the per-row likelihoods (0 for padding rows); None = plain mean.
    """
    summary = draw_summary(logits, key, gamma=config.gamma, tau=config.tau, noise=config.noise)
    pred = krr.predict_traceable(summary, batch, lam=lam, depth=config.depth)
    per_row = -jnp.sum(jax.nn.log_softmax(pred, axis=-1) * batch, axis=-1)
    nll = jnp.mean(per_row) if weights is None else jnp.sum(weights * per_row) / jnp.sum(weights)
    cardinality = jnp.mean(jnp.sum(summary, axis=-1)) / real_rowsum
    return nll + config.l2_reg * cardinality


def _keys(state: DistillState) -> tuple[Array, Array, Array]:
    """(reserved, noise, validation-draw) keys of step ``state.step``, a pure function of (seed, step).

    The first key is not used since batches are drawn on the host (:func:`minibatch`); the split
    stays three-way so that the noise of every step is what it was."""
    base = jax.random.fold_in(jax.random.wrap_key_data(state.key), state.step)
    return tuple(jax.random.split(base, 3))


@partial(jax.jit, static_argnames="config", compiler_options=COMPILER_OPTIONS)
def train_step(state: DistillState, batch: Array, weights: Array, real_rowsum: Array, *,
               config: DistillConfig) -> DistillState:
    """One Adam step on a minibatch ``batch`` (b_pad, |I|) of real rows (:func:`minibatch`).

    Rows with weight 0 are padding, so batches of similar size share one compiled step per config.
    """
    _, noise_key, _ = _keys(state)
    loss, grad = jax.value_and_grad(distill_loss)(state.logits, noise_key, batch, state.lam, config=config,
                                                   real_rowsum=real_rowsum, weights=weights)
    updates, opt_state = make_optimizer(config).update(grad, state.opt_state, state.logits)
    return state._replace(logits=optax.apply_updates(state.logits, updates), opt_state=opt_state,
                          step=state.step + 1, loss=loss)


def sparsify(summary: np.ndarray, *, threshold: float, keep_top: int | None = None) -> sp.csr_matrix:
    """Drop entries below ``threshold`` and, if set, keep the ``keep_top`` largest per row.

    Args:
        summary: (μ, |I|) dense draw in [0, 1].
        threshold: minimum kept value.
        keep_top: per-row cap on kept entries (ties broken by the lower item index).

    Returns:
        (μ, |I|) float32 csr.
    """
    dense = np.where(summary >= threshold, summary, 0.0).astype(np.float32)
    if keep_top is not None and keep_top < dense.shape[1]:
        order = np.argsort(-dense, axis=1, kind="stable")
        np.put_along_axis(dense, order[:, keep_top:], 0.0, axis=1)
    out = sp.csr_matrix(dense)
    out.eliminate_zeros()
    return out


def minibatch(train: sp.csr_matrix, *, step: int, seed: int, batch_size: int | None) -> tuple[np.ndarray, np.ndarray]:
    """The real rows of step ``step``: (b_pad, |I|) dense float32 and (b_pad,) weights (0: padding).

    Every row when ``batch_size`` is None or at least the row count, else ``batch_size`` distinct
    rows drawn uniformly with a generator seeded by (seed, step), so a resumed run draws the same
    batches. Only the batch is ever dense (memory O(b·|I|), whatever the row count); it is
    zero-padded to a multiple of ``PAD_ROWS``.
    """
    n = train.shape[0]
    if batch_size is None or batch_size >= n:
        rows = np.arange(n)
    else:
        rows = np.sort(np.random.default_rng([seed, step]).choice(n, batch_size, replace=False))
    padded = np.zeros((-(-rows.size // PAD_ROWS) * PAD_ROWS, train.shape[1]), np.float32)
    padded[:rows.size] = train[rows].toarray()
    return padded, (np.arange(padded.shape[0]) < rows.size).astype(np.float32)


def init_state(train: sp.csr_matrix, config: DistillConfig, optimizer: optax.GradientTransformation, *,
               seed: int) -> DistillState:
    """X^s = init_scale·(μ rows of ``train`` drawn with ``seed``), fresh Adam state."""
    n = train.shape[0]
    rows = np.random.default_rng(seed).choice(n, config.n_fake_users, replace=config.n_fake_users > n)
    logits = config.init_scale * jnp.asarray(train[np.sort(rows)].toarray(), jnp.float32)
    return DistillState(
        logits=logits,
        opt_state=optimizer.init(logits),
        step=jnp.asarray(0, jnp.int32),
        key=jax.random.key_data(jax.random.key(seed)),
        lam=jnp.asarray(config.inner_lams[0], jnp.float32),
        loss=jnp.asarray(jnp.nan, jnp.float32),
        best_summary=jnp.zeros_like(logits),
        best_step=jnp.asarray(0, jnp.int32),
        best_val=jnp.asarray(-1.0, jnp.float32),
        best_lam=jnp.asarray(config.inner_lams[0], jnp.float32),
    )


def _run_identity(config: DistillConfig, seed: int, n_rows: int) -> str:
    """What a checkpoint must match to be resumed: the config (but its resumable fields), the
    seed and the number of training rows, as JSON text."""
    kept = {k: v for k, v in asdict(config).items() if k not in _RESUMABLE_FIELDS}
    return json.dumps({"config": kept, "seed": seed, "n_rows": n_rows}, sort_keys=True)


def checkpoint_arrays(state: DistillState, config: DistillConfig, *, seed: int, n_rows: int) -> dict[str, np.ndarray]:
    """The whole state as named host arrays (``state/<path>``) plus the run's identity."""
    leaves = jax.tree_util.tree_flatten_with_path(state)[0]
    out = {f"state/{jax.tree_util.keystr(path)}": np.asarray(leaf) for path, leaf in leaves}
    return out | {"run": np.asarray(_run_identity(config, seed, n_rows))}


def restore_state(arrays: dict[str, np.ndarray], template: DistillState, config: DistillConfig, *, seed: int,
                  n_rows: int) -> DistillState:
    """Inverse of :func:`checkpoint_arrays`, onto the structure of ``template``.

    Raises:
        ValueError: the checkpoint was written for another run (config other than its resumable
            fields ``steps``, ``patience``, ``checkpoint_every``, ``device``; seed; or data size).
    """
    if str(arrays.get("run")) != _run_identity(config, seed, n_rows):
        theirs = json.loads(str(arrays.get("run", "{}")))
        ours = json.loads(_run_identity(config, seed, n_rows))
        diff = sorted(k for k in {**ours["config"], **theirs.get("config", {})}
                      if theirs.get("config", {}).get(k) != ours["config"].get(k))
        diff += [k for k in ("seed", "n_rows") if theirs.get(k) != ours[k]]
        raise ValueError(f"checkpoint was written for another run (differs in {diff})")
    paths, treedef = jax.tree_util.tree_flatten_with_path(template)
    leaves = [jnp.asarray(arrays[f"state/{jax.tree_util.keystr(path)}"]) for path, _ in paths]
    return jax.tree_util.tree_unflatten(treedef, leaves)


def _validated(state: DistillState, context: sp.csr_matrix, targets: sp.csr_matrix, config: DistillConfig,
               keep_top: int) -> DistillState:
    """Score the sparsified form of a fresh draw on validation; keep it if it is the best so far.

    Its λ also becomes the inner λ of the following training steps.
    """
    draw = _draw_jit(state.logits, _keys(state)[2], gamma=config.gamma, tau=config.tau, noise=config.noise)
    stored = sparsify(np.asarray(draw), threshold=config.threshold, keep_top=keep_top)
    _, lam, results = fit_with_lambda_grid(stored, context, targets, lams=config.inner_lams, depth=config.depth,
                                           select_by=VAL_KEY)
    hr = results[lam][VAL_KEY]
    state = state._replace(lam=jnp.asarray(lam, jnp.float32))
    if hr > float(state.best_val):
        state = state._replace(best_summary=jnp.asarray(stored.toarray()), best_step=state.step,
                               best_val=jnp.asarray(hr, jnp.float32), best_lam=state.lam)
    return state


_draw_jit = jax.jit(draw_summary, static_argnames=("gamma", "tau", "noise"), compiler_options=COMPILER_OPTIONS)


def distill(
    train: sp.csr_matrix,
    *,
    val_context: sp.csr_matrix,
    val_targets: sp.csr_matrix,
    config: DistillConfig,
    seed: int,
    resume: dict[str, np.ndarray] | None = None,
    on_checkpoint: Checkpoint | None = None,
    progress: Progress | None = None,
) -> DistillResult:
    """Distil ``train`` into ``config.n_fake_users`` fake users (Distill-CF, §4 of the paper).

    Args:
        train: (n, |I|) real rows (binary or in [0, 1]).
        val_context: (m, |I|) validation fold-in rows; their items are excluded from the ranking.
        val_targets: (m, |I|) binary validation targets.
        config: hyper-parameters.
        seed: seeds the init, the batches and the noise.
        resume: arrays of a checkpoint of this same run (:func:`checkpoint_arrays`); the run
            continues from it and ends exactly as an uninterrupted run would.
        on_checkpoint: called with the checkpoint arrays every ``config.checkpoint_every`` steps.
        progress: called after every step with (step, loss, best validation HR@100).

    Returns:
        The stored summary, i.e. the sparsified draw with the best validation HR@100 (every
        validation scores the sparsified draw), and run statistics.
    """
    if train.shape[1] != val_context.shape[1] or val_context.shape != val_targets.shape:
        raise ValueError(f"shapes differ: train {train.shape}, val_context {val_context.shape}, "
                         f"val_targets {val_targets.shape}")
    if train.shape[0] == 0 or train.sum() == 0:
        raise ValueError("train has no interactions")
    start = time.perf_counter()
    device = jax_device(config.device)
    n = train.shape[0]
    keep_top = stored_row_size(train, config)
    context, targets = sp.csr_matrix(val_context, dtype=np.float32), sp.csr_matrix(val_targets)
    train = sp.csr_matrix(train, dtype=np.float32)
    with jax.default_device(device):
        state = init_state(train, config, make_optimizer(config), seed=seed)
        if resume is not None:
            state = restore_state(resume, state, config, seed=seed, n_rows=n)
        else:
            state = _validated(state, context, targets, config, keep_top)
        real_rowsum = jnp.asarray(train.sum() / n, jnp.float32)
        step_seconds: list[float] = []
        while int(state.step) < config.steps and int(state.step - state.best_step) < config.patience:
            tic = time.perf_counter()
            batch, weights = minibatch(train, step=int(state.step), seed=seed, batch_size=config.batch_size)
            state = jax.block_until_ready(train_step(state, jnp.asarray(batch), jnp.asarray(weights), real_rowsum,
                                                     config=config))
            step_seconds.append(time.perf_counter() - tic)
            done = int(state.step)
            if done % config.eval_every == 0 or done == config.steps:
                state = _validated(state, context, targets, config, keep_top)
            if on_checkpoint is not None and done % config.checkpoint_every == 0:
                on_checkpoint(checkpoint_arrays(state, config, seed=seed, n_rows=n))
            if progress is not None:
                progress(done, float(state.loss), float(state.best_val))
    summary = sp.csr_matrix(np.asarray(state.best_summary))
    return DistillResult(
        summary=summary,
        best_step=int(state.best_step),
        best_val_hr100=float(state.best_val),
        lam=float(state.best_lam),
        loss=float(state.loss),
        density=summary.nnz / (summary.shape[0] * summary.shape[1]),
        seconds=time.perf_counter() - start,
        seconds_per_step=float(np.mean(step_seconds[1:] or step_seconds or [0.0])),
        steps=int(state.step),
        device=device.platform,
    )


def stored_row_size(train: sp.csr_matrix, config: DistillConfig) -> int:
    """Entries kept per fake user in the stored summary: ``keep_top``, or ``keep_ratio`` × the
    mean items of a training row (rounded up)."""
    return config.keep_top or int(np.ceil(config.keep_ratio * train.nnz / train.shape[0]))


def period_fake_users(rows: sp.csr_matrix, train: sp.csr_matrix, config: DistillConfig) -> int:
    """μ for a period: ``n_fake_users``, at most the period's bags, and, with ``max_share``, at most
    as many fake users as keep the stored summary (μ × its row size) within that share of the
    period's interactions (at least one)."""
    mu = min(config.n_fake_users, rows.shape[0])
    if config.max_share is not None:
        mu = min(mu, max(1, int(config.max_share * rows.nnz // stored_row_size(train, config))))
    return mu


def distill_rows(
    rows: sp.csr_matrix,
    *,
    config: DistillConfig,
    seed: int,
    resume: dict[str, np.ndarray] | None = None,
    on_checkpoint: Checkpoint | None = None,
    progress: Progress | None = None,
) -> DistillResult:
    """Distil one period's bags, validating on a seeded hold-out of each bag.

    ``VAL_ITEM_FRACTION`` of every bag with ≥ 2 items (of ``config.val_rows`` bags drawn at random
    when there are more) is held out (:func:`models.splits.holdout_fold`); the summary is distilled
    from the rest (the held-out items only pick the step and λ). μ is capped by
    :func:`period_fake_users`, so the summary stays a small share of the period.

    Args:
        rows: (n, |I|) binary bags of the period.
        config: hyper-parameters; ``n_fake_users`` is capped as above.
        seed: seed of the hold-out and of :func:`distill`.
        resume, on_checkpoint, progress: forwarded to :func:`distill`.
    """
    eligible = int(np.count_nonzero(np.diff(sp.csr_matrix(rows).indptr) >= 2))
    train, context, targets = holdout_fold(rows, item_fraction=VAL_ITEM_FRACTION, seed=seed,
                                           row_fraction=min(1.0, config.val_rows / max(eligible, 1)))
    config = dataclasses.replace(config, n_fake_users=period_fake_users(rows, train, config))
    return distill(train, val_context=context, val_targets=targets, config=config, seed=seed,
                   resume=resume, on_checkpoint=on_checkpoint, progress=progress)
