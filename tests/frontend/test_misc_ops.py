"""einsum, repeat_interleave, roll, diag/diagonal/diag_embed/trace, meshgrid, tril/triu_indices,
cumprod, nan_to_num and the composed trigonometric functions against PyTorch: forward values,
dtypes and input gradients of a weighted sum with fixed random weights."""

import numpy as np
import pytest
import torch

import ember
from ember.frontend.ops import misc as M
from ember.ir.errors import EmberError

RNG = np.random.default_rng(11)


def _same_dtype(e, t):
    assert str(e.dtype).split(".")[-1] == str(t.dtype).split(".")[-1], (e.dtype, t.dtype)


def _check(fe, ft, *xs, tol=1e-10, grad=True):
    es = [ember.tensor(x, requires_grad=grad) for x in xs]
    ts = [torch.tensor(x, requires_grad=grad) for x in xs]
    ye, yt = fe(*es), ft(*ts)
    assert tuple(ye.shape) == tuple(yt.shape)
    _same_dtype(ye, yt)
    np.testing.assert_allclose(ye.detach().numpy(), yt.detach().numpy(), rtol=tol, atol=tol)
    if grad:
        w = RNG.standard_normal(tuple(yt.shape))
        (ye * ember.tensor(w)).sum().backward()
        (yt * torch.tensor(w)).sum().backward()
        for e, t in zip(es, ts):
            np.testing.assert_allclose(e.grad.numpy(), t.grad.numpy(), rtol=tol, atol=tol)


EINSUM = [
    ("ij,jk->ik", [(3, 4), (4, 5)]),
    ("ij,jk", [(3, 4), (4, 5)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("bhqd,bhkd->bhqk", [(2, 3, 4, 5), (2, 3, 6, 5)]),
    ("i,i->", [(5,), (5,)]),
    ("i,j->ij", [(3,), (4,)]),
    ("ii->i", [(4, 4)]),
    ("ii", [(4, 4)]),
    ("ij->ji", [(3, 4)]),
    ("ij->", [(3, 4)]),
    ("ba", [(3, 4)]),
    ("...ij,...jk->...ik", [(2, 3, 4), (4, 5)]),
    ("...ij,...jk", [(2, 1, 3, 4), (5, 4, 2)]),
    ("i...->...", [(3, 4, 5)]),
    ("ijk,jl,kl->il", [(2, 3, 4), (3, 5), (4, 5)]),
    ("bn,anm,bm->ba", [(2, 3), (4, 3, 5), (2, 5)]),
    ("iij->j", [(3, 3, 4)]),
    ("ij,ij->ij", [(3, 4), (3, 4)]),
    ("ij,kj->ik", [(3, 1), (5, 4)]),
    ("Ab,bA", [(3, 4), (4, 3)]),
]


@pytest.mark.parametrize("eq,shapes", EINSUM)
def test_einsum_vs_torch(eq, shapes):
    xs = [RNG.standard_normal(s) for s in shapes]
    _check(lambda *a: M.einsum(eq, *a), lambda *a: torch.einsum(eq, *a), *xs)


def test_einsum_int_and_errors():
    a, b = RNG.integers(-3, 3, (3, 4)), RNG.integers(-3, 3, (4, 2))
    ye = M.einsum("ij,jk->ik", ember.tensor(a), ember.tensor(b))
    assert ye.dtype is ember.int64
    np.testing.assert_array_equal(ye.numpy(), a @ b)
    x = ember.tensor(RNG.standard_normal((3, 4)))
    with pytest.raises(EmberError, match="einsum"):
        M.einsum("ijk->i", x)
    with pytest.raises(EmberError, match="einsum"):
        M.einsum("ij,jk->ik", x, x)
    with pytest.raises(EmberError, match="einsum"):
        M.einsum("ij->iz", x)
    with pytest.raises(EmberError, match="einsum"):
        M.einsum("ij,jk->ik", x)


@pytest.mark.parametrize(
    "shape,repeats,dim",
    [((3, 4), 2, None), ((3, 4), 3, 1), ((3, 4), [1, 0, 2], 0), ((3, 4), [2], 1), ((5,), 2, 0)],
)
def test_repeat_interleave(shape, repeats, dim):
    x = RNG.standard_normal(shape)

    def f(mod, t):
        r = repeats if isinstance(repeats, int) else mod.tensor(repeats)
        return mod.repeat_interleave(t, r, dim) if mod is torch else M.repeat_interleave(t, r, dim)

    _check(lambda t: f(ember, t), lambda t: f(torch, t), x)
    r = M.repeat_interleave(ember.tensor([1, 3, 0, 2]))
    np.testing.assert_array_equal(r.numpy(), torch.repeat_interleave(torch.tensor([1, 3, 0, 2])))
    assert r.dtype is ember.int64


@pytest.mark.parametrize(
    "shifts,dims", [(2, None), (-7, None), (1, 0), ((1, -2), (0, 2)), (5, 1), ((3, 3), (1, 1))]
)
def test_roll(shifts, dims):
    x = RNG.standard_normal((3, 4, 5))
    _check(lambda t: M.roll(t, shifts, dims), lambda t: torch.roll(t, shifts, dims), x)


@pytest.mark.parametrize("k", [0, 1, -2, 3])
def test_diag_family(k):
    v = RNG.standard_normal(4)
    _check(lambda t: M.diag(t, k), lambda t: torch.diag(t, k), v)
    m = RNG.standard_normal((4, 5))
    _check(lambda t: M.diag(t, k), lambda t: torch.diag(t, k), m)
    x = RNG.standard_normal((2, 4, 3, 5))
    for d1, d2 in [(0, 1), (1, 3), (-1, -3), (3, 2)]:
        _check(
            lambda t, a=d1, b=d2: M.diagonal(t, k, a, b),
            lambda t, a=d1, b=d2: torch.diagonal(t, k, a, b),
            x,
        )
    y = RNG.standard_normal((2, 3, 4))
    for d1, d2 in [(-2, -1), (0, 2), (3, 1), (1, 0)]:
        _check(
            lambda t, a=d1, b=d2: M.diag_embed(t, k, a, b),
            lambda t, a=d1, b=d2: torch.diag_embed(t, k, a, b),
            y,
        )


def test_trace_and_errors():
    _check(M.trace, torch.trace, RNG.standard_normal((4, 3)))
    xi = RNG.integers(-4, 4, (3, 3)).astype(np.int32)
    ye, yt = M.trace(ember.tensor(xi)), torch.trace(torch.tensor(xi))
    _same_dtype(ye, yt)
    assert ye.item() == yt.item()
    with pytest.raises(EmberError, match="trace"):
        M.trace(ember.tensor(RNG.standard_normal(3)))
    with pytest.raises(EmberError, match="diagonal"):
        M.diagonal(ember.tensor(RNG.standard_normal((3, 3))), 0, 1, 1)
    with pytest.raises(EmberError, match="diag"):
        M.diag(ember.tensor(RNG.standard_normal((2, 2, 2))))


@pytest.mark.parametrize("indexing", ["ij", "xy"])
def test_meshgrid(indexing):
    a, b, c = RNG.standard_normal(3), RNG.standard_normal(4), RNG.standard_normal(2)
    _check(
        lambda x, y, z: M.einsum("ijk,ijk,ijk->ijk", *M.meshgrid(x, y, z, indexing=indexing)),
        lambda x, y, z: torch.einsum(
            "ijk,ijk,ijk->ijk", *torch.meshgrid(x, y, z, indexing=indexing)
        ),
        a,
        b,
        c,
    )
    ge = M.meshgrid([ember.tensor(a), ember.tensor(b)], indexing=indexing)
    gt = torch.meshgrid([torch.tensor(a), torch.tensor(b)], indexing=indexing)
    for e, t in zip(ge, gt):
        np.testing.assert_array_equal(e.numpy(), t.numpy())


@pytest.mark.parametrize("row,col,off", [(4, 4, 0), (3, 5, 1), (5, 3, -1), (4, 6, -5), (0, 3, 0)])
def test_tri_indices(row, col, off):
    for fe, ft in [(M.tril_indices, torch.tril_indices), (M.triu_indices, torch.triu_indices)]:
        e, t = fe(row, col, off), ft(row, col, off)
        assert e.dtype is ember.int64
        assert tuple(e.shape) == tuple(t.shape)
        np.testing.assert_array_equal(e.numpy(), t.numpy())


@pytest.mark.parametrize("n", [1, 2, 5, 8, 13])
def test_cumprod_zeros_and_negatives(n):
    x = RNG.standard_normal((3, n, 4))
    x[0, n // 2, :] = 0.0
    x[1, 0, 1] = 0.0
    if n > 2:
        x[2, 1, :2] = 0.0
        x[2, n - 1, :2] = 0.0
    for d in (0, 1, -1):
        _check(lambda t, d=d: M.cumprod(t, d), lambda t, d=d: torch.cumprod(t, d), x)


def test_cumprod_dtypes():
    xi = RNG.integers(-3, 4, (2, 6))
    ye, yt = M.cumprod(ember.tensor(xi), 1), torch.cumprod(torch.tensor(xi), 1)
    _same_dtype(ye, yt)
    np.testing.assert_array_equal(ye.numpy(), yt.numpy())
    xb = RNG.integers(0, 2, (5,)).astype(bool)
    ye, yt = M.cumprod(ember.tensor(xb), 0), torch.cumprod(torch.tensor(xb), 0)
    _same_dtype(ye, yt)
    np.testing.assert_array_equal(ye.numpy(), yt.numpy())
    x = RNG.standard_normal((4,)).astype(np.float32)
    ye = M.cumprod(ember.tensor(x), 0, dtype=ember.float64)
    assert ye.dtype is ember.float64


def test_nan_to_num():
    x = np.array([1.0, np.nan, np.inf, -np.inf, -2.5])
    _check(M.nan_to_num, torch.nan_to_num, x)
    _check(
        lambda t: M.nan_to_num(t, 1.0, 2.0, -3.0),
        lambda t: torch.nan_to_num(t, 1.0, 2.0, -3.0),
        x,
    )
    xf = x.astype(np.float32)
    ye, yt = M.nan_to_num(ember.tensor(xf)), torch.nan_to_num(torch.tensor(xf))
    _same_dtype(ye, yt)
    np.testing.assert_array_equal(ye.numpy(), yt.numpy())


def _values(lo, hi, n=200):
    v = np.concatenate([RNG.uniform(lo, hi, n), np.array([lo, hi, 0.0, 1e-8, -1e-8, 1e-300])])
    return np.clip(v, lo, hi)


@pytest.mark.parametrize(
    "name,lo,hi",
    [
        ("sinh", -20, 20),
        ("cosh", -20, 20),
        ("asinh", -1e6, 1e6),
        ("atanh", -0.999, 0.999),
        ("atan", -1e4, 1e4),
        ("asin", -0.999, 0.999),
        ("acos", -0.999, 0.999),
    ],
)
def test_trig_vs_torch(name, lo, hi):
    x = _values(lo, hi)
    _check(getattr(M, name), getattr(torch, name), x, tol=1e-6)
    ye = getattr(M, name)(ember.tensor(x)).numpy()
    yt = getattr(torch, name)(torch.tensor(x)).numpy()
    np.testing.assert_allclose(ye, yt, rtol=1e-13, atol=1e-300)


def test_acosh_and_edges():
    x = np.concatenate([1.0 + RNG.uniform(1e-6, 1e4, 200), [1.0 + 1e-12, 2.0, 1e200]])
    _check(M.acosh, torch.acosh, x[:-1], tol=1e-6)
    np.testing.assert_allclose(
        M.acosh(ember.tensor(x)).numpy(), torch.acosh(torch.tensor(x)).numpy(), rtol=1e-13
    )
    big = np.array([1e200, -1e200, np.inf, -np.inf, np.nan])
    for name in ("asinh", "atan"):
        np.testing.assert_allclose(
            getattr(M, name)(ember.tensor(big)).numpy(),
            getattr(torch, name)(torch.tensor(big)).numpy(),
            rtol=1e-13,
        )
    edges = np.array([-1.0, 1.0, 0.0])
    for name in ("asin", "acos"):
        np.testing.assert_allclose(
            getattr(M, name)(ember.tensor(edges)).numpy(),
            getattr(torch, name)(torch.tensor(edges)).numpy(),
            rtol=1e-14,
            atol=1e-15,
        )
    ye = M.sinh(ember.tensor(np.float32(0.5) * np.ones(3, np.float32)))
    assert ye.dtype is ember.float32
    assert M.atan(ember.tensor([1, 2])).dtype is ember.float32


def test_atan2():
    y, x = RNG.standard_normal(300), RNG.standard_normal(300)
    x[:10] = 0.0
    y[10:20] = 0.0
    x[20:25] *= 1e-12
    _check(M.atan2, torch.atan2, y[25:], x[25:], tol=1e-6)
    special = [0.0, -0.0, 1.0, -1.0, np.nan]
    ys, xs = np.array([(a, b) for a in special for b in special]).T
    for yy, xx in [(y, x), (ys, xs)]:
        np.testing.assert_allclose(
            M.atan2(ember.tensor(yy), ember.tensor(xx)).numpy(),
            torch.atan2(torch.tensor(yy), torch.tensor(xx)).numpy(),
            rtol=1e-13,
            atol=1e-300,
        )
