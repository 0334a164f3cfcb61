"""Every op of the table (`opinfo.OPS`) against PyTorch: values, dtypes, shapes, gradients.

torch is the oracle: the expected values never come from ember. Gradients are those of
``sum((out * w).sum())`` over the op's float outputs, with a fixed random ``w`` per output, so a
wrong gradient cannot hide behind a plain sum.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from opinfo import GRAD_DTYPES, LOW_PRECISION, OPS, OpInfo, Sample

import ember
from ember.frontend.tensor import Tensor
from ember.ir import ops as P

# (rtol, atol) by the dtype of the compared values; integers and bools compare exactly.
TOLERANCES = {
    "float16": (1e-2, 1e-3),
    "bfloat16": (1.6e-2, 4e-3),
    "float32": (1e-5, 1e-5),
    "float64": (1e-12, 1e-12),
}
GRAD_TOLERANCES = {
    "float16": (2e-2, 2e-2),
    "bfloat16": (5e-2, 5e-2),
    "float32": (1e-4, 1e-5),
    "float64": (1e-10, 1e-12),
}
_PRECISION = ["float64", "float32", "float16", "bfloat16"]  # from most to least precise


def _cases(select=None):
    for op in OPS:
        for dtype in op.dtypes:
            if select is not None and not select(op, dtype):
                continue
            for i, sample in enumerate(op.samples(dtype)):
                if select is not None and not select(op, dtype, sample):
                    continue
                marks = (
                    [pytest.mark.xfail(strict=True, reason=sample.xfail)] if sample.xfail else []
                )
                yield pytest.param(op, dtype, sample, id=f"{op.name}-{dtype}-{i}", marks=marks)


def _grad_select(op, dtype, sample=None):
    if not op.differentiable or dtype not in GRAD_DTYPES:
        return False
    if sample is None:
        return True
    return (
        sample.grad and sample.torch_grad and any(t.is_float and t.grad for t in sample.tensors())
    )


FORWARD_CASES = list(_cases())
GRAD_CASES = list(_cases(_grad_select))


# ---- comparing results ---------------------------------------------------------------------


def dtype_name(x) -> str:
    if isinstance(x, torch.Tensor):
        return str(x.dtype).removeprefix("torch.")
    return x.dtype.name


def to_numpy(x) -> np.ndarray:
    """Values of an ember or torch tensor as numpy (low precision floats as float32)."""
    if isinstance(x, torch.Tensor):
        x = x.detach()
        if x.dtype in (torch.float16, torch.bfloat16):
            x = x.float()
        return x.numpy()
    arr = np.asarray(x.detach().numpy())
    if dtype_name(x) in LOW_PRECISION:
        arr = arr.astype(np.float32)
    return arr


def flatten(out) -> list:
    """The tensors of a result: a tensor, or (nested) tuples/lists of them."""
    if isinstance(out, Tensor | torch.Tensor):
        return [out]
    if isinstance(out, tuple | list):
        return [t for o in out for t in flatten(o)]
    raise TypeError(f"unexpected result type {type(out).__name__}: {out!r}")


def least_precise(*names: str) -> str:
    floats = [n for n in names if n in TOLERANCES]
    return max(floats, key=_PRECISION.index) if floats else ""


def assert_close(actual, expected, what: str, tolerances=TOLERANCES, floor: str = "") -> None:
    """``actual`` (ember) equals ``expected`` (torch) in shape, dtype and values."""
    assert isinstance(actual, Tensor), f"{what}: expected an ember Tensor, got {type(actual)}"
    assert tuple(actual.shape) == tuple(expected.shape), (
        f"{what}: shape {tuple(actual.shape)} != torch's {tuple(expected.shape)}"
    )
    assert dtype_name(actual) == dtype_name(expected), (
        f"{what}: dtype {dtype_name(actual)} != torch's {dtype_name(expected)}"
    )
    got, want = to_numpy(actual), to_numpy(expected)
    name = least_precise(dtype_name(expected), floor) if dtype_name(expected) in TOLERANCES else ""
    if not name:
        np.testing.assert_array_equal(got, want, err_msg=what)
        return
    rtol, atol = tolerances[name]
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, equal_nan=True, err_msg=what)


def compare_outputs(op: OpInfo, dtype: str, actual, expected) -> None:
    a, e = flatten(actual), flatten(expected)
    assert isinstance(actual, tuple | list) == isinstance(expected, tuple | list), (
        f"{op.name}: result {type(actual).__name__}, torch's {type(expected).__name__}"
    )
    assert len(a) == len(e), f"{op.name}: {len(a)} outputs, torch has {len(e)}"
    tol = {**TOLERANCES, **op.tol}
    floor = dtype if dtype in TOLERANCES else ""
    for i, (x, y) in enumerate(zip(a, e)):
        assert_close(x, y, f"{op.name} output {i}", tol, floor)


# ---- tests ---------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:.*degrees of freedom")
@pytest.mark.parametrize("op, dtype, sample", FORWARD_CASES)
def test_forward(op: OpInfo, dtype: str, sample: Sample):
    t_args, t_kwargs, _ = sample.materialize(torch)
    expected = op.torch_fn(*t_args, **t_kwargs)
    e_args, e_kwargs, _ = sample.materialize(ember)
    actual = op.ember_fn(*e_args, **e_kwargs)
    compare_outputs(op, dtype, actual, expected)


def weighted_loss(lib, outputs: list, seed: int = 0):
    """``sum((out_i * w_i).sum())`` over the float outputs; None when none requires grad."""
    rng = np.random.default_rng(seed)
    loss = None
    for o in outputs:
        w = rng.standard_normal(tuple(o.shape))
        if dtype_name(o) not in TOLERANCES or not o.requires_grad:
            continue
        term = (o * lib.tensor(w, dtype=o.dtype)).sum()
        loss = term if loss is None else loss + term
    return loss


def gradients(lib, op: OpInfo, sample: Sample) -> list:
    """Gradients of the weighted loss for the sample's grad-requiring inputs (None: no path)."""
    args, kwargs, leaves = sample.materialize(lib, requires_grad=True)
    fn = op.torch_fn if lib is torch else op.ember_fn
    loss = weighted_loss(lib, flatten(fn(*args, **kwargs)))
    if loss is not None:
        loss.backward()
    return leaves, [leaf.grad for leaf in leaves]


@pytest.mark.parametrize("op, dtype, sample", GRAD_CASES)
def test_grad(op: OpInfo, dtype: str, sample: Sample):
    t_leaves, expected = gradients(torch, op, sample)
    e_leaves, actual = gradients(ember, op, sample)
    assert len(actual) == len(expected)
    for i, (leaf, got, want) in enumerate(zip(t_leaves, actual, expected)):
        if want is None:
            want = torch.zeros_like(leaf)
        if got is None:  # no gradient path in ember: fine only where torch's is all zeros
            assert not to_numpy(want).any(), f"{op.name}: input {i} got no gradient"
            continue
        floor = least_precise(dtype_name(leaf), dtype)
        assert_close(got, want, f"{op.name} grad of input {i}", GRAD_TOLERANCES, floor)


# ---- the primitive table -------------------------------------------------------------------


def test_op_table_has_no_missing_cells():
    assert P.missing_cells() == []


def _checking_binder(bind, seen: set, errors: list):
    """A binder that runs ``bind`` and checks the result against the primitive's rule."""

    def check(prim, args, attrs):
        out = bind(prim, args, attrs)
        seen.add(prim.name)
        shape, dtype = prim.infer(list(args), attrs)
        if tuple(out.shape) != tuple(shape) or out.dtype is not dtype:
            operands = ", ".join(
                f"{a.dtype.name}{list(a.shape)}" if isinstance(a, Tensor) else repr(a) for a in args
            )
            errors.append(
                f"{prim.name}({operands}, {attrs}): kernel gave {out.dtype.name}"
                f"{list(out.shape)}, rule says {dtype.name}{list(shape)}"
            )
        return out

    return check


def _run_table(op: OpInfo, seen: set, errors: list, monkeypatch, dtypes=None) -> None:
    from ember.frontend import dispatch

    checker = _checking_binder(dispatch.eager_bind, seen, errors)
    monkeypatch.setattr(Tensor, "__ember_bind__", staticmethod(checker))
    P.push_binder(_checking_binder(dispatch.eager_bind, seen, errors))
    try:
        for dtype in op.dtypes:
            if dtypes is not None and dtype not in dtypes:
                continue
            for sample in op.samples(dtype):
                if sample.xfail:
                    continue
                grad = op.differentiable and dtype in GRAD_DTYPES and sample.grad
                args, kwargs, _ = sample.materialize(ember, requires_grad=grad)
                loss = weighted_loss(ember, flatten(op.ember_fn(*args, **kwargs)))
                if loss is not None:
                    loss.backward()
    finally:
        P.pop_binder()


@pytest.mark.parametrize("op", OPS, ids=lambda op: op.name)
def test_kernels_follow_primitive_rules(op: OpInfo, monkeypatch):
    """Every primitive applied by an op's forward and backward returns the shape and dtype that
    the primitive table's rule infers for its operands."""
    errors: list[str] = []
    _run_table(op, set(), errors, monkeypatch)
    assert not errors, "\n".join(sorted(set(errors))[:20])


def test_table_reaches_every_primitive(monkeypatch):
    seen: set[str] = set()
    for op in OPS:
        _run_table(op, seen, [], monkeypatch, dtypes=("float32", "int64"))
    unreached = set(P.PRIMITIVES) - seen
    # random bits, the marker capture puts where detach() stops gradients, and the index
    # check capture records where eager code checks index values: not ops here
    assert unreached <= {"philox_uniform", "stop_gradient", "check_range"}, sorted(unreached)
