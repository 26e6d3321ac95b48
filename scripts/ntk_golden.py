"""Write tests/fixtures/ntk_golden.npz: neural-tangents' own ∞-AE kernels, the oracle for models.ntk.

Runs only in the separate `.venv-ntk` built by `make ntk-golden` (neural-tangents 0.6.5 needs
jax 0.5.3, tf2jax 0.3.7 and TensorFlow, which the main environment must not carry).
The network is the ∞-AE's: Dense(W_std=√2, b_std=0.1) → (Relu → Dense(W_std=√2, b_std=0.1)) × depth,
NTK parameterisation, kernel ``get='ntk'`` in float64, on seeded random sparse 0/1 inputs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402
from neural_tangents import stax  # noqa: E402

DEPTHS = (1, 2, 3)


def kernel_fn(depth: int):
    """neural-tangents kernel function of the depth-``depth`` ∞-AE network."""
    dense = dict(W_std=2**0.5, b_std=0.1, parameterization="ntk")
    layers = [stax.Dense(1, **dense)]
    for _ in range(depth):
        layers += [stax.Relu(), stax.Dense(1, **dense)]
    return stax.serial(*layers)[2]


def sparse_binary(rng: np.random.Generator, n: int, d: int, density: float) -> np.ndarray:
    """(n, d) float64 0/1 rows with the given density; row 0 is left empty (edge case)."""
    x = (rng.random((n, d)) < density).astype(np.float64)
    x[0] = 0.0
    return x


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("tests/fixtures/ntk_golden.npz"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    x1 = sparse_binary(rng, 24, 60, 0.15)
    x2 = sparse_binary(rng, 17, 60, 0.3)
    arrays = {"x1": x1, "x2": x2}
    for depth in DEPTHS:
        fn = kernel_fn(depth)
        arrays[f"ntk_12_depth{depth}"] = np.asarray(fn(x1, x2, "ntk"), dtype=np.float64)
        arrays[f"ntk_11_depth{depth}"] = np.asarray(fn(x1, None, "ntk"), dtype=np.float64)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **arrays)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes): {sorted(arrays)}")


if __name__ == "__main__":
    main()
