"""Multinomial variational autoencoder (MultVAE) with a growing item catalogue.

Liang, Krishnan, Hoffman, Jebara, *Variational Autoencoders for Collaborative Filtering*,
WWW 2018, §2: architecture ``[I → 600 → 200 → 600 → I]`` with tanh, L2-normalised input,
dropout on the input, loss per row ``−Σ_i x_i·log softmax(f(z))_i + β·KL(q(z|x) ‖ N(0, I))``
with ``β = min(cap, step / anneal_steps)`` (§2.2.2, annealing), Adam.

Continual-learning extras (DESIGN.md §4):
- rows may be fractional (Distill-CF summary rows): the multinomial term is a weighted sum;
- the item axis grows: :func:`grow_state` pads the input/output layers (old weights kept, new ones
  initialised) and the Adam moments with zeros, so old items' logits are unchanged;
- items not seen yet (``item_mask`` False) get logit −inf in the loss and in ranking;
- an optional :class:`DistillTerm` adds ADER's knowledge-distillation loss (see ``models.ader``).

Training state (weights, Adam state, step counter, annealing length) is an explicit
:class:`MVAEState` that :func:`save_state` / :func:`load_state` write to / read from one file.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from models.splits import hold_out_items

# Names of the parameters and, for those with an item axis, which axis it is.
_ITEM_AXIS = {"enc0.weight": 1, "dec1.weight": 0, "dec1.bias": 0}
_PARAM_NAMES = ("enc0.weight", "enc0.bias", "enc1.weight", "enc1.bias",
                "dec0.weight", "dec0.bias", "dec1.weight", "dec1.bias")


@dataclass(frozen=True)
class MVAEConfig:
    """Hyper-parameters of MultVAE training (Liang 2018 defaults).

    Attributes:
        hidden: width of the hidden layers (600).
        latent: latent dimension (200).
        dropout: dropout probability on the normalised input (0.5).
        lr: Adam learning rate.
        batch_size: rows per update.
        epochs: maximum passes over the rows per :func:`train_mvae` call.
        anneal_cap: β cap (0.2).
        anneal_steps: updates for β to reach 1 (β = min(cap, step/anneal_steps)); None scales it to
            the updates planned in the first training call: ``epochs·n_batches·anneal_horizon /
            anneal_cap``, fixed in the state from then on (warm starts keep β at the cap).
        anneal_horizon: fraction of the planned updates after which β reaches the cap when
            ``anneal_steps`` is None (Liang's ML-20M schedule reaches it at ≈ 0.85).
        patience: epochs without a better validation nDCG@100 before stopping.
        seed: seed of the initialisation, batch order, dropout and sampling.
        device: "cpu" or "cuda" (an error if CUDA is not available).
    """

    hidden: int = 600
    latent: int = 200
    dropout: float = 0.5
    lr: float = 1e-3
    batch_size: int = 500
    epochs: int = 200
    anneal_cap: float = 0.2
    anneal_steps: int | None = None
    anneal_horizon: float = 0.85
    patience: int = 20
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        for name in ("hidden", "latent", "batch_size", "epochs", "patience"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.anneal_steps is not None and self.anneal_steps < 1:
            raise ValueError(f"anneal_steps must be >= 1 or None, got {self.anneal_steps}")
        if self.anneal_cap < 0.0:
            raise ValueError(f"anneal_cap must be >= 0, got {self.anneal_cap}")
        if not 0.0 < self.anneal_horizon <= 1.0:
            raise ValueError(f"anneal_horizon must be in (0, 1], got {self.anneal_horizon}")


@dataclass(frozen=True)
class MVAEState:
    """Everything needed to resume or use a MultVAE (all tensors on CPU).

    Attributes:
        params: parameter name → tensor (names in ``_PARAM_NAMES``; torch ``F.linear`` layout).
        optim: ``torch.optim.Adam.state_dict()`` for ``params`` in ``_PARAM_NAMES`` order.
        step: updates made so far (drives β annealing).
        anneal_steps: annealing length fixed at the first training call (0 = not trained yet).
        n_items: size of the item axis.
        val_history: validation nDCG@100 per epoch of the last training call.
        best_epoch: epoch (0-based) whose weights were kept in the last training call.
    """

    params: dict[str, torch.Tensor]
    optim: dict
    step: int
    anneal_steps: int
    n_items: int
    val_history: tuple[float, ...] = ()
    best_epoch: int = -1


@dataclass(frozen=True)
class DistillTerm:
    """ADER knowledge-distillation term added to every update (Mi et al., RecSys 2020, §3.3).

    Loss = ``weight · mean_u [−Σ_{i∈old} softmax(old_logits_u)_i · log softmax(new_logits_u[old])_i]``
    on a batch of exemplar rows; the new model's softmax is restricted to the old items.

    Attributes:
        rows: (m, n_items) exemplar rows (model inputs).
        old_logits: (m, len(old_items)) logits of the previous model on the old items.
        old_items: (n_old,) int64 indices of the items the previous model knew.
        weight: λ_t of ADER's adaptive weighting.
    """

    rows: sp.csr_matrix
    old_logits: np.ndarray
    old_items: np.ndarray
    weight: float


def _xavier(shape: tuple[int, int], g: torch.Generator) -> torch.Tensor:
    bound = math.sqrt(6.0 / (shape[0] + shape[1]))
    return (torch.rand(shape, generator=g) * 2.0 - 1.0) * bound


def init_state(n_items: int, *, config: MVAEConfig) -> MVAEState:
    """Fresh MultVAE: Xavier-uniform weights, N(0, 0.001²) biases (Liang's code), seeded."""
    if n_items < 1:
        raise ValueError(f"n_items must be >= 1, got {n_items}")
    g = torch.Generator().manual_seed(config.seed)
    h, k = config.hidden, config.latent
    shapes = {"enc0": (h, n_items), "enc1": (2 * k, h), "dec0": (h, k), "dec1": (n_items, h)}
    params: dict[str, torch.Tensor] = {}
    for layer, shape in shapes.items():
        params[f"{layer}.weight"] = _xavier(shape, g)
        params[f"{layer}.bias"] = torch.randn(shape[0], generator=g) * 1e-3
    return MVAEState(params=params, optim={}, step=0, anneal_steps=0, n_items=n_items)


def grow_state(state: MVAEState, n_items: int, *, seed: int = 0) -> MVAEState:
    """Widen the item axis to ``n_items``: old weights kept, new ones initialised, Adam moments 0.

    Old items' logits for a context without new items are unchanged (the new input columns multiply
    zeros, the new output rows only add logits for new items).
    """
    if n_items < state.n_items:
        raise ValueError(f"n_items must be >= the state's {state.n_items}, got {n_items}")
    if n_items == state.n_items:
        return state
    extra = n_items - state.n_items
    g = torch.Generator().manual_seed(seed + 7919 * n_items)
    params = dict(state.params)
    hidden = params["enc0.weight"].shape[0]
    bound = math.sqrt(6.0 / (hidden + n_items))
    for name, axis in _ITEM_AXIS.items():
        old = params[name]
        shape = list(old.shape)
        shape[axis] = extra
        new = (torch.rand(shape, generator=g) * 2.0 - 1.0) * bound if old.dim() == 2 else \
            torch.randn(shape, generator=g) * 1e-3
        params[name] = torch.cat([old, new], dim=axis)
    optim = _grow_optim(state.optim, extra)
    return replace(state, params=params, optim=optim, n_items=n_items)


def _grow_optim(optim: dict, extra: int) -> dict:
    if not optim:
        return optim
    states = {}
    for idx, entry in optim["state"].items():
        name = _PARAM_NAMES[idx]
        entry = dict(entry)
        if name in _ITEM_AXIS:
            axis = _ITEM_AXIS[name]
            for key in ("exp_avg", "exp_avg_sq"):
                moment = entry[key]
                shape = list(moment.shape)
                shape[axis] = extra
                entry[key] = torch.cat([moment, moment.new_zeros(shape)], dim=axis)
        states[idx] = entry
    return {"state": states, "param_groups": optim["param_groups"]}


def _forward(params: dict[str, torch.Tensor], x: torch.Tensor, *, dropout: float,
             g: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Logits, μ, log σ² for dense rows ``x``; stochastic (dropout + sampling) iff ``g`` is given."""
    h = x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)
    if g is not None and dropout > 0.0:
        keep = torch.rand(h.shape, generator=g, device=h.device) >= dropout
        h = h * keep / (1.0 - dropout)
    h = torch.tanh(F.linear(h, params["enc0.weight"], params["enc0.bias"]))
    stats = F.linear(h, params["enc1.weight"], params["enc1.bias"])
    latent = stats.shape[1] // 2
    mu, logvar = stats[:, :latent], stats[:, latent:]
    z = mu
    if g is not None:
        eps = torch.randn(mu.shape, generator=g, device=mu.device)
        z = mu + eps * torch.exp(0.5 * logvar)
    h = torch.tanh(F.linear(z, params["dec0.weight"], params["dec0.bias"]))
    return F.linear(h, params["dec1.weight"], params["dec1.bias"]), mu, logvar


def _masked_log_softmax(logits: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """log softmax over the unmasked items; masked entries are 0 (so 0·(−inf) never happens)."""
    if mask is None:
        return F.log_softmax(logits, dim=1)
    logp = F.log_softmax(logits.masked_fill(~mask, -math.inf), dim=1)
    return logp.masked_fill(~mask, 0.0)


def vae_loss(params: dict[str, torch.Tensor], x: torch.Tensor, *, beta: float, dropout: float,
             mask: torch.Tensor | None, g: torch.Generator) -> torch.Tensor:
    """Mean over rows of ``−Σ_i x_i·log softmax(logits)_i + β·KL(N(μ, σ²) ‖ N(0, I))`` (Liang §2.2)."""
    logits, mu, logvar = _forward(params, x, dropout=dropout, g=g)
    nll = -(x * _masked_log_softmax(logits, mask)).sum(dim=1).mean()
    kl = 0.5 * (-logvar + logvar.exp() + mu.pow(2) - 1.0).sum(dim=1).mean()
    return nll + beta * kl


def _dense(rows: sp.csr_matrix, index: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(rows[index].toarray().astype(np.float32, copy=False)).to(device)


def _distill_loss(params: dict[str, torch.Tensor], term: DistillTerm, index: np.ndarray,
                  device: torch.device) -> torch.Tensor:
    logits, _, _ = _forward(params, _dense(term.rows, index, device), dropout=0.0, g=None)
    old_items = torch.from_numpy(term.old_items).to(device)
    teacher = F.softmax(torch.from_numpy(term.old_logits[index]).to(device), dim=1)
    student = F.log_softmax(logits[:, old_items], dim=1)
    return -(teacher * student).sum(dim=1).mean()


def _anneal_steps(config: MVAEConfig, n_batches: int) -> int:
    """Updates over which β would reach 1, so that β hits the cap at ``anneal_horizon`` of the plan."""
    if config.anneal_steps is not None:
        return config.anneal_steps
    planned = config.epochs * n_batches
    if config.anneal_cap <= 0.0:
        return planned  # β ≡ 0 whatever the length
    return max(1, math.ceil(planned * config.anneal_horizon / config.anneal_cap))


def ndcg_at_k(scores: torch.Tensor, targets: sp.csr_matrix, *, k: int = 100) -> float:
    """Mean nDCG@k (binary relevance, DESIGN.md §5) of rows with ≥ 1 target; for early stopping."""
    n_targets = np.diff(targets.indptr)
    top = torch.topk(scores, min(k, scores.shape[1]), dim=1).indices.cpu().numpy()
    dense = targets.toarray() > 0
    hits = np.take_along_axis(dense, top, axis=1)
    discounts = 1.0 / np.log2(np.arange(top.shape[1]) + 2.0)
    dcg = (hits * discounts).sum(axis=1)
    ideal = np.cumsum(discounts)[np.minimum(n_targets, top.shape[1]) - 1]
    valid = n_targets > 0
    return float((dcg[valid] / ideal[valid]).mean()) if valid.any() else 0.0


def holdout_fold(rows: sp.csr_matrix, *, user_fraction: float = 0.1, item_fraction: float = 0.2,
                 seed: int = 0, eligible: np.ndarray | None = None,
                 ) -> tuple[sp.csr_matrix, sp.csr_matrix, sp.csr_matrix]:
    """Seeded validation fold of training rows: hold out some items of some rows.

    A ``user_fraction`` of the eligible rows with ≥ 2 items (at least one row) is picked; from
    each, ``max(1, round(item_fraction·nnz))`` random items become validation targets, the rest
    stays as both training data and validation context.

    Args:
        rows: (n, I) training rows.
        user_fraction: share of eligible rows that get a held-out part.
        item_fraction: share of a picked row's items held out.
        seed: seed of both draws.
        eligible: (n,) bool, rows that may be picked (e.g. real rows, not summaries); default all.

    Returns:
        ``(train_rows, val_context, val_targets)``: train_rows (n, I) without the held-out items;
        val_context and val_targets (m, I) for the m picked rows.
    """
    rows = sp.csr_matrix(rows, dtype=np.float32)
    if not (0.0 < user_fraction <= 1.0 and 0.0 < item_fraction < 1.0):
        raise ValueError(f"user_fraction must be in (0, 1] and item_fraction in (0, 1), "
                         f"got {user_fraction}, {item_fraction}")
    ok = np.diff(rows.indptr) >= 2
    if eligible is not None:
        ok &= np.asarray(eligible, dtype=bool)
    candidates = np.flatnonzero(ok)
    if candidates.size == 0:
        raise ValueError("no eligible row with >= 2 items to hold out")
    rng = np.random.default_rng(seed)
    picked = np.sort(rng.choice(candidates, max(1, round(user_fraction * candidates.size)), replace=False))
    train, held = hold_out_items(rows, picked, fraction=item_fraction, rng=rng)
    return train, train[picked], held[picked]


def _device(config: MVAEConfig) -> torch.device:
    if config.device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {config.device!r} asked for but CUDA is not available")
    return torch.device(config.device)


def _mask_tensor(item_mask: np.ndarray | None, n_items: int, device: torch.device) -> torch.Tensor | None:
    if item_mask is None:
        return None
    mask = np.asarray(item_mask, dtype=bool)
    if mask.shape != (n_items,):
        raise ValueError(f"item_mask must have shape ({n_items},), got {mask.shape}")
    return torch.from_numpy(mask).to(device)


def train_mvae(rows: sp.csr_matrix, *, config: MVAEConfig, init: MVAEState | None = None,
               item_mask: np.ndarray | None = None,
               validation: tuple[sp.csr_matrix, sp.csr_matrix] | None = None,
               distill: DistillTerm | None = None,
               progress: Callable[[int, float, float], None] | None = None) -> MVAEState:
    """Train (or continue training) a MultVAE on ``rows``.

    Args:
        rows: (n, I) non-negative rows, binary or fractional (summary rows); I ≥ ``init.n_items``.
        config: hyper-parameters.
        init: state to warm-start from (grown to I items if needed); None = fresh initialisation.
        item_mask: (I,) bool, False for items not seen yet: training runs on the seen columns only
            (exactly as if unseen logits were −inf in the loss: their weights get no gradient and
            stay as they are); entries of ``rows``/``validation`` on unseen items are ignored.
        validation: (context, targets), both (m, I): early stopping on nDCG@100 of ranking the
            targets from the context (context items excluded); the best epoch's state is returned.
            None = train ``config.epochs`` epochs and return the last state.
        distill: ADER distillation term added to every update.
        progress: called as ``progress(epoch, mean_train_loss, val_ndcg100)`` after each epoch.

    Returns:
        The new state (the input ``init`` is not modified).
    """
    rows = sp.csr_matrix(rows, dtype=np.float32)
    n_rows, n_items = rows.shape
    if n_rows == 0:
        raise ValueError("rows must have at least one row")
    device = _device(config)
    state = init_state(n_items, config=config) if init is None else grow_state(init, n_items, seed=config.seed)
    if item_mask is not None:
        return _train_on_columns(rows, state, np.flatnonzero(_mask_tensor(item_mask, n_items, torch.device("cpu"))),
                                 config=config, validation=validation, distill=distill, progress=progress)
    params = {name: state.params[name].clone().to(device).requires_grad_(True) for name in _PARAM_NAMES}
    optimiser = torch.optim.Adam([params[name] for name in _PARAM_NAMES], lr=config.lr)
    if state.optim:
        optimiser.load_state_dict(state.optim)
    n_batches = math.ceil(n_rows / config.batch_size)
    anneal_steps = state.anneal_steps or _anneal_steps(config, n_batches)
    rng = np.random.default_rng([config.seed, state.step])
    g = torch.Generator(device=device).manual_seed(config.seed * 1_000_003 + state.step)
    step, history, best, best_epoch, best_snapshot = state.step, [], -math.inf, -1, None
    for epoch in range(config.epochs):
        order = rng.permutation(n_rows)
        total = 0.0
        for start in range(0, n_rows, config.batch_size):
            beta = min(config.anneal_cap, step / anneal_steps)
            x = _dense(rows, order[start:start + config.batch_size], device)
            loss = vae_loss(params, x, beta=beta, dropout=config.dropout, mask=None, g=g)
            if distill is not None and distill.weight > 0.0:
                pick = rng.choice(distill.rows.shape[0], min(config.batch_size, distill.rows.shape[0]),
                                  replace=False)
                loss = loss + distill.weight * _distill_loss(params, distill, pick, device)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            step += 1
            total += float(loss.detach())
        score = math.nan
        if validation is not None:
            score = _validate(params, validation, None, device)
            history.append(score)
            if score > best:
                best, best_epoch = score, epoch
                best_snapshot = _snapshot(params, optimiser, step)
        if progress is not None:
            progress(epoch, total / n_batches, score)
        if validation is not None and epoch - best_epoch >= config.patience:
            break
    if best_snapshot is None:
        best_snapshot, best_epoch = _snapshot(params, optimiser, step), config.epochs - 1
    kept_params, kept_optim, kept_step = best_snapshot
    return MVAEState(params=kept_params, optim=kept_optim, step=kept_step, anneal_steps=anneal_steps,
                     n_items=n_items, val_history=tuple(history), best_epoch=best_epoch)


def _train_on_columns(rows: sp.csr_matrix, state: MVAEState, idx: np.ndarray, *, config: MVAEConfig,
                      validation: tuple[sp.csr_matrix, sp.csr_matrix] | None, distill: DistillTerm | None,
                      progress: Callable[[int, float, float], None] | None) -> MVAEState:
    """Train the sub-network of the item columns ``idx`` and write it back into ``state``."""
    if validation is not None:
        validation = tuple(sp.csr_matrix(m, dtype=np.float32)[:, idx] for m in validation)
    if distill is not None:
        pos = np.searchsorted(idx, distill.old_items)
        if np.any(pos >= idx.size) or np.any(idx[np.minimum(pos, idx.size - 1)] != distill.old_items):
            raise ValueError("distill.old_items must all be inside item_mask")
        distill = replace(distill, rows=sp.csr_matrix(distill.rows)[:, idx], old_items=pos.astype(np.int64))
    sub = train_mvae(rows[:, idx], config=config, init=_restrict(state, idx), validation=validation,
                     distill=distill, progress=progress)
    return _embed(state, sub, idx)


def _restrict(state: MVAEState, idx: np.ndarray) -> MVAEState:
    """The state's sub-network on item columns ``idx`` (weights and Adam moments)."""
    index = torch.from_numpy(idx)
    params = {name: (t.index_select(_ITEM_AXIS[name], index) if name in _ITEM_AXIS else t)
              for name, t in state.params.items()}
    optim = state.optim
    if optim:
        states = {}
        for i, entry in optim["state"].items():
            name = _PARAM_NAMES[i]
            states[i] = {key: (val.index_select(_ITEM_AXIS[name], index)
                               if name in _ITEM_AXIS and key in ("exp_avg", "exp_avg_sq") else val)
                         for key, val in entry.items()}
        optim = {"state": states, "param_groups": optim["param_groups"]}
    return replace(state, params=params, optim=optim, n_items=idx.size)


def _embed(full: MVAEState, sub: MVAEState, idx: np.ndarray) -> MVAEState:
    """Write a sub-network trained on columns ``idx`` back into ``full`` (other columns unchanged)."""
    index = torch.from_numpy(idx)
    params = {name: (full.params[name].index_copy(_ITEM_AXIS[name], index, t) if name in _ITEM_AXIS else t)
              for name, t in sub.params.items()}
    states = {}
    for i, entry in sub.optim["state"].items():
        name = _PARAM_NAMES[i]
        entry = dict(entry)
        if name in _ITEM_AXIS:
            old = full.optim["state"][i] if full.optim else {}
            for key in ("exp_avg", "exp_avg_sq"):
                base = old[key] if key in old else torch.zeros_like(full.params[name])
                entry[key] = base.index_copy(_ITEM_AXIS[name], index, entry[key])
        states[i] = entry
    return replace(sub, params=params, optim={"state": states, "param_groups": sub.optim["param_groups"]},
                   n_items=full.n_items)


def _snapshot(params: dict[str, torch.Tensor], optimiser: torch.optim.Optimizer,
              step: int) -> tuple[dict[str, torch.Tensor], dict, int]:
    kept = {name: p.detach().to("cpu", copy=True) for name, p in params.items()}
    opt = optimiser.state_dict()
    opt_state = {idx: {key: (val.detach().to("cpu", copy=True) if torch.is_tensor(val) else val)
                       for key, val in entry.items()} for idx, entry in opt["state"].items()}
    return kept, {"state": opt_state, "param_groups": opt["param_groups"]}, step


@torch.no_grad()
def _validate(params: dict[str, torch.Tensor], validation: tuple[sp.csr_matrix, sp.csr_matrix],
              mask: torch.Tensor | None, device: torch.device) -> float:
    context, targets = (sp.csr_matrix(m, dtype=np.float32) for m in validation)
    scores = _scores(params, context, mask, device)
    return ndcg_at_k(scores, targets, k=100)


def _scores(params: dict[str, torch.Tensor], context: sp.csr_matrix, mask: torch.Tensor | None,
            device: torch.device, *, exclude_context: bool = True, batch_size: int = 2048) -> torch.Tensor:
    """Deterministic logits (no dropout, z = μ); masked (and context, if excluded) items −inf."""
    out = []
    for start in range(0, context.shape[0], batch_size):
        x = _dense(context, np.arange(start, min(start + batch_size, context.shape[0])), device)
        logits, _, _ = _forward(params, x, dropout=0.0, g=None)
        if exclude_context:
            logits = logits.masked_fill(x > 0, -math.inf)
        if mask is not None:
            logits = logits.masked_fill(~mask, -math.inf)
        out.append(logits)
    return torch.cat(out) if out else torch.empty((0, context.shape[1]), device=device)


@torch.no_grad()
def predict_scores(state: MVAEState, context: sp.csr_matrix, *, item_mask: np.ndarray | None = None,
                   exclude_context: bool = True, device: str = "cpu") -> np.ndarray:
    """Ranking scores (logits of the mean latent) for context rows.

    Args:
        state: a trained state.
        context: (m, J) fold-in rows; J may exceed ``state.n_items`` (items the model never saw
            score −inf) but not be smaller.
        item_mask: (J,) bool; False items score −inf.
        exclude_context: give the context's own items −inf (the usual ranking protocol).
        device: where to compute.

    Returns:
        (m, J) float32 scores.
    """
    context = sp.csr_matrix(context, dtype=np.float32)
    width = context.shape[1]
    if width < state.n_items:
        raise ValueError(f"context has {width} item columns, fewer than the model's {state.n_items}")
    dev = torch.device(device)
    params = {name: t.to(dev) for name, t in state.params.items()}
    mask = np.ones(width, dtype=bool) if item_mask is None else np.asarray(item_mask, dtype=bool).copy()
    if mask.shape != (width,):
        raise ValueError(f"item_mask must have shape ({width},), got {mask.shape}")
    mask[state.n_items:] = False
    known = sp.csr_matrix(context[:, :state.n_items])
    scores = _scores(params, known, torch.from_numpy(mask[:state.n_items]).to(dev), dev,
                     exclude_context=exclude_context)
    full = np.full((context.shape[0], width), -np.inf, dtype=np.float32)
    full[:, :state.n_items] = scores.cpu().numpy()
    return full


def state_dict(state: MVAEState) -> dict:
    """The state as plain containers and tensors (what :func:`save_state` writes)."""
    return {"params": state.params, "optim": state.optim, "step": state.step,
            "anneal_steps": state.anneal_steps, "n_items": state.n_items,
            "val_history": list(state.val_history), "best_epoch": state.best_epoch}


def load_state_dict(blob: dict) -> MVAEState:
    """Inverse of :func:`state_dict`."""
    return MVAEState(params=blob["params"], optim=blob["optim"], step=int(blob["step"]),
                     anneal_steps=int(blob["anneal_steps"]), n_items=int(blob["n_items"]),
                     val_history=tuple(blob["val_history"]), best_epoch=int(blob["best_epoch"]))


def save_state(state: MVAEState, path: str | Path) -> None:
    """Write the state to one file (``torch.save`` of plain containers and tensors)."""
    torch.save(state_dict(state), Path(path))


def load_state(path: str | Path) -> MVAEState:
    """Read a state written by :func:`save_state` (tensors only, ``weights_only=True``)."""
    return load_state_dict(torch.load(Path(path), map_location="cpu", weights_only=True))


@torch.no_grad()
def encode(state: MVAEState, rows: sp.csr_matrix, *, device: str = "cpu") -> np.ndarray:
    """Encoder means μ(x) (n, latent) of rows (columns beyond ``state.n_items`` are ignored)."""
    rows = sp.csr_matrix(rows, dtype=np.float32)[:, :state.n_items]
    dev = torch.device(device)
    params = {name: t.to(dev) for name, t in state.params.items()}
    out = []
    for start in range(0, rows.shape[0], 2048):
        x = _dense(rows, np.arange(start, min(start + 2048, rows.shape[0])), dev)
        out.append(_forward(params, x, dropout=0.0, g=None)[1].cpu().numpy())
    latent = state.params["enc1.weight"].shape[0] // 2
    return np.concatenate(out) if out else np.zeros((0, latent), dtype=np.float32)
