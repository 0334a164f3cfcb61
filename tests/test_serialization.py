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
    assert out["u8"].dtype is ember.uint8 and out["i16"].dtype is ember.int16
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


def test_save_rejects_objects_it_cannot_store(tmp_path):
    path = tmp_path / "x.safetensors"
    with pytest.raises(TypeError, match=r"obj\['a'\]\[1\] is a object"):
        save({"a": [ember.ones(1), object()]}, path)
    with pytest.raises(TypeError, match="is a ndarray"):
        save({"w": np.ones(2)}, path)
    with pytest.raises(TypeError, match="function"):
        save({"lr_lambda": lambda e: e}, path)
    with pytest.raises(TypeError, match="key of type frozenset"):
        save({frozenset(): 1}, path)
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


# ---- checkpoints: nested structures --------------------------------------------------------


def _round_trip(obj, tmp_path, name="ckpt.safetensors"):
    path = tmp_path / name
    save(obj, path)
    return load(path)


def _assert_tree_equal(a, b):
    assert type(a) is type(b) or (isinstance(a, ember.Tensor) and isinstance(b, ember.Tensor))
    if isinstance(a, ember.Tensor):
        assert_same(a, b)
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            assert type(k) is type(next(x for x in b if x == k))
            _assert_tree_equal(a[k], b[k])
    elif isinstance(a, list | tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _assert_tree_equal(x, y)
    elif isinstance(a, float) and a != a:
        assert b != b
    else:
        assert a == b


def test_bare_tensor_and_list_of_tensors(tmp_path):
    t = sample(ember.float32, (2, 3))
    out = _round_trip(t, tmp_path)
    assert isinstance(out, ember.Tensor)
    assert_same(out, t)
    ts = [sample(ember.int32, (4,)), sample(ember.bfloat16, ()), sample(ember.bool, (0, 2))]
    out = _round_trip(ts, tmp_path, "l.safetensors")
    assert isinstance(out, list) and len(out) == 3
    for a, b in zip(out, ts):
        assert_same(a, b)


def test_nested_lists_tuples_int_keys_and_scalars(tmp_path):
    obj = {
        "a": [1, 2.5, (3, [ember.ones(2)], ()), []],
        0: {"x": None, "y": True, "z": False, "s": "text", "f": -0.0, "big": 2**70},
        1: (ember.arange(3), {2: "two", "2": "str two", (1, "k"): 1.0}),
        "nan": [float("nan"), float("inf"), -float("inf")],
        "empty": {},
        "od": OrderedDict([("b", 1), ("a", 2)]),
        None: "none key",
        2.5: "float key",
    }
    out = _round_trip(obj, tmp_path)
    _assert_tree_equal(obj, out)
    assert isinstance(out["od"], OrderedDict) and not isinstance(out["empty"], OrderedDict)
    assert set(out[1][1]) == {2, "2", (1, "k")}
    assert out[0]["y"] is True and type(out[0]["big"]) is int


def test_shared_tensor_stored_once(tmp_path):
    t = ember.randn(5)
    path = tmp_path / "s.safetensors"
    save({"a": t, "b": [t], "c": 1}, path)
    assert len(stn.load_file(str(path))) == 1
    out = load(path)
    assert_same(out["a"], t)
    assert_same(out["b"][0], t)


def test_flat_state_dict_stays_plain_safetensors(tmp_path):
    sd = {"w": ember.randn(2, 3), "b": ember.zeros(3)}
    path = tmp_path / "flat.safetensors"
    save(sd, path)
    raw = stn.load_file(str(path))
    assert sorted(raw) == ["b", "w"]
    np.testing.assert_array_equal(raw["w"], sd["w"]._data)
    with open(path, "rb") as fh:
        (n,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(n))
    assert "ember.structure" not in header.get("__metadata__", {})


def _train_setup(seed):
    ember.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
    opt = ember.optim.Adam(model.parameters(), lr=0.01, betas=(0.8, 0.95), amsgrad=True)
    sched = ember.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    return model, opt, sched


def _train_steps(model, opt, sched, data, n):
    losses = []
    for i in range(n):
        x, y = data[i % len(data)]
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    return losses


def test_resume_checkpoint_continues_training_identically(tmp_path):
    rng = np.random.default_rng(0)
    data = [
        (ember.tensor(rng.standard_normal((5, 4)), dtype=ember.float32),
         ember.tensor(rng.standard_normal((5, 2)), dtype=ember.float32))
        for _ in range(3)
    ]  # fmt: skip
    model, opt, sched = _train_setup(0)
    _train_steps(model, opt, sched, data, 3)
    ckpt = {
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "epoch": 3,
        "loss": 0.25,
    }
    path = tmp_path / "resume.safetensors"
    save(ckpt, path)
    reference = _train_steps(model, opt, sched, data, 4)

    loaded = load(path)
    assert loaded["epoch"] == 3 and loaded["loss"] == 0.25
    assert sorted(loaded["optimizer"]["state"]) == [0, 1, 2, 3]  # int keys survive
    assert loaded["optimizer"]["param_groups"][0]["betas"] == (0.8, 0.95)
    model2, opt2, sched2 = _train_setup(123)  # different init: everything comes from the file
    model2.load_state_dict(loaded["model"])
    opt2.load_state_dict(loaded["optimizer"])
    sched2.load_state_dict(loaded["scheduler"])
    assert sched2.get_last_lr() == sched.get_last_lr() or sched2.last_epoch == 3
    resumed = _train_steps(model2, opt2, sched2, data, 4)
    assert resumed == reference
    for (k, a), (_, b) in zip(model.state_dict().items(), model2.state_dict().items()):
        assert a._data.tobytes() == b._data.tobytes(), k
    assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]


def test_scheduler_state_dict_round_trip(tmp_path):
    model = nn.Linear(2, 2)
    opt = ember.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = ember.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.1)
    for _ in range(4):
        opt.step()
        sched.step()
    sd = sched.state_dict()
    out = _round_trip(sd, tmp_path)
    _assert_tree_equal(sd, out)
    opt_sd = _round_trip(opt.state_dict(), tmp_path, "o.safetensors")
    _assert_tree_equal(opt.state_dict(), opt_sd)


def _write_structured(path, tensors, structure_json, fmt="ember-structured-1"):
    arrays = {k: v for k, v in tensors.items()}
    meta = {"ember.format": fmt, "ember.structure": structure_json}
    stn.save_file(arrays, str(path), metadata=meta)


def test_crafted_structure_errors_name_the_file(tmp_path):
    path = tmp_path / "crafted.safetensors"
    _write_structured(path, {"t0": np.ones(2, np.float32)}, '{"list": [{"tensor": "t0"}')
    with pytest.raises(RuntimeError, match="crafted.safetensors.*JSON is malformed"):
        load(path)
    _write_structured(path, {"t0": np.ones(2, np.float32)}, '{"list": [{"tensor": "t9"}]}')
    with pytest.raises(RuntimeError, match="crafted.safetensors.*'t9', which the file does not"):
        load(path)
    _write_structured(path, {}, '{"pickle": "os.system"}')
    with pytest.raises(RuntimeError, match="crafted.safetensors.*unknown node kind 'pickle'"):
        load(path)
    _write_structured(path, {}, '{"dict": [[{"list": []}, 1]]}')
    with pytest.raises(RuntimeError, match="crafted.safetensors.*unhashable"):
        load(path)
    _write_structured(path, {}, '{"list": []}', fmt="ember-structured-99")
    with pytest.raises(RuntimeError, match="crafted.safetensors.*format"):
        load(path)
    # a well-formed crafted file loads
    _write_structured(path, {"t0": np.arange(3, dtype=np.int64)}, '{"tuple": [{"tensor": "t0"}]}')
    (t,) = load(path)
    assert t.tolist() == [0, 1, 2]


def test_structured_file_truncated_keeps_clear_error(tmp_path):
    path = tmp_path / "ck.safetensors"
    save({"model": {"w": ember.randn(10)}, "epoch": 1}, path)
    data = path.read_bytes()
    path.write_bytes(data[:-5])
    with pytest.raises(RuntimeError, match="ck.safetensors.*not a valid safetensors file"):
        load(path)
