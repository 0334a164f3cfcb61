"""api_extras: inference_mode, finfo/iinfo, predicates, set_printoptions, anomaly flags."""

import numpy as np
import pytest
import torch

import ember
from ember.frontend.api_extras import (
    detect_anomaly,
    finfo,
    iinfo,
    inference_mode,
    is_anomaly_check_nan_enabled,
    is_anomaly_enabled,
    is_floating_point,
    is_inference_mode_enabled,
    is_tensor,
    numel,
    set_detect_anomaly,
    set_printoptions,
)
from ember.frontend.autograd.anomaly import check_nan

FLOATS = {
    ember.float16: torch.float16,
    ember.bfloat16: torch.bfloat16,
    ember.float32: torch.float32,
    ember.float64: torch.float64,
}
INTS = {ember.int8: torch.int8, ember.int32: torch.int32, ember.int64: torch.int64}


# ---- inference_mode ------------------------------------------------------------------------


def test_inference_mode_context_matches_torch():
    x = ember.ones(2, requires_grad=True)
    assert not is_inference_mode_enabled()
    with inference_mode():
        assert is_inference_mode_enabled() and not ember.is_grad_enabled()
        y = x * 2
        assert not y.requires_grad and y.grad_fn is None
        with inference_mode(False):  # PyTorch: inference off, grad on
            assert is_inference_mode_enabled() is False and ember.is_grad_enabled()
            assert (x * 2).requires_grad
        assert is_inference_mode_enabled()
    assert not is_inference_mode_enabled() and ember.is_grad_enabled()
    assert (x * 2).requires_grad


@pytest.mark.parametrize("outer", ["none", "no_grad", "inference"])
@pytest.mark.parametrize("mode", [True, False])
def test_inference_mode_flags_match_torch(outer, mode):
    t_outer = {"none": torch.enable_grad, "no_grad": torch.no_grad,
               "inference": torch.inference_mode}[outer]  # fmt: skip
    e_outer = {"none": ember.enable_grad, "no_grad": ember.no_grad,
               "inference": inference_mode}[outer]  # fmt: skip
    with t_outer(), torch.inference_mode(mode):
        t_flags = (torch.is_inference_mode_enabled(), torch.is_grad_enabled())
    with e_outer(), inference_mode(mode):
        e_flags = (is_inference_mode_enabled(), ember.is_grad_enabled())
    assert e_flags == t_flags


def test_inference_mode_restores_on_error_and_nested_no_grad():
    with pytest.raises(ValueError), inference_mode():
        raise ValueError
    assert ember.is_grad_enabled() and not is_inference_mode_enabled()
    with ember.no_grad():
        with inference_mode():
            pass
        assert not ember.is_grad_enabled()
    assert ember.is_grad_enabled()


def test_inference_mode_decorators():
    x = ember.ones(2, requires_grad=True)

    @inference_mode()
    def f(t):
        assert is_inference_mode_enabled()
        return t * 2

    @inference_mode
    def g(t):
        return t * 3

    @inference_mode(mode=False)
    def h(t):
        return t * 4

    assert not f(x).requires_grad and not g(x).requires_grad and h(x).requires_grad
    assert f.__name__ == "f" and g.__name__ == "g"
    assert not is_inference_mode_enabled()


# ---- finfo / iinfo -------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", list(FLOATS), ids=lambda d: d.name)
def test_finfo_matches_torch(dtype):
    e, t = finfo(dtype), torch.finfo(FLOATS[dtype])
    for field in ("bits", "eps", "max", "min", "tiny", "smallest_normal", "resolution", "dtype"):
        assert getattr(e, field) == getattr(t, field), field
        assert type(getattr(e, field)) is type(getattr(t, field)), field
    assert repr(e) == repr(t)
    assert e == finfo(dtype)


def test_finfo_default_and_errors():
    assert repr(finfo()) == repr(torch.finfo())
    ember.set_default_dtype(ember.float64)
    try:
        assert finfo().dtype == "float64"
    finally:
        ember.set_default_dtype(ember.float32)
    with pytest.raises(TypeError, match="floating point"):
        finfo(ember.int32)
    with pytest.raises(TypeError, match="floating point"):
        finfo(ember.bool)
    with pytest.raises(TypeError, match="must be ember.dtype"):
        finfo("float32")


@pytest.mark.parametrize("dtype", list(INTS), ids=lambda d: d.name)
def test_iinfo_matches_torch(dtype):
    e, t = iinfo(dtype), torch.iinfo(INTS[dtype])
    for field in ("bits", "max", "min", "dtype"):
        assert getattr(e, field) == getattr(t, field), field
        assert type(getattr(e, field)) is type(getattr(t, field)), field
    assert repr(e) == repr(t)


def test_iinfo_errors():
    with pytest.raises(TypeError, match="ember.bool is not supported"):
        iinfo(ember.bool)
    with pytest.raises(TypeError, match="integer input type"):
        iinfo(ember.float32)


# ---- predicates ----------------------------------------------------------------------------


def test_is_tensor_is_floating_point_numel():
    assert is_tensor(ember.ones(1)) and is_tensor(ember.nn.Parameter(ember.ones(1)))
    assert not is_tensor(np.ones(1)) and not is_tensor(1.0) and not is_tensor(torch.ones(1))
    for e_dt, t_dt in {**FLOATS, **INTS}.items():
        assert is_floating_point(ember.zeros(2, dtype=e_dt)) == torch.is_floating_point(
            torch.zeros(2, dtype=t_dt)
        )
    assert not is_floating_point(ember.tensor([True]))
    for shape in [(), (0,), (2, 3), (4, 0, 5), (2, 3, 4)]:
        assert numel(ember.zeros(shape)) == torch.numel(torch.zeros(shape))
        assert type(numel(ember.zeros(shape))) is int
    with pytest.raises(TypeError, match="must be Tensor, not float"):
        is_floating_point(1.0)
    with pytest.raises(TypeError, match="must be Tensor, not list"):
        numel([1])


# ---- set_printoptions ----------------------------------------------------------------------


@pytest.fixture
def reset_print():
    yield
    set_printoptions(profile="default")
    torch.set_printoptions(profile="default")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"precision": 2},
        {"precision": 7},
        {"threshold": 5},
        {"threshold": 5, "edgeitems": 1},
        {"linewidth": 30},
        {"profile": "short"},
        {"profile": "full"},
    ],
    ids=str,
)
def test_set_printoptions_matches_torch(reset_print, kwargs):
    rng = np.random.default_rng(0)
    arr = rng.standard_normal((4, 9)) * 3
    torch.set_printoptions(**kwargs)
    set_printoptions(**kwargs)
    for a in (arr, arr[0], np.arange(2000.0)):
        expected = repr(torch.tensor(a, dtype=torch.float32))
        assert repr(ember.tensor(a, dtype=ember.float32)) == expected.replace("torch.", "ember.")


def test_set_printoptions_default_restores_and_rejects(reset_print):
    before = repr(ember.tensor([1.123456, 2.0]))
    set_printoptions(precision=1)
    assert repr(ember.tensor([1.123456, 2.0])) != before
    set_printoptions(profile="default")
    assert repr(ember.tensor([1.123456, 2.0])) == before
    with pytest.raises(NotImplementedError, match="sci_mode"):
        set_printoptions(sci_mode=True)
    with pytest.raises(ValueError, match="profile"):
        set_printoptions(profile="tiny")


# ---- anomaly mode --------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:Anomaly Detection has been enabled")
def test_anomaly_flags_match_torch():
    assert is_anomaly_enabled() == torch.is_anomaly_enabled()
    with detect_anomaly(), torch.autograd.detect_anomaly():
        assert is_anomaly_enabled() == torch.is_anomaly_enabled() is True
        assert is_anomaly_check_nan_enabled() == torch.is_anomaly_check_nan_enabled()
    with detect_anomaly(check_nan=False):
        assert is_anomaly_enabled() and not is_anomaly_check_nan_enabled()
    assert not is_anomaly_enabled() and is_anomaly_check_nan_enabled()
    set_detect_anomaly(True)
    assert is_anomaly_enabled()
    set_detect_anomaly(False)
    assert not is_anomaly_enabled()
    with set_detect_anomaly(True):
        assert is_anomaly_enabled()
    assert not is_anomaly_enabled()

    @detect_anomaly()
    def f():
        return is_anomaly_enabled()

    assert f() and not is_anomaly_enabled()


def test_backward_still_runs_under_detect_anomaly():
    x = ember.tensor([1.0, 4.0], requires_grad=True)
    with detect_anomaly():
        (x.sqrt() * 2).sum().backward()
    np.testing.assert_allclose(x.grad.tolist(), [1.0, 0.5])


def test_check_nan_helper():
    x = ember.tensor([0.0, 1.0], requires_grad=True)
    y = x * float("nan")
    check_nan(y.grad_fn, [None, ember.ones(2), ember.tensor([1, 2])])
    with pytest.raises(RuntimeError, match=r"returned nan values in its 1th output"):
        check_nan(y.grad_fn, [ember.ones(2), ember.tensor([1.0, float("nan")])])


@pytest.mark.parametrize("lib", [ember, torch], ids=["ember", "torch"])
def test_backward_under_detect_anomaly_raises_at_the_first_nan(lib):
    x = lib.tensor([0.0, 1.0], requires_grad=True)
    loss = (x.sqrt() * 0).sum()  # d sqrt at 0 is inf, times 0: nan
    with lib.autograd.detect_anomaly(), pytest.raises(RuntimeError, match="returned nan values"):
        loss.backward()
    assert x.grad is None
