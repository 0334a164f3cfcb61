"""Random number generation: reproducibility, statistics, dtypes, generator state, and the
(seed, offset) contract with `ember.runtime.philox` that compiled code relies on."""

import numpy as np
import pytest
import torch

import ember
from ember.runtime import philox


@pytest.fixture(autouse=True)
def _restore_global_rng():
    state = ember.get_rng_state()
    yield
    ember.set_rng_state(state)


DRAWS = {
    "rand": lambda: ember.rand(3, 4),
    "randn": lambda: ember.randn(3, 4),
    "randint": lambda: ember.randint(0, 100, (3, 4)),
    "randperm": lambda: ember.randperm(50),
    "normal": lambda: ember.normal(0.0, 1.0, (3, 4)),
    "bernoulli": lambda: ember.bernoulli(ember.full((40,), 0.5)),
}


@pytest.mark.parametrize("name", list(DRAWS))
def test_manual_seed_reproducible(name):
    draw = DRAWS[name]
    ember.manual_seed(1234)
    a = [draw().numpy().copy() for _ in range(3)]
    ember.manual_seed(1234)
    b = [draw().numpy().copy() for _ in range(3)]
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("name", list(DRAWS))
def test_different_seeds_differ(name):
    draw = DRAWS[name]
    ember.manual_seed(1)
    a = draw().numpy().copy()
    ember.manual_seed(2)
    b = draw().numpy().copy()
    assert not np.array_equal(a, b)


@pytest.mark.parametrize("name", list(DRAWS))
def test_consecutive_draws_differ(name):
    draw = DRAWS[name]
    ember.manual_seed(0)
    a = draw().numpy().copy()
    b = draw().numpy().copy()
    assert not np.array_equal(a, b)


def test_interleaved_draws_depend_only_on_sequence():
    ember.manual_seed(5)
    ember.rand(7)
    x = ember.randn(2, 2).numpy().copy()
    ember.manual_seed(5)
    ember.randint(0, 3, (7,))  # same number of counters as rand(7)
    y = ember.randn(2, 2).numpy().copy()
    np.testing.assert_array_equal(x, y)


# ---------------------------------------------------------------- the philox contract


def test_rand_equals_philox_uniform_with_advancing_offset():
    seed = 20240601
    ember.manual_seed(seed)
    offset = 0
    for shape in [(5,), (3, 4), (), (2, 0, 3), (7, 1, 2)]:
        got = ember.rand(*shape) if shape != () else ember.rand(())
        want = philox.uniform(seed, offset, shape, np.float32)
        assert got.dtype is ember.float32
        assert tuple(got.shape) == shape
        np.testing.assert_array_equal(got.numpy(), want)
        offset += int(np.prod(shape))


def test_rand_float64_equals_philox_uniform():
    ember.manual_seed(99)
    a = ember.rand(4, 3, dtype=ember.float64)
    assert a.dtype is ember.float64
    np.testing.assert_array_equal(a.numpy(), philox.uniform(99, 0, (4, 3), np.float64))
    b = ember.rand(6)
    np.testing.assert_array_equal(b.numpy(), philox.uniform(99, 12, (6,), np.float32))


def test_randn_consumes_two_counters_per_element():
    ember.manual_seed(7)
    z = ember.randn(10, 10)
    np.testing.assert_array_equal(z.numpy(), philox.normal(7, 0, (10, 10)))
    after = ember.rand(3)
    np.testing.assert_array_equal(after.numpy(), philox.uniform(7, 200, (3,)))
    z64 = ember.randn(4, 5, dtype=ember.float64)
    np.testing.assert_array_equal(z64.numpy(), philox.normal(7, 203, (4, 5), np.float64))


def test_default_seed_matches_torch_initial_seed():
    fresh = ember.Generator()
    assert fresh.initial_seed() == 67280421310721


def test_initial_seed():
    ember.manual_seed(4242)
    assert ember.initial_seed() == 4242


@pytest.mark.parametrize("seed", [-1, 2**63 + 5, 2**64 - 1])
def test_large_and_negative_seeds(seed):
    ember.manual_seed(seed)
    assert ember.initial_seed() == seed % 2**64  # torch wraps negative seeds the same way
    np.testing.assert_array_equal(
        ember.rand(4).numpy(), philox.uniform(seed % 2**64, 0, (4,), np.float32)
    )


# ---------------------------------------------------------------- statistics and ranges


def test_rand_statistics():
    ember.manual_seed(0)
    x = ember.rand(100_000).numpy()
    assert x.min() >= 0.0 and x.max() < 1.0
    assert abs(x.mean() - 0.5) < 0.01
    assert abs(x.var() - 1 / 12) < 0.005
    hist, _ = np.histogram(x, bins=10, range=(0, 1))
    assert hist.min() > 9_000 and hist.max() < 11_000


def test_randn_statistics():
    ember.manual_seed(0)
    x = ember.randn(100_000).numpy()
    assert np.all(np.isfinite(x))
    assert abs(x.mean()) < 0.02
    assert abs(x.std() - 1.0) < 0.02
    assert abs(np.mean(np.abs(x) < 1.0) - 0.6827) < 0.01


def test_normal_mean_std():
    ember.manual_seed(0)
    x = ember.normal(3.0, 2.0, (100_000,)).numpy()
    assert abs(x.mean() - 3.0) < 0.05
    assert abs(x.std() - 2.0) < 0.05
    m = ember.tensor([0.0, 100.0])
    y = ember.normal(m, 0.001)
    assert y.shape == (2,)
    np.testing.assert_allclose(y.numpy(), [0.0, 100.0], atol=0.01)


def test_randint_range_and_coverage():
    ember.manual_seed(0)
    x = ember.randint(-3, 7, (10_000,))
    assert x.dtype is ember.int64
    vals = x.numpy()
    assert vals.min() == -3 and vals.max() == 6
    assert set(np.unique(vals).tolist()) == set(range(-3, 7))
    counts = np.bincount(vals + 3)
    assert counts.min() > 850 and counts.max() < 1150


def test_randint_overloads_and_dtype():
    ember.manual_seed(0)
    a = ember.randint(5, (1000,))
    assert a.dtype is ember.int64 and a.shape == (1000,)
    assert set(np.unique(a.numpy()).tolist()) == set(range(5))
    b = ember.randint(0, 2, (3, 4), dtype=ember.int32)
    assert b.dtype is ember.int32 and b.shape == (3, 4)
    c = ember.randint(10, 11, (5,))
    assert c.tolist() == [10] * 5
    d = ember.randint(3, size=(2,))
    assert d.shape == (2,)


def test_randint_bad_bounds_raise():
    with pytest.raises(RuntimeError):
        ember.randint(5, 5, (3,))
    with pytest.raises(RuntimeError):
        ember.randint(5, 2, (3,))


def test_randperm():
    ember.manual_seed(0)
    for n in (0, 1, 2, 10, 1000):
        p = ember.randperm(n)
        assert p.dtype is ember.int64
        assert sorted(p.tolist()) == list(range(n))
    p = ember.randperm(1000).numpy()
    assert not np.array_equal(p, np.arange(1000))
    assert ember.randperm(5, dtype=ember.int32).dtype is ember.int32


def test_randperm_advances_generator():
    ember.manual_seed(3)
    a = ember.randperm(20).numpy().copy()
    b = ember.randperm(20).numpy().copy()
    assert not np.array_equal(a, b)


# ---------------------------------------------------------------- dtypes and shapes


@pytest.mark.parametrize("dtype", [ember.float32, ember.float64, ember.float16, ember.bfloat16])
def test_float_dtypes(dtype):
    ember.manual_seed(0)
    r = ember.rand(2, 3, dtype=dtype)
    n = ember.randn(2, 3, dtype=dtype)
    assert r.dtype is dtype and n.dtype is dtype
    assert r.shape == n.shape == (2, 3)
    rf = r.float().numpy()
    assert rf.min() >= 0.0 and rf.max() <= 1.0


def test_int_dtype_rejected_for_rand():
    with pytest.raises(TypeError):
        ember.rand(3, dtype=ember.int64)
    with pytest.raises(TypeError):
        ember.randn(3, dtype=ember.int32)


def test_size_forms():
    assert ember.rand(2, 3).shape == (2, 3)
    assert ember.rand((2, 3)).shape == (2, 3)
    assert ember.rand([4]).shape == (4,)
    assert ember.randn(()).shape == ()
    assert ember.randn(0).shape == (0,)


def test_default_dtype_float64():
    ember.set_default_dtype(ember.float64)
    try:
        assert ember.rand(2).dtype is ember.float64
        assert ember.randn(2).dtype is ember.float64
    finally:
        ember.set_default_dtype(ember.float32)


def test_requires_grad():
    x = ember.rand(3, requires_grad=True)
    assert x.requires_grad and x.is_leaf
    y = ember.randn(3, requires_grad=True)
    assert y.requires_grad and y.is_leaf


def test_like_functions():
    base = ember.zeros(4, 5, dtype=ember.float64)
    ember.manual_seed(11)
    r = ember.rand_like(base)
    n = ember.randn_like(base)
    assert r.shape == n.shape == (4, 5)
    assert r.dtype is n.dtype is ember.float64
    ember.manual_seed(11)
    np.testing.assert_array_equal(r.numpy(), ember.rand(4, 5, dtype=ember.float64).numpy())
    np.testing.assert_array_equal(n.numpy(), ember.randn(4, 5, dtype=ember.float64).numpy())
    assert ember.rand_like(base, dtype=ember.float32).dtype is ember.float32
    i = ember.randint_like(ember.zeros(3, 3, dtype=ember.int32), 0, 4)
    assert i.dtype is ember.int32 and i.shape == (3, 3)
    assert i.numpy().min() >= 0 and i.numpy().max() < 4


# ---------------------------------------------------------------- generators and state


def test_generator_objects_are_independent_of_global():
    g = ember.Generator().manual_seed(77)
    ember.manual_seed(5)
    a = ember.rand(6, generator=g).numpy().copy()
    glob1 = ember.rand(6).numpy().copy()

    g2 = ember.Generator().manual_seed(77)
    ember.manual_seed(5)
    glob2 = ember.rand(6).numpy().copy()  # not disturbed by the other generator's draws
    b = ember.rand(6, generator=g2).numpy().copy()
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(glob1, glob2)
    np.testing.assert_array_equal(a, philox.uniform(77, 0, (6,)))
    np.testing.assert_array_equal(glob1, philox.uniform(5, 0, (6,)))


@pytest.mark.parametrize(
    "draw",
    [
        lambda g: ember.rand(5, generator=g),
        lambda g: ember.randn(5, generator=g),
        lambda g: ember.randint(0, 9, (5,), generator=g),
        lambda g: ember.randperm(5, generator=g),
        lambda g: ember.bernoulli(ember.full((5,), 0.5), generator=g),
    ],
    ids=["rand", "randn", "randint", "randperm", "bernoulli"],
)
def test_generator_keyword_does_not_touch_global(draw):
    ember.manual_seed(8)
    state = ember.get_rng_state().numpy().copy()
    g = ember.Generator().manual_seed(1)
    draw(g)
    np.testing.assert_array_equal(ember.get_rng_state().numpy(), state)
    g1 = ember.Generator().manual_seed(1)
    g2 = ember.Generator().manual_seed(1)
    np.testing.assert_array_equal(draw(g1).numpy(), draw(g2).numpy())


def test_rng_state_round_trip():
    ember.manual_seed(123)
    ember.rand(10)
    state = ember.get_rng_state()
    a = ember.randn(4, 4).numpy().copy()
    b = ember.randperm(9).numpy().copy()
    ember.rand(100)
    ember.set_rng_state(state)
    np.testing.assert_array_equal(ember.randn(4, 4).numpy(), a)
    np.testing.assert_array_equal(ember.randperm(9).numpy(), b)


def test_get_rng_state_is_a_snapshot():
    ember.manual_seed(1)
    state = ember.get_rng_state()
    snapshot = state.numpy().copy()
    ember.rand(10)
    np.testing.assert_array_equal(state.numpy(), snapshot)


def test_generator_state_round_trip():
    g = ember.Generator().manual_seed(2**40 + 3)
    ember.rand(3, generator=g)
    st = g.get_state()
    a = ember.rand(5, generator=g).numpy().copy()
    g.set_state(st)
    np.testing.assert_array_equal(ember.rand(5, generator=g).numpy(), a)
    assert g.initial_seed() == 2**40 + 3


def test_seed_reseeds_randomly():
    s1 = ember.seed()
    assert ember.initial_seed() == s1
    a = ember.rand(8).numpy().copy()
    ember.manual_seed(s1)
    np.testing.assert_array_equal(ember.rand(8).numpy(), a)


# ---------------------------------------------------------------- bernoulli


def test_bernoulli_probabilities():
    ember.manual_seed(0)
    p = ember.tensor([0.0, 1.0, 0.25, 0.75]).expand(50_000, 4).contiguous()
    x = ember.bernoulli(p)
    assert x.dtype is ember.float32 and x.shape == (50_000, 4)
    v = x.numpy()
    assert set(np.unique(v).tolist()) <= {0.0, 1.0}
    assert v[:, 0].sum() == 0
    assert v[:, 1].sum() == 50_000
    assert abs(v[:, 2].mean() - 0.25) < 0.01
    assert abs(v[:, 3].mean() - 0.75) < 0.01


def test_bernoulli_scalar_p_and_dtypes():
    ember.manual_seed(0)
    x = ember.bernoulli(ember.zeros(100_000, dtype=ember.float64), 0.3)
    assert x.dtype is ember.float64
    assert abs(x.numpy().mean() - 0.3) < 0.01
    y = ember.bernoulli(ember.ones(10), 0.0)
    assert y.tolist() == [0.0] * 10


def test_bernoulli_reproducible_and_matches_philox():
    ember.manual_seed(21)
    p = ember.tensor([0.1, 0.5, 0.9, 0.5, 0.2])
    x = ember.bernoulli(p)
    u = philox.uniform(21, 0, (5,))
    np.testing.assert_array_equal(x.numpy(), (u < p.numpy()).astype(np.float32))


# ---------------------------------------------------------------- in-place fills


def test_uniform_and_normal_inplace():
    ember.manual_seed(0)
    x = ember.empty(50_000).uniform_(-2.0, 3.0)
    v = x.numpy()
    assert v.min() >= -2.0 and v.max() < 3.0
    assert abs(v.mean() - 0.5) < 0.05
    y = ember.empty(50_000).normal_(1.0, 0.5)
    assert abs(y.numpy().mean() - 1.0) < 0.02
    assert abs(y.numpy().std() - 0.5) < 0.02


# ---------------------------------------------------------------- multinomial


def test_multinomial_with_replacement_follows_the_weights():
    ember.manual_seed(3)
    weights = ember.tensor([[1.0, 0.0, 6.0, 3.0], [5.0, 5.0, 0.0, 0.0]])  # unnormalized
    draws = ember.multinomial(weights, 20000, replacement=True)
    assert draws.shape == (2, 20000) and draws.dtype == ember.int64
    freq0 = np.bincount(draws[0].numpy(), minlength=4) / 20000
    freq1 = np.bincount(draws[1].numpy(), minlength=4) / 20000
    np.testing.assert_allclose(freq0, [0.1, 0.0, 0.6, 0.3], atol=0.015)
    np.testing.assert_allclose(freq1, [0.5, 0.5, 0.0, 0.0], atol=0.015)
    assert freq0[1] == 0 and freq1[2] == freq1[3] == 0  # zero weight is never drawn


def test_multinomial_without_replacement_draws_distinct_categories():
    ember.manual_seed(4)
    weights = ember.tensor([0.05, 0.05, 0.4, 0.3, 0.2])
    for _ in range(20):
        draw = ember.multinomial(weights, 5).numpy()
        assert sorted(draw.tolist()) == [0, 1, 2, 3, 4]
    # the first pick follows the weights
    firsts = [ember.multinomial(weights, 2)[0].item() for _ in range(3000)]
    np.testing.assert_allclose(np.bincount(firsts, minlength=5) / 3000, weights.numpy(), atol=0.03)


def test_multinomial_is_reproducible_and_shaped_like_torch():
    weights = np.array([[0.2, 0.3, 0.5]] * 4)
    for replacement in (True, False):
        ember.manual_seed(9)
        a = ember.multinomial(ember.tensor(weights), 2, replacement=replacement)
        ember.manual_seed(9)
        b = ember.multinomial(ember.tensor(weights), 2, replacement=replacement)
        assert a.tolist() == b.tolist()
        want = torch.multinomial(torch.tensor(weights), 2, replacement=replacement)
        assert tuple(a.shape) == tuple(want.shape) and a.dtype == ember.int64


@pytest.mark.parametrize(
    ("weights", "n", "replacement"),
    [([0.5, -0.1, 0.6], 1, True), ([0.0, 0.0], 1, True), ([0.5, float("nan")], 1, True),
     ([0.5, 0.5], 3, False)],
)  # fmt: skip
def test_multinomial_rejects_what_torch_rejects(weights, n, replacement):
    with pytest.raises(RuntimeError):
        torch.multinomial(torch.tensor(weights), n, replacement=replacement)
    with pytest.raises(RuntimeError, match="^multinomial: .* at test_random.py:"):
        ember.multinomial(ember.tensor(weights), n, replacement=replacement)
