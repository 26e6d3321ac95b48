"""Multinomial variational autoencoder (MultVAE) with a growing item catalogue.

Liang, Krishnan, Hoffman, Jebara, *Variational Autoencoders for Collaborative Filtering*,
WWW 2018, §2: architecture ``[I → 600 → 200 → 600 → I]`` with tanh, L2-normalised input,
dropout on the input, loss per row ``−Σ_i x_i·log softmax(f(z))_i + β·KL(q(z|x) ‖ N(0, I))``
with β annealed linearly to a cap (§2.2.2), Adam.

Continual-learning extras:
- one β rule for every training call (:func:`kl_weight`): β depends only on the updates made
  in the current call, so a model trained from scratch and a warm-started one see the same β
  after the same number of updates;
- rows may be fractional (Distill-CF summary rows): the multinomial term is a weighted sum;
- the item axis grows: :func:`grow_state` pads the input/output layers (old weights kept, new ones
  initialised) and the Adam moments with zeros, so old items' logits are unchanged;
- items not seen yet (``item_mask`` False) get logit −inf in the loss and in ranking;
- an optional :class:`DistillTerm` adds ADER's knowledge-distillation loss (see ``models.ader``).

Training state (weights, Adam moments by parameter name, update counter) is an
explicit :class:`MVAEState`; :func:`state_arrays` / :func:`state_from_arrays` turn it into named
NumPy arrays and back (the caller stores them). No I/O here.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import replace

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from models.configs import Device, MVAEConfig
from models.device import deterministic, torch_device
from models.metrics import ranking_metrics

# Names of the parameters and, for those with an item axis, which axis it is.
_ITEM_AXIS = {"enc0.weight": 1, "dec1.weight": 0, "dec1.bias": 0}
_PARAM_NAMES = ("enc0.weight", "enc0.bias", "enc1.weight", "enc1.bias",
                "dec0.weight", "dec0.bias", "dec1.weight", "dec1.bias")
_MOMENTS = ("exp_avg", "exp_avg_sq")
warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state", category=UserWarning)  # Adam's per-element state (the rest, "step", is a scalar)
VAL_KEY = "ndcg@100"


@dataclass(frozen=True)
class MVAEState:
    """Everything needed to resume or use a MultVAE (all tensors on CPU).

    Attributes:
        params: parameter name → tensor (names in ``_PARAM_NAMES``; torch ``F.linear`` layout).
        adam: parameter name → Adam state of that parameter (``step``, ``exp_avg``,
            ``exp_avg_sq``); empty before the first update.
        step: updates made so far, over every training call (seeds the batch order and noise).
        n_items: size of the item axis.
        val_history: validation nDCG@100 (×100) per epoch of the last training call.
        best_epoch: epoch (0-based) whose weights were kept in the last training call.
    """

    params: dict[str, torch.Tensor]
    adam: dict[str, dict[str, torch.Tensor]]
    step: int
    n_items: int
    val_history: tuple[float, ...] = ()
    best_epoch: int = -1


@dataclass(frozen=True)
class DistillTerm:
    """ADER knowledge-distillation term added to every update (Mi et al., RecSys 2020, §3.3, Eq. 7).

    Loss = ``weight · mean_u m_u·[−Σ_{i∈old} softmax(old_logits_u)_i · log softmax(new_logits_u[old])_i]``
    on a batch of exemplar rows, with m_u = Σ_i x_ui the exemplar's mass; the new model's softmax
    is restricted to the old items. In ADER each exemplar is one (session, next item) event, so
    its cross-entropy and its distillation term both weigh one event. Here an exemplar is a bag
    whose multinomial likelihood −Σ_i x_ui·log p_i weighs m_u events; weighting its soft
    cross-entropy (whose targets sum to 1) by m_u keeps the two terms on the same scale.

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


def init_state(n_items: int, *, config: MVAEConfig, seed: int) -> MVAEState:
    """Fresh MultVAE: Xavier-uniform weights, N(0, 0.001²) biases (Liang's code), seeded."""
    if n_items < 1:
        raise ValueError(f"n_items must be >= 1, got {n_items}")
    g = torch.Generator().manual_seed(seed)
    h, k = config.hidden, config.latent
    shapes = {"enc0": (h, n_items), "enc1": (2 * k, h), "dec0": (h, k), "dec1": (n_items, h)}
    params: dict[str, torch.Tensor] = {}
    for layer, shape in shapes.items():
        params[f"{layer}.weight"] = _xavier(shape, g)
        params[f"{layer}.bias"] = torch.randn(shape[0], generator=g) * 1e-3
    return MVAEState(params=params, adam={}, step=0, n_items=n_items)


def grow_state(state: MVAEState, n_items: int, *, seed: int) -> MVAEState:
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
    params, adam = dict(state.params), {name: dict(m) for name, m in state.adam.items()}
    bound = math.sqrt(6.0 / (params["enc0.weight"].shape[0] + n_items))
    for name, axis in _ITEM_AXIS.items():
        old = params[name]
        shape = list(old.shape)
        shape[axis] = extra
        new = (torch.rand(shape, generator=g) * 2.0 - 1.0) * bound if old.dim() == 2 else \
            torch.randn(shape, generator=g) * 1e-3
        params[name] = torch.cat([old, new], dim=axis)
        for key in _MOMENTS if name in adam else ():
            adam[name][key] = torch.cat([adam[name][key], old.new_zeros(shape)], dim=axis)
    return replace(state, params=params, adam=adam, n_items=n_items)


@dataclass(frozen=True)
class Batch:
    """A minibatch of rows as sparse CSR parts: the input layer multiplies only the non-zeros,
    and nothing of size (rows × items) is built but the logits.

    Attributes:
        crow, cols, values: the CSR of the (b, I) rows (values as stored, e.g. fractional).
        rows: (nnz,) the row of each stored value.
        shape: (b, I).
    """

    crow: torch.Tensor
    cols: torch.Tensor
    values: torch.Tensor
    rows: torch.Tensor
    shape: tuple[int, int]

    def with_values(self, values: torch.Tensor) -> torch.Tensor:
        """The sparse (b, I) CSR tensor of these positions holding ``values``."""
        return torch.sparse_csr_tensor(self.crow, self.cols, values, self.shape, check_invariants=False)

    def mass(self) -> torch.Tensor:
        """(b,) row sums Σ_i x_ui."""
        return torch.zeros(self.shape[0], device=self.values.device).index_add_(0, self.rows, self.values)


def to_batch(rows: sp.csr_matrix, index: np.ndarray | None = None, *, device: torch.device | str = "cpu") -> Batch:
    """The rows ``index`` (default all) of a CSR matrix as a :class:`Batch` on ``device``."""
    part = sp.csr_matrix(rows if index is None else rows[index], dtype=np.float32)
    part.sort_indices()
    return Batch(
        crow=torch.from_numpy(part.indptr.astype(np.int64)).to(device),
        cols=torch.from_numpy(part.indices.astype(np.int64)).to(device),
        values=torch.from_numpy(part.data).to(device),
        rows=torch.from_numpy(np.repeat(np.arange(part.shape[0]), np.diff(part.indptr))).to(device),
        shape=part.shape,
    )


def _forward(params: dict[str, torch.Tensor], x: Batch, *, dropout: float,
             g: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Logits, μ, log σ² for the rows ``x``; stochastic (dropout + sampling) iff ``g`` is given.

    The input is L2-normalised per row and dropped out on its non-zeros (zeros stay zero either
    way), then multiplied sparse × dense: O(nnz·hidden) instead of O(b·I·hidden).
    """
    norms = torch.zeros(x.shape[0], device=x.values.device).index_add_(0, x.rows, x.values * x.values)
    h = x.values / norms.sqrt().clamp_min(1e-12)[x.rows]
    if g is not None and dropout > 0.0:
        keep = torch.rand(h.shape, generator=g, device=h.device) >= dropout
        h = h * keep / (1.0 - dropout)
    h = torch.tanh(x.with_values(h) @ params["enc0.weight"].T + params["enc0.bias"])
    stats = F.linear(h, params["enc1.weight"], params["enc1.bias"])
    latent = stats.shape[1] // 2
    mu, logvar = stats[:, :latent], stats[:, latent:]
    z = mu
    if g is not None:
        eps = torch.randn(mu.shape, generator=g, device=mu.device)
        z = mu + eps * torch.exp(0.5 * logvar)
    h = torch.tanh(F.linear(z, params["dec0.weight"], params["dec0.bias"]))
    return F.linear(h, params["dec1.weight"], params["dec1.bias"]), mu, logvar


def vae_loss(params: dict[str, torch.Tensor], x: Batch, *, beta: float, dropout: float,
             g: torch.Generator) -> torch.Tensor:
    """Mean over rows of ``−Σ_i x_i·log softmax(logits)_i + β·KL(N(μ, σ²) ‖ N(0, I))`` (Liang §2.2)."""
    logits, mu, logvar = _forward(params, x, dropout=dropout, g=g)
    logp = F.log_softmax(logits, dim=1)
    nll = -(x.values * logp[x.rows, x.cols]).sum() / x.shape[0]
    kl = 0.5 * (-logvar + logvar.exp() + mu.pow(2) - 1.0).sum(dim=1).mean()
    return nll + beta * kl


def distill_loss(params: dict[str, torch.Tensor], term: DistillTerm, index: np.ndarray,
                 device: torch.device) -> torch.Tensor:
    """ADER's distillation loss on the exemplars ``index`` (mass-weighted, see :class:`DistillTerm`)."""
    x = to_batch(term.rows, index, device=device)
    logits, _, _ = _forward(params, x, dropout=0.0, g=None)
    old_items = torch.from_numpy(term.old_items).to(device)
    teacher = F.softmax(torch.from_numpy(term.old_logits[index]).to(device), dim=1)
    student = F.log_softmax(logits[:, old_items], dim=1)
    return -(x.mass() * (teacher * student).sum(dim=1)).mean()


def kl_weight(updates: int, config: MVAEConfig) -> float:
    """β after ``updates`` updates of the current training call: ``cap·min(1, updates/anneal_updates)``.

    A function of this call's updates only (Liang et al. 2018, §2.2.2, restarted every period):
    every strategy, warm-started or not, sees the same β after the same number of updates.
    """
    if config.anneal_updates == 0:
        return config.anneal_cap
    return config.anneal_cap * min(1.0, updates / config.anneal_updates)


def _adam(params: dict[str, torch.Tensor], state: dict[str, dict[str, torch.Tensor]], *,
          lr: float) -> torch.optim.Adam:
    """``torch.optim.Adam`` over ``params`` with each parameter's saved state installed by name
    (the optimiser keys its state by the parameter tensor). The fused kernel: one pass over each
    parameter instead of a dozen (measured on the 6M parameters of a 5,000-item MVAE, 1 thread:
    3.7 ms a step instead of 26), which needs every state tensor, ``step`` too, on the device."""
    optimiser = torch.optim.Adam(list(params.values()), lr=lr, fused=True)
    for name, entry in state.items():
        p = params[name]
        optimiser.state[p] = {key: value.to(p.device, dtype=torch.float32, copy=True) for key, value in entry.items()}
    return optimiser


def _adam_state(optimiser: torch.optim.Adam, params: dict[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    """The optimiser's state by parameter name, copied to the CPU."""
    return {name: {key: value.detach().to("cpu", copy=True) for key, value in optimiser.state[p].items()}
            for name, p in params.items() if optimiser.state.get(p)}


def _mask_tensor(item_mask: np.ndarray | None, n_items: int, device: torch.device) -> torch.Tensor | None:
    if item_mask is None:
        return None
    mask = np.asarray(item_mask, dtype=bool)
    if mask.shape != (n_items,):
        raise ValueError(f"item_mask must have shape ({n_items},), got {mask.shape}")
    return torch.from_numpy(mask).to(device)


def train_mvae(rows: sp.csr_matrix, *, config: MVAEConfig, seed: int, init: MVAEState | None = None,
               item_mask: np.ndarray | None = None,
               validation: tuple[sp.csr_matrix, sp.csr_matrix] | None = None,
               distill: DistillTerm | None = None,
               progress: Callable[[int, float, float], None] | None = None) -> MVAEState:
    """Train (or continue training) a MultVAE on ``rows``.

    Args:
        rows: (n, I) non-negative rows, binary or fractional (summary rows); I ≥ ``init.n_items``.
        config: hyper-parameters.
        seed: seeds the initialisation, batch order, dropout and sampling.
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
    with deterministic():
        return _train(rows, config=config, seed=seed, init=init, item_mask=item_mask, validation=validation,
                      distill=distill, progress=progress)


def _train(rows: sp.csr_matrix, *, config: MVAEConfig, seed: int, init: MVAEState | None,
           item_mask: np.ndarray | None, validation: tuple[sp.csr_matrix, sp.csr_matrix] | None,
           distill: DistillTerm | None, progress: Callable[[int, float, float], None] | None) -> MVAEState:
    """:func:`train_mvae` after its argument checks, under torch's deterministic algorithms."""
    n_rows, n_items = rows.shape
    device = torch_device(config.device)
    state = init_state(n_items, config=config, seed=seed) if init is None else grow_state(init, n_items, seed=seed)
    if item_mask is not None:
        return _train_on_columns(rows, state, np.flatnonzero(_mask_tensor(item_mask, n_items, torch.device("cpu"))),
                                 config=config, seed=seed, validation=validation, distill=distill,
                                 progress=progress)
    params = {name: state.params[name].clone().to(device).requires_grad_(True) for name in _PARAM_NAMES}
    optimiser = _adam(params, state.adam, lr=config.lr)
    n_batches = math.ceil(n_rows / config.batch_size)
    rng = np.random.default_rng([seed, state.step])
    g = torch.Generator(device=device).manual_seed(seed * 1_000_003 + state.step)
    step, history, best, best_epoch, best_snapshot = state.step, [], -math.inf, -1, None
    for epoch in range(config.epochs):
        order = rng.permutation(n_rows)
        total = 0.0
        for start in range(0, n_rows, config.batch_size):
            beta = kl_weight(step - state.step, config)
            x = to_batch(rows, order[start:start + config.batch_size], device=device)
            loss = vae_loss(params, x, beta=beta, dropout=config.dropout, g=g)
            if distill is not None and distill.weight > 0.0:
                pick = rng.choice(distill.rows.shape[0], min(config.batch_size, distill.rows.shape[0]),
                                  replace=False)
                loss = loss + distill.weight * distill_loss(params, distill, pick, device)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            step += 1
            total += float(loss.detach())
        score = math.nan
        if validation is not None:
            score = _validate(params, validation, device)
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
    kept_params, kept_adam, kept_step = best_snapshot
    return MVAEState(params=kept_params, adam=kept_adam, step=kept_step, n_items=n_items,
                     val_history=tuple(history), best_epoch=best_epoch)


def _train_on_columns(rows: sp.csr_matrix, state: MVAEState, idx: np.ndarray, *, config: MVAEConfig, seed: int,
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
    sub = train_mvae(rows[:, idx], config=config, seed=seed, init=_restrict(state, idx), validation=validation,
                     distill=distill, progress=progress)
    return _embed(state, sub, idx)


def _restrict(state: MVAEState, idx: np.ndarray) -> MVAEState:
    """The state's sub-network on item columns ``idx`` (weights and Adam moments, by name)."""
    index = torch.from_numpy(idx)

    def take(name: str, t: torch.Tensor) -> torch.Tensor:
        return t.index_select(_ITEM_AXIS[name], index) if name in _ITEM_AXIS else t

    params = {name: take(name, t) for name, t in state.params.items()}
    adam = {name: {key: take(name, v) if key in _MOMENTS else v for key, v in entry.items()}
            for name, entry in state.adam.items()}
    return replace(state, params=params, adam=adam, n_items=idx.size)


def _embed(full: MVAEState, sub: MVAEState, idx: np.ndarray) -> MVAEState:
    """Write a sub-network trained on columns ``idx`` back into ``full`` (other columns unchanged;
    their Adam moments are kept, or zero where ``full`` had none)."""
    index = torch.from_numpy(idx)

    def put(name: str, base: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return base.index_copy(_ITEM_AXIS[name], index, t) if name in _ITEM_AXIS else t

    params = {name: put(name, full.params[name], t) for name, t in sub.params.items()}
    adam = {name: {key: put(name, full.adam.get(name, {}).get(key, torch.zeros_like(full.params[name])), v)
                   if key in _MOMENTS else v for key, v in entry.items()}
            for name, entry in sub.adam.items()}
    return replace(sub, params=params, adam=adam, n_items=full.n_items)


def _snapshot(params: dict[str, torch.Tensor], optimiser: torch.optim.Adam,
              step: int) -> tuple[dict[str, torch.Tensor], dict[str, dict[str, torch.Tensor]], int]:
    kept = {name: p.detach().to("cpu", copy=True) for name, p in params.items()}
    return kept, _adam_state(optimiser, params), step


@torch.no_grad()
def _validate(params: dict[str, torch.Tensor], validation: tuple[sp.csr_matrix, sp.csr_matrix],
              device: torch.device, *, block_rows: int = 2048) -> float:
    """Validation nDCG@100 (×100) over the rows with targets, scored ``block_rows`` at a time."""
    context, targets = (sp.csr_matrix(m, dtype=np.float32) for m in validation)
    total, users = 0.0, 0
    for start in range(0, context.shape[0], block_rows):
        block = slice(start, start + block_rows)
        n = int(np.count_nonzero(np.diff(targets[block].indptr)))
        if n:
            scores = _scores(params, context[block], None, device).cpu().numpy()
            total += n * ranking_metrics(scores, targets[block], (VAL_KEY,))[VAL_KEY]
            users += n
    return total / users if users else 0.0


def _scores(params: dict[str, torch.Tensor], context: sp.csr_matrix, mask: torch.Tensor | None,
            device: torch.device, *, exclude_context: bool = True, batch_size: int = 2048) -> torch.Tensor:
    """Deterministic logits (no dropout, z = μ); masked (and context, if excluded) items −inf."""
    out = []
    for start in range(0, context.shape[0], batch_size):
        x = to_batch(context, np.arange(start, min(start + batch_size, context.shape[0])), device=device)
        logits, _, _ = _forward(params, x, dropout=0.0, g=None)
        if exclude_context:
            logits[x.rows, x.cols] = -math.inf
        if mask is not None:
            logits = logits.masked_fill(~mask, -math.inf)
        out.append(logits)
    return torch.cat(out) if out else torch.empty((0, context.shape[1]), device=device)


@torch.no_grad()
def predict_scores(state: MVAEState, context: sp.csr_matrix, *, item_mask: np.ndarray | None = None,
                   exclude_context: bool = True, device: Device = "auto") -> np.ndarray:
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
    dev = torch_device(device)
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


def state_arrays(state: MVAEState) -> dict[str, np.ndarray]:
    """The state as named NumPy arrays (``params/<name>``, ``adam/<name>/<key>``, counters)."""
    out = {f"params/{name}": t.numpy() for name, t in state.params.items()}
    out |= {f"adam/{name}/{key}": v.numpy() for name, entry in state.adam.items() for key, v in entry.items()}
    return out | {
        "step": np.asarray(state.step, dtype=np.int64), "n_items": np.asarray(state.n_items, dtype=np.int64),
        "val_history": np.asarray(state.val_history, dtype=np.float64),
        "best_epoch": np.asarray(state.best_epoch, dtype=np.int64),
    }


def state_from_arrays(arrays: dict[str, np.ndarray]) -> MVAEState:
    """Inverse of :func:`state_arrays` (extra names are ignored)."""
    params, adam = {}, {}
    for name, a in arrays.items():
        kind, _, rest = name.partition("/")
        if kind == "params":
            params[rest] = torch.from_numpy(np.array(a))
        elif kind == "adam":
            param, _, key = rest.rpartition("/")
            adam.setdefault(param, {})[key] = torch.from_numpy(np.array(a))
    missing = sorted(set(_PARAM_NAMES) - set(params))
    if missing:
        raise ValueError(f"state arrays lack parameters {missing}")
    return MVAEState(params=params, adam=adam, step=int(arrays["step"]),
                     n_items=int(arrays["n_items"]), val_history=tuple(float(v) for v in arrays["val_history"]),
                     best_epoch=int(arrays["best_epoch"]))


@torch.no_grad()
def encode(state: MVAEState, rows: sp.csr_matrix, *, device: Device = "auto") -> np.ndarray:
    """Encoder means μ(x) (n, latent) of rows (columns beyond ``state.n_items`` are ignored)."""
    rows = sp.csr_matrix(rows, dtype=np.float32)[:, :state.n_items]
    dev = torch_device(device)
    params = {name: t.to(dev) for name, t in state.params.items()}
    out = []
    for start in range(0, rows.shape[0], 2048):
        x = to_batch(rows, np.arange(start, min(start + 2048, rows.shape[0])), device=dev)
        out.append(_forward(params, x, dropout=0.0, g=None)[1].cpu().numpy())
    latent = state.params["enc1.weight"].shape[0] // 2
    return np.concatenate(out) if out else np.zeros((0, latent), dtype=np.float32)
