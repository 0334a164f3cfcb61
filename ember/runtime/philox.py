"""Counter-based random numbers (Philox4x32-10) shared by eager kernels and, later,
generated CPU/GPU kernels.

The generator is bit-exact with Triton's ``tl.randint`` (``triton/language/random.py``:
``philox_impl``, ``philox``, ``randint4x``, ``randint``), so a generated kernel that calls
``tl.randint(seed, offset + tl.arange(0, BLOCK))`` reproduces :func:`random_bits` exactly:

* key: ``k0`` = low 32 bits of ``seed``, ``k1`` = high 32 bits of ``seed``;
* counter of element ``i``: ``c0``/``c1`` = low/high 32 bits of ``offset + i``, ``c2 = c3 = 0``;
* the result is the first output word of Philox4x32-10.

Everything is vectorized with numpy; only the 10 rounds are a Python loop.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

__all__ = ["counters_used", "normal", "philox4x32", "random_bits", "uniform"]

PHILOX_KEY_A = 0x9E3779B9
PHILOX_KEY_B = 0xBB67AE85
PHILOX_ROUND_A = 0xD2511F53
PHILOX_ROUND_B = 0xCD9E8D57
N_ROUNDS_DEFAULT = 10

_MASK32 = np.uint64(0xFFFFFFFF)
_SHIFT32 = np.uint64(32)


def _mulhilo(a: int, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(hi, lo)`` 32-bit halves of the 64-bit product ``a * b`` (``b`` is uint32)."""
    prod = np.uint64(a) * b.astype(np.uint64)
    return (prod >> _SHIFT32).astype(np.uint32), (prod & _MASK32).astype(np.uint32)


def philox4x32(
    c0: np.ndarray,
    c1: np.ndarray,
    c2: np.ndarray,
    c3: np.ndarray,
    k0: np.ndarray | int,
    k1: np.ndarray | int,
    rounds: int = N_ROUNDS_DEFAULT,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Run ``rounds`` rounds of Philox4x32 on counter ``(c0, c1, c2, c3)`` with key ``(k0, k1)``.

    All inputs are interpreted as uint32 and broadcast against each other; the four output
    words are uint32 arrays of the broadcast shape.  The round order is Triton's
    ``philox_impl`` (identical to Random123's ``philox4x32_R``).
    """
    c0, c1, c2, c3, k0, k1 = np.broadcast_arrays(
        *(np.asarray(x, dtype=np.uint32) for x in (c0, c1, c2, c3, k0, k1))
    )
    key_a, key_b = np.uint32(PHILOX_KEY_A), np.uint32(PHILOX_KEY_B)
    with np.errstate(over="ignore"):
        for _ in range(rounds):
            hi_b, lo_b = _mulhilo(PHILOX_ROUND_B, c2)
            hi_a, lo_a = _mulhilo(PHILOX_ROUND_A, c0)
            c0, c1, c2, c3 = hi_b ^ c1 ^ k0, lo_b, hi_a ^ c3 ^ k1, lo_a
            k0 = k0 + key_a  # wraps modulo 2**32
            k1 = k1 + key_b
    return c0, c1, c2, c3


def _check_seed_offset(seed: int, offset: int, n: int) -> None:
    if not 0 <= seed < 2**64:
        raise ValueError(f"seed must be in [0, 2**64), got {seed}")
    if n < 0:
        raise ValueError(f"n must be non-negative, got {n}")
    if offset < 0 or offset + n > 2**64:
        raise ValueError(f"counters [{offset}, {offset} + {n}) must lie in [0, 2**64)")


def random_bits(seed: int, offset: int, n: int) -> np.ndarray:
    """Return ``n`` uint32 random words for counters ``offset .. offset + n - 1``.

    Equals ``tl.randint(seed, offset + tl.arange(0, n))`` with a 64-bit offset: the first
    output word of Philox4x32-10 with key ``(seed_lo, seed_hi)`` and counter
    ``(ctr_lo, ctr_hi, 0, 0)``.
    """
    seed, offset, n = int(seed), int(offset), int(n)
    _check_seed_offset(seed, offset, n)
    if n == 0:
        return np.zeros(0, dtype=np.uint32)
    # Counters as uint64; offset + n <= 2**64, so no wrap-around happens.
    ctr = np.uint64(offset) + np.arange(n, dtype=np.uint64)
    c0 = (ctr & _MASK32).astype(np.uint32)
    c1 = (ctr >> _SHIFT32).astype(np.uint32)
    zero = np.zeros(n, dtype=np.uint32)
    k0, k1 = np.uint32(seed & 0xFFFFFFFF), np.uint32(seed >> 32)
    return philox4x32(c0, c1, zero, zero, k0, k1)[0]


def _shape_tuple(shape: int | tuple[int, ...]) -> tuple[int, ...]:
    return (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(s) for s in shape)


def uniform(
    seed: int, offset: int, shape: int | tuple[int, ...], dtype: npt.DTypeLike = np.float32
) -> np.ndarray:
    """Uniform floats in ``[0, 1)`` from counters ``offset .. offset + prod(shape) - 1``.

    Each value is ``(bits >> 8) * 2**-24``, exact in float32 and never 1.0.  The result has
    ``shape`` (C order; ``()`` is one element) and is cast to ``dtype`` afterwards, so float32
    and float64 draws are equal in value.
    """
    shape = _shape_tuple(shape)
    bits = random_bits(seed, offset, math.prod(shape))
    out = (bits >> np.uint32(8)).astype(np.float32) * np.float32(2.0**-24)
    out = out.reshape(shape)
    if np.dtype(dtype) != np.float32:
        out = out.astype(dtype)
    return out


def normal(
    seed: int, offset: int, shape: int | tuple[int, ...], dtype: npt.DTypeLike = np.float32
) -> np.ndarray:
    """Standard normal samples by Box-Muller; consumes ``2 * prod(shape)`` counters.

    With ``n = prod(shape)``, ``u1 = uniform(seed, offset, n)`` and
    ``u2 = uniform(seed, offset + n, n)``, returns
    ``sqrt(-2 log(1 - u1)) * cos(2 pi u2)`` computed in float64, then cast to ``dtype``.
    """
    shape = _shape_tuple(shape)
    n = math.prod(shape)
    u1 = uniform(seed, offset, n).astype(np.float64)
    u2 = uniform(seed, offset + n, n).astype(np.float64)
    z = np.sqrt(-2.0 * np.log(1.0 - u1)) * np.cos(2.0 * np.pi * u2)
    return z.reshape(shape).astype(dtype)


def counters_used(kind: str, n: int) -> int:
    """Number of Philox counters a draw of ``n`` elements of ``kind`` consumes."""
    if n < 0:
        raise ValueError(f"n must be non-negative, got {n}")
    if kind == "uniform":
        return n
    if kind == "normal":
        return 2 * n
    raise ValueError(f"unknown distribution kind {kind!r}; expected 'uniform' or 'normal'")
