"""Random numbers from a counter-based generator (Philox4x32-10).

A `Generator` is a seed and an offset. Each draw reads ``numel`` counters starting at the
offset and advances it, so a draw is a pure function of (seed, offset, shape): compiled code
that receives the same seed and offset reproduces eager's numbers exactly. Normal variates use
Box-Muller over two uniform draws.
"""

from __future__ import annotations

import math
import os

import numpy as np

from ...ir import dtypes as D
from ...ir import ops as P
from ...ir.errors import DTypeError, InvalidValueError, ShapeError
from ...runtime import philox
from .. import trace_state
from ..tensor import Tensor
from . import elementwise as E
from . import shape as S
from .common import describe
from .creation import _finish, _size
from .reduction import argmax, cumsum, sum

__all__ = [
    "Generator", "default_generator", "manual_seed", "seed", "initial_seed", "get_rng_state",
    "set_rng_state", "rand", "randn", "randint", "rand_like", "randn_like", "randint_like",
    "randperm", "bernoulli", "uniform", "normal", "multinomial",
]  # fmt: skip


# The seed of a new `Generator` (PyTorch's: ``torch.Generator().initial_seed()``).
DEFAULT_SEED = 67280421310721


def os_seed() -> int:
    """A non-deterministic 64-bit seed from the operating system's entropy source."""
    return int.from_bytes(os.urandom(8), "little")


class Generator:
    """A Philox stream: ``(seed, offset)``. ``manual_seed`` resets the offset.

    A new generator starts from the fixed `DEFAULT_SEED`, as ``torch.Generator()`` does; the
    default generator is seeded from the operating system when ember is imported, so separate
    processes draw different numbers until ``ember.manual_seed`` is called (PyTorch 2.13's
    behaviour: ``torch.initial_seed()`` differs from run to run).
    """

    def __init__(self, device="cpu") -> None:
        self._seed = DEFAULT_SEED
        self._offset = 0

    def manual_seed(self, seed: int) -> Generator:
        self._seed = int(seed) % (1 << 64)
        self._offset = 0
        return self

    def seed(self) -> int:
        """Reseed from the operating system; returns the new seed."""
        self.manual_seed(os_seed())
        return self._seed

    def initial_seed(self) -> int:
        return self._seed

    def get_state(self) -> Tensor:
        return Tensor._make(np.array([self._seed, self._offset], dtype=np.uint64).view(np.int64))

    def set_state(self, state: Tensor) -> None:
        seed, offset = np.asarray(state._data, dtype=np.int64).view(np.uint64)
        self._seed, self._offset = int(seed), int(offset)

    def take(self, count: int) -> tuple[Tensor, Tensor]:
        """The (seed, offset) operands for a draw of ``count`` counters; advances the offset.

        Inside a trace they are graph inputs instead, and the compiled program advances the
        offset each time it runs (`ember.frontend.trace_state`)."""
        if (trace := trace_state.active()) is not None:
            return trace.random_operands(self, count)
        seed, offset = self.operand_arrays()
        self._offset += count
        return Tensor._make(seed), Tensor._make(offset)

    def operand_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """The seed (its 64 bits as int64) and the offset, as the 0-d arrays a draw reads."""
        seed = np.array(self._seed, dtype=np.uint64).view(np.int64).reshape(())
        return seed, np.array(self._offset, dtype=np.int64)


default_generator = Generator().manual_seed(os_seed())


def manual_seed(seed: int) -> Generator:
    return default_generator.manual_seed(seed)


def seed() -> int:
    """Reseed the default generator from the operating system and return the seed."""
    return default_generator.seed()


def initial_seed() -> int:
    """The seed the default generator was last seeded with (at import: a random one)."""
    return default_generator.initial_seed()


def get_rng_state() -> Tensor:
    return default_generator.get_state()


def set_rng_state(state: Tensor) -> None:
    default_generator.set_state(state)


def _uniform(shape, dtype, generator):
    gen = generator or default_generator
    n = int(np.prod(shape)) if shape else 1
    seed_t, offset_t = gen.take(philox.counters_used("uniform", n))
    return P.philox_uniform(seed_t, offset_t, shape=tuple(shape), dtype=dtype)


def _float_dtype(op, dtype):
    dtype = dtype or D.get_default_dtype()
    if not dtype.is_floating_point:
        raise TypeError(f"{op}: expected a floating point dtype, got {dtype.name}")
    return dtype


def rand(*size, generator=None, dtype=None, device=None, requires_grad: bool = False):
    """Uniform samples in [0, 1)."""
    dtype = _float_dtype("rand", dtype)
    return _finish(_uniform(_size(size), dtype, generator), requires_grad)


def randn(*size, generator=None, dtype=None, device=None, requires_grad: bool = False):
    """Standard normal samples (Box-Muller), equal to ``philox.normal(seed, offset, shape)``:
    computed in float64 from two uniform draws, then cast to ``dtype``."""
    dtype = _float_dtype("randn", dtype)
    shape = _size(size)
    u1 = _uniform(shape, D.float64, generator)
    u2 = _uniform(shape, D.float64, generator)
    radius = P.sqrt(P.mul(P.log(P.sub(1.0, u1)), -2.0))
    out = P.mul(radius, P.cos(P.mul(u2, 2.0 * math.pi)))
    if dtype is not D.float64:
        out = P.convert(out, dtype=dtype)
    return _finish(out, requires_grad)


def randint(low, high=None, size=None, *, generator=None, dtype=None, device=None,
            requires_grad: bool = False):  # fmt: skip
    """Integers uniform in [low, high): ``randint(high, size)`` or ``randint(low, high, size)``."""
    if size is None and isinstance(high, tuple | list):
        low, high, size = 0, low, high
    if high is None:
        low, high = 0, low
    if size is None:
        raise TypeError("randint: missing required argument 'size'")
    if high <= low:
        raise ShapeError("randint", f"expects 'high' > 'low', got low={low}, high={high}")
    dtype = dtype or D.int64
    u = _uniform(_size(tuple(size)), D.float64, generator)
    values = P.add(P.floor(P.mul(u, float(high - low))), float(low))
    return P.convert(values, dtype=dtype)


def rand_like(input, *, dtype=None, generator=None):
    return rand(*input.shape, dtype=dtype or input.dtype, generator=generator)


def randn_like(input, *, dtype=None, generator=None):
    return randn(*input.shape, dtype=dtype or input.dtype, generator=generator)


def randint_like(input, low, high=None, *, dtype=None, generator=None):
    return randint(low, high, tuple(input.shape), dtype=dtype or input.dtype, generator=generator)


def randperm(n: int, *, generator=None, dtype=None, device=None):
    """A random permutation of 0..n-1 (sorting Philox draws: eager only)."""
    gen = generator or default_generator
    bits = philox.random_bits(gen._seed, gen._offset, n)
    gen._offset += n
    order = np.lexsort((np.arange(n), bits))
    return Tensor._make(order.astype((dtype or D.int64).np))


def bernoulli(input, p=None, *, generator=None):
    probs = input if p is None else None
    u = _uniform(tuple(input.shape), input.dtype if input.dtype.is_floating_point else
                 D.get_default_dtype(), generator)  # fmt: skip
    if probs is None:
        return P.convert(P.lt(u, float(p)), dtype=input.dtype)
    return P.convert(P.lt(u, probs), dtype=input.dtype)


def uniform(shape, low=0.0, high=1.0, *, dtype=None, generator=None):
    u = _uniform(tuple(shape), _float_dtype("uniform", dtype), generator)
    return P.add(P.mul(u, float(high - low)), float(low))


def normal(mean=0.0, std=1.0, size=None, *, generator=None, dtype=None):
    if isinstance(mean, Tensor) or isinstance(std, Tensor):
        ref = mean if isinstance(mean, Tensor) else std
        z = randn(*ref.shape, dtype=ref.dtype, generator=generator)
    else:
        z = randn(*tuple(size), dtype=dtype, generator=generator)
    return P.add(P.mul(z, std), mean) if not isinstance(std, Tensor) and not isinstance(
        mean, Tensor) else z * std + mean  # fmt: skip


def _check_distribution(input) -> None:
    if input.ndim not in (1, 2):
        raise ShapeError("multinomial", f"prob_dist must be 1 or 2 dim, got {describe(input)}")
    if not input.dtype.is_floating_point:
        raise DTypeError(
            "multinomial", f"only supports floating-point dtypes, got {describe(input)}"
        )
    if input._traced:  # values unknown while tracing; compiled code does not check them
        return
    data = input._data.astype(np.float64)
    if not np.all(np.isfinite(data)) or np.any(data < 0):
        raise InvalidValueError(
            "multinomial",
            f"probability tensor {describe(input)} contains inf, nan or an element < 0",
        )
    if np.any(data.sum(axis=-1) <= 0):
        raise InvalidValueError(
            "multinomial",
            f"invalid distribution {describe(input)}: a row's probabilities sum to zero",
        )


def multinomial(input, num_samples: int, replacement: bool = False, *, generator=None):
    """Draw category indices from the rows of ``input`` (non-negative weights, any scale).

    With replacement (or one sample) each draw inverts the cumulative distribution at a
    uniform number; without replacement it takes the top ``num_samples`` of
    ``log(p) + Gumbel noise``, which samples without replacement in proportion to ``p``.
    """
    _check_distribution(input)
    rows = P.reshape(input, shape=(int(np.prod(input.shape[:-1])), input.shape[-1]))
    n_rows, categories = rows.shape
    if not replacement and num_samples > categories:
        raise ShapeError(
            "multinomial",
            f"cannot sample {num_samples} > {categories} (prob_dist.size(-1)) samples without "
            "replacement",
        )
    weights = E.cast(rows, D.float64)
    if replacement or num_samples == 1:
        cdf = cumsum(weights, 1)
        cdf = E.div(cdf, S.narrow(cdf, 1, categories - 1, 1))
        u = _uniform((n_rows, num_samples), D.float64, generator)
        below = E.le(S.unsqueeze(cdf, 1), S.unsqueeze(u, 2))  # [rows, samples, categories]
        picks = sum(E.cast(below, D.int64), 2)
        # rounding can leave the last cdf entry a hair below u: stay on a real category
        picks = E.minimum(picks, categories - 1)
    else:
        u = _uniform((n_rows, categories), D.float64, generator)
        keys = E.sub(E.log(weights), E.log(E.neg(E.log(E.sub(1.0, u)))))  # log p + Gumbel
        columns = P.iota(shape=(n_rows, categories), axis=1, dtype=D.int64)
        chosen = []
        for _ in range(num_samples):
            best = argmax(keys, 1, keepdim=True)
            chosen.append(best)
            keys = E.masked_fill(keys, E.eq(columns, best), -math.inf)
        picks = S.cat(chosen, 1)
    out_shape = (*input.shape[:-1], num_samples)
    return P.reshape(picks, shape=out_shape)
