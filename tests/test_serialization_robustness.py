"""``ember.load`` of crafted, corrupt and hostile files, and ``ember.save`` of what cannot be a
tree: each gives a `SerializationError` (a RuntimeError, as PyTorch's corrupt-archive and
recursion errors are) that names the file and the problem, never RecursionError, MemoryError,
ValueError or UnicodeDecodeError, and nothing is loaded in part. Every file is written here.
"""

import io
import json
import random
import struct

import numpy as np
import pytest

import ember
import ember.nn as nn
from ember.serialization import SerializationError

MAX_DEPTH = 64


def raw_file(header, body: bytes = b"") -> bytes:
    """A safetensors file from a header (a dict, or its bytes) and a data section."""
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + body


def structured(structure_text: str, tensors=None, fmt="ember-structured-2") -> bytes:
    """An ember structured file whose structure JSON is ``structure_text``."""
    header, body = {}, b""
    for name, arr in (tensors or {}).items():
        data = np.ascontiguousarray(arr, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape),
                        "data_offsets": [len(body), len(body) + len(data)]}  # fmt: skip
        body += data
    header["__metadata__"] = {"ember.format": fmt, "ember.structure": structure_text}
    return raw_file(header, body)


def load_error(data: bytes, tmp_path, name="crafted.safetensors") -> str:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(SerializationError) as info:
        ember.load(path)
    message = str(info.value)
    assert name in message
    return message


def module_file() -> bytes:
    ember.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))
    buf = io.BytesIO()
    ember.save(model, buf)
    return buf.getvalue()


def test_serialization_error_is_a_runtime_error():
    # PyTorch raises RuntimeError for a corrupt archive and RecursionError (a RuntimeError)
    # for a structure nested too deep
    assert issubclass(SerializationError, RuntimeError)
    assert ember.serialization.SerializationError is SerializationError


# ---- nesting -------------------------------------------------------------------------------


def test_crafted_10kb_file_nested_900_deep(tmp_path):
    data = structured('{"list":[' * 900 + "]}" * 900)
    assert 10_000 < len(data) < 12_000
    message = load_error(data, tmp_path)
    assert f"at most {MAX_DEPTH} levels" in message


def test_crafted_dicts_nested_past_the_limit_but_shallow_json(tmp_path):
    # 70 levels of dicts is shallow enough to parse: the decoder counts the levels
    text = '{"dict": [["k", ' * 70 + "1" + "]]}" * 70
    message = load_error(structured(text), tmp_path)
    assert f"more than {MAX_DEPTH} levels" in message


def test_crafted_modules_nested_900_deep(tmp_path):
    seq = "ember.frontend.nn.modules.container.Sequential"
    text = (
        "".join(
            f'{{"module": {{"class": "{seq}", "id": {i}, "attrs": [["_modules", {{"odict": [["0", '
            for i in range(900)
        )
        + "null"
        + "]]}]]}}" * 900
    )
    message = load_error(structured(text), tmp_path)
    assert f"at most {MAX_DEPTH} levels" in message


def test_crafted_header_nested_900_deep(tmp_path):
    header = b'{"a": ' + b"[" * 900 + b"]" * 900 + b"}"
    message = load_error(raw_file(header), tmp_path)
    assert "nests 901 levels deep" in message


def test_save_at_the_depth_limit_round_trips(tmp_path):
    obj = 1
    for _ in range(MAX_DEPTH):
        obj = [obj]
    ember.save(obj, tmp_path / "deep.safetensors")
    out = ember.load(tmp_path / "deep.safetensors")
    for _ in range(MAX_DEPTH):
        out = out[0]
    assert out == 1


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 1000])
def test_save_past_the_depth_limit(tmp_path, depth):
    obj = []
    for _ in range(depth - 1):
        obj = [obj]
    with pytest.raises(SerializationError, match=f"more than {MAX_DEPTH} levels deep"):
        ember.save(obj, tmp_path / "deep.safetensors")
    assert not (tmp_path / "deep.safetensors").exists()


def test_save_of_modules_nested_1000_deep(tmp_path):
    model = nn.Identity()
    for _ in range(1000):
        model = nn.Sequential(model)
    with pytest.raises(SerializationError, match=f"more than {MAX_DEPTH} levels deep"):
        ember.save(model, tmp_path / "deep.safetensors")


# ---- cycles --------------------------------------------------------------------------------


def test_save_of_a_list_that_contains_itself(tmp_path):
    a = [1, 2]
    a.append([a])
    with pytest.raises(SerializationError, match=r"obj\[2\]\[0\] is obj again.*cycle"):
        ember.save(a, tmp_path / "cycle.safetensors")


def test_save_of_a_dict_that_contains_itself(tmp_path):
    d = {"x": ember.ones(2)}
    d["self"] = d
    with pytest.raises(SerializationError, match="cycle"):
        ember.save({"ckpt": d}, tmp_path / "cycle.safetensors")


def test_module_reachable_from_its_own_attribute_is_a_reference():
    # modules may refer back to themselves (as pickle allows): stored as a reference
    parent = nn.Sequential(nn.Linear(2, 2))
    parent[0].owner = [parent]  # a plain attribute, not a submodule
    buf = io.BytesIO()
    ember.save(parent, buf)
    loaded = ember.load(io.BytesIO(buf.getvalue()))
    assert loaded[0].owner[0] is loaded


# ---- numbers -------------------------------------------------------------------------------


def test_crafted_5000_digit_integer_in_the_structure(tmp_path):
    message = load_error(structured('{"list": [' + "7" * 5000 + "]}"), tmp_path)
    assert "integer of 5000 digits" in message


def test_crafted_5000_digit_integer_in_the_header(tmp_path):
    header = b'{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, ' + b"9" * 5000 + b"]}}"
    message = load_error(raw_file(header), tmp_path)
    assert "integer of 5000 digits" in message


def test_saving_a_5000_digit_integer_round_trips(tmp_path):
    big = -(10**5000) + 12345
    ember.save({"n": big, "w": ember.ones(1)}, tmp_path / "big.safetensors")
    assert ember.load(tmp_path / "big.safetensors")["n"] == big


def test_crafted_bad_hex_integer(tmp_path):
    message = load_error(structured('{"int": "12; import os"}'), tmp_path)
    assert "bad int" in message


# ---- file handles --------------------------------------------------------------------------


def test_load_from_a_text_mode_handle(tmp_path):
    path = tmp_path / "m.safetensors"
    path.write_bytes(module_file())
    with open(path) as f, pytest.raises(SerializationError, match="text mode.*'rb'"):
        ember.load(f)
    with open(path, encoding="latin-1") as f, pytest.raises(SerializationError, match="'rb'"):
        ember.load(f)
    with pytest.raises(SerializationError, match="text mode"):
        ember.load(io.StringIO("not binary"))


def test_save_to_a_text_mode_handle(tmp_path):
    with (
        open(tmp_path / "t.safetensors", "w") as f,
        pytest.raises(SerializationError, match="text mode.*'wb'"),
    ):
        ember.save({"w": ember.ones(2)}, f)
    with pytest.raises(SerializationError, match="text mode"):
        ember.save(nn.Linear(2, 2), io.StringIO())


# ---- truncation and magic ------------------------------------------------------------------


@pytest.mark.parametrize("fraction", [0.0, 0.001, 0.01, 0.1, 0.5, 0.9, 0.999])
def test_truncated_module_file(tmp_path, fraction):
    data = module_file()
    message = load_error(data[: int(len(data) * fraction)], tmp_path)
    assert "not a valid safetensors file" in message


def test_every_truncation_of_a_module_file_is_a_clear_error():
    data = module_file()
    for cut in range(0, len(data), 3):
        with pytest.raises(SerializationError):
            ember.load(io.BytesIO(data[:cut]))


@pytest.mark.parametrize(
    "data, expected",
    [
        (b"", "too short"),
        (b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + b"\x00" * 40, "zip archive"),
        (b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00}\x94.", "header length"),
        (struct.pack("<Q", 6) + b"[1, 2]", "wrong magic"),
        (struct.pack("<Q", 4) + b"null", "wrong magic"),
        (struct.pack("<Q", 2) + b"{}" + b"junk", "belong to no tensor"),
    ],
    ids=["empty", "zip", "pickle", "json-array", "json-null", "trailing-bytes"],
)
def test_wrong_magic(tmp_path, data, expected):
    assert expected in load_error(data, tmp_path)


# ---- sizes a header claims -------------------------------------------------------------------


def _entry(dtype="F32", shape=(2,), offsets=(0, 8)):
    return {"dtype": dtype, "shape": list(shape), "data_offsets": list(offsets)}


@pytest.mark.parametrize(
    "header, body, expected",
    [
        (None, b"", "header length field says"),
        ({"a": _entry(shape=[2**40, 2**40], offsets=[0, 8])}, b"\0" * 8, "larger than any array"),
        ({"a": _entry(shape=[0, 2**62], offsets=[0, 0])}, b"", "larger than any array"),
        ({"a": _entry(offsets=[0, 2**60])}, b"\0" * 8, "the file is truncated"),
        ({"a": _entry(offsets=[8, 0])}, b"\0" * 8, "end before they start"),
        ({"a": _entry(offsets=[-8, 0])}, b"\0" * 8, "non-negative"),
        ({"a": _entry(offsets=[0, 8.0])}, b"\0" * 8, "non-negative integers"),
        ({"a": _entry(offsets=[0])}, b"\0" * 8, "pair"),
    ],
    ids=["header-length", "huge-shape", "zero-by-huge", "huge-offset", "reversed", "negative",
         "float-offset", "one-offset"],
)  # fmt: skip
def test_header_claiming_impossible_sizes(tmp_path, header, body, expected):
    data = struct.pack("<Q", 2**63 - 1) + b"{}" if header is None else raw_file(header, body)
    assert expected in load_error(data, tmp_path)


@pytest.mark.parametrize(
    "header, body, expected",
    [
        ({"a": _entry(offsets=[0, 8]), "b": _entry(offsets=[4, 12])}, 12, "overlap"),
        ({"a": _entry(offsets=[0, 8]), "b": _entry(offsets=[0, 8])}, 8, "overlap"),
        ({"a": _entry(offsets=[0, 8]), "b": _entry(offsets=[12, 20])}, 20, "bytes 8..12 of the data section belong to no tensor"),
        ({"a": _entry(offsets=[0, 8])}, 4, "truncated"),
    ],
    ids=["partial-overlap", "same-range", "hole", "past-the-end"],
)  # fmt: skip
def test_byte_ranges(tmp_path, header, body, expected):
    assert expected in load_error(raw_file(header, b"\0" * body), tmp_path)


@pytest.mark.parametrize(
    "entry, expected",
    [
        (_entry(dtype="C64"), "dtype 'C64', which ember does not support"),
        (_entry(dtype=["F32"]), "does not support"),
        (_entry(shape=[3]), "F32 of shape [3], which takes 12 bytes, but its data_offsets [0, 8] hold 8"),
        (_entry(dtype="F64"), "F64 of shape [2], which takes 16 bytes"),
        (_entry(shape=[-2]), "non-negative integers"),
        (_entry(shape=[2.0]), "non-negative integers"),
        (_entry(shape=[True, 2]), "non-negative integers"),
        (_entry(shape=[1] * 65), "at most 64"),
        ({"dtype": "F32", "shape": [2]}, "lacks dtype, shape or data_offsets"),
        ([1, 2], "lacks dtype, shape or data_offsets"),
    ],
    ids=["unknown-dtype", "dtype-list", "shape-too-big", "dtype-too-big", "negative-dim",
         "float-dim", "bool-dim", "too-many-dims", "no-offsets", "not-an-object"],
)  # fmt: skip
def test_dtype_and_shape_mismatches(tmp_path, entry, expected):
    assert expected in load_error(raw_file({"a": entry}, b"\0" * 8), tmp_path)


def test_non_utf8_metadata(tmp_path):
    header = b'{"__metadata__": {"note": "caf\xe9"}}'
    message = load_error(raw_file(header), tmp_path)
    assert "not UTF-8" in message and "0xe9" in message


@pytest.mark.parametrize(
    "metadata", [{"ember.structure": 3}, [1], {"k": {"nested": "x"}}], ids=["int", "list", "dict"]
)
def test_metadata_of_strings_only(tmp_path, metadata):
    assert "__metadata__" in load_error(raw_file({"__metadata__": metadata}), tmp_path)


# ---- crafted module structures -------------------------------------------------------------

_LINEAR = "ember.frontend.nn.modules.linear.Linear"


def _module(attrs, cls=_LINEAR, index=0):
    return json.dumps({"module": {"class": cls, "id": index, "attrs": attrs}})


@pytest.mark.parametrize(
    "text, expected",
    [
        (_module([], index=3), "module id 3 is out of sequence"),
        (_module([["_modules", {"odict": [["x", {"module_ref": 5}]]}]]), "refers to module 5"),
        (_module([["_parameters", {"odict": [["weight", {"tensor": "t0"}]]}]]), "_parameters['weight'] is a Tensor, not a Parameter"),
        (_module([["_buffers", {"odict": [["b", 1.5]]}]]), "_buffers['b'] is a float"),
        (_module([["_modules", {"odict": [["m", {"list": []}]]}]]), "not a Module"),
        (_module([["_forward_hooks", {"odict": [[1, "print"]]}]]), "cannot hold hooks"),
        (_module([["training", "yes"]]), "training is 'yes', not a bool"),
        (_module([["_parameters", {"list": []}]]), "_parameters is a list, not a dict"),
        (_module([["_non_persistent_buffers_set", {"set": [1]}]]), "not a set of names"),
        (_module([["a", {"param": {"tensor": "t0", "requires_grad": True}}],
                  ["b", {"param": {"tensor": "t0", "requires_grad": False}}]]), "requires_grad true and false"),
        (_module([["x", {"dtype": "complex128"}]]), "unknown dtype"),
        (_module([["x", {"device": "tpu"}]]), "bad device"),
        (_module([[1, 2]]), "not a [name, value] pair"),
        (json.dumps({"module": {"class": _LINEAR}}), "bad module node"),
        (json.dumps({"pickle": "os.system"}), "unknown node kind 'pickle'"),
        (json.dumps({"set": [{"list": []}]}), "unhashable"),
    ],
    ids=["id-sequence", "forward-ref", "param-not-parameter", "buffer-not-tensor",
         "submodule-not-module", "hooks", "training", "store-not-dict", "nonpersistent-set",
         "requires-grad-conflict", "dtype", "device", "attr-pair", "module-node", "kind",
         "unhashable"],
)  # fmt: skip
def test_crafted_module_structures(tmp_path, text, expected):
    message = load_error(structured(text, {"t0": np.ones(2)}), tmp_path)
    assert "corrupt ember structure" in message and expected in message


def test_missing_module_internals_get_their_defaults(tmp_path):
    # a file from a version whose Module had fewer internals still loads
    path = tmp_path / "old.safetensors"
    attrs = [["in_features", 2], ["out_features", 1],
             ["_parameters", {"odict": [["weight", {"param": {"tensor": "t0", "requires_grad": True}}],
                                        ["bias", None]]}]]  # fmt: skip
    path.write_bytes(structured(_module(attrs), {"t0": np.ones((1, 2))}))
    layer = ember.load(path)
    assert isinstance(layer, nn.Linear) and layer.training is True
    assert layer(ember.ones(3, 2)).tolist() == [[2.0], [2.0], [2.0]]
    assert list(layer.state_dict()) == ["weight"]


# ---- nothing half-loaded -------------------------------------------------------------------


def test_failed_load_leaves_the_model_untouched(tmp_path):
    ember.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ember.manual_seed(1)
    other = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))
    path = tmp_path / "sd.safetensors"
    ember.save(other.state_dict(), path)
    data = path.read_bytes()
    for broken in (data[:-3], data[:40], data.replace(b'"F32"', b'"X32"', 1)):
        path.write_bytes(broken)
        with pytest.raises(SerializationError):
            model.load_state_dict(ember.load(path))
        for k, v in model.state_dict().items():
            assert v._data.tobytes() == before[k]._data.tobytes(), k


def test_a_failure_late_in_a_file_returns_nothing(tmp_path):
    # the last module of the structure is broken: load raises, no partial object escapes
    good = json.loads(_module([]))
    bad = json.loads(_module([["training", 3]], index=1))
    text = json.dumps({"list": [good, bad]})
    message = load_error(structured(text), tmp_path)
    assert "training is 3, not a bool" in message


# ---- random corruption -------------------------------------------------------------------------


def test_random_corruptions_of_a_module_file_load_or_fail_clearly():
    data = module_file()
    rng = random.Random(0)
    outcomes = {"loaded": 0, "refused": 0}
    for _ in range(400):
        corrupt = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            position = rng.randrange(len(corrupt))
            corrupt[position] = rng.choice(
                b'{}[]",:0123456789 \x00\xff' + bytes([rng.randrange(256)])
            )
        try:
            ember.load(io.BytesIO(bytes(corrupt)))
            outcomes["loaded"] += 1
        except SerializationError:
            outcomes["refused"] += 1
    assert outcomes["refused"] > 100  # most corruptions break the header or the structure


_REPLACEMENTS = [
    None, True, 3, -1, 2.5, "t0", [], {}, [[1, 2]], {"list": []}, {"tensor": "t0"},
    {"module_ref": 0}, {"param": {"tensor": "t1", "requires_grad": False}},
    {"odict": [["a", 1]]}, {"set": [1]}, {"int": "0x10"}, {"float": "nan"},
    {"dtype": "float32"}, {"device": "cpu"},
    {"module": {"class": "ember.frontend.nn.modules.linear.Identity", "id": 9, "attrs": []}},
]  # fmt: skip


def _nodes(node, out):
    out.append(node)
    for child in (
        node if isinstance(node, list) else node.values() if isinstance(node, dict) else ()
    ):
        _nodes(child, out)
    return out


def test_random_edits_of_a_module_structure_load_or_fail_clearly():
    ember.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ModuleList([nn.ReLU()]))
    buf = io.BytesIO()
    ember.save({"m": model, "x": [1, (2, 3.5), {"a": None}], "s": {1, 2}}, buf)
    data = buf.getvalue()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    meta = header.pop("__metadata__")
    rng = random.Random(0)
    refused = 0
    for _ in range(300):
        structure = json.loads(meta["ember.structure"])
        for _ in range(rng.randint(1, 3)):
            candidates = [x for x in _nodes(structure, []) if isinstance(x, list | dict) and x]
            if not candidates:
                break
            parent = rng.choice(candidates)
            key = (
                rng.randrange(len(parent)) if isinstance(parent, list) else rng.choice(list(parent))
            )
            if rng.random() < 0.7:
                parent[key] = json.loads(json.dumps(rng.choice(_REPLACEMENTS)))
            else:
                del parent[key]
        edited = dict(header, __metadata__=dict(meta, **{"ember.structure": json.dumps(structure)}))
        try:
            ember.load(raw_file(edited, data[8 + n :]))
        except SerializationError:
            refused += 1
    assert refused > 200
