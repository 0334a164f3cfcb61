"""F.pad, F.interpolate, F.normalize, F.cosine_similarity, F.pairwise_distance and the
padding/upsampling modules against PyTorch: forward values, dtypes and input gradients of a
weighted sum with fixed random weights."""

import numpy as np
import pytest
import torch
import torch.nn as tnn
import torch.nn.functional as TF

import ember
from ember.frontend.nn.functional import shaping as F
from ember.frontend.nn.modules import upsampling as M
from ember.ir.errors import EmberError

RNG = np.random.default_rng(7)


def _check(fe, ft, *xs, tol=1e-10, grad=True):
    es = [ember.tensor(x, requires_grad=grad) for x in xs]
    ts = [torch.tensor(x, requires_grad=grad) for x in xs]
    ye, yt = fe(*es), ft(*ts)
    assert tuple(ye.shape) == tuple(yt.shape)
    assert str(ye.dtype).split(".")[-1] == str(yt.dtype).split(".")[-1]
    np.testing.assert_allclose(ye.detach().numpy(), yt.detach().numpy(), rtol=tol, atol=tol)
    if grad:
        w = RNG.standard_normal(tuple(yt.shape))
        (ye * ember.tensor(w)).sum().backward()
        (yt * torch.tensor(w)).sum().backward()
        for e, t in zip(es, ts):
            np.testing.assert_allclose(e.grad.numpy(), t.grad.numpy(), rtol=tol, atol=tol)


PAD_CASES = [
    ((2, 3, 4, 5), (1, 2), "constant"),
    ((2, 3, 4, 5), (1, 2, 3, 0), "constant"),
    ((2, 3, 4, 5), (-1, 2, 0, -2), "constant"),
    ((3, 4), (1, 1, 1, 1), "constant"),
    ((2, 3, 4), (1, 1, 1, 1, 1, 1), "constant"),
    ((2, 3, 5), (2, 3), "reflect"),
    ((2, 3, 4, 5), (2, 1, 3, 1), "reflect"),
    ((3, 4, 5), (4, 1, 3, 0), "reflect"),
    ((2, 3, 5), (2, 3), "replicate"),
    ((2, 3, 4, 5), (2, 6, 3, 1), "replicate"),
    ((2, 3, 4, 5), (2, 5, 4, 1), "circular"),
    ((2, 3, 5), (-1, 3), "circular"),
    ((2, 3, 5), (3, -1), "circular"),
    ((2, 3, 4, 5), (-2, -1, 1, 0), "circular"),
    ((2, 3, 4, 5), (-1, 2, 1, -2), "replicate"),
]


@pytest.mark.parametrize("shape,pad,mode", PAD_CASES)
def test_pad_vs_torch(shape, pad, mode):
    x = RNG.standard_normal(shape)
    _check(lambda a: F.pad(a, pad, mode), lambda a: TF.pad(a, pad, mode), x)


def test_pad_value_and_dtypes():
    x = RNG.standard_normal((2, 3))
    _check(lambda a: F.pad(a, (1, 2), value=3.5), lambda a: TF.pad(a, (1, 2), value=3.5), x)
    xi = RNG.integers(-5, 5, (2, 3))
    ye = F.pad(ember.tensor(xi), (1, 1, 2, 0), value=7)
    yt = TF.pad(torch.tensor(xi), (1, 1, 2, 0), value=7)
    assert ye.dtype is ember.int64
    np.testing.assert_array_equal(ye.numpy(), yt.numpy())
    xf = RNG.standard_normal((1, 2, 4)).astype(np.float32)
    ye = F.pad(ember.tensor(xf), (2, 2), "reflect")
    assert ye.dtype is ember.float32
    np.testing.assert_array_equal(ye.numpy(), TF.pad(torch.tensor(xf), (2, 2), "reflect").numpy())


def test_pad_errors():
    x = ember.tensor(RNG.standard_normal((2, 3, 4)))
    with pytest.raises(EmberError, match="pad"):
        F.pad(x, (1, 2, 3))
    with pytest.raises(EmberError, match="pad"):
        F.pad(x, (1,) * 8)
    with pytest.raises(EmberError, match="pad"):
        F.pad(x, (4, 1), "reflect")
    with pytest.raises(EmberError, match="pad"):
        F.pad(x, (-3, -2))


def test_pad_modules():
    x = RNG.standard_normal((2, 3, 4, 5))
    pairs = [
        (M.ZeroPad2d(2), tnn.ZeroPad2d(2)),
        (M.ZeroPad2d((1, 0, 2, 3)), tnn.ZeroPad2d((1, 0, 2, 3))),
        (M.ConstantPad2d((1, 2, 0, 1), 2.5), tnn.ConstantPad2d((1, 2, 0, 1), 2.5)),
        (M.ReflectionPad2d(2), tnn.ReflectionPad2d(2)),
        (M.ReplicationPad2d((1, 3, 2, 0)), tnn.ReplicationPad2d((1, 3, 2, 0))),
        (M.CircularPad2d(1), tnn.CircularPad2d(1)),
    ]
    for me, mt in pairs:
        _check(me, mt, x)
        assert repr(me) == repr(mt)
    x1 = RNG.standard_normal((2, 3, 5))
    pairs1 = [
        (M.ConstantPad1d(2, -1.0), tnn.ConstantPad1d(2, -1.0)),
        (M.ZeroPad1d((1, 2)), tnn.ZeroPad1d((1, 2))),
        (M.ReflectionPad1d((3, 1)), tnn.ReflectionPad1d((3, 1))),
        (M.ReplicationPad1d(2), tnn.ReplicationPad1d(2)),
        (M.CircularPad1d(2), tnn.CircularPad1d(2)),
    ]
    for me, mt in pairs1:
        _check(me, mt, x1)
        assert repr(me) == repr(mt)


INTERP_CASES = [
    ((2, 3, 5), dict(size=9, mode="nearest")),
    ((2, 3, 5), dict(size=3, mode="nearest")),
    ((2, 3, 5), dict(scale_factor=2, mode="nearest")),
    ((2, 3, 5), dict(scale_factor=1.7, mode="nearest")),
    ((2, 3, 4, 5), dict(size=(7, 3), mode="nearest")),
    ((2, 3, 4, 5), dict(scale_factor=(2.5, 0.6), mode="nearest")),
    ((2, 3, 4, 5), dict(size=(7, 3), mode="nearest-exact")),
    ((2, 3, 5), dict(size=9, mode="linear")),
    ((2, 3, 5), dict(size=9, mode="linear", align_corners=True)),
    ((2, 3, 5), dict(scale_factor=1.5, mode="linear")),
    ((2, 3, 5), dict(size=2, mode="linear")),
    ((2, 3, 5), dict(size=1, mode="linear", align_corners=True)),
    ((2, 3, 4, 5), dict(size=(7, 3), mode="bilinear")),
    ((2, 3, 4, 5), dict(size=(8, 11), mode="bilinear", align_corners=True)),
    ((2, 3, 4, 5), dict(scale_factor=2, mode="bilinear")),
    ((2, 3, 4, 5), dict(scale_factor=(1.3, 0.7), mode="bilinear")),
    ((1, 2, 3, 4), dict(scale_factor=2, mode="bilinear", recompute_scale_factor=True)),
]


@pytest.mark.parametrize("shape,kw", INTERP_CASES)
def test_interpolate_vs_torch(shape, kw):
    x = RNG.standard_normal(shape)
    _check(lambda a: F.interpolate(a, **kw), lambda a: TF.interpolate(a, **kw), x)


def test_interpolate_float32_and_errors():
    x = RNG.standard_normal((2, 3, 6, 5)).astype(np.float32)
    ye = F.interpolate(ember.tensor(x), size=(9, 4), mode="bilinear")
    yt = TF.interpolate(torch.tensor(x), size=(9, 4), mode="bilinear")
    assert ye.dtype is ember.float32
    np.testing.assert_allclose(ye.numpy(), yt.numpy(), rtol=1e-5, atol=1e-6)
    xe = ember.tensor(x)
    with pytest.raises(ValueError):
        F.interpolate(xe, size=3, scale_factor=2)
    with pytest.raises(ValueError):
        F.interpolate(xe)
    with pytest.raises(ValueError):
        F.interpolate(xe, size=3, align_corners=True)
    with pytest.raises(NotImplementedError):
        F.interpolate(xe, size=3, mode="linear")


def test_upsample_modules():
    x = RNG.standard_normal((2, 3, 4, 5))
    pairs = [
        (M.Upsample(scale_factor=2), tnn.Upsample(scale_factor=2)),
        (M.Upsample(size=(5, 7), mode="bilinear"), tnn.Upsample(size=(5, 7), mode="bilinear")),
        (
            M.Upsample(scale_factor=1.5, mode="bilinear", align_corners=True),
            tnn.Upsample(scale_factor=1.5, mode="bilinear", align_corners=True),
        ),
        (M.UpsamplingNearest2d(scale_factor=3), tnn.UpsamplingNearest2d(scale_factor=3)),
        (M.UpsamplingBilinear2d(size=(6, 9)), tnn.UpsamplingBilinear2d(size=(6, 9))),
    ]
    for me, mt in pairs:
        _check(me, mt, x)
        assert repr(me) == repr(mt)


@pytest.mark.parametrize("p,dim", [(2.0, 1), (1.0, -1), (3.0, 0), (float("inf"), 2)])
def test_normalize(p, dim):
    x = RNG.standard_normal((3, 4, 5))
    x[0, :, 0] = 0.0
    _check(lambda a: F.normalize(a, p, dim), lambda a: TF.normalize(a, p, dim), x)


def test_cosine_similarity_and_pairwise_distance():
    a, b = RNG.standard_normal((4, 6)), RNG.standard_normal((4, 6))
    _check(F.cosine_similarity, TF.cosine_similarity, a, b)
    _check(
        lambda x, y: F.cosine_similarity(x, y, dim=0),
        lambda x, y: TF.cosine_similarity(x, y, dim=0),
        a,
        b,
    )
    c = RNG.standard_normal((1, 6))
    _check(F.cosine_similarity, TF.cosine_similarity, a, c)
    _check(F.pairwise_distance, TF.pairwise_distance, a, b)
    _check(
        lambda x, y: F.pairwise_distance(x, y, p=1.0, keepdim=True),
        lambda x, y: TF.pairwise_distance(x, y, p=1.0, keepdim=True),
        a,
        c,
    )
    _check(
        lambda x, y: F.pairwise_distance(x, y, p=3.0),
        lambda x, y: TF.pairwise_distance(x, y, p=3.0),
        a,
        b,
    )
