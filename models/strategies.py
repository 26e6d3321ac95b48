"""The continual-training strategies: one small object each, one literal registry.

After period t finishes, every strategy trains an MVAE M_t (docs/architecture.md §3). A strategy
declares what it trains on besides period t's rows (:class:`Source`), whether it warm-starts from
its own M_{t−1}, what it carries to the next period and its extra loss; :func:`train_strategy`
is the one training step every strategy shares, so all of them get the same training rules
(the same validation fold of the current rows, early stopping, seeds).

- ``individual``: rows of period t, warm start.
- ``joint``: rows of periods ≤ t, cold start.
- ``distill_cf``: rows of period t + the Distill-CF summaries S_0..S_{t−1} (fractional rows,
  each rescaled to a real row's mean mass, :func:`as_fake_users`), warm start.
- ``ader``: rows of period t + exemplars E_{t−1}, knowledge distillation from M_{t−1} on them
  (:mod:`models.ader`), warm start; carries E_t, herded from (period t rows ∪ E_{t−1}) within
  a budget of rows or, by default, of the interactions Distill-CF's summaries hold.
- ``coreset``: rows of period t + the real users SVP-CF keeps from each earlier period within
  the interactions of that period's summary, warm start.

Every state records what its training replayed (:class:`Replayed`: rows, interactions, mass), so
budgets can be compared in interactions, not only in rows.

Adding a strategy is one entry in :data:`STRATEGIES`; the flows, tasks, catalog exports, CLI and
benchmarks read names and properties from it.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Protocol

import numpy as np
import scipy.sparse as sp

from models import ader
from models.configs import TrainingConfig
from models.mvae import DistillTerm, MVAEState, state_arrays, state_from_arrays, train_mvae
from models.samplers import svp_cf_rows
from models.splits import holdout_fold

Progress = Callable[[int, float, float], None]


class Source(enum.Enum):
    """Data a strategy needs besides the current period's rows (the catalog exports it)."""

    HISTORY = "history"  # every row of the periods before t
    SUMMARIES = "summaries"  # the Distill-CF summaries of the periods before t
    SUMMARY_SIZES = "summary_sizes"  # rows and interactions of each summary of the periods ≤ t


@dataclass(frozen=True)
class PeriodData:
    """What a strategy may train on at period t.

    Attributes:
        current: (n_t, I) binary rows of period t.
        item_mask: (I,) bool, items seen through period t.
        history: (n_<t, I) rows of the periods before t (when the strategy needs HISTORY).
        summaries: (Σ μ, I) Distill-CF summary rows of the periods before t, values in [0, 1]
            (when it needs SUMMARIES).
        summary_sizes: (t+1, 2) rows (fake users) and interactions (non-zeros) of the summaries
            S_0..S_t (when it needs SUMMARY_SIZES).
    """

    current: sp.csr_matrix
    item_mask: np.ndarray
    history: sp.csr_matrix | None = None
    summaries: sp.csr_matrix | None = None
    summary_sizes: np.ndarray | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "current", sp.csr_matrix(self.current, dtype=np.float32))
        object.__setattr__(self, "item_mask", np.asarray(self.item_mask, dtype=bool))
        if self.item_mask.shape != (self.current.shape[1],):
            raise ValueError(f"item_mask must have shape ({self.current.shape[1]},), got {self.item_mask.shape}")


class Carry(Protocol):
    """What a strategy keeps from one period to the next (stored in its state file)."""

    def to_arrays(self) -> dict[str, np.ndarray | sp.csr_matrix]:
        """Named arrays that :meth:`Strategy.restore_carry` turns back into the carry."""


@dataclass(frozen=True)
class Replayed:
    """What a strategy trained on besides period t's own rows: the budget it spent.

    Attributes:
        rows: replayed rows (past bags, fake users or exemplars).
        interactions: their non-zeros.
        mass: their total weight Σ x_ui (what the multinomial likelihood counts).
    """

    rows: int = 0
    interactions: int = 0
    mass: float = 0.0

    @classmethod
    def of(cls, rows: sp.csr_matrix | None) -> Replayed:
        """The budget spent by replaying ``rows`` (None: nothing)."""
        if rows is None:
            return cls()
        return cls(rows=rows.shape[0], interactions=int(rows.nnz), mass=float(rows.sum()))


@dataclass(frozen=True)
class StrategyState:
    """A strategy's model after a period plus what it carries to the next one.

    Attributes:
        strategy: its name in :data:`STRATEGIES`.
        model: the trained MultVAE M_t.
        periods_trained: how many periods this strategy has trained on (t + 1 after period t).
        rows_used: training rows of the last call (current + replayed rows).
        replayed: what the last call replayed besides the current rows.
        carry: what the strategy keeps for the next period (ADER: its exemplars), or None.
    """

    strategy: str
    model: MVAEState
    periods_trained: int
    rows_used: int
    replayed: Replayed = Replayed()
    carry: Carry | None = None


class Strategy:
    """A continual-training strategy: Individual by default; subclasses change what differs."""

    name: ClassVar[str] = "individual"
    needs: ClassVar[frozenset[Source]] = frozenset()
    warm_start: ClassVar[bool] = True
    carries: ClassVar[bool] = False
    """Whether :meth:`carry` keeps something for the next period."""

    def replayed(self, data: PeriodData, previous: StrategyState | None) -> sp.csr_matrix | None:
        """Rows trained on after period t's own (None: nothing replayed)."""
        return None

    def extra_loss(self, data: PeriodData, previous: StrategyState | None,
                   config: TrainingConfig) -> DistillTerm | None:
        """A term added to every update (None: plain MVAE loss)."""
        return None

    def carry(self, model: MVAEState, data: PeriodData, previous: StrategyState | None,
              config: TrainingConfig, periods_trained: int, seed: int) -> Carry | None:
        """What to keep for period t+1 (None: nothing); ``seed`` seeds any random choice in it."""
        return None

    def restore_carry(self, arrays: dict[str, np.ndarray | sp.csr_matrix]) -> Carry | None:
        """Inverse of the carry's ``to_arrays`` (a strategy without carry ignores them)."""
        return None


class Individual(Strategy):
    """Period t's rows only, warm-started from M_{t−1}."""


class Joint(Strategy):
    """Every row so far, trained from scratch each period."""

    name = "joint"
    needs = frozenset({Source.HISTORY})
    warm_start = False

    def replayed(self, data: PeriodData, previous: StrategyState | None) -> sp.csr_matrix | None:
        return data.history


class DistillCFReplay(Strategy):
    """Period t's rows plus the Distill-CF summaries of every earlier period, warm-started."""

    name = "distill_cf"
    needs = frozenset({Source.SUMMARIES})

    def replayed(self, data: PeriodData, previous: StrategyState | None) -> sp.csr_matrix | None:
        return as_fake_users(data.summaries, data.current)


class ADER(Strategy):
    """Period t's rows plus herded exemplars, with adaptive distillation from M_{t−1}.

    The exemplars kept after period t hold at most as many interactions
    (``TrainingConfig.exemplar_budget == "interactions"``) or rows (``"rows"``) as the Distill-CF
    summaries S_0..S_t: hence its need of their sizes.
    """

    name = "ader"
    needs = frozenset({Source.SUMMARY_SIZES})
    carries = True

    def replayed(self, data: PeriodData, previous: StrategyState | None) -> sp.csr_matrix | None:
        return _carried_rows(previous)

    def extra_loss(self, data: PeriodData, previous: StrategyState | None,
                   config: TrainingConfig) -> DistillTerm | None:
        if previous is None or previous.carry is None:
            return None
        return ader.distill_term(previous.carry, n_seen_items=int(np.sum(data.item_mask)),
                                 n_current=data.current.shape[0], width=data.current.shape[1],
                                 base=config.lambda_base)

    def carry(self, model: MVAEState, data: PeriodData, previous: StrategyState | None,
              config: TrainingConfig, periods_trained: int, seed: int) -> ader.Exemplars:
        pool = data.current
        if (carried := _carried_rows(previous)) is not None:
            pool = sp.vstack([pool, _widen(carried.copy(), pool.shape[1])], format="csr")
        keep = ader.select_exemplars(model, pool, budget=_exemplar_budget(data, config),
                                     group_by_item=config.group_by_item,
                                     in_interactions=config.exemplar_budget == "interactions")
        return ader.make_exemplars(model, pool[keep], seen_items=data.item_mask)

    def restore_carry(self, arrays: dict[str, np.ndarray | sp.csr_matrix]) -> ader.Exemplars:
        return ader.Exemplars.from_arrays(arrays)


@dataclass(frozen=True)
class Coreset:
    """Real rows kept from the past periods (what :class:`CoresetReplay` carries)."""

    rows: sp.csr_matrix

    def to_arrays(self) -> dict[str, np.ndarray | sp.csr_matrix]:
        """The rows as named arrays (what a strategy state file carries)."""
        return {"rows": self.rows}


class CoresetReplay(Strategy):
    """Period t's rows plus an SVP-CF coreset of every earlier period, warm-started.

    After period t it keeps the real users of period t that SVP-CF ranks highest
    (:func:`models.samplers.svp_cf_rows`: a proxy model's summed interaction losses, Sachdeva et
    al., WSDM 2022 §4) within the interactions of that period's Distill-CF summary S_t, so that
    it replays exactly the budget Distill-CF replays, spent on real rows instead of synthetic ones.
    """

    name = "coreset"
    needs = frozenset({Source.SUMMARY_SIZES})
    carries = True

    def replayed(self, data: PeriodData, previous: StrategyState | None) -> sp.csr_matrix | None:
        return _carried_rows(previous)

    def carry(self, model: MVAEState, data: PeriodData, previous: StrategyState | None,
              config: TrainingConfig, periods_trained: int, seed: int) -> Coreset:
        if data.summary_sizes is None:
            raise ValueError("the coreset's budget needs the summaries' sizes (PeriodData.summary_sizes)")
        budget = int(np.asarray(data.summary_sizes).reshape(-1, 2)[-1, 1])
        keep = (svp_cf_rows(data.current, seed=seed + periods_trained, interactions=budget) if budget > 0
                else np.zeros(0, dtype=np.int64))
        kept = data.current[keep]
        if (carried := _carried_rows(previous)) is not None:
            kept = sp.vstack([_widen(carried.copy(), kept.shape[1]), kept], format="csr")
        return Coreset(rows=sp.csr_matrix(kept, dtype=np.float32))

    def restore_carry(self, arrays: dict[str, np.ndarray | sp.csr_matrix]) -> Coreset:
        return Coreset(rows=sp.csr_matrix(arrays["rows"], dtype=np.float32))


def _exemplar_budget(data: PeriodData, config: TrainingConfig) -> int:
    """ADER's budget after period t: the rows or the interactions of the summaries S_0..S_t."""
    if data.summary_sizes is None:
        raise ValueError("ADER's budget needs the summaries' sizes (PeriodData.summary_sizes)")
    sizes = np.asarray(data.summary_sizes).reshape(-1, 2)
    return int(sizes[:, 0 if config.exemplar_budget == "rows" else 1].sum())


STRATEGIES: dict[str, Strategy] = {s.name: s for s in (Individual(), Joint(), DistillCFReplay(), ADER(),
                                                      CoresetReplay())}
"""Every strategy by name, in report order."""


def get_strategy(name: str) -> Strategy:
    """The registered strategy called ``name``; ``ValueError`` listing the names otherwise."""
    try:
        return STRATEGIES[name]
    except KeyError:
        raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}; got {name!r}") from None


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


def _carried_rows(previous: StrategyState | None) -> sp.csr_matrix | None:
    """The rows a strategy carried out of the previous period (ADER's exemplars, the coreset), if any."""
    return None if previous is None or previous.carry is None else previous.carry.rows


def _widen(rows: sp.csr_matrix, width: int) -> sp.csr_matrix:
    if rows.shape[1] > width:
        raise ValueError(f"replayed rows have {rows.shape[1]} item columns, more than the current {width}")
    rows.resize((rows.shape[0], width))
    return rows


def training_rows(strategy: Strategy, data: PeriodData, previous: StrategyState | None) -> sp.csr_matrix:
    """The rows a strategy trains on: period t's rows first, then what it replays."""
    extra = strategy.replayed(data, previous)
    if extra is None or extra.shape[0] == 0:
        return data.current
    width = data.current.shape[1]
    return sp.vstack([data.current, _widen(sp.csr_matrix(extra), width)], format="csr", dtype=np.float32)


def train_strategy(strategy: Strategy, data: PeriodData, *, previous: StrategyState | None,
                   config: TrainingConfig, seed: int, progress: Progress | None = None) -> StrategyState:
    """Train one strategy's model for period t (the step every strategy shares).

    The validation fold is drawn from period t's own rows only (:func:`models.splits.holdout_fold`),
    so every strategy early-stops on the same signal and nothing is chosen on period t+1.

    Args:
        strategy: a registered strategy.
        data: what it may train on (see :class:`PeriodData`).
        previous: this strategy's state after period t−1 (None at its first period).
        config: the shared training rules.
        seed: seeds the validation fold and the MVAE's initialisation, batches and dropout.
        progress: called as ``progress(epoch, mean_train_loss, val_ndcg100)`` after each epoch.

    Returns:
        The new :class:`StrategyState`.
    """
    if previous is not None and previous.strategy != strategy.name:
        raise ValueError(f"previous state is for {previous.strategy!r}, not {strategy.name!r}")
    rows = training_rows(strategy, data, previous)
    eligible = np.arange(rows.shape[0]) < data.current.shape[0]
    train, val_context, val_targets = holdout_fold(
        rows, row_fraction=config.val_row_fraction, item_fraction=config.val_item_fraction, seed=seed,
        eligible=eligible)
    init = previous.model if strategy.warm_start and previous is not None else None
    model = train_mvae(train, config=config.mvae, seed=seed, init=init, item_mask=data.item_mask,
                       validation=(val_context, val_targets), distill=strategy.extra_loss(data, previous, config),
                       progress=progress)
    periods = 1 if previous is None else previous.periods_trained + 1
    return StrategyState(strategy=strategy.name, model=model, periods_trained=periods, rows_used=rows.shape[0],
                         replayed=Replayed.of(rows[data.current.shape[0]:]),
                         carry=strategy.carry(model, data, previous, config, periods, seed))


def strategy_state_arrays(state: StrategyState) -> dict[str, np.ndarray | sp.csr_matrix]:
    """A strategy state as named arrays: no wall-clock values, so the same state gives the same
    arrays (and, written by :mod:`storage.arrays`, the same bytes)."""
    out = {f"model/{k}": v for k, v in state_arrays(state.model).items()}
    out |= {f"carry/{k}": v for k, v in (state.carry.to_arrays() if state.carry is not None else {}).items()}
    return out | {"strategy": np.asarray(state.strategy), "periods_trained": np.asarray(state.periods_trained),
                  "rows_used": np.asarray(state.rows_used), "replayed": np.asarray(
                      [state.replayed.rows, state.replayed.interactions, state.replayed.mass], dtype=np.float64)}


def strategy_state_from_arrays(arrays: dict[str, np.ndarray | sp.csr_matrix]) -> StrategyState:
    """Inverse of :func:`strategy_state_arrays`."""
    parts: dict[str, dict] = {"model": {}, "carry": {}}
    for name, value in arrays.items():
        kind, _, rest = name.partition("/")
        if kind in parts:
            parts[kind][rest] = value
    name = str(arrays["strategy"])
    rows, interactions, mass = arrays["replayed"]
    return StrategyState(strategy=name, model=state_from_arrays(parts["model"]),
                         periods_trained=int(arrays["periods_trained"]), rows_used=int(arrays["rows_used"]),
                         replayed=Replayed(rows=int(rows), interactions=int(interactions), mass=float(mass)),
                         carry=get_strategy(name).restore_carry(parts["carry"]) if parts["carry"] else None)
