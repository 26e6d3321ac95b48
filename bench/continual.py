"""Continual benchmark: the strategies over equal-count periods, several seeds, with intervals.

Ingests the log into a temporary DuckDB, cuts ``--periods`` equal-count periods, and for every
seed: distills each period that a later step replays into μ fake rows (Distill-CF), then for
t = 0..T−2 trains every strategy on period t (``models.strategies.train_strategy``, the same
training rules for all) and evaluates M_t on period t+1 and, for the forgetting matrix, on every
period j ≤ t. Model selection uses only each period's own validation fold; period t+1 is test.

Budgets are compared in interactions by default (``--budget interactions``: ADER keeps as many
interactions as the summaries hold); ``--budget rows`` gives ADER as many rows as the summaries,
``both`` runs the two ADER arms side by side. ``--mu 5,10,20,40`` sweeps the summary size (without
the pipeline's cap) for Distill-CF and ADER at equal interactions and picks the μ with the best
validation nDCG@100 of Distill-CF replay among those whose summaries hold ≤ 10% of their period's
interactions.

    .venv/bin/python bench/continual.py --data data/ml-latest-small/ratings.csv --seeds 0,1,2,3,4 \\
        [--periods 17] [--mu 20] [--budget interactions|rows|both] [--json OUT] [--plot OUT.png]

``--data synthetic`` uses the drifting synthetic log generator. Seeds run in parallel processes
(``--jobs``, one thread each). The JSON keeps every seed's raw run, so a long comparison can run as
several invocations (a seed or a few strategies each) and be summarised as one with
``--merge A.json B.json … [--json OUT] [--plot OUT.png]`` (sweeps merge with sweeps, μ by μ).
Printed: per strategy the mean over periods ± 95% CI over seeds, replayed rows and interactions,
the paired differences with bootstrap CIs, backward transfer.
"""

from __future__ import annotations

import os

# One BLAS/OpenMP/XLA thread per process (seeds run in parallel processes; torch gets the cores a
# seed has): they must know before they load. Several libraries' thread pools on 2 cores slow each
# other down (measured: a period's distillation 4.6 s with OpenBLAS's default threads, 2.8 s with one).
for _var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

import argparse
import json
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from models.comparison import mean_ci, paired_bootstrap, transfer
from models.configs import DistillConfig, MVAEConfig, TrainingConfig
from models.continual_eval import evaluate_period
from models.distill_cf import distill_rows
from models.mvae import MVAEState, init_state
from models.strategies import ADER, STRATEGIES, PeriodData, Source, train_strategy

METRICS = ("ndcg@10", "hr@10", "ndcg@100", "psp@10", "auc")
PAIRS = (("distill_cf", "ader"), ("distill_cf", "joint"), ("ader", "individual"), ("distill_cf", "coreset"))
SUMMARY_SHARE_RULE = 0.10
DATASET = "bench"


@dataclass(frozen=True)
class Periods:
    """A log cut into periods: bags, items seen through each period, item counts through it."""

    rows: list[sp.csr_matrix]
    seen: list[np.ndarray]
    counts: list[np.ndarray]


@dataclass(frozen=True)
class Arm:
    """A strategy under one training config (ADER appears twice with ``--budget both``)."""

    label: str
    strategy: str
    training: TrainingConfig


def load_periods(data: str, n_periods: int, workdir: Path) -> Periods:
    """Periods of a log file (or of the synthetic drift generator), through a temporary catalog."""
    from storage.catalog import connect
    from storage.ingest import ingest_file
    from storage.matrices import item_counts_through, items_seen_through, period_matrix
    from storage.periods import cut_periods
    from storage.synthetic import write_synthetic_csv

    path = Path(data)
    if data == "synthetic":
        path = write_synthetic_csv(workdir / "synthetic.csv", n_users=2000, n_items=1500,
                                   n_interactions=100_000, seed=0, drift=1.0)
    con = connect(workdir / "bench.duckdb")
    try:
        ingest_file(con, path, dataset=DATASET)
        cut_periods(con, dataset=DATASET, policy=f"equal-count:{n_periods}")
        rows = [period_matrix(con, dataset=DATASET, period=p).matrix for p in range(n_periods)]
        seen = [items_seen_through(con, dataset=DATASET, period=p) for p in range(n_periods)]
        counts = [item_counts_through(con, dataset=DATASET, period=p) for p in range(n_periods)]
    finally:
        con.close()
    return Periods(rows, seen, counts)


def period_data(strategy: str, periods: Periods, summaries: list[sp.csr_matrix], t: int) -> PeriodData:
    """What ``strategy`` may train on at period t (only the sources it declares)."""
    needs = STRATEGIES[strategy].needs
    return PeriodData(
        current=periods.rows[t], item_mask=periods.seen[t],
        history=sp.vstack(periods.rows[:t], format="csr") if t and Source.HISTORY in needs else None,
        summaries=sp.vstack(summaries[:t], format="csr") if t and Source.SUMMARIES in needs else None,
        summary_sizes=np.array([(s.shape[0], s.nnz) for s in summaries[:t + 1]]) if Source.SUMMARY_SIZES in needs
        else None,
    )


def _evaluate(model: MVAEState, periods: Periods, *, through: int, on: int, seed: int) -> dict:
    """Metrics of a model trained through period ``through`` on period ``on`` (80/20 fold-in)."""
    return evaluate_period(model, periods.rows[on], seen_items=periods.seen[through],
                                item_counts=periods.counts[through], seed=seed)


def run_seed(periods: Periods, *, seed: int, arms: list[Arm], distill: DistillConfig, matrix: bool,
             threads: int) -> dict:
    """One seed: summaries, then every arm period by period; its scores, budgets and times."""
    import torch

    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    started = time.perf_counter()
    needs = {n for arm in arms for n in STRATEGIES[arm.strategy].needs}
    summaries: list[sp.csr_matrix] = []
    if needs & {Source.SUMMARIES, Source.SUMMARY_SIZES}:
        summaries = [distill_rows(r, config=distill, seed=seed).summary for r in periods.rows[:-1]]
    distill_seconds = time.perf_counter() - started
    n_models = len(periods.rows) - 1
    out = {"seed": seed, "distill_seconds": distill_seconds, "arms": {},
           "summary_share": [s.nnz / r.nnz for s, r in zip(summaries, periods.rows)],
           "summary_rows": [s.shape[0] for s in summaries]}
    baseline = [float("nan")] + [
        _evaluate(init_state(periods.rows[j].shape[1], config=arms[0].training.mvae, seed=seed), periods,
                  through=j - 1, on=j, seed=seed)["ndcg@10"] for j in range(1, n_models + 1)] if matrix else None
    for arm in arms:
        tic, state = time.perf_counter(), None
        record = {m: [] for m in (*METRICS, "val_ndcg100")}
        record |= {"replayed_rows": [], "replayed_interactions": [], "replayed_mass": [], "training_interactions": [],
                   "evaluated_users": [], "skipped_users": []}
        r = np.full((n_models, len(periods.rows)), np.nan)
        for t in range(n_models):
            data = period_data(arm.strategy, periods, summaries, t)
            state = train_strategy(STRATEGIES[arm.strategy], data, previous=state, config=arm.training, seed=seed)
            result = _evaluate(state.model, periods, through=t, on=t + 1, seed=seed)
            for m in METRICS:
                record[m].append(float(result[m]))
            record["val_ndcg100"].append(max(state.model.val_history))
            record["evaluated_users"].append(int(result["n_users"]))
            record["skipped_users"].append(int(result["skipped_users"]))
            record["replayed_rows"].append(state.replayed.rows)
            record["replayed_interactions"].append(state.replayed.interactions)
            record["replayed_mass"].append(state.replayed.mass)
            record["training_interactions"].append(int(data.current.nnz) + state.replayed.interactions)
            r[t, t + 1] = result["ndcg@10"]
            for j in range(t + 1) if matrix else ():
                r[t, j] = _evaluate(state.model, periods, through=t, on=j, seed=seed)["ndcg@10"]
        record["seconds"] = time.perf_counter() - tic
        if matrix:
            record["matrix"] = r.tolist()
            record["transfer"] = transfer(r, np.asarray(baseline))
        out["arms"][arm.label] = record
    out["seconds"] = time.perf_counter() - started
    return out


def run_seeds(periods: Periods, *, seeds: list[int], arms: list[Arm], distill: DistillConfig, matrix: bool,
              jobs: int, threads: int | None = None) -> list[dict]:
    """Every seed, ``jobs`` at a time in separate processes, sharing the CPU cores between them
    (``threads`` torch threads each; default: the cores shared out among the jobs)."""
    threads = threads or max(1, (os.cpu_count() or 1) // jobs)
    kwargs = dict(arms=arms, distill=distill, matrix=matrix, threads=threads)
    if jobs <= 1:
        return [run_seed(periods, seed=s, **kwargs) for s in seeds]
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(run_seed, periods, seed=s, **kwargs) for s in seeds]
        return [f.result() for f in futures]


def merge_runs(parts: list[list[dict]]) -> list[dict]:
    """One run per seed from runs of several invocations (e.g. one seed or a few arms each).

    A seed's arms are the union of its runs' arms; an arm run twice for the same seed must give
    the same numbers (runs are deterministic), else the merge refuses. Summaries are distilled in
    every invocation that needs them, so the distillation time is taken once, from the first.
    """
    by_seed: dict[int, dict] = {}
    for run in (run for part in parts for run in part):
        merged = by_seed.setdefault(run["seed"], {"seed": run["seed"], "arms": {}, "distill_seconds": 0.0,
                                                  "summary_share": [], "summary_rows": []})
        if run["summary_share"] and not merged["summary_share"]:
            merged |= {k: run[k] for k in ("summary_share", "summary_rows", "distill_seconds")}
        for label, record in run["arms"].items():
            known = merged["arms"].get(label)
            if known is not None and known["ndcg@10"] != record["ndcg@10"]:
                raise ValueError(f"seed {run['seed']}, arm {label!r}: two runs disagree; they must be deterministic")
            merged["arms"].setdefault(label, record)
    for merged in by_seed.values():
        merged["seconds"] = merged["distill_seconds"] + sum(r["seconds"] for r in merged["arms"].values())
    return [by_seed[seed] for seed in sorted(by_seed)]


def summarise(runs: list[dict], labels: list[str]) -> dict:
    """The JSON report: per arm mean ± CI over seeds, per-period means, budgets, transfer; pairs.

    An arm's figures use the seeds that ran it (``seeds``); a paired difference uses the seeds
    that ran both of its arms.
    """
    out: dict = {}
    for label in labels:
        ran = [run for run in runs if label in run["arms"]]  # the seeds that ran this arm
        per_seed = {m: [float(np.mean(run["arms"][label][m])) for run in ran] for m in (*METRICS, "val_ndcg100")}
        entry = {
            "mean": {m: mean_ci(v)[0] for m, v in per_seed.items()},
            "ci95": {m: list(mean_ci(v)[1:]) for m, v in per_seed.items()},
            "per_seed": {str(run["seed"]): {m: per_seed[m][i] for m in per_seed} for i, run in enumerate(ran)},
            "per_period": {m: np.mean([run["arms"][label][m] for run in ran], axis=0).tolist() for m in METRICS},
            "per_period_ci95": {m: [list(mean_ci(np.asarray([run["arms"][label][m][t] for run in ran]))[1:])
                                    for t in range(len(ran[0]["arms"][label][m]))] for m in ("ndcg@10",)},
            "replayed_rows": float(np.mean([run["arms"][label]["replayed_rows"][-1] for run in ran])),
            "replayed_interactions": float(np.mean([run["arms"][label]["replayed_interactions"][-1] for run in ran])),
            "replayed_mass": float(np.mean([run["arms"][label]["replayed_mass"][-1] for run in ran])),
            "training_interactions": float(np.mean([run["arms"][label]["training_interactions"][-1] for run in ran])),
            "seconds_per_seed": float(np.mean([run["arms"][label]["seconds"] for run in ran])),
            "seeds": [run["seed"] for run in ran],
        }
        if "transfer" in ran[0]["arms"][label]:
            for key in ("accuracy", "backward_transfer", "forward_transfer"):
                mean, lo, hi = mean_ci([run["arms"][label]["transfer"][key] for run in ran])
                entry[key] = {"mean": mean, "ci95": [lo, hi]}
            entry["matrix"] = np.mean([run["arms"][label]["matrix"] for run in ran], axis=0).tolist()
        out[label] = entry
    if "joint" in out:
        for label in labels:
            out[label]["share_of_joint_interactions"] = (out[label]["training_interactions"]
                                                         / out["joint"]["training_interactions"])
    out["paired"] = {}
    for a, b in PAIRS:
        both = [run for run in runs if a in run["arms"] and b in run["arms"]]
        if both:
            cells = [np.array([run["arms"][x]["ndcg@10"] for run in both]) for x in (a, b)]
            mean, lo, hi = paired_bootstrap(*cells)
            out["paired"][f"{a}-{b}"] = {"mean": mean, "ci95": [lo, hi], "seeds": [run["seed"] for run in both]}
    shares = [np.mean(run["summary_share"]) for run in runs if run["summary_share"]]
    out["summary_share_of_period"] = float(np.mean(shares)) if shares else None
    out["summary_rows_per_period"] = float(np.mean([np.mean(run["summary_rows"]) for run in runs
                                                    if run["summary_rows"]])) if shares else None
    first = next(run for run in runs if labels[0] in run["arms"])["arms"][labels[0]]
    out["evaluated_users_per_period"] = float(np.mean(first["evaluated_users"]))
    out["skipped_users_per_period"] = float(np.mean(first["skipped_users"]))
    out["seconds_per_seed"] = float(np.mean([run["seconds"] for run in runs]))
    out["distill_seconds_per_seed"] = float(np.mean([run["distill_seconds"] for run in runs]))
    out["seeds"] = [run["seed"] for run in runs]
    return out


def print_report(report: dict, labels: list[str], n_seeds: int) -> None:
    """Per arm: nDCG@10 etc. as mean ± 95% CI over seeds, budgets; then pairs and transfer."""
    print(f"\nmean over periods of M_t on period t+1, ± 95% CI over {n_seeds} seed(s)")
    print(f"{'strategy':<12}" + "".join(f"{m:>20}" for m in ("ndcg@10", "hr@10", "psp@10", "val_ndcg100"))
          + f"{'replayed rows':>15}{'replayed inter.':>17}{'share of Joint':>16}{'BWT':>18}{'s/seed':>8}")
    for label in labels:
        r = report[label]
        cells = "".join(f"{r['mean'][m]:>11.2f} ± {(r['ci95'][m][1] - r['ci95'][m][0]) / 2:<6.2f}"
                        for m in ("ndcg@10", "hr@10", "psp@10", "val_ndcg100"))
        bwt = r.get("backward_transfer")
        bwt_text = f"{bwt['mean']:>8.2f} ± {(bwt['ci95'][1] - bwt['ci95'][0]) / 2:<5.2f}" if bwt else f"{'-':>16}"
        print(f"{label:<12}{cells}{r['replayed_rows']:>15.0f}{r['replayed_interactions']:>17.0f}"
              f"{100 * r.get('share_of_joint_interactions', float('nan')):>15.1f}%{bwt_text:>18}"
              f"{r['seconds_per_seed']:>8.1f}" + (f"  seeds {r['seeds']}" if len(r["seeds"]) != n_seeds else ""))
    print("\npaired differences of nDCG@10 over (seed, period), bootstrap 95% CI")
    for pair, d in report["paired"].items():
        print(f"  {pair:<22} {d['mean']:+7.2f}  [{d['ci95'][0]:+.2f}, {d['ci95'][1]:+.2f}]  seeds {d['seeds']}")
    if report["summary_share_of_period"] is not None:
        print(f"a summary has {report['summary_rows_per_period']:.1f} fake users and holds "
              f"{100 * report['summary_share_of_period']:.1f}% of its period's interactions (means over periods)")
    print(f"evaluated bags per period {report['evaluated_users_per_period']:.1f} (bags with one item, which cannot "
          f"give both an input and a target, skipped: {report['skipped_users_per_period']:.1f})")
    print(f"wall time per seed {report['seconds_per_seed']:.1f} s (distillation {report['distill_seconds_per_seed']:.1f} s)")


def plot_periods(report: dict, labels: list[str], path: Path, title: str) -> None:
    """nDCG@10 per evaluated period: the mean over seeds with its 95% band, one line per arm."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for label in labels:
        mean = np.asarray(report[label]["per_period"]["ndcg@10"])
        band = np.asarray(report[label]["per_period_ci95"]["ndcg@10"])
        x = np.arange(1, mean.size + 1)
        ax.plot(x, mean, marker="o", label=label)
        ax.fill_between(x, band[:, 0], band[:, 1], alpha=0.2)
    ax.set_xticks(np.arange(1, len(report[labels[0]]["per_period"]["ndcg@10"]) + 1))
    ax.set_xlabel("evaluated on period t+1")
    ax.set_ylabel("nDCG@10")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_matrix(matrix: list[list[float]], path: Path, title: str) -> None:
    """Heat-map of R[t, j] (nDCG@10 of the model trained through t on period j)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r = np.asarray(matrix)
    fig, ax = plt.subplots(figsize=(6.5, 5))
    image = ax.imshow(np.ma.masked_invalid(r), cmap="viridis", origin="upper", aspect="auto")
    ax.set_xlabel("evaluated on period j")
    ax.set_ylabel("trained through period t")
    ax.set_xticks(range(r.shape[1]))
    ax.set_yticks(range(r.shape[0]))
    ax.tick_params(labelsize=7)
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label="nDCG@10")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def sweep(periods: Periods, *, mus: list[int], seeds: list[int], training: TrainingConfig, distill: DistillConfig,
          jobs: int, threads: int | None = None) -> dict:
    """Distill-CF and ADER at equal interactions for each μ: accuracy, budgets, validation."""
    arms = [Arm("distill_cf", "distill_cf", training), Arm("ader", "ader", training)]
    runs, points = {}, {}
    for mu in mus:
        runs[str(mu)] = run_seeds(periods, seeds=seeds, arms=arms, distill=replace(distill, n_fake_users=mu,
                                                                                   max_share=None),
                                  matrix=False, jobs=jobs, threads=threads)
        points[str(mu)] = sweep_point(runs[str(mu)])
        print_sweep_point(str(mu), points[str(mu)])
    return summarise_sweep(points, runs)


def sweep_point(runs: list[dict]) -> dict:
    """One μ of the curve: both arms' accuracy, budgets and seeds, the summaries' share, the pair."""
    report = summarise(runs, ["distill_cf", "ader"])
    point = {label: {k: report[label][k] for k in ("mean", "ci95", "replayed_rows", "replayed_interactions", "seeds")}
             for label in ("distill_cf", "ader")}
    return point | {"summary_share_of_period": report["summary_share_of_period"], "paired": report["paired"]}


def print_sweep_point(mu: str, point: dict) -> None:
    dcf, ader = point["distill_cf"], point["ader"]
    print(f"μ={mu}: Distill-CF {dcf['mean']['ndcg@10']:.2f} (val {dcf['mean']['val_ndcg100']:.2f}), "
          f"ADER {ader['mean']['ndcg@10']:.2f}, replayed interactions "
          f"{dcf['replayed_interactions']:.0f} / {ader['replayed_interactions']:.0f}, "
          f"summary share {100 * point['summary_share_of_period']:.1f}%, seeds {dcf['seeds']}", flush=True)


def summarise_sweep(points: dict[str, dict], runs: dict[str, list[dict]]) -> dict:
    """The sweep's curve and the μ chosen on validation under the share rule.

    The raw runs stay in the result (``runs``), so sweeps of other seeds can be merged later.
    """
    allowed = [mu for mu in points if points[mu]["summary_share_of_period"] <= SUMMARY_SHARE_RULE]
    chosen = max(allowed, key=lambda mu: points[mu]["distill_cf"]["mean"]["val_ndcg100"]) if allowed else None
    return {"by_mu": points, "chosen_mu": None if chosen is None else int(chosen),
            "rule": "best validation nDCG@100 of distill_cf among μ whose summaries hold "
                    f"≤ {SUMMARY_SHARE_RULE:.0%}",
            "runs": runs}


def plot_sweep(result: dict, path: Path, title: str) -> None:
    """Test nDCG@10 against replayed interactions (last period), Distill-CF and ADER, one point per μ."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for label in ("distill_cf", "ader"):
        pts = sorted((v[label]["replayed_interactions"], v[label]["mean"]["ndcg@10"], v[label]["ci95"]["ndcg@10"], mu)
                     for mu, v in result["by_mu"].items())
        x = [p[0] for p in pts]
        y = [p[1] for p in pts]
        err = np.array([[p[1] - p[2][0], p[2][1] - p[1]] for p in pts]).T
        ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=label)
        for xi, yi, _, mu in pts:
            ax.annotate(f"μ={mu}", (xi, yi), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # no crowded minor labels
    ax.set_xlabel("replayed interactions at the last period")
    ax.set_ylabel("mean nDCG@10 of M_t on t+1")
    ax.set_title(title, fontsize=10)  # long data-set names fit the 6-inch figure
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    distill, mvae, training = DistillConfig(), MVAEConfig(), TrainingConfig()
    parser.add_argument("--data", help="log file (csv, inter, parquet, …) or 'synthetic'")
    parser.add_argument("--merge", nargs="+", type=Path, metavar="JSON",
                        help="instead of running, summarise the runs saved in these JSONs (each one seed or a few "
                             "strategies of the same data and settings)")
    parser.add_argument("--periods", type=int, default=17)
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--seeds", default="0", help="comma-separated seeds")
    parser.add_argument("--mu", default=str(distill.n_fake_users),
                        help="most fake users per period summary (capped so that a summary holds ≤ "
                             f"{distill.max_share:.0%}% of its period); a comma-separated list runs the budget sweep "
                             "(uncapped)")
    parser.add_argument("--budget", choices=("interactions", "rows", "both"), default=training.exemplar_budget,
                        help="ADER's exemplar budget: as many interactions as the summaries, μ rows a period, or both")
    parser.add_argument("--epochs", type=int, default=mvae.epochs)
    parser.add_argument("--patience", type=int, default=mvae.patience)
    parser.add_argument("--lr", type=float, default=mvae.lr)
    parser.add_argument("--anneal-updates", type=int, default=mvae.anneal_updates)
    parser.add_argument("--noise", choices=("independent", "pooled"), default=distill.noise)
    parser.add_argument("--no-matrix", action="store_true", help="skip the forgetting matrix (M_t on every j ≤ t)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="seeds run in parallel processes")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads per seed (default: the cores shared out among the jobs; give 1 when "
                             "several bench processes share the machine)")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--plot", type=Path, default=None, help="PNG of the per-period means; matrices and the "
                                                                "sweep go beside it")
    args = parser.parse_args()
    if (args.data is None) == (args.merge is None):
        parser.error("give --data to run, or --merge to summarise saved runs")
    if args.merge:
        report_merged(args.merge, json_out=args.json, plot=args.plot)
        return
    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    unknown = set(strategies) - set(STRATEGIES)
    if unknown:
        parser.error(f"--strategies: unknown {sorted(unknown)}; choose from {list(STRATEGIES)}")
    seeds = [int(s) for s in args.seeds.split(",")]
    mus = [int(m) for m in args.mu.split(",")]
    mvae = replace(mvae, epochs=args.epochs, patience=args.patience, lr=args.lr, anneal_updates=args.anneal_updates)
    budgets = ("interactions", "rows") if args.budget == "both" else (args.budget,)
    arms = []
    for s in strategies:
        for budget in budgets if isinstance(STRATEGIES[s], ADER) else (training.exemplar_budget,):
            label = f"{s}_rows" if (budget, args.budget) == ("rows", "both") else s
            arms.append(Arm(label, s, replace(training, mvae=mvae, exemplar_budget=budget)))
    distill = replace(distill, n_fake_users=mus[0], noise=args.noise)
    jobs = max(1, min(args.jobs, len(seeds)))

    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        periods = load_periods(args.data, args.periods, Path(tmp))
    print(f"{args.data}: {args.periods} periods, bags per period {[r.shape[0] for r in periods.rows]}, "
          f"interactions per period {[r.nnz for r in periods.rows]}", flush=True)
    payload: dict = {"data": args.data, "seeds": seeds, "mu": mus, "budget": args.budget,
                     "distill": asdict(distill), "training": asdict(arms[0].training) if arms else None}
    labels: list[str] = []
    if len(mus) > 1:
        payload["sweep"] = sweep(periods, mus=mus, seeds=seeds, training=replace(training, mvae=mvae),
                                 distill=distill, jobs=jobs, threads=args.threads)
        print(f"chosen μ: {payload['sweep']['chosen_mu']} ({payload['sweep']['rule']})")
    else:
        runs = run_seeds(periods, seeds=seeds, arms=arms, distill=distill, matrix=not args.no_matrix, jobs=jobs,
                         threads=args.threads)
        labels = [a.label for a in arms]
        payload |= summarise(runs, labels) | {"runs": runs}
        print_report(payload, labels, len(seeds))
    payload["bench_seconds"] = time.perf_counter() - start
    print(f"\ntotal {payload['bench_seconds']:.1f} s")
    write_outputs(payload, labels, json_out=args.json, plot=args.plot, n_periods=args.periods)


def report_merged(paths: list[Path], *, json_out: Path | None, plot: Path | None) -> None:
    """Summarise saved runs of one data set and one set of settings as if they had run at once.

    Comparisons merge with comparisons and sweeps with sweeps (μ by μ); mixing them is refused.
    """
    parts = [json.loads(path.read_text()) for path in paths]
    settings = ("data", "mu", "budget", "distill", "training")
    is_sweep = "sweep" in parts[0]
    for path, part in zip(paths, parts):
        if ("sweep" in part) != is_sweep:
            raise SystemExit(f"--merge: {path} and {paths[0]} are not both sweeps or both comparisons")
        if "runs" not in (part["sweep"] if is_sweep else part):
            raise SystemExit(f"--merge: {path} holds no saved runs (written before runs were saved)")
        differ = [key for key in settings if part[key] != parts[0][key]]
        if differ:
            raise SystemExit(f"--merge: {path} differs from {paths[0]} in {differ}; only like runs merge")
    payload = {key: parts[0][key] for key in settings} | {"merged": [str(p) for p in paths]}
    if is_sweep:
        runs_by_mu = {mu: merge_runs([part["sweep"]["runs"][mu] for part in parts]) for mu in parts[0]["sweep"]["runs"]}
        points = {mu: sweep_point(runs) for mu, runs in runs_by_mu.items()}
        for mu, point in points.items():
            print_sweep_point(mu, point)
        payload["sweep"] = summarise_sweep(points, runs_by_mu)
        payload["seeds"] = sorted({run["seed"] for runs in runs_by_mu.values() for run in runs})
        print(f"chosen μ: {payload['sweep']['chosen_mu']} ({payload['sweep']['rule']})")
        write_outputs(payload, [], json_out=json_out, plot=plot, n_periods=0)
        return
    runs = merge_runs([part["runs"] for part in parts])
    order = list(STRATEGIES)
    labels = sorted({label for run in runs for label in run["arms"]},
                    key=lambda label: (order.index(label.removesuffix("_rows")), label))
    payload |= summarise(runs, labels) | {"runs": runs}
    print_report(payload, labels, len(runs))
    n_periods = len(runs[0]["arms"][next(iter(runs[0]["arms"]))]["ndcg@10"]) + 1
    write_outputs(payload, labels, json_out=json_out, plot=plot, n_periods=n_periods)


def write_outputs(payload: dict, labels: list[str], *, json_out: Path | None, plot: Path | None,
                  n_periods: int) -> None:
    """The JSON report and the PNGs: the per-period plot and one heat-map per arm, or the sweep."""
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(payload, indent=2))
    if plot is None:
        return
    plot.parent.mkdir(parents=True, exist_ok=True)
    name = Path(payload["data"]).name
    if "sweep" in payload:
        title = f"{name}: accuracy against replayed interactions, {len(payload['seeds'])} seed(s)"
        plot_sweep(payload["sweep"], plot, title)
        return
    plot_periods(payload, labels, plot, f"{name}, {n_periods} periods, {len(payload['seeds'])} seed(s)")
    for label in labels:
        if "matrix" in payload[label]:
            plot_matrix(payload[label]["matrix"], plot.with_name(f"{plot.stem}-matrix-{label}.png"),
                        f"{name}: {label}, nDCG@10 of M_t on period j")


if __name__ == "__main__":
    main()
