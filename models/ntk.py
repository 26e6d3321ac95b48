"""Closed-form neural tangent kernel of the ∞-AE network.

The ∞-AE (Sachdeva et al., NeurIPS 2022, §3) is an infinitely wide autoencoder
``Dense → (ReLU → Dense) × depth`` with ``W_std = √2``, ``b_std = 0.1`` in the NTK
parameterisation. Its kernel follows the ReLU arc-cosine recursion (Cho & Saul 2009;
Jacot et al. 2018), written here exactly as ``neural_tangents.stax`` computes it:

    Σ¹(x, x′) = 2·(x·x′)/d + 0.01,           Θ¹ = Σ¹
    per ReLU layer, with ρ = Σ/√(Σ(x,x)Σ(x′,x′)) and θ = arccos ρ:
        Σ̃ = √(Σ(x,x)Σ(x′,x′))·(sin θ + (π − θ)·cos θ)/(2π)
        Σ̇ = (π − θ)/(2π)
        Σ′ = 2Σ̃ + 0.01,                      Θ′ = Σ′ + 2·Θ·Σ̇
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import Array

W_VAR = 2.0  # W_std = √2
B_VAR = 0.01  # b_std = 0.1


def ntk(x1: Array, x2: Array, *, depth: int = 1) -> Array:
    """NTK Θ(x1, x2) of the ∞-AE.

    Args:
        x1: (n1, d) rows (dense).
        x2: (n2, d) rows (dense), same d.
        depth: number of ReLU hidden layers, ≥ 1.

    Returns:
        (n1, n2) kernel matrix in the inputs' dtype.
    """
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    d = x1.shape[1]
    sigma = W_VAR * (x1 @ x2.T) / d + B_VAR
    sigma_11 = W_VAR * jnp.sum(x1 * x1, axis=1) / d + B_VAR
    sigma_22 = W_VAR * jnp.sum(x2 * x2, axis=1) / d + B_VAR
    theta = sigma
    for _ in range(depth):
        norm = jnp.sqrt(sigma_11[:, None] * sigma_22[None, :])
        angle = jnp.arccos(jnp.clip(sigma / norm, -1.0, 1.0))
        sigma_relu = norm * (jnp.sin(angle) + (jnp.pi - angle) * jnp.cos(angle)) / (2 * jnp.pi)
        sigma_dot = (jnp.pi - angle) / (2 * jnp.pi)
        sigma = W_VAR * sigma_relu + B_VAR
        theta = sigma + W_VAR * theta * sigma_dot
        # On the diagonal θ = 0, so Σ̃(x, x) = Σ(x, x)/2 and Σ′(x, x) = Σ(x, x) + b².
        sigma_11 = sigma_11 + B_VAR
        sigma_22 = sigma_22 + B_VAR
    return theta
