"""ember.ir.dtypes against PyTorch: promote_types for every pair, result_type over operand mixes."""

import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ember.ir import dtypes as D

TORCH = {
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float32": torch.float32,
    "float64": torch.float64,
    "uint8": torch.uint8,
    "int8": torch.int8,
    "int16": torch.int16,
    "int32": torch.int32,
    "int64": torch.int64,
    "bool": torch.bool,
}
FROM_TORCH = {t: name for name, t in TORCH.items()}


def test_every_dtype_has_a_torch_twin():
    assert sorted(d.name for d in D.ALL_DTYPES) == sorted(TORCH)
    for d in D.ALL_DTYPES:
        assert d.itemsize == TORCH[d.name].itemsize
        assert d.is_floating_point == TORCH[d.name].is_floating_point
        assert d.is_signed == TORCH[d.name].is_signed


def test_names():
    expected = {
        "float16": "f16",
        "bfloat16": "bf16",
        "float32": "f32",
        "float64": "f64",
        "uint8": "u8",
        "int8": "i8",
        "int16": "i16",
        "int32": "i32",
        "int64": "i64",
        "bool": "bool",
    }
    for name, short in expected.items():
        assert D.from_name(name) is D.from_name(short)
        assert D.from_name(name).short == short
    with pytest.raises(TypeError, match="unknown dtype 'f31'"):
        D.from_name("f31")


@pytest.mark.parametrize(
    "a,b", list(itertools.product(D.ALL_DTYPES, repeat=2)), ids=lambda d: d.short
)
def test_promote_types_matches_torch(a, b):
    expected = FROM_TORCH[torch.promote_types(TORCH[a.name], TORCH[b.name])]
    assert D.promote_types(a, b).name == expected


def test_promote_types_spot_values():
    # A few written-out rows, independent of torch.
    assert D.promote_types(D.float16, D.bfloat16) is D.float32
    assert D.promote_types(D.int64, D.float16) is D.float16
    assert D.promote_types(D.bool_, D.int8) is D.int8
    assert D.promote_types(D.int8, D.int32) is D.int32
    assert D.promote_types(D.float64, D.bfloat16) is D.float64
    assert D.promote_types(D.uint8, D.int8) is D.int16
    assert D.promote_types(D.uint8, D.int16) is D.int16
    assert D.promote_types(D.uint8, D.int32) is D.int32
    assert D.promote_types(D.uint8, D.bool_) is D.uint8
    assert D.promote_types(D.int16, D.float16) is D.float16


class Operand:
    """What ember's result_type reads from a tensor: ``dtype`` and ``ndim``."""

    def __init__(self, dtype, ndim):
        self.dtype = dtype
        self.ndim = ndim


# An operand is ("tensor", dtype, ndim) or ("scalar", python value).
tensor_ops = st.builds(
    lambda d, ndim: ("tensor", d, ndim),
    st.sampled_from(D.ALL_DTYPES),
    st.sampled_from([0, 0, 1, 2]),
)
scalar_ops = st.sampled_from([True, False, 0, 3, -7, 2.5, -0.0, 1e-05]).map(lambda v: ("scalar", v))
operands = st.one_of(tensor_ops, scalar_ops)


def to_ember(op):
    return op[1] if op[0] == "scalar" else Operand(op[1], op[2])


def to_torch(op):
    if op[0] == "scalar":
        return op[1]
    return torch.zeros((1,) * op[2], dtype=TORCH[op[1].name])


def priority(op):
    """PyTorch's priority class: dimensioned tensor, zero-dim tensor, Python scalar."""
    if op[0] == "scalar":
        return "scalar"
    return "zero" if op[2] == 0 else "dim"


def representative(cls, dtype_name):
    """An operand of priority class ``cls`` whose own dtype is ``dtype_name``."""
    if cls == "scalar":
        return {"bool": True, "int64": 1, "float32": 1.0}[dtype_name]
    return torch.zeros((1,) * (1 if cls == "dim" else 0), dtype=TORCH[dtype_name])


@settings(max_examples=400, deadline=None)
@given(operands, operands)
def test_result_type_pairs_match_torch(a, b):
    expected = FROM_TORCH[torch.result_type(to_torch(a), to_torch(b))]
    assert D.result_type(to_ember(a), to_ember(b)).name == expected
    assert D.result_type(to_ember(b), to_ember(a)).name == expected


@settings(max_examples=400, deadline=None)
@given(operands, operands, operands)
def test_result_type_triples_match_torch(a, b, c):
    got = D.result_type(to_ember(a), to_ember(b), to_ember(c)).name
    for x, y, z in itertools.permutations((a, b, c)):
        assert D.result_type(to_ember(x), to_ember(y), to_ember(z)).name == got
    # torch.result_type takes two operands. Two operands of the same priority class promote
    # to one operand of that class, so the chain (x, y) -> z is exact; skip other mixes.
    for x, y, z in itertools.permutations((a, b, c)):
        if priority(x) == priority(y):
            xy = FROM_TORCH[torch.result_type(to_torch(x), to_torch(y))]
            expected = FROM_TORCH[torch.result_type(representative(priority(x), xy), to_torch(z))]
            assert got == expected
            break


@pytest.mark.parametrize(
    "operands,expected",
    [
        ((Operand(D.int32, 1), 2.5), D.float32),
        ((Operand(D.float16, 1), 2.5), D.float16),
        ((Operand(D.bool_, 2), 3), D.int64),
        ((Operand(D.int8, 1), Operand(D.int64, 0)), D.int8),
        ((Operand(D.int32, 1), Operand(D.float64, 0)), D.float64),
        ((Operand(D.float16, 0), 2.5), D.float16),
        ((Operand(D.int8, 0), 2.5), D.float32),
        ((True, 2), D.int64),
        ((True, 2, 0.5), D.float32),
        ((Operand(D.bool_, 0), Operand(D.bool_, 1), True), D.bool_),
        ((Operand(D.float16, 1), Operand(D.bfloat16, 1)), D.float32),
        ((Operand(D.uint8, 1), 300), D.uint8),
        ((Operand(D.uint8, 1), True), D.uint8),
        ((Operand(D.uint8, 1), 2.5), D.float32),
        ((Operand(D.uint8, 1), Operand(D.int8, 1)), D.int16),
        ((Operand(D.uint8, 1), Operand(D.int64, 0)), D.uint8),
        ((Operand(D.int16, 0), Operand(D.uint8, 0)), D.int16),
    ],
)
def test_result_type_written_out(operands, expected):
    assert D.result_type(*operands) is expected


def test_result_type_follows_default_dtype():
    D.set_default_dtype(D.float64)
    try:
        assert D.result_type(Operand(D.int32, 1), 2.5) is D.float64
        assert D.scalar_dtype(1.0) is D.float64
    finally:
        D.set_default_dtype(D.float32)
    assert D.scalar_dtype(1.0) is D.float32


def test_result_type_errors():
    with pytest.raises(TypeError, match="needs at least one operand"):
        D.result_type()
    with pytest.raises(TypeError, match="expected a Python number, got str"):
        D.scalar_dtype("1")
    with pytest.raises(TypeError, match="only floating point dtypes are allowed"):
        D.set_default_dtype(D.int32)
