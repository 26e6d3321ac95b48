"""bench/scale.py: its FLOP counts, slope fits and synthetic periods (tiny sizes; no model runs)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from helpers import BENCH, load_bench

scale = load_bench(BENCH / "scale.py")


def test_mvae_counts_by_hand() -> None:
    # r = 2 rows, nnz = 5, I = 10, h = 3, l = 2: 2·5·3 + 2·2·(3·3·2 + 3·10); + backward and log-softmax
    assert scale.mvae_forward_flops(2, 5, 10, hidden=3, latent=2) == 30 + 4 * 48
    assert scale.mvae_train_flops(2, 5, 10, hidden=3, latent=2) == 60 + 12 * 48 + 12 * 10


def test_mvae_training_count_matches_torch_on_a_dense_input() -> None:
    """With every input cell non-zero (nnz = r·I) the count is what torch's FLOP counter finds for
    MultVAE's matrix products, forward and backward, plus the log-softmax's 6 FLOPs an entry."""
    rows, items, hidden, latent = 4, 7, 5, 3
    torch.manual_seed(0)
    layers = [torch.nn.Linear(items, hidden), torch.nn.Linear(hidden, 2 * latent), torch.nn.Linear(latent, hidden),
              torch.nn.Linear(hidden, items)]
    x = torch.rand(rows, items)
    with FlopCounterMode(display=False) as counter:
        stats = layers[1](torch.tanh(layers[0](x)))
        mu, logvar = stats[:, :latent], stats[:, latent:]
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        logits = layers[3](torch.tanh(layers[2](z)))
        (-(torch.log_softmax(logits, dim=1) * x).sum()).backward()
    expected = scale.mvae_train_flops(rows, rows * items, items, hidden=hidden, latent=latent) - 6 * rows * items
    assert counter.get_total_flops() == expected


def test_mvae_forward_count_matches_torch_on_a_dense_input() -> None:
    rows, items, hidden, latent = 3, 6, 4, 2
    layers = [torch.nn.Linear(items, hidden), torch.nn.Linear(hidden, 2 * latent), torch.nn.Linear(latent, hidden),
              torch.nn.Linear(hidden, items)]
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        stats = layers[1](torch.tanh(layers[0](torch.rand(rows, items))))
        layers[3](torch.tanh(layers[2](stats[:, :latent])))
    assert counter.get_total_flops() == scale.mvae_forward_flops(rows, rows * items, items, hidden=hidden,
                                                                 latent=latent)


def test_distill_counts_by_hand() -> None:
    # b = 4, μ = 2, I = 10, γ = 3:
    # 10·b·μ·I + 4·μ²·I + 6·μ²·min(b, I) + 4/3·μ³ + 6·b·I (+ 8·μ·γ·I pooled)
    independent = 800 + 160 + 96 + 32 / 3 + 240
    assert scale.distill_step_flops(4, 2, 10, gamma=3, pooled=False) == pytest.approx(independent)
    assert scale.distill_step_flops(4, 2, 10, gamma=3, pooled=True) == pytest.approx(independent + 480)
    # m = 5 validation rows, 3 λs: 2·m·μ·I·(1 + 3) + 4·μ²·I + 3·(μ³/3 + 2·μ²·m)
    assert scale.distill_validation_flops(5, 2, 10, n_lams=3) == pytest.approx(800 + 160 + 3 * (8 / 3 + 40))


def test_distill_step_count_grows_linearly_in_the_batch() -> None:
    small, large = (scale.distill_step_flops(b, 20, 5000, gamma=200, pooled=False) for b in (10_000, 20_000))
    assert large / small == pytest.approx(2.0, rel=1e-3)


def test_fit_slope_recovers_a_power_law() -> None:
    x = [25e3, 1e5, 4e5, 1.6e6]
    assert scale.fit_slope(x, [3.0 * v ** 1.5 for v in x]) == pytest.approx(1.5)
    assert scale.fit_slope(x, [7.0] * 4) == pytest.approx(0.0, abs=1e-12)
    assert scale.fit_slope(x, [None, 2.0, None, 8.0]) == pytest.approx(np.log(4) / np.log(16))   # skipped sizes
    assert scale.fit_slope([1e5], [1.0]) is None and scale.fit_slope(x, [None] * 4) is None


def test_slopes_per_step_over_a_series() -> None:
    series = {f"{n}": {"interactions": n, "steps": {"a": {"seconds": 2e-6 * n}, "b": {"skipped": "RSS"}}}
              for n in (1_000, 10_000, 100_000)}
    assert scale.slopes(series, ("a", "b"), "interactions", "seconds") == {"a": pytest.approx(1.0), "b": None}


@pytest.mark.parametrize(("text", "value"), [("25k", 25_000), ("1.6M", 1_600_000), ("5000", 5_000), ("2K", 2_000)])
def test_parse_count(text: str, value: int) -> None:
    assert scale.parse_count(text) == value


def test_parse_counts_rejects_zero() -> None:
    assert scale.parse_counts("25k, 100k") == [25_000, 100_000]
    with pytest.raises(Exception, match="count"):
        scale.parse_count("0")


def test_make_periods_are_binary_bags_of_about_the_asked_size() -> None:
    periods = scale.make_periods(5_000, 2_000, seed=0)
    assert len(periods) == scale.N_PERIODS
    for bags in periods:
        assert bags.shape[1] == 2_000 and set(np.unique(bags.data)) == {1.0}
        assert np.diff(bags.indptr).min() >= 1                       # one row per active user
        assert 0.8 * 5_000 <= bags.nnz <= 5_000 and 15 <= bags.nnz / bags.shape[0] <= 40
