"""Tests for ember.runtime.philox (Philox4x32-10, bit-exact with Triton's tl.randint)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ember.runtime.philox import counters_used, normal, philox4x32, random_bits, uniform

M32 = 0xFFFFFFFF

# ---------------------------------------------------------------------------
# Independent scalar reference, written in the style of Random123's philox.h
# (philox4x32round / philox4x32bumpkey, key bumped *before* rounds 2..R), with
# plain Python ints and one element at a time.
# ---------------------------------------------------------------------------


def _ref_mulhilo(a, b):
    p = a * b
    return p >> 32, p & M32


def _ref_philox4x32(ctr, key, rounds=10):
    c = [int(x) for x in ctr]
    k = [int(x) for x in key]
    for r in range(rounds):
        if r > 0:
            k = [(k[0] + 0x9E3779B9) & M32, (k[1] + 0xBB67AE85) & M32]
        hi0, lo0 = _ref_mulhilo(0xD2511F53, c[0])
        hi1, lo1 = _ref_mulhilo(0xCD9E8D57, c[2])
        c = [hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0]
    return tuple(c)


def _ref_random_bits(seed, offset, n):
    out = []
    for i in range(n):
        ctr = offset + i
        out.append(_ref_philox4x32((ctr & M32, ctr >> 32, 0, 0), (seed & M32, seed >> 32))[0])
    return np.array(out, dtype=np.uint32)


# ---------------------------------------------------------------------------
# Known-answer tests (Random123 kat_vectors, "philox4x32 10" lines)
# ---------------------------------------------------------------------------

KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((M32, M32, M32, M32), (M32, M32), (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    (
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
]


@pytest.mark.parametrize("ctr,key,expected", KAT)
def test_kat_vectors_vectorized(ctr, key, expected):
    c = [np.array([x], dtype=np.uint32) for x in ctr]
    k = [np.uint32(x) for x in key]
    out = philox4x32(*c, *k)
    assert all(o.dtype == np.uint32 for o in out)
    assert tuple(int(o[0]) for o in out) == expected


@pytest.mark.parametrize("ctr,key,expected", KAT)
def test_kat_vectors_reference(ctr, key, expected):
    assert _ref_philox4x32(ctr, key) == expected


def test_kat_vectors_batched_with_broadcast_key():
    ctrs = np.array([kat[0] for kat in KAT], dtype=np.uint32)
    keys = np.array([kat[1] for kat in KAT], dtype=np.uint32)
    expected = np.array([kat[2] for kat in KAT], dtype=np.uint32)
    out = philox4x32(*ctrs.T, keys[:, 0], keys[:, 1])
    np.testing.assert_array_equal(np.stack(out, axis=1), expected)
    # scalar key broadcast against a vector of counters
    out0 = philox4x32(ctrs[:, 0], ctrs[:, 1], ctrs[:, 2], ctrs[:, 3], 0, 0)
    for i in range(len(KAT)):
        assert tuple(int(o[i]) for o in out0) == _ref_philox4x32(
            tuple(int(x) for x in ctrs[i]), (0, 0)
        )


def test_rounds_parameter():
    c = [np.array([1, 2], dtype=np.uint32)] * 4
    out7 = philox4x32(*c, 3, 4, rounds=7)
    for j in range(2):
        expected = _ref_philox4x32((j + 1,) * 4, (3, 4), rounds=7)
        assert tuple(int(o[j]) for o in out7) == expected
    assert tuple(int(o[0]) for o in out7) != tuple(int(o[0]) for o in philox4x32(*c, 3, 4))


# ---------------------------------------------------------------------------
# Vectorized vs scalar reference
# ---------------------------------------------------------------------------

seeds = st.integers(0, 2**64 - 1)
offsets = st.one_of(
    st.integers(0, 2**64 - 64),
    st.integers(2**32 - 40, 2**32 + 8),  # crosses the c1 boundary
    st.integers(2 * 2**32 - 20, 2 * 2**32 + 4),
    st.integers(2**64 - 64, 2**64 - 40),
)


@settings(max_examples=200, deadline=None)
@given(seed=seeds, offset=offsets, n=st.integers(0, 40))
def test_random_bits_matches_reference(seed, offset, n):
    got = random_bits(seed, offset, n)
    assert got.dtype == np.uint32
    assert got.shape == (n,)
    np.testing.assert_array_equal(got, _ref_random_bits(seed, offset, n))


def test_offset_crossing_2_pow_32_uses_high_word():
    seed = 0x1234_5678_9ABC_DEF0
    got = random_bits(seed, 2**32 - 3, 6)
    np.testing.assert_array_equal(got, _ref_random_bits(seed, 2**32 - 3, 6))
    # counter 2**32 must differ from counter 0 (i.e. the high word is not dropped)
    assert got[3] != random_bits(seed, 0, 1)[0]
    assert got[3] == _ref_philox4x32((0, 1, 0, 0), (seed & M32, seed >> 32))[0]


def test_seed_split_into_low_and_high_key_words():
    seed = (0xDEADBEEF << 32) | 0x01234567
    assert random_bits(seed, 5, 1)[0] == _ref_philox4x32((5, 0, 0, 0), (0x01234567, 0xDEADBEEF))[0]
    assert random_bits(seed, 5, 1)[0] != random_bits(0x01234567, 5, 1)[0]


def test_last_counters_before_2_pow_64():
    got = random_bits(7, 2**64 - 3, 3)
    np.testing.assert_array_equal(got, _ref_random_bits(7, 2**64 - 3, 3))


@pytest.mark.parametrize(
    "seed,offset,n", [(-1, 0, 1), (2**64, 0, 1), (0, -1, 1), (0, 2**64 - 1, 2), (0, 0, -1)]
)
def test_invalid_arguments(seed, offset, n):
    with pytest.raises(ValueError):
        random_bits(seed, offset, n)


# ---------------------------------------------------------------------------
# Stream properties
# ---------------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(seed=seeds, offset=offsets.filter(lambda o: o < 2**64 - 100), n=st.integers(0, 40))
def test_draws_are_deterministic_and_split_cleanly(seed, offset, n):
    a = random_bits(seed, offset, 2 * n)
    np.testing.assert_array_equal(a, random_bits(seed, offset, 2 * n))
    np.testing.assert_array_equal(
        a, np.concatenate([random_bits(seed, offset, n), random_bits(seed, offset + n, n)])
    )
    u = uniform(seed, offset, (2 * n,))
    np.testing.assert_array_equal(
        u, np.concatenate([uniform(seed, offset, (n,)), uniform(seed, offset + n, (n,))])
    )


def test_different_seeds_and_offsets_differ():
    a = random_bits(1, 0, 1000)
    assert not np.array_equal(a, random_bits(2, 0, 1000))
    assert not np.array_equal(a, random_bits(1, 1000, 1000))
    assert len(np.unique(a)) > 990  # 32-bit words, collisions are rare


def test_empty_draws():
    assert random_bits(3, 10, 0).shape == (0,)
    assert random_bits(3, 10, 0).dtype == np.uint32
    assert uniform(3, 10, (0, 4)).shape == (0, 4)
    assert normal(3, 10, (2, 0)).shape == (2, 0)
    assert uniform(3, 10, 0).shape == (0,)


def test_scalar_shape():
    u = uniform(11, 42, ())
    assert u.shape == () and u.dtype == np.float32
    assert u == uniform(11, 42, (1,))[0]
    z = normal(11, 42, ())
    assert z.shape == () and z.dtype == np.float32
    assert z == normal(11, 42, (1,))[0]


# ---------------------------------------------------------------------------
# uniform
# ---------------------------------------------------------------------------


def test_uniform_formula_range_and_exactness():
    bits = random_bits(5, 123, 100_000)
    u = uniform(5, 123, (100_000,))
    assert u.dtype == np.float32
    assert np.all(u >= 0.0) and np.all(u < 1.0)
    scaled = u.astype(np.float64) * 2.0**24
    np.testing.assert_array_equal(scaled, np.floor(scaled))  # multiples of 2**-24
    np.testing.assert_array_equal(scaled.astype(np.uint64), bits >> 8)
    # the largest possible value is exactly 1 - 2**-24 and stays below 1 in float32
    top = np.float32(np.uint32(M32) >> np.uint32(8)) * np.float32(2.0**-24)
    assert top < np.float32(1.0) and float(top) == 1.0 - 2.0**-24


def test_uniform_shape_c_order_and_dtypes():
    u = uniform(9, 77, (3, 4, 5))
    assert u.shape == (3, 4, 5)
    np.testing.assert_array_equal(u.ravel(), uniform(9, 77, (60,)))
    u64 = uniform(9, 77, (3, 4, 5), dtype=np.float64)
    assert u64.dtype == np.float64
    np.testing.assert_array_equal(u64, u.astype(np.float64))
    assert uniform(9, 77, (3,), dtype=np.float16).dtype == np.float16


def test_uniform_statistics():
    u = uniform(2024, 0, (100_000,)).astype(np.float64)
    assert abs(u.mean() - 0.5) < 0.01
    assert abs(u.var() - 1.0 / 12.0) < 0.005
    hist, _ = np.histogram(u, bins=10, range=(0.0, 1.0))
    assert np.all(np.abs(hist - 10_000) < 500)


# ---------------------------------------------------------------------------
# normal
# ---------------------------------------------------------------------------


def test_normal_is_box_muller_of_two_uniform_blocks():
    shape = (4, 7)
    n = 28
    u1 = uniform(31, 1000, (n,)).astype(np.float64)
    u2 = uniform(31, 1000 + n, (n,)).astype(np.float64)
    expected = np.sqrt(-2.0 * np.log(1.0 - u1)) * np.cos(2.0 * np.pi * u2)
    z64 = normal(31, 1000, shape, dtype=np.float64)
    assert z64.shape == shape and z64.dtype == np.float64
    np.testing.assert_array_equal(z64.ravel(), expected)
    z32 = normal(31, 1000, shape)
    assert z32.dtype == np.float32
    np.testing.assert_array_equal(z32, z64.astype(np.float32))


def test_normal_statistics():
    z = normal(7, 0, (100_000,)).astype(np.float64)
    assert np.all(np.isfinite(z))
    assert abs(z.mean()) < 0.02
    assert abs(z.var() - 1.0) < 0.03
    assert abs(np.mean(np.abs(z) < 1.0) - 0.6827) < 0.01


def test_counters_used():
    assert counters_used("uniform", 10) == 10
    assert counters_used("normal", 10) == 20
    assert counters_used("normal", 0) == 0
    with pytest.raises(ValueError):
        counters_used("poisson", 3)
    # a generator advancing by counters_used never reuses counters
    n = 16
    u_all = uniform(1, 0, (4 * n,))
    after_normal = counters_used("normal", n)
    np.testing.assert_array_equal(uniform(1, after_normal, (n,)), u_all[2 * n : 3 * n])
    after_uniform = counters_used("uniform", n)
    np.testing.assert_array_equal(uniform(1, after_uniform, (n,)), u_all[n : 2 * n])
    # the normal draw at offset 0 is built from exactly the first 2n uniforms
    u1, u2 = u_all[:n].astype(np.float64), u_all[n : 2 * n].astype(np.float64)
    expected = np.sqrt(-2.0 * np.log(1.0 - u1)) * np.cos(2.0 * np.pi * u2)
    np.testing.assert_array_equal(normal(1, 0, (n,), dtype=np.float64), expected)


# ---------------------------------------------------------------------------
# Triton (optional): compare with tl.randint under the interpreter
# ---------------------------------------------------------------------------


def test_matches_triton_randint_interpreter(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    triton = pytest.importorskip("triton")
    tl = pytest.importorskip("triton.language")
    torch = pytest.importorskip("torch")

    @triton.jit
    def _randint_kernel(out_ptr, seed, offset, n, BLOCK: tl.constexpr):
        idx = tl.arange(0, BLOCK)
        r = tl.randint(seed, offset + idx.to(tl.int64))
        tl.store(out_ptr + idx, r.to(tl.int32, bitcast=True), mask=idx < n)

    for seed, offset in [(0, 0), (12345, 2**32 - 5), (2**40 + 17, 3 * 2**32 + 1)]:
        n = 64
        out = torch.zeros(n, dtype=torch.int32)
        _randint_kernel[(1,)](out, seed, offset, n, BLOCK=n)
        got = out.numpy().view(np.uint32)
        np.testing.assert_array_equal(got, random_bits(seed, offset, n))
