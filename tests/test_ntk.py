"""models.ntk against neural-tangents' own kernels (tests/fixtures/ntk_golden.npz, `make ntk-golden`)."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse as sp

from models import ntk as ntk_module
from models.ntk import gram_blocks, ntk, ntk_matrix, ntk_traceable

GOLDEN = np.load(Path(__file__).parent / "fixtures" / "ntk_golden.npz")


def _rel_err(ours: np.ndarray, ref: np.ndarray) -> float:
    return float(np.max(np.abs(ours - ref) / np.abs(ref)))


@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.parametrize("sparse", [False, True])
def test_matches_neural_tangents_float64(depth: int, sparse: bool) -> None:
    x1, x2 = GOLDEN["x1"], GOLDEN["x2"]
    a, b = (sp.csr_matrix(x1), sp.csr_matrix(x2)) if sparse else (x1, x2)
    k12 = np.asarray(ntk(a, b, depth=depth, dtype=np.float64, block_rows=7))
    k11 = np.asarray(ntk(a, a, depth=depth, dtype=np.float64))
    assert k12.dtype == np.float64
    assert _rel_err(k12, GOLDEN[f"ntk_12_depth{depth}"]) <= 1e-10
    assert _rel_err(k11, GOLDEN[f"ntk_11_depth{depth}"]) <= 1e-10


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_matches_neural_tangents_float32(depth: int) -> None:
    x1, x2 = GOLDEN["x1"].astype(np.float32), sp.csr_matrix(GOLDEN["x2"], dtype=np.float32)
    k12 = np.asarray(ntk(x1, x2, depth=depth))
    assert k12.dtype == np.float32
    assert _rel_err(k12, GOLDEN[f"ntk_12_depth{depth}"]) <= 1e-5


def test_blocks_and_input_kinds_agree() -> None:
    rng = np.random.default_rng(0)
    x1 = (rng.random((50, 30)) < 0.2).astype(np.float32)
    x2 = (rng.random((20, 30)) < 0.2).astype(np.float32)
    whole = ntk_matrix(x1, x2, depth=2)
    np.testing.assert_allclose(ntk_matrix(sp.csr_matrix(x1), sp.csr_matrix(x2), depth=2, block_rows=8), whole, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(ntk(jnp.asarray(x1), x2, depth=2, block_rows=13)), whole, rtol=1e-6)


@pytest.mark.parametrize("dense_limit", [1 << 30, 0])  # densified right-hand rows, or sparse products
@pytest.mark.parametrize("fractional", [False, True])  # 0/1 rows take the int8 path
def test_gram_blocks_equal_a_plain_product(dense_limit: int, fractional: bool, monkeypatch) -> None:
    monkeypatch.setattr(ntk_module, "DENSE_BYTES", dense_limit)
    rng = np.random.default_rng(2)
    x1 = (rng.random((37, 300)) < 0.4).astype(np.float64)
    x2 = (rng.random((23, 300)) < 0.4).astype(np.float64)
    if fractional:
        x2 *= rng.random(x2.shape)
    blocks = list(gram_blocks(sp.csr_matrix(x1), sp.csr_matrix(x2), dtype=np.float64, block_rows=10))
    assert [start for start, _ in blocks] == [0, 10, 20, 30]
    assert all(g.dtype == np.float64 for _, g in blocks)
    np.testing.assert_allclose(np.vstack([g for _, g in blocks]), x1 @ x2.T, rtol=1e-12)


def test_symmetric_and_rejects_bad_input() -> None:
    x = (np.random.default_rng(1).random((15, 10)) < 0.3).astype(np.float64)
    k = ntk_matrix(x, x, depth=1, dtype=np.float64)
    np.testing.assert_allclose(k, k.T, rtol=1e-12)
    with pytest.raises(ValueError, match="depth"):
        ntk_matrix(x, x, depth=0)
    with pytest.raises(ValueError, match="columns"):
        ntk_matrix(x, x[:, :5])
    with pytest.raises(ValueError, match="dtype"):
        ntk_matrix(x, x, dtype=np.float16)


@pytest.mark.parametrize("depth", [1, 2])
def test_traceable_matches_exact_off_diagonal_with_finite_gradients(depth: int) -> None:
    x = jnp.asarray(GOLDEN["x1"], jnp.float32)
    exact = np.asarray(ntk(x, x, depth=depth))
    ours = np.asarray(jax.jit(ntk_traceable, static_argnames="depth")(x, x, depth=depth))
    off = ~np.eye(len(exact), dtype=bool)
    np.testing.assert_allclose(ours[off], exact[off], rtol=1e-5)
    np.testing.assert_allclose(np.diag(ours), np.diag(exact), rtol=1e-3)  # ρ capped at ≈ 1 − 2⁻²⁰
    grad = jax.grad(lambda z: jnp.sum(ntk_traceable(z, z, depth=depth) ** 2))(x)
    assert np.isfinite(np.asarray(grad)).all()
    # off-diagonal pairs: the gradient equals the float64 finite difference of the exact kernel
    probe = jnp.asarray(GOLDEN["x2"], jnp.float32)
    g = np.asarray(jax.grad(lambda z: jnp.sum(ntk_traceable(z, probe, depth=depth)))(x))
    step = np.zeros_like(GOLDEN["x1"])
    step[0, 0] = 1e-6
    fd = (ntk_matrix(GOLDEN["x1"] + step, GOLDEN["x2"], depth=depth, dtype=np.float64).sum()
          - ntk_matrix(GOLDEN["x1"] - step, GOLDEN["x2"], depth=depth, dtype=np.float64).sum()) / 2e-6
    assert g[0, 0] == pytest.approx(fd, rel=1e-3)
