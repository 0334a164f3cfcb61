"""``ember.linalg`` against ``torch.linalg`` in float64: forward values, the gradients of a
weighted sum of every output with fixed random weights (first order, and second order through
``create_graph`` for the factorizations), batching and broadcasting, result types and errors.

Outputs defined up to a sign (singular and eigen vectors) enter the losses through
sign-invariant products (``U diag(w) U^T``) unless LAPACK's conventions are compared directly.
"""

import math

import numpy as np
import pytest
import torch

import ember
import ember.linalg as LA

RNG = np.random.default_rng(7)
TOL = 1e-9


def _arr(*shape):
    return RNG.standard_normal(shape)


def _spd(*shape):
    x = RNG.standard_normal(shape)
    return x @ np.swapaxes(x, -1, -2) + shape[-1] * np.eye(shape[-1])


def _leaves(lib, arrays):
    if lib is torch:
        return [torch.tensor(a, requires_grad=True) for a in arrays]
    return [ember.tensor(a, requires_grad=True) for a in arrays]


def _flat(out) -> list:
    if isinstance(out, tuple):
        return [t for o in out for t in _flat(o)]
    return [out]


def _np(t):
    return t.detach().numpy()


def _run(fn, arrays, lib, weights=None):
    leaves = _leaves(lib, arrays)
    linalg = torch.linalg if lib is torch else LA
    outs = _flat(fn(linalg, lib, *leaves))
    floats = [o for o in outs if o.dtype in (torch.float64, ember.float64) and o.requires_grad]
    if weights is None:
        weights = [RNG.standard_normal(tuple(o.shape)) for o in floats]
    loss = sum((o * lib.tensor(w)).sum() for o, w in zip(floats, weights))
    grads = lib.autograd.grad(loss, leaves, allow_unused=True)
    return outs, grads, weights


def check(fn, *arrays, tol=TOL, grad=True):
    """Values of every output and the gradients of a weighted sum of them agree with torch."""
    if not grad:
        e_out = _flat(fn(LA, ember, *[ember.tensor(a) for a in arrays]))
        t_out = _flat(fn(torch.linalg, torch, *[torch.tensor(a) for a in arrays]))
        e_grads = t_grads = ()
    else:
        t_out, t_grads, weights = _run(fn, arrays, torch)
        e_out, e_grads, _ = _run(fn, arrays, ember, weights)
    assert len(e_out) == len(t_out)
    for e, t in zip(e_out, t_out):
        assert tuple(e.shape) == tuple(t.shape)
        np.testing.assert_allclose(_np(e), _np(t), rtol=tol, atol=tol)
    for e, t in zip(e_grads, t_grads):
        assert (e is None) == (t is None)
        if t is not None:
            np.testing.assert_allclose(_np(e), _np(t), rtol=1e-7, atol=1e-8)


def _sym(lib, x):
    return (x + x.mT) / 2


def _gauge_free(lib, U, w_shape_like):
    """``U diag(c) U^T`` for fixed c: unchanged by flipping the sign of any column."""
    c = lib.tensor(np.linspace(0.5, 1.5, w_shape_like.shape[-1]))
    return (U * c) @ U.mT


CASES = {
    "inv": (lambda L, lib, a: L.inv(a), [(3, 3)]),
    "inv_batched": (lambda L, lib, a: L.inv(a), [(2, 4, 4)]),
    "solve_matrix": (lambda L, lib, a, b: L.solve(a, b), [(3, 3), (3, 2)]),
    "solve_vector": (lambda L, lib, a, b: L.solve(a, b), [(3, 3), (3,)]),
    "solve_batched_vector": (lambda L, lib, a, b: L.solve(a, b), [(2, 3, 3), (2, 3)]),
    "solve_broadcast": (lambda L, lib, a, b: L.solve(a, b), [(2, 1, 3, 3), (4, 3, 2)]),
    "solve_left_false": (lambda L, lib, a, b: L.solve(a, b, left=False), [(3, 3), (2, 3)]),
    "solve_triangular_lower": (
        lambda L, lib, a, b: L.solve_triangular(a + 4 * lib.eye(3, dtype=a.dtype), b,
                                                upper=False),
        [(3, 3), (3, 2)],
    ),  # fmt: skip
    "solve_triangular_upper_right_unit": (
        lambda L, lib, a, b: L.solve_triangular(a, b, upper=True, left=False, unitriangular=True),
        [(2, 3, 3), (2, 4, 3)],
    ),
    "det": (lambda L, lib, a: L.det(a), [(3, 3)]),
    "det_batched": (lambda L, lib, a: L.det(a), [(2, 3, 4, 4)]),
    "slogdet": (lambda L, lib, a: L.slogdet(a), [(2, 3, 3)]),
    "cholesky": (lambda L, lib, x: L.cholesky(x @ x.mT + 3 * lib.eye(3, dtype=x.dtype)),
                 [(3, 3)]),  # fmt: skip
    "cholesky_upper_batched": (
        lambda L, lib, x: L.cholesky(x @ x.mT + 3 * lib.eye(3, dtype=x.dtype), upper=True),
        [(2, 3, 3)],
    ),
    "qr_tall": (lambda L, lib, a: L.qr(a), [(5, 3)]),
    "qr_wide": (lambda L, lib, a: L.qr(a), [(3, 5)]),
    "qr_complete_wide": (lambda L, lib, a: L.qr(a, mode="complete"), [(2, 3, 4)]),
    "qr_square_batched": (lambda L, lib, a: L.qr(a), [(2, 4, 4)]),
    "svdvals": (lambda L, lib, a: L.svdvals(a), [(4, 3)]),
    "svdvals_batched_wide": (lambda L, lib, a: L.svdvals(a), [(2, 3, 5)]),
    "svd_reduced_tall": (
        lambda L, lib, a: _svd_invariants(L, lib, a, full=False), [(5, 3)]),
    "svd_reduced_wide": (
        lambda L, lib, a: _svd_invariants(L, lib, a, full=False), [(2, 3, 5)]),
    "svd_full_tall": (lambda L, lib, a: _svd_invariants(L, lib, a, full=True), [(4, 3)]),
    "svd_full_square": (lambda L, lib, a: _svd_invariants(L, lib, a, full=True), [(3, 3)]),
    "eigh": (lambda L, lib, x: _eigh_invariants(L, lib, _sym(lib, x), "L"), [(4, 4)]),
    "eigh_upper_batched": (
        lambda L, lib, x: _eigh_invariants(L, lib, _sym(lib, x), "U"), [(2, 3, 3)]),
    "eigvalsh": (lambda L, lib, x: L.eigvalsh(_sym(lib, x)), [(2, 4, 4)]),
    "pinv_tall": (lambda L, lib, a: L.pinv(a), [(5, 3)]),
    "pinv_wide_batched": (lambda L, lib, a: L.pinv(a), [(2, 3, 4)]),
    "pinv_hermitian": (lambda L, lib, x: L.pinv(_sym(lib, x), hermitian=True), [(3, 3)]),
    "lstsq": (lambda L, lib, a, b: L.lstsq(a, b).solution, [(5, 3), (5, 2)]),
    "lstsq_vector_batched": (lambda L, lib, a, b: L.lstsq(a, b).solution, [(2, 5, 3), (2, 5)]),
    "lstsq_gelsd": (lambda L, lib, a, b: L.lstsq(a, b, driver="gelsd"), [(6, 3), (6, 2)]),
    "lstsq_gels_square": (lambda L, lib, a, b: L.lstsq(a, b, driver="gels"), [(3, 3), (3, 1)]),
}  # fmt: skip


def _svd_invariants(L, lib, a, full):
    """The singular values, the products ``U diag(c) U^T``, ``V^T diag(c) V`` of the first k
    vectors (defined up to sign) and the reconstruction ``U S Vh``."""
    U, S, Vh = L.svd(a, full_matrices=full)
    k = S.shape[-1]
    Uk, Vk = U[..., :k], Vh[..., :k, :].mT
    recon = (Uk * S.unsqueeze(-2)) @ Vk.mT
    return S, _gauge_free(lib, Uk, S), _gauge_free(lib, Vk, S), recon, lib.tensor(U.shape)


def _eigh_invariants(L, lib, a, uplo):
    w, V = L.eigh(a, UPLO=uplo)
    return w, _gauge_free(lib, V, w), (V * w.unsqueeze(-2)) @ V.mT


@pytest.mark.parametrize("name", list(CASES))
def test_against_torch(name):
    fn, shapes = CASES[name]
    check(fn, *[_arr(*s) for s in shapes])


def test_qr_and_svd_factors_match_lapack_signs():
    a = _arr(2, 4, 3)
    for e, t in zip(LA.qr(ember.tensor(a)), torch.linalg.qr(torch.tensor(a))):
        np.testing.assert_allclose(e.numpy(), t.numpy(), atol=1e-12)
    for e, t in zip(LA.svd(ember.tensor(a)), torch.linalg.svd(torch.tensor(a))):
        np.testing.assert_allclose(np.abs(e.numpy()), np.abs(t.numpy()), atol=1e-12)


def test_qr_r_mode_and_result_fields():
    a = _arr(4, 3)
    q, r = LA.qr(ember.tensor(a), mode="r")
    tq, tr = torch.linalg.qr(torch.tensor(a), mode="r")
    assert tuple(q.shape) == tuple(tq.shape) == (0,)
    np.testing.assert_allclose(r.numpy(), tr.numpy(), atol=1e-12)
    res = LA.svd(ember.tensor(a))
    assert (res.U.shape, res.S.shape, res.Vh.shape) == ((4, 4), (3,), (3, 3))
    eig = LA.eigh(ember.tensor(a[:3] @ a[:3].T))
    assert eig.eigenvalues.shape == (3,) and eig.eigenvectors.shape == (3, 3)
    sd = LA.slogdet(ember.tensor(a[:3]))
    assert sd.sign.shape == () and sd.logabsdet.shape == ()


def test_lstsq_result_fields():
    a, b = _arr(2, 5, 3), _arr(2, 5, 2)
    for driver in (None, "gelsy", "gelsd", "gelss", "gels"):
        e = LA.lstsq(ember.tensor(a), ember.tensor(b), driver=driver)
        t = torch.linalg.lstsq(torch.tensor(a), torch.tensor(b), driver=driver)
        assert type(e).__name__ == "linalg_lstsq"
        for field in ("solution", "residuals", "rank", "singular_values"):
            ev, tv = getattr(e, field), getattr(t, field)
            assert tuple(ev.shape) == tuple(tv.shape), (driver, field)
            np.testing.assert_allclose(ev.numpy(), tv.numpy(), atol=1e-10, err_msg=field)


def test_lstsq_residual_gradient():
    check(lambda L, lib, a, b: L.lstsq(a, b, driver="gelsd").residuals, _arr(6, 3), _arr(6, 2))


NORMS = [
    ("vector_2", lambda L, x: L.vector_norm(x), (3, 4)),
    ("vector_3_dim", lambda L, x: L.vector_norm(x, 3, dim=1), (3, 4)),
    ("vector_1_keepdim", lambda L, x: L.vector_norm(x, 1, dim=(0, 2), keepdim=True), (2, 3, 4)),
    ("vector_inf", lambda L, x: L.vector_norm(x, math.inf, dim=-1), (3, 4)),
    ("vector_-inf", lambda L, x: L.vector_norm(x, -math.inf), (3, 4)),
    ("vector_0", lambda L, x: L.vector_norm(x, 0), (3, 4)),
    ("vector_0.5", lambda L, x: L.vector_norm(x, 0.5, dim=0), (3, 4)),
    ("vector_-2", lambda L, x: L.vector_norm(x, -2, dim=0), (3, 4)),
    ("vector_scalar", lambda L, x: L.vector_norm(x), ()),
] + [
    (f"matrix_{o}", lambda L, x, o=o: L.matrix_norm(x, o), (2, 4, 3))
    for o in ("fro", "nuc", math.inf, -math.inf, 1, -1, 2, -2)
] + [
    (f"matrix_{o}_dims_keepdim",
     lambda L, x, o=o: L.matrix_norm(x, o, dim=(2, 0), keepdim=True), (3, 2, 4))
    for o in ("fro", "nuc", math.inf, -1, 2)
] + [
    ("norm_default", lambda L, x: L.norm(x), (2, 3, 4)),
    ("norm_matrix_ord", lambda L, x: L.norm(x, 1), (3, 4)),
    ("norm_vector_ord", lambda L, x: L.norm(x, 3), (4,)),
    ("norm_dim_int", lambda L, x: L.norm(x, dim=1), (3, 4)),
    ("norm_dim_pair", lambda L, x: L.norm(x, "nuc", dim=(0, 1)), (3, 4)),
]  # fmt: skip


@pytest.mark.parametrize("name,fn,shape", NORMS, ids=[n[0] for n in NORMS])
def test_norms_against_torch(name, fn, shape):
    # the count of non-zeros is piecewise constant: torch records a zero gradient, ember none
    check(lambda L, lib, x: fn(L, x), _arr(*shape), grad=name != "vector_0")


DOUBLE = {
    "inv": (lambda L, a: L.inv(a), (3, 3)),
    "solve": (lambda L, a: L.solve(a, a[..., :1] * 2 + 1), (3, 3)),
    "det": (lambda L, a: L.det(a), (3, 3)),
    "slogdet": (lambda L, a: L.slogdet(a).logabsdet, (3, 3)),
    "cholesky": (
        lambda L, a: L.cholesky(a @ a.mT + 3 * torch_or_ember(a).eye(3, dtype=a.dtype)),
        (3, 3),
    ),  # fmt: skip
    "eigvalsh": (lambda L, a: L.eigvalsh(a + a.mT), (3, 3)),
    "svdvals": (lambda L, a: L.svdvals(a), (4, 3)),
    "qr_R": (lambda L, a: L.qr(a).R, (4, 3)),
    "solve_triangular": (
        lambda L, a: L.solve_triangular(
            a + 4 * torch_or_ember(a).eye(3, dtype=a.dtype), a, upper=True
        ),
        (3, 3),
    ),  # fmt: skip
    "matrix_norm_2": (lambda L, a: L.matrix_norm(a, 2), (3, 3)),
}


def torch_or_ember(t):
    return torch if isinstance(t, torch.Tensor) else ember


@pytest.mark.parametrize("name", list(DOUBLE))
def test_second_order_against_torch(name):
    """The gradient of ``sum(grad(loss)^2)``: the backward formulas are differentiable."""
    fn, shape = DOUBLE[name]
    a = _arr(*shape)
    w = None
    results = []
    for lib, L in ((torch, torch.linalg), (ember, LA)):
        x = lib.tensor(a, requires_grad=True)
        out = fn(L, x)
        if w is None:
            w = RNG.standard_normal(tuple(out.shape))
        (g,) = lib.autograd.grad((out * lib.tensor(w)).sum(), [x], create_graph=True)
        (gg,) = lib.autograd.grad((g * g).sum(), [x])
        results.append(_np(gg))
    np.testing.assert_allclose(results[1], results[0], rtol=1e-6, atol=1e-8)


def test_det_gradient_of_singular_matrix_is_the_adjugate():
    a = np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [1.0, 0.0, 1.0]])  # rank 2
    x = ember.tensor(a, requires_grad=True)
    LA.det(x).backward()
    cof = np.array([[np.linalg.det(np.delete(np.delete(a, i, 0), j, 1)) * (-1) ** (i + j)
                     for j in range(3)] for i in range(3)])  # fmt: skip
    np.testing.assert_allclose(x.grad.numpy(), cof, atol=1e-10)


def test_float32_results_stay_float32():
    a = ember.tensor(_spd(3, 3), dtype=ember.float32)
    for out in (LA.inv(a), LA.det(a), LA.cholesky(a), LA.svdvals(a), LA.eigh(a).eigenvalues,
                LA.qr(a).Q, LA.matrix_norm(a, "nuc"), LA.solve(a, a)):  # fmt: skip
        assert out.dtype is ember.float32


ERRORS = [
    (lambda: LA.inv(ember.zeros(2, 2, dtype=ember.float64)), LA.LinAlgError,
     "linalg.inv: the inversion could not be completed because the input matrix is singular"),
    (lambda: LA.cholesky(-ember.eye(2, dtype=ember.float64)), LA.LinAlgError,
     "linalg.cholesky: The factorization could not be completed because the input is not "
     r"positive-definite \(the leading minor of order 1 is not positive-definite\)"),
    (lambda: LA.cholesky(ember.tensor([[[1.0, 0], [0, 1]], [[1.0, 2], [2, 1]]])), LA.LinAlgError,
     r"\(Batch element 1\): .* leading minor of order 2"),
    (lambda: LA.inv(ember.zeros(2, 3)), RuntimeError,
     "linalg.inv: A must be batches of square matrices, but they are 2 by 3 matrices"),
    (lambda: LA.inv(ember.zeros(2, 2, dtype=ember.int64)), RuntimeError,
     "linalg.inv: Expected a floating point or complex tensor as input. Got Long"),
    (lambda: LA.det(ember.zeros(3)), RuntimeError,
     "linalg.det: The input tensor A must have at least 2 dimensions."),
    (lambda: LA.inv(ember.zeros(2, 2, dtype=ember.float16)), RuntimeError,
     "linalg.inv: Low precision dtypes not supported. Got Half"),
    (lambda: LA.solve(ember.eye(2), ember.ones(2, dtype=ember.float64)), RuntimeError,
     "linalg.solve: Expected A and B to have the same dtype, but found A of type Float and B of "
     "type Double instead"),
    (lambda: LA.solve(ember.eye(2), ember.ones(3)), RuntimeError,
     r"linalg.solve: Incompatible shapes of A and B for the equation AX = B \(2x2 and 3x1\)"),
    (lambda: LA.solve(ember.zeros(2, 2), ember.ones(2)), LA.LinAlgError,
     "linalg.solve: The solver failed because the input matrix is singular."),
    (lambda: LA.vector_norm(ember.ones(2, dtype=ember.int64)), RuntimeError,
     "linalg.vector_norm: Expected a floating point or complex tensor as input. Got Long"),
    (lambda: LA.norm(ember.ones(2, 2, 2), ord=2), RuntimeError,
     "linalg.norm: If dim is not specified but ord is, the input must be 1D or 2D. Got 3D."),
    (lambda: LA.matrix_norm(ember.ones(2, 2), ord=3), RuntimeError,
     "linalg.matrix_norm: Order 3 not supported."),
    (lambda: LA.qr(ember.ones(2, 2), mode="x"), RuntimeError,
     "qr received unrecognized mode 'x' but expected one of 'reduced' \\(default\\), 'r', or "
     "'complete'"),
    (lambda: LA.eigh(ember.ones(2, 2), UPLO="X"), RuntimeError,
     "Expected UPLO argument to be 'L' or 'U', but got X"),
    (lambda: LA.solve_triangular(ember.eye(2), ember.ones(2), upper=False), RuntimeError,
     "linalg.solve_triangular: The input tensor B must have at least 2 dimensions."),
]  # fmt: skip


@pytest.mark.parametrize("make,exc,message", ERRORS)
def test_errors(make, exc, message):
    with pytest.raises(exc, match=message) as info:
        make()
    assert "test_linalg.py" in str(info.value)


@pytest.mark.parametrize("mode,shape", [("r", (3, 2)), ("complete", (4, 2))])
def test_qr_backward_refusals(mode, shape):
    x = ember.tensor(_arr(*shape), requires_grad=True)
    with pytest.raises(RuntimeError, match="linalg.qr"):
        LA.qr(x, mode=mode).R.sum().backward()


def test_linalg_error_is_a_runtime_error_and_tensor_methods_reach_linalg():
    assert issubclass(LA.LinAlgError, RuntimeError)
    assert ember.linalg.matmul is ember.matmul
