"""Where model code runs: one name (``auto``, ``cpu`` or ``cuda``) resolved once per training call.

``auto`` takes the GPU when the framework sees one and the CPU otherwise; ``cuda`` where no GPU is
visible fails at once with :class:`DeviceUnavailable`, instead of silently running on the CPU.
The resolved name is what callers record next to their results.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import jax
import torch

from models.configs import Device


class DeviceUnavailable(RuntimeError):
    """A device was asked for by name but this process cannot see it."""


def torch_device(name: Device) -> torch.device:
    """The torch device for ``name`` (``auto`` → ``cuda`` when available, else ``cpu``)."""
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if name in ("auto", "cuda"):
        if not torch.cuda.is_available():
            raise DeviceUnavailable("device 'cuda' was asked for, but torch sees no CUDA GPU")
        return torch.device("cuda")
    raise ValueError(f"device must be one of auto, cpu, cuda; got {name!r}")


def jax_device(name: Device) -> jax.Device:
    """The JAX device for ``name`` (``auto`` → the first GPU when JAX has one, else the CPU)."""
    if name not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be one of auto, cpu, cuda; got {name!r}")
    gpus = _jax_gpus()
    if name == "cuda" and not gpus:
        raise DeviceUnavailable(
            "device 'cuda' was asked for, but JAX sees no GPU (install the relay-recsys[gpu] extra)"
        )
    if name != "cpu" and gpus:
        return gpus[0]
    return jax.devices("cpu")[0]


def _jax_gpus() -> list[jax.Device]:
    try:
        return jax.devices("gpu")
    except RuntimeError:  # no GPU backend installed
        return []


@contextmanager
def deterministic() -> Iterator[None]:
    """Torch's deterministic algorithms inside the block (same seed, same machine → same numbers),
    the caller's setting restored after it. Where an operation has no deterministic kernel torch
    warns instead of failing."""
    enabled, warn_only = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(enabled, warn_only=warn_only)
