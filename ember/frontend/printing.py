"""``repr`` of tensors in PyTorch's style: ``tensor([1., 2.], requires_grad=True)``."""

from __future__ import annotations

import numpy as np

from ..ir import dtypes as D

__all__ = ["format_tensor"]

_DEFAULT_SHOWN = (D.float32, D.int64, D.bool_)


def _format_float(arr: np.ndarray) -> str:
    finite = arr[np.isfinite(arr)]
    ints = finite.size == 0 or bool(np.all(finite == np.round(finite)))
    big = finite.size and (np.abs(finite).max() >= 1e8 or 0 < np.abs(finite[finite != 0]).min(
        initial=1.0) < 1e-4)  # fmt: skip

    def fmt(x) -> str:
        if np.isnan(x):
            return "nan"
        if np.isinf(x):
            return "inf" if x > 0 else "-inf"
        if big:
            return f"{x:.4e}"
        if ints:
            return f"{x:.0f}."
        return f"{x:.4f}"

    return np.array2string(
        arr, separator=", ", formatter={"float_kind": fmt}, threshold=1000, edgeitems=3,
        prefix="tensor(",
    )  # fmt: skip


def format_tensor(t) -> str:
    arr = t._data
    dtype = t.dtype
    if dtype is D.bfloat16 or dtype is D.float16:
        body = _format_float(arr.astype(np.float32))
    elif dtype.is_floating_point:
        body = _format_float(arr)
    elif dtype is D.bool_:
        body = np.array2string(arr, separator=", ", formatter={"bool": lambda b: str(b)},
                               prefix="tensor(")  # fmt: skip
    else:
        body = np.array2string(arr, separator=", ", threshold=1000, prefix="tensor(")
    extras = []
    if arr.size == 0 and arr.ndim != 1:
        extras.append(f"size={tuple(arr.shape)}")
    if dtype not in _DEFAULT_SHOWN and dtype is not D.get_default_dtype():
        extras.append(f"dtype=ember.{dtype.name}")
    if dtype is D.float32 and D.get_default_dtype() is not D.float32:
        extras.append("dtype=ember.float32")
    if t._grad_fn is not None:
        extras.append(f"grad_fn=<{t._grad_fn.name}>")
    elif t._requires_grad:
        extras.append("requires_grad=True")
    return "tensor(" + body + "".join(", " + e for e in extras) + ")"
