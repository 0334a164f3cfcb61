"""ember.save / ember.load: safetensors files, interoperable with safetensors.numpy/.torch."""

import io
import json
import os
import struct
from collections import OrderedDict

import ml_dtypes
import numpy as np
import pytest
import safetensors.numpy as stn
import safetensors.torch as stt
import torch

import ember
import ember.nn as nn
from ember.frontend.serialization import load, save

TORCH_DTYPES = {
    "float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32,
    "float64": torch.float64, "int8": torch.int8, "int32": torch.int32, "int64": torch.int64,
    "bool": torch.bool,
}  # fmt: skip
ALL = [ember.float16, ember.bfloat16, ember.float32, ember.float64, ember.int8, ember.int32,
       ember.int64, ember.bool]  # fmt: skip


def sample(dtype, shape, seed=0):
    rng = np.random.default_rng(seed)
    if dtype is ember.bool:
        arr = rng.random(shape) > 0.5
    elif dtype.is_floating_point:
        arr = rng.standard_normal(shape) * 10
    else:
        arr = rng.integers(-100, 100, shape)
    return ember.tensor(arr.astype(np.float64) if dtype.is_floating_point else arr, dtype=dtype)


def assert_same(a, b):
    assert a.dtype is b.dtype and tuple(a.shape) == tuple(b.shape)
    assert a._data.tobytes() == b._data.tobytes()


@pytest.mark.parametrize("dtype", ALL, ids=lambda d: d.name)
@pytest.mark.parametrize("shape", [(), (0,), (3, 0), (5,), (2, 3, 4)], ids=str)
def test_round_trip_every_dtype_and_shape(tmp_path, dtype, shape):
    t = sample(dtype, shape)
    path = tmp_path / "t.safetensors"
    save({"t": t}, path)
    out = load(path)
    assert list(out) == ["t"]
    assert_same(out["t"], t)
    assert out["t"].requires_grad is False


def test_round_trip_keeps_key_order_and_views(tmp_path):
    base = ember.arange(12).reshape(3, 4)
    sd = OrderedDict()
    sd["z.weight"] = ember.randn(2, 2)
    sd["a.bias"] = ember.zeros(3, dtype=ember.bfloat16)
    sd["m.view"] = base.t()  # non-contiguous
    sd["b.scalar"] = ember.tensor(3.5, dtype=ember.float64)
    sd["0"] = ember.tensor([True, False])
    path = str(tmp_path / "sd.safetensors")
    save(sd, path)
    out = load(path)
    assert list(out) == list(sd)
    for k in sd:
        np.testing.assert_array_equal(
            np.asarray(out[k]._data, dtype=np.float64), np.asarray(sd[k]._data, dtype=np.float64)
        )
        assert out[k].dtype is sd[k].dtype
    # the loaded tensors own their memory: writing to them does not touch the file's data
    out["z.weight"].add_(1)
    assert load(path)["z.weight"].tolist() == sd["z.weight"].tolist()


def test_file_objects(tmp_path):
    sd = {"a": ember.randn(3), "b": ember.arange(4)}
    buf = io.BytesIO()
    save(sd, buf)
    buf.seek(0)
    out = load(buf)
    for k in sd:
        assert_same(out[k], sd[k])
    path = tmp_path / "f.safetensors"
    with open(path, "wb") as f:
        save(sd, f)
    with open(path, "rb") as f:
        out = load(f)
    assert_same(out["a"], sd["a"])
    out = load(os.fspath(path), map_location="cpu")
    assert_same(out["b"], sd["b"])


def test_ember_file_loads_with_safetensors_numpy(tmp_path):
    sd = {d.name: sample(d, (2, 3), seed=i) for i, d in enumerate(ALL) if d is not ember.bfloat16}
    path = tmp_path / "e.safetensors"
    save(sd, path)
    arrays = stn.load_file(str(path))
    assert set(arrays) == set(sd)
    for k, t in sd.items():
        assert arrays[k].dtype == t._data.dtype
        np.testing.assert_array_equal(arrays[k], t._data)
    with open(path, "rb") as f:
        arrays = stn.load(f.read())
    assert set(arrays) == set(sd)


def test_ember_file_loads_with_safetensors_torch(tmp_path):
    sd = {d.name: sample(d, (3, 2), seed=i) for i, d in enumerate(ALL)}
    sd["scalar"] = ember.tensor(1.25)
    sd["empty"] = ember.zeros(0, 4, dtype=ember.int64)
    path = tmp_path / "e.safetensors"
    save(sd, path)
    tensors = stt.load_file(str(path))
    for k, t in sd.items():
        tt = tensors[k]
        assert tt.dtype == TORCH_DTYPES[t.dtype.name]
        assert tuple(tt.shape) == tuple(t.shape)
        ref = tt.float().numpy() if tt.dtype == torch.bfloat16 else tt.numpy()
        np.testing.assert_array_equal(ref, np.asarray(t._data, dtype=ref.dtype))


def test_safetensors_numpy_file_loads_into_ember(tmp_path):
    arrays = {
        "f32": np.arange(6, dtype=np.float32).reshape(2, 3),
        "f64": np.array(2.5),
        "f16": np.array([1.5, -2], np.float16),
        "i64": np.arange(3),
        "i32": np.array([[1], [2]], np.int32),
        "i8": np.array([-3, 4], np.int8),
        "b": np.array([True, False]),
        "u8": np.array([0, 255], np.uint8),
        "i16": np.array([-300, 300], np.int16),
        "empty": np.zeros((0, 2), np.float32),
        "bf16": np.array([1.0, -0.5, 3.0], dtype=ml_dtypes.bfloat16),
    }
    path = tmp_path / "n.safetensors"
    stn.save_file(arrays, str(path))
    out = load(path)
    assert set(out) == set(arrays)
    for k, arr in arrays.items():
        np.testing.assert_array_equal(np.asarray(out[k]._data), arr)
        assert tuple(out[k].shape) == arr.shape
    assert out["u8"].dtype is ember.int32 and out["i16"].dtype is ember.int32  # widened
    assert out["bf16"].dtype is ember.bfloat16 and out["f16"].dtype is ember.float16
    assert out["f64"].dtype is ember.float64 and out["f64"].ndim == 0


def test_safetensors_torch_file_loads_into_ember(tmp_path):
    g = torch.Generator().manual_seed(0)
    tensors = {
        "w": torch.randn(4, 3, generator=g),
        "bf": torch.randn(5, generator=g).to(torch.bfloat16),
        "h": torch.randn(2, 2, generator=g).half(),
        "d": torch.randn(3, generator=g).double(),
        "idx": torch.arange(5),
        "mask": torch.tensor([True, False, True]),
        "s": torch.tensor(7, dtype=torch.int32),
    }
    path = tmp_path / "t.safetensors"
    stt.save_file(tensors, str(path))
    out = load(path)
    for k, tt in tensors.items():
        e = out[k]
        assert TORCH_DTYPES[e.dtype.name] == tt.dtype
        ref = tt.float().numpy() if tt.dtype == torch.bfloat16 else tt.numpy()
        np.testing.assert_array_equal(np.asarray(e._data, dtype=ref.dtype), ref)


def test_torch_model_weights_into_ember_model(tmp_path):
    tlin = torch.nn.Linear(4, 3)
    path = tmp_path / "lin.safetensors"
    stt.save_file(tlin.state_dict(), str(path))
    sd = load(path)
    model = Affine(4, 3)  # x @ weight + bias: PyTorch's weight transposed
    model.load_state_dict({"weight": sd["weight"].t(), "bias": sd["bias"]})
    x = np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32)
    np.testing.assert_allclose(
        model(ember.tensor(x)).detach().numpy(),
        tlin(torch.tensor(x)).detach().numpy(),
        rtol=1e-6, atol=1e-6,
    )  # fmt: skip


# ---- corrupt files -------------------------------------------------------------------------


def _good_bytes():
    buf = io.BytesIO()
    save({"a": ember.arange(6, dtype=ember.float32), "b": ember.ones(3, dtype=ember.int64)}, buf)
    return buf.getvalue()


@pytest.mark.parametrize("cut", [0, 4, 8, 30, -1, -13], ids=lambda c: f"cut{c}")
def test_truncated_file_raises_clear_error(tmp_path, cut):
    data = _good_bytes()
    path = tmp_path / "trunc.safetensors"
    path.write_bytes(data[:cut])
    with pytest.raises(RuntimeError, match="not a valid safetensors file") as info:
        load(path)
    message = str(info.value)
    assert "trunc.safetensors" in message
    assert any(w in message for w in ("truncated", "too short"))


def test_corrupt_header_raises_clear_error(tmp_path):
    data = bytearray(_good_bytes())
    (n,) = struct.unpack("<Q", data[:8])
    path = tmp_path / "bad.safetensors"

    bad = bytearray(data)
    bad[9] = ord("#")  # break the JSON
    path.write_bytes(bytes(bad))
    with pytest.raises(RuntimeError, match="bad.safetensors.*not a valid safetensors file"):
        load(path)

    path.write_bytes(struct.pack("<Q", 1 << 40) + bytes(data[8:]))
    with pytest.raises(RuntimeError, match="header length"):
        load(path)

    header = json.loads(bytes(data[8 : 8 + n]))
    header["a"]["dtype"] = "F32"
    header["a"]["shape"] = [7]  # 28 bytes declared for a 24-byte range
    raw = json.dumps(header).encode()
    raw += b" " * ((8 - len(raw) % 8) % 8)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + bytes(data[8 + n :]))
    with pytest.raises(RuntimeError, match="bad.safetensors.*not a valid safetensors file"):
        load(path)

    path.write_bytes(b"PK\x03\x04 this is a zip/pickle file, not safetensors")
    with pytest.raises(RuntimeError, match="not a valid safetensors file"):
        load(path)


def test_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "nope.safetensors")


def test_loading_never_unpickles(tmp_path):
    # a torch.save (pickle) file is rejected as data, nothing in it is executed
    path = tmp_path / "model.pt"
    torch.save({"w": torch.ones(2)}, str(path))
    with pytest.raises(RuntimeError, match="not a valid safetensors file"):
        load(path)


# ---- what save accepts ---------------------------------------------------------------------


def test_save_rejects_non_tensor_values(tmp_path):
    path = tmp_path / "x.safetensors"
    with pytest.raises(TypeError, match="not a Tensor"):
        save({"a": ember.ones(1), "step": 3}, path)
    with pytest.raises(TypeError, match="nested dicts"):
        save({"state": {"a": ember.ones(1)}}, path)
    with pytest.raises(TypeError, match="reserved"):
        save({"__metadata__": ember.ones(1)}, path)
    with pytest.raises(TypeError, match="keys must be str"):
        save({0: ember.ones(1)}, path)
    with pytest.raises(TypeError, match="expected a dict of str -> Tensor"):
        save([ember.ones(1)], path)
    with pytest.raises(TypeError, match="expected a dict of str -> Tensor"):
        save(ember.ones(1), path)
    assert not path.exists()


def test_empty_state_dict(tmp_path):
    save({}, tmp_path / "e.safetensors")
    assert load(tmp_path / "e.safetensors") == {}
    assert stn.load_file(str(tmp_path / "e.safetensors")) == {}


# ---- a model's state_dict --------------------------------------------------------------------


class TinyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = Affine(4, 3)
        self.scale = nn.Parameter(ember.randn(3))
        self.register_buffer("offset", ember.randn(3))

    def forward(self, x):
        return ember.tanh(self.layer(x)) * self.scale + self.offset


class Affine(nn.Module):
    def __init__(self, n_in, n_out):
        super().__init__()
        self.weight = nn.Parameter(ember.randn(n_in, n_out))
        self.bias = nn.Parameter(ember.randn(n_out))

    def forward(self, x):
        return x @ self.weight + self.bias


def test_model_state_dict_round_trip(tmp_path):
    ember.manual_seed(0)
    model = TinyNet()
    ember.manual_seed(1)
    fresh = TinyNet()
    x = ember.randn(5, 4)
    assert not np.allclose(model(x).detach().numpy(), fresh(x).detach().numpy())
    path = tmp_path / "model.safetensors"
    save(model.state_dict(), path)
    sd = load(path)
    assert list(sd) == list(model.state_dict()) == ["scale", "offset", "layer.weight", "layer.bias"]
    fresh.load_state_dict(sd)
    np.testing.assert_array_equal(model(x).detach().numpy(), fresh(x).detach().numpy())
    # the parameters stay Parameters of the fresh model, and still train
    assert all(p.requires_grad for p in fresh.parameters())
    fresh(x).sum().backward()
    assert fresh.layer.weight.grad is not None


def test_bfloat16_model_round_trip(tmp_path):
    ember.manual_seed(0)
    model = TinyNet().to(ember.bfloat16)
    path = tmp_path / "bf16.safetensors"
    save(model.state_dict(), path)
    sd = load(path)
    assert all(t.dtype is ember.bfloat16 for t in sd.values())
    for k, t in model.state_dict().items():
        assert_same(sd[k], t)
    tsd = stt.load_file(str(path))
    assert all(t.dtype == torch.bfloat16 for t in tsd.values())
