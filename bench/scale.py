"""How each pipeline step's time and memory grow with a period's interactions and items.

Usage (from the repository root):
    .venv/bin/python bench/scale.py --rows 25k,100k,400k,1.6M --items 5000 [--items-series 2k,8k,32k]
        [--items-rows 200k] [--steps distill,distill_validation,mvae_individual,mvae_joint,evaluate]
        [--json OUT] [--plot OUT.png] [--repo PATH] [--threads 2] [--repeats 2] [--max-rss-gb 12]
    .venv/bin/python bench/scale.py --rows 1.6M --items 20000 --full [--json OUT]

First the machine's float32 GEMM peak is measured (``torch.matmul`` of square matrices of side
2048 and 4096, best of several, ``--threads`` threads). Then, for every period size, a log of
4 × rows interactions is drawn with the fast synthetic generator (``storage.synthetic``: Zipf item
popularity, log-normal user activity, drifting tastes, new items arriving; rows / 25 users, so
about 25 items a bag) and cut into four periods of equal count; a period is the binary CSR matrix
of its (user, period) bags. Period t = 2 is the one measured, periods 0–1 are its history and
period 3 is the next period. Each step runs in a fresh child process, so its peak RSS
(``ru_maxrss`` of the child) is its own; a child whose RSS passes ``--max-rss-gb`` is stopped and
the step reported as skipped. ``--repo`` runs the steps on another checkout's ``models/`` (first on
the children's PYTHONPATH), which is how the figures before a change are taken.

Steps and what their ``seconds`` are:

- ``distill``: seconds per Distill-CF step (``models.distill_cf.distill_rows``, μ = 20, 8 steps,
  validation every 2 steps), the median time between the progress callbacks of steps without a
  validation (the first, compiling, step excluded);
- ``distill_validation``: one validation of that run, the median time between the callbacks of
  validated steps minus the step time (same child, so the same peak RSS);
- ``mvae_individual`` / ``mvae_joint``: one ``models.strategies.train_strategy`` call with one
  epoch (``MVAEConfig(epochs=1, patience=1)``) on period t's bags / on periods 0–2's bags;
- ``evaluate``: ``models.continual_eval.evaluate_period`` of the Individual model on period 3.

The MVAE and evaluation children first make the same call on 64 bags, so that the timed calls
do not carry torch's one-time start-up costs (measured 7.3 s for a first Individual epoch at
25k × 5k against 2.4–3.0 s for the next ones on the loaded dev box), then time ``--repeats``
calls (default 2) and report the fastest (all are in ``seconds_all``); the peak RSS covers them all.

``--full`` (the must-show run): Distill-CF to convergence (μ = 20, the default steps, patience and
validation), the Individual model's evaluation, and one epoch of each strategy of
``models.strategies.STRATEGIES``; Distill-CF replay replays the distilled summary twice (standing
in for S_0, S_1), ADER's budget counts three summaries of that size, and ADER trains on period 1
first so that its period-t epoch replays exemplars with its distillation term.

Useful FLOPs (multiply-adds count 2; work on zeros, padding and the ranking's sorts is not
counted; h = hidden, l = latent, I = the columns trained or scored, r = rows):

- MultVAE forward + backward over r rows with nnz non-zeros (one epoch):
  ``4·nnz·h`` (sparse input layer: forward and weight gradient; no input gradient) +
  ``6·r·(3·h·l + h·I)`` (the dense layers h→2l, l→h and h→I: forward 2·, backward 4·) +
  ``6·r·I`` (log-softmax: 3 forward, 3 backward an entry); a forward pass (validation, scoring)
  is ``2·nnz·h + 2·r·(3·h·l + h·I)``. ``train_strategy``'s FLOPs are the epoch on its rows (nnz
  taken before the validation hold-out: an overcount below 0.1%) over the items seen so far, plus
  the forward pass of its validation context (period t's bags with ≥ 2 items, 90% of their
  items); ADER's distillation term and herding, and the metrics, are not counted. Evaluation:
  the forward pass of the fold-in context (bags with ≥ 2 items, 80% of their items).
- Distill-CF step, batch b real rows, μ fake users, γ samples, forward + backward:
  ``10·b·μ·I`` (Gram Θ(X_b, S): 2 forward + 2 for its gradient to S; prediction
  (b×μ)·(μ×I): 2 forward + 4 backward) + ``4·μ²·I`` (Gram S·Sᵀ and its gradient) +
  ``6·μ²·min(b, I)`` (the triangular solves and their gradients) + ``4/3·μ³`` (Cholesky) +
  ``6·b·I`` (log-softmax) + ``8·μ·γ·I`` for the pooled sampler's two GEMMs (forward and
  backward); the independent sampler's γ·μ·I hashes and logs and the NTK's arc-cosine recursion
  (b·μ entries) are elementwise work, not counted.
- Distill-CF validation (∞-AE with the λ grid on the summary, m = bags with ≥ 2 items, all of
  them validated, n_λ grid points): ``2·m·μ·I·(1 + n_λ)`` (Gram of the context and one scoring product per λ) +
  ``4·μ²·I`` (kernel and α) + ``n_λ·(μ³/3 + 2·μ²·m)``.

Slopes: least-squares slope of log(seconds) (and of log(peak RSS)) against log(period
interactions) over ``--rows``, and against log(items) over ``--items-series``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import psutil
import scipy.sparse as sp

if TYPE_CHECKING:   # the children import models/ (from --repo); the parent never does
    from models.strategies import PeriodData, Strategy

REPO = Path(__file__).resolve().parents[1]
N_PERIODS = 4  # periods 0–1: history, 2: the measured period t, 3: the next period
CURRENT = 2
BAG = 25  # interactions per user and period, on average
STEPS = ("distill", "distill_validation", "mvae_individual", "mvae_joint", "evaluate")
FULL_STEPS = ("distill", "distill_validation", "mvae_individual", "evaluate", "mvae_joint", "mvae_distill_cf",
              "mvae_ader", "mvae_coreset")
EVALUATED = "individual"  # the strategy whose model the evaluate step scores
DISTILL_STEPS, DISTILL_EVAL_EVERY = 8, 2
WARM_UP_BAGS = 64  # a first call on this many bags takes torch's one-time costs out of the timed call
VAL_SHARE, FOLD_IN_SHARE = 0.9, 0.8  # items of a validation bag in the context (validation, evaluation)


# ---- FLOP counts (module docstring) -------------------------------------------------------------

def mvae_forward_flops(rows: int, nnz: int, items: int, *, hidden: int, latent: int) -> float:
    """Useful FLOPs of a MultVAE forward pass (scoring): ``2·nnz·h + 2·r·(3·h·l + h·I)``."""
    return 2.0 * nnz * hidden + 2.0 * rows * (3 * hidden * latent + hidden * items)


def mvae_train_flops(rows: int, nnz: int, items: int, *, hidden: int, latent: int) -> float:
    """Useful FLOPs of a MultVAE forward + backward pass over ``rows`` rows (one epoch):
    ``4·nnz·h + 6·r·(3·h·l + h·I) + 6·r·I``."""
    return 4.0 * nnz * hidden + 6.0 * rows * (3 * hidden * latent + hidden * items) + 6.0 * rows * items


def distill_step_flops(batch: int, mu: int, items: int, *, gamma: int, pooled: bool) -> float:
    """Useful FLOPs of one Distill-CF step (forward + backward), module docstring."""
    flops = 10.0 * batch * mu * items + 4.0 * mu * mu * items + 6.0 * mu * mu * min(batch, items)
    flops += 4.0 / 3.0 * mu ** 3 + 6.0 * batch * items
    return flops + (8.0 * mu * gamma * items if pooled else 0.0)


def distill_validation_flops(rows: int, mu: int, items: int, *, n_lams: int) -> float:
    """Useful FLOPs of one Distill-CF validation (∞-AE on the summary over the λ grid)."""
    return (2.0 * rows * mu * items * (1 + n_lams) + 4.0 * mu * mu * items
            + n_lams * (mu ** 3 / 3.0 + 2.0 * mu * mu * rows))


def fit_slope(x: list[float], y: list[float]) -> float | None:
    """Least-squares slope of log y against log x over the positive pairs (None: < 2 distinct x)."""
    pairs = [(a, b) for a, b in zip(x, y) if a is not None and b is not None and a > 0 and b > 0]
    if len({a for a, _ in pairs}) < 2:
        return None
    lx, ly = np.log([a for a, _ in pairs]), np.log([b for _, b in pairs])
    return float(np.polyfit(lx, ly, 1)[0])


def parse_count(text: str) -> int:
    """``25k`` → 25000, ``1.6M`` → 1600000, ``5000`` → 5000."""
    scale = {"k": 1_000, "m": 1_000_000}.get(text.strip()[-1:].lower(), 1)
    number = text.strip()[:-1] if scale > 1 else text.strip()
    value = round(float(number) * scale)
    if value < 1:
        raise argparse.ArgumentTypeError(f"a count must be >= 1, got {text!r}")
    return value


def parse_counts(text: str) -> list[int]:
    """Comma-separated counts (:func:`parse_count`)."""
    return [parse_count(part) for part in text.split(",") if part.strip()]


# ---- synthetic periods --------------------------------------------------------------------------

def make_periods(rows: int, items: int, *, seed: int = 0) -> list[sp.csr_matrix]:
    """Four periods of about ``rows`` interactions each over ``items`` items (module docstring).

    Returns:
        ``N_PERIODS`` binary (bags, items) float32 csr matrices, one row per active user.
    """
    from storage.synthetic import fast_synthetic_interactions

    log = fast_synthetic_interactions(n_users=max(1, rows // BAG), n_items=items,
                                      n_interactions=N_PERIODS * rows, seed=seed)
    users, item_ids = log["user_id"].to_numpy() - 1, log["item_id"].to_numpy() - 1
    period = np.arange(len(log)) * N_PERIODS // len(log)
    out = []
    for p in range(N_PERIODS):
        active, row = np.unique(users[period == p], return_inverse=True)
        bags = sp.csr_matrix((np.ones(row.size, np.float32), (row, item_ids[period == p])),
                             shape=(active.size, items))
        bags.sum_duplicates()
        bags.data[:] = 1.0   # a repeat within a period is one item of its bag
        out.append(bags)
    return out


# ---- children: one step each --------------------------------------------------------------------

class PeriodFiles:
    """The periods of one size, written once by the parent and read by every child."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def write(self, periods: list[sp.csr_matrix]) -> None:
        for p, bags in enumerate(periods):
            sp.save_npz(self.folder / f"period-{p}.npz", bags)

    def period(self, p: int) -> sp.csr_matrix:
        return sp.csr_matrix(sp.load_npz(self.folder / f"period-{p}.npz"), dtype=np.float32)

    def seen(self, through: int) -> tuple[np.ndarray, np.ndarray]:
        """(items,) bool seen and int64 interaction counts over periods 0..through."""
        counts = sum(np.asarray(self.period(p).sum(axis=0)).ravel() for p in range(through + 1))
        return counts > 0, counts.astype(np.int64)

    def path(self, name: str) -> Path:
        return self.folder / name


def _multi_item_rows(bags: sp.csr_matrix) -> tuple[int, int]:
    """Rows with ≥ 2 items and their non-zeros (the rows a hold-out or fold-in can split)."""
    sizes = np.diff(bags.indptr)
    return int(np.count_nonzero(sizes >= 2)), int(sizes[sizes >= 2].sum())


def _timed_distill(files: PeriodFiles, full: bool) -> dict[str, dict]:
    """Distill-CF on period t: the step and validation figures, timed from the progress callbacks."""
    from models.configs import DistillConfig
    from models.distill_cf import distill_rows

    bags = files.period(CURRENT)
    config = DistillConfig(n_fake_users=20) if full else DistillConfig(
        n_fake_users=20, steps=DISTILL_STEPS, eval_every=DISTILL_EVAL_EVERY)
    stamps: list[float] = []
    start = time.perf_counter()
    result = distill_rows(bags, config=config, seed=0, progress=lambda *_: stamps.append(time.perf_counter()))
    total = time.perf_counter() - start
    sp.save_npz(files.path("summary.npz"), sp.csr_matrix(result.summary))
    gaps = {step: b - a for step, (a, b) in enumerate(zip(stamps, stamps[1:]), start=2)}
    validated = {s for s in gaps if s % config.eval_every == 0 or s == config.steps}
    step_s = float(np.median([g for s, g in gaps.items() if s not in validated]))
    val_s = float(np.median([gaps[s] for s in validated])) - step_s
    mu, items = result.summary.shape
    batch = bags.shape[0] if config.batch_size is None else min(config.batch_size, bags.shape[0])
    val_rows = min(_multi_item_rows(bags)[0], getattr(config, "val_rows", None) or bags.shape[0])  # bounded sample
    common = {"mu": mu, "batch": batch, "steps_run": result.steps}
    out = {
        "distill": common | {"seconds": step_s, "seconds_per_step_reported": result.seconds_per_step,
                             "flops": distill_step_flops(batch, mu, items, gamma=config.gamma,
                                                         pooled=config.noise == "pooled")},
        "distill_validation": common | {"seconds": val_s, "validations": len(validated) + 1,
                                        "flops": distill_validation_flops(val_rows, mu, items,
                                                                          n_lams=len(config.inner_lams))},
    }
    if full:
        out["distill"] |= {"total_seconds": total, "best_step": result.best_step,
                           "val_hr100": result.best_val_hr100}
    return out


def _period_data(files: PeriodFiles, strategy: Strategy, t: int) -> PeriodData:
    """What ``strategy`` may train on at period t (history, summaries, their sizes as it needs)."""
    from models.strategies import PeriodData, Source

    current, (mask, _) = files.period(t), files.seen(t)
    extra = {}
    if Source.HISTORY in strategy.needs:
        extra["history"] = sp.vstack([files.period(p) for p in range(t)], format="csr")
    if strategy.needs & {Source.SUMMARIES, Source.SUMMARY_SIZES}:
        summary = sp.load_npz(files.path("summary.npz"))   # stands in for each summary S_0..S_t
        if Source.SUMMARIES in strategy.needs:
            extra["summaries"] = sp.vstack([summary] * t, format="csr")
        if Source.SUMMARY_SIZES in strategy.needs:
            extra["summary_sizes"] = np.tile([summary.shape[0], summary.nnz], (t + 1, 1))
    return PeriodData(current=current, item_mask=mask, **extra)


def _best_of(repeats: int, call: Callable[[], object]) -> tuple[object, list[float]]:
    """The last result of ``repeats`` calls and each call's seconds (the machine may be shared)."""
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = call()
        seconds.append(time.perf_counter() - start)
    return result, seconds


def _timed_training(files: PeriodFiles, name: str, repeats: int) -> dict:
    """One epoch of strategy ``name`` at period t (a strategy that carries something, as ADER's
    exemplars: after an epoch at period t − 1), the fastest of ``repeats`` calls."""
    from models.configs import MVAEConfig, TrainingConfig
    from models.mvae import state_arrays
    from models.strategies import STRATEGIES, PeriodData, train_strategy

    strategy = STRATEGIES[name]
    config = TrainingConfig(mvae=MVAEConfig(epochs=1, patience=1))
    warm = files.period(CURRENT)[:WARM_UP_BAGS]
    train_strategy(STRATEGIES["individual"], PeriodData(current=warm, item_mask=files.seen(CURRENT)[0]),
                   previous=None, config=config, seed=0)
    previous, record = None, {}
    if strategy.carries:
        start = time.perf_counter()
        previous = train_strategy(strategy, _period_data(files, strategy, CURRENT - 1), previous=None,
                                  config=config, seed=0)
        record["first_period_seconds"] = time.perf_counter() - start
    data = _period_data(files, strategy, CURRENT)
    state, seconds = _best_of(repeats, lambda: train_strategy(strategy, data, previous=previous, config=config,
                                                              seed=0))
    if name == EVALUATED:
        np.savez(files.path(f"{EVALUATED}-state.npz"), **state_arrays(state.model))
    items = int(data.item_mask.sum())
    nnz = data.current.nnz + state.replayed.interactions
    val_rows, val_nnz = _multi_item_rows(data.current)
    flops = (mvae_train_flops(state.rows_used, nnz, items, hidden=config.mvae.hidden, latent=config.mvae.latent)
             + mvae_forward_flops(val_rows, round(VAL_SHARE * val_nnz), items, hidden=config.mvae.hidden,
                                  latent=config.mvae.latent))
    return record | {"seconds": min(seconds), "seconds_all": seconds, "flops": flops, "train_rows": state.rows_used,
                     "train_nnz": nnz, "items_trained": items}


def _timed_evaluation(files: PeriodFiles, repeats: int) -> dict:
    """``evaluate_period`` of the Individual model (a fresh one if that step did not run) on period
    t+1, the fastest of ``repeats`` calls."""
    from models.configs import MVAEConfig
    from models.continual_eval import evaluate_period
    from models.mvae import init_state, state_from_arrays

    bags = files.period(CURRENT + 1)
    mask, counts = files.seen(CURRENT)
    stored = files.path(f"{EVALUATED}-state.npz")
    if stored.exists():
        with np.load(stored) as arrays:
            state, which = state_from_arrays(dict(arrays)), EVALUATED
    else:
        state, which = init_state(bags.shape[1], config=MVAEConfig(), seed=0), "initial"
    evaluate_period(state, bags[:WARM_UP_BAGS], seen_items=mask, item_counts=counts, seed=0)
    metrics, seconds = _best_of(repeats, lambda: evaluate_period(state, bags, seen_items=mask, item_counts=counts,
                                                                 seed=0))
    rows, nnz = _multi_item_rows(bags)
    config = MVAEConfig()   # the Individual step trains with these widths
    return {"seconds": min(seconds), "seconds_all": seconds, "state": which, "ndcg@10": metrics.get("ndcg@10"),
            "flops": mvae_forward_flops(rows, round(FOLD_IN_SHARE * nnz), state.n_items, hidden=config.hidden,
                                        latent=config.latent)}


def _gemm_peak(threads: int) -> dict:
    """Best float32 ``torch.matmul`` rate over square sides 2048 and 4096."""
    import torch

    torch.set_num_threads(threads)
    best = 0.0
    for n, repeats in ((2048, 6), (4096, 3)):
        a, b = torch.randn(n, n), torch.randn(n, n)
        torch.matmul(a, b)
        for _ in range(repeats):
            tic = time.perf_counter()
            torch.matmul(a, b)
            best = max(best, 2.0 * n ** 3 / (time.perf_counter() - tic))
    return {"peak_gflops": best / 1e9, "threads": torch.get_num_threads()}


def worker(args: argparse.Namespace) -> None:
    """Child process body: run step ``args.worker``, print ``RESULT <json>`` with its figures and RSS."""
    step = args.worker
    if step == "gemm":
        print("RESULT " + json.dumps(_gemm_peak(args.threads)), flush=True)
        return
    import torch

    for module in ("models.continual_eval", "models.distill_cf", "models.strategies"):
        importlib.import_module(module)   # before the base RSS is taken

    torch.set_num_threads(args.threads)
    files = PeriodFiles(args.data)
    files.seen(CURRENT)   # read once before the base RSS is taken (the data is the step's input)
    base = psutil.Process().memory_info().rss
    if step in ("distill", "distill_validation"):
        records = _timed_distill(files, args.full)
    elif step == "evaluate":
        records = {step: _timed_evaluation(files, args.repeats)}
    else:
        records = {step: _timed_training(files, step.removeprefix("mvae_"), args.repeats)}
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    for record in records.values():
        record |= {"peak_rss_mb": peak / 2**20, "base_rss_mb": base / 2**20}
    print("RESULT " + json.dumps(records), flush=True)


# ---- parent -------------------------------------------------------------------------------------

def run_child(step: str, folder: Path | None, args: argparse.Namespace) -> dict:
    """Run one step in a fresh process; stop it if its RSS passes the limit."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", step, "--threads", str(args.threads),
           "--repeats", str(args.repeats)]
    cmd += ["--data", str(folder)] if folder is not None else []
    cmd += ["--full"] if args.full else []
    env = os.environ | {"PYTHONPATH": str(args.repo)}
    limit = args.max_rss_gb * 2**30
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        child = subprocess.Popen(cmd, cwd=args.repo, env=env, stdout=out, stderr=err)
        watched, reason = psutil.Process(child.pid), None
        while child.poll() is None:
            try:
                rss = watched.memory_info().rss
            except psutil.NoSuchProcess:
                break
            if rss > limit or time.perf_counter() - start > args.timeout:
                reason = f"RSS passed {args.max_rss_gb} GB" if rss > limit else f"ran past {args.timeout} s"
                child.kill()
            time.sleep(0.1)
        child.wait()
        wall = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        lines = [line for line in out.read().decode().splitlines() if line.startswith("RESULT ")]
        if reason is not None or child.returncode != 0 or not lines:
            return {"skipped": reason or f"exit {child.returncode}: {err.read().decode()[-2000:]}",
                    "wall_seconds": wall}
    result = json.loads(lines[-1].removeprefix("RESULT "))
    if step == "gemm":
        return result
    for record in result.values():
        record["wall_seconds"] = wall
    return result


def measure_size(rows: int, items: int, steps: tuple[str, ...], peak_gflops: float,
                 args: argparse.Namespace) -> dict:
    """Every step on the periods of one size: its figures, FLOP/s and share of the GEMM peak."""
    tic = time.perf_counter()
    periods = make_periods(rows, items, seed=args.seed)
    generated = time.perf_counter() - tic
    current = periods[CURRENT]
    entry = {"rows": rows, "items": items, "interactions": int(current.nnz), "bags": int(current.shape[0]),
             "history_interactions": int(sum(p.nnz for p in periods[:CURRENT])),
             "generate_seconds": generated, "steps": {}}
    print(f"\n{rows} rows x {items} items: {current.nnz} interactions, {current.shape[0]} bags "
          f"(generated in {generated:.1f} s)", flush=True)
    with tempfile.TemporaryDirectory(prefix="relay-scale-") as folder:
        files = PeriodFiles(Path(folder))
        files.write(periods)
        del periods, current
        for step in steps:
            if step in entry["steps"]:
                continue   # distill and distill_validation come from one child
            for name, record in _with_rates(run_child(step, files.folder, args), step, peak_gflops).items():
                if name in steps:
                    entry["steps"][name] = record
                    print("  " + _row(name, record), flush=True)
    return entry


def _with_rates(result: dict, step: str, peak_gflops: float) -> dict[str, dict]:
    if "skipped" in result:
        names = ("distill", "distill_validation") if step.startswith("distill") else (step,)
        return {name: result for name in names}
    for record in result.values():
        if record.get("seconds", 0) > 0:
            record["gflops_per_s"] = record["flops"] / record["seconds"] / 1e9
            record["flops_share"] = record["gflops_per_s"] / peak_gflops
    return result


def _row(step: str, record: dict) -> str:
    if "skipped" in record:
        return f"{step:<20} skipped: {record['skipped'].splitlines()[-1] if record['skipped'] else ''}"
    return (f"{step:<20}{record['seconds']:>9.3f} s{record['peak_rss_mb']:>9.0f} MB"
            f"{record['flops'] / 1e9:>11.1f} GFLOP{record.get('gflops_per_s', 0):>8.1f} GFLOP/s"
            f"{100 * record.get('flops_share', 0):>6.1f}% of peak")


def slopes(series: dict[str, dict], steps: tuple[str, ...], x_key: str, y_key: str) -> dict[str, float | None]:
    """Log-log slope of each step's ``y_key`` against the sizes' ``x_key``."""
    out = {}
    for step in steps:
        points = [(entry[x_key], entry["steps"].get(step, {}).get(y_key)) for entry in series.values()]
        out[step] = fit_slope([x for x, _ in points], [y for _, y in points])
    return out


def full_totals(entry: dict) -> dict:
    """A --full size's totals: distillation to convergence plus one call of every other step, in
    sequence (seconds of the calls and wall time of their processes), and the largest peak RSS."""
    records = [r for name, r in entry["steps"].items() if name != "distill_validation" and "skipped" not in r]
    distill = entry["steps"].get("distill", {})
    seconds = distill.get("total_seconds", 0.0) + sum(r["seconds"] for r in records if r is not distill)
    totals = {"seconds": seconds, "wall_seconds": sum(r["wall_seconds"] for r in records),
              "peak_rss_mb": max((r["peak_rss_mb"] for r in records), default=0.0),
              "skipped": [name for name, r in entry["steps"].items() if "skipped" in r]}
    print(f"\n--full, {entry['rows']} x {entry['items']}: {totals['seconds']:.0f} s in the steps "
          f"({totals['wall_seconds']:.0f} s of processes), peak RSS {totals['peak_rss_mb']:.0f} MB; "
          f"Distill-CF ran {distill.get('steps_run')} steps (best {distill.get('best_step')}, validation "
          f"HR@100 {distill.get('val_hr100')}); skipped: {totals['skipped'] or 'none'}", flush=True)
    return totals


def plot(result: dict, steps: tuple[str, ...], path: Path) -> None:
    """Log-log seconds and peak RSS against interactions (and against items, if measured)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("sizes", "interactions", "period interactions", "slopes")]
    if result.get("items_series"):
        panels.append(("items_series", "items", "items", "slopes_items"))
    fig, axes = plt.subplots(2, len(panels), figsize=(6.5 * len(panels), 9), squeeze=False)
    for col, (key, x_key, label, slope_key) in enumerate(panels):
        for row, (y_key, y_label) in enumerate((("seconds", "seconds (per step / call)"),
                                                ("peak_rss_mb", "peak RSS (MB)"))):
            ax = axes[row][col]
            for step in steps:
                pts = [(e[x_key], e["steps"][step][y_key]) for e in result[key].values()
                       if y_key in e["steps"].get(step, {})]
                if pts:
                    slope = result[slope_key if row == 0 else slope_key + "_rss"].get(step)
                    tag = f" (slope {slope:.2f})" if slope is not None else ""
                    ax.plot(*zip(*pts), marker="o", label=step + tag)
            ax.set(xscale="log", yscale="log", xlabel=label, ylabel=y_label)
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=8)
    fig.suptitle(f"Relay scale bench (GEMM peak {result['peak_gflops']:.0f} GFLOP/s, "
                 f"{result['threads']} threads)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=parse_counts, default=parse_counts("25k,100k,400k,1.6M"),
                        help="interactions of a period, e.g. 25k,100k,400k,1.6M")
    parser.add_argument("--items", type=parse_count, default=5000, help="items of the --rows series")
    parser.add_argument("--items-series", type=parse_counts, default=[], help="item counts, e.g. 2k,8k,32k")
    parser.add_argument("--items-rows", type=parse_count, default=200_000,
                        help="period interactions of the items series")
    parser.add_argument("--steps", type=lambda s: tuple(s.split(",")), default=None,
                        help=f"subset of {','.join(STEPS)} (--full: {','.join(FULL_STEPS)})")
    parser.add_argument("--full", action="store_true", help="Distill-CF to convergence and every strategy")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the GEMM peak and the steps")
    parser.add_argument("--repeats", type=int, default=2,
                        help="timed calls of an MVAE or evaluation step; the fastest counts")
    parser.add_argument("--max-rss-gb", type=float, default=12.0, help="stop a step whose RSS passes this")
    parser.add_argument("--timeout", type=float, default=3600.0, help="stop a step running longer (seconds)")
    parser.add_argument("--repo", type=Path, default=REPO, help="checkout whose models/ the steps run")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic logs")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--plot", type=Path, default=None)
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        worker(args)
        return
    allowed = FULL_STEPS if args.full else STEPS
    steps = args.steps or allowed
    if unknown := [s for s in steps if s not in allowed]:
        parser.error(f"--steps: unknown {unknown}; choose from {','.join(allowed)}")
    args.repo = args.repo.resolve()

    gemm = run_child("gemm", None, args)
    if "skipped" in gemm:
        sys.exit(f"GEMM peak measurement failed: {gemm['skipped']}")
    print(f"float32 GEMM peak: {gemm['peak_gflops']:.1f} GFLOP/s ({gemm['threads']} threads); "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", flush=True)
    result = {"peak_gflops": gemm["peak_gflops"], "threads": gemm["threads"], "repo": str(args.repo),
              "full": args.full, "load_average_start": os.getloadavg()[0], "cpus": os.cpu_count(),
              "sizes": {f"{r}x{args.items}": measure_size(r, args.items, steps, gemm["peak_gflops"], args)
                        for r in args.rows}}
    result["items_series"] = {f"{args.items_rows}x{i}": measure_size(args.items_rows, i, steps, gemm["peak_gflops"],
                                                                      args) for i in args.items_series}
    result["load_average_end"] = os.getloadavg()[0]
    if args.full:
        result["full_totals"] = {key: full_totals(entry) for key, entry in result["sizes"].items()}
    for key, x_key, name in (("sizes", "interactions", "slopes"), ("items_series", "items", "slopes_items")):
        result[name] = slopes(result[key], steps, x_key, "seconds")
        result[name + "_rss"] = slopes(result[key], steps, x_key, "peak_rss_mb")
    print(f"\n{'step':<20}{'slope s/interactions':>22}{'RSS':>8}{'s/items':>10}{'RSS':>8}")
    for step in steps:
        cells = [result[k].get(step) for k in ("slopes", "slopes_rss", "slopes_items", "slopes_items_rss")]
        text = ["-" if c is None else f"{c:.2f}" for c in cells]
        print(f"{step:<20}" + "".join(f"{t:>{w}}" for t, w in zip(text, (22, 8, 10, 8))))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
    if args.plot is not None:
        args.plot.parent.mkdir(parents=True, exist_ok=True)
        plot(result, steps, args.plot)


if __name__ == "__main__":
    main()
