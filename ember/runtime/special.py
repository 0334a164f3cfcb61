"""Special functions numpy lacks (erf), vectorized and accurate to float64 rounding.

Method: W. J. Cody's rational Chebyshev approximations ("Rational Chebyshev Approximations
for the Error Function", Math. Comp. 23 (1969) 631-637), with the coefficients and range
split of netlib specfun ``CALERF``:

* ``|x| <= 0.46875``: ``erf(x) = x * P(x^2) / Q(x^2)``, ``erfc = 1 - erf``;
* ``0.46875 < |x| <= 4``: ``erfc(|x|) = exp(-x^2) * P(|x|) / Q(|x|)``;
* ``|x| > 4``: ``erfc(|x|) = exp(-x^2) / |x| * (1/sqrt(pi) + z * P(z) / Q(z))``, ``z = 1/x^2``;

and ``erf = 1 - erfc`` there. ``exp(-x^2)`` is evaluated as ``exp(-s^2) * exp(-(x-s)(x+s))``
with ``s = trunc(16 x) / 16`` (exact ``s^2``), so the rounding error of ``x^2`` is not
amplified by the exponential. Negative arguments use ``erf(-x) = -erf(x)`` and
``erfc(-x) = 2 - erfc(x)``.

Everything is computed in float64 and cast back to the input dtype (float16, float32,
float64 or ml_dtypes' bfloat16); other inputs (integers, bools) give float64.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["erf", "erfc"]

# erf(x) = x * A(x^2) / B(x^2) for |x| <= THRESH (A[4] is the leading numerator coefficient).
_A = (3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02,
      3.20937758913846947e03, 1.85777706184603153e-1)  # fmt: skip
_B = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03,
      2.84423683343917062e03)  # fmt: skip
# erfc(x) = exp(-x^2) * C(x) / D(x) for THRESH < x <= 4 (C[8] is the leading coefficient).
_C = (5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01,
      2.98635138197400131e02, 8.81952221241769090e02, 1.71204761263407058e03,
      2.05107837782607147e03, 1.23033935479799725e03, 2.15311535474403846e-8)  # fmt: skip
_D = (1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02,
      1.62138957456669019e03, 3.29079923573345963e03, 4.36261909014324716e03,
      3.43936767414372164e03, 1.23033935480374942e03)  # fmt: skip
# erfc(x) = exp(-x^2) / x * (1/sqrt(pi) + z * P(z) / Q(z)), z = 1/x^2, for x > 4.
_P = (3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1,
      1.60837851487422766e-2, 6.58749161529837803e-4, 1.63153871373020978e-2)  # fmt: skip
_Q = (2.56852019228982242e00, 1.87295284992346725e00, 5.27905102951428412e-1,
      6.05183413124413191e-2, 2.33520497626869185e-3)  # fmt: skip

_THRESH = 0.46875
_SQRPI = 5.6418958354775628695e-1  # 1/sqrt(pi)
_XSMALL = 1.11e-16  # below this, erf(x) = x * 2/sqrt(pi) to float64 rounding
_XHUGE = 30.0  # erfc(x) underflows to 0 (below the smallest subnormal) beyond ~27.3
_XONE = 6.0  # erf(x) rounds to exactly 1 in float64 beyond ~5.93

_FLOAT_DTYPES = {np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)}
try:  # bfloat16 is a real 2-byte numpy dtype when ml_dtypes is installed
    import ml_dtypes

    _FLOAT_DTYPES.add(np.dtype(ml_dtypes.bfloat16))
except ImportError:  # pragma: no cover
    pass


def _small(y):
    """erf(y) for ``|y| <= THRESH`` (y may be negative; the approximation is odd)."""
    ysq = np.where(np.abs(y) > _XSMALL, y * y, 0.0)
    xnum = _A[4] * ysq
    xden = ysq
    for i in range(3):
        xnum = (xnum + _A[i]) * ysq
        xden = (xden + _B[i]) * ysq
    return y * (xnum + _A[3]) / (xden + _B[3])


def _exp_neg_sq(y):
    """``exp(-y*y)`` for ``y >= 0`` without amplifying the rounding error of ``y*y``."""
    s = np.trunc(y * 16.0) / 16.0
    return np.exp(-s * s) * np.exp(-(y - s) * (y + s))


def _erfc_mid(y):
    """The rational factor of erfc(y) for ``THRESH < y <= 4``."""
    xnum = _C[8] * y
    xden = y
    for i in range(7):
        xnum = (xnum + _C[i]) * y
        xden = (xden + _D[i]) * y
    return (xnum + _C[7]) / (xden + _D[7])


def _erfc_big(y):
    """The rational factor of erfc(y) for ``y > 4``."""
    z = 1.0 / (y * y)
    xnum = _P[5] * z
    xden = z
    for i in range(4):
        xnum = (xnum + _P[i]) * z
        xden = (xden + _Q[i]) * z
    return (_SQRPI - z * (xnum + _P[4]) / (xden + _Q[4])) / y


def _erfc_pos(y):
    """erfc(y) for ``y > THRESH`` (finite; y may be huge, the result then underflows to 0).

    Each range's approximation runs only on the elements in that range."""
    y = np.minimum(y, _XHUGE)
    mid = y <= 4.0
    factor = np.empty_like(y)
    factor[mid] = _erfc_mid(y[mid])
    big = ~mid
    factor[big] = _erfc_big(y[big])
    return _exp_neg_sq(y) * factor


def _prepare(x):
    x = np.asarray(x)
    out_dtype = x.dtype if x.dtype in _FLOAT_DTYPES else np.dtype(np.float64)
    with np.errstate(all="ignore"):  # e.g. signalling-NaN bfloat16 payloads
        return x.astype(np.float64).ravel(), x.shape, out_dtype


def erf(x: npt.ArrayLike) -> np.ndarray:
    """Elementwise error function; same dtype as a floating ``x``, float64 otherwise."""
    xf, shape, out_dtype = _prepare(x)
    with np.errstate(all="ignore"):
        ax = np.abs(xf)
        small = ax <= _THRESH
        r = np.empty_like(xf)
        r[small] = _small(xf[small])
        # |x| > THRESH, +-inf and nan: erf = sign(x) * (1 - erfc(|x|)), exactly +-1 far out
        rest = ~small
        xr, ar = xf[rest], ax[rest]
        finite = ar < _XONE
        out = np.copysign(1.0, xr)
        out[finite] = np.copysign(1.0 - _erfc_pos(ar[finite]), xr[finite])
        out[np.isnan(xr)] = np.nan
        r[rest] = out
        return r.reshape(shape).astype(out_dtype)


def erfc(x: npt.ArrayLike) -> np.ndarray:
    """Elementwise complementary error function ``1 - erf(x)``, accurate for large ``x``."""
    xf, shape, out_dtype = _prepare(x)
    with np.errstate(all="ignore"):
        ax = np.abs(xf)
        small = ax <= _THRESH
        r_small = 1.0 - _small(np.where(small, xf, 0.0))
        e = _erfc_pos(np.where(small | np.isnan(ax), 1.0, ax))
        r_big = np.where(xf < 0.0, 2.0 - e, e)
        r = np.where(small, r_small, r_big)
        r = np.where(np.isnan(xf), xf, r)
        return r.reshape(shape).astype(out_dtype)
