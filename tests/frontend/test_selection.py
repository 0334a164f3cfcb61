"""Sorting, selection and index reads/writes against torch: values, dtypes, indices, result
names and gradients (``(out * w).sum()`` with a fixed random ``w``), and errors."""

import numpy as np
import pytest
import torch

import ember
from ember.frontend.ops import selection as S
from ember.ir.errors import DTypeError, EmberError, IndexOutOfRange, ShapeError

RNG = np.random.default_rng(11)


def distinct(*shape, dtype=np.float32):
    """Values without ties (so sort/topk indices are unambiguous)."""
    n = int(np.prod(shape, dtype=np.int64))
    return (RNG.permutation(n).astype(np.float64) * 0.37 - n * 0.15).astype(dtype).reshape(shape)


def to_np(t):
    return t.detach().numpy()


def assert_same(e, t, exact=True):
    assert isinstance(e, ember.Tensor)
    assert tuple(e.shape) == tuple(t.shape), (tuple(e.shape), tuple(t.shape))
    assert e.dtype.name == str(t.dtype).removeprefix("torch."), (e.dtype, t.dtype)
    if exact:
        np.testing.assert_array_equal(to_np(e), to_np(t))
    else:
        np.testing.assert_allclose(to_np(e), to_np(t), rtol=1e-5, atol=1e-6)


def run_both(fn_e, fn_t, arrays, grad_of=(0,), exact=True):
    """Run both frameworks on ``arrays`` (numpy; float ones in ``grad_of`` require grad),
    compare the outputs, then the gradients of ``(out * w).sum()``."""
    es, ts = [], []
    for i, a in enumerate(arrays):
        rg = i in grad_of and a.dtype.kind == "f"
        es.append(ember.tensor(a, requires_grad=rg))
        ts.append(torch.tensor(a, requires_grad=rg))
    oe, ot = fn_e(*es), fn_t(*ts)
    if isinstance(ot, tuple):
        assert type(oe).__name__ == type(ot).__name__
        assert oe._fields == tuple(f for f in ("values", "indices"))
        for a, b in zip(oe, ot):
            assert_same(a, b)
        oe, ot = oe[0], ot[0]
    else:
        assert_same(oe, ot, exact)
    if not ot.requires_grad:
        return
    w = RNG.standard_normal(tuple(ot.shape)).astype(np.float32)
    (oe * ember.tensor(w)).sum().backward()
    (ot * torch.tensor(w)).sum().backward()
    for e, t in zip(es, ts):
        if t.requires_grad:
            assert e.grad is not None
            assert_same(e.grad, t.grad, exact=False)


# ------------------------------------------------------------------------------- sorting


@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("descending", [False, True])
def test_sort(dim, descending):
    run_both(
        lambda x: S.sort(x, dim, descending),
        lambda x: torch.sort(x, dim, descending),
        [distinct(3, 4, 5)],
    )


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize(
    "data",
    [
        np.array([3, 1, 3, 2, 1, 3, 0], np.int64),
        np.array([True, False, True, False, False]),
        np.array([2, -128, 127, 2, 0], np.int8),
        np.array([1.0, np.nan, -np.inf, 1.0, np.nan, np.inf, -0.0, 0.0], np.float32),
    ],
    ids=["int64_ties", "bool", "int8_extremes", "nan_inf"],
)
def test_sort_stable_ties_nan(data, descending):
    e = S.sort(ember.tensor(data), descending=descending, stable=True)
    t = torch.sort(torch.tensor(data), descending=descending, stable=True)
    assert_same(e.indices, t.indices)
    np.testing.assert_array_equal(to_np(e.values), to_np(t.values))
    assert e.values.dtype.name == str(t.values.dtype).removeprefix("torch.")
    ea = S.argsort(ember.tensor(data), descending=descending, stable=True)
    assert_same(ea, torch.argsort(torch.tensor(data), descending=descending, stable=True))


def test_sort_float16_and_0d():
    data = distinct(4, 3, dtype=np.float16)
    run_both(lambda x: S.sort(x, 0), lambda x: torch.sort(x, 0), [data])
    run_both(lambda x: S.sort(x), lambda x: torch.sort(x), [np.array(2.5, np.float32)])
    assert_same(S.argsort(ember.tensor(3.0)), torch.argsort(torch.tensor(3.0)))


def test_sort_empty():
    run_both(lambda x: S.sort(x, 1), lambda x: torch.sort(x, 1), [np.zeros((2, 0), np.float32)])


def test_argsort_msort():
    data = distinct(4, 6)
    run_both(lambda x: S.argsort(x, 0, True), lambda x: torch.argsort(x, 0, True), [data])
    run_both(S.msort, torch.msort, [data])


@pytest.mark.parametrize(
    "k,dim,largest", [(1, -1, True), (3, 1, True), (2, 0, False), (0, 1, True)]
)
def test_topk(k, dim, largest):
    run_both(
        lambda x: S.topk(x, k, dim, largest),
        lambda x: torch.topk(x, k, dim, largest),
        [distinct(3, 5)],
    )


def test_topk_int_and_0d():
    run_both(lambda x: S.topk(x, 2), lambda x: torch.topk(x, 2), [np.array([4, 9, -1, 7])])
    run_both(lambda x: S.topk(x, 1), lambda x: torch.topk(x, 1), [np.array(1.5, np.float32)])


@pytest.mark.parametrize("k", [1, 3, 5])
@pytest.mark.parametrize("keepdim", [False, True])
def test_kthvalue(k, keepdim):
    run_both(
        lambda x: S.kthvalue(x, k, 1, keepdim),
        lambda x: torch.kthvalue(x, k, 1, keepdim),
        [distinct(2, 5, 3)],
    )


@pytest.mark.parametrize("shape", [(7,), (2, 3), (4, 2, 2)])
def test_median_all(shape):
    run_both(S.median, torch.median, [distinct(*shape)])


@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("keepdim", [False, True])
def test_median_dim(dim, keepdim):
    run_both(
        lambda x: S.median(x, dim, keepdim),
        lambda x: torch.median(x, dim, keepdim),
        [distinct(4, 5, 3)],
    )


def test_median_nan_and_int():
    data = np.array([[1.0, np.nan, 3.0, 0.0], [2.0, 1.0, 4.0, 3.0]], np.float32)
    run_both(lambda x: S.median(x, 1), lambda x: torch.median(x, 1), [data], grad_of=())
    assert np.isnan(S.median(ember.tensor(data)).item())
    ints = np.array([[5, 1, 4, 2], [0, 9, 3, 3]])
    run_both(lambda x: S.median(x, 1), lambda x: torch.median(x, 1), [ints])
    run_both(S.median, torch.median, [ints])


def test_selection_errors():
    x = ember.tensor(distinct(2, 3))
    # PyTorch raises RuntimeError for k out of range (not IndexError)
    with pytest.raises(RuntimeError, match="topk: selected index k out of range"):
        S.topk(x, 4)
    with pytest.raises(RuntimeError, match="kthvalue: selected number k out of range"):
        S.kthvalue(x, 0)
    with pytest.raises(IndexError, match=r"sort: dimension out of range .*f32\[2,3\]"):
        S.sort(x, 2)
    with pytest.raises(EmberError, match="median: cannot select from empty dim"):
        S.median(ember.zeros(2, 0), 1)


# ------------------------------------------------------------------- index reads / writes


def test_gather():
    data = distinct(4, 5)
    idx = RNG.integers(0, 4, size=(3, 2))  # smaller than input outside dim 0
    run_both(lambda x, i: S.gather(x, 0, i), lambda x, i: torch.gather(x, 0, i), [data, idx])
    idx = RNG.integers(0, 5, size=(4, 7))  # repeated picks accumulate gradient
    run_both(lambda x, i: S.gather(x, -1, i), lambda x, i: torch.gather(x, -1, i), [data, idx])
    run_both(
        lambda x, i: S.gather(x, 0, i),
        lambda x, i: torch.gather(x, 0, i),
        [np.array(2.0, np.float32), np.array(0)],
    )


def test_gather_errors():
    x = ember.tensor(distinct(4, 5))
    with pytest.raises(DTypeError, match="gather: expected dtype int64 for index, got i32"):
        S.gather(x, 0, ember.tensor(np.zeros((2, 2), np.int32)))
    with pytest.raises(ShapeError, match=r"gather: index i64\[2\] and input f32\[4,5\]"):
        S.gather(x, 0, ember.tensor([0, 1]))
    with pytest.raises(EmberError, match="gather"):
        S.gather(x, 0, ember.tensor([[0, 9]]))
    with pytest.raises(ShapeError, match="gather"):
        S.gather(x, 0, ember.tensor(np.zeros((2, 6), np.int64)))


def unique_index(shape, n, axis):
    """An index of ``shape`` whose entries along ``axis`` are distinct values in [0, n)."""
    moved = list(shape)
    moved[axis], moved[-1] = moved[-1], moved[axis]
    rows = [RNG.permutation(n)[: shape[axis]] for _ in range(int(np.prod(moved[:-1])))]
    return np.swapaxes(np.array(rows).reshape(moved), axis, -1).copy()


@pytest.mark.parametrize("dim", [0, 1])
def test_scatter_src(dim):
    data = distinct(4, 5)
    idx = unique_index((3, 4), data.shape[dim], dim)
    for src, grad_of in ((distinct(3, 4), (0, 2)), (distinct(3, 5), (0,))):
        # a src larger than the index: only the index's part is used (torch's backward to
        # such a src fails, so only the input's gradient is compared there)
        run_both(
            lambda x, i, s: S.scatter(x, dim, i, s),
            lambda x, i, s: torch.scatter(x, dim, i, s),
            [data, idx, src],
            grad_of=grad_of,
        )


def test_scatter_value_and_int():
    data = distinct(3, 4)
    idx = np.array([[0, 2], [3, 1], [1, 1]])
    run_both(lambda x, i: S.scatter(x, 1, i, value=-2.5), lambda x, i: torch.scatter(x, 1, i, -2.5),
             [data, idx])  # fmt: skip
    ints = np.arange(12).reshape(3, 4)
    run_both(lambda x, i: S.scatter(x, 1, i, 7), lambda x, i: torch.scatter(x, 1, i, 7),
             [ints, idx])  # fmt: skip


def test_scatter_duplicates_take_one_written_value():
    x = S.scatter(ember.zeros(4), 0, ember.tensor([1, 1, 2]), ember.tensor([5.0, 6.0, 7.0]))
    assert x[1].item() in (5.0, 6.0)
    assert x[2].item() == 7.0 and x[0].item() == 0.0


@pytest.mark.parametrize("dim", [0, 1])
def test_scatter_add(dim):
    data = distinct(4, 5)
    idx = RNG.integers(0, data.shape[dim], size=(6, 5) if dim == 0 else (4, 8))
    src = distinct(*idx.shape)
    run_both(
        lambda x, i, s: S.scatter_add(x, dim, i, s),
        lambda x, i, s: torch.scatter_add(x, dim, i, s),
        [data, idx, src],
        grad_of=(0, 2),
    )


def test_scatter_add_reduce_and_errors():
    data, idx, src = distinct(3, 4), np.array([[0, 0], [3, 1], [2, 2]]), distinct(3, 2)
    run_both(
        lambda x, i, s: S.scatter(x, 1, i, s, reduce="add"),
        lambda x, i, s: torch.scatter(x, 1, i, s, reduce="add"),
        [data, idx, src],
        grad_of=(),
    )
    x = ember.tensor(data)
    with pytest.raises(DTypeError, match="scatter_add: expected self.dtype to be equal"):
        S.scatter_add(x, 1, ember.tensor(idx), ember.tensor(src.astype(np.float64)))
    with pytest.raises(ShapeError, match="scatter_add: expected index"):
        S.scatter_add(x, 1, ember.tensor(idx), ember.tensor(distinct(3, 1)))
    with pytest.raises(IndexOutOfRange, match="scatter: index 4 is out of bounds"):
        S.scatter(x, 1, ember.tensor([[4]]), 1.0)


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_index_select(dim):
    data = distinct(3, 4, 3)
    idx = np.array([2, 0, 2, 1])
    run_both(lambda x, i: S.index_select(x, dim, i), lambda x, i: torch.index_select(x, dim, i),
             [data, idx])  # fmt: skip


def test_index_select_int32_and_0d():
    data = distinct(3, 4)
    idx = np.array([1, 1, 0], np.int32)
    run_both(lambda x, i: S.index_select(x, 0, i), lambda x, i: torch.index_select(x, 0, i),
             [data, idx])  # fmt: skip
    run_both(lambda x, i: S.index_select(x, 1, i), lambda x, i: torch.index_select(x, 1, i),
             [data, np.array(3)])  # fmt: skip
    with pytest.raises(IndexOutOfRange, match="index_select: index 4 is out of bounds"):
        S.index_select(ember.tensor(data), 1, ember.tensor([4]))
    with pytest.raises(DTypeError, match="index_select"):
        S.index_select(ember.tensor(data), 1, ember.tensor([1.0]))


@pytest.mark.parametrize("dim", [None, 0, 1])
def test_take_along_dim(dim):
    data = distinct(3, 4)
    if dim is None:
        idx = RNG.integers(0, 12, size=(5,))
    else:
        idx = np.argsort(data, axis=dim)[:2] if dim == 0 else np.argsort(data, axis=dim)
    run_both(lambda x, i: S.take_along_dim(x, i, dim), lambda x, i: torch.take_along_dim(x, i, dim),
             [data, idx])  # fmt: skip


def test_take_along_dim_broadcasts():
    data = distinct(3, 1, 4)
    idx = RNG.integers(0, 4, size=(1, 5, 2))
    run_both(lambda x, i: S.take_along_dim(x, i, 2), lambda x, i: torch.take_along_dim(x, i, 2),
             [data, idx])  # fmt: skip


def test_masked_select():
    data = distinct(3, 4)
    mask = RNG.random((3, 4)) > 0.5
    run_both(S.masked_select, torch.masked_select, [data, mask])
    run_both(S.masked_select, torch.masked_select, [data, RNG.random(4) > 0.3])  # broadcast
    run_both(S.masked_select, torch.masked_select, [distinct(4), RNG.random((2, 4)) > 0.5])
    with pytest.raises(DTypeError, match="masked_select"):
        S.masked_select(ember.tensor(data), ember.tensor(np.ones((3, 4), np.int64)))


@pytest.mark.parametrize("dim", [0, 1])
@pytest.mark.parametrize("alpha", [1, 2.5])
def test_index_add(dim, alpha):
    data = distinct(4, 3)
    idx = np.array([1, 0, 1, 2])[: 4 if dim == 0 else 3]
    shape = (len(idx), 3) if dim == 0 else (4, len(idx))
    run_both(
        lambda x, i, s: S.index_add(x, dim, i, s, alpha=alpha),
        lambda x, i, s: torch.index_add(x, dim, i, s, alpha=alpha),
        [data, idx, distinct(*shape)],
        grad_of=(0, 2),
        exact=alpha == 1,  # torch rounds alpha * source differently (fused)
    )
    with pytest.raises(ShapeError, match="index_add: source"):
        S.index_add(ember.tensor(data), dim, ember.tensor(idx), ember.ones(9, 9))


def test_index_copy():
    data = distinct(5, 3)
    idx = np.array([4, 0, 2])
    run_both(
        lambda x, i, s: S.index_copy(x, 0, i, s),
        lambda x, i, s: torch.index_copy(x, 0, i, s),
        [data, idx, distinct(3, 3)],
        grad_of=(0, 2),
    )


@pytest.mark.parametrize("value", [-1.5, "tensor"])
def test_index_fill(value):
    data, idx = distinct(3, 4), np.array([3, 1, 3])
    if value == "tensor":
        v = np.array(2.0, np.float32)
        run_both(
            lambda x, i, v: S.index_fill(x, 1, i, v),
            lambda x, i, v: torch.index_fill(x, 1, i, v),
            [data, idx, v],
            grad_of=(0, 2),
        )
    else:
        run_both(lambda x, i: S.index_fill(x, 1, i, value),
                 lambda x, i: torch.index_fill(x, 1, i, value), [data, idx])  # fmt: skip
    ints = np.arange(12).reshape(4, 3)
    run_both(lambda x, i: S.index_fill(x, 0, i, 9), lambda x, i: torch.index_fill(x, 0, i, 9),
             [ints, np.array([0, 2])])  # fmt: skip


def test_in_place_variants_through_apply_inplace():
    from ember.frontend.ops.inplace import apply_inplace

    data, idx, src = distinct(3, 4), np.array([[0, 1], [2, 3], [1, 1]]), distinct(3, 2)
    a = ember.tensor(data, requires_grad=True)
    ta = torch.tensor(data, requires_grad=True)
    e = a * 1.0
    t = ta * 1.0
    apply_inplace(e, lambda s, *o: S.scatter_add(s, *o), "scatter_add_", 1, ember.tensor(idx),
                  ember.tensor(src))  # fmt: skip
    t.scatter_add_(1, torch.tensor(idx), torch.tensor(src))
    apply_inplace(e, lambda s, *o: S.index_fill(s, *o), "index_fill_", 0, ember.tensor([2]), 0.0)
    t.index_fill_(0, torch.tensor([2]), 0.0)
    assert_same(e, t)
    w = RNG.standard_normal((3, 4)).astype(np.float32)
    (e * ember.tensor(w)).sum().backward()
    (t * torch.tensor(w)).sum().backward()
    assert_same(a.grad, ta.grad, exact=False)
