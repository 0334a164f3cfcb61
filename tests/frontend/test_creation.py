"""Tensor creation (tensor, as_tensor, zeros, arange, linspace, eye, ...) against torch."""

import numpy as np
import pytest
import torch

import ember

DTYPES = {
    "float16": (ember.float16, torch.float16),
    "bfloat16": (ember.bfloat16, torch.bfloat16),
    "float32": (ember.float32, torch.float32),
    "float64": (ember.float64, torch.float64),
    "int8": (ember.int8, torch.int8),
    "int32": (ember.int32, torch.int32),
    "int64": (ember.int64, torch.int64),
    "bool": (ember.bool, torch.bool),
}


def torch_dtype_name(t: torch.Tensor) -> str:
    return str(t.dtype).removeprefix("torch.")


def to_np(t: torch.Tensor) -> np.ndarray:
    if t.dtype == torch.bfloat16:
        t = t.float()
    return t.detach().numpy()


def assert_same(e: ember.Tensor, t: torch.Tensor, *, atol=0.0, rtol=0.0):
    assert isinstance(e, ember.Tensor)
    assert tuple(e.shape) == tuple(t.shape)
    assert e.dtype.name == torch_dtype_name(t)
    got = e.detach().numpy()
    if e.dtype is ember.bfloat16:
        got = got.astype(np.float32)
    want = to_np(t)
    if atol == 0 and rtol == 0:
        np.testing.assert_array_equal(got, want)
    else:
        np.testing.assert_allclose(got, want, atol=atol, rtol=rtol)


# ---------------------------------------------------------------- tensor()


@pytest.mark.parametrize(
    "data",
    [
        [1, 2, 3],
        [[1, 2], [3, 4]],
        [1.5, 2.0],
        [[1.0, 2.0], [3.0, 4.0]],
        [True, False],
        [[True], [False]],
        [1, 2.5],
        [True, 2],
        [True, 2.0],
        [[1, 2.0], [3, 4]],
        3,
        2.5,
        True,
        [],
        [[[1], [2]], [[3], [4]]],
    ],
)
def test_tensor_infers_dtype_like_torch(data):
    assert_same(ember.tensor(data), torch.tensor(data))


def test_tensor_int_is_int64_float_is_float32():
    assert ember.tensor([1, 2]).dtype is ember.int64
    assert ember.tensor([1.0, 2]).dtype is ember.float32
    assert ember.tensor(True).dtype is ember.bool
    assert ember.tensor(7).shape == ()


@pytest.mark.parametrize(
    "arr",
    [
        np.array([1.0, 2.0], dtype=np.float64),
        np.array([1.0, 2.0], dtype=np.float32),
        np.array([[1, 2]], dtype=np.int32),
        np.array([1, 2], dtype=np.int64),
        np.array([True, False]),
        np.array([1, 2], dtype=np.int8),
        np.array(3.25),
    ],
)
def test_tensor_from_numpy_keeps_dtype(arr):
    assert_same(ember.tensor(arr), torch.tensor(arr))


def test_tensor_from_numpy_float64_stays_float64():
    assert ember.tensor(np.zeros(3)).dtype is ember.float64


def test_tensor_copies_numpy():
    arr = np.array([1.0, 2.0])
    e = ember.tensor(arr)
    arr[0] = 100.0
    assert e.tolist() == [1.0, 2.0]


@pytest.mark.parametrize("name", list(DTYPES))
def test_tensor_dtype_argument(name):
    ed, td = DTYPES[name]
    data = [[0, 1, 2], [3, 4, 5]]
    assert_same(ember.tensor(data, dtype=ed), torch.tensor(data, dtype=td))


def test_tensor_float_to_int_dtype_truncates():
    data = [1.7, -1.7, 2.5]
    assert_same(ember.tensor(data, dtype=ember.int64), torch.tensor(data, dtype=torch.int64))


def test_tensor_requires_grad():
    e = ember.tensor([1.0, 2.0], requires_grad=True)
    assert e.requires_grad and e.is_leaf and e.grad is None
    assert not ember.tensor([1.0]).requires_grad


def test_tensor_requires_grad_int_raises():
    with pytest.raises(RuntimeError):
        torch.tensor([1, 2], requires_grad=True)
    with pytest.raises(RuntimeError):
        ember.tensor([1, 2], requires_grad=True)


def test_tensor_of_tensor_copies():
    a = ember.tensor([1.0, 2.0])
    b = ember.tensor(a)
    b.add_(1)
    assert a.tolist() == [1.0, 2.0]
    assert b.tolist() == [2.0, 3.0]


def test_tensor_list_of_0d_tensors():
    parts = [ember.tensor(1.0), ember.tensor(2.0)]
    tparts = [torch.tensor(1.0), torch.tensor(2.0)]
    assert_same(ember.tensor(parts), torch.tensor(tparts))


# ---------------------------------------------------------------- as_tensor / from_numpy


@pytest.mark.parametrize("np_dtype", [np.float32, np.float64, np.int64, np.int32, np.bool_])
def test_from_numpy_shares_memory(np_dtype):
    arr = np.zeros((2, 3), dtype=np_dtype)
    e = ember.from_numpy(arr)
    t = torch.from_numpy(arr)
    assert e.dtype.name == torch_dtype_name(t)
    arr[1, 2] = 1
    assert e[1, 2].item() == t[1, 2].item() == 1
    e.fill_(1)
    assert np.all(arr == 1)


@pytest.mark.parametrize("np_dtype", [np.float32, np.float64, np.int64])
def test_as_tensor_shares_memory(np_dtype):
    arr = np.arange(6, dtype=np_dtype).reshape(2, 3)
    e = ember.as_tensor(arr)
    assert_same(e, torch.as_tensor(arr))
    arr[0, 0] = 42
    assert e[0, 0].item() == 42
    e[1, 1] = -5
    assert arr[1, 1] == -5


def test_as_tensor_with_other_dtype_copies():
    arr = np.arange(4, dtype=np.float64)
    e = ember.as_tensor(arr, dtype=ember.float32)
    t = torch.as_tensor(arr, dtype=torch.float32)
    assert_same(e, t)
    arr[0] = 9
    assert e[0].item() == t[0].item() == 0


def test_as_tensor_of_tensor_is_identity():
    a = ember.tensor([1.0, 2.0])
    assert ember.as_tensor(a) is a
    b = ember.as_tensor(a, dtype=ember.float64)
    assert b.dtype is ember.float64
    assert_same(b, torch.as_tensor(torch.tensor([1.0, 2.0]), dtype=torch.float64))


def test_as_tensor_list():
    assert_same(ember.as_tensor([1, 2, 3]), torch.as_tensor([1, 2, 3]))
    assert_same(ember.as_tensor([1.0, 2.0]), torch.as_tensor([1.0, 2.0]))


def test_from_numpy_rejects_non_array():
    with pytest.raises(TypeError):
        ember.from_numpy([1, 2])


# ---------------------------------------------------------------- zeros / ones / full / empty


@pytest.mark.parametrize("fn", ["zeros", "ones"])
@pytest.mark.parametrize("size", [(), (3,), (2, 3), (2, 0, 4), (1, 1, 1)])
def test_zeros_ones_varargs_and_tuple(fn, size):
    want = getattr(torch, fn)(size)
    if size:
        assert_same(getattr(ember, fn)(*size), want)
    assert_same(getattr(ember, fn)(size), want)
    assert_same(getattr(ember, fn)(list(size)), want)


@pytest.mark.parametrize("fn", ["zeros", "ones", "empty"])
@pytest.mark.parametrize("name", list(DTYPES))
def test_factories_dtype(fn, name):
    ed, td = DTYPES[name]
    e = getattr(ember, fn)(2, 3, dtype=ed)
    t = getattr(torch, fn)(2, 3, dtype=td)
    assert tuple(e.shape) == tuple(t.shape)
    assert e.dtype.name == torch_dtype_name(t)
    if fn != "empty":
        assert_same(e, t)


def test_empty_shape_and_default_dtype():
    e = ember.empty(4, 5)
    assert e.shape == (4, 5) and e.dtype is ember.float32
    assert ember.empty((2,)).shape == (2,)


def test_factories_requires_grad():
    for fn in (ember.zeros, ember.ones, ember.empty):
        e = fn(2, requires_grad=True)
        assert e.requires_grad and e.is_leaf


@pytest.mark.parametrize(
    "fill",
    [1, 2.5, True, False, -3, 0, 1e10],
)
def test_full_infers_dtype_from_fill(fill):
    assert_same(ember.full((2, 3), fill), torch.full((2, 3), fill))


def test_full_sizes_and_dtype():
    assert_same(ember.full([4], 7, dtype=ember.float64), torch.full([4], 7, dtype=torch.float64))
    assert_same(ember.full((), 1.5), torch.full((), 1.5))
    assert_same(ember.full((2, 0), 1), torch.full((2, 0), 1))
    assert_same(ember.full((2,), 3.7, dtype=ember.int32), torch.full((2,), 3.7, dtype=torch.int32))


def test_negative_size_raises():
    with pytest.raises(RuntimeError):
        ember.zeros(-1, 2)


# ---------------------------------------------------------------- arange


INT_ARANGE = [
    (5,),
    (0,),
    (2, 7),
    (7, 2, -1),
    (-5, 5, 3),
    (10, -10, -3),
    (0, 10, 10),
    (0, 10, 11),
    (3, 3),
    (1, 100, 7),
    (-1, -20, -4),
]


@pytest.mark.parametrize("args", INT_ARANGE)
def test_arange_int_exact(args):
    assert_same(ember.arange(*args), torch.arange(*args))


FLOAT_ARANGE = [
    (0, 1, 0.1),
    (0.0, 1.0, 0.1),
    (1, 0, -0.1),
    (0, 0.3, 0.1),
    (0, 1.0, 0.3),
    (-1.5, 2.5, 0.5),
    (0, 10, 2.5),
    (2.5,),
    (0.5, 3),
    (1.0, 2.0, 0.01),
    (0, 2.1, 0.7),
    (10, 0, -1.5),
    (0.1, 0.9, 0.2),
]


@pytest.mark.parametrize("args", FLOAT_ARANGE)
def test_arange_float(args):
    e, t = ember.arange(*args), torch.arange(*args)
    assert tuple(e.shape) == tuple(t.shape), (args, e.shape, t.shape)
    assert_same(e, t, atol=1e-6)


@pytest.mark.parametrize("name", ["float32", "float64", "int32", "int64", "int8", "float16"])
def test_arange_dtype(name):
    ed, td = DTYPES[name]
    assert_same(ember.arange(0, 10, 2, dtype=ed), torch.arange(0, 10, 2, dtype=td), atol=1e-6)


@pytest.mark.parametrize(
    "args", [(0, 5, 1.5), (0.5, 5.5, 1.5), (-0.5, 5, 2.7), (5.9, -0.5, -1.2), (0.0, 4.0)]
)
@pytest.mark.parametrize("name", ["int64", "int32", "int8"])
def test_arange_float_args_with_int_dtype(args, name):
    # torch truncates the bounds to the integer accumulate type (int64 also for the length)
    ed, td = DTYPES[name]
    assert_same(ember.arange(*args, dtype=ed), torch.arange(*args, dtype=td))


def test_arange_float64_default():
    ember.set_default_dtype(ember.float64)
    try:
        assert ember.arange(0.0, 1.0, 0.25).dtype is ember.float64
        assert ember.arange(3).dtype is ember.int64
    finally:
        ember.set_default_dtype(ember.float32)


def test_arange_zero_step_raises():
    with pytest.raises(RuntimeError):
        torch.arange(0, 5, 0)
    with pytest.raises(RuntimeError):
        ember.arange(0, 5, 0)


def test_arange_wrong_sign_raises():
    with pytest.raises(RuntimeError):
        torch.arange(0, 5, -1)
    with pytest.raises(RuntimeError):
        ember.arange(0, 5, -1)


def test_arange_requires_grad():
    e = ember.arange(0.0, 3.0, requires_grad=True)
    assert e.requires_grad


# ---------------------------------------------------------------- linspace


@pytest.mark.parametrize(
    "args",
    [
        (0, 1, 0),
        (0, 1, 1),
        (3, 7, 1),
        (0, 1, 2),
        (0, 1, 5),
        (0, 1, 6),
        (-3.5, 2.25, 7),
        (10, -10, 8),
        (0, 1, 100),
        (0, 1, 101),
        (1e3, 1e3 + 1, 11),
        (2, 2, 4),
    ],
)
def test_linspace(args):
    assert_same(ember.linspace(*args), torch.linspace(*args), atol=1e-6)


@pytest.mark.parametrize("name", ["float64", "float32", "int64"])
def test_linspace_dtype(name):
    ed, td = DTYPES[name]
    assert_same(ember.linspace(0, 10, 7, dtype=ed), torch.linspace(0, 10, 7, dtype=td), atol=1e-6)


def test_linspace_exact_endpoints():
    e = ember.linspace(-1.3, 2.7, 9)
    assert e[0].item() == torch.linspace(-1.3, 2.7, 9)[0].item()
    assert e[-1].item() == torch.linspace(-1.3, 2.7, 9)[-1].item()


def test_linspace_negative_steps_raise():
    with pytest.raises(RuntimeError):
        ember.linspace(0, 1, -1)


# ---------------------------------------------------------------- eye


@pytest.mark.parametrize("args", [(0,), (1,), (3,), (2, 4), (4, 2), (3, 0)])
def test_eye(args):
    assert_same(ember.eye(*args), torch.eye(*args))


@pytest.mark.parametrize("name", ["int64", "bool", "float64"])
def test_eye_dtype(name):
    ed, td = DTYPES[name]
    assert_same(ember.eye(3, 2, dtype=ed), torch.eye(3, 2, dtype=td))


# ---------------------------------------------------------------- *_like


@pytest.mark.parametrize("name", ["float32", "float64", "int32", "bool", "float16"])
def test_like_factories(name):
    ed, td = DTYPES[name]
    base_np = np.arange(6).reshape(2, 3)
    e_in, t_in = ember.tensor(base_np, dtype=ed), torch.tensor(base_np, dtype=td)
    assert_same(ember.zeros_like(e_in), torch.zeros_like(t_in))
    assert_same(ember.ones_like(e_in), torch.ones_like(t_in))
    assert_same(ember.full_like(e_in, 1), torch.full_like(t_in, 1))
    e = ember.empty_like(e_in)
    assert tuple(e.shape) == (2, 3) and e.dtype is ed


def test_like_factories_dtype_override():
    e_in, t_in = ember.zeros(2, 2), torch.zeros(2, 2)
    assert_same(ember.ones_like(e_in, dtype=ember.int64), torch.ones_like(t_in, dtype=torch.int64))
    assert_same(
        ember.full_like(e_in, 2.5, dtype=ember.float64),
        torch.full_like(t_in, 2.5, dtype=torch.float64),
    )
    assert_same(ember.full_like(ember.zeros(3, dtype=ember.int32), 2.7),
                torch.full_like(torch.zeros(3, dtype=torch.int32), 2.7))  # fmt: skip


def test_like_requires_grad():
    e = ember.zeros_like(ember.zeros(2), requires_grad=True)
    assert e.requires_grad


def test_like_does_not_share_memory():
    a = ember.ones(3)
    b = ember.zeros_like(a)
    b.fill_(5)
    assert a.tolist() == [1.0, 1.0, 1.0]


# ---------------------------------------------------------------- tril / triu


@pytest.mark.parametrize("shape", [(4, 4), (3, 5), (5, 3), (2, 3, 4), (1, 1)])
@pytest.mark.parametrize("diagonal", [-2, -1, 0, 1, 3, 10, -10])
def test_tril_triu(shape, diagonal):
    data = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    e, t = ember.tensor(data), torch.tensor(data)
    assert_same(ember.tril(e, diagonal), torch.tril(t, diagonal))
    assert_same(ember.triu(e, diagonal), torch.triu(t, diagonal))
    assert_same(e.tril(diagonal), t.tril(diagonal))
    assert_same(e.triu(diagonal=diagonal), t.triu(diagonal=diagonal))


def test_tril_int_and_bool():
    data = np.arange(12).reshape(3, 4)
    assert_same(ember.tril(ember.tensor(data)), torch.tril(torch.tensor(data)))
    b = data % 2 == 0
    assert_same(ember.triu(ember.tensor(b), 1), torch.triu(torch.tensor(b), 1))


def test_tril_1d_raises():
    with pytest.raises(RuntimeError):
        ember.tril(ember.zeros(3))


def test_tril_gradient():
    data = np.arange(9, dtype=np.float32).reshape(3, 3)
    e = ember.tensor(data, requires_grad=True)
    t = torch.tensor(data, requires_grad=True)
    w = np.random.default_rng(1).standard_normal((3, 3)).astype(np.float32)
    (ember.tril(e, -1) * ember.tensor(w)).sum().backward()
    (torch.tril(t, -1) * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(e.grad.numpy(), t.grad.numpy())


# ---------------------------------------------------------------- default dtype


def test_set_default_dtype_roundtrip():
    assert ember.get_default_dtype() is ember.float32
    ember.set_default_dtype(ember.float64)
    try:
        assert ember.get_default_dtype() is ember.float64
        assert ember.tensor([1.0, 2.0]).dtype is ember.float64
        assert ember.tensor([1, 2]).dtype is ember.int64
        assert ember.zeros(2).dtype is ember.float64
        assert ember.ones(2).dtype is ember.float64
        assert ember.full((2,), 1.5).dtype is ember.float64
        assert ember.linspace(0, 1, 3).dtype is ember.float64
        assert ember.eye(2).dtype is ember.float64
        assert ember.arange(0.0, 1.0, 0.5).dtype is ember.float64
        assert ember.rand(2).dtype is ember.float64
    finally:
        ember.set_default_dtype(ember.float32)
    assert ember.get_default_dtype() is ember.float32
    assert ember.tensor([1.0]).dtype is ember.float32


def test_set_default_dtype_rejects_int():
    with pytest.raises(TypeError):
        ember.set_default_dtype(ember.int64)
    assert ember.get_default_dtype() is ember.float32


def test_default_dtype_float64_int_tensor_plus_float_scalar():
    ember.set_default_dtype(ember.float64)
    torch.set_default_dtype(torch.float64)
    try:
        assert_same(ember.tensor([1, 2]) * 0.5, torch.tensor([1, 2]) * 0.5)
    finally:
        ember.set_default_dtype(ember.float32)
        torch.set_default_dtype(torch.float32)


def test_scalar_tensor():
    assert_same(ember.scalar_tensor(3), torch.scalar_tensor(3))
    assert_same(
        ember.scalar_tensor(3, dtype=ember.int64), torch.scalar_tensor(3, dtype=torch.int64)
    )
