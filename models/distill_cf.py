"""Distill-CF: distil a user-item matrix into μ synthetic fake users (Sachdeva et al., NeurIPS 2022, §4).

Learnable logits X^s ∈ ℝ^{μ×|I|}, initialised from μ random real rows (times ``init_scale``).
Each step draws X̂^s = hardtanh(Σ_{k≤γ} softmax((X^s + G_k)/τ)) (:mod:`models.gumbel`), fits
∞-AE (kernel ridge regression with the NTK of :mod:`models.ntk`) on X̂^s in closed form, and
scores a minibatch X_b of real rows (Eq. 6):

    pred = Θ(X_b, X̂^s)·(Θ(X̂^s, X̂^s) + λ·tr/μ·I)⁻¹·X̂^s
    loss = mean_u −Σ_i x_ui·log_softmax(pred_u)_i + λ₂·mean rowsum(X̂^s)/mean rowsum(X)

minimised with Adam (optax). Every ``eval_every`` steps a fresh draw is sparsified and scored on
validation (HR@100, inner λ grid); the best one is the summary, early stopping after ``patience`` steps.
Fixes over the authors' code: distinct noise per sample and step; τ tuned on validation instead
of τ = 10 (a near-uniform dense draw whose L1 term has zero gradient); the stored summary is
sparsified (entries < ``threshold`` dropped, then the top ``keep_top`` per fake user, by default
twice as many as a real row has on average, so the summary is twice as dense as the data).
"""

from __future__ import annotations

import pickle
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
import numpy as np
import optax
import scipy.sparse as sp
from jax import Array

from models.gumbel import COMPILER_OPTIONS, SAMPLERS
from models.metrics import hit_ratio
from models.ntk import ntk as ntk_exact
from models.ntk import ntk_traceable
from models.splits import hold_out_items

Progress = Callable[[int, float, float], None]
VAL_K = 100
PAD_ROWS = 128  # training rows are zero-padded to a multiple of this (fewer recompilations)


@dataclass(frozen=True)
class DistillConfig:
    """Distill-CF hyper-parameters: the authors' defaults except ``tau``, ``lr``, ``batch_size``.

    ``tau`` and ``lr`` were chosen on ML-1M validation HR@100 of the stored summary (μ = 50,
    γ = 200, 60 steps, batch 1024; random 50 real users score 33.1):

    ======  =====  ==========  ======================  =============
    τ       lr     init_scale  dense best draw HR@100  stored HR@100
    ======  =====  ==========  ======================  =============
    0.3     0.2    6           34.9                    34.8
    0.5     0.2    6           39.0                    38.8
    0.5     0.2    3           41.2                    41.0
    0.7     0.2    3           43.6                    43.5 (thr 0.1)
    5       0.04   1           50.3                    37.5
    5       0.2    1           51.8                    45.8
    5       0.2    5           50.1                    46.0
    5       0.5    1           51.3                    47.0
    ======  =====  ==========  ======================  =============

    Stored = top-``keep_top`` entries per fake user (density of the real data); keeping 65 /
    130 / 260 / 520 entries gave 42.6 / 47.0 / 49.6 / 50.3 (the dense draw: 51.5). At μ = 500
    (γ = 200, default steps) keeping 2× instead of 1× the real rows' mean raised validation HR@100
    from 53.1 to 54.8, hence ``keep_ratio = 2``: half of the dense draw's gain for 2× the storage.

    ``noise = "pooled"`` (:mod:`models.gumbel`) against the paper's independent noise, ML-1M
    paper split, defaults otherwise, test nDCG@10 of ∞-AE on the stored summary: μ = 50 seeds
    0/1/2: 26.78/27.41/27.97 vs 28.19/27.29/27.92; μ = 100: 29.90 vs 30.13; μ = 500: 32.31 vs
    32.25, at 0.25 instead of 0.86 s a step (μ = 500).

    Attributes:
        n_fake_users: μ, rows of the summary.
        gamma: γ, Gumbel samples summed per fake user and step.
        tau: Gumbel-softmax temperature τ (chosen on ML-1M validation, see bench/distill_cf.py).
        l2_reg: λ₂, weight of the cardinality (row-sum) penalty.
        lr: Adam learning rate.
        steps: maximum optimisation steps.
        patience: stop when validation HR@100 has not improved for this many steps.
        batch_size: real rows per step; None = full batch.
        eval_every: validation period in steps.
        inner_lams: λ grid of the inner KRR, chosen on validation HR@100.
        init_scale: logit of observed items at init (0 elsewhere); 1 is the authors' binary init.
        threshold: entries of the stored summary below this are dropped.
        keep_top: entries kept per fake user in the stored summary; None = ``keep_ratio`` × the
            mean number of items per real training row (rounded up).
        keep_ratio: stored density relative to the real data's, when ``keep_top`` is None.
        noise: "pooled" (each fake user's γ samples are i.i.d.; fake users share one Gumbel pool
            under their own item permutations; two matrix products a pass) or "independent"
            (fresh noise for every entry, as in the paper; bound by γ·μ·|I| transcendentals).
            See :mod:`models.gumbel`.
        depth: NTK depth.
        checkpoint_every: steps between checkpoints (when a path is given).
        seed: seeds the init, batches and noise.
    """

    n_fake_users: int = 500
    gamma: int = 200
    tau: float = 5.0
    l2_reg: float = 1e-3
    lr: float = 0.5
    steps: int = 500
    patience: int = 150
    batch_size: int | None = 1024
    eval_every: int = 25
    inner_lams: tuple[float, ...] = (1e-5, 1e-3, 0.1, 1.0, 5.0, 50.0)
    init_scale: float = 1.0
    threshold: float = 0.0
    keep_top: int | None = None
    keep_ratio: float = 2.0
    noise: str = "pooled"
    depth: int = 1
    checkpoint_every: int = 50
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("n_fake_users", "gamma", "steps", "eval_every", "checkpoint_every", "depth"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.tau <= 0:
            raise ValueError(f"tau must be > 0, got {self.tau}")
        if self.noise not in SAMPLERS:
            raise ValueError(f"noise must be one of {sorted(SAMPLERS)}, got {self.noise!r}")
        if self.keep_ratio <= 0:
            raise ValueError(f"keep_ratio must be > 0, got {self.keep_ratio}")
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1 or None, got {self.batch_size}")
        if not self.inner_lams or min(self.inner_lams) <= 0:
            raise ValueError(f"inner_lams must be non-empty and positive, got {self.inner_lams}")


class DistillState(NamedTuple):
    """Everything a run needs to continue; checkpointed whole (host NumPy arrays in the file)."""

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


@dataclass(frozen=True)
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


def make_optimizer(config: DistillConfig) -> optax.GradientTransformation:
    """Adam with the configured learning rate (``optax.chain(scale_by_adam, scale(-lr))``)."""
    return optax.adam(config.lr)


def draw_summary(logits: Array, key: Array, *, gamma: int, tau: float, noise: str) -> Array:
    """X̂^s = hardtanh(Σ_k softmax((X^s + G_k)/τ)); (μ, |I|) in [0, 1]. ``noise`` names the sampler."""
    return jnp.minimum(SAMPLERS[noise](logits, key, gamma, tau), 1.0)


def krr_predict(support: Array, queries: Array, *, lam: Array | float, depth: int = 1) -> Array:
    """∞-AE prediction Θ(q, S)(Θ(S, S) + λ·tr/μ·I)⁻¹S by Cholesky (differentiable).

    The solve takes whichever side has fewer columns (the b query rows or the |I| items).

    Args:
        support: (μ, |I|) training rows S.
        queries: (b, |I|) rows to score.
        lam: ridge λ, scaled by the mean diagonal of Θ(S, S).
        depth: NTK depth.

    Returns:
        (b, |I|) scores.
    """
    k_ss = ntk_traceable(support, support, depth=depth)
    reg = lam * jnp.trace(k_ss) / k_ss.shape[0]
    factor = jsl.cho_factor(k_ss + reg * jnp.eye(k_ss.shape[0], dtype=k_ss.dtype))
    k_qs = ntk_traceable(queries, support, depth=depth)
    if queries.shape[0] < support.shape[1]:  # solve for the fewer right-hand sides (b·μ² vs |I|·μ²)
        return jsl.cho_solve(factor, k_qs.T).T @ support
    return k_qs @ jsl.cho_solve(factor, support)


def distill_loss(
    logits: Array, key: Array, batch: Array, lam: Array, *, config: DistillConfig, real_rowsum: Array | float,
    weights: Array | None = None,
) -> Array:
    """Eq. 6 of the paper: multinomial log-likelihood of ``batch`` under KRR on the draw + λ₂·L1.

    ``weights`` (b,) average the per-row likelihoods (0 for padding rows); None = plain mean.
    """
    summary = draw_summary(logits, key, gamma=config.gamma, tau=config.tau, noise=config.noise)
    pred = krr_predict(summary, batch, lam=lam, depth=config.depth)
    per_row = -jnp.sum(jax.nn.log_softmax(pred, axis=-1) * batch, axis=-1)
    nll = jnp.mean(per_row) if weights is None else jnp.sum(weights * per_row) / jnp.sum(weights)
    cardinality = jnp.mean(jnp.sum(summary, axis=-1)) / real_rowsum
    return nll + config.l2_reg * cardinality


def _keys(state: DistillState) -> tuple[Array, Array, Array]:
    """(batch, noise, validation-draw) keys of step ``state.step``, a pure function of (seed, step)."""
    base = jax.random.fold_in(jax.random.wrap_key_data(state.key), state.step)
    return tuple(jax.random.split(base, 3))


@partial(jax.jit, static_argnames="config", compiler_options=COMPILER_OPTIONS)
def train_step(state: DistillState, train: Array, n_rows: Array, real_rowsum: Array, *,
               config: DistillConfig) -> DistillState:
    """One Adam step on a minibatch of the first ``n_rows`` rows of ``train`` (n_pad, |I|).

    Rows past ``n_rows`` are zero padding (weight 0), so data sets of similar size share one
    compiled step per config.
    """
    batch_key, noise_key, _ = _keys(state)
    weights = (jnp.arange(train.shape[0]) < n_rows).astype(train.dtype)
    if config.batch_size is None or config.batch_size >= train.shape[0]:
        batch = train
    else:  # b distinct real rows uniformly at random (padding sorts last)
        order = jax.random.uniform(batch_key, (train.shape[0],)) + 2.0 * (1.0 - weights)
        rows = jax.lax.top_k(-order, config.batch_size)[1]
        batch, weights = train[rows], weights[rows]
    loss, grad = jax.value_and_grad(distill_loss)(state.logits, noise_key, batch, state.lam, config=config,
                                                   real_rowsum=real_rowsum, weights=weights)
    updates, opt_state = make_optimizer(config).update(grad, state.opt_state, state.logits)
    return state._replace(logits=optax.apply_updates(state.logits, updates), opt_state=opt_state,
                          step=state.step + 1, loss=loss)


@partial(jax.jit, static_argnames="k")
def _val_topk(k_vs: Array, evals: Array, evecs: Array, proj: Array, reg: Array, context: Array, *, k: int) -> Array:
    """Top-k items per validation row of the KRR scores for one λ (context items excluded)."""
    alpha = evecs @ (proj / (evals + reg)[:, None])
    scores = jnp.where(context > 0, -jnp.inf, k_vs @ alpha)
    return jax.lax.top_k(scores, k)[1]


def validate(summary: Array, context: Array, targets: sp.csr_matrix, *, lams: tuple[float, ...],
             depth: int = 1) -> tuple[float, float]:
    """Best validation HR@100 over the λ grid for ∞-AE trained on ``summary``.

    One eigendecomposition of Θ(S, S) = VDVᵀ serves the whole grid:
    α_λ = V(D + λ·tr/μ)⁻¹VᵀS. Context items are excluded from the ranking.

    Args:
        summary: (μ, |I|) support rows.
        context: (n, |I|) dense validation context (fold-in) rows.
        targets: (n, |I|) binary csr validation targets; rows without targets are skipped.
        lams: ridge grid.
        depth: NTK depth.

    Returns:
        (HR@100 ×100, best λ); ties keep the first λ of the grid. With fewer than 100 items
        the cut-off is |I|.
    """
    summary = jnp.asarray(summary, jnp.float32)
    k_ss = ntk_exact(summary, summary, depth=depth)
    evals, evecs = jnp.linalg.eigh(k_ss)
    evals = jnp.maximum(evals, 0.0)
    mean_diag = jnp.trace(k_ss) / k_ss.shape[0]
    proj = evecs.T @ summary
    k_vs = ntk_exact(context, summary, depth=depth)
    n_t = np.diff(targets.indptr)
    keep = n_t > 0
    dense_t = targets.toarray().astype(bool)
    k = min(VAL_K, summary.shape[1])
    best = (-1.0, lams[0])
    for lam in lams:
        top = np.asarray(_val_topk(k_vs, evals, evecs, proj, lam * mean_diag, context, k=k))
        hits = np.take_along_axis(dense_t, top, axis=1)[keep]
        hr = 100.0 * float(np.mean(hit_ratio(hits, n_t[keep], k)))
        if hr > best[0]:
            best = (hr, lam)
    return best


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


def init_state(train: Array, n: int, config: DistillConfig, optimizer: optax.GradientTransformation) -> DistillState:
    """X^s = init_scale·(μ of the first n rows of ``train`` drawn with ``config.seed``), fresh Adam state."""
    rows = np.random.default_rng(config.seed).choice(n, config.n_fake_users, replace=config.n_fake_users > n)
    logits = config.init_scale * train[np.sort(rows)]
    return DistillState(
        logits=logits,
        opt_state=optimizer.init(logits),
        step=jnp.asarray(0, jnp.int32),
        key=jax.random.key_data(jax.random.key(config.seed)),
        lam=jnp.asarray(config.inner_lams[0], jnp.float32),
        loss=jnp.asarray(jnp.nan, jnp.float32),
        best_summary=jnp.zeros_like(logits),
        best_step=jnp.asarray(0, jnp.int32),
        best_val=jnp.asarray(-1.0, jnp.float32),
        best_lam=jnp.asarray(config.inner_lams[0], jnp.float32),
    )


_RESUMABLE_FIELDS = ("steps", "patience", "checkpoint_every")


def save_checkpoint(path: Path, state: DistillState, config: DistillConfig, n_rows: int) -> None:
    """Write the whole state (host arrays) and the config to ``path`` atomically (pickle)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("wb") as f:
        pickle.dump({"config": asdict(config), "n_rows": n_rows, "state": jax.device_get(state)}, f)
    tmp.replace(path)


def load_checkpoint(path: Path, config: DistillConfig, n_rows: int) -> DistillState:
    """Read a state written by :func:`save_checkpoint` for the same config and data size.

    Raises:
        ValueError: the checkpoint was written with another config (other than ``steps``,
            ``patience``, ``checkpoint_every``) or another number of training rows.
    """
    with Path(path).open("rb") as f:
        saved = pickle.load(f)
    theirs = {k: v for k, v in saved["config"].items() if k not in _RESUMABLE_FIELDS}
    ours = {k: v for k, v in asdict(config).items() if k not in _RESUMABLE_FIELDS}
    if theirs != ours or saved["n_rows"] != n_rows:
        diff = sorted(k for k in ours if theirs.get(k) != ours[k])
        raise ValueError(f"checkpoint {path} was written for another run (differs in {diff or ['n_rows']})")
    return jax.tree_util.tree_map(jnp.asarray, saved["state"])


def _validated(state: DistillState, context: Array, targets: sp.csr_matrix, config: DistillConfig,
               keep_top: int) -> DistillState:
    """Score the sparsified form of a fresh draw on validation; keep it if it is the best so far.

    Its λ also becomes the inner λ of the following training steps.
    """
    draw = _draw_jit(state.logits, _keys(state)[2], gamma=config.gamma, tau=config.tau, noise=config.noise)
    stored = jnp.asarray(sparsify(np.asarray(draw), threshold=config.threshold, keep_top=keep_top).toarray())
    hr, lam = validate(stored, context, targets, lams=config.inner_lams, depth=config.depth)
    state = state._replace(lam=jnp.asarray(lam, jnp.float32))
    if hr > float(state.best_val):
        state = state._replace(best_summary=stored, best_step=state.step, best_val=jnp.asarray(hr, jnp.float32),
                               best_lam=state.lam)
    return state


_draw_jit = jax.jit(draw_summary, static_argnames=("gamma", "tau", "noise"), compiler_options=COMPILER_OPTIONS)


def distill(
    train: sp.csr_matrix,
    *,
    val_context: sp.csr_matrix,
    val_targets: sp.csr_matrix,
    config: DistillConfig,
    checkpoint_path: Path | None = None,
    progress: Progress | None = None,
) -> DistillResult:
    """Distil ``train`` into ``config.n_fake_users`` fake users (Distill-CF, §4 of the paper).

    Args:
        train: (n, |I|) real rows (binary or in [0, 1]).
        val_context: (m, |I|) validation fold-in rows; their items are excluded from the ranking.
        val_targets: (m, |I|) binary validation targets.
        config: hyper-parameters.
        checkpoint_path: if given, the state is saved there every ``config.checkpoint_every``
            steps and a run resumes from it when it exists (same result as an uninterrupted run).
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
    n = train.shape[0]
    keep_top = config.keep_top or int(np.ceil(config.keep_ratio * train.nnz / n))
    padded = np.zeros((-(-n // PAD_ROWS) * PAD_ROWS, train.shape[1]), np.float32)
    padded[:n] = train.toarray()
    x, n_rows = jnp.asarray(padded), jnp.asarray(n, jnp.int32)
    context = jnp.asarray(val_context.toarray(), jnp.float32)
    targets = sp.csr_matrix(val_targets)
    optimizer = make_optimizer(config)
    if checkpoint_path is not None and Path(checkpoint_path).exists():
        state = load_checkpoint(checkpoint_path, config, n)
    else:
        state = _validated(init_state(x, n, config, optimizer), context, targets, config, keep_top)
    real_rowsum = jnp.asarray(train.sum() / n, jnp.float32)
    step_seconds: list[float] = []
    while int(state.step) < config.steps and int(state.step - state.best_step) < config.patience:
        tic = time.perf_counter()
        state = jax.block_until_ready(train_step(state, x, n_rows, real_rowsum, config=config))
        step_seconds.append(time.perf_counter() - tic)
        done = int(state.step)
        if done % config.eval_every == 0 or done == config.steps:
            state = _validated(state, context, targets, config, keep_top)
        if checkpoint_path is not None and done % config.checkpoint_every == 0:
            save_checkpoint(checkpoint_path, state, config, n)
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
    )


PERIOD_CONFIG = DistillConfig(n_fake_users=20, gamma=200, steps=150, patience=50, eval_every=10,
                              batch_size=None, checkpoint_every=10, noise="independent")
"""Defaults for one continual period (tens to a few thousand bags, |I| ≤ ~10k), chosen on the
periods' own validation hold-out (μ = 10): 30 steps stopped at the last step (still improving);
with 150 steps validation HR@100 rose 46.0 → 47.6, 39.9 → 43.2 and 32.5 → 35.1 (ml-100k periods
0, 5, 10). γ = 200 beat γ = 50 on ml-100k periods 3, 10 (47.1 → 49.7, 35.1 → 37.4) and
ml-latest-small periods 5, 12 (25.7 → 25.8, 31.6 → 32.6): with |I| ≈ 10k items, a γ = 50 draw
is too diffuse (its mass is ≤ γ, below a real bag's). A period costs 3–14 s on 2 cores.
With μ this small the independent noise is cheap, so periods keep the paper's sampler: on ml-100k
(bench/continual.py, 17 periods, μ = 10) Distill-CF replay scored mean nDCG@10 21.48 / 21.59 /
21.62 / 20.45 / 21.12 with it and 20.33 / 21.40 / 21.71 / 20.63 / 20.98 with pooled noise
(seeds 0–4), distilling in 42 s instead of 26 s."""


def holdout_fold(rows: sp.csr_matrix, *, fraction: float = 0.2, seed: int = 0) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Per-row seeded hold-out: ``fraction`` of each row's items (≥ 1, rows with ≥ 2 items) as targets.

    Args:
        rows: (n, |I|) csr rows.
        fraction: share of each row's items held out.
        seed: RNG seed.

    Returns:
        (kept, held) csr matrices with kept + held == rows.
    """
    rows = sp.csr_matrix(rows, dtype=np.float32)
    eligible = np.flatnonzero(np.diff(rows.indptr) >= 2)
    return hold_out_items(rows, eligible, fraction=fraction, rng=np.random.default_rng(seed))


def distill_rows(
    rows: sp.csr_matrix,
    *,
    config: DistillConfig = PERIOD_CONFIG,
    progress: Progress | None = None,
    checkpoint_path: Path | None = None,
) -> DistillResult:
    """Distil one period's bags, validating on a seeded 20% hold-out of each bag.

    The summary is distilled from the remaining 80% of each bag (the held-out items only pick
    the step and λ). ``PERIOD_CONFIG``: μ = 20, γ = 200, ≤ 150 full-batch steps, validation every
    10; μ is capped at the number of bags.

    Args:
        rows: (n, |I|) binary bags of the period.
        config: hyper-parameters; ``n_fake_users`` is capped at n.
        progress: forwarded to :func:`distill`.
        checkpoint_path: forwarded to :func:`distill`.
    """
    kept, held = holdout_fold(rows, seed=config.seed)
    config = replace(config, n_fake_users=min(config.n_fake_users, rows.shape[0]))
    return distill(kept, val_context=kept, val_targets=held, config=config,
                   checkpoint_path=checkpoint_path, progress=progress)
