"""``out=`` on the op functions against PyTorch: values, dtypes, the returned tensor being
``out`` itself, resizing with its warning, and the errors (dtype rules, autograd).

Each case is one call spelled the same for ember and torch (``m`` is the module, ``o`` the out
tensor or tuple made by ``make_out``), on the same float64/int64 data.
"""

import warnings

import numpy as np
import pytest
import torch

import ember

A = np.random.default_rng(0).uniform(0.5, 2.0, size=(2, 3))
B = np.random.default_rng(1).uniform(-1.0, 1.0, size=(2, 3))
SQ = np.random.default_rng(2).uniform(-1.0, 1.0, size=(3, 3))
BATCH = np.random.default_rng(3).uniform(-1.0, 1.0, size=(2, 3, 3))
INTS = np.array([[3, -1, 4], [1, -5, 9]], dtype=np.int64)


def _data(m):
    return {
        "a": m.tensor(A),
        "b": m.tensor(B),
        "sq": m.tensor(SQ),
        "batch": m.tensor(BATCH),
        "ints": m.tensor(INTS),
        "f32": m.tensor(A, dtype=m.float32),
    }


def _empty(shape, dtype="float64"):
    return lambda m: m.empty(shape, dtype=getattr(m, dtype))


# (id, call(m, d, o), make_out(m))
CASES = [
    ("add", lambda m, d, o: m.add(d["a"], d["b"], out=o), _empty((2, 3))),
    ("add alpha", lambda m, d, o: m.add(d["a"], d["b"], alpha=2.5, out=o), _empty((2, 3))),
    ("add scalar", lambda m, d, o: m.add(d["a"], 3, out=o), _empty((2, 3))),
    ("add into float32", lambda m, d, o: m.add(d["f32"], d["f32"], out=o), _empty((2, 3))),
    ("add ints into float", lambda m, d, o: m.add(d["ints"], 1, out=o), _empty((2, 3))),
    ("sub", lambda m, d, o: m.sub(d["a"], d["b"], alpha=2, out=o), _empty((2, 3))),
    ("mul", lambda m, d, o: m.mul(d["a"], d["b"], out=o), _empty((2, 3))),
    ("div", lambda m, d, o: m.div(d["a"], d["b"], out=o), _empty((2, 3))),
    (
        "div floor",
        lambda m, d, o: m.div(d["ints"], 2, rounding_mode="floor", out=o),
        _empty((2, 3), "int64"),
    ),
    ("matmul", lambda m, d, o: m.matmul(d["a"], d["sq"], out=o), _empty((2, 3))),
    ("mm", lambda m, d, o: m.mm(d["sq"], d["sq"], out=o), _empty((3, 3))),
    ("bmm", lambda m, d, o: m.bmm(d["batch"], d["batch"], out=o), _empty((2, 3, 3))),
    ("cat", lambda m, d, o: m.cat([d["a"], d["b"]], 1, out=o), _empty((2, 6))),
    ("stack", lambda m, d, o: m.stack([d["a"], d["b"]], out=o), _empty((2, 2, 3))),
    ("exp", lambda m, d, o: m.exp(d["b"], out=o), _empty((2, 3))),
    ("mul float32 into float64", lambda m, d, o: m.mul(d["f32"], 3, out=o), _empty((2, 3))),
    ("log", lambda m, d, o: m.log(d["a"], out=o), _empty((2, 3))),
    ("sqrt", lambda m, d, o: m.sqrt(d["a"], out=o), _empty((2, 3))),
    ("sqrt of ints", lambda m, d, o: m.sqrt(m.abs(d["ints"]), out=o), _empty((2, 3))),
    ("abs", lambda m, d, o: m.abs(d["b"], out=o), _empty((2, 3))),
    ("neg", lambda m, d, o: m.neg(d["ints"], out=o), _empty((2, 3), "int64")),
    ("clamp", lambda m, d, o: m.clamp(d["b"], -0.5, 0.5, out=o), _empty((2, 3))),
    ("pow", lambda m, d, o: m.pow(d["a"], 2.5, out=o), _empty((2, 3))),
    ("pow into float32", lambda m, d, o: m.pow(d["a"], 2, out=o), _empty((2, 3), "float32")),
    ("where", lambda m, d, o: m.where(d["b"] > 0, d["a"], d["b"], out=o), _empty((2, 3))),
    ("sum dim", lambda m, d, o: m.sum(d["a"], 1, out=o), _empty((2,))),
    ("sum dim into int64", lambda m, d, o: m.sum(d["a"], 1, out=o), _empty((2,), "int64")),
    ("sum keepdim", lambda m, d, o: m.sum(d["b"], 0, keepdim=True, out=o), _empty((1, 3))),
    ("mean", lambda m, d, o: m.mean(d["a"], out=o), _empty(())),
    ("mean float32 into float64", lambda m, d, o: m.mean(d["f32"], 1, out=o), _empty((2,))),
    ("max", lambda m, d, o: m.max(d["b"], out=o), _empty(())),
    (
        "max dim",
        lambda m, d, o: m.max(d["b"], 1, out=o),
        lambda m: (m.empty(2, dtype=m.float64), m.empty(2, dtype=m.int64)),
    ),
    (
        "min dim keepdim",
        lambda m, d, o: m.min(d["b"], 0, keepdim=True, out=o),
        lambda m: (m.empty(1, 3, dtype=m.float64), m.empty(1, 3, dtype=m.int64)),
    ),
    ("argmax", lambda m, d, o: m.argmax(d["b"], out=o), _empty((), "int64")),
    ("argmax dim", lambda m, d, o: m.argmax(d["b"], 1, out=o), _empty((2,), "int64")),
    ("cumsum", lambda m, d, o: m.cumsum(d["b"], 1, out=o), _empty((2, 3))),
    ("cumsum into int64", lambda m, d, o: m.cumsum(d["a"], 1, out=o), _empty((2, 3), "int64")),
    ("sigmoid", lambda m, d, o: m.sigmoid(d["b"], out=o), _empty((2, 3))),
    ("tanh into float16", lambda m, d, o: m.tanh(d["b"], out=o), _empty((2, 3), "float16")),
    ("zeros", lambda m, d, o: m.zeros(2, 3, out=o), _empty((2, 3))),
    ("zeros takes out's dtype", lambda m, d, o: m.zeros(2, 3, out=o), _empty((2, 3), "int64")),
    ("ones", lambda m, d, o: m.ones((4,), out=o), _empty((4,), "float32")),
    ("arange", lambda m, d, o: m.arange(5, out=o), _empty((5,))),
    ("arange float", lambda m, d, o: m.arange(0, 1, 0.25, out=o), _empty((4,), "float32")),
    ("linspace", lambda m, d, o: m.linspace(0, 1, 5, out=o), _empty((5,))),
    ("linspace into int64", lambda m, d, o: m.linspace(0, 10, 5, out=o), _empty((5,), "int64")),
]


def _to_numpy(x):
    if isinstance(x, torch.Tensor):
        x = x.detach()
        return x.float().numpy() if x.dtype in (torch.float16,) else x.numpy()
    return np.asarray(x.numpy(), dtype=np.float32) if x.dtype is ember.float16 else x.numpy()


def _compare(got, want):
    assert got.dtype.name == str(want.dtype).removeprefix("torch.")
    assert tuple(got.shape) == tuple(want.shape)
    np.testing.assert_allclose(_to_numpy(got), _to_numpy(want), rtol=1e-12, atol=1e-12)


def _run(m, call, make_out):
    o = make_out(m)
    returned = call(m, _data(m), o)
    return o, returned


@pytest.mark.parametrize("call,make_out", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_out_matches_torch_and_is_returned(call, make_out):
    e_out, e_ret = _run(ember, call, make_out)
    t_out, t_ret = _run(torch, call, make_out)
    if isinstance(e_out, tuple):
        assert tuple(e_ret) == e_out and all(a is b for a, b in zip(e_ret, e_out))
        assert type(e_ret).__name__ == "max" or type(e_ret).__name__ == "min"
        assert e_ret.values is e_out[0] and e_ret.indices is e_out[1]
        for got, want in zip(e_out, t_out):
            _compare(got, want)
    else:
        assert e_ret is e_out
        _compare(e_out, t_out)


def test_identity_and_version():
    a, b, c = ember.ones(2, 3), ember.ones(2, 3), ember.empty(2, 3)
    version = c._version
    assert ember.add(a, b, out=c) is c
    assert c._version > version
    np.testing.assert_array_equal(c.numpy(), np.full((2, 3), 2.0))


def test_out_may_be_an_operand():
    results = []
    for m in (ember, torch):
        x = m.tensor(A)
        m.add(x, x, alpha=2, out=x)
        m.mul(x, x, out=x)
        results.append(x)
    _compare(*results)


def test_out_view_sees_the_write_into_its_base():
    results = []
    for m in (ember, torch):
        base = m.zeros(4, 3, dtype=m.float64)
        m.exp(m.tensor(B), out=base[1:3])
        results.append(base)
    _compare(*results)


def test_non_contiguous_out():
    results = []
    for m in (ember, torch):
        o = m.zeros(3, 2, dtype=m.float64).t()
        m.mul(m.tensor(A), 2, out=o)
        results.append(o)
        assert not o.is_contiguous()
    _compare(*results)


def _resize_warnings(m, out_shape):
    o = m.empty(out_shape, dtype=m.float64)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        returned = m.add(m.tensor(A), 1, out=o)
    msgs = [str(w.message) for w in caught if "resized" in str(w.message)]
    return o, returned, msgs


@pytest.mark.parametrize("shape,warns", [((5,), True), ((3, 2), True), ((0,), False)])
def test_wrong_shape_out_is_resized_like_torch(shape, warns):
    e_out, e_ret, e_msgs = _resize_warnings(ember, shape)
    t_out, t_ret, t_msgs = _resize_warnings(torch, shape)
    assert e_ret is e_out
    _compare(e_out, t_out)
    assert len(e_msgs) == len(t_msgs) == (1 if warns else 0)
    if warns:
        assert e_msgs[0].split(" This behavior")[0] == t_msgs[0].split(" This behavior")[0]


def test_random_out_draws_the_same_numbers():
    ember.manual_seed(5)
    want = ember.randn(2, 3, dtype=ember.float64)
    u_want = ember.rand(4)
    ember.manual_seed(5)
    o, u = ember.empty(2, 3, dtype=ember.float64), ember.empty(4)
    assert ember.randn(2, 3, out=o) is o
    assert ember.rand(4, out=u) is u
    np.testing.assert_array_equal(o.numpy(), want.numpy())
    np.testing.assert_array_equal(u.numpy(), u_want.numpy())


def test_without_out_the_op_is_unchanged():
    assert ember.add(ember.ones(2), 1, out=None).tolist() == [2.0, 2.0]


# ---- errors: the same exception class as torch ------------------------------------------

ERRORS = [
    ("float into int64", lambda m, d: m.add(d["a"], d["b"], out=m.empty(2, 3, dtype=m.int64))),
    ("int into bool", lambda m, d: m.add(d["ints"], 1, out=m.empty(2, 3, dtype=m.bool))),
    ("exp into int64", lambda m, d: m.exp(d["ints"], out=m.empty(2, 3, dtype=m.int64))),
    ("div into int64", lambda m, d: m.div(d["ints"], 2, out=m.empty(2, 3, dtype=m.int64))),
    (
        "cat float into int64",
        lambda m, d: m.cat([d["a"], d["b"]], out=m.empty(4, 3, dtype=m.int64)),
    ),
    (
        "stack float into int64",
        lambda m, d: m.stack([d["a"], d["b"]], out=m.empty(2, 2, 3, dtype=m.int64)),
    ),
    ("matmul other dtype", lambda m, d: m.mm(d["sq"], d["sq"], out=m.empty(3, 3))),
    ("argmax into int32", lambda m, d: m.argmax(d["b"], out=m.empty((), dtype=m.int32))),
    (
        "max dim values dtype",
        lambda m, d: m.max(d["b"], 1, out=(m.empty(2), m.empty(2, dtype=m.int64))),
    ),
    ("where other dtype", lambda m, d: m.where(d["b"] > 0, d["a"], d["b"], out=m.empty(2, 3))),
    ("clamp other dtype", lambda m, d: m.clamp(d["b"], 0, 1, out=m.empty(2, 3))),
    ("neg other dtype", lambda m, d: m.neg(d["ints"], out=m.empty(2, 3))),
    (
        "zeros dtype mismatch",
        lambda m, d: m.zeros(3, dtype=m.float64, out=m.empty(3, dtype=m.float32)),
    ),
    ("mean of ints", lambda m, d: m.mean(d["ints"], out=m.empty(()))),
    (
        "input requires grad",
        lambda m, d: m.add(d["a"].requires_grad_(), 1, out=m.empty(2, 3, dtype=m.float64)),
    ),
    (
        "out requires grad",
        lambda m, d: m.add(d["a"], 1, out=m.empty(2, 3, dtype=m.float64, requires_grad=True)),
    ),
    (
        "out is a non-leaf requiring grad",
        lambda m, d: m.add(d["a"], 1, out=m.ones(2, 3, dtype=m.float64, requires_grad=True) * 2),
    ),
    (
        "list input requires grad",
        lambda m, d: m.cat([d["a"].requires_grad_(), d["b"]], out=m.empty(4, 3, dtype=m.float64)),
    ),
]


@pytest.mark.parametrize("call", [c[1] for c in ERRORS], ids=[c[0] for c in ERRORS])
def test_errors_match_torch(call):
    with pytest.raises(Exception) as t_err:
        call(torch, _data(torch))
    with pytest.raises(type(t_err.value)) as e_err:
        call(ember, _data(ember))
    assert isinstance(e_err.value, type(t_err.value))


def test_autograd_error_message():
    with pytest.raises(RuntimeError, match="functions with out=... arguments don't support"):
        ember.add(ember.ones(2, requires_grad=True), 1, out=ember.empty(2))


def test_no_grad_allows_out_with_grad_operands():
    results = []
    for m in (ember, torch):
        x = m.tensor(A, requires_grad=True)
        o = m.empty(2, 3, dtype=m.float64)
        with m.no_grad():
            m.mul(x, 3, out=o)
        assert not o.requires_grad
        results.append(o)
    _compare(*results)


def test_out_must_be_a_tensor():
    with pytest.raises(TypeError, match="'out' must be a Tensor"):
        ember.exp(ember.ones(2), out=[1.0, 2.0])


def test_resizing_a_view_is_refused():
    base = ember.zeros(6)
    with pytest.raises(RuntimeError, match="is a view and cannot be resized"):
        ember.add(ember.ones(2, 3), 1, out=base[:2])
