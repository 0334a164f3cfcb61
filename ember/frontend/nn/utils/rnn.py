"""nn.utils.rnn: PackedSequence and the functions that pack, pad and unpad variable-length
batches, with PyTorch's layouts and signatures.

A `PackedSequence` holds the time steps of a batch sorted by decreasing length, one after the
other: ``data`` is (sum of batch_sizes, *), and ``batch_sizes[t]`` is how many sequences are
longer than ``t``. ``sorted_indices`` (``unsorted_indices``) map the caller's batch order to
that sorted order (and back), or are None when the caller's batch was already sorted.

Packing and padding move rows with ``slice``, ``pad`` and ``concat``, so gradients flow through
them. The lengths are Python numbers (a lengths tensor is read once, as PyTorch requires it on
the CPU): they decide shapes, so a compiled function sees each set of lengths as a constant.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from ....ir import dtypes as D
from ....ir import ops as P
from ....ir.errors import ShapeError
from ...ops.common import describe
from ...ops.creation import tensor as _tensor
from ...ops.selection import index_select, sort
from ...ops.shape import cat, stack
from ...tensor import Tensor

__all__ = [
    "PackedSequence", "invert_permutation", "pack_padded_sequence", "pad_packed_sequence",
    "pad_sequence", "unpad_sequence", "pack_sequence", "unpack_sequence",
]  # fmt: skip


class _PackedSequenceBase(NamedTuple):
    data: Tensor
    batch_sizes: Tensor
    sorted_indices: Tensor | None
    unsorted_indices: Tensor | None


class PackedSequence(_PackedSequenceBase):
    """``(data, batch_sizes, sorted_indices, unsorted_indices)``; made by
    `pack_padded_sequence` and `pack_sequence`, consumed by nn.RNN/LSTM/GRU and
    `pad_packed_sequence`."""

    def __new__(cls, data, batch_sizes=None, sorted_indices=None, unsorted_indices=None):
        if unsorted_indices is None:
            unsorted_indices = invert_permutation(sorted_indices)
        if batch_sizes is None:
            if not (isinstance(data, (list, tuple)) and len(data) == 2):
                raise AssertionError("Expected data to be a list or tuple of length 2")
            data, batch_sizes = data
        return super().__new__(cls, data, batch_sizes, sorted_indices, unsorted_indices)

    def to(self, *args, **kwargs) -> PackedSequence:
        """``data.to(...)``; the index tensors follow data's device, batch_sizes stays."""
        data = self.data.to(*args, **kwargs)
        if data is self.data:
            return self

        def move(t):
            return None if t is None else t.to(data.device)

        return type(self)(data, self.batch_sizes, move(self.sorted_indices),
                          move(self.unsorted_indices))  # fmt: skip

    def cpu(self) -> PackedSequence:
        return self.to("cpu")

    def double(self) -> PackedSequence:
        return self.to(dtype=D.float64)

    def float(self) -> PackedSequence:
        return self.to(dtype=D.float32)

    def half(self) -> PackedSequence:
        return self.to(dtype=D.float16)

    def long(self) -> PackedSequence:
        return self.to(dtype=D.int64)

    def int(self) -> PackedSequence:
        return self.to(dtype=D.int32)

    @property
    def is_cuda(self) -> bool:
        return self.data.is_cuda


def invert_permutation(permutation):
    """The inverse of a permutation tensor (None stays None)."""
    if permutation is None:
        return None
    return sort(permutation).indices


def _int_list(op: str, lengths) -> list[int]:
    if isinstance(lengths, Tensor):
        if lengths.ndim != 1 or lengths.dtype.is_floating_point or lengths.dtype is D.bool_:
            raise ShapeError(
                op, f"'lengths' argument should be a 1D int64 tensor, but got {describe(lengths)}"
            )
        return [int(v) for v in lengths.tolist()]
    return [int(v) for v in lengths]


def batch_sizes_of(lengths: list[int]) -> list[int]:
    """``batch_sizes[t]``: how many of the (decreasing) ``lengths`` exceed ``t``."""
    return [sum(1 for n in lengths if n > t) for t in range(lengths[0] if lengths else 0)]


def pack_padded_sequence(input, lengths, batch_first: bool = False, enforce_sorted: bool = True):
    """Pack a padded batch (T, B, *) (or (B, T, *) with ``batch_first``) of sequences of the
    given ``lengths``. With ``enforce_sorted`` the lengths must decrease; otherwise the batch
    is sorted here and the permutation kept in the result."""
    op = "pack_padded_sequence"
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}(): argument 'input' must be Tensor, not {type(input).__name__}")
    lengths = _int_list(op, lengths)
    batch_dim = 0 if batch_first else 1
    if input.ndim < 2:
        raise ShapeError(op, f"expected input of at least 2 dims (T, B, *), got {describe(input)}")
    if len(lengths) != input.shape[batch_dim]:
        raise ShapeError(
            op,
            f"Expected `len(lengths)` to be equal to batch_size, but got {len(lengths)} "
            f"(batch_size={input.shape[batch_dim]})",
        )
    if enforce_sorted:
        if any(a < b for a, b in zip(lengths, lengths[1:])):
            raise ShapeError(
                op,
                "`lengths` array must be sorted in decreasing order when `enforce_sorted` is "
                "True. You can pass `enforce_sorted=False` to pack_padded_sequence and/or "
                "pack_sequence to sidestep this requirement if you do not need ONNX "
                "exportability.",
            )
        sorted_indices = None
    else:
        order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
        lengths = [lengths[i] for i in order]
        sorted_indices = _tensor(order, dtype=D.int64)
        input = index_select(input, batch_dim, sorted_indices)
    if lengths and lengths[-1] <= 0:
        raise ShapeError(
            op,
            "Length of all samples has to be greater than 0, but found an element in 'lengths' "
            "that is <= 0",
        )
    steps = input.shape[batch_dim ^ 1]
    if lengths and lengths[0] > steps:
        raise ShapeError(
            op, f"a length of {lengths[0]} exceeds the {steps} steps of input {describe(input)}"
        )
    if batch_first:
        input = input.transpose(0, 1)
    batch_sizes = batch_sizes_of(lengths)
    data = cat([input[t, :b] for t, b in enumerate(batch_sizes)], 0)
    return PackedSequence(data, _tensor(batch_sizes, dtype=D.int64), sorted_indices, None)


def _pad_rows(x, before: int, after: int, value):
    """``x`` with ``before``/``after`` rows of ``value`` added along dim 0."""
    if before == 0 and after == 0:
        return x
    n = x.ndim
    return P.pad(x, low=(before,) + (0,) * (n - 1), high=(after,) + (0,) * (n - 1),
                 interior=(0,) * n, value=value)  # fmt: skip


def pad_packed_sequence(sequence, batch_first: bool = False, padding_value: float = 0.0,
                        total_length: int | None = None):  # fmt: skip
    """Undo `pack_padded_sequence`: returns ``(padded, lengths)``, padded (T, B, *) (or
    (B, T, *)) in the caller's batch order, filled with ``padding_value`` past each length, T
    the longest length or ``total_length``; ``lengths`` an int64 tensor."""
    op = "pad_packed_sequence"
    batch_sizes = [int(b) for b in sequence.batch_sizes.tolist()]
    max_seq_length = len(batch_sizes)
    if total_length is not None:
        if total_length < max_seq_length:
            raise ValueError(
                "Expected total_length to be at least the length of the longest sequence in "
                f"input, but got total_length={total_length} and max sequence length being "
                f"{max_seq_length}"
            )
        max_seq_length = total_length
    if not batch_sizes:
        raise ShapeError(op, "the packed sequence is empty (no batch sizes)")
    batch = batch_sizes[0]
    data = sequence.data
    rows, offset = [], 0
    for b in batch_sizes:
        rows.append(_pad_rows(data[offset : offset + b], 0, batch - b, padding_value))
        offset += b
    padded = _pad_rows(stack(rows, 0), 0, max_seq_length - len(batch_sizes), padding_value)
    lengths = [sum(1 for b in batch_sizes if b > i) for i in range(batch)]
    if batch_first:
        padded = padded.transpose(0, 1)
    lengths = _tensor(lengths, dtype=D.int64)
    if sequence.unsorted_indices is not None:
        batch_dim = 0 if batch_first else 1
        padded = index_select(padded, batch_dim, sequence.unsorted_indices)
        lengths = index_select(lengths, 0, sequence.unsorted_indices)
    return padded, lengths


def pad_sequence(sequences, batch_first: bool = False, padding_value: float = 0.0,
                 padding_side: str = "right"):  # fmt: skip
    """Stack tensors (L_i, *) into (T, B, *) (or (B, T, *)), T the longest L_i, padding with
    ``padding_value`` on the ``padding_side``."""
    op = "pad_sequence"
    if not isinstance(sequences, Iterable):
        raise RuntimeError(
            "pad_sequence: Expected iterable for input sequences, but got arg of type: "
            f"{type(sequences)}"
        )
    sequences = tuple(sequences)
    if padding_side not in ("left", "right"):
        raise ValueError(
            f"Expected padding_side to be one of left or right, but got {padding_side}."
        )
    if not sequences:
        raise ShapeError(op, "received an empty list of sequences")
    trailing = tuple(sequences[0].shape[1:])
    for s in sequences:
        if not isinstance(s, Tensor):
            raise TypeError(f"{op}(): expected a sequence of Tensors, got {type(s).__name__}")
        if s.ndim == 0 or tuple(s.shape[1:]) != trailing:
            raise ShapeError(
                op,
                f"every sequence needs the trailing dims {list(trailing)} of the first, got "
                f"{describe(s)}",
            )
    longest = max(s.shape[0] for s in sequences)
    padded = [
        _pad_rows(s, longest - s.shape[0], 0, padding_value)
        if padding_side == "left"
        else _pad_rows(s, 0, longest - s.shape[0], padding_value)
        for s in sequences
    ]
    return stack(padded, 0 if batch_first else 1)


def unpad_sequence(padded_sequences, lengths, batch_first: bool = False) -> list:
    """Split a padded batch back into its sequences (a list of (L_i, *) tensors)."""
    if not batch_first:
        padded_sequences = padded_sequences.transpose(0, 1)
    lengths = _int_list("unpad_sequence", lengths)
    return [padded_sequences[i, :n] for i, n in enumerate(lengths)]


def pack_sequence(sequences, enforce_sorted: bool = True):
    """Pack a list of tensors (L_i, *): ``pack_padded_sequence(pad_sequence(sequences), ...)``."""
    lengths = [int(v.shape[0]) for v in sequences]
    return pack_padded_sequence(pad_sequence(sequences), lengths, enforce_sorted=enforce_sorted)


def unpack_sequence(packed_sequences) -> list:
    """Undo `pack_sequence`: the list of tensors (L_i, *) in the original order."""
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)
