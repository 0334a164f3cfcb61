"""In-place writes through views: ``slice_scatter`` for strided windows, gather+where otherwise.

Values and gradients are compared with torch running the same program; the window analysis
is compared with numpy's own views; compiled graphs are checked for the primitives they use.
"""

import numpy as np
import pytest
import torch

import ember
from ember.frontend.autograd.windows import find_window
from ember.ir import ops as P

# ---- the window analysis against numpy views -----------------------------------------------

BASE = np.arange(2 * 3 * 4).reshape(2, 3, 4)

WINDOWS = {
    "rows": lambda a: a[1:],
    "strided": lambda a: a[:, ::2, 1::2],
    "int index": lambda a: a[1, :, 2],
    "0-d": lambda a: a[1, 2, 3],
    "transposed": lambda a: a.transpose(2, 0, 1)[1:3],
    "permuted slice": lambda a: a.transpose(1, 2, 0)[:, ::3, 1],
    "size-1 dims inserted": lambda a: a[None, :, 1:2, None, :],
    "flattened block": lambda a: a.reshape(-1)[::2],
    "flattened rows": lambda a: a.reshape(6, 4)[3:6],
    "whole": lambda a: a,
    "unique fancy rows": lambda a: a[:, [0, 2]],
    # windows of the base with consecutive dims merged
    "diagonal": lambda a: np.diagonal(a[0]),
    "batched diagonal": lambda a: np.diagonal(a[:, :, :3], 0, 1, 2),
    "flat run across rows": lambda a: a.reshape(-1)[3:9],
    "flattened rows across a block": lambda a: a.reshape(6, 4)[2:5],
}
NOT_WINDOWS = {
    "repeated index": lambda a: a[:, [1, 1]],
    "irregular index": lambda a: a[:, [0, 1, 0]],
    "expanded": lambda a: np.broadcast_to(a[:, :1], (2, 3, 4)),
    "empty": lambda a: a[:, 1:1],
}


@pytest.mark.parametrize("name", WINDOWS)
def test_window_reads_the_view_positions(name):
    positions = np.ascontiguousarray(WINDOWS[name](BASE))
    window = find_window(positions, BASE.shape)
    assert window is not None
    merged = BASE.reshape(window.shape)
    picked = merged[tuple(slice(*t) for t in zip(window.starts, window.stops, window.steps))]
    np.testing.assert_array_equal(picked.transpose(window.perm).reshape(positions.shape),
                                  positions)  # fmt: skip
    assert all(s >= 1 for s in window.steps)


@pytest.mark.parametrize("name", NOT_WINDOWS)
def test_positions_that_are_no_window(name):
    assert find_window(np.ascontiguousarray(NOT_WINDOWS[name](BASE)), BASE.shape) is None


def test_window_keeps_base_order_without_permute():
    window = find_window(np.ascontiguousarray(BASE[None, 1, :, None, 2:]), BASE.shape)
    assert window.shape == BASE.shape and window.perm == (0, 1, 2)
    assert window.starts == (1, 0, 2) and window.stops == (2, 3, 4)


# ---- the primitive ---------------------------------------------------------------------------


def test_slice_scatter_values_and_gradients_against_numpy():
    rng = np.random.default_rng(0)
    base, upd, w = rng.normal(size=(5, 6)), rng.normal(size=(2, 3)), rng.normal(size=(5, 6))
    window = dict(starts=(1, 0), stops=(5, 6), steps=(2, 2))
    b = ember.tensor(base, requires_grad=True)
    u = ember.tensor(upd, requires_grad=True)
    out = P.slice_scatter(b, u, **window)
    expected = base.copy()
    expected[1:5:2, 0:6:2] = upd
    np.testing.assert_array_equal(out.detach().numpy(), expected)
    (out * ember.tensor(w)).sum().backward()
    g_base = w.copy()
    g_base[1:5:2, 0:6:2] = 0
    np.testing.assert_array_equal(b.grad.numpy(), g_base)
    np.testing.assert_array_equal(u.grad.numpy(), w[1:5:2, 0:6:2])


def test_slice_scatter_gradient_by_finite_differences():
    rng = np.random.default_rng(1)
    arrays = [rng.normal(size=(4, 3)), rng.normal(size=(2, 3))]
    window = dict(starts=(0, 0), stops=(4, 3), steps=(3, 1))

    def f(a, b):
        return P.slice_scatter(a, b, **window).sin().sum()

    leaves = [ember.tensor(a, requires_grad=True) for a in arrays]
    f(*leaves).backward()
    eps = 1e-6
    for k, a in enumerate(arrays):
        numeric = np.zeros_like(a)
        for i in np.ndindex(a.shape):
            values = []
            for sign in (1, -1):
                moved = [b.copy() for b in arrays]
                moved[k][i] += sign * eps
                values.append(f(*map(ember.tensor, moved)).item())
            numeric[i] = (values[0] - values[1]) / (2 * eps)
        np.testing.assert_allclose(leaves[k].grad.numpy(), numeric, rtol=1e-6, atol=1e-8)


# ---- writes through views against torch -----------------------------------------------------


def _rows(y, v, m):
    y[1:3] += v


def _strided(y, v, m):
    y[::2, 1:] = v * 2


def _transposed_slice(y, v, m):
    y.t()[1:3].mul_(v)


def _int_row(y, v, m):
    y[1] = v


def _int_column(y, v, m):
    y[:, 2].sub_(v)


def _unsqueezed(y, v, m):
    y.unsqueeze(0)[0, 2, 1:] = v


def _view_of_view(y, v, m):
    r = y[1:]
    r.t()[0].add_(v)


def _flat_run(y, v, m):  # positions that cross rows: a window of the flat base
    y.view(-1)[2:5] = v


def _diagonal(y, v, m):  # a window of the flat base
    y.diagonal().mul_(v)
    y.diagonal(1)[1:] = v[:2]


def _repeated_rows(y, v, m):  # an index that repeats a row: no window, the last write wins
    y[[0, 2, 0]] = v


PROGRAMS = {
    "rows": (_rows, (2, 4)),
    "strided": (_strided, (2, 3)),
    "transposed slice": (_transposed_slice, (2, 3)),
    "integer row": (_int_row, (4,)),
    "integer column": (_int_column, (3,)),
    "unsqueezed": (_unsqueezed, (3,)),
    "view of view": (_view_of_view, (2,)),
    "flat run": (_flat_run, (3,)),
    "diagonal": (_diagonal, (3,)),
}


def _run(lib, program, x, v, sibling: bool):
    xt = lib.tensor(x, requires_grad=True)
    vt = lib.tensor(v, requires_grad=True)
    y = xt.sin()
    before = y[1:, 1]  # a view taken before the write: read afresh from its base afterwards
    program(y, vt, lib)
    loss = (y * y).sum()
    if sibling:
        loss = loss + (before * before).sum()
    loss.backward()
    return y.detach().numpy(), xt.grad.numpy(), vt.grad.numpy()


@pytest.mark.parametrize("sibling", [False, True], ids=["", "with sibling view"])
@pytest.mark.parametrize("name", PROGRAMS)
def test_write_through_view_matches_torch(name, sibling):
    program, vshape = PROGRAMS[name]
    rng = np.random.default_rng(7)
    x, v = rng.normal(size=(3, 4)), rng.normal(size=vshape)
    got = _run(ember, program, x, v, sibling)
    want = _run(torch, program, x, v, sibling)
    for g, w, what in zip(got, want, ("value", "x.grad", "v.grad")):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12, err_msg=what)


def test_repeated_rows_last_write_wins_and_takes_the_gradient():
    rng = np.random.default_rng(8)
    x, v = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    value, gx, gv = _run(ember, _repeated_rows, x, v, sibling=False)
    want_value, want_gx, _ = _run(torch, _repeated_rows, x, v, sibling=False)
    np.testing.assert_allclose(value, want_value, rtol=1e-12)
    np.testing.assert_allclose(gx, want_gx, rtol=1e-12)
    # the overwritten first write gets nothing (torch, whose forward picks the same value,
    # gives both writes the row's gradient)
    np.testing.assert_array_equal(gv[0], 0.0)
    np.testing.assert_allclose(gv[1:], 2 * value[[2, 0]], rtol=1e-12)


# ---- compiled graphs -------------------------------------------------------------------------


def _ops(graph) -> list[str]:
    return [n.op for n in graph.nodes]


def test_compiled_slice_add_is_a_slice_scatter():
    def f(x):
        y = x * 2
        y[1:3] += 1
        return y

    report = ember.explain(f)(ember.ones(4, 3))
    ops = _ops(report.graphs[0])
    assert "slice_scatter" in ops and "gather" not in ops and "where" not in ops
    c = ember.compile(f)
    x = ember.tensor(np.arange(12.0).reshape(4, 3))
    np.testing.assert_array_equal(c(x).numpy(), f(x).numpy())


def test_compiled_write_into_an_input_through_a_transposed_view():
    def f(x, v):
        x.t()[1:, 0] = v
        return x.sum(0)

    x, v = np.arange(12.0).reshape(3, 4), np.array([-1.0, -2.0, -3.0])
    report = ember.explain(f)(ember.tensor(x), ember.tensor(v))
    ops = _ops(report.graphs[0])
    assert "slice_scatter" in ops and "gather" not in ops
    a, b = ember.tensor(x), ember.tensor(x)
    out = ember.compile(f)(a, ember.tensor(v))
    np.testing.assert_array_equal(out.numpy(), f(b, ember.tensor(v)).numpy())
    np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_compiled_gradient_of_a_write_through_a_view():
    def f(x, v):
        y = x.sin()
        y[:, 1:3] *= v
        return (y * y).sum()

    rng = np.random.default_rng(3)
    x, v = rng.normal(size=(3, 4)), rng.normal(size=(3, 2))
    report = ember.explain(f)(ember.tensor(x, requires_grad=True), ember.tensor(v))
    for graph in report.graphs:
        assert "gather" not in _ops(graph)
    grads = []
    for fn in (f, ember.compile(f)):
        xt, vt = ember.tensor(x, requires_grad=True), ember.tensor(v, requires_grad=True)
        fn(xt, vt).backward()
        grads.append((xt.grad.numpy(), vt.grad.numpy()))
    tx, tv = torch.tensor(x, requires_grad=True), torch.tensor(v, requires_grad=True)
    f(tx, tv).backward()
    for gx, gv in grads:
        np.testing.assert_allclose(gx, tx.grad.numpy(), rtol=1e-12)
        np.testing.assert_allclose(gv, tv.grad.numpy(), rtol=1e-12)


def test_compiled_diagonal_write_is_a_slice_scatter_of_the_flat_base():
    def f(x):
        y = x * 1
        y.diagonal().add_(1)
        return y

    ops = _ops(ember.explain(f)(ember.ones(3, 3)).graphs[0])
    assert "slice_scatter" in ops and "gather" not in ops
    np.testing.assert_array_equal(ember.compile(f)(ember.ones(3, 3)).numpy(), np.eye(3) + 1)


def test_compiled_write_that_is_no_window_keeps_gather():
    def f(x, v):
        y = x * 1
        y[[0, 2, 0]] = v
        return y

    x, v = np.arange(12.0).reshape(3, 4), -np.arange(12.0).reshape(3, 4)
    report = ember.explain(f)(ember.tensor(x), ember.tensor(v))
    assert "gather" in _ops(report.graphs[0]) and "where" in _ops(report.graphs[0])
    expected = x.copy()
    expected[[0, 2, 0]] = v
    got = ember.compile(f)(ember.tensor(x), ember.tensor(v))
    np.testing.assert_array_equal(got.numpy(), expected)
