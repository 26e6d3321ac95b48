"""Summed Gumbel-softmax samples with a γ-independent memory footprint (Distill-CF §4.2).

Distill-CF (Sachdeva et al., NeurIPS 2022, §4.2, Eq. 5) turns learnable logits X^s into a
summary by summing γ relaxed categorical samples per fake user and clipping:

    X̂^s = hardtanh(Σ_{k=1..γ} softmax((X^s + G_k)/τ)),   G_k ~ Gumbel(0, 1)

Both samplers here return the sum S = Σ_k softmax((X^s + G_k)/τ) (apply ``jnp.minimum(S, 1)``
for the hardtanh; S ≥ 0, every row sums to γ) and never hold the γ samples at once. With
s_k = softmax(z_k), z_k = (X^s + G_k)/τ and g = ∂L/∂S,

    ∂L/∂X^s = (1/τ)·Σ_k s_k ⊙ (g − ⟨s_k, g⟩) = (1/τ)·(S ⊙ g − Σ_k s_k·⟨s_k, g⟩).

They differ in how the noise is shared:

* :func:`pooled_multi_gumbel_softmax` (the static ML-1M benchmark's choice): sample k of every
  fake user uses pool row k of a fresh (γ, |I|) Gumbel matrix P, each fake user u seeing it through its own item
  permutation π_u: G_k[u, i] = P[k, π_u(i)]. Each fake user's γ samples are therefore exactly
  i.i.d. Gumbel-softmax samples; what fake users share is the pool, at unrelated items (π is
  redrawn every call). In the permuted item order the sum is two matrix products,
  Z = W·Eᵀ and S = W ⊙ ((1/Z)·E) with W = exp(X^s/τ), E = exp(P/τ) (exp(a + b) = e^a·e^b), so
  the step costs O(μ·γ·|I|) multiply-adds in BLAS instead of γ·μ·|I| transcendentals; plain
  autodiff holds only (μ, |I|), (γ, |I|) and (μ, γ) arrays. Measured at μ = 500, |I| = 3706,
  γ = 200 on 2 cores: forward + backward 0.03 s.
* :func:`multi_gumbel_softmax` (the per-period default): independent noise for every (fake user,
  sample, item), as in the paper; a ``jax.custom_vjp`` stores only the logits, the key and S and regenerates the γ
  samples in the backward pass. Forward + backward 0.56 s at the same size: the γ·μ·|I|
  transcendentals of the noise bound it (see below).

Independent noise. Every sample k has its own noise stream: per call, one threefry draw gives
each entry a 32-bit seed b, and sample k uses the SplitMix32-style counter hash
fmix32(b + (k+1)·φ) (φ = 0x9E3779B9, fmix32 the MurmurHash3 finaliser), turned into
U ∈ (0, 1) and G = −log(−log U). Measured on the 2-core dev box for one (500, 3706) draw:
threefry 6.6 ms, ``rbg``/``unsafe_rbg`` 35 ms, the hash a fraction of a millisecond; with
γ = 200 samples in both passes, drawing each sample from ``jax.random`` would alone cost
≥ 2.6 s a step. With E = e^(−G) ~ Exp(1), exp((x + G)/τ) = w·E^(−1/τ), w = exp(x/τ): for
1/τ ∈ {1..4} (a power) or τ ∈ {2..8} (an inverse root by Newton's method,
:func:`inverse_root`) this "race form" needs one log per entry instead of two logs and an exp,
exactly (float32 rounding). Other τ use the plain softmax.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jax import Array, lax

_GOLDEN = 0x9E3779B9
_ONE_BITS = 0x3F800000  # bit pattern of float32 1.0
_HALF_ULP = 2.0**-24

COMPILER_OPTIONS = {"xla_cpu_prefer_vector_width": 512}
"""``jax.jit(..., compiler_options=...)`` for functions that run the sampler: XLA:CPU otherwise
emits 256-bit loops; with 512 (where AVX-512 exists; a preference, ignored elsewhere) the
sampler's forward + backward at μ = 500, |I| = 3706, γ = 200 took 1.70 s CPU instead of 2.34."""


def _fmix32(h: Array) -> Array:
    """MurmurHash3 32-bit finaliser: a bijection on uint32 with full avalanche."""
    h = h ^ (h >> 16)
    h = h * jnp.uint32(0x85EBCA6B)
    h = h ^ (h >> 13)
    h = h * jnp.uint32(0xC2B2AE35)
    return h ^ (h >> 16)


def exponential_noise(seeds: Array, k: Array | int) -> Array:
    """Standard exponential noise E = −log U for sample ``k`` from per-entry uint32 seeds.

    Args:
        seeds: uint32 array of per-entry seeds (any shape).
        k: sample index (0-based); different k give independent-looking streams.

    Returns:
        float32 array shaped like ``seeds``, U ∈ [2⁻²⁴, 1 − 2⁻²⁴].
    """
    bits = _fmix32(seeds + (jnp.asarray(k, jnp.uint32) + jnp.uint32(1)) * jnp.uint32(_GOLDEN))
    # 23 random mantissa bits give a float in [1, 2); shifting by 1 − 2⁻²⁴ centres the bins,
    # so U is exact and never 0 or 1.
    u = lax.bitcast_convert_type((bits >> 9) | jnp.uint32(_ONE_BITS), jnp.float32)
    return -jnp.log(u - jnp.float32(1.0 - _HALF_ULP))


def gumbel_noise(seeds: Array, k: Array | int) -> Array:
    """Standard Gumbel noise G = −log E for sample ``k`` (see :func:`exponential_noise`)."""
    return -jnp.log(exponential_noise(seeds, k))


def _seeds(key: Array, shape: tuple[int, ...]) -> Array:
    return jax.random.bits(key, shape, dtype=jnp.uint32)


def _integer(value: float, low: int, high: int) -> int | None:
    """``value`` as an int when it is one in [low, high] (up to rounding), else None."""
    m = round(value)
    return m if abs(value - m) < 1e-9 and low <= m <= high else None


def _race_form(tau: float) -> bool:
    """Whether τ has a cheap exact E^(−1/τ): 1/τ ∈ {1..4} (powers) or τ ∈ {2..8} (roots)."""
    return _integer(1.0 / tau, 1, 4) is not None or _integer(tau, 2, 8) is not None


def inverse_root(e: Array, m: int) -> Array:
    """E^(−1/m) for positive normal float32 E and an integer m ≥ 2, without log or exp.

    The float bit pattern is ≈ 2²³·(log₂ x + 127), so bits(y₀) = (1 + 1/m)·bits(1) − bits(E)/m
    starts within a few percent; four Newton steps on y⁻ᵐ = E, y ← y + y·(1 − E·yᵐ)/m
    (quadratic convergence), reach ≤ 1.1·10⁻⁷ relative error for m ≤ 8 over E ∈ [6·10⁻⁸, 17]
    (measured against float64; exp(−log(E)/m) in float32 gives up to 7·10⁻⁷).
    """
    bits = lax.bitcast_convert_type(e, jnp.int32).astype(jnp.float32)
    guess = jnp.float32(_ONE_BITS * (1 + 1 / m)) - bits * jnp.float32(1 / m)
    y = lax.bitcast_convert_type(guess.astype(jnp.int32), jnp.float32)
    for _ in range(4):
        y = y + y * ((1.0 - e * _power(y, m)) * jnp.float32(1 / m))
    return y


def _power(x: Array, m: int) -> Array:
    """xᵐ for an integer m ≥ 1 by repeated squaring (⌊log₂ m⌋ + popcount(m) − 1 multiplies)."""
    result, base = None, x
    while m:
        if m & 1:
            result = base if result is None else result * base
        m >>= 1
        if m:
            base = base * base
    return result


def _noise_power(e: Array, tau: float) -> Array:
    """E^(−1/τ) = exp(G/τ) for a race-form τ (see :func:`_race_form`)."""
    power = _integer(1.0 / tau, 1, 4)
    if power is None:
        return inverse_root(e, _integer(tau, 2, 8))
    return 1.0 / _power(e, power)


def _prepare(logits: Array, tau: float) -> Array:
    """Per-call precomputation: w = exp((x − max x)/τ) for the race form, else the logits."""
    if not _race_form(tau):
        return logits
    return jnp.exp((logits - jnp.max(logits, axis=-1, keepdims=True)) / tau)


def _sample(prepared: Array, seeds: Array, k: Array, tau: float) -> Array:
    """softmax((x + G_k)/τ). For a race-form τ in the exact form w⊙E^(−1/τ)/Σ(w⊙E^(−1/τ)) with
    E = e^(−G) ~ Exp(1): one log per entry instead of two logs and an exp."""
    if not _race_form(tau):
        return jax.nn.softmax((prepared + gumbel_noise(seeds, k)) / tau, axis=-1)
    p = prepared * _noise_power(exponential_noise(seeds, k), tau)
    return p / jnp.sum(p, axis=-1, keepdims=True)


def _sum_samples(logits: Array, key: Array, gamma: int, tau: float) -> Array:
    seeds, prepared = _seeds(key, logits.shape), _prepare(logits, tau)
    return lax.fori_loop(
        0, gamma, lambda k, acc: acc + _sample(prepared, seeds, k, tau), jnp.zeros_like(logits)
    )


@partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def multi_gumbel_softmax(logits: Array, key: Array, gamma: int, tau: float) -> Array:
    """S = Σ_{k<γ} softmax((logits + G_k)/τ) along the last axis, distinct noise per k.

    Args:
        logits: (μ, |I|) float32 learnable logits X^s.
        key: a typed JAX PRNG key; the same key gives the same γ samples.
        gamma: number of samples γ ≥ 1 (static).
        tau: temperature τ > 0 (static).

    Returns:
        (μ, |I|) float32 sum of the γ samples; every row sums to γ.
    """
    return _sum_samples(logits, key, gamma, tau)


def _fwd(logits: Array, key: Array, gamma: int, tau: float) -> tuple[Array, tuple]:
    total = _sum_samples(logits, key, gamma, tau)
    return total, (logits, key, total)


def _bwd(gamma: int, tau: float, residuals: tuple, g: Array) -> tuple[Array, None]:
    logits, key, total = residuals
    seeds, prepared = _seeds(key, logits.shape), _prepare(logits, tau)

    def body(k: Array, acc: Array) -> Array:
        s = _sample(prepared, seeds, k, tau)
        return acc + s * jnp.sum(s * g, axis=-1, keepdims=True)

    weighted = lax.fori_loop(0, gamma, body, jnp.zeros_like(logits))
    return (total * g - weighted) / tau, None


multi_gumbel_softmax.defvjp(_fwd, _bwd)


def reference_multi_gumbel_softmax(logits: Array, key: Array, gamma: int, tau: float) -> Array:
    """Same value as :func:`multi_gumbel_softmax` with plain autodiff (O(γ·μ·|I|) memory).

    For tests and small problems only.
    """
    seeds = _seeds(key, logits.shape)
    samples = [jax.nn.softmax((logits + gumbel_noise(seeds, k)) / tau, axis=-1) for k in range(gamma)]
    return jnp.sum(jnp.stack(samples), axis=0)


def pooled_noise(key: Array, shape: tuple[int, int], gamma: int) -> tuple[Array, Array, Array]:
    """The noise of :func:`pooled_multi_gumbel_softmax`: a Gumbel pool and per-row item permutations.

    π_u(i) = (σ(i) + c_u) mod |I| for one random permutation σ and a random shift c_u per row:
    distinct rows see the pool through distinct permutations (rows u ≠ v pair item i with the
    item j of σ(j) = σ(i) + c_u − c_v), and index arithmetic replaces a per-row sort.

    Args:
        key: a typed JAX PRNG key.
        shape: (μ, |I|) of the logits.
        gamma: number of samples γ.

    Returns:
        (pool P (γ, |I|) float32 Gumbel(0, 1), positions π (μ, |I|) with π[u, i] = π_u(i),
        items (μ, |I|) with items[u, π_u(i)] = i). Sample k of row u is G_k[u] = P[k, π[u]].
    """
    rows, n_items = shape
    pool_key, perm_key, shift_key = jax.random.split(key, 3)
    pool = jax.random.gumbel(pool_key, (gamma, n_items), jnp.float32)
    sigma = jax.random.permutation(perm_key, n_items)
    shift = jax.random.randint(shift_key, (rows, 1), 0, n_items)
    positions = (sigma[None, :] + shift) % n_items
    items = jnp.argsort(sigma)[(jnp.arange(n_items)[None, :] - shift) % n_items]
    return pool, positions, items


@jax.custom_vjp
def _permute(x: Array, index: Array, inverse: Array) -> Array:
    """x[u, index[u, j]] per row, for a permutation ``index`` whose inverse is ``inverse``.

    The cotangent is gathered with ``inverse`` instead of scattered (XLA:CPU scatters slowly).
    """
    return jnp.take_along_axis(x, index, axis=1)


def _permute_fwd(x: Array, index: Array, inverse: Array) -> tuple[Array, tuple[Array, Array]]:
    return _permute(x, index, inverse), (index, inverse)


def _permute_bwd(residuals: tuple[Array, Array], g: Array) -> tuple[Array, None, None]:
    index, inverse = residuals
    return jnp.take_along_axis(g, inverse, axis=1), None, None


_permute.defvjp(_permute_fwd, _permute_bwd)


def pooled_multi_gumbel_softmax(logits: Array, key: Array, gamma: int, tau: float) -> Array:
    """S = Σ_{k<γ} softmax((logits + G_k)/τ) with G_k[u, i] = P[k, π_u(i)] (:func:`pooled_noise`).

    Row u's γ samples are i.i.d. Gumbel-softmax samples; rows share the pool P under their own
    item permutations. In permuted order (W[u, π_u(i)] = w[u, i]) the sum is
    W ⊙ ((1/Z)·E), Z = W·Eᵀ, with w = exp((x − max x)/τ) and E = exp((P − max P)/τ) row by row
    (each shift rescales one sample, which the softmax ignores; it keeps every factor ≤ 1).

    Args:
        logits: (μ, |I|) float32 learnable logits X^s.
        key: a typed JAX PRNG key; the same key gives the same samples.
        gamma: number of samples γ ≥ 1.
        tau: temperature τ > 0.

    Returns:
        (μ, |I|) float32 sum of the γ samples; every row sums to γ. Differentiable by autodiff
        in O((μ + γ)·|I|) memory.
    """
    pool, positions, items = pooled_noise(key, logits.shape, gamma)
    e = jnp.exp((pool - jnp.max(pool, axis=-1, keepdims=True)) / tau)
    w = jnp.exp((logits - lax.stop_gradient(jnp.max(logits, axis=-1, keepdims=True))) / tau)
    w_perm = _permute(w, items, positions)
    total = w_perm * ((1.0 / (w_perm @ e.T)) @ e)
    return _permute(total, positions, items)


SAMPLERS = {"pooled": pooled_multi_gumbel_softmax, "independent": multi_gumbel_softmax}
"""The samplers by the name ``DistillConfig.noise`` and the benches' ``--noise`` use."""
