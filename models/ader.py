"""ADER on MultVAE: herding exemplars, stored logits, adaptive distillation weight.

Mi, Lin, Faltings, *ADER: Adaptively Distilled Exemplar Replay Towards Continual Learning for
Session-based Recommendation*, RecSys 2020, §3. Adapted to user rows:

- an exemplar is a user row (a (user, period) bag or an earlier exemplar);
- selection is herding (Welling 2009; iCaRL) on the MultVAE encoder means, with the budget split
  over items ∝ frequency: each row is grouped under its **rarest item** (lowest count in the pool,
  ties → lowest index), a group gets a share of the budget ∝ its size (largest remainder), and
  herding runs inside each group. ``group_by_item=False`` herds over all rows at once instead.
  The budget counts rows, or interactions (the most rows, split the same way, whose
  interactions fit), so exemplars can be compared with Distill-CF's summaries at equal replayed
  interactions;
- the previous model's logits on the exemplars, restricted to the items it knew, are stored and
  distilled with cross-entropy against the new model's softmax over those items, weighted by each
  exemplar's mass so that it weighs as much as the exemplar's likelihood (``models.mvae.DistillTerm``);
- λ_t = λ_base·√((|I_{t−1}|/|I_t|)·(|E_{t−1}|/|D_t|)), λ_base = 0.8 (ADER Eq. 8).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from models.mvae import DistillTerm, MVAEState, encode, predict_scores

LAMBDA_BASE = 0.8


@dataclass(frozen=True)
class Exemplars:
    """Exemplar rows kept after a period, with the selecting model's logits on them.

    Attributes:
        rows: (m, n_items) exemplar rows.
        logits: (m, len(old_items)) logits of the model that selected them, on ``old_items``.
        old_items: (n_old,) int64 indices of the items that model had seen.
    """

    rows: sp.csr_matrix
    logits: np.ndarray
    old_items: np.ndarray

    def to_arrays(self) -> dict[str, np.ndarray | sp.csr_matrix]:
        """The exemplars as named arrays (what a strategy state file carries)."""
        return {"rows": self.rows, "logits": self.logits, "old_items": self.old_items}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray | sp.csr_matrix]) -> Exemplars:
        """Inverse of :meth:`to_arrays`."""
        return cls(rows=sp.csr_matrix(arrays["rows"], dtype=np.float32), logits=np.asarray(arrays["logits"]),
                   old_items=np.asarray(arrays["old_items"], dtype=np.int64))


def adaptive_weight(*, n_old_items: int, n_items: int, n_exemplars: int, n_current: int,
                    base: float = LAMBDA_BASE) -> float:
    """ADER's λ_t = base·√((|I_{t−1}|/|I_t|)·(|E_{t−1}|/|D_t|)) (Mi et al. 2020, Eq. 8)."""
    if n_items < 1 or n_current < 1:
        raise ValueError(f"n_items and n_current must be >= 1, got {n_items}, {n_current}")
    if n_old_items < 0 or n_exemplars < 0:
        raise ValueError(f"n_old_items and n_exemplars must be >= 0, got {n_old_items}, {n_exemplars}")
    return base * float(np.sqrt((n_old_items / n_items) * (n_exemplars / n_current)))


def herding(features: np.ndarray, budget: int, sizes: np.ndarray | None = None) -> np.ndarray:
    """Herding selection: greedily pick rows whose running mean best tracks the mean feature.

    Features are L2-normalised; step k picks the unpicked row p minimising
    ‖μ − (Σ_{j<k} f_j + f_p)/k‖ (iCaRL, Rebuffi et al. 2017, Alg. 4). Picking stops when the
    next pick would take the picked rows' total size past ``budget``.

    Args:
        features: (n, d) row features.
        budget: total size of the picked rows.
        sizes: (n,) size of each row (its interactions); default 1 each (a budget in rows).

    Returns:
        int64 indices in pick order.
    """
    n = features.shape[0]
    sizes = np.ones(n, dtype=np.int64) if sizes is None else np.asarray(sizes, dtype=np.int64)
    f = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    target = f.mean(axis=0)
    running = np.zeros_like(target)
    free = np.ones(n, dtype=bool)
    picked: list[int] = []
    used = 0
    while len(picked) < n:
        dist = np.linalg.norm(target - (running + f) / (len(picked) + 1), axis=1)
        dist[~free] = np.inf
        best = int(np.argmin(dist))
        if used + sizes[best] > budget:
            break
        picked.append(best)
        free[best], used = False, used + sizes[best]
        running += f[best]
    return np.asarray(picked, dtype=np.int64)


def allocate_budget(group_sizes: np.ndarray, budget: int) -> np.ndarray:
    """Split ``budget`` over groups ∝ size by largest remainder, never above a group's size.

    Ties in the remainder go to the larger group, then to the lower group index.
    """
    sizes = np.asarray(group_sizes, dtype=np.int64)
    budget = min(max(budget, 0), int(sizes.sum()))
    if budget == 0:
        return np.zeros_like(sizes)
    quota = budget * sizes / sizes.sum()
    counts = np.minimum(np.floor(quota).astype(np.int64), sizes)
    order = np.lexsort((np.arange(sizes.size), -sizes, -(quota - counts)))
    while counts.sum() < budget:
        for g in order:
            if counts.sum() == budget:
                break
            if counts[g] < sizes[g]:
                counts[g] += 1
    return counts


def rarest_items(rows: sp.csr_matrix) -> np.ndarray:
    """Representative item of each row: its item with the lowest count in ``rows`` (ties → lowest index)."""
    rows = sp.csr_matrix(rows)
    counts = np.asarray((rows > 0).sum(axis=0)).ravel()
    lengths = np.diff(rows.indptr)
    row_of = np.repeat(np.arange(rows.shape[0]), lengths)
    order = np.lexsort((rows.indices, counts[rows.indices], row_of))  # by row, then count, then item
    out = np.full(rows.shape[0], -1, dtype=np.int64)
    filled = lengths > 0
    out[filled] = rows.indices[order[rows.indptr[:-1][filled]]]
    return out


def select_exemplars(state: MVAEState, rows: sp.csr_matrix, *, budget: int, group_by_item: bool = True,
                     in_interactions: bool = False) -> np.ndarray:
    """Indices of the exemplar rows within ``budget``, herded on the encoder means of ``state``.

    Args:
        state: the model just trained (its encoder gives the features).
        rows: (n, I) candidate rows (current period rows plus previous exemplars).
        budget: rows to keep, or interactions (non-zeros) the kept rows may hold.
        group_by_item: split the rows over rarest-item groups ∝ group size (module docstring);
            False herds over all rows at once.
        in_interactions: ``budget`` counts interactions: the most rows (found by bisection) whose
            split over the groups, each group's first rows in herding order, holds at most
            ``budget`` of them.

    Returns:
        Sorted int64 row indices.
    """
    rows = sp.csr_matrix(rows)
    features = encode(state, rows)
    sizes = np.diff(rows.indptr) if in_interactions else np.ones(rows.shape[0], dtype=np.int64)
    if not group_by_item:
        return np.sort(herding(features, budget, sizes))
    _, inverse, group_sizes = np.unique(rarest_items(rows), return_inverse=True, return_counts=True)
    members = [np.flatnonzero(inverse == g) for g in range(group_sizes.size)]
    if not in_interactions:
        quotas = allocate_budget(group_sizes, budget)
        return _take([m[herding(features[m], int(q))] for m, q in zip(members, quotas)], quotas)
    # No more rows than the smallest ones would fill: herd each group only that far (plus one).
    most = int(np.searchsorted(np.cumsum(np.sort(sizes)), budget, side="right"))
    reach = np.minimum(allocate_budget(group_sizes, most) + 1, group_sizes)
    orders = [m[herding(features[m], int(r))] for m, r in zip(members, reach)]

    def pick(n_rows: int) -> np.ndarray:
        return _take(orders, np.minimum(allocate_budget(group_sizes, n_rows), reach))

    low, high = 0, most  # the most rows whose picks fit, by bisection (pick(0) is empty and fits)
    while low < high:
        mid = (low + high + 1) // 2
        low, high = (mid, high) if sizes[pick(mid)].sum() <= budget else (low, mid - 1)
    return pick(low)


def _take(orders: list[np.ndarray], quotas: np.ndarray) -> np.ndarray:
    """The first ``quotas[g]`` rows of each group's order, sorted."""
    picked = [order[:int(q)] for order, q in zip(orders, quotas) if q > 0]
    return np.sort(np.concatenate(picked)) if picked else np.zeros(0, dtype=np.int64)


def make_exemplars(state: MVAEState, rows: sp.csr_matrix, *, seen_items: np.ndarray) -> Exemplars:
    """Store ``rows`` with ``state``'s logits on the items it has seen (``seen_items`` (I,) bool)."""
    old_items = np.flatnonzero(np.asarray(seen_items, dtype=bool)).astype(np.int64)
    logits = predict_scores(state, rows, exclude_context=False)[:, old_items]
    return Exemplars(rows=sp.csr_matrix(rows, dtype=np.float32), logits=logits.astype(np.float32),
                     old_items=old_items)


def distill_term(exemplars: Exemplars, *, n_seen_items: int, n_current: int, width: int | None = None,
                 base: float = LAMBDA_BASE) -> DistillTerm:
    """The distillation term for training on a new period.

    Args:
        exemplars: the previous period's exemplars (|E_{t−1}| rows, |I_{t−1}| old items).
        n_seen_items: |I_t|, items seen through the new period.
        n_current: |D_t|, rows of the new period.
        width: item-axis width of the new training rows; exemplar rows are zero-padded to it.
        base: λ_base.
    """
    rows = exemplars.rows
    if width is not None and rows.shape[1] < width:
        rows = sp.hstack([rows, sp.csr_matrix((rows.shape[0], width - rows.shape[1]))]).tocsr()
    weight = adaptive_weight(n_old_items=exemplars.old_items.size, n_items=n_seen_items,
                             n_exemplars=rows.shape[0], n_current=n_current, base=base)
    return DistillTerm(rows=rows, old_logits=exemplars.logits, old_items=exemplars.old_items, weight=weight)
