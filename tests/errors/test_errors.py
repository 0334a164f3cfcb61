"""Every bad input gets an error that names the op, the operands (``f32[3,4]``) and the user's
``file:line``, leaves the tensors involved as they were, and is an instance of the builtin
exception PyTorch raises for the same mistake (each case runs its torch twin)."""

import inspect
import re

import numpy as np
import pytest
import torch

import ember

FILE = "test_errors.py"


# ---------------------------------------------------------------- helpers


def data(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def here() -> int:
    """The line after the caller's current line: where the failing call is written."""
    return inspect.currentframe().f_back.f_lineno + 1


def fails(fn) -> Exception:
    try:
        fn()
    except Exception as exc:  # noqa: BLE001
        return exc
    raise AssertionError("expected an error, but the call succeeded")


class Snapshot:
    """Data, version counter, grad, requires_grad and grad_fn of tensors, to compare later."""

    def __init__(self, *tensors) -> None:
        self.tensors = tensors
        self.states = [self._state(t) for t in tensors]

    @staticmethod
    def _state(t):
        grad = None if t._grad is None else t._grad._data.copy()
        return (t._data.copy(), t._version, grad, t._requires_grad, t._grad_fn)

    def assert_unchanged(self) -> None:
        for t, (arr, version, grad, req, fn) in zip(self.tensors, self.states):
            np.testing.assert_array_equal(t._data, arr)
            assert t._data.dtype == arr.dtype and t._data.shape == arr.shape
            assert t._version == version
            if grad is None:
                assert t._grad is None
            else:
                np.testing.assert_array_equal(t._grad._data, grad)
            assert t._requires_grad == req
            assert t._grad_fn is fn


def torch_kind(exc: Exception) -> type:
    """The builtin class an ember error must be an instance of, from torch's error."""
    kind = type(exc)
    # torch says NotImplementedError for "kernel not implemented for dtype" (a RuntimeError)
    return RuntimeError if kind is NotImplementedError else kind


def check_error(exc, line, op, *fragments, twin=None):
    """``exc`` names ``op``, contains ``fragments`` (str or compiled regex), ends with the
    location ``test_errors.py:line`` and is the kind of error ``twin`` (torch) raises."""
    assert isinstance(exc, ember.EmberError), f"not an EmberError: {type(exc).__name__}: {exc}"
    msg = str(exc)
    assert msg.startswith(f"{op}: "), msg
    assert msg.endswith(f" at {FILE}:{line}"), msg
    for f in fragments:
        if isinstance(f, re.Pattern):
            assert f.search(msg), f"{f.pattern!r} not in {msg!r}"
        else:
            assert f in msg, f"{f!r} not in {msg!r}"
    if twin is not None:
        texc = fails(twin)
        assert isinstance(exc, torch_kind(texc)), (
            f"torch raises {type(texc).__name__} ({texc}), ember {type(exc).__mro__}"
        )
    return msg


A34, A43 = data(3, 4), data(4, 3, seed=1)
SHAPES_34_43 = re.compile(r"\[3, ?4\].*\[4, ?3\]")


# ---------------------------------------------------------------- shapes


def test_add_broadcast_mismatch():
    a, b = ember.tensor(A34), ember.tensor(A43)
    snap = Snapshot(a, b)
    line = here()
    exc = fails(lambda: a + b)
    check_error(exc, line, "add", SHAPES_34_43, twin=lambda: torch.tensor(A34) + torch.tensor(A43))
    snap.assert_unchanged()


def test_mul_broadcast_mismatch_with_grad():
    a = ember.tensor(A34, requires_grad=True)
    b = ember.tensor(A43)
    snap = Snapshot(a, b)
    line = here()
    exc = fails(lambda: ember.mul(a, b))
    check_error(
        exc, line, "mul", SHAPES_34_43, twin=lambda: torch.mul(torch.tensor(A34), torch.tensor(A43))
    )
    snap.assert_unchanged()


def test_where_broadcast_mismatch():
    a, b = ember.tensor(A34), ember.tensor(A43)
    cond = a > 0
    snap = Snapshot(a, b, cond)
    line = here()
    exc = fails(lambda: ember.where(cond, a, b))
    ta, tb = torch.tensor(A34), torch.tensor(A43)
    check_error(exc, line, "where", SHAPES_34_43, twin=lambda: torch.where(ta > 0, ta, tb))
    snap.assert_unchanged()


@pytest.mark.parametrize("op", ["add", "mul", "sub", "where"])
def test_broadcast_error_names_operands_with_dtype(op):
    a, b = ember.tensor(A34), ember.tensor(A43)
    fn = {
        "add": lambda: a + b,
        "mul": lambda: a * b,
        "sub": lambda: a - b,
        "where": lambda: ember.where(a > 0, a, b),
    }[op]
    msg = str(fails(fn))
    assert "f32[3,4]" in msg and "f32[4,3]" in msg, msg


def test_matmul_shape_mismatch_exact_message():
    x = ember.tensor(data(64, 784))
    w = ember.tensor(data(128, 10), requires_grad=True)
    snap = Snapshot(x, w)
    line = here()
    exc = fails(lambda: x @ w)
    assert str(exc) == (
        f"matmul: shapes f32[64,784] and f32[128,10] do not match (784 != 128) at {FILE}:{line}"
    )
    check_error(exc, line, "matmul", twin=lambda: torch.ones(64, 784) @ torch.ones(128, 10))
    line = here()
    exc = fails(lambda: ember.matmul(x, w))
    check_error(exc, line, "matmul", "f32[64,784] and f32[128,10]", "(784 != 128)")
    snap.assert_unchanged()


def test_bmm_batch_mismatch():
    a, b = ember.tensor(data(2, 3, 4)), ember.tensor(data(3, 4, 5))
    snap = Snapshot(a, b)
    line = here()
    exc = fails(lambda: ember.bmm(a, b))
    check_error(exc, line, "bmm", "f32[2,3,4]", "f32[3,4,5]",
                twin=lambda: torch.bmm(torch.ones(2, 3, 4), torch.ones(3, 4, 5)))  # fmt: skip
    snap.assert_unchanged()


def test_mm_of_3d():
    a, b = ember.tensor(data(2, 3, 4)), ember.tensor(data(4, 5))
    snap = Snapshot(a, b)
    line = here()
    exc = fails(lambda: a.mm(b))
    check_error(exc, line, "mm", "f32[2,3,4]", "f32[4,5]",
                twin=lambda: torch.ones(2, 3, 4).mm(torch.ones(4, 5)))  # fmt: skip
    snap.assert_unchanged()


def test_matmul_inner_mismatch_for_vectors():
    a, v = ember.tensor(A34), ember.tensor(data(3))
    line = here()
    exc = fails(lambda: ember.mv(a, v))
    check_error(
        exc,
        line,
        "matmul",
        "f32[3,4]",
        "f32[3]",
        twin=lambda: torch.mv(torch.ones(3, 4), torch.ones(3)),
    )


def test_in_place_output_shape_mismatch():
    a = ember.tensor(A34)
    b = ember.ones(2, 3, 4)
    snap = Snapshot(a, b)
    line = here()
    exc = fails(lambda: a.add_(b))
    check_error(exc, line, "add_", re.compile(r"\[3, ?4\]"), re.compile(r"\[2, ?3, ?4\]"),
                twin=lambda: torch.ones(3, 4).add_(torch.ones(2, 3, 4)))  # fmt: skip
    snap.assert_unchanged()


def test_in_place_broadcast_mismatch_keeps_non_leaf_history():
    x = ember.tensor(A34, requires_grad=True)
    y = x * 2
    b = ember.tensor(A43)
    snap = Snapshot(x, y, b)
    line = here()
    exc = fails(lambda: y.mul_(b))
    check_error(exc, line, "mul_", SHAPES_34_43,
                twin=lambda: (torch.ones(3, 4, requires_grad=True) * 2).mul_(torch.ones(4, 3)))  # fmt: skip
    snap.assert_unchanged()
    y.sum().backward()  # the graph still works
    np.testing.assert_array_equal(x.grad.numpy(), np.full((3, 4), 2, np.float32))


def test_write_into_expanded_view():
    base = ember.ones(3)
    e = base.expand(2, 3)
    snap = Snapshot(base, e)
    line = here()
    exc = fails(lambda: e.add_(1))
    check_error(exc, line, "add_", "f32[2,3]", "expanded",
                twin=lambda: torch.ones(3).expand(2, 3).add_(1))  # fmt: skip
    snap.assert_unchanged()


def test_reshape_to_incompatible_size():
    a = ember.tensor(A34)
    snap = Snapshot(a)
    line = here()
    exc = fails(lambda: a.reshape(5, 3))
    check_error(
        exc, line, "reshape", "[5, 3]", "f32[3,4]", twin=lambda: torch.ones(3, 4).reshape(5, 3)
    )
    line = here()
    exc = fails(lambda: a.reshape(-1, -1))
    check_error(
        exc, line, "reshape", "one dimension", twin=lambda: torch.ones(3, 4).reshape(-1, -1)
    )
    snap.assert_unchanged()


def test_view_of_non_contiguous():
    a = ember.tensor(A34)
    t = a.t()
    snap = Snapshot(a, t)
    line = here()
    exc = fails(lambda: t.view(12))
    check_error(
        exc, line, "view", "f32[4,3]", "reshape", twin=lambda: torch.ones(3, 4).t().view(12)
    )
    snap.assert_unchanged()


def test_expand_and_permute_and_stack_mismatches():
    a = ember.tensor(A34)
    snap = Snapshot(a)
    line = here()
    exc = fails(lambda: a.expand(5, 4))
    check_error(exc, line, "expand", "f32[3,4]", twin=lambda: torch.ones(3, 4).expand(5, 4))
    line = here()
    exc = fails(lambda: a.permute(0, 0))
    check_error(exc, line, "permute", "[0, 0]", twin=lambda: torch.ones(3, 4).permute(0, 0))
    line = here()
    exc = fails(lambda: ember.stack([a, a.t()]))
    check_error(exc, line, "stack", "f32[3,4]", "f32[4,3]",
                twin=lambda: torch.stack([torch.ones(3, 4), torch.ones(4, 3)]))  # fmt: skip
    line = here()
    exc = fails(lambda: a.narrow(1, 3, 2))
    check_error(exc, line, "narrow", "4", twin=lambda: torch.ones(3, 4).narrow(1, 3, 2))
    line = here()
    exc = fails(lambda: a.split([1, 1], dim=0))
    check_error(exc, line, "split", "f32[3,4]", twin=lambda: torch.ones(3, 4).split([1, 1], dim=0))
    snap.assert_unchanged()


# ---------------------------------------------------------------- dims and indices


def test_sum_dim_out_of_range():
    a = ember.tensor(A34, requires_grad=True)
    snap = Snapshot(a)
    line = here()
    exc = fails(lambda: a.sum(dim=5))
    check_error(exc, line, "sum", "[-2, 1]", "5", twin=lambda: torch.ones(3, 4).sum(dim=5))
    assert isinstance(exc, IndexError)
    snap.assert_unchanged()


def test_transpose_dim_out_of_range():
    a = ember.tensor(data(2, 3, 4))
    snap = Snapshot(a)
    line = here()
    exc = fails(lambda: a.transpose(0, 3))
    check_error(
        exc, line, "transpose", "[-3, 2]", "3", twin=lambda: torch.ones(2, 3, 4).transpose(0, 3)
    )
    assert isinstance(exc, IndexError)
    snap.assert_unchanged()


def test_squeeze_dim_out_of_range():
    a = ember.tensor(A34)
    snap = Snapshot(a)
    line = here()
    exc = fails(lambda: a.squeeze(4))
    check_error(exc, line, "squeeze", "[-2, 1]", "4", twin=lambda: torch.ones(3, 4).squeeze(4))
    line = here()
    exc = fails(lambda: a.unsqueeze(3))
    check_error(exc, line, "unsqueeze", "[-3, 2]", twin=lambda: torch.ones(3, 4).unsqueeze(3))
    snap.assert_unchanged()


def test_cat_mismatched_shapes():
    a, b = ember.tensor(data(2, 3, 4)), ember.tensor(data(2, 4, 4))
    snap = Snapshot(a, b)
    line = here()
    exc = fails(lambda: ember.cat([a, b], dim=2))
    check_error(exc, line, "cat", "f32[2,3,4]", "f32[2,4,4]", "dimension 2",
                twin=lambda: torch.cat([torch.ones(2, 3, 4), torch.ones(2, 4, 4)], dim=2))  # fmt: skip
    snap.assert_unchanged()


def test_cat_dim_out_of_range():
    a, b = ember.tensor(data(2, 3)), ember.tensor(data(3, 4))
    snap = Snapshot(a, b)
    line = here()
    exc = fails(lambda: ember.cat([a, b], dim=2))
    check_error(exc, line, "cat", "[-2, 1]",
                twin=lambda: torch.cat([torch.ones(2, 3), torch.ones(3, 4)], dim=2))  # fmt: skip
    assert isinstance(exc, IndexError)
    snap.assert_unchanged()


@pytest.mark.parametrize("op", ["sum", "transpose", "squeeze", "cat"])
def test_dim_errors_name_the_tensor(op):
    a = ember.tensor(A34)
    fn = {
        "sum": lambda: a.sum(dim=5),
        "transpose": lambda: a.transpose(0, 3),
        "squeeze": lambda: a.squeeze(4),
        "cat": lambda: ember.cat([a, a], dim=2),
    }[op]
    assert "f32[3,4]" in str(fails(fn))


def test_integer_index_out_of_range():
    a = ember.tensor(A34, requires_grad=True)
    snap = Snapshot(a)
    line = here()
    exc = fails(lambda: a[10])
    check_error(
        exc, line, "getitem", "index 10", "dimension 0", "size 3", twin=lambda: torch.ones(3, 4)[10]
    )
    line = here()
    exc = fails(lambda: a[:, -5])
    check_error(
        exc,
        line,
        "getitem",
        "index -5",
        "dimension 1",
        "size 4",
        twin=lambda: torch.ones(3, 4)[:, -5],
    )
    line = here()
    exc = fails(lambda: a[ember.tensor([0, 7])])
    check_error(
        exc, line, "getitem", "index 7", twin=lambda: torch.ones(3, 4)[torch.tensor([0, 7])]
    )
    snap.assert_unchanged()


def test_too_many_indices():
    a = ember.tensor(A34)
    snap = Snapshot(a)
    line = here()
    exc = fails(lambda: a[0, 0, 0])
    check_error(
        exc, line, "getitem", "too many indices", "f32[3,4]", twin=lambda: torch.ones(3, 4)[0, 0, 0]
    )
    snap.assert_unchanged()


def test_float_tensor_as_index():
    a = ember.tensor(A34)
    line = here()
    exc = fails(lambda: a[ember.tensor([0.5])])
    check_error(exc, line, "getitem", "f32[1]", twin=lambda: torch.ones(3, 4)[torch.tensor([0.5])])


def test_setitem_out_of_range_and_bad_value_shape():
    a = ember.tensor(A34)
    snap = Snapshot(a)
    line = here()
    exc = fails(lambda: a.__setitem__(5, 1.0))
    assert isinstance(exc, ember.EmberError)
    assert str(exc).endswith(f" at {FILE}:{line}") and "index 5" in str(exc)
    texc = fails(lambda: torch.ones(3, 4).__setitem__(5, 1.0))
    assert isinstance(exc, torch_kind(texc))
    line = here()
    exc = fails(lambda: a.__setitem__(0, ember.ones(5)))
    check_error(exc, line, "setitem", "f32[3,4]",
                twin=lambda: torch.ones(3, 4).__setitem__(0, torch.ones(5)))  # fmt: skip
    snap.assert_unchanged()


def test_setitem_bad_value_shape_with_grad():
    x = ember.tensor(A34, requires_grad=True)
    y = x * 1
    v = ember.ones(5, requires_grad=True)
    snap = Snapshot(x, y, v)
    line = here()
    exc = fails(lambda: y.__setitem__(0, v))
    assert isinstance(exc, ember.EmberError) and isinstance(exc, RuntimeError)
    assert str(exc).endswith(f" at {FILE}:{line}") and "f32[5]" in str(exc)
    snap.assert_unchanged()


# ---------------------------------------------------------------- dtypes


def test_requires_grad_on_int_tensor():
    line = here()
    exc = fails(lambda: ember.tensor([1, 2], requires_grad=True))
    check_error(exc, line, "requires_grad_", "floating point", "i64[2]",
                twin=lambda: torch.tensor([1, 2], requires_grad=True))  # fmt: skip
    line = here()
    exc = fails(lambda: ember.zeros(2, dtype=ember.int32, requires_grad=True))
    check_error(exc, line, "requires_grad_", "i32[2]",
                twin=lambda: torch.zeros(2, dtype=torch.int32, requires_grad=True))  # fmt: skip


def test_requires_grad_after_cast_to_long():
    t = ember.tensor([1, 2]).float().long()
    snap = Snapshot(t)
    line = here()
    exc = fails(lambda: t.requires_grad_())
    check_error(exc, line, "requires_grad_", "i64[2]",
                twin=lambda: torch.tensor([1, 2]).float().long().requires_grad_())  # fmt: skip
    snap.assert_unchanged()
    line = here()
    exc = fails(lambda: setattr(t, "requires_grad", True))
    check_error(exc, line, "requires_grad_", "i64[2]")
    snap.assert_unchanged()


def test_bitwise_ops_on_floats():
    a = ember.tensor(A34)
    snap = Snapshot(a)
    ta = torch.tensor(A34)
    line = here()
    exc = fails(lambda: a & a)
    check_error(exc, line, "bitwise_and", "f32[3,4]", twin=lambda: ta & ta)
    line = here()
    exc = fails(lambda: ember.bitwise_xor(a, 1))
    check_error(exc, line, "bitwise_xor", "f32[3,4]", twin=lambda: torch.bitwise_xor(ta, 1))
    line = here()
    exc = fails(lambda: a << 1)
    check_error(exc, line, "bitwise_left_shift", "f32[3,4]", twin=lambda: ta << 1)
    snap.assert_unchanged()


def test_invert_float():
    a = ember.tensor(A34)
    line = here()
    exc = fails(lambda: ~a)
    check_error(exc, line, "bitwise_not", "f32[3,4]", twin=lambda: ~torch.tensor(A34))


def test_mean_of_int_tensor():
    t = ember.tensor([1, 2])
    snap = Snapshot(t)
    line = here()
    exc = fails(lambda: t.mean())
    check_error(exc, line, "mean", "i64[2]", twin=lambda: torch.tensor([1, 2]).mean())
    line = here()
    exc = fails(lambda: t.std())
    check_error(exc, line, "std", "i64[2]", twin=lambda: torch.tensor([1, 2]).std())
    snap.assert_unchanged()


@pytest.mark.parametrize(
    ("op", "call", "tcall", "result"),
    [
        ("add_", lambda t: t.add_(1.5), lambda t: t.add_(1.5), "float32"),
        ("div_", lambda t: t.div_(2), lambda t: t.div_(2), "float32"),
        ("mul_", lambda t: t.mul_(ember.ones(2)), lambda t: t.mul_(torch.ones(2)), "float32"),
        ("sqrt_", lambda t: t.sqrt_(), lambda t: t.sqrt_(), "float32"),
    ],
)
def test_in_place_result_type_cannot_be_cast(op, call, tcall, result):
    t = ember.tensor([1, 2])
    snap = Snapshot(t)
    line = call.__code__.co_firstlineno  # the failing call is the lambda in the table above
    exc = fails(lambda: call(t))
    check_error(exc, line, op, f"result type {result}", "int64", "i64[2]",
                twin=lambda: tcall(torch.tensor([1, 2])))  # fmt: skip
    snap.assert_unchanged()


def test_in_place_int_into_bool():
    t = ember.tensor([True, False])
    snap = Snapshot(t)
    line = here()
    exc = fails(lambda: t.add_(1))
    check_error(exc, line, "add_", "bool[2]", twin=lambda: torch.tensor([True, False]).add_(1))
    snap.assert_unchanged()


def test_where_and_masked_fill_need_bool_masks():
    a = ember.tensor(A34)
    ta = torch.tensor(A34)
    snap = Snapshot(a)
    line = here()
    exc = fails(lambda: ember.where(a, a, a))
    check_error(exc, line, "where", "f32[3,4]", twin=lambda: torch.where(ta, ta, ta))
    line = here()
    exc = fails(lambda: a.masked_fill(a, 0.0))
    check_error(exc, line, "masked_fill", "f32[3,4]", twin=lambda: ta.masked_fill(ta, 0.0))
    snap.assert_unchanged()


def test_integer_to_negative_power():
    t = ember.tensor([2, 3])
    line = here()
    exc = fails(lambda: t**-1)
    check_error(exc, line, "pow", "i64[2]", twin=lambda: torch.tensor([2, 3]) ** -1)


# ---------------------------------------------------------------- autograd


def test_backward_after_saved_input_modified_in_place():
    x = ember.tensor(data(3), requires_grad=True)
    y = x.sin()  # saves the leaf x, which is not modified: fine
    a = x * 1
    b = a.sin()  # sin saves its input a ...
    a.add_(1)  # ... which is then changed in place
    snap = Snapshot(x, y, a, b)
    line = here()
    exc = fails(lambda: b.sum().backward())
    msg = check_error(exc, line, "SinBackward", "modified by an in-place operation", "f32[3]",
                      "version 1", "expected version 0")  # fmt: skip
    assert "retain_graph" not in msg

    def twin():
        tx = torch.tensor(data(3), requires_grad=True)
        ta = tx * 1
        tb = ta.sin()
        ta.add_(1)
        tb.sum().backward()

    assert isinstance(exc, torch_kind(fails(twin)))
    snap.assert_unchanged()  # nothing was accumulated into x.grad
    y.sum().backward()  # the untouched branch still works
    np.testing.assert_allclose(x.grad.numpy(), np.cos(data(3)), rtol=1e-6)


def test_backward_after_saved_output_modified_in_place():
    x = ember.tensor(data(2, 3), requires_grad=True)
    a = x * 1
    b = a.exp()  # exp saves its output b
    b.mul_(2)
    snap = Snapshot(x, a, b)
    line = here()
    exc = fails(lambda: b.sum().backward())
    check_error(exc, line, "ExpBackward", "in-place", "f32[2,3]", "version 1", "expected version 0")

    def twin():
        ta = torch.tensor(data(2, 3), requires_grad=True) * 1
        tb = ta.exp()
        tb.mul_(2)
        tb.sum().backward()

    assert isinstance(exc, torch_kind(fails(twin)))
    snap.assert_unchanged()


def test_backward_after_view_of_saved_tensor_modified():
    x = ember.tensor(data(3, 4), requires_grad=True)
    a = x * 1
    b = a.tanh() * a  # a is saved by the mul
    a[1].zero_()  # written through a view: the version is shared
    line = here()
    exc = fails(lambda: b.backward(ember.ones(3, 4)))
    check_error(exc, line, "MulBackward", "in-place", "f32[3,4]", "version 1")
    assert x.grad is None


def test_second_backward_without_retain_graph():
    x = ember.tensor(data(3), requires_grad=True)
    z = (x * x).sum()
    z.backward()
    snap = Snapshot(x)
    line = here()
    exc = fails(lambda: z.backward())
    check_error(exc, line, "SumBackward", "second time", "retain_graph=True")

    def twin():
        tx = torch.tensor(data(3), requires_grad=True)
        tz = (tx * tx).sum()
        tz.backward()
        tz.backward()

    assert isinstance(exc, torch_kind(fails(twin)))
    snap.assert_unchanged()  # the first gradient is left as it was


def test_reduction_nodes_are_named_like_torch():
    x = ember.tensor(data(3), requires_grad=True)
    for e, t in ((x.sum(), torch.ones(3, requires_grad=True).sum()),
                 (x.prod(), torch.ones(3, requires_grad=True).prod())):  # fmt: skip
        assert e.grad_fn.name == type(t.grad_fn).__name__.rstrip("0")


def test_second_grad_without_retain_graph():
    x = ember.tensor(data(3), requires_grad=True)
    z = x.exp().sum()
    ember.autograd.grad(z, x)
    line = here()
    exc = fails(lambda: ember.autograd.grad(z, x))
    msg = str(exc)
    assert isinstance(exc, ember.EmberError) and isinstance(exc, RuntimeError)
    assert msg.endswith(f" at {FILE}:{line}") and "retain_graph=True" in msg


def test_non_scalar_backward_without_gradient():
    x = ember.tensor(data(3), requires_grad=True)
    y = x * 2
    snap = Snapshot(x, y)
    line = here()
    exc = fails(lambda: y.backward())
    check_error(exc, line, "backward", "grad can be implicitly created only for scalar outputs", "f32[3]",
                twin=lambda: (torch.ones(3, requires_grad=True) * 2).backward())  # fmt: skip
    snap.assert_unchanged()
    y.backward(ember.ones(3))  # the graph was not consumed by the failed call
    np.testing.assert_array_equal(x.grad.numpy(), [2, 2, 2])


def test_backward_gradient_of_wrong_shape():
    x = ember.tensor(data(3), requires_grad=True)
    y = x * 2
    snap = Snapshot(x, y)
    line = here()
    exc = fails(lambda: y.backward(ember.ones(4)))
    check_error(exc, line, "backward", "f32[4]", "f32[3]",
                twin=lambda: (torch.ones(3, requires_grad=True) * 2).backward(torch.ones(4)))  # fmt: skip
    snap.assert_unchanged()


def test_backward_on_tensor_without_grad():
    a = ember.tensor(data(3))
    s = a.sum()
    snap = Snapshot(a, s)
    line = here()
    exc = fails(lambda: s.backward())
    check_error(exc, line, "backward", "does not require grad", "f32[]",
                twin=lambda: torch.ones(3).sum().backward())  # fmt: skip
    snap.assert_unchanged()
    x = ember.tensor(data(3), requires_grad=True)
    with ember.no_grad():
        s = (x * 2).sum()
    line = here()
    exc = fails(lambda: s.backward())
    check_error(exc, line, "backward", "does not require grad")
    assert x.grad is None


def test_autograd_grad_errors():
    x = ember.tensor(data(3), requires_grad=True)
    c = ember.tensor(data(3))
    u = ember.tensor(data(2), requires_grad=True)
    out = (x * c).sum()
    snap = Snapshot(x, c, u)
    line = here()
    exc = fails(lambda: ember.autograd.grad(out, c))
    check_error(exc, line, "grad", "does not require grad", "f32[3]",
                twin=lambda: torch.autograd.grad(torch.ones(3, requires_grad=True).sum(), torch.ones(3)))  # fmt: skip
    line = here()
    exc = fails(lambda: ember.autograd.grad(out, [x, u], retain_graph=True))
    check_error(exc, line, "grad", "allow_unused=True", "f32[2]")
    snap.assert_unchanged()


def test_in_place_on_leaf_requiring_grad():
    x = ember.tensor(data(3), requires_grad=True)
    snap = Snapshot(x)
    line = here()
    exc = fails(lambda: x.add_(1))
    check_error(exc, line, "add_", "leaf", "requires grad", "f32[3]",
                twin=lambda: torch.ones(3, requires_grad=True).add_(1))  # fmt: skip
    line = here()
    exc = fails(lambda: x.__setitem__(0, 2.0))
    check_error(exc, line, "setitem", "leaf", "f32[3]",
                twin=lambda: torch.ones(3, requires_grad=True).__setitem__(0, 2.0))  # fmt: skip
    line = here()
    exc = fails(lambda: x[1:].mul_(2))
    check_error(exc, line, "mul_", "view", "leaf", "f32[2]", "f32[3]",
                twin=lambda: torch.ones(3, requires_grad=True)[1:].mul_(2))  # fmt: skip
    snap.assert_unchanged()
    with ember.no_grad():  # the documented way out
        x.add_(1)
    assert x._version == 1 and x.is_leaf and x.requires_grad


def test_requires_grad_false_on_non_leaf():
    x = ember.tensor(data(3), requires_grad=True)
    y = x * 2
    snap = Snapshot(x, y)
    line = here()
    exc = fails(lambda: setattr(y, "requires_grad", False))
    check_error(exc, line, "requires_grad_", "leaf", "f32[3]",
                twin=lambda: setattr(torch.ones(3, requires_grad=True) * 2, "requires_grad", False))  # fmt: skip
    snap.assert_unchanged()


def test_retain_grad_and_hook_without_grad():
    a = ember.tensor(data(3))
    ta = torch.tensor(data(3))
    line = here()
    exc = fails(lambda: a.retain_grad())
    check_error(exc, line, "retain_grad", "f32[3]", twin=lambda: ta.retain_grad())
    line = here()
    exc = fails(lambda: a.register_hook(lambda g: g))
    check_error(exc, line, "register_hook", "f32[3]", twin=lambda: ta.register_hook(lambda g: g))


def test_assigning_grad_of_wrong_shape():
    x = ember.tensor(data(3), requires_grad=True)
    snap = Snapshot(x)
    line = here()
    exc = fails(lambda: setattr(x, "grad", ember.ones(4)))
    check_error(exc, line, "grad", "f32[4]", "f32[3]",
                twin=lambda: setattr(torch.ones(3, requires_grad=True), "grad", torch.ones(4)))  # fmt: skip
    snap.assert_unchanged()


def test_custom_function_backward_returns_too_few_gradients():
    class Bad(ember.autograd.Function):
        @staticmethod
        def forward(ctx, a, b):
            return a * b

        @staticmethod
        def backward(ctx, g):
            return g  # one gradient for two inputs

    x = ember.tensor(data(3), requires_grad=True)
    w = ember.tensor(data(3, seed=1), requires_grad=True)
    out = Bad.apply(x, w).sum()
    line = here()
    exc = fails(lambda: out.backward())
    assert isinstance(exc, ember.EmberError) and isinstance(exc, RuntimeError)
    assert str(exc).startswith("BadBackward: ") and str(exc).endswith(f" at {FILE}:{line}")
    assert x.grad is None and w.grad is None


# ---------------------------------------------------------------- leaving ember


def test_numpy_on_tensor_requiring_grad():
    x = ember.tensor(data(2, 3), requires_grad=True)
    snap = Snapshot(x)
    line = here()
    exc = fails(lambda: x.numpy())
    check_error(exc, line, "numpy", "requires grad", "detach()", "f32[2,3]",
                twin=lambda: torch.ones(2, 3, requires_grad=True).numpy())  # fmt: skip
    snap.assert_unchanged()
    np.testing.assert_array_equal(x.detach().numpy(), data(2, 3))


def test_item_of_multi_element_tensor():
    a = ember.tensor(A34)
    snap = Snapshot(a)
    line = here()
    exc = fails(lambda: a.item())
    check_error(exc, line, "item", "12 elements", "f32[3,4]", twin=lambda: torch.ones(3, 4).item())
    line = here()
    exc = fails(lambda: bool(a))
    check_error(exc, line, "bool", "ambiguous", "f32[3,4]", twin=lambda: bool(torch.ones(3, 4)))
    line = here()
    exc = fails(lambda: float(a))
    check_error(exc, line, "float", "f32[3,4]", twin=lambda: float(torch.ones(3, 4)))
    line = here()
    exc = fails(lambda: int(a))
    check_error(exc, line, "int", "f32[3,4]", twin=lambda: int(torch.ones(3, 4)))
    snap.assert_unchanged()


def test_zero_dim_and_index_misuse():
    s = ember.tensor(1.5)
    line = here()
    exc = fails(lambda: len(s))
    check_error(exc, line, "len", "0-d", "f32[]", twin=lambda: len(torch.tensor(1.5)))
    line = here()
    exc = fails(lambda: iter(s))
    check_error(exc, line, "iter", "0-d", twin=lambda: iter(torch.tensor(1.5)))
    line = here()
    exc = fails(lambda: [1, 2][s])
    check_error(exc, line, "index", "f32[]", twin=lambda: [1, 2][torch.tensor(1.5)])


def test_unknown_device():
    line = here()
    exc = fails(lambda: ember.device("tpu"))
    check_error(exc, line, "device", "'tpu'", twin=lambda: torch.device("tpu"))


def test_error_location_points_at_the_callers_line_through_helpers():
    def model(x):
        return x @ ember.ones(5, 2)  # the failing line is here, inside user code

    line = inspect.getsourcelines(model)[1] + 1
    exc = fails(lambda: model(ember.ones(3, 4)))
    check_error(exc, line, "matmul", "f32[3,4] and f32[5,2]")


def test_errors_pickle():
    import pickle

    exc = fails(lambda: ember.ones(3, 4) @ ember.ones(5, 2))
    again = pickle.loads(pickle.dumps(exc))
    assert type(again) is type(exc) and str(again) == str(exc)


def test_setitem_out_of_range_names_setitem():
    a = ember.tensor(A34)
    line = here()
    exc = fails(lambda: a.__setitem__(5, 1.0))
    check_error(exc, line, "setitem", "index 5", twin=lambda: torch.ones(3, 4).__setitem__(5, 1.0))
