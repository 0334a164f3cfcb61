"""Attach the op functions to `Tensor` as methods and Python operators.

Kept apart from `tensor.py` so the class does not import the ops (which import the class).
Every method here is a thin alias: the behaviour lives in `ember.frontend.ops`.
"""

from __future__ import annotations

import numpy as np

from ..ir import dtypes as D
from ..ir.errors import DTypeError, TensorTypeError
from ..ir.types import format_shape
from .autograd import engine
from .legacy_tensors import BY_DTYPE
from .nn.functional import activation as A
from .ops import creation, indexing, inplace, linalg, misc, random, selection
from .ops import elementwise as E
from .ops import reduction as R
from .ops import shape as S
from .ops.common import as_tensor_operand, prepare
from .tensor import Tensor, device

__all__ = ["install"]


def _swap(fn):
    def reflected(self, other):
        return fn(other, self)

    return reflected


def _operand(other):
    """An operator's other operand as ember understands it, or None if it is foreign.

    NumPy scalars act like Python numbers (as in PyTorch: ``int32_tensor * np.int64(2)`` stays
    int32); arrays, lists and tuples become tensors; anything else (strings, None, objects)
    makes the operator return NotImplemented, so ``t == "a"`` is False like in PyTorch.
    """
    if isinstance(other, Tensor | bool | int | float):
        return other
    if isinstance(other, np.generic):
        return other.item()
    if isinstance(other, np.ndarray | list | tuple):
        return as_tensor_operand(other, "operator")
    return None


def _binary_operator(fn):
    def operator(self, other):
        other = _operand(other)
        if other is None:
            return NotImplemented
        return fn(self, other)

    return operator


def _pos(self):
    if self.dtype is D.bool_:
        raise DTypeError("positive", "the `+` operator, on a bool tensor is not supported")
    return self


def _to(self, *args, **kwargs):
    dtype = kwargs.get("dtype")
    for a in args:
        if isinstance(a, D.DType):
            dtype = a
        elif isinstance(a, Tensor):
            dtype = a.dtype
        elif isinstance(a, str | device):
            device(a)  # validates the name
            if device(a).type != "cpu":
                raise RuntimeError(f"to: eager tensors live on the cpu; cannot move to {a}")
    copy = kwargs.get("copy", False)
    if dtype is None or dtype is self.dtype:
        return S.clone(self) if copy else self
    return E.cast(self, dtype)


def _type(self, dtype=None):
    if dtype is None:
        return f"ember.{BY_DTYPE[self.dtype].__name__}"  # PyTorch's "torch.FloatTensor"
    if isinstance(getattr(dtype, "dtype", None), D.DType):  # a legacy class: ember.LongTensor
        dtype = dtype.dtype
    return _to(self, dtype)


def _cast_method(dtype):
    def method(self, memory_format=None):
        return E.cast(self, dtype)

    return method


def _inplace(fn, name):
    def method(self, *args, **kwargs):
        return inplace.apply_inplace(self, lambda s, *o: fn(s, *o, **kwargs), name, *args)

    method.__name__ = name
    return method


def _fill_(self, value):
    return inplace.apply_inplace(
        self, lambda s, v: inplace.fill_values(s, v, tuple(s.shape), "fill_"), "fill_", value
    )


def _zero_(self):
    return _fill_(self, 0)


def _copy_(self, src, non_blocking=False):
    src = as_tensor_operand(src, "copy_")
    return inplace.apply_inplace(
        self, lambda s, v: inplace.fill_values(s, v, tuple(s.shape), "copy_"), "copy_", src
    )


def _uniform_(self, a=0.0, b=1.0, *, generator=None):
    return _copy_(self, random.uniform(self.shape, a, b, dtype=self.dtype, generator=generator))


def _normal_(self, mean=0.0, std=1.0, *, generator=None):
    z = random.randn(*self.shape, dtype=self.dtype, generator=generator)
    return _copy_(self, E.add(E.mul(z, std), mean))


def _addcmul(self, tensor1, tensor2, *, value=1):
    """``self + value * tensor1 * tensor2``, evaluated left to right as PyTorch's kernel does."""
    return E.add(self, E.mul(E.mul(value, tensor1), tensor2))


def _addcdiv(self, tensor1, tensor2, *, value=1):
    """``self + value * tensor1 / tensor2``, evaluated left to right as PyTorch's kernel does."""
    return E.add(self, E.div(E.mul(value, tensor1), tensor2))


def _new_tensor(self, data, dtype=None, requires_grad=False):
    return creation.tensor(data, dtype=dtype or self.dtype, requires_grad=requires_grad)


def _new_factory(fn):
    def method(self, *size, dtype=None, requires_grad=False, **kwargs):
        return fn(*size, dtype=dtype or self.dtype, requires_grad=requires_grad)

    return method


def _new_full(self, size, fill_value, *, dtype=None, requires_grad=False, **kwargs):
    return creation.full(size, fill_value, dtype=dtype or self.dtype, requires_grad=requires_grad)


def _backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
    engine.backward(self, gradient, retain_graph, create_graph, inputs)


def _bool_method(op):
    def method(self, other):
        x, y = prepare(op.__name__, self, other)
        return op(x, y)

    return method


def _invert(self):
    if self.dtype.is_floating_point:
        raise TensorTypeError(
            "bitwise_not",
            f"~ is only defined for integer and bool tensors, got "
            f"{format_shape(self._data.shape, self.dtype)}",
        )
    return E.bitwise_not(self)


def _expand_as(self, other):
    return S.expand(self, *other.shape)


def _view_as(self, other):
    return S.view(self, *other.shape)


def _reshape_as(self, other):
    return S.reshape(self, *other.shape)


def _type_as(self, other):
    return E.cast(self, other.dtype)


def _cpu(self, *args, **kwargs):
    return self


METHODS = {
    # arithmetic and math
    "add": E.add, "sub": E.sub, "subtract": E.sub, "mul": E.mul, "multiply": E.mul,
    "div": E.div, "divide": E.div, "true_divide": E.true_divide, "floor_divide": E.floor_divide,
    "remainder": E.remainder, "fmod": E.fmod, "pow": E.pow, "maximum": E.maximum,
    "minimum": E.minimum, "eq": E.eq, "ne": E.ne, "lt": E.lt, "le": E.le, "gt": E.gt,
    "ge": E.ge, "greater": E.gt, "less": E.lt, "greater_equal": E.ge, "less_equal": E.le,
    "not_equal": E.ne, "logical_and": E.logical_and, "logical_or": E.logical_or,
    "logical_xor": E.logical_xor, "logical_not": E.logical_not, "bitwise_and": E.bitwise_and,
    "bitwise_or": E.bitwise_or, "bitwise_xor": E.bitwise_xor, "bitwise_not": E.bitwise_not,
    "neg": E.neg, "negative": E.neg, "abs": E.abs, "exp": E.exp, "exp2": E.exp2, "log": E.log,
    "log2": E.log2, "log10": E.log10, "sqrt": E.sqrt, "rsqrt": E.rsqrt, "sin": E.sin,
    "cos": E.cos, "tan": E.tan, "tanh": E.tanh, "sigmoid": E.sigmoid, "erf": E.erf,
    "log1p": E.log1p, "expm1": E.expm1, "floor": E.floor, "ceil": E.ceil, "round": E.round,
    "trunc": E.trunc, "sign": E.sign, "reciprocal": E.reciprocal, "square": E.square,
    "relu": E.relu, "clamp": E.clamp, "clip": E.clamp, "where": lambda s, c, o: E.where(c, s, o),
    "masked_fill": E.masked_fill, "isnan": E.isnan, "isinf": E.isinf, "isfinite": E.isfinite,
    "lerp": E.lerp, "equal": E.equal, "allclose": E.allclose, "isclose": E.isclose,
    "addcmul": _addcmul, "addcdiv": _addcdiv,
    "clamp_min": lambda s, m: E.clamp(s, min=m), "clamp_max": lambda s, m: E.clamp(s, max=m),
    # reductions
    "sum": R.sum, "mean": R.mean, "prod": R.prod, "max": R.max, "min": R.min, "amax": R.amax,
    "amin": R.amin, "argmax": R.argmax, "argmin": R.argmin, "var": R.var, "std": R.std,
    "logsumexp": R.logsumexp, "all": R.all, "any": R.any, "norm": R.norm,
    "count_nonzero": R.count_nonzero, "softmax": A.softmax, "log_softmax": A.log_softmax,
    "cumsum": R.cumsum, "multinomial": random.multinomial,
    # linear algebra
    "matmul": linalg.matmul, "mm": linalg.mm, "bmm": linalg.bmm, "mv": linalg.mv,
    "dot": linalg.dot, "outer": linalg.outer,
    # shape and views
    "view": S.view, "reshape": S.reshape, "permute": S.permute, "transpose": S.transpose,
    "swapaxes": S.transpose, "t": S.t, "expand": S.expand, "squeeze": S.squeeze,
    "unsqueeze": S.unsqueeze, "flatten": S.flatten, "unflatten": S.unflatten,
    "contiguous": S.contiguous, "clone": S.clone, "split": S.split, "chunk": S.chunk,
    "unbind": S.unbind, "narrow": S.narrow, "select": S.select, "repeat": S.repeat,
    "tile": S.tile, "movedim": S.movedim, "flip": S.flip, "expand_as": _expand_as,
    "view_as": _view_as, "reshape_as": _reshape_as, "broadcast_to": S.broadcast_to,
    "nonzero": indexing.nonzero, "tril": creation.tril, "triu": creation.triu,
    # dtype and device
    "to": _to, "type": _type, "type_as": _type_as, "cpu": _cpu,
    "float": _cast_method(D.float32), "double": _cast_method(D.float64),
    "half": _cast_method(D.float16), "bfloat16": _cast_method(D.bfloat16),
    "long": _cast_method(D.int64), "int": _cast_method(D.int32), "char": _cast_method(D.int8),
    "short": _cast_method(D.int16), "byte": _cast_method(D.uint8),
    "bool": _cast_method(D.bool_),
    # creation helpers
    "new_tensor": _new_tensor, "new_zeros": _new_factory(creation.zeros),
    "new_ones": _new_factory(creation.ones), "new_empty": _new_factory(creation.empty),
    "new_full": _new_full,
    # autograd
    "backward": _backward,
    # in place
    "fill_": _fill_, "zero_": _zero_, "copy_": _copy_, "uniform_": _uniform_,
    "normal_": _normal_,
}  # fmt: skip

INPLACE = {
    "add_": E.add, "sub_": E.sub, "mul_": E.mul, "div_": E.div, "pow_": E.pow,
    "neg_": E.neg, "abs_": E.abs, "exp_": E.exp, "log_": E.log, "sqrt_": E.sqrt,
    "rsqrt_": E.rsqrt, "sin_": E.sin, "cos_": E.cos, "tanh_": E.tanh, "sigmoid_": E.sigmoid,
    "floor_": E.floor, "ceil_": E.ceil, "round_": E.round, "trunc_": E.trunc,
    "clamp_": E.clamp, "clip_": E.clamp, "relu_": E.relu, "masked_fill_": E.masked_fill,
    "addcmul_": _addcmul, "addcdiv_": _addcdiv, "lerp_": E.lerp, "remainder_": E.remainder,
    "fmod_": E.fmod, "reciprocal_": E.reciprocal, "square_": E.square, "sign_": E.sign,
    "clamp_min_": lambda s, m: E.clamp(s, min=m), "clamp_max_": lambda s, m: E.clamp(s, max=m),
    "maximum_": E.maximum, "minimum_": E.minimum, "exp2_": E.exp2,
    "scatter_": selection.scatter, "scatter_add_": selection.scatter_add,
    "index_add_": selection.index_add, "index_fill_": selection.index_fill,
    "index_copy_": selection.index_copy,
}  # fmt: skip

OPERATORS = {
    "__add__": E.add, "__sub__": E.sub, "__mul__": E.mul, "__truediv__": E.div,
    "__floordiv__": E.floor_divide, "__mod__": E.remainder, "__pow__": E.pow,
    "__matmul__": linalg.matmul, "__and__": E.bitwise_and, "__or__": E.bitwise_or,
    "__xor__": E.bitwise_xor, "__lshift__": E.bitwise_left_shift,
    "__rshift__": E.bitwise_right_shift, "__eq__": E.eq, "__ne__": E.ne, "__lt__": E.lt,
    "__le__": E.le, "__gt__": E.gt, "__ge__": E.ge,
}  # fmt: skip
REFLECTED = {
    "__radd__": E.add, "__rsub__": E.sub, "__rmul__": E.mul, "__rtruediv__": E.div,
    "__rfloordiv__": E.floor_divide, "__rmod__": E.remainder, "__rpow__": E.pow,
    "__rmatmul__": linalg.matmul, "__rand__": E.bitwise_and, "__ror__": E.bitwise_or,
    "__rxor__": E.bitwise_xor, "__rlshift__": E.bitwise_left_shift,
    "__rrshift__": E.bitwise_right_shift,
}  # fmt: skip
AUGMENTED = {
    "__iadd__": "add_", "__isub__": "sub_", "__imul__": "mul_", "__itruediv__": "div_",
    "__ipow__": "pow_", "__imod__": "remainder_", "__iand__": None, "__ior__": None,
    "__ixor__": None, "__ifloordiv__": None,
}  # fmt: skip
_AUGMENTED_FALLBACK = {
    "__iand__": E.bitwise_and, "__ior__": E.bitwise_or, "__ixor__": E.bitwise_xor,
    "__ifloordiv__": E.floor_divide,
}  # fmt: skip


# functions of ember.frontend.ops.misc that are also tensor methods under the same name
MISC_METHODS = (
    "repeat_interleave",
    "roll",
    "diag",
    "diagonal",
    "diag_embed",
    "trace",
    "cumprod",
    "nan_to_num",
    "sinh",
    "cosh",
    "asinh",
    "acosh",
    "atanh",
    "atan",
    "asin",
    "acos",
    "atan2",
    "arctan",
    "arcsin",
    "arccos",
    "arctan2",
    "arcsinh",
    "arccosh",
    "arctanh",
)


# functions of ember.frontend.ops.selection that are also tensor methods under the same name
SELECTION_METHODS = (
    "sort",
    "argsort",
    "msort",
    "topk",
    "kthvalue",
    "median",
    "gather",
    "scatter",
    "scatter_add",
    "index_select",
    "take_along_dim",
    "index_add",
    "index_fill",
    "index_copy",
    "masked_select",
)


def install() -> None:
    for name in MISC_METHODS:
        setattr(Tensor, name, getattr(misc, name))
    for name in SELECTION_METHODS:
        setattr(Tensor, name, getattr(selection, name))
    for name, fn in METHODS.items():
        setattr(Tensor, name, fn)
    for name, fn in INPLACE.items():
        setattr(Tensor, name, _inplace(fn, name))
    for name, fn in OPERATORS.items():
        setattr(Tensor, name, _binary_operator(fn))
    for name, fn in REFLECTED.items():
        setattr(Tensor, name, _binary_operator(_swap(fn)))
    for name, target in AUGMENTED.items():
        fn = getattr(Tensor, target) if target else _inplace(_AUGMENTED_FALLBACK[name], name)
        setattr(Tensor, name, fn)
    Tensor.__neg__ = E.neg
    Tensor.__pos__ = _pos
    Tensor.__abs__ = E.abs
    Tensor.__invert__ = _invert
    Tensor.__getitem__ = indexing.getitem
    Tensor.__setitem__ = indexing.setitem
    Tensor.__array_ufunc__ = None  # numpy defers to Tensor's reflected operators
    Tensor.T = property(lambda self: S.permute(self, *reversed(range(self.ndim))))
    Tensor.mT = property(lambda self: S.transpose(self, -2, -1))
    Tensor.__hash__ = lambda self: id(self)


install()
