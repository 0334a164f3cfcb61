"""Bad input to eager ops, layers, losses, optimizers and autograd, each case run on ember and on
PyTorch: ember's error must be an instance of the builtin class PyTorch raises, name the op,
point at the line of the failing call in this file, and leave every tensor, gradient and
module it was given as it was. One table row per case; the same lambda runs with ``m`` =
ember or torch and ``F`` = their ``nn.functional``, so both libraries see the same call."""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import ember
import ember.nn.functional as EF

FILE = "test_bad_input.py"
NAN = float("nan")


# ---------------------------------------------------------------- helpers


def fails(fn) -> Exception:
    try:
        fn()
    except Exception as exc:  # noqa: BLE001
        return exc
    raise AssertionError("expected an error, but the call succeeded")


def torch_kind(exc: Exception) -> type:
    """The builtin class an ember error must be an instance of, from torch's error."""
    kind = type(exc)
    if kind is NotImplementedError:  # "kernel not implemented for dtype": a RuntimeError
        return RuntimeError
    if kind is AttributeError:  # torch's Python functions fail inside (``'list' object has no
        return TypeError  # attribute 'size'``); its argument parser's TypeError is the intent
    for builtin in (TypeError, ValueError, IndexError, KeyError, RuntimeError):
        if issubclass(kind, builtin):  # torch's own subclasses (torch.OutOfMemoryError...)
            return builtin
    return kind


def tensors_of(objs):
    """The ember tensors in ``objs``: tensors, lists of them, modules' parameters/buffers."""
    out = []
    for o in objs:
        if isinstance(o, ember.Tensor):
            out.append(o)
        elif isinstance(o, ember.nn.Module):
            out.extend(o.parameters())
            out.extend(b for b in o.buffers() if b is not None)
        elif isinstance(o, list | tuple):
            out.extend(tensors_of(o))
    return out


class Snapshot:
    """Data, version, grad, requires_grad and grad_fn of tensors, to compare after an error."""

    def __init__(self, tensors) -> None:
        self.tensors = tensors
        self.states = [self._state(t) for t in tensors]

    @staticmethod
    def _state(t):
        grad = None if t._grad is None else (t._grad._data.copy(), t._grad.dtype)
        return (t._data.copy(), t._version, grad, t._requires_grad, t._grad_fn)

    def assert_unchanged(self) -> None:
        for t, (arr, version, grad, req, fn) in zip(self.tensors, self.states):
            np.testing.assert_array_equal(t._data, arr)
            assert t._data.dtype == arr.dtype and t._data.shape == arr.shape
            assert t._version == version
            if grad is None:
                assert t._grad is None
            else:
                np.testing.assert_array_equal(t._grad._data, grad[0])
                assert t._grad.dtype is grad[1]
            assert t._requires_grad == req
            assert t._grad_fn is fn


class Case:
    """``call(m, F, *setup(m))`` fails; ``op`` starts ember's message, ``has`` are fragments."""

    def __init__(self, id, op, call, setup=None, has=(), located=True):
        self.id, self.op, self.call, self.setup = id, op, call, setup or (lambda m: ())
        self.has, self.located = has, located
        self.line = call.__code__.co_firstlineno

    def run(self, m, F):
        inputs = self.setup(m)
        return inputs, fails(lambda: self.call(m, F, *inputs))


def check_case(case: Case) -> None:
    inputs = case.setup(ember)
    snap = Snapshot(tensors_of(inputs))
    exc = fails(lambda: case.call(ember, EF, *inputs))
    _, texc = case.run(torch, TF)
    kind = torch_kind(texc)
    assert isinstance(exc, kind), (
        f"torch raises {type(texc).__name__} ({texc}); ember {type(exc).__name__}: {exc}"
    )
    msg = str(exc)
    assert msg.startswith(f"{case.op}: ") if case.located else case.op in msg, msg
    if case.located:
        assert isinstance(exc, ember.EmberError), f"{type(exc).__name__}: {msg}"
        assert msg.endswith(f" at {FILE}:{case.line}"), msg
    for fragment in case.has:
        assert fragment in msg, f"{fragment!r} not in {msg!r}"
    snap.assert_unchanged()


def t34(m):
    return (m.arange(12.0).reshape(3, 4),)


def t34_43(m):
    return (m.ones(3, 4), m.ones(4, 3))


def leaf3(m):
    return (m.tensor([1.0, 2.0, 3.0], requires_grad=True),)


def ints(m):
    return (m.tensor([1, 2, 3]),)


def logits(m):
    return (m.arange(6.0).reshape(2, 3), m.tensor([0, 2]))


def used_graph(m):
    """A leaf and a sum whose graph one backward already consumed."""
    x = m.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    return x, y


def layer(make):
    return lambda m: (make(m.nn),)


# ---------------------------------------------------------------- the table

CREATION = [
    Case("zeros_none", "zeros", lambda m, F: m.zeros(None)),
    Case("zeros_float", "zeros", lambda m, F: m.zeros(2.5)),
    Case("zeros_str_in_tuple", "zeros", lambda m, F: m.zeros((2, "a"))),
    Case("zeros_negative", "zeros", lambda m, F: m.zeros(2, -3), has=("-3",)),
    Case("ones_negative", "ones", lambda m, F: m.ones(-1)),
    Case("ones_list_of_floats", "ones", lambda m, F: m.ones([1.0, 2.0])),
    Case("empty_negative", "zeros", lambda m, F: m.empty(-2)),
    Case("full_size_none", "full", lambda m, F: m.full(None, 1.0)),
    Case("full_negative", "full", lambda m, F: m.full((2, -1), 1.0)),
    Case("rand_negative", "rand", lambda m, F: m.rand(-1)),
    Case("randn_negative", "randn", lambda m, F: m.randn(2, -1)),
    Case("rand_str", "rand", lambda m, F: m.rand("a")),
    Case("randint_negative_size", "randint", lambda m, F: m.randint(0, 5, (-1,))),
    Case("randperm_negative", "randperm", lambda m, F: m.randperm(-1)),
    Case("randperm_float", "randperm", lambda m, F: m.randperm(2.5)),
    Case("eye_negative", "eye", lambda m, F: m.eye(-2), has=("-2",)),
    Case("eye_negative_m", "eye", lambda m, F: m.eye(2, -1)),
    Case("eye_float", "eye", lambda m, F: m.eye(2.5)),
    Case("arange_nan", "arange", lambda m, F: m.arange(0, NAN), has=("nan",)),
    Case("arange_inf", "arange", lambda m, F: m.arange(0, math.inf)),
    Case("arange_zero_step", "arange", lambda m, F: m.arange(0, 10, 0)),
    Case("arange_wrong_sign", "arange", lambda m, F: m.arange(10, 0)),
    Case("arange_str", "arange", lambda m, F: m.arange("a")),
    Case("linspace_negative_steps", "linspace", lambda m, F: m.linspace(0, 1, -1)),
    Case("zeros_like_list", "zeros_like", lambda m, F: m.zeros_like([1, 2])),
    Case("ones_like_none", "ones_like", lambda m, F: m.ones_like(None)),
    Case("full_like_none", "full_like", lambda m, F: m.full_like(None, 2.0)),
    Case("rand_like_list", "rand_like", lambda m, F: m.rand_like([1.0])),
    Case("tril_1d", "tril", lambda m, F, x: m.tril(x), setup=lambda m: (m.ones(3),)),
    Case("tril_list", "tril", lambda m, F: m.tril([[1, 2], [3, 4]])),
]

ELEMENTWISE = [
    Case("exp_list", "exp", lambda m, F: m.exp([1.0, 2.0]), has=("'input'", "list")),
    Case("exp_none", "exp", lambda m, F: m.exp(None), has=("NoneType",)),
    Case("exp_ndarray", "exp", lambda m, F: m.exp(np.ones(2))),
    Case("sin_str", "sin", lambda m, F: m.sin("a")),
    Case("abs_none", "abs", lambda m, F: m.abs(None)),
    Case("neg_list", "neg", lambda m, F: m.neg([1])),
    Case("sqrt_tuple", "sqrt", lambda m, F: m.sqrt((1.0,))),
    Case("sigmoid_none", "sigmoid", lambda m, F: m.sigmoid(None)),
    Case("tanh_list", "tanh", lambda m, F: m.tanh([0.5])),
    Case("log_none", "log", lambda m, F: m.log(None)),
    Case("sinh_list", "sinh", lambda m, F: m.sinh([1.0])),
    Case("isnan_list", "isnan", lambda m, F: m.isnan([1.0])),
    Case("logical_not_none", "logical_not", lambda m, F: m.logical_not(None)),
    Case("clone_list", "clone", lambda m, F: m.clone([1.0])),
    Case("add_list_list", "add", lambda m, F: m.add([1, 2], [3, 4])),
    Case("add_tensor_list", "add", lambda m, F, x: m.add(x, [1, 2, 3, 4]), setup=t34),
    Case("add_tensor_none", "add", lambda m, F, x: m.add(x, None), setup=t34),
    Case("mul_tensor_str", "mul", lambda m, F, x: m.mul(x, "a"), setup=t34),
    Case("tensor_plus_list", "add", lambda m, F, x: x + [1, 2, 3, 4], setup=t34, has=("list",)),
    Case("list_plus_tensor", "add", lambda m, F, x: [1, 2, 3, 4] + x, setup=t34),
    Case("tensor_plus_tuple", "add", lambda m, F, x: x + (1, 2), setup=t34),
    Case("tensor_plus_none", "add", lambda m, F, x: x + None, setup=t34),
    Case("tensor_times_str", "mul", lambda m, F, x: x * "a", setup=t34, has=("str",)),
    Case("tensor_minus_str", "sub", lambda m, F, x: x - "a", setup=t34),
    Case("tensor_pow_none", "pow", lambda m, F, x: x ** None, setup=t34),
    Case("tensor_matmul_list", "matmul", lambda m, F, x: x @ [1, 2, 3, 4], setup=t34),
    Case("tensor_lt_none", "lt", lambda m, F, x: x < None, setup=t34),
    Case("tensor_and_none", "bitwise_and", lambda m, F, x: x & None, setup=ints),
    Case("method_add_list", "add", lambda m, F, x: x.add([1, 2, 3, 4]), setup=t34),
    Case("method_add_none", "add", lambda m, F, x: x.add(None), setup=t34),
    Case("add_shapes", "add", lambda m, F, a, b: a + b, setup=t34_43, has=("f32[3,4]", "f32[4,3]")),
    Case("sub_shapes", "sub", lambda m, F, a, b: m.sub(a, b), setup=t34_43, has=("f32[3,4]",)),
    Case("mul_shapes", "mul", lambda m, F, a, b: a * b, setup=t34_43),
    Case("div_shapes", "div", lambda m, F, a, b: a / b, setup=t34_43),
    Case("maximum_shapes", "maximum", lambda m, F, a, b: m.maximum(a, b), setup=t34_43),
    Case("eq_shapes", "eq", lambda m, F, a, b: a == b, setup=t34_43),
    Case("where_shapes", "where", lambda m, F, a, b: m.where(a > 0, a, b), setup=t34_43),
    Case("where_cond_list", "where", lambda m, F, a: m.where([True], a, a), setup=t34),
    Case("where_float_cond", "where", lambda m, F, a: m.where(a, a, a), setup=t34),
    Case("sub_bool", "sub", lambda m, F: m.tensor([True]) - m.tensor([False])),
    Case("bitwise_float", "bitwise_and", lambda m, F, a: a & a, setup=t34, has=("f32[3,4]",)),
    Case("invert_float", "bitwise_not", lambda m, F, a: ~a, setup=t34),
    Case("int_neg_pow", "pow", lambda m, F, x: x**-1, setup=ints),
    Case("floordiv_zero", "floordiv", lambda m, F, x: x // 0, setup=ints),
    Case("remainder_zero", "remainder", lambda m, F, x: x % 0, setup=ints),
    Case("clamp_no_bounds", "clamp", lambda m, F, x: m.clamp(x), setup=t34),
    Case("masked_fill_float_mask", "masked_fill", lambda m, F, x: x.masked_fill(x, 0.0), setup=t34),
    Case("masked_fill_shapes", "masked_fill", lambda m, F, x: x.masked_fill(m.ones(4, 3) > 0, 0.0), setup=t34),
    Case("lerp_shapes", "lerp", lambda m, F, a, b: m.lerp(a, b, 0.5), setup=t34_43),
    Case("add_inplace_shape", "add_", lambda m, F, a: a.add_(m.ones(2, 3, 4)), setup=t34),
    Case("add_inplace_int_float", "add_", lambda m, F, x: x.add_(1.5), setup=ints, has=("i64[3]",)),
    Case("add_inplace_leaf", "add_", lambda m, F, x: x.add_(1), setup=leaf3, has=("leaf",)),
    Case("mul_inplace_expanded", "mul_", lambda m, F, x: x.expand(2, 3).mul_(2), setup=lambda m: (m.ones(3),)),
]  # fmt: skip

REDUCTIONS = [
    Case("sum_str", "sum", lambda m, F: m.sum("abc"), has=("str",)),
    Case("sum_none", "sum", lambda m, F: m.sum(None)),
    Case("mean_list", "mean", lambda m, F: m.mean([1.0, 2.0])),
    Case("amax_ndarray", "amax", lambda m, F: m.amax(np.ones(2))),
    Case("argmax_list", "argmax", lambda m, F: m.argmax([1, 2])),
    Case("std_none", "std", lambda m, F: m.std(None)),
    Case("logsumexp_list", "logsumexp", lambda m, F: m.logsumexp([1.0], 0)),
    Case("sum_dim_out_of_range", "sum", lambda m, F, x: x.sum(5), setup=t34, has=("f32[3,4]",)),
    Case("sum_dim_repeated", "sum", lambda m, F, x: x.sum((0, 0)), setup=t34),
    Case("sum_dim_str", "sum", lambda m, F, x: m.sum(x, "a"), setup=t34),
    Case("mean_int", "mean", lambda m, F, x: x.mean(), setup=ints, has=("i64[3]",)),
    Case("var_int", "var", lambda m, F, x: m.var(x), setup=ints),
    Case("std_int", "std", lambda m, F, x: m.std(x), setup=ints),
    Case("argmax_empty", "argmax", lambda m, F: m.zeros(0).argmax(), has=("f32[0]",)),
    Case("argmin_empty_dim", "argmin", lambda m, F: m.zeros(0, 3).argmin(0)),
    Case("amax_empty", "amax", lambda m, F: m.amax(m.zeros(0))),
    Case("amax_empty_dim", "amax", lambda m, F: m.zeros(0, 3).amax(0)),
    Case("max_empty", "max", lambda m, F: m.zeros(0).max()),
    Case("min_empty", "min", lambda m, F: m.zeros(0).min()),
    Case("max_empty_dim", "max", lambda m, F: m.max(m.zeros(0, 2), 0)),
    Case("cumsum_dim", "cumsum", lambda m, F, x: m.cumsum(x, 2), setup=t34),
    Case("logsumexp_dim", "logsumexp", lambda m, F, x: m.logsumexp(x, 3), setup=t34),
    Case("prod_dim", "prod", lambda m, F, x: x.prod(-3), setup=t34),
    Case("argmax_dim", "argmax", lambda m, F, x: x.argmax(2), setup=t34),
]  # fmt: skip

SHAPES = [
    Case("cat_tensor", "cat", lambda m, F, x: m.cat(x), setup=t34, has=("'tensors'",)),
    Case("cat_lists", "cat", lambda m, F: m.cat([[1, 2], [3]]), has=("element 0",)),
    Case("cat_mixed", "cat", lambda m, F, x: m.cat([x, [1.0]]), setup=t34, has=("element 1",)),
    Case("cat_empty", "cat", lambda m, F: m.cat([])),
    Case("cat_none", "cat", lambda m, F: m.cat(None)),
    Case("cat_shapes", "cat", lambda m, F, a, b: m.cat([a, b], 1), setup=t34_43),
    Case("cat_dim", "cat", lambda m, F, a: m.cat([a, a], 2), setup=t34),
    Case("stack_tensor", "stack", lambda m, F, x: m.stack(x), setup=t34),
    Case("stack_empty", "stack", lambda m, F: m.stack([])),
    Case("stack_shapes", "stack", lambda m, F, a, b: m.stack([a, b]), setup=t34_43),
    Case("hstack_tensor", "hstack", lambda m, F, x: m.hstack(x), setup=t34),
    Case("broadcast_tensors_list", "broadcast_tensors", lambda m, F: m.broadcast_tensors([1], [2])),
    Case("reshape_str", "reshape", lambda m, F, x: x.reshape("a"), setup=t34),
    Case("reshape_float", "reshape", lambda m, F, x: x.reshape(2.0, 6), setup=t34),
    Case("reshape_size", "reshape", lambda m, F, x: x.reshape(5, 3), setup=t34, has=("f32[3,4]",)),
    Case("reshape_two_inferred", "reshape", lambda m, F, x: x.reshape(-1, -1), setup=t34),
    Case("reshape_fn_list", "reshape", lambda m, F: m.reshape([1, 2], (2,))),
    Case("view_noncontiguous", "view", lambda m, F, x: x.t().view(12), setup=t34),
    Case("view_size", "view", lambda m, F, x: x.view(5), setup=t34),
    Case("expand_size", "expand", lambda m, F, x: x.expand(5, 4), setup=t34),
    Case("expand_str", "expand", lambda m, F, x: x.expand("a"), setup=t34),
    Case("expand_fewer_dims", "expand", lambda m, F, x: x.expand(4), setup=t34),
    Case("permute_repeated", "permute", lambda m, F, x: x.permute(0, 0), setup=t34),
    Case("permute_count", "permute", lambda m, F, x: x.permute(0), setup=t34),
    Case("permute_float", "permute", lambda m, F, x: x.permute(0.0, 1), setup=t34),
    Case("permute_list", "permute", lambda m, F: m.permute([1, 2], (0,))),
    Case("transpose_dim", "transpose", lambda m, F, x: x.transpose(0, 2), setup=t34),
    Case("squeeze_dim", "squeeze", lambda m, F, x: x.squeeze(2), setup=t34),
    Case("unsqueeze_dim", "unsqueeze", lambda m, F, x: x.unsqueeze(3), setup=t34),
    Case("flatten_dims", "flatten", lambda m, F, x: x.flatten(2), setup=t34),
    Case("narrow_range", "narrow", lambda m, F, x: x.narrow(1, 3, 2), setup=t34),
    Case("select_index", "select", lambda m, F, x: x.select(0, 3), setup=t34),
    Case("split_sizes", "split", lambda m, F, x: x.split([1, 1], 0), setup=t34),
    Case("chunk_zero", "chunk", lambda m, F, x: x.chunk(0), setup=t34),
    Case("unflatten_sizes", "unflatten", lambda m, F, x: x.unflatten(1, (3, 3)), setup=t34),
    Case("repeat_fewer", "repeat", lambda m, F, x: x.repeat(2), setup=t34),
    Case("repeat_float", "repeat", lambda m, F, x: x.repeat(2.0, 1), setup=t34),
    Case("movedim_dim", "movedim", lambda m, F, x: m.movedim(x, 0, 5), setup=t34),
    Case("t_3d", "t", lambda m, F: m.ones(2, 3, 4).t()),
    Case("flip_dim", "flip", lambda m, F, x: m.flip(x, (2,)), setup=t34),
    Case("roll_dim", "roll", lambda m, F, x: m.roll(x, 1, 3), setup=t34),
    Case("diagonal_dims", "diagonal", lambda m, F, x: m.diagonal(x, 0, 0, 0), setup=t34),
    Case("matmul_inner", "matmul", lambda m, F: m.ones(64, 784) @ m.ones(128, 10), has=("f32[64,784] and f32[128,10]", "(784 != 128)")),
    Case("matmul_list", "matmul", lambda m, F, x: m.matmul(x, [1, 2]), setup=t34),
    Case("mm_3d", "mm", lambda m, F: m.mm(m.ones(2, 3, 4), m.ones(4, 5))),
    Case("bmm_batch", "bmm", lambda m, F: m.bmm(m.ones(2, 3, 4), m.ones(3, 4, 5))),
    Case("mv_inner", "matmul", lambda m, F: m.mv(m.ones(3, 4), m.ones(3))),
    Case("dot_sizes", "dot", lambda m, F: m.dot(m.ones(2), m.ones(3)), has=("f32[2]", "f32[3]")),
    Case("dot_2d", "dot", lambda m, F: m.dot(m.ones(2, 2), m.ones(2, 2))),
    Case("dot_dtypes", "dot", lambda m, F: m.dot(m.ones(2), m.ones(2, dtype=m.float64))),
    Case("outer_list", "outer", lambda m, F: m.outer([1.0], m.ones(2))),
    Case("einsum_operands", "einsum", lambda m, F: m.einsum("ij,jk->ik", m.ones(2, 3), m.ones(2, 3))),
]  # fmt: skip

INDEXING = [
    Case("getitem_out_of_range", "getitem", lambda m, F, x: x[5], setup=t34),
    Case("getitem_float", "getitem", lambda m, F, x: x[1.5], setup=t34),
    Case("getitem_list_out_of_range", "getitem", lambda m, F, x: x[[0, 5]], setup=t34),
    Case("getitem_too_many", "getitem", lambda m, F, x: x[0, 0, 0], setup=t34),
    Case("getitem_bool_mask_shape", "getitem", lambda m, F, x: x[m.tensor([True, False])], setup=t34),
    Case("setitem_out_of_range", "setitem", lambda m, F, x: x.__setitem__(5, 1.0), setup=t34),
    Case("setitem_shape", "setitem", lambda m, F, x: x.__setitem__(0, m.ones(3)), setup=t34),
    Case("setitem_leaf", "setitem", lambda m, F, x: x.__setitem__(0, 2.0), setup=leaf3),
    Case("gather_index_dtype", "gather", lambda m, F, x: m.gather(x, 1, m.zeros(3, 4)), setup=t34),
    Case("gather_index_range", "gather", lambda m, F, x: m.gather(x, 1, m.tensor([[9]])), setup=t34),
    Case("gather_index_list", "gather", lambda m, F, x: m.gather(x, 1, [[0]]), setup=t34),
    Case("gather_dim", "gather", lambda m, F, x: m.gather(x, 2, m.tensor([[0]])), setup=t34),
    Case("index_select_float", "index_select", lambda m, F, x: x.index_select(0, m.tensor([1.5])), setup=t34),
    Case("index_select_range", "index_select", lambda m, F, x: x.index_select(0, m.tensor([7])), setup=t34),
    Case("index_select_2d_index", "index_select", lambda m, F, x: x.index_select(0, m.tensor([[0]])), setup=t34),
    Case("index_add_range", "index_add_", lambda m, F, x: x.index_add_(0, m.tensor([5]), m.ones(1, 4)), setup=t34),
    Case("index_add_source_shape", "index_add_", lambda m, F, x: x.index_add_(0, m.tensor([0]), m.ones(1, 5)), setup=t34),
    Case("index_add_float_index", "index_add_", lambda m, F, x: x.index_add_(0, m.tensor([0.0]), m.ones(1, 4)), setup=t34),
    Case("index_fill_range", "index_fill_", lambda m, F, x: x.index_fill_(1, m.tensor([4]), 0.0), setup=t34),
    Case("scatter_add_range", "scatter_add", lambda m, F, x: m.scatter_add(x, 1, m.tensor([[4]]), m.ones(1, 1)), setup=t34),
    Case("scatter_index_dtype", "scatter", lambda m, F, x: m.scatter(x, 1, m.zeros(1, 1), 1.0), setup=t34),
    Case("masked_select_shape", "masked_select", lambda m, F, x: m.masked_select(x, m.ones(4, 3) > 0), setup=t34),
    Case("take_along_dim_dtype", "take_along_dim", lambda m, F, x: m.take_along_dim(x, m.zeros(3, 1), 1), setup=t34),
    Case("topk_k_too_big", "topk", lambda m, F: m.topk(m.ones(3), 5)),
    Case("topk_k_negative", "topk", lambda m, F: m.ones(3).topk(-1)),
    Case("topk_k_float", "topk", lambda m, F: m.ones(3).topk(1.5)),
    Case("kthvalue_k", "kthvalue", lambda m, F: m.ones(3).kthvalue(4)),
    Case("sort_dim", "sort", lambda m, F, x: m.sort(x, 2), setup=t34),
    Case("one_hot_negative", "one_hot", lambda m, F: F.one_hot(m.tensor([-1]), 3)),
    Case("one_hot_too_big", "one_hot", lambda m, F: F.one_hot(m.tensor([5]), 3)),
    Case("one_hot_float", "one_hot", lambda m, F: F.one_hot(m.tensor([1.0]), 3)),
    Case("one_hot_list", "one_hot", lambda m, F: F.one_hot([1], 3)),
    Case("multinomial_negative", "multinomial", lambda m, F: m.multinomial(m.tensor([-1.0, 2.0]), 1)),
    Case("multinomial_zero_sum", "multinomial", lambda m, F: m.multinomial(m.tensor([0.0, 0.0]), 1)),
    Case("multinomial_too_many", "multinomial", lambda m, F: m.multinomial(m.tensor([1.0, 2.0]), 3)),
    Case("bernoulli_list", "bernoulli", lambda m, F: m.bernoulli([0.5])),
]  # fmt: skip

FUNCTIONAL = [
    Case("relu_none", "relu", lambda m, F: F.relu(None), has=("'input'", "NoneType")),
    Case("relu_list", "relu", lambda m, F: F.relu([1.0, -1.0])),
    Case("relu_ndarray", "relu", lambda m, F: F.relu(np.ones(2))),
    Case("relu_bool", "relu", lambda m, F: F.relu(m.tensor([True]))),
    Case("gelu_list", "gelu", lambda m, F: F.gelu([1.0])),
    Case("gelu_approximate", "gelu", lambda m, F, x: F.gelu(x, approximate="fast"), setup=t34),
    Case("silu_none", "silu", lambda m, F: F.silu(None)),
    Case("leaky_relu_list", "leaky_relu", lambda m, F: F.leaky_relu([1.0])),
    Case("hardtanh_bounds", "hardtanh", lambda m, F, x: F.hardtanh(x, 1.0, -1.0), setup=t34),
    Case("softmax_list", "softmax", lambda m, F: F.softmax([1.0, 2.0], 0)),
    Case("softmax_dim", "softmax", lambda m, F, x: F.softmax(x, 2), setup=t34),
    Case("log_softmax_dim", "log_softmax", lambda m, F, x: F.log_softmax(x, -3), setup=t34),
    Case("linear_shapes", "linear", lambda m, F, x: F.linear(x, m.ones(2, 3)), setup=t34, has=("f32[3,4]",)),
    Case("linear_weight_list", "linear", lambda m, F, x: F.linear(x, [[1.0] * 4]), setup=t34),
    Case("linear_bias_shape", "linear", lambda m, F, x: F.linear(x, m.ones(2, 4), m.ones(3)), setup=t34),
    Case("conv2d_rank", "conv2d", lambda m, F: F.conv2d(m.ones(3, 4), m.ones(2, 1, 3, 3))),
    Case("conv2d_channels", "conv2d", lambda m, F: F.conv2d(m.ones(1, 3, 8, 8), m.ones(2, 4, 3, 3))),
    Case("conv2d_kernel_too_big", "conv2d", lambda m, F: F.conv2d(m.ones(1, 1, 2, 2), m.ones(1, 1, 3, 3))),
    Case("conv2d_stride_zero", "conv2d", lambda m, F: F.conv2d(m.ones(1, 1, 4, 4), m.ones(1, 1, 3, 3), stride=0)),
    Case("conv1d_none", "conv1d", lambda m, F: F.conv1d(None, m.ones(1, 1, 1))),
    Case("max_pool2d_kernel", "max_pool2d", lambda m, F: F.max_pool2d(m.ones(1, 1, 2, 2), 3)),
    Case("max_pool2d_rank", "max_pool2d", lambda m, F: F.max_pool2d(m.ones(2), 2)),
    Case("avg_pool2d_list", "avg_pool2d", lambda m, F: F.avg_pool2d([1.0], 2)),
    Case("adaptive_avg_pool2d_list", "adaptive_avg_pool2d", lambda m, F: F.adaptive_avg_pool2d([1.0], 1)),
    Case("dropout_p", "dropout", lambda m, F, x: F.dropout(x, 1.5), setup=t34),
    Case("dropout_list", "dropout", lambda m, F: F.dropout([1.0], 0.5)),
    Case("layer_norm_shape", "layer_norm", lambda m, F, x: F.layer_norm(x, (3,)), setup=t34),
    Case("layer_norm_list", "layer_norm", lambda m, F: F.layer_norm([1.0], (1,))),
    Case("batch_norm_channels", "batch_norm", lambda m, F: F.batch_norm(m.ones(2, 3), m.zeros(4), m.ones(4))),
    Case("group_norm_groups", "group_norm", lambda m, F: F.group_norm(m.ones(2, 6, 4), 4)),
    Case("embedding_index_range", "embedding", lambda m, F: F.embedding(m.tensor([5]), m.ones(3, 2))),
    Case("embedding_float_index", "embedding", lambda m, F: F.embedding(m.tensor([1.0]), m.ones(3, 2))),
    Case("pad_odd", "pad", lambda m, F, x: F.pad(x, (1,)), setup=t34),
    Case("pad_list_input", "pad", lambda m, F: F.pad([1.0], (1, 1))),
    Case("interpolate_rank", "interpolate", lambda m, F: F.interpolate(m.ones(4), scale_factor=2)),
    Case("normalize_list", "normalize", lambda m, F: F.normalize([1.0, 2.0], dim=0)),
    Case("cosine_similarity_shapes", "cosine_similarity", lambda m, F, a, b: F.cosine_similarity(a, b), setup=t34_43),
    Case("sdpa_shapes", "scaled_dot_product_attention", lambda m, F: F.scaled_dot_product_attention(m.ones(1, 2, 4), m.ones(1, 3, 5), m.ones(1, 3, 5))),
]  # fmt: skip

LOSSES = [
    Case("mse_shapes", "mse_loss", lambda m, F: F.mse_loss(m.ones(2), m.ones(3)), has=("f32[2]", "f32[3]")),
    Case("mse_target_list", "mse_loss", lambda m, F: F.mse_loss(m.ones(2), [1.0, 1.0])),
    Case("mse_reduction", "mse_loss", lambda m, F: F.mse_loss(m.ones(2), m.ones(2), reduction="avg")),
    Case("l1_shapes", "l1_loss", lambda m, F: F.l1_loss(m.ones(2), m.ones(3))),
    Case("smooth_l1_shapes", "smooth_l1_loss", lambda m, F: F.smooth_l1_loss(m.ones(2), m.ones(3))),
    Case("huber_shapes", "huber_loss", lambda m, F: F.huber_loss(m.ones(2), m.ones(3))),
    Case("cross_entropy_target_range", "cross_entropy", lambda m, F, x, y: F.cross_entropy(x, y + 5), setup=logits),
    Case("cross_entropy_target_float", "cross_entropy", lambda m, F, x, y: F.cross_entropy(x, m.ones(2)), setup=logits),
    Case("cross_entropy_batch", "cross_entropy", lambda m, F, x, y: F.cross_entropy(x, m.tensor([0, 1, 2])), setup=logits),
    Case("cross_entropy_input_list", "cross_entropy", lambda m, F, x, y: F.cross_entropy([[1.0, 2.0]], y), setup=logits),
    Case("cross_entropy_weight", "cross_entropy", lambda m, F, x, y: F.cross_entropy(x, y, weight=m.ones(4)), setup=logits),
    Case("nll_target_range", "nll_loss", lambda m, F, x, y: F.nll_loss(x, y - 5), setup=logits),
    Case("nll_1d_target", "nll_loss", lambda m, F, x, y: F.nll_loss(x, m.tensor([[0, 1]])), setup=logits),
    Case("bce_out_of_range", "binary_cross_entropy", lambda m, F: F.binary_cross_entropy(m.tensor([1.5]), m.tensor([1.0])), has=("between 0 and 1",)),
    Case("bce_negative", "binary_cross_entropy", lambda m, F: F.binary_cross_entropy(m.tensor([-0.5]), m.tensor([1.0]))),
    Case("bce_shapes", "binary_cross_entropy", lambda m, F: F.binary_cross_entropy(m.ones(2) / 2, m.ones(3))),
    Case("bce_logits_shapes", "binary_cross_entropy_with_logits", lambda m, F: F.binary_cross_entropy_with_logits(m.ones(2), m.ones(3))),
    Case("kl_div_list", "kl_div", lambda m, F: F.kl_div([1.0], m.ones(1))),
]  # fmt: skip

MODULES = [
    Case("relu_module_none", "relu", lambda m, F, mod: mod(None), setup=layer(lambda nn: nn.ReLU())),
    Case("linear_module_shape", "linear", lambda m, F, mod: mod(m.ones(2, 4)), setup=layer(lambda nn: nn.Linear(3, 2))),
    Case("linear_module_list", "linear", lambda m, F, mod: mod([[1.0, 2.0, 3.0]]), setup=layer(lambda nn: nn.Linear(3, 2))),
    Case("conv2d_module_channels", "conv2d", lambda m, F, mod: mod(m.ones(1, 2, 5, 5)), setup=layer(lambda nn: nn.Conv2d(3, 4, 3))),
    Case("embedding_module_range", "embedding", lambda m, F, mod: mod(m.tensor([10])), setup=layer(lambda nn: nn.Embedding(4, 2))),
    Case("batchnorm_module_channels", "batch_norm", lambda m, F, mod: mod(m.ones(4, 3)), setup=layer(lambda nn: nn.BatchNorm1d(5))),
    Case("layernorm_module_shape", "layer_norm", lambda m, F, mod: mod(m.ones(2, 3)), setup=layer(lambda nn: nn.LayerNorm(4))),
    Case("mse_module_shapes", "mse_loss", lambda m, F, mod: mod(m.ones(2), m.ones(3)), setup=layer(lambda nn: nn.MSELoss())),
    Case("cross_entropy_module_range", "cross_entropy", lambda m, F, mod: mod(m.ones(2, 3), m.tensor([0, 3])), setup=layer(lambda nn: nn.CrossEntropyLoss())),
    Case("sequential_shapes", "linear", lambda m, F, mod: mod(m.ones(1, 3)), setup=layer(lambda nn: nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(5, 2)))),
]  # fmt: skip

# the optimizers' own files raise PyTorch's ValueError without a location
OPTIMIZERS = [
    Case("sgd_negative_lr", "Invalid learning rate", lambda m, F, mod: m.optim.SGD(mod.parameters(), lr=-0.1), setup=layer(lambda nn: nn.Linear(2, 2)), located=False),
    Case("sgd_negative_momentum", "Invalid momentum value", lambda m, F, mod: m.optim.SGD(mod.parameters(), lr=0.1, momentum=-1), setup=layer(lambda nn: nn.Linear(2, 2)), located=False),
    Case("sgd_negative_weight_decay", "Invalid weight_decay value", lambda m, F, mod: m.optim.SGD(mod.parameters(), lr=0.1, weight_decay=-1), setup=layer(lambda nn: nn.Linear(2, 2)), located=False),
    Case("adam_negative_lr", "Invalid learning rate", lambda m, F, mod: m.optim.Adam(mod.parameters(), lr=-1.0), setup=layer(lambda nn: nn.Linear(2, 2)), located=False),
    Case("adam_beta", "Invalid beta parameter at index 0", lambda m, F, mod: m.optim.Adam(mod.parameters(), betas=(1.5, 0.9)), setup=layer(lambda nn: nn.Linear(2, 2)), located=False),
    Case("adam_eps", "Invalid epsilon value", lambda m, F, mod: m.optim.Adam(mod.parameters(), eps=-1.0), setup=layer(lambda nn: nn.Linear(2, 2)), located=False),
    Case("adamw_negative_lr", "Invalid learning rate", lambda m, F, mod: m.optim.AdamW(mod.parameters(), lr=-1.0), setup=layer(lambda nn: nn.Linear(2, 2)), located=False),
    Case("rmsprop_alpha", "Invalid alpha value", lambda m, F, mod: m.optim.RMSprop(mod.parameters(), alpha=-1.0), setup=layer(lambda nn: nn.Linear(2, 2)), located=False),
    Case("adagrad_lr_decay", "Invalid lr_decay value", lambda m, F, mod: m.optim.Adagrad(mod.parameters(), lr_decay=-1.0), setup=layer(lambda nn: nn.Linear(2, 2)), located=False),
    Case("sgd_empty_params", "optimizer got an empty parameter list", lambda m, F: m.optim.SGD([], lr=0.1), located=False),
    Case("sgd_tensor_params", "params argument given to the optimizer", lambda m, F, x: m.optim.SGD(x, lr=0.1), setup=leaf3, located=False),
]  # fmt: skip

AUTOGRAD = [
    Case("grad_list", "grad", lambda m, F, x: setattr(x, "grad", [1, 2, 3]), setup=leaf3, has=("list",)),
    Case("grad_shape", "grad", lambda m, F, x: setattr(x, "grad", m.ones(4)), setup=leaf3, has=("f32[4]", "f32[3]")),
    Case("grad_dtype", "grad", lambda m, F, x: setattr(x, "grad", m.ones(3, dtype=m.float64)), setup=leaf3, has=("f64[3]",)),
    Case("grad_int", "grad", lambda m, F, x: setattr(x, "grad", m.ones(3, dtype=m.int64)), setup=leaf3),
    Case("grad_self", "grad", lambda m, F, x: setattr(x, "grad", x), setup=leaf3),
    Case("backward_non_scalar", "backward", lambda m, F, x: (x * 2).backward(), setup=leaf3),
    Case("backward_no_grad", "backward", lambda m, F: m.ones(3).sum().backward()),
    Case("backward_gradient_shape", "backward", lambda m, F, x: (x * 2).backward(m.ones(4)), setup=leaf3),
    Case("backward_gradient_list", "backward", lambda m, F, x: (x * 2).backward([1.0, 1.0, 1.0]), setup=leaf3),
    Case("backward_empty_inputs", "backward", lambda m, F, x: (x * 2).sum().backward(inputs=[]), setup=leaf3),
    Case("backward_twice", "SumBackward", lambda m, F, x, y: y.backward(), setup=used_graph),
    Case("requires_grad_int", "requires_grad_", lambda m, F, x: x.requires_grad_(), setup=ints),
    Case("requires_grad_false_non_leaf", "requires_grad_", lambda m, F, x: setattr(x * 2, "requires_grad", False), setup=leaf3),
    Case("retain_grad_no_grad", "retain_grad", lambda m, F: m.ones(3).retain_grad()),
    Case("register_hook_no_grad", "register_hook", lambda m, F: m.ones(3).register_hook(lambda g: g)),
    Case("hook_shape", "backward", lambda m, F, x: [x.register_hook(lambda g: m.ones(4)), (x * 2).sum().backward()], setup=leaf3, has=("size",)),
    Case("hook_dtype", "backward", lambda m, F, x: [x.register_hook(lambda g: g.double()), (x * 2).sum().backward()], setup=leaf3, has=("type", "f64[3]")),
    Case("hook_list", "backward", lambda m, F, x: [x.register_hook(lambda g: [1.0]), (x * 2).sum().backward()], setup=leaf3),
    Case("nonleaf_hook_shape", "backward", lambda m, F, x: [y := x * 2, y.register_hook(lambda g: m.ones(1)), y.sum().backward()], setup=leaf3),
    Case("autograd_grad_no_grad", "grad", lambda m, F, x: m.autograd.grad((x * 2).sum(), m.ones(3)), setup=leaf3),
    Case("autograd_grad_unused", "grad", lambda m, F, x: m.autograd.grad((x * 2).sum(), [x, m.ones(2, requires_grad=True)]), setup=leaf3),
    Case("numpy_requires_grad", "numpy", lambda m, F, x: x.numpy(), setup=leaf3),
    Case("item_many", "item", lambda m, F, x: x.item(), setup=t34),
    Case("bool_many", "bool", lambda m, F, x: bool(x), setup=t34),
    Case("float_many", "float", lambda m, F, x: float(x), setup=t34),
    Case("len_0d", "len", lambda m, F: len(m.tensor(1.0))),
    Case("index_float_tensor", "index", lambda m, F: [1, 2][m.tensor(1.5)]),
]  # fmt: skip

ALL = CREATION + ELEMENTWISE + REDUCTIONS + SHAPES + INDEXING + FUNCTIONAL + LOSSES + MODULES
ALL += OPTIMIZERS + AUTOGRAD


def test_table_is_broad_and_ids_unique():
    assert len(ALL) >= 150
    assert len({c.id for c in ALL}) == len(ALL)


@pytest.mark.parametrize("case", ALL, ids=[c.id for c in ALL])
def test_bad_input(case):
    check_case(case)


# ---------------------------------------------------------------- every public function


def _public(module, names):
    import inspect

    out = []
    for name in names:
        fn = getattr(module, name, None)
        if not inspect.isfunction(fn):
            continue
        params = list(inspect.signature(fn).parameters)
        if params and params[0] in ("input", "tensors") and hasattr(torch, name):
            out.append(name)
    return out


PUBLIC = _public(ember, sorted(n for n in dir(ember) if not n.startswith("_")))
PUBLIC_F = _public(EF, sorted(n for n in dir(EF) if not n.startswith("_")))


@pytest.mark.parametrize("name", PUBLIC)
@pytest.mark.parametrize("bad", [None, "abc"], ids=["None", "str"])
def test_every_op_refuses_a_non_tensor_input(name, bad):
    """No public op takes a non-tensor first argument to an AttributeError deep inside."""
    exc = fails(lambda: getattr(ember, name)(bad))
    assert isinstance(exc, TypeError) and isinstance(exc, ember.EmberError), repr(exc)
    assert str(exc).startswith(f"{name}: ") or name in str(exc), str(exc)
    assert isinstance(exc, torch_kind(fails(lambda: getattr(torch, name)(bad))))


@pytest.mark.parametrize("name", PUBLIC_F)
def test_every_functional_refuses_none(name):
    exc = fails(lambda: getattr(EF, name)(None))
    assert isinstance(exc, TypeError) and isinstance(exc, ember.EmberError), repr(exc)
    assert "NoneType" in str(exc) and f"at {FILE}:" in str(exc), str(exc)


# ---------------------------------------------------------------- memory


def test_out_of_memory_names_op_shape_dtype_and_bytes():
    exc = fails(lambda: ember.zeros(10**12))
    line = test_out_of_memory_names_op_shape_dtype_and_bytes.__code__.co_firstlineno + 1
    assert isinstance(exc, RuntimeError) and isinstance(exc, ember.EmberError)
    assert isinstance(exc, torch_kind(fails(lambda: torch.zeros(10**12))))
    msg = str(exc)
    assert msg.startswith("zeros: ") and "4000000000000 bytes" in msg, msg
    assert "f32[1000000000000]" in msg and msg.endswith(f" at {FILE}:{line}"), msg


@pytest.mark.parametrize("reduce", ["sum", "mean", "amax", "amin", "prod", "max", "min"])
def test_reduction_of_a_broadcast_view_allocates_nothing(reduce):
    x = ember.ones(1).expand(10**8)  # 381 MiB if materialized
    tracemalloc.start()
    try:
        out = getattr(x, reduce)()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20, f"{reduce} allocated {peak} bytes"
    want = getattr(torch.ones(1).expand(10**8), reduce)()
    np.testing.assert_allclose(out.numpy(), want.numpy(), rtol=1e-6)


@pytest.mark.parametrize("dtype", ["float64", "float16", "int64"])
@pytest.mark.parametrize("dims", [(0,), (1,), (2,), (0, 2), (1, 3), (0, 1, 2, 3), (3,)])
def test_reductions_over_broadcast_axes_match_torch(dims, dtype):
    a = np.random.default_rng(0).standard_normal((3, 1, 4)) * 3
    a = a.astype(dtype)
    e = ember.tensor(a).expand(2, 3, 5, 4)
    t = torch.tensor(a).expand(2, 3, 5, 4)
    tol = 2e-3 if dtype == "float16" else 1e-12
    for name in ("sum", "amax", "amin"):
        got, want = getattr(e, name)(dims), getattr(t, name)(dims)
        np.testing.assert_allclose(got.numpy().astype(float), want.numpy().astype(float),
                                   rtol=tol, atol=tol)  # fmt: skip
    got, want = e.prod(dims[0]), t.prod(dims[0])
    np.testing.assert_allclose(got.numpy().astype(float), want.numpy().astype(float), rtol=tol)
    out = e.sum(dims)
    out.add_(1)  # the result owns its memory, even where it was broadcast back
    assert out._data.flags.writeable and out._data.flags.c_contiguous


# ---------------------------------------------------------------- numerics that hide divergence


@pytest.mark.parametrize("act", ["relu", "relu6", "elu", "leaky_relu", "hardtanh"])
def test_activations_keep_nan_like_torch(act):
    vals = [NAN, 1.0, -1.0, 0.0, 2.5]
    x = ember.tensor(vals, dtype=ember.float64, requires_grad=True)
    tx = torch.tensor(vals, dtype=torch.float64, requires_grad=True)
    y, ty = getattr(EF, act)(x), getattr(TF, act)(tx)
    np.testing.assert_array_equal(y.detach().numpy(), ty.detach().numpy())
    y.sum().backward()
    ty.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())


def test_relu_module_and_method_keep_nan():
    x = ember.tensor([NAN, -1.0, 2.0])
    for out in (ember.nn.ReLU()(x), x.relu(), ember.relu(x), EF.relu(x)):
        assert math.isnan(out[0].item()) and out[1].item() == 0 and out[2].item() == 2


def test_relu_nan_in_a_compiled_function():
    @ember.compile
    def f(x):
        return EF.relu(x) * 2

    out = f(ember.tensor([NAN, -1.0, 2.0]))
    np.testing.assert_array_equal(out.numpy(), [NAN, 0.0, 4.0])


@pytest.mark.parametrize("dim", [None, 0, 1])
def test_std_of_constant_values_has_zero_gradient(dim):
    vals = [[2.0, 2.0, 2.0], [1.0, 2.0, 4.0]]
    x = ember.tensor(vals, dtype=ember.float64, requires_grad=True)
    tx = torch.tensor(vals, dtype=torch.float64, requires_grad=True)
    s, ts = (x.std(), tx.std()) if dim is None else (x.std(dim), tx.std(dim))
    np.testing.assert_allclose(s.detach().numpy(), ts.detach().numpy(), rtol=1e-12)
    s.sum().backward()
    ts.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12, atol=1e-15)
    assert np.isfinite(x.grad.numpy()).all()


# ---------------------------------------------------------------- gradients keep their type


def test_backward_seed_of_another_dtype_keeps_the_grad_dtype():
    x = ember.ones(3, requires_grad=True)
    tx = torch.ones(3, requires_grad=True)
    (x * 2).backward(ember.ones(3, dtype=ember.float64))
    (tx * 2).backward(torch.ones(3, dtype=torch.float64))
    assert x.grad.dtype is ember.float32 and tx.grad.dtype is torch.float32
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())


def test_failed_hook_leaves_grad_unset_and_graph_usable():
    x = ember.tensor([1.0, 2.0], requires_grad=True)
    handle = x.register_hook(lambda g: ember.ones(5))
    y = (x * 3).sum()
    fails(lambda: y.backward(retain_graph=True))
    assert x.grad is None
    handle.remove()
    y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 3.0])


# ---------------------------------------------------------------- modules change nothing


class _Net(ember.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = ember.nn.Linear(3, 4)
        self.bn = ember.nn.BatchNorm1d(4)
        self.b = ember.nn.Linear(4, 2)


@pytest.mark.parametrize("edit", ["missing", "unexpected", "misshaped", "not_a_tensor"])
def test_failed_load_state_dict_changes_no_parameter(edit):
    net = _Net()
    sd = {k: v.detach() * 0 + 7 for k, v in net.state_dict().items()}  # all different values
    if edit == "missing":
        del sd["b.bias"]
    elif edit == "unexpected":
        sd["c.weight"] = ember.ones(1)
    elif edit == "misshaped":
        sd["b.weight"] = ember.ones(3, 3)
    else:
        sd["bn.running_var"] = [1.0] * 4
    snap = Snapshot(tensors_of([net]))
    exc = fails(lambda: net.load_state_dict(sd))
    assert isinstance(exc, RuntimeError)
    snap.assert_unchanged()
    assert "Error(s) in loading state_dict for _Net" in str(exc)


def test_load_state_dict_still_loads():
    src, dst = _Net(), _Net()
    dst.load_state_dict(src.state_dict())
    for (k, a), b in zip(src.state_dict().items(), dst.state_dict().values()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=k)


@pytest.mark.parametrize("momentum", [0.1, None])
def test_batchnorm_refusing_an_input_counts_no_batch(momentum):
    bn = ember.nn.BatchNorm1d(5, momentum=momentum)
    snap = Snapshot(tensors_of([bn]))
    exc = fails(lambda: bn(ember.ones(4, 3)))
    torch_bad = torch.nn.BatchNorm1d(5, momentum=momentum)
    assert isinstance(exc, torch_kind(fails(lambda: torch_bad(torch.ones(4, 3)))))
    snap.assert_unchanged()  # (PyTorch counts the refused batch: num_batches_tracked is 1)
    tbn = torch.nn.BatchNorm1d(5, momentum=momentum)
    x = np.random.default_rng(1).standard_normal((6, 5)).astype(np.float32)
    for _ in range(2):  # the running statistics still follow torch's
        bn(ember.tensor(x))
        tbn(torch.tensor(x))
    assert int(bn.num_batches_tracked) == int(tbn.num_batches_tracked) == 2
    np.testing.assert_allclose(bn.running_var.numpy(), tbn.running_var.numpy(), rtol=1e-5)
    np.testing.assert_allclose(bn.running_mean.numpy(), tbn.running_mean.numpy(), rtol=1e-5)
