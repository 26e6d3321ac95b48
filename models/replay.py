"""The four continual-training strategies of DESIGN.md §3 behind one step function.

After period t finishes, :func:`train_strategy` trains M_t for one strategy:

- ``individual``: rows of period t, warm start from M_{t−1};
- ``joint``: rows of periods ≤ t, cold start;
- ``distill_cf``: rows of period t + Distill-CF summaries S_0..S_{t−1} (fractional rows, each
  rescaled to a real row's mean mass, :func:`as_fake_users`), warm start;
- ``ader``: rows of period t + exemplars E_{t−1} + distillation from M_{t−1} on them
  (``models.ader``), warm start; afterwards E_t is herded from (period t rows ∪ E_{t−1}).

Budgets are explicit: the caller passes the summaries (μ rows per period); ADER keeps
``exemplars_per_period × (periods trained)`` exemplars, by default the same number of rows that
Distill-CF replays at the next period. Every strategy early-stops on the same seeded validation
fold of the current period's rows (:func:`models.mvae.holdout_fold`), so hyper-parameters are
never chosen on the evaluation period.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from models import ader
from models.mvae import MVAEConfig, MVAEState, holdout_fold, load_state_dict, state_dict, train_mvae

STRATEGIES = ("individual", "joint", "distill_cf", "ader")


@dataclass(frozen=True)
class ReplayConfig:
    """Options shared by the strategies.

    Attributes:
        mvae: MultVAE hyper-parameters (each period's training call).
        exemplars_per_period: ADER exemplars added per trained period (set it to Distill-CF's μ).
        lambda_base: ADER's λ_base.
        group_by_item: ADER herding split over rarest-item groups (True) or global (False).
        val_user_fraction: share of the current period's rows that get a validation hold-out.
        val_item_fraction: share of a picked row's items held out.
        seed: seed of the validation fold.
    """

    mvae: MVAEConfig = field(default_factory=MVAEConfig)
    exemplars_per_period: int = 10
    lambda_base: float = ader.LAMBDA_BASE
    group_by_item: bool = True
    val_user_fraction: float = 0.1
    val_item_fraction: float = 0.2
    seed: int = 0

    def __post_init__(self) -> None:
        if self.exemplars_per_period < 0:
            raise ValueError(f"exemplars_per_period must be >= 0, got {self.exemplars_per_period}")


@dataclass(frozen=True)
class StrategyState:
    """A strategy's model after a period plus what it carries to the next one.

    Attributes:
        strategy: one of :data:`STRATEGIES`.
        model: the trained MultVAE M_t.
        periods_trained: how many periods this strategy has trained on (t + 1 after period t).
        rows_used: training rows of the last call (current + replayed/past/exemplar rows).
        seconds: wall time of the last call.
        exemplars: ADER's E_t (None for other strategies).
    """

    strategy: str
    model: MVAEState
    periods_trained: int
    rows_used: int
    seconds: float
    exemplars: ader.Exemplars | None = None


def training_rows(strategy: str, *, current: sp.csr_matrix, past: sp.csr_matrix | None,
                  summaries: sp.csr_matrix | None, previous: StrategyState | None) -> sp.csr_matrix:
    """The rows a strategy trains on: period t's rows first, then what it replays."""
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    extra = None
    if strategy == "joint":
        extra = past
    elif strategy == "distill_cf":
        extra = as_fake_users(summaries, current)
    elif strategy == "ader" and previous is not None and previous.exemplars is not None:
        extra = previous.exemplars.rows
    if extra is None or extra.shape[0] == 0:
        return sp.csr_matrix(current, dtype=np.float32)
    return sp.vstack([current, _widen(sp.csr_matrix(extra), current.shape[1])], format="csr",
                     dtype=np.float32)


def as_fake_users(summaries: sp.csr_matrix | None, current: sp.csr_matrix) -> sp.csr_matrix | None:
    """Summary rows rescaled so that each weighs as much as an average real row of ``current``.

    MultVAE's likelihood of a row is ``−Σ_i x_i·log p_i``, so a row counts in proportion to its
    mass Σ_i x_i, while its encoder input is L2-normalised (scale-free). A Distill-CF row holds
    a fraction of a bag's mass (measured: 7–35% on ml-100k and 1–12% on ml-latest-small, where
    a draw spreads γ units over ~10k items), so replayed as is it would hardly count. Each fake
    user stands for at least one real user, as an ADER exemplar does at full weight; rows without
    mass stay empty.
    """
    if summaries is None or summaries.shape[0] == 0:
        return summaries
    summaries = sp.csr_matrix(summaries, dtype=np.float32)
    mass = np.asarray(summaries.sum(axis=1)).ravel()
    target = current.sum() / max(current.shape[0], 1)
    scale = np.divide(target, mass, out=np.zeros_like(mass), where=mass > 0)
    return sp.csr_matrix(sp.diags(scale.astype(np.float32)) @ summaries)


def _widen(rows: sp.csr_matrix, width: int) -> sp.csr_matrix:
    if rows.shape[1] > width:
        raise ValueError(f"replayed rows have {rows.shape[1]} item columns, more than the current {width}")
    rows.resize((rows.shape[0], width))
    return rows


def train_strategy(strategy: str, *, current: sp.csr_matrix, past: sp.csr_matrix | None,
                   summaries: sp.csr_matrix | None, previous: StrategyState | None,
                   item_mask: np.ndarray, config: ReplayConfig,
                   progress: Callable[[int, float, float], None] | None = None) -> StrategyState:
    """Train one strategy's model for period t.

    Args:
        strategy: one of :data:`STRATEGIES`.
        current: (n_t, I) binary rows of period t.
        past: (n_<t, I) rows of periods < t (used by ``joint`` only).
        summaries: (μ·t, I) Distill-CF summary rows of periods < t, values in [0, 1]
            (used by ``distill_cf`` only).
        previous: this strategy's state after period t−1 (None at the first period).
        item_mask: (I,) bool, items seen through period t.
        config: shared options.
        progress: called as ``progress(epoch, mean_train_loss, val_ndcg100)`` after each epoch.

    Returns:
        The new :class:`StrategyState`.
    """
    start = time.perf_counter()
    if previous is not None and previous.strategy != strategy:
        raise ValueError(f"previous state is for {previous.strategy!r}, not {strategy!r}")
    current = sp.csr_matrix(current, dtype=np.float32)
    rows = training_rows(strategy, current=current, past=past, summaries=summaries, previous=previous)
    eligible = np.arange(rows.shape[0]) < current.shape[0]
    train, val_context, val_targets = holdout_fold(
        rows, user_fraction=config.val_user_fraction, item_fraction=config.val_item_fraction,
        seed=config.seed, eligible=eligible)
    init = None if strategy == "joint" or previous is None else previous.model
    distill = None
    if strategy == "ader" and previous is not None and previous.exemplars is not None:
        distill = ader.distill_term(previous.exemplars, n_seen_items=int(np.sum(item_mask)),
                                    n_current=current.shape[0], width=current.shape[1],
                                    base=config.lambda_base)
    model = train_mvae(train, config=config.mvae, init=init, item_mask=item_mask,
                       validation=(val_context, val_targets), distill=distill, progress=progress)
    periods = 1 if previous is None else previous.periods_trained + 1
    exemplars = None
    if strategy == "ader":
        exemplars = _next_exemplars(model, current, previous, item_mask=item_mask,
                                    budget=config.exemplars_per_period * periods,
                                    group_by_item=config.group_by_item)
    return StrategyState(strategy=strategy, model=model, periods_trained=periods, rows_used=rows.shape[0],
                         seconds=time.perf_counter() - start, exemplars=exemplars)


def _next_exemplars(model: MVAEState, current: sp.csr_matrix, previous: StrategyState | None, *,
                    item_mask: np.ndarray, budget: int, group_by_item: bool) -> ader.Exemplars:
    pool = current
    if previous is not None and previous.exemplars is not None:
        pool = sp.vstack([current, _widen(previous.exemplars.rows.copy(), current.shape[1])], format="csr")
    keep = ader.select_exemplars(model, pool, budget=budget, group_by_item=group_by_item)
    return ader.make_exemplars(model, pool[keep], seen_items=item_mask)


def _csr_blob(m: sp.csr_matrix) -> dict:
    return {"data": torch.from_numpy(m.data.astype(np.float32)), "indices": torch.from_numpy(m.indices.astype(np.int64)),
            "indptr": torch.from_numpy(m.indptr.astype(np.int64)), "shape": list(m.shape)}


def _csr_from(blob: dict) -> sp.csr_matrix:
    return sp.csr_matrix((blob["data"].numpy(), blob["indices"].numpy(), blob["indptr"].numpy()),
                         shape=tuple(blob["shape"]))


def save_strategy_state(state: StrategyState, path: str | Path) -> None:
    """Write a strategy state (model, exemplars, counters) to one file."""
    blob = {"strategy": state.strategy, "model": state_dict(state.model),
            "periods_trained": state.periods_trained, "rows_used": state.rows_used, "seconds": state.seconds,
            "exemplars": None}
    if state.exemplars is not None:
        blob["exemplars"] = {"rows": _csr_blob(state.exemplars.rows),
                             "logits": torch.from_numpy(state.exemplars.logits),
                             "old_items": torch.from_numpy(state.exemplars.old_items)}
    torch.save(blob, Path(path))


def load_strategy_state(path: str | Path) -> StrategyState:
    """Read a file written by :func:`save_strategy_state`."""
    blob = torch.load(Path(path), map_location="cpu", weights_only=True)
    exemplars = None
    if blob["exemplars"] is not None:
        e = blob["exemplars"]
        exemplars = ader.Exemplars(rows=_csr_from(e["rows"]), logits=e["logits"].numpy(),
                                   old_items=e["old_items"].numpy())
    return StrategyState(strategy=blob["strategy"], model=load_state_dict(blob["model"]),
                         periods_trained=int(blob["periods_trained"]), rows_used=int(blob["rows_used"]),
                         seconds=float(blob["seconds"]), exemplars=exemplars)
