"""``x[key]`` and ``x[key] = value`` against torch: basic and advanced indexing, gradients,
assignment (with and without autograd) and errors; plus hypothesis-generated basic keys."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import ember

RNG = np.random.default_rng(7)
DATA = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)


def convert(m, key):
    """The key for framework ``m``: numpy arrays become its tensors, the rest stays."""
    if isinstance(key, tuple):
        return tuple(convert(m, k) for k in key)
    if isinstance(key, np.ndarray):
        return m.tensor(key)
    return key


def assert_same(e, t):
    assert isinstance(e, ember.Tensor)
    assert tuple(e.shape) == tuple(t.shape), (tuple(e.shape), tuple(t.shape))
    assert e.dtype.name == str(t.dtype).removeprefix("torch.")
    np.testing.assert_array_equal(e.detach().numpy(), t.detach().numpy())


def check_get(data, key):
    e, t = ember.tensor(data), torch.tensor(data)
    assert_same(e[convert(ember, key)], t[convert(torch, key)])


BASIC_KEYS = {
    "int": 1,
    "neg_int": -1,
    "two_ints": (0, 1),
    "all_ints": (1, 2, 3, 4),
    "neg_ints": (-2, -3, -4, -5),
    "slice_then_int": (slice(None), 2),
    "slice": slice(1, None),
    "slice_steps": (slice(None, None, 2), slice(-3, -1)),
    "slice_neg_bounds": (slice(-2, None), slice(-100, -1, 2), slice(1, -1)),
    "slice_big_step": (slice(None), slice(None), slice(None, None, 3)),
    "slice_empty": (slice(3, 1),),
    "slice_out_of_bounds": (slice(10, 20),),
    "slice_clamped": (slice(-100, 100, 3),),
    "none": None,
    "none_int_none": (None, 1, None),
    "ellipsis": Ellipsis,
    "ellipsis_start": (Ellipsis, 1),
    "ellipsis_end": (1, Ellipsis),
    "ellipsis_middle": (0, Ellipsis, 2),
    "ellipsis_middle_slices": (slice(1), Ellipsis, slice(None, None, 2)),
    "ellipsis_none": (Ellipsis, None),
    "none_ellipsis_none_int": (None, Ellipsis, None, 0),
    "int_none_int_none": (1, None, 2, None),
    "mixed": (1, None, slice(None, None, 2), Ellipsis, -1),
    "empty_tuple": (),
}


@pytest.mark.parametrize("name", list(BASIC_KEYS))
def test_basic_getitem(name):
    check_get(DATA, BASIC_KEYS[name])


@pytest.mark.parametrize("name", list(BASIC_KEYS))
def test_basic_getitem_is_a_view(name):
    key = BASIC_KEYS[name]
    e, t = ember.tensor(DATA), torch.tensor(DATA)
    ev, tv = e[key], t[key]
    if ev.ndim == 0 or ev.numel() == 0:
        return
    ev.mul_(-1)
    tv.mul_(-1)
    assert_same(e, t)


ADVANCED_KEYS = {
    "tensor_dim0": np.array([1, 0, 1]),
    "tensor_neg": np.array([-1, -2]),
    "tensor_2d": np.array([[1, 0], [0, 1]]),
    "tensor_empty": np.array([], dtype=np.int64),
    "tensor_dim1": (slice(None), np.array([2, 0])),
    "two_adjacent": (np.array([0, 1]), np.array([2, 0])),
    "two_adjacent_inner": (slice(None), np.array([0, 2]), np.array([1, 3])),
    "two_non_adjacent": (np.array([0, 1]), slice(None), np.array([1, 3])),
    "broadcast_non_adjacent": (np.array([[0], [1]]), slice(None), np.array([1, 3, 2])),
    "x_idx_colon_idx2": (slice(None), np.array([0, 2, 1]), slice(None), np.array([4, 0, 1])),
    "all_four": (np.array([0, 1]), np.array([0, 1]), np.array([0, 1]), np.array([0, 1])),
    "list": [0, 1, 1],
    "lists_two_dims": ([0, 1], [2, 0]),
    "mixed_slices": (0, np.array([0, 2]), slice(1, 3)),
    "ellipsis_between": (np.array([1]), Ellipsis, np.array([4, 0])),
    "none_between": (None, np.array([0, 1]), None, np.array([1, 1])),
    "int_then_tensor": (1, slice(None), np.array([0, 3])),
    "int_between_tensors": (np.array([0, 1]), 1, slice(None), np.array([0, 4])),
    "slice_int_slice_tensor": (slice(None), 1, slice(None), np.array([0, 4])),
    "zero_d_tensor": (np.array(1), slice(None)),
    "zero_d_tensor_with_tensor": (np.array(1), slice(None), np.array([0, 3])),
    "stepped_slice_and_tensor": (slice(None, None, 2), np.array([2, 2]), slice(1, None, 2)),
    "int32_index": np.array([1, 0], dtype=np.int32),
    "bool_mask_full": DATA > 60,
    "bool_mask_dim0": DATA[:, 0, 0, 0] > 50,
    "bool_mask_leading2": DATA[..., 0, 0] % 2 == 0,
    "bool_mask_dim1": (slice(None), np.array([True, False, True])),
    "bool_mask_and_tensor": (np.array([True, False]), np.array([2, 0])),
    "bool_mask_all_false": np.zeros(2, dtype=bool),
    "python_true": True,
    "python_false": False,
    "true_after_int": (0, True),
    "true_with_tensor": (np.array([0, 1]), True),
    "true_non_adjacent": (np.array([0, 1]), slice(None), True),
    "zero_d_bool_tensor": np.array(True),
    "ellipsis_true": (Ellipsis, True),
    "true_ellipsis_false": (True, Ellipsis, False),
    "broadcast_with_true": (np.array([[0], [1]]), True),
}


@pytest.mark.parametrize("name", list(ADVANCED_KEYS))
def test_advanced_getitem(name):
    check_get(DATA, ADVANCED_KEYS[name])


def test_advanced_getitem_copies():
    e, t = ember.tensor(DATA), torch.tensor(DATA)
    ev, tv = e[ember.tensor([0, 1])], t[torch.tensor([0, 1])]
    ev.fill_(0)
    tv.fill_(0)
    assert_same(e, t)
    assert float(e.sum()) == float(DATA.sum())


@pytest.mark.parametrize(
    "name",
    ["int64", "int32", "bool", "float64"],
)
def test_getitem_keeps_dtype(name):
    data = (DATA % 7).astype({"bool": bool}.get(name, name))
    check_get(data, (slice(1), np.array([2, 0]), 1))
    check_get(data, (0, slice(None, None, 2)))


def test_getitem_on_0d_and_1d():
    check_get(np.float32(3.5), ())
    check_get(np.float32(3.5), None)
    check_get(np.float32(3.5), Ellipsis)
    check_get(np.arange(5), np.array([4, 4, 0]))
    check_get(np.arange(5), slice(None, None, 2))


# ---------------------------------------------------------------- gradients of x[key]


GRAD_KEYS = {
    "int": (1, 2),
    "slices": (slice(None), slice(1, None, 2)),
    "none_ellipsis": (None, Ellipsis, 0),
    "tensor": (np.array([2, 0, 3]),),
    "repeated": (np.array([0, 0, 1, 0, 3, 3]),),
    "repeated_two_dims": (np.array([0, 0, 2]), np.array([1, 1, 1])),
    "repeated_dim1": (slice(None), np.array([4, 4, 4, 0])),
    "non_adjacent_repeated": (np.array([[1], [1]]), np.array([0, 0, 2])),
    "mask": (np.arange(20).reshape(4, 5) % 3 == 0,),
    "mask_dim0": (np.array([True, False, True, True]),),
    "int_and_tensor": (1, np.array([3, 3])),
    "true": (None, np.array([3, 3]), True),
}


@pytest.mark.parametrize("name", list(GRAD_KEYS))
def test_getitem_gradient(name):
    key = GRAD_KEYS[name]
    data = RNG.standard_normal((4, 5)).astype(np.float32)
    e = ember.tensor(data, requires_grad=True)
    t = torch.tensor(data, requires_grad=True)
    yt = t[convert(torch, key)]
    w = RNG.standard_normal(tuple(yt.shape)).astype(np.float32)
    (yt * torch.tensor(w)).sum().backward()
    ye = e[convert(ember, key)]
    assert tuple(ye.shape) == tuple(yt.shape)
    (ye * ember.tensor(w)).sum().backward()
    np.testing.assert_allclose(e.grad.numpy(), t.grad.numpy(), rtol=1e-6, atol=1e-6)


def test_repeated_index_gradient_accumulates_exactly():
    e = ember.tensor([1.0, 2.0, 3.0], requires_grad=True)
    e[ember.tensor([0, 0, 0, 2])].sum().backward()
    assert e.grad.tolist() == [3.0, 0.0, 1.0]


# ---------------------------------------------------------------- setitem


SET_CASES = {
    "int_scalar": (1, 5.0),
    "slice_scalar": ((slice(None), slice(1, 3)), -1.0),
    "step_slice": ((slice(None), slice(None), slice(None, None, 2)), 7.0),
    "step_slice_tensor": ((Ellipsis, slice(1, None, 3)), np.array([10.0, 20.0], dtype=np.float32)),
    "broadcast_row": ((0,), np.arange(5, dtype=np.float32)),
    "broadcast_col": (
        (1, slice(None), slice(None), 0),
        np.array([1.0, 2.0, 3.0, 4.0], dtype=np.float32),
    ),
    "tensor_index_scalar": (np.array([0, 1]), 0.0),
    "tensor_index_two_dims": ((np.array([0, 1]), slice(None), np.array([3, 1])), 9.0),
    "tensor_index_value": (
        (slice(None), np.array([2, 0])),
        np.arange(2 * 2 * 4 * 5, dtype=np.float32).reshape(2, 2, 4, 5),
    ),
    "tensor_index_broadcast_value": (
        (slice(None), np.array([2, 0])),
        np.float32(3.0) * np.ones(5, np.float32),
    ),
    "int_and_tensor_value": (
        (1, slice(None), np.array([0, 3])),
        np.arange(3 * 2 * 5, dtype=np.float32).reshape(3, 2, 5),
    ),
    "bool_mask_scalar": (DATA > 100, -3.0),
    "bool_mask_tensor": (DATA % 11 == 0, np.arange(11, dtype=np.float32)),
    "bool_mask_dim0": (np.array([False, True]), 2.5),
    "none_and_ellipsis": ((None, Ellipsis, 2), 4.0),
    "list_index": ([1, 0], 8.0),
    "python_true": (True, 1.5),
    "python_false": (False, 1.5),
    "int_value_to_float": ((0, 0), 3),
    "zero_d_tensor_value": ((0, 1), np.array(2.5, dtype=np.float32)),
}


@pytest.mark.parametrize("name", list(SET_CASES))
@pytest.mark.parametrize("value_kind", ["tensor", "numpy"])
def test_setitem(name, value_kind):
    key, value = SET_CASES[name]
    e, t = ember.tensor(DATA), torch.tensor(DATA)
    v0 = e._version
    if isinstance(value, np.ndarray):
        ve = ember.tensor(value) if value_kind == "tensor" else value
        vt = torch.tensor(value)
    else:
        ve = vt = value
    t[convert(torch, key)] = vt
    e[convert(ember, key)] = ve
    assert_same(e, t)
    assert e._version == v0 + 1


def test_setitem_int_tensor_casts_value():
    data = np.arange(6).reshape(2, 3)
    e, t = ember.tensor(data), torch.tensor(data)
    e[0] = ember.tensor([1.7, -1.7, 2.2])
    t[0] = torch.tensor([1.7, -1.7, 2.2])
    e[1, 1:] = 9.9
    t[1, 1:] = 9.9
    assert_same(e, t)
    b_e, b_t = ember.zeros(3, dtype=ember.bool), torch.zeros(3, dtype=torch.bool)
    b_e[1] = 1
    b_t[1] = 1
    assert_same(b_e, b_t)


def test_setitem_through_view_visible_in_base():
    e, t = ember.tensor(DATA), torch.tensor(DATA)
    ev, tv = e[1, 0].t(), t[1, 0].t()
    ev[2, ember.tensor([0, 2])] = 0.0
    tv[2, torch.tensor([0, 2])] = 0.0
    ev[::2] = -5.0
    tv[::2] = -5.0
    assert_same(e, t)
    assert e._version == ev._version


def test_setitem_on_transposed_tensor():
    data = np.arange(12, dtype=np.float32).reshape(3, 4)
    e, t = ember.tensor(data).t(), torch.tensor(data).t()
    e[ember.tensor([0, 3]), 1:] = ember.tensor([1.0, 2.0])
    t[torch.tensor([0, 3]), 1:] = torch.tensor([1.0, 2.0])
    assert_same(e, t)


def test_setitem_shape_mismatch_raises():
    e = ember.zeros(3, 4)
    with pytest.raises(RuntimeError):
        torch.zeros(3, 4)[0] = torch.ones(3)
    with pytest.raises(RuntimeError):
        e[0] = ember.ones(3)


# ---------------------------------------------------------------- setitem with autograd


SETGRAD_CASES = {
    "slice": ((slice(1, None), slice(None, None, 2)), (3, 3)),
    "int_row": ((2,), (5,)),
    "broadcast_row": ((slice(None), slice(1, 3)), (2,)),
    "tensor_index": ((slice(1, None), np.array([0, 2, 4])), (3, 3)),
    "two_tensor": ((np.array([0, 3]), np.array([4, 1])), (2,)),
    "mask": ((np.arange(20).reshape(4, 5) % 3 == 0,), (7,)),
    "scalar_value_shape": ((1, 1), ()),
}


@pytest.mark.parametrize("name", list(SETGRAD_CASES))
def test_setitem_gradients(name):
    key, vshape = SETGRAD_CASES[name]
    data = RNG.standard_normal((4, 5)).astype(np.float32)
    vdata = RNG.standard_normal(vshape).astype(np.float32)
    w = RNG.standard_normal((4, 5)).astype(np.float32)
    grads = []
    for m in (torch, ember):
        x = m.tensor(data, requires_grad=True)
        v = m.tensor(vdata, requires_grad=True)
        y = x * 2  # non-leaf
        y[convert(m, key)] = v * 3
        (y * m.tensor(w)).sum().backward()
        grads.append((x.grad, v.grad, y))
    (tx, tvg, ty), (ex, evg, ey) = grads
    np.testing.assert_allclose(ey.detach().numpy(), ty.detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(ex.numpy(), tx.numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(evg.numpy(), tvg.numpy(), rtol=1e-6, atol=1e-6)


def test_setitem_value_requires_grad_into_plain_tensor():
    vdata = np.array([1.0, 2.0], dtype=np.float32)
    out = []
    for m in (torch, ember):
        x = m.zeros(2, 3)
        v = m.tensor(vdata, requires_grad=True)
        x[:, 1] = v
        assert x.requires_grad
        (x * m.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])).sum().backward()
        out.append(v.grad.numpy())
    np.testing.assert_allclose(out[1], out[0])


def test_setitem_leaf_requiring_grad_raises():
    with pytest.raises(RuntimeError):
        torch.zeros(3, requires_grad=True)[0] = 1.0
    with pytest.raises(RuntimeError):
        ember.zeros(3, requires_grad=True)[0] = 1.0
    x = ember.zeros(3, requires_grad=True)
    with ember.no_grad():
        x[0] = 1.0
    assert x.tolist() == [1.0, 0.0, 0.0]


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "key",
    [
        2,
        -3,
        (0, 3),
        (0, 0, 4),
        (0, 0, 0, -6),
        np.array([0, 2]),
        (slice(None), np.array([-4])),
        (slice(None), np.array([3, 0])),
        (0, 0, 0, 0, 0),
        np.array([True, False, True]),
        (slice(None), np.array([True, False])),
    ],
    ids=repr,
)
def test_out_of_range_raises_index_error(key):
    data = np.zeros((2, 3, 4, 5), dtype=np.float32)
    with pytest.raises(IndexError):
        torch.tensor(data)[convert(torch, key)]
    with pytest.raises(IndexError):
        ember.tensor(data)[convert(ember, key)]
    with pytest.raises(IndexError):
        torch.tensor(data)[convert(torch, key)] = 1.0
    with pytest.raises(IndexError):
        ember.tensor(data)[convert(ember, key)] = 1.0


@pytest.mark.parametrize(
    "key", [slice(None, None, -1), slice(None, None, 0), (0, slice(3, 0, -1))], ids=repr
)
def test_non_positive_step_raises(key):
    data = np.zeros((4, 5), dtype=np.float32)
    with pytest.raises(ValueError):
        torch.tensor(data)[key]
    with pytest.raises(ValueError):
        ember.tensor(data)[key]
    with pytest.raises(ValueError):
        torch.tensor(data)[key] = 1.0
    with pytest.raises(ValueError):
        ember.tensor(data)[key] = 1.0


def test_float_index_tensor_raises():
    with pytest.raises(IndexError):
        torch.zeros(3)[torch.tensor([0.0])]
    with pytest.raises(IndexError):
        ember.zeros(3)[ember.tensor([0.0])]


def test_two_ellipses_raise():
    with pytest.raises(IndexError):
        ember.zeros(2, 3)[..., 0, ...]


def test_unsupported_key_type_raises():
    with pytest.raises((IndexError, TypeError)):
        ember.zeros(3)["a"]
    with pytest.raises((IndexError, TypeError)):
        ember.zeros(3)[1.5]


# ---------------------------------------------------------------- hypothesis: basic keys


def _keys_for(draw, dim_sizes):
    key = []
    for dim_size in dim_sizes:
        kind = draw(st.sampled_from(["int", "slice", "slice", "none"]))
        if kind == "none":
            key.append(None)
        if kind == "int" and dim_size > 0:
            key.append(draw(st.integers(-dim_size, dim_size - 1)))
        else:
            bound = st.one_of(st.none(), st.integers(-dim_size - 2, dim_size + 2))
            step = draw(st.one_of(st.none(), st.integers(1, 3)))
            key.append(slice(draw(bound), draw(bound), step))
    return key


@st.composite
def shape_and_key(draw):
    shape = tuple(draw(st.lists(st.integers(0, 5), min_size=0, max_size=4)))
    dims = list(shape)
    n_lead = draw(st.integers(0, len(dims)))  # entries that index the leading dims
    if draw(st.booleans()):
        # an Ellipsis sends the entries after it to the trailing dims
        n_trail = draw(st.integers(0, len(dims) - n_lead))
        trail = dims[len(dims) - n_trail :]
        key = _keys_for(draw, dims[:n_lead]) + [Ellipsis] + _keys_for(draw, trail)
    else:
        key = _keys_for(draw, dims[:n_lead])
    for _ in range(draw(st.integers(0, 2))):
        key.insert(draw(st.integers(0, len(key))), None)
    return shape, tuple(key)


@settings(max_examples=100, deadline=None)
@given(shape_and_key())
def test_basic_indexing_hypothesis(case):
    shape, key = case
    data = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)
    e, t = ember.tensor(data), torch.tensor(data)
    want = t[key]
    got = e[key]
    assert_same(got, want)
    # the result is a view: writes show in the base like in torch
    if want.numel():
        got.add_(1000)
        want.add_(1000)
        assert_same(e, t)
    # and assignment through the same key agrees
    e[key] = -1.0
    t[key] = -1.0
    assert_same(e, t)
