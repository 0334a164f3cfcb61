"""The legacy typed constructors (``ember.FloatTensor``...) against PyTorch's: the dtype and
shape of each form of call, ``isinstance`` through the metaclass, and ``Tensor.type``."""

import numpy as np
import pytest
import torch

import ember

NAMES = ["FloatTensor", "DoubleTensor", "HalfTensor", "BFloat16Tensor", "ByteTensor", "ShortTensor", "CharTensor",
         "IntTensor", "LongTensor", "BoolTensor"]  # fmt: skip

CALLS = {
    "size": lambda T, lib: T(4),
    "sizes": lambda T, lib: T(2, 3),
    "data": lambda T, lib: T([1, 0, 2]),
    "nested_data": lambda T, lib: T([[1, 2], [3, 4]]),
    "tuple_is_data": lambda T, lib: T((2, 3)),
    "torch_size": lambda T, lib: T(lib.Size([2, 3])),
}


def _name(t) -> str:
    return str(t.dtype).split(".")[-1]


@pytest.mark.parametrize("call", list(CALLS))
@pytest.mark.parametrize("name", NAMES)
def test_construction_matches_torch(name, call):
    fn = CALLS[call]
    e = fn(getattr(ember, name), ember)
    t = fn(getattr(torch, name), torch)
    assert tuple(e.shape) == tuple(t.shape)
    assert _name(e) == _name(t)
    if call in ("data", "nested_data", "tuple_is_data"):
        np.testing.assert_array_equal(e.float().numpy(), t.float().numpy())
    else:
        assert not np.any(e.float().numpy())  # ember fills new storage with zeros


@pytest.mark.parametrize("name", NAMES)
def test_empty_call(name):
    e, t = getattr(ember, name)(), getattr(torch, name)()
    assert tuple(e.shape) == tuple(t.shape) == (0,) and _name(e) == _name(t)


@pytest.mark.parametrize("name", NAMES)
def test_isinstance_follows_the_dtype(name):
    cls = getattr(ember, name)
    for other in NAMES:
        e = getattr(ember, other)(2)
        t = getattr(torch, other)(2)
        assert isinstance(e, cls) == isinstance(t, getattr(torch, name))
    assert not issubclass(cls, ember.Tensor) and not issubclass(getattr(torch, name), torch.Tensor)
    assert not isinstance([1.0], cls)


def test_tensor_argument_and_type_method():
    t = ember.tensor([1.0, 2.0])
    assert ember.FloatTensor(t) is t
    with pytest.raises(TypeError):
        ember.FloatTensor(ember.tensor([1, 2]))
    with pytest.raises(TypeError):
        torch.FloatTensor(torch.tensor([1, 2]))
    for name in NAMES:
        e = getattr(ember, name)(1)
        assert e.type() == getattr(torch, name)(1).type().replace("torch.", "ember.")
    assert ember.zeros(2).type(ember.LongTensor).dtype is ember.int64
    assert repr(ember.FloatTensor) == "<class 'ember.FloatTensor'>"


def test_byte_and_short_tensors_hold_uint8_and_int16():
    assert ember.ByteTensor([250, 3]).dtype is ember.uint8
    assert ember.ShortTensor(2, 2).dtype is ember.int16
    assert ember.tensor([1], dtype=ember.uint8).type() == "ember.ByteTensor"
