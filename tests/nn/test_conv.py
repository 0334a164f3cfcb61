"""Convolutions against PyTorch: F.conv1d/conv2d/conv_transpose1d/conv_transpose2d and the
Conv modules, forward values and gradients of the input, weight and bias for a weighted sum,
over strides, paddings (ints, tuples, 'same', 'valid'), dilations, groups, output_padding,
non-square kernels and batch sizes; reprs, state_dict keys, init bounds and errors."""

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import ember
import ember.nn as nn
import ember.nn.functional as F
from ember.ir.errors import DTypeError, ShapeError

RNG = np.random.default_rng(7)

# PyTorch warns about its own padded copy for even kernels with padding="same".
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same'")


def _randn(*shape, dtype=np.float64):
    return RNG.standard_normal(shape).astype(dtype)


def _check_fn(fe, ft, arrays, kwargs, tol=1e-10):
    """``fe``/``ft`` on the same arrays (None passes through): outputs and all gradients."""
    ein = [None if a is None else ember.tensor(a, requires_grad=True) for a in arrays]
    tin = [None if a is None else torch.tensor(a, requires_grad=True) for a in arrays]
    ye, yt = fe(*ein, **kwargs), ft(*tin, **kwargs)
    assert tuple(ye.shape) == tuple(yt.shape), kwargs
    np.testing.assert_allclose(ye.detach().numpy(), yt.detach().numpy(), rtol=tol, atol=tol)
    w = _randn(*yt.shape, dtype=arrays[0].dtype)
    (ye * ember.tensor(w)).sum().backward()
    (yt * torch.tensor(w)).sum().backward()
    for name, a, b in zip(("input", "weight", "bias"), ein, tin):
        if a is not None:
            np.testing.assert_allclose(
                a.grad.numpy(), b.grad.numpy(), rtol=tol, atol=tol, err_msg=f"{name} {kwargs}"
            )


# ---- F.conv2d ---------------------------------------------------------------------------------

CONV2D_CASES = [
    dict(stride=s, padding=p, dilation=d, groups=g, kernel=k, batch=b)
    for (s, p, d, g, k), b in zip(
        itertools.product(
            [1, 2, (2, 1)], [0, 1, (2, 0)], [1, (1, 2)], [1, 2], [(3, 3), (2, 3), (1, 1)]
        ),
        itertools.cycle([1, 2]),
    )
]


@pytest.mark.parametrize("case", CONV2D_CASES[::3], ids=str)
def test_conv2d_matches_torch(case):
    k, g, b = case["kernel"], case["groups"], case["batch"]
    x, w, bias = _randn(b, 4, 7, 8), _randn(6, 4 // g, *k), _randn(6)
    kw = {n: case[n] for n in ("stride", "padding", "dilation", "groups")}
    _check_fn(F.conv2d, TF.conv2d, [x, w, bias], kw)


@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.parametrize("dilation", [1, 2])
@pytest.mark.parametrize("kernel", [(3, 3), (2, 4)])
def test_conv2d_string_padding(padding, dilation, kernel):
    x, w = _randn(2, 4, 6, 7), _randn(6, 2, *kernel)
    _check_fn(F.conv2d, TF.conv2d, [x, w, None], dict(padding=padding, dilation=dilation, groups=2))


def test_conv2d_depthwise_and_unbatched():
    x, w, b = _randn(4, 5, 6), _randn(8, 1, 3, 3), _randn(8)
    _check_fn(F.conv2d, TF.conv2d, [x, w, b], dict(padding=1, groups=4))


def test_conv2d_float32():
    x, w, b = _randn(2, 3, 9, 9, dtype=np.float32), _randn(5, 3, 3, 3, dtype=np.float32), None
    _check_fn(F.conv2d, TF.conv2d, [x, w, b], dict(stride=2, padding=1), tol=1e-5)


def test_conv2d_tuple_of_one_is_expanded():
    x, w = _randn(1, 2, 6, 6), _randn(3, 2, 3, 3)
    _check_fn(F.conv2d, TF.conv2d, [x, w, None], dict(stride=(2,), padding=[1]))


# ---- F.conv1d ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "stride,padding,dilation,groups",
    [
        (1, 0, 1, 1),
        (2, 1, 1, 2),
        (1, "same", 2, 1),
        (3, 2, 2, 2),
        (1, "valid", 1, 4),
        (2, (1,), 1, 1),
    ],
)
@pytest.mark.parametrize("batch", [1, 2])
def test_conv1d_matches_torch(stride, padding, dilation, groups, batch):
    x, w, b = _randn(batch, 4, 11), _randn(8, 4 // groups, 3), _randn(8)
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    _check_fn(F.conv1d, TF.conv1d, [x, w, b], kw)


def test_conv1d_unbatched():
    _check_fn(F.conv1d, TF.conv1d, [_randn(3, 9), _randn(2, 3, 4), _randn(2)], dict(padding="same"))


# ---- F.conv_transpose2d / conv_transpose1d ----------------------------------------------------

TRANSPOSE_CASES = [
    dict(stride=s, padding=p, output_padding=o, groups=g, dilation=d, kernel=k)
    for s, p, o, g, d, k in [
        (1, 0, 0, 1, 1, (3, 3)),
        (2, 0, 1, 1, 1, (3, 3)),
        (2, 1, 0, 2, 1, (2, 3)),
        (3, 1, 2, 1, 1, (3, 2)),
        (2, 2, 1, 2, 2, (3, 3)),
        (1, 1, 1, 1, 2, (2, 2)),
        ((2, 1), (1, 0), (1, 0), 1, (1, 2), (3, 3)),
        (2, 3, 0, 1, 1, (3, 3)),  # padding > dilation * (k - 1): the dilated input is cropped
        (1, 0, 0, 2, 1, (1, 1)),
        (3, 0, 0, 2, 1, (1, 1)),
    ]
]


@pytest.mark.parametrize("case", TRANSPOSE_CASES, ids=str)
@pytest.mark.parametrize("batch", [1, 2])
def test_conv_transpose2d_matches_torch(case, batch):
    k, g = case["kernel"], case["groups"]
    x, w, b = _randn(batch, 4, 5, 6), _randn(4, 3, *k), _randn(3 * g)
    kw = {n: case[n] for n in ("stride", "padding", "output_padding", "groups", "dilation")}
    _check_fn(F.conv_transpose2d, TF.conv_transpose2d, [x, w, b], kw)


def test_conv_transpose2d_unbatched_no_bias():
    x, w = _randn(2, 4, 4), _randn(2, 5, 3, 3)
    _check_fn(F.conv_transpose2d, TF.conv_transpose2d, [x, w, None], dict(stride=2, padding=1))


@pytest.mark.parametrize(
    "stride,padding,output_padding,groups,dilation",
    [(1, 0, 0, 1, 1), (2, 1, 1, 2, 1), (3, 0, 2, 1, 2), (2, 2, 0, 1, 3)],
)
def test_conv_transpose1d_matches_torch(stride, padding, output_padding, groups, dilation):
    x, w, b = _randn(2, 4, 7), _randn(4, 3, 3), _randn(3 * groups)
    kw = dict(
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        groups=groups,
        dilation=dilation,
    )
    _check_fn(F.conv_transpose1d, TF.conv_transpose1d, [x, w, b], kw)


def test_conv_transpose2d_is_the_adjoint_of_conv2d():
    """<conv2d(x), y> == <x, conv_transpose2d(y)> with the same weight."""
    x, w = _randn(2, 3, 9, 8), _randn(4, 3, 3, 2)
    y = F.conv2d(ember.tensor(x), ember.tensor(w), stride=2, padding=1, dilation=(1, 2))
    r = _randn(*y.shape)
    xt = F.conv_transpose2d(
        ember.tensor(r),
        ember.tensor(w),
        stride=2,
        padding=1,
        dilation=(1, 2),
        output_padding=(0, 1),
    )
    assert tuple(xt.shape) == x.shape
    np.testing.assert_allclose(
        float((y * ember.tensor(r)).sum()), float((xt * ember.tensor(x)).sum()), rtol=1e-10
    )


# ---- modules ----------------------------------------------------------------------------------

MODULE_CASES = [
    ("Conv2d", (3, 4, 3), {}),
    ("Conv2d", (3, 4, 3), dict(padding="same")),
    ("Conv2d", (3, 4, 3), dict(padding="valid")),
    ("Conv2d", (4, 4, (2, 3)), dict(stride=2, padding=1, dilation=2, groups=2, bias=False)),
    ("Conv2d", (2, 4, 3), dict(padding=1, padding_mode="reflect")),
    ("Conv2d", (2, 4, 3), dict(padding=(1, 2), padding_mode="circular")),
    ("Conv2d", (2, 4, (3, 2)), dict(padding="same", padding_mode="replicate")),
    ("Conv1d", (3, 4, 3), {}),
    ("Conv1d", (3, 4, 3), dict(padding=2, padding_mode="reflect")),
    ("Conv1d", (3, 6, 3), dict(groups=3, stride=2, bias=False)),
    ("ConvTranspose2d", (3, 4, 3), {}),
    ("ConvTranspose2d", (3, 4, 3), dict(stride=2, output_padding=1)),
    (
        "ConvTranspose2d",
        (4, 6, (2, 3)),
        dict(stride=(2, 1), padding=1, groups=2, dilation=2, bias=False),
    ),
    ("ConvTranspose1d", (3, 4, 3), dict(stride=3, output_padding=2, padding=1)),
]


def _copy_to_torch(em, tm):
    tm.load_state_dict({k: torch.tensor(v.numpy()) for k, v in em.state_dict().items()})


@pytest.mark.parametrize("name,args,kwargs", MODULE_CASES, ids=lambda v: str(v))
def test_conv_modules_match_torch(name, args, kwargs):
    em = getattr(nn, name)(*args, **kwargs).double()
    tm = getattr(torch.nn, name)(*args, **kwargs).double()
    assert repr(em) == repr(tm)
    assert list(em.state_dict()) == list(tm.state_dict())
    for key, value in em.state_dict().items():
        assert tuple(value.shape) == tuple(tm.state_dict()[key].shape)
    _copy_to_torch(em, tm)
    shape = (2, args[0], 9) if "1d" in name else (2, args[0], 7, 8)
    x = _randn(*shape)
    xe, xt = ember.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    ye, yt = em(xe), tm(xt)
    np.testing.assert_allclose(ye.detach().numpy(), yt.detach().numpy(), rtol=1e-10, atol=1e-10)
    w = _randn(*yt.shape)
    (ye * ember.tensor(w)).sum().backward()
    (yt * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(xe.grad.numpy(), xt.grad.numpy(), rtol=1e-10, atol=1e-10)
    pe, pt = dict(em.named_parameters()), dict(tm.named_parameters())
    assert list(pe) == list(pt)
    for n in pe:
        np.testing.assert_allclose(
            pe[n].grad.numpy(), pt[n].grad.numpy(), rtol=1e-10, atol=1e-10, err_msg=n
        )


def test_conv_module_attributes_match_torch():
    for cls in ("Conv1d", "Conv2d", "ConvTranspose1d", "ConvTranspose2d"):
        em, tm = getattr(nn, cls)(2, 4, 3), getattr(torch.nn, cls)(2, 4, 3)
        for attr in (
            "in_channels",
            "out_channels",
            "kernel_size",
            "stride",
            "padding",
            "dilation",
            "transposed",
            "output_padding",
            "groups",
            "padding_mode",
        ):
            assert getattr(em, attr) == getattr(tm, attr), (cls, attr)


def test_conv_transpose2d_output_size():
    em = nn.ConvTranspose2d(3, 4, 3, stride=2).double()
    tm = torch.nn.ConvTranspose2d(3, 4, 3, stride=2).double()
    _copy_to_torch(em, tm)
    x = _randn(1, 3, 5, 5)
    for size in ([11, 11], [12, 11], (1, 4, 12, 12)):
        ye, yt = em(ember.tensor(x), output_size=size), tm(torch.tensor(x), output_size=size)
        np.testing.assert_allclose(ye.detach().numpy(), yt.detach().numpy(), rtol=1e-10, atol=1e-10)
    with pytest.raises(ValueError, match="valid sizes range"):
        em(ember.tensor(x), output_size=[13, 11])


@pytest.mark.parametrize(
    "cls,args,fan_in",
    [
        ("Conv2d", (6, 8, 3), 6 * 9),
        ("Conv2d", (6, 8, (2, 3), 1, 0, 1, 2), 3 * 6),
        ("ConvTranspose2d", (6, 8, 3), 8 * 9),
        ("ConvTranspose2d", (6, 8, 3, 1, 0, 0, 2), 4 * 9),
        ("Conv1d", (5, 7, 4), 5 * 4),
    ],
)
def test_default_init_bounds(cls, args, fan_in):
    """kaiming_uniform_(a=sqrt(5)) and the bias both draw from U(-1/sqrt(fan_in), +)."""
    ember.manual_seed(0)
    m = getattr(nn, cls)(*args)
    bound = 1 / math.sqrt(fan_in)
    w, b = m.weight.detach().numpy(), m.bias.detach().numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.8 * bound
    assert np.abs(b).max() <= bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.2 * bound
    assert isinstance(m.weight, nn.Parameter) and m.weight.requires_grad


def test_conv_module_dtype_argument():
    m = nn.Conv2d(2, 3, 3, dtype=ember.float64)
    assert m.weight.dtype is ember.float64 and m.bias.dtype is ember.float64


# ---- errors -----------------------------------------------------------------------------------


def test_conv2d_wrong_rank_names_op_and_shape():
    with pytest.raises(ShapeError, match=r"conv2d.*\[2, 3\]"):
        F.conv2d(ember.zeros(2, 3), ember.zeros(4, 3, 3, 3))
    with pytest.raises(ShapeError, match=r"conv1d.*\[1, 2, 3, 4\]"):
        F.conv1d(ember.zeros(1, 2, 3, 4), ember.zeros(4, 2, 3))


def test_conv2d_channel_mismatch_names_shapes():
    with pytest.raises(
        ShapeError,
        match=r"conv2d.*weight of size \[4, 3, 3, 3\].*input\[1, 2, 5, 5\] to have 3 channels, but got 2",
    ):
        F.conv2d(ember.zeros(1, 2, 5, 5), ember.zeros(4, 3, 3, 3))
    with pytest.raises(ShapeError, match=r"conv_transpose2d.*to have 3 channels, but got 2"):
        F.conv_transpose2d(ember.zeros(1, 2, 5, 5), ember.zeros(3, 4, 3, 3))
    with pytest.raises(RuntimeError):  # ShapeError is a RuntimeError, like PyTorch's
        nn.Conv2d(3, 4, 3)(ember.zeros(1, 2, 5, 5))


def test_conv2d_other_errors():
    x = ember.zeros(1, 4, 5, 5)
    with pytest.raises(ShapeError, match="divisible by 3"):
        F.conv2d(x, ember.zeros(4, 2, 3, 3), groups=3)
    with pytest.raises(ShapeError, match="bias"):
        F.conv2d(x, ember.zeros(4, 4, 3, 3), ember.zeros(3))
    with pytest.raises(ShapeError, match="Kernel size can't be greater"):
        F.conv2d(x, ember.zeros(4, 4, 7, 7))
    with pytest.raises(ShapeError, match="strided"):
        F.conv2d(x, ember.zeros(4, 4, 3, 3), stride=2, padding="same")
    with pytest.raises(ShapeError, match="negative padding"):
        F.conv2d(x, ember.zeros(4, 4, 3, 3), padding=-1)
    with pytest.raises(ShapeError, match="output padding must be smaller"):
        F.conv_transpose2d(x, ember.zeros(4, 4, 3, 3), stride=2, output_padding=2)
    with pytest.raises(DTypeError, match="conv2d"):
        F.conv2d(x, ember.zeros(4, 4, 3, 3, dtype=ember.float64))
    with pytest.raises(ValueError, match="strided"):
        nn.Conv2d(4, 4, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="padding_mode must be one of"):
        nn.Conv2d(4, 4, 3, padding_mode="mirror")
    with pytest.raises(ValueError, match="zeros"):
        nn.ConvTranspose2d(4, 4, 3, padding_mode="reflect")
    with pytest.raises(ValueError, match="divisible by groups"):
        nn.Conv2d(3, 4, 3, groups=2)
