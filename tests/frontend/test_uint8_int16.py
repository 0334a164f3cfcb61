"""uint8 and int16 against PyTorch: creation without copies, wraparound arithmetic, promotion,
casts, reductions, uint8 masks, data loading and ``ember.save``.

Image data arrives as uint8 and audio as int16; these tests follow such data from numpy
through the ops a pipeline uses. The op-by-op tables (`opinfo.OPS`) cover the ops over both
dtypes; here are the behaviours that are particular to them. Each expression runs with ember
and torch (``m`` is the module) on the same data.
"""

import warnings

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import ember
from ember.ir.parser import parse_graph
from ember.ir.printer import format_graph
from ember.utils.data import DataLoader

PIXELS = np.array([0, 5, 128, 250, 255], dtype=np.uint8)
SAMPLES = np.array([-32768, -7, 0, 300, 32767], dtype=np.int16)


def _same(got, want):
    assert isinstance(got, ember.Tensor), got
    assert got.dtype.name == str(want.dtype).removeprefix("torch."), (got.dtype, want.dtype)
    assert tuple(got.shape) == tuple(want.shape)
    np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_dtype_objects_match_torch():
    for name, alias in (("uint8", None), ("int16", "short")):
        d, t = getattr(ember, name), getattr(torch, name)
        assert d.itemsize == t.itemsize
        assert d.is_signed == t.is_signed
        assert d.is_floating_point == t.is_floating_point
        if alias:
            assert getattr(ember, alias) is d
        info, tinfo = ember.iinfo(d), torch.iinfo(t)
        assert (info.min, info.max, info.bits) == (tinfo.min, tinfo.max, tinfo.bits)


@pytest.mark.parametrize("make", ["from_numpy", "as_tensor", "asarray"])
@pytest.mark.parametrize("data", [PIXELS, SAMPLES], ids=["uint8", "int16"])
def test_creation_from_numpy_shares_memory(make, data):
    arr = data.copy()
    t = getattr(ember, make)(arr)
    tt = getattr(torch, make)(arr.copy())
    assert t.dtype.name == str(tt.dtype).removeprefix("torch.")
    assert np.shares_memory(t.numpy(), arr)
    arr[0] = 9
    assert t[0].item() == 9


@pytest.mark.parametrize("data", [PIXELS, SAMPLES], ids=["uint8", "int16"])
def test_tensor_copies_and_keeps_the_dtype(data):
    t = ember.tensor(data)
    _same(t, torch.tensor(data))
    assert not np.shares_memory(t.numpy(), data)


def test_other_unsigned_numpy_types_still_widen():
    assert ember.from_numpy(np.array([1, 2], dtype=np.uint16)).dtype is ember.int32


EXPRESSIONS = [
    "x + 10",  # 250 + 10 wraps to 4
    "x + 300",  # the scalar wraps to uint8 first, as in torch
    "x - 1",
    "x + (-1)",
    "x * 2",
    "x * 1.5",
    "x / 2",
    "x // 3",
    "x % 7",
    "x ** 2",
    "-x",
    "abs(x)",
    "x + True",
    "x > 100",
    "x > -1",
    "x == -6",
    "x < 300",
    "x & 15",
    "x | 1",
    "x ^ 255",
    "~x",
    "x << 1",
    "x >> 2",
    "x.float() / 255",  # ToTensor's scaling
    "x.sum()",
    "x.sum(0)",
    "x.prod()",
    "x.cumsum(0)",
    "x.max()",
    "x.argmax()",
    "x.all()",
    "x.any()",
    "x.clamp(3, 200)",
    "m.where(x > 3, x, 1)",
    "m.maximum(x, m.tensor(7, dtype=m.int8))",
    "x + m.tensor([1, 2, 3, 4, 5], dtype=m.int8)",
    "x + m.tensor([1, 2, 3, 4, 5], dtype=m.int16)",
    "x + m.tensor([True, False, True, False, True])",
    "x + m.tensor(1000)",
    "x.to(m.int8)",
    "x.short()",
    "x.long()",
    "x.byte()",
]


@pytest.mark.parametrize("expr", EXPRESSIONS)
@pytest.mark.parametrize("data", [PIXELS, SAMPLES], ids=["uint8", "int16"])
def test_expression_matches_torch(expr, data):
    results = []
    for m in (ember, torch):
        x = m.tensor(data)
        results.append(eval(expr, {"m": m, "x": x}))
    _same(*results)


def test_wraparound_example():
    x = ember.tensor([250], dtype=ember.uint8)
    assert (x + 10).tolist() == [4]
    assert (x + 10).dtype is ember.uint8


CASTS = [
    ("byte", [-3.7, 300.2, 255.9, 0.5]),
    ("short", [-40000.0, 40000.0, -1.5, 7.9]),
    ("byte", [-1, 256, 70000]),
    ("short", [70000, -70000]),
    ("char", [-3.7, 200.0]),
]


@pytest.mark.parametrize("method,values", CASTS)
@pytest.mark.parametrize("src", ["float32", "float64", "bfloat16", "int64"])
def test_casts_wrap_like_torch(method, values, src):
    if src == "int64":
        values = [int(v) for v in values]
    elif src == "bfloat16":
        values = [v for v in values if abs(v) < 256]  # exact in bfloat16
    got = getattr(ember.tensor(values, dtype=getattr(ember, src)), method)()
    want = getattr(torch.tensor(values, dtype=getattr(torch, src)), method)()
    _same(got, want)


def test_mean_of_uint8_raises_like_torch():
    with pytest.raises(RuntimeError):
        torch.tensor(PIXELS).mean()
    with pytest.raises(RuntimeError, match="mean"):
        ember.tensor(PIXELS).mean()


# ---- uint8 index tensors are masks (deprecated), as in torch -------------------------------

MASK = np.array([[1, 0, 1], [0, 0, 3]], dtype=np.uint8)


def _getitem_with_warnings(m, key_of):
    x = m.arange(6).reshape(2, 3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = x[key_of(m)]
    return out, [str(w.message) for w in caught if issubclass(w.category, UserWarning)]


@pytest.mark.parametrize(
    "key_of",
    [
        lambda m: m.tensor(MASK),
        lambda m: m.tensor(MASK[:, 2]),
        lambda m: (slice(None), m.tensor(MASK[1])),
        lambda m: MASK[:, 0],
    ],
    ids=["2d mask", "1d mask", "mask on dim 1", "numpy uint8"],
)
def test_uint8_index_is_a_deprecated_mask(key_of):
    got, got_warn = _getitem_with_warnings(ember, key_of)
    want, want_warn = _getitem_with_warnings(torch, key_of)
    _same(got, want)
    assert len(got_warn) == 1 and len(want_warn) == 1
    assert "uint8 is now deprecated" in want_warn[0]
    assert "uint8 is now deprecated" in got_warn[0]


@pytest.mark.parametrize("value", [0, 1])
def test_zero_dim_uint8_index_is_a_bool(value):
    got, got_warn = _getitem_with_warnings(ember, lambda m: m.tensor(value, dtype=m.uint8))
    want, want_warn = _getitem_with_warnings(torch, lambda m: m.tensor(value, dtype=m.uint8))
    _same(got, want)
    assert got_warn == want_warn == []


def test_uint8_mask_assignment_of_a_tensor_matches_torch():
    results = []
    for m in (ember, torch):
        x = m.arange(6).reshape(2, 3)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            x[m.tensor([0, 1], dtype=m.uint8)] = m.tensor([7, 8, 9])
        results.append(x)
    _same(*results)


@pytest.mark.parametrize("value", [5, "0d"])
def test_uint8_mask_fill_with_a_number_raises_like_torch(value):
    for m in (ember, torch):
        x = m.arange(6).reshape(2, 3)
        v = m.tensor(7) if value == "0d" else value
        with pytest.raises(RuntimeError, match="masked_fill_ only supports boolean masks"):
            x[m.tensor([0, 1], dtype=m.uint8)] = v


@pytest.mark.parametrize("dtype", ["int8", "int16"])
def test_narrow_signed_index_tensors_raise_like_torch(dtype):
    for m in (ember, torch):
        x = m.arange(6)
        with pytest.raises(IndexError, match="must be long, int, byte or bool tensors"):
            x[m.tensor([1, 0], dtype=getattr(m, dtype))]


# ---- data loading and checkpoints ----------------------------------------------------------


def test_dataloader_collates_uint8_images_and_int16_labels():
    items = [(np.full((2, 2), 250 + i, dtype=np.uint8), np.int16(-i)) for i in range(4)]
    got = next(iter(DataLoader(items, batch_size=4)))
    want = next(iter(torch.utils.data.DataLoader(items, batch_size=4)))
    _same(got[0], want[0])
    _same(got[1], want[1])
    _same(got[0].float() / 255, want[0].float() / 255)


def test_save_and_load_keep_uint8_and_int16(tmp_path):
    path = tmp_path / "data.safetensors"
    state = {"img": ember.tensor(PIXELS.reshape(1, 5)), "pcm": ember.tensor(SAMPLES)}
    ember.save(state, path)
    back = ember.load(path)
    theirs = load_file(str(path))
    for key in state:
        _same(back[key], torch.tensor(state[key].numpy()))
        _same(back[key], theirs[key])


def test_graphs_of_uint8_and_int16_print_and_parse_back():
    graph = ember.make_ir(lambda x: (x.short() + 3).sum())(ember.tensor(PIXELS))
    text = format_graph(graph)
    assert "%x: u8[5]" in text and "i16[5]" in text
    assert format_graph(parse_graph(text)) == text
