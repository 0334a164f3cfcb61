"""Pooling against PyTorch: max/avg/adaptive pooling in 1-d and 2-d, forward values, returned
indices and input gradients of a weighted sum. Inputs hold many tied values (small integers),
so the max-pooling gradient must go to the first maximum of each window, as PyTorch's does."""

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import ember
import ember.nn as nn
import ember.nn.functional as F
from ember.ir.errors import DTypeError, ShapeError

RNG = np.random.default_rng(3)


def _ties(*shape):
    """Small integers as floats: most windows have tied maxima."""
    return RNG.integers(0, 3, shape).astype(np.float64)


def _check(fe, ft, x, kwargs, with_indices=False, tol=1e-10):
    xe, xt = ember.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    ye, yt = fe(xe, **kwargs), ft(xt, **kwargs)
    if with_indices:
        (ye, ie), (yt, it) = ye, yt
        assert ie.dtype is ember.int64
        np.testing.assert_array_equal(ie.numpy(), it.numpy(), err_msg=str(kwargs))
    assert tuple(ye.shape) == tuple(yt.shape), kwargs
    np.testing.assert_allclose(ye.detach().numpy(), yt.detach().numpy(), rtol=tol, atol=tol)
    w = RNG.standard_normal(yt.shape).astype(x.dtype)
    (ye * ember.tensor(w)).sum().backward()
    (yt * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(
        xe.grad.numpy(), xt.grad.numpy(), rtol=tol, atol=tol, err_msg=str(kwargs)
    )


def _valid(fn, x, *args):
    try:
        fn(torch.tensor(x), *args)
    except RuntimeError:
        return False
    return True


# ---- max pooling ------------------------------------------------------------------------------

MAX2D = [
    (k, s, p, d, c)
    for k, s, p, d, c in itertools.product(
        [2, 3, (2, 3)], [None, 1, 2, (2, 1)], [0, 1], [1, 2], [False, True]
    )
    if _valid(TF.max_pool2d, np.zeros((1, 1, 7, 8)), k, s, p, d, c)
]


@pytest.mark.parametrize("k,s,p,d,ceil", MAX2D[::2], ids=str)
def test_max_pool2d_with_ties_matches_torch(k, s, p, d, ceil):
    kw = dict(kernel_size=k, stride=s, padding=p, dilation=d, ceil_mode=ceil, return_indices=True)
    _check(F.max_pool2d, TF.max_pool2d, _ties(2, 3, 7, 8), kw, with_indices=True)


def test_max_pool2d_all_equal_window_gives_whole_gradient_to_first_element():
    x = np.ones((1, 1, 4, 4))
    xe = ember.tensor(x, requires_grad=True)
    F.max_pool2d(xe, 2).sum().backward()
    expected = np.zeros((4, 4))
    expected[::2, ::2] = 1.0
    np.testing.assert_array_equal(xe.grad.numpy()[0, 0], expected)


def test_max_pool2d_unbatched_negative_values_and_padding():
    x = -np.abs(RNG.standard_normal((3, 6, 6))) - 1.0  # padding must act as -inf, not 0
    _check(F.max_pool2d, TF.max_pool2d, x, dict(kernel_size=3, stride=2, padding=1))


def test_max_pool2d_float32():
    x = RNG.standard_normal((2, 2, 6, 5)).astype(np.float32)
    _check(F.max_pool2d, TF.max_pool2d, x, dict(kernel_size=2, ceil_mode=True), tol=1e-6)


@pytest.mark.parametrize(
    "k,s,p,d,ceil",
    [
        (2, None, 0, 1, False),
        (3, 2, 1, 1, True),
        (3, 1, 1, 2, False),
        (2, 3, 1, 1, True),
        (4, 2, 2, 1, False),
    ],
)
@pytest.mark.parametrize("batched", [True, False])
def test_max_pool1d_matches_torch(k, s, p, d, ceil, batched):
    x = _ties(2, 3, 11) if batched else _ties(3, 11)
    kw = dict(kernel_size=k, stride=s, padding=p, dilation=d, ceil_mode=ceil, return_indices=True)
    _check(F.max_pool1d, TF.max_pool1d, x, kw, with_indices=True)


# ---- average pooling --------------------------------------------------------------------------

AVG2D = [
    (k, s, p, c)
    for k, s, p, c in itertools.product([2, 3, (2, 3)], [None, 1, 2, (2, 1)], [0, 1], [False, True])
    if _valid(TF.avg_pool2d, np.zeros((1, 1, 7, 8)), k, s, p, c)
]


@pytest.mark.parametrize("k,s,p,ceil", AVG2D[::2], ids=str)
@pytest.mark.parametrize("count_include_pad,divisor", [(True, None), (False, None), (True, 3)])
def test_avg_pool2d_matches_torch(k, s, p, ceil, count_include_pad, divisor):
    kw = dict(
        kernel_size=k,
        stride=s,
        padding=p,
        ceil_mode=ceil,
        count_include_pad=count_include_pad,
        divisor_override=divisor,
    )
    _check(F.avg_pool2d, TF.avg_pool2d, RNG.standard_normal((2, 3, 7, 8)), kw)


@pytest.mark.parametrize(
    "k,s,p,ceil", [(2, None, 0, False), (3, 2, 1, True), (3, 2, 1, False), (4, 3, 2, True)]
)
@pytest.mark.parametrize("count_include_pad", [True, False])
def test_avg_pool1d_matches_torch(k, s, p, ceil, count_include_pad):
    kw = dict(
        kernel_size=k, stride=s, padding=p, ceil_mode=ceil, count_include_pad=count_include_pad
    )
    _check(F.avg_pool1d, TF.avg_pool1d, RNG.standard_normal((2, 3, 10)), kw)


# ---- adaptive pooling -------------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 3, (2, 5), (None, 3), (7, 8), (4, None), (5, 3), (6, 7)])
def test_adaptive_avg_pool2d_matches_torch(size):
    _check(
        F.adaptive_avg_pool2d,
        TF.adaptive_avg_pool2d,
        RNG.standard_normal((2, 3, 7, 8)),
        dict(output_size=size),
    )


def test_adaptive_avg_pool2d_unbatched_and_float32():
    x = RNG.standard_normal((3, 9, 5)).astype(np.float32)
    _check(F.adaptive_avg_pool2d, TF.adaptive_avg_pool2d, x, dict(output_size=(4, 2)), tol=1e-6)


@pytest.mark.parametrize("size", [1, 3, 4, 11])
def test_adaptive_avg_pool1d_matches_torch(size):
    _check(
        F.adaptive_avg_pool1d,
        TF.adaptive_avg_pool1d,
        RNG.standard_normal((2, 3, 11)),
        dict(output_size=size),
    )


@pytest.mark.parametrize("size", [1, 3, (2, 5), (None, 3), (5, 3)])
def test_adaptive_max_pool2d_with_ties_matches_torch(size):
    _check(
        F.adaptive_max_pool2d,
        TF.adaptive_max_pool2d,
        _ties(2, 3, 7, 8),
        dict(output_size=size, return_indices=True),
        with_indices=True,
    )


@pytest.mark.parametrize("size", [1, 4, 11])
def test_adaptive_max_pool1d_matches_torch(size):
    _check(
        F.adaptive_max_pool1d,
        TF.adaptive_max_pool1d,
        _ties(2, 3, 11),
        dict(output_size=size, return_indices=True),
        with_indices=True,
    )


# ---- modules ----------------------------------------------------------------------------------

MODULES = [
    ("MaxPool2d", (2,), {}),
    ("MaxPool2d", ((2, 3),), dict(stride=1, ceil_mode=True)),
    ("MaxPool2d", (3,), dict(stride=2, padding=1, dilation=1)),
    ("MaxPool1d", (3,), dict(stride=2, padding=1)),
    ("AvgPool2d", (2,), {}),
    ("AvgPool2d", (3,), dict(stride=2, padding=1, ceil_mode=True, count_include_pad=False)),
    ("AvgPool2d", (3,), dict(divisor_override=2)),
    ("AvgPool1d", (3,), dict(stride=2, padding=1)),
    ("AdaptiveAvgPool2d", ((None, 3),), {}),
    ("AdaptiveAvgPool2d", (3,), {}),
    ("AdaptiveAvgPool1d", (4,), {}),
    ("AdaptiveMaxPool2d", ((3, 2),), {}),
    ("AdaptiveMaxPool1d", (4,), {}),
]


@pytest.mark.parametrize("name,args,kwargs", MODULES, ids=str)
def test_pool_modules_match_torch(name, args, kwargs):
    em, tm = getattr(nn, name)(*args, **kwargs), getattr(torch.nn, name)(*args, **kwargs)
    assert repr(em) == repr(tm)
    assert list(em.state_dict()) == list(tm.state_dict()) == []
    x = _ties(2, 3, 9) if "1d" in name else _ties(2, 3, 7, 8)
    _check(em, tm, x, {})


def test_max_pool_module_return_indices():
    em, tm = nn.MaxPool2d(2, return_indices=True), torch.nn.MaxPool2d(2, return_indices=True)
    _check(em, tm, _ties(1, 2, 6, 6), {}, with_indices=True)


def test_pool_module_attributes_match_torch():
    pairs = [
        (nn.MaxPool2d(3), torch.nn.MaxPool2d(3)),
        (nn.AvgPool1d(3), torch.nn.AvgPool1d(3)),
        (nn.AvgPool2d(3, 1), torch.nn.AvgPool2d(3, 1)),
    ]
    for em, tm in pairs:
        for attr in ("kernel_size", "stride", "padding", "ceil_mode"):
            assert getattr(em, attr) == getattr(tm, attr)


# ---- errors -----------------------------------------------------------------------------------


def test_pool_errors_name_op_and_shape():
    with pytest.raises(ShapeError, match=r"max_pool2d.*\[2, 3\]"):
        F.max_pool2d(ember.zeros(2, 3), 2)
    with pytest.raises(ShapeError, match=r"avg_pool2d.*\[1, 2, 3, 4, 5\]"):
        F.avg_pool2d(ember.zeros(1, 2, 3, 4, 5), 2)
    with pytest.raises(ShapeError, match=r"adaptive_avg_pool2d.*\[5\]"):
        F.adaptive_avg_pool2d(ember.zeros(5), 2)
    with pytest.raises(ShapeError, match="pad should be at most half"):
        F.max_pool2d(ember.zeros(1, 1, 6, 6), 2, padding=2)
    with pytest.raises(ShapeError, match="pad should be at most half"):
        F.avg_pool2d(ember.zeros(1, 1, 6, 6), 2, padding=2)
    with pytest.raises(ShapeError, match="Output size is too small"):
        F.max_pool2d(ember.zeros(1, 1, 2, 2), 3)
    with pytest.raises(DTypeError, match="avg_pool2d"):
        F.avg_pool2d(ember.zeros(1, 1, 4, 4, dtype=ember.int64), 2)
