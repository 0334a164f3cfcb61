"""DataLoader: batching, shuffling with a seeded generator, drop_last, default collation.

The semantics are ``torch.utils.data.DataLoader``'s for map-style and iterable datasets, with
``default_collate``/``default_convert`` producing ember tensors of the dtypes PyTorch gives
(Python floats become float64, ints int64, numpy arrays keep their dtype). Loading always runs
in the calling process: ``num_workers > 0`` is accepted and yields exactly the batches
``num_workers=0`` yields (for an `IterableDataset` that means one copy of the stream, where
PyTorch's workers would each replay it unless the dataset splits itself with
``get_worker_info``; here ``get_worker_info()`` is always None).
"""

from __future__ import annotations

import collections.abc
import copy
import itertools
import math
import re

import numpy as np

from ....ir import dtypes as D
from ...ops.creation import as_tensor, tensor
from ...ops.shape import stack
from ...tensor import Tensor
from .dataset import IterableDataset
from .sampler import BatchSampler, RandomSampler, SequentialSampler

__all__ = ["DataLoader", "default_collate", "default_convert", "get_worker_info"]

_np_str_obj_array_pattern = re.compile(r"[SaUO]")

_default_collate_err_msg_format = (
    "default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; found {}"
)


def get_worker_info():
    """Always None: ember's DataLoader loads in the calling process."""
    return None


_EMBER_NP = {d.np for d in D.ALL_DTYPES}


def _numpy_to_tensor(data) -> Tensor:
    """``torch.as_tensor`` of numpy data: shares memory when ember has the dtype, else a
    lossless wider copy (uint16 -> int32, uint32 -> int64)."""
    arr = np.asarray(data)
    if arr.dtype in _EMBER_NP:
        return as_tensor(arr)
    native = arr.dtype.newbyteorder("=")
    try:
        dtype = D.from_numpy(native)
    except TypeError:
        raise TypeError(
            f"default_collate: numpy arrays of dtype {arr.dtype} have no ember dtype"
        ) from None
    return Tensor._make(arr.astype(dtype.np))


def _is_numpy(elem) -> bool:
    return isinstance(elem, np.ndarray | np.bool_ | np.number | np.object_)


def default_convert(data):
    """Convert numpy arrays and scalars inside ``data`` to tensors (used when batching is off)."""
    elem_type = type(data)
    if isinstance(data, Tensor):
        return data
    if _is_numpy(data):
        if isinstance(data, np.ndarray) and _np_str_obj_array_pattern.search(data.dtype.str):
            return data
        return _numpy_to_tensor(data)
    if isinstance(data, collections.abc.Mapping):
        try:
            if isinstance(data, collections.abc.MutableMapping):
                clone = copy.copy(data)
                clone.update({key: default_convert(data[key]) for key in data})
                return clone
            return elem_type({key: default_convert(data[key]) for key in data})
        except TypeError:
            return {key: default_convert(data[key]) for key in data}
    if isinstance(data, tuple) and hasattr(data, "_fields"):  # namedtuple
        return elem_type(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, collections.abc.Sequence) and not isinstance(data, str | bytes):
        try:
            if isinstance(data, collections.abc.MutableSequence):
                clone = copy.copy(data)
                for i, d in enumerate(data):
                    clone[i] = default_convert(d)
                return clone
            return elem_type([default_convert(d) for d in data])
        except TypeError:
            return [default_convert(d) for d in data]
    return data


def default_collate(batch):
    """Merge a list of samples into a batch, as PyTorch's ``default_collate`` does.

    Tensors are stacked along a new first dimension; numpy arrays become tensors and are
    stacked; numpy scalars become a 1-d tensor of their dtype; Python floats a float64 tensor,
    ints (and bools) an int64 (bool) tensor; strings and bytes stay a list; mappings, namedtuples
    and sequences are collated field by field (a tuple gives a list, as in PyTorch).
    """
    elem = batch[0]
    elem_type = type(elem)
    if isinstance(elem, Tensor):
        return stack(batch, 0)
    if isinstance(elem, np.ndarray):
        if _np_str_obj_array_pattern.search(elem.dtype.str) is not None:
            raise TypeError(_default_collate_err_msg_format.format(elem.dtype))
        return default_collate([_numpy_to_tensor(b) for b in batch])
    if isinstance(elem, np.bool_ | np.number | np.object_):
        return _numpy_to_tensor(np.asarray(batch))
    if isinstance(elem, float):
        return tensor(batch, dtype=D.float64)
    if isinstance(elem, int):  # bools too: a bool tensor, as torch.tensor([True, ...]) gives
        return tensor(batch)
    if isinstance(elem, str | bytes):
        return batch
    if isinstance(elem, collections.abc.Mapping):
        try:
            if isinstance(elem, collections.abc.MutableMapping):
                clone = copy.copy(elem)
                clone.update({key: default_collate([d[key] for d in batch]) for key in elem})
                return clone
            return elem_type({key: default_collate([d[key] for d in batch]) for key in elem})
        except TypeError:
            return {key: default_collate([d[key] for d in batch]) for key in elem}
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # namedtuple
        return elem_type(*(default_collate(samples) for samples in zip(*batch, strict=False)))
    if isinstance(elem, collections.abc.Sequence):
        it = iter(batch)
        elem_size = len(next(it))
        if not all(len(e) == elem_size for e in it):
            raise RuntimeError("each element in list of batch should be of equal size")
        transposed = list(zip(*batch, strict=False))
        if isinstance(elem, tuple):
            return [default_collate(samples) for samples in transposed]
        try:
            if isinstance(elem, collections.abc.MutableSequence):
                clone = copy.copy(elem)
                for i, samples in enumerate(transposed):
                    clone[i] = default_collate(samples)
                return clone
            return elem_type([default_collate(samples) for samples in transposed])
        except TypeError:
            return [default_collate(samples) for samples in transposed]
    raise TypeError(_default_collate_err_msg_format.format(elem_type))


class _InfiniteConstantSampler:
    """The sampler of an IterableDataset: yields None forever (the dataset drives iteration)."""

    def __iter__(self):
        while True:
            yield None


class DataLoader:
    """Iterate over a dataset in batches (``torch.utils.data.DataLoader``'s arguments).

    ``shuffle=True`` draws a new order every epoch from ``generator`` (or from a seed taken from
    ``ember.default_generator``); ``batch_size=None`` turns batching off (each sample goes
    through ``default_convert``); ``drop_last`` drops the final short batch.
    ``pin_memory``, ``timeout``, ``prefetch_factor``, ``persistent_workers`` and ``in_order`` are
    accepted for compatibility.
    """

    _FROZEN = ("batch_size", "batch_sampler", "sampler", "drop_last", "dataset",
               "persistent_workers")  # fmt: skip

    def __init__(
        self,
        dataset,
        batch_size: int | None = 1,
        shuffle: bool | None = None,
        sampler=None,
        batch_sampler=None,
        num_workers: int = 0,
        collate_fn=None,
        pin_memory: bool = False,
        drop_last: bool = False,
        timeout: float = 0,
        worker_init_fn=None,
        multiprocessing_context=None,
        generator=None,
        *,
        prefetch_factor: int | None = None,
        persistent_workers: bool = False,
        pin_memory_device: str = "",
        in_order: bool = True,
    ) -> None:
        if num_workers < 0:
            raise ValueError(
                "num_workers option should be non-negative; use num_workers=0 to disable "
                "multiprocessing."
            )
        if timeout < 0:
            raise ValueError("timeout option should be non-negative")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError(
                "prefetch_factor option could only be specified in multiprocessing.let "
                "num_workers > 0 to enable multiprocessing, otherwise set prefetch_factor to None."
            )
        if num_workers > 0 and prefetch_factor is None:
            prefetch_factor = 2
        elif prefetch_factor is not None and prefetch_factor < 0:
            raise ValueError("prefetch_factor option should be non-negative")
        if persistent_workers and num_workers == 0:
            raise ValueError("persistent_workers option needs num_workers > 0")

        self.dataset = dataset
        self.num_workers = num_workers
        self.prefetch_factor = prefetch_factor
        self.pin_memory = pin_memory
        self.pin_memory_device = pin_memory_device
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.multiprocessing_context = multiprocessing_context
        self.in_order = in_order

        if isinstance(dataset, IterableDataset):
            self._dataset_kind = "iterable"
            if shuffle not in {False, None}:
                raise ValueError(
                    "DataLoader with IterableDataset: expected unspecified shuffle option, but "
                    f"got shuffle={shuffle}"
                )
            if sampler is not None:
                raise ValueError(
                    "DataLoader with IterableDataset: expected unspecified sampler option, but "
                    f"got sampler={sampler}"
                )
            if batch_sampler is not None:
                raise ValueError(
                    "DataLoader with IterableDataset: expected unspecified batch_sampler option, "
                    f"but got batch_sampler={batch_sampler}"
                )
        else:
            shuffle = bool(shuffle)
            self._dataset_kind = "map"

        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")

        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError(
                    "batch_sampler option is mutually exclusive with batch_size, shuffle, "
                    "sampler, and drop_last"
                )
            batch_size = None
            drop_last = False
        elif batch_size is None and drop_last:
            raise ValueError(
                "batch_size=None option disables auto-batching and is mutually exclusive with "
                "drop_last"
            )

        if sampler is None:
            if self._dataset_kind == "iterable":
                sampler = _InfiniteConstantSampler()
            elif shuffle:
                sampler = RandomSampler(dataset, generator=generator)
            else:
                sampler = SequentialSampler(dataset)

        if batch_size is not None and batch_sampler is None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)

        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.generator = generator

        if collate_fn is None:
            collate_fn = default_collate if self._auto_collation else default_convert
        self.collate_fn = collate_fn
        self.persistent_workers = persistent_workers
        self.__initialized = True

    def __setattr__(self, attr, val) -> None:
        if self.__dict__.get("_DataLoader__initialized", False) and attr in self._FROZEN:
            raise ValueError(
                f"{attr} attribute should not be set after {self.__class__.__name__} is initialized"
            )
        super().__setattr__(attr, val)

    @property
    def _auto_collation(self) -> bool:
        return self.batch_sampler is not None

    @property
    def _index_sampler(self):
        return self.batch_sampler if self._auto_collation else self.sampler

    def __iter__(self):
        if self._dataset_kind == "iterable":
            return self._iter_iterable()
        return self._iter_map()

    def _fetch(self, index):
        dataset = self.dataset
        if self._auto_collation:
            getitems = getattr(dataset, "__getitems__", None)
            data = getitems(index) if callable(getitems) else [dataset[i] for i in index]
        else:
            data = dataset[index]
        return self.collate_fn(data)

    def _iter_map(self):
        for index in self._index_sampler:
            yield self._fetch(index)

    def _iter_iterable(self):
        it = iter(self.dataset)
        if not self._auto_collation:
            for sample in it:
                yield self.collate_fn(sample)
            return
        while True:
            data = list(itertools.islice(it, self.batch_size))
            if len(data) == 0 or (self.drop_last and len(data) < self.batch_size):
                return
            yield self.collate_fn(data)
            if len(data) < self.batch_size:
                return

    def __len__(self) -> int:
        if self._dataset_kind == "iterable":
            length = len(self.dataset)
            if self.batch_size is not None:
                length = length // self.batch_size if self.drop_last else math.ceil(
                    length / self.batch_size
                )  # fmt: skip
            return length
        return len(self._index_sampler)
