"""ember.utils.data against torch.utils.data: batching, samplers, collation, datasets.

Orders drawn at random differ from torch's (the generators differ), so shuffling is checked
for its semantics (reproducible with a seed, a permutation every epoch); everything
deterministic is compared with torch's output directly.
"""

import collections
import warnings

import numpy as np
import pytest
import torch
import torch.utils.data as tud

import ember
import ember.utils.data as eud


def to_py(x):
    """A batch as plain Python/numpy, with each tensor tagged by its dtype name."""
    if isinstance(x, ember.Tensor):
        return ("tensor", x.dtype.name, tuple(x.shape), x.numpy().tolist())
    if isinstance(x, torch.Tensor):
        return ("tensor", str(x.dtype).removeprefix("torch."), tuple(x.shape), x.numpy().tolist())
    if isinstance(x, dict):
        return (type(x).__name__, {k: to_py(v) for k, v in x.items()})
    if isinstance(x, tuple) and hasattr(x, "_fields"):
        return (type(x).__name__, [to_py(v) for v in x])
    if isinstance(x, list | tuple):
        return (type(x).__name__, [to_py(v) for v in x])
    return x


class Squares(eud.Dataset):
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if not 0 <= i < self.n:
            raise IndexError(i)
        return i * i


class TorchSquares(tud.Dataset):
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return i * i


# ---- batching ----------------------------------------------------------------------------


@pytest.mark.parametrize("n,batch_size,drop_last", [(10, 3, False), (10, 3, True), (9, 3, True),
                                                    (5, 8, False), (5, 8, True), (7, 1, False)])  # fmt: skip
def test_batching_matches_torch(n, batch_size, drop_last):
    x = np.arange(n * 2, dtype=np.float32).reshape(n, 2)
    y = np.arange(n)
    eds = eud.TensorDataset(ember.tensor(x), ember.tensor(y))
    tds = tud.TensorDataset(torch.tensor(x), torch.tensor(y))
    edl = eud.DataLoader(eds, batch_size=batch_size, drop_last=drop_last)
    tdl = tud.DataLoader(tds, batch_size=batch_size, drop_last=drop_last)
    assert len(edl) == len(tdl)
    eb, tb = [to_py(b) for b in edl], [to_py(b) for b in tdl]
    assert eb == tb
    assert len(eb) == len(tdl)


def test_batch_size_none_disables_batching():
    eds, tds = Squares(4), TorchSquares(4)
    eb = list(eud.DataLoader(eds, batch_size=None))
    tb = list(tud.DataLoader(tds, batch_size=None))
    assert eb == tb == [0, 1, 4, 9]
    assert len(eud.DataLoader(eds, batch_size=None)) == 4
    # numpy samples are converted (default_convert), not batched
    arr = [np.arange(3, dtype=np.int32) + i for i in range(2)]
    eb = list(eud.DataLoader(arr, batch_size=None))
    tb = list(tud.DataLoader(arr, batch_size=None))
    assert [to_py(b) for b in eb] == [to_py(b) for b in tb]


def test_num_workers_gives_the_same_batches():
    x = ember.arange(23)
    ds = eud.TensorDataset(x)
    a = [b[0].tolist() for b in eud.DataLoader(ds, batch_size=4, num_workers=0)]
    b = [b[0].tolist() for b in eud.DataLoader(ds, batch_size=4, num_workers=3)]
    assert a == b
    g1, g2 = ember.Generator().manual_seed(5), ember.Generator().manual_seed(5)
    a = [b[0].tolist() for b in eud.DataLoader(ds, batch_size=4, shuffle=True, generator=g1)]
    b = [b[0].tolist() for b in eud.DataLoader(ds, batch_size=4, shuffle=True, generator=g2,
                                                num_workers=2, persistent_workers=True)]  # fmt: skip
    assert a == b
    assert eud.get_worker_info() is None


# ---- shuffling ---------------------------------------------------------------------------


def _epoch(dl):
    return [i for b in dl for i in b[0].tolist()]


def test_shuffle_is_a_permutation_each_epoch_and_reproducible():
    n = 37
    ds = eud.TensorDataset(ember.arange(n))
    g = ember.Generator().manual_seed(123)
    dl = eud.DataLoader(ds, batch_size=5, shuffle=True, generator=g)
    epochs = [_epoch(dl) for _ in range(3)]
    for e in epochs:
        assert sorted(e) == list(range(n))
    assert epochs[0] != epochs[1] != epochs[2]
    assert epochs[0] != list(range(n))
    g.manual_seed(123)
    assert [_epoch(dl) for _ in range(3)] == epochs


def test_shuffle_with_manual_seed_and_default_generator():
    ds = eud.TensorDataset(ember.arange(20))
    ember.manual_seed(7)
    a = [_epoch(eud.DataLoader(ds, batch_size=3, shuffle=True)) for _ in range(2)]
    ember.manual_seed(7)
    b = [_epoch(eud.DataLoader(ds, batch_size=3, shuffle=True)) for _ in range(2)]
    assert a == b and a[0] != a[1]
    ember.manual_seed(8)
    assert _epoch(eud.DataLoader(ds, batch_size=3, shuffle=True)) != a[0]


def test_shuffle_order_unaffected_by_draws_during_iteration():
    ds = eud.TensorDataset(ember.arange(30))
    ember.manual_seed(0)
    a = _epoch(eud.DataLoader(ds, batch_size=4, shuffle=True))
    ember.manual_seed(0)
    b = []
    for batch in eud.DataLoader(ds, batch_size=4, shuffle=True):
        ember.rand(10)  # e.g. dropout in the training step
        b.extend(batch[0].tolist())
    assert a == b


def test_shuffle_drop_last_covers_distinct_indices():
    ds = eud.TensorDataset(ember.arange(10))
    dl = eud.DataLoader(ds, batch_size=3, shuffle=True, drop_last=True,
                        generator=ember.Generator().manual_seed(1))  # fmt: skip
    batches = [b[0].tolist() for b in dl]
    assert len(batches) == len(dl) == 3
    flat = [i for b in batches for i in b]
    assert len(set(flat)) == 9


# ---- collation ---------------------------------------------------------------------------

Point = collections.namedtuple("Point", ["x", "y"])

COLLATE_CASES = {
    "ints": [1, 2, 3],
    "floats": [1.5, 2.0, -3.25],
    "bools": [True, False, True],
    "strings": ["a", "bc", "d"],
    "bytes": [b"a", b"b"],
    "numpy_scalars_f32": [np.float32(1.5), np.float32(2)],
    "numpy_scalars_f64": [np.float64(1.5), np.float64(2)],
    "numpy_scalars_i64": [np.int64(3), np.int64(4)],
    "numpy_scalars_i32": [np.int32(3), np.int32(4)],
    "numpy_bool": [np.bool_(True), np.bool_(False)],
    "numpy_arrays_f32": [np.ones((2, 3), np.float32), np.zeros((2, 3), np.float32)],
    "numpy_arrays_f64": [np.arange(3.0), np.arange(3.0) * 2],
    "numpy_arrays_i64": [np.arange(4), np.arange(4) + 1],
    "numpy_arrays_bool": [np.array([True, False]), np.array([False, False])],
    "numpy_0d": [np.array(1.5), np.array(2.5)],
    "tuples": [(1, 2.0, "a"), (3, 4.0, "b")],
    "lists": [[1, 2], [3, 4]],
    "dicts": [{"a": 1, "b": 2.5, "c": "x"}, {"a": 3, "b": 4.5, "c": "y"}],
    "nested": [
        {"a": (1, [2.0, 3.0]), "b": {"c": np.float32(1)}},
        {"a": (4, [5.0, 6.0]), "b": {"c": np.float32(2)}},
    ],  # fmt: skip
    "namedtuple": [Point(1, 2.0), Point(3, 4.0)],
    "ordered_dict": [collections.OrderedDict(z=1, a=2), collections.OrderedDict(z=3, a=4)],
}


def _to_framework(sample, fw):
    if isinstance(sample, dict):
        return type(sample)((k, _to_framework(v, fw)) for k, v in sample.items())
    if isinstance(sample, tuple) and hasattr(sample, "_fields"):
        return type(sample)(*(_to_framework(v, fw) for v in sample))
    if isinstance(sample, list | tuple):
        return type(sample)(_to_framework(v, fw) for v in sample)
    if isinstance(sample, str) and sample.startswith("T:"):
        arr = np.arange(6, dtype=np.float32).reshape(2, 3) * float(sample[2:])
        return ember.tensor(arr) if fw == "ember" else torch.tensor(arr)
    return sample


@pytest.mark.parametrize("name", list(COLLATE_CASES))
def test_default_collate_matches_torch(name):
    batch = COLLATE_CASES[name]
    assert to_py(eud.default_collate(batch)) == to_py(tud.default_collate(batch))


@pytest.mark.parametrize(
    "batch",
    [
        ["T:1", "T:2"],
        [("T:1", 3), ("T:2", 4)],
        [{"img": "T:1", "label": 0}, {"img": "T:3", "label": 1}],
    ],
    ids=["tensors", "tensor_tuples", "tensor_dicts"],
)
def test_default_collate_tensors_matches_torch(batch):
    ebatch = [_to_framework(s, "ember") for s in batch]
    tbatch = [_to_framework(s, "torch") for s in batch]
    assert to_py(eud.default_collate(ebatch)) == to_py(tud.default_collate(tbatch))


def test_default_collate_tensor_dtypes_kept():
    for dt in [ember.float16, ember.bfloat16, ember.int8, ember.int32, ember.bool]:
        out = eud.default_collate([ember.zeros(2, dtype=dt), ember.ones(2, dtype=dt)])
        assert out.dtype is dt and tuple(out.shape) == (2, 2)


def test_default_collate_errors_like_torch():
    with pytest.raises(RuntimeError, match="each element in list of batch should be of equal size"):
        eud.default_collate([[1, 2], [3]])
    with pytest.raises(TypeError, match="default_collate: batch must contain"):
        eud.default_collate([object(), object()])
    with pytest.raises(TypeError, match="default_collate: batch must contain"):
        eud.default_collate([np.array(["a"]), np.array(["b"])])


@pytest.mark.parametrize("name", ["numpy_arrays_f32", "dicts", "tuples", "nested", "numpy_0d"])
def test_default_convert_matches_torch(name):
    for sample in COLLATE_CASES[name]:
        assert to_py(eud.default_convert(sample)) == to_py(tud.default_convert(sample))


def test_loader_with_dict_samples_and_custom_collate():
    data = [{"x": np.full(2, i, np.float32), "y": i} for i in range(5)]
    eb = [to_py(b) for b in eud.DataLoader(data, batch_size=2)]
    tb = [to_py(b) for b in tud.DataLoader(data, batch_size=2)]
    assert eb == tb
    out = list(eud.DataLoader(data, batch_size=2, collate_fn=lambda b: [d["y"] for d in b]))
    assert out == [[0, 1], [2, 3], [4]]


# ---- samplers ----------------------------------------------------------------------------


def test_sequential_and_batch_sampler_match_torch():
    assert list(eud.SequentialSampler(range(5))) == list(tud.SequentialSampler(range(5)))
    for drop_last in (False, True):
        e = eud.BatchSampler(eud.SequentialSampler(range(10)), 4, drop_last)
        t = tud.BatchSampler(tud.SequentialSampler(range(10)), 4, drop_last)
        assert list(e) == list(t) and len(e) == len(t)
    with pytest.raises(ValueError, match="batch_size should be a positive integer"):
        eud.BatchSampler(range(3), 0, False)
    with pytest.raises(ValueError, match="drop_last should be a boolean"):
        eud.BatchSampler(range(3), 2, 1)


def test_random_sampler():
    g = ember.Generator().manual_seed(0)
    s = eud.RandomSampler(range(10), generator=g)
    assert sorted(s) == list(range(10)) and len(s) == 10
    s = eud.RandomSampler(range(10), num_samples=25, generator=g)
    out = list(s)
    assert len(out) == len(s) == 25
    assert sorted(out[:10]) == sorted(out[10:20]) == list(range(10))
    assert len(set(out[20:])) == 5
    s = eud.RandomSampler(range(4), replacement=True, num_samples=70, generator=g)
    out = list(s)
    assert len(out) == 70 and set(out) <= set(range(4)) and len(set(out)) == 4
    g1, g2 = ember.Generator().manual_seed(9), ember.Generator().manual_seed(9)
    assert list(eud.RandomSampler(range(50), generator=g1)) == list(
        eud.RandomSampler(range(50), generator=g2)
    )
    with pytest.raises(ValueError, match="num_samples should be a positive integer"):
        eud.RandomSampler(range(3), num_samples=0)
    with pytest.raises(TypeError, match="replacement should be a boolean"):
        eud.RandomSampler(range(3), replacement=1)


def test_subset_random_sampler():
    idx = [3, 7, 11, 20]
    s = eud.SubsetRandomSampler(idx, generator=ember.Generator().manual_seed(2))
    assert sorted(s) == idx and len(s) == 4


def test_weighted_random_sampler():
    g = ember.Generator().manual_seed(4)
    s = eud.WeightedRandomSampler([0.0, 1.0, 3.0, 0.0], 4000, generator=g)
    out = np.array(list(s))
    assert len(out) == 4000 and set(out.tolist()) == {1, 2}
    assert 0.7 < (out == 2).mean() < 0.8
    s = eud.WeightedRandomSampler([0.1, 0.0, 5.0, 1.0], 3, replacement=False, generator=g)
    out = list(s)
    assert sorted(out) == [0, 2, 3]
    with pytest.raises(RuntimeError):
        list(eud.WeightedRandomSampler([1.0, 0.0], 2, replacement=False))
    with pytest.raises(ValueError, match="weights should be a 1d sequence"):
        eud.WeightedRandomSampler([[1.0]], 2)


def test_loader_with_sampler_and_batch_sampler():
    ds = Squares(10)
    sampler = eud.SubsetRandomSampler([1, 3, 5], generator=ember.Generator().manual_seed(0))
    out = [b.tolist() for b in eud.DataLoader(ds, batch_size=2, sampler=sampler)]
    assert sorted(x for b in out for x in b) == [1, 9, 25]
    bs = [[0, 1], [5, 6, 7], [9]]
    eb = [to_py(b) for b in eud.DataLoader(ds, batch_sampler=bs)]
    tb = [to_py(b) for b in tud.DataLoader(TorchSquares(10), batch_sampler=bs)]
    assert eb == tb
    assert len(eud.DataLoader(ds, batch_sampler=bs)) == 3


def test_loader_argument_errors_like_torch():
    ds = Squares(4)
    with pytest.raises(ValueError, match="sampler option is mutually exclusive with shuffle"):
        eud.DataLoader(ds, shuffle=True, sampler=eud.SequentialSampler(ds))
    with pytest.raises(ValueError, match="batch_sampler option is mutually exclusive"):
        eud.DataLoader(ds, batch_size=2, batch_sampler=[[0]])
    with pytest.raises(ValueError, match="mutually exclusive with drop_last"):
        eud.DataLoader(ds, batch_size=None, drop_last=True)
    with pytest.raises(ValueError, match="num_workers option should be non-negative"):
        eud.DataLoader(ds, num_workers=-1)
    with pytest.raises(ValueError, match="persistent_workers option needs num_workers > 0"):
        eud.DataLoader(ds, persistent_workers=True)
    dl = eud.DataLoader(ds, batch_size=2)
    with pytest.raises(ValueError, match="batch_size attribute should not be set"):
        dl.batch_size = 3


# ---- datasets ----------------------------------------------------------------------------


def test_tensor_dataset():
    x, y = ember.randn(5, 3), ember.arange(5)
    ds = eud.TensorDataset(x, y)
    assert len(ds) == 5
    xi, yi = ds[2]
    np.testing.assert_array_equal(xi.numpy(), x.numpy()[2])
    assert yi.item() == 2
    with pytest.raises(AssertionError, match="Size mismatch between tensors"):
        eud.TensorDataset(x, ember.arange(4))


def test_subset_and_concat_match_torch():
    e = eud.ConcatDataset([Squares(3), Squares(4), Squares(2)])
    t = tud.ConcatDataset([TorchSquares(3), TorchSquares(4), TorchSquares(2)])
    assert len(e) == len(t) == 9
    assert [e[i] for i in range(9)] == [t[i] for i in range(9)]
    assert [e[i] for i in range(-9, 0)] == [t[i] for i in range(-9, 0)]
    assert e.cumulative_sizes == t.cumulative_sizes
    with pytest.raises(ValueError, match="absolute value of index"):
        e[-10]
    with pytest.raises(IndexError):
        e[9]
    s = eud.Subset(Squares(10), [9, 2, 4])
    assert len(s) == 3 and [s[i] for i in range(3)] == [81, 4, 16]
    assert [b.tolist() for b in eud.DataLoader(s, batch_size=2)] == [[81, 4], [16]]
    added = Squares(2) + Squares(3)
    assert isinstance(added, eud.ConcatDataset) and len(added) == 5
    with pytest.raises(AssertionError, match="does not support IterableDataset"):
        eud.ConcatDataset([Squares(1), Stream(3)])


def test_stack_dataset():
    s = eud.StackDataset(Squares(3), Squares(3))
    assert s[2] == (4, 4) and len(s) == 3
    d = eud.StackDataset(a=Squares(2), b=Squares(2))
    assert d[1] == {"a": 1, "b": 1}


@pytest.mark.parametrize(
    "lengths", [[3, 7], [0.3, 0.7], [0.5, 0.25, 0.25], [1, 1, 8], [0.33, 0.33, 0.34]]
)
def test_random_split_sizes_and_disjointness(lengths):
    n = 10
    ds = Squares(n)
    g = ember.Generator().manual_seed(42)
    parts = eud.random_split(ds, lengths, generator=g)
    tparts = tud.random_split(TorchSquares(n), lengths, generator=torch.Generator().manual_seed(0))
    assert [len(p) for p in parts] == [len(p) for p in tparts]
    idx = [i for p in parts for i in p.indices]
    assert sorted(idx) == list(range(n))
    assert all(isinstance(p, eud.Subset) for p in parts)
    again = eud.random_split(ds, lengths, generator=ember.Generator().manual_seed(42))
    assert [p.indices for p in again] == [p.indices for p in parts]


def test_random_split_errors_and_default_generator():
    with pytest.raises(ValueError, match="Sum of input lengths does not equal"):
        eud.random_split(Squares(10), [3, 3])
    with pytest.raises(ValueError, match="Fraction at index 0 is not between 0 and 1"):
        eud.random_split(Squares(10), [1.5, -0.5])
    ember.manual_seed(3)
    a = [p.indices for p in eud.random_split(range(8), [4, 4])]
    ember.manual_seed(3)
    b = [p.indices for p in eud.random_split(range(8), [4, 4])]
    assert a == b
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        eud.random_split(range(2), [0.0, 1.0])
    assert any("Length of split at index 0 is 0" in str(x.message) for x in w)


class Stream(eud.IterableDataset):
    def __init__(self, n):
        self.n = n

    def __iter__(self):
        return iter(range(self.n))

    def __len__(self):
        return self.n


class TorchStream(tud.IterableDataset):
    def __init__(self, n):
        self.n = n

    def __iter__(self):
        return iter(range(self.n))

    def __len__(self):
        return self.n


@pytest.mark.parametrize("batch_size,drop_last", [(3, False), (3, True), (4, True), (1, False),
                                                  (None, False), (20, False), (20, True)])  # fmt: skip
def test_iterable_dataset_matches_torch(batch_size, drop_last):
    edl = eud.DataLoader(Stream(8), batch_size=batch_size, drop_last=drop_last)
    tdl = tud.DataLoader(TorchStream(8), batch_size=batch_size, drop_last=drop_last)
    assert [to_py(b) for b in edl] == [to_py(b) for b in tdl]
    assert len(edl) == len(tdl)
    # a second epoch iterates the stream again
    assert [to_py(b) for b in edl] == [to_py(b) for b in tdl]


def test_iterable_dataset_rejects_shuffle_and_samplers():
    with pytest.raises(ValueError, match="expected unspecified shuffle option"):
        eud.DataLoader(Stream(3), shuffle=True)
    with pytest.raises(ValueError, match="expected unspecified sampler option"):
        eud.DataLoader(Stream(3), sampler=[0, 1])
    with pytest.raises(ValueError, match="expected unspecified batch_sampler option"):
        eud.DataLoader(Stream(3), batch_sampler=[[0]])


def test_chain_dataset():
    chained = Stream(2) + Stream(3)
    assert isinstance(chained, eud.ChainDataset)
    assert list(chained) == [0, 1, 0, 1, 2] and len(chained) == 5
    assert [b.tolist() for b in eud.DataLoader(chained, batch_size=2)] == [[0, 1], [0, 1], [2]]


def test_training_loop_end_to_end():
    # a PyTorch-style loop: dataset -> loader -> model -> optimizer
    import ember.nn as nn
    import ember.optim as optim

    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 3)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5], np.float32) + 0.3).astype(np.float32)
    ds = eud.TensorDataset(ember.tensor(x), ember.tensor(y))
    w = nn.Parameter(ember.zeros(3))
    b = nn.Parameter(ember.zeros(()))
    opt = optim.SGD([w, b], lr=0.1)
    loader = eud.DataLoader(ds, batch_size=8, shuffle=True,
                            generator=ember.Generator().manual_seed(0))  # fmt: skip
    for _ in range(30):
        for xb, yb in loader:
            opt.zero_grad()
            loss = ((xb @ w + b - yb) ** 2).mean()
            loss.backward()
            opt.step()
    np.testing.assert_allclose(w.detach().numpy(), [1.0, -2.0, 0.5], atol=1e-3)
    assert abs(b.item() - 0.3) < 1e-3
