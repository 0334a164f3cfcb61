"""Index expressions of the kernel IR: affine sums of loop variables with floor-div and mod.

A kernel reads and writes buffers at indices that are functions of its loop variables. Views
(reshape, permute, slice, broadcast) are such functions, so they cost nothing: composing a
view with a load only rewrites the load's index. `Expr` is the one representation:

    const + sum(coef * atom)

where an atom is a loop variable (`Var`, with its extent), ``floordiv(expr, d)``, ``mod(expr,
d)`` or a value computed by the kernel body (`Dyn`, e.g. a gather's index). Expressions are
kept canonical (terms sorted, zero terms dropped, range-aware simplification), so two
expressions that are equal as written compare equal with ``==``: that is how fusion decides
whether a consumer reads a producer's value at exactly the point where it was computed.

Simplification knows each variable's range ``[0, extent)``:
``(i*D + j) // D == i`` and ``(i*D + j) % D == j`` when ``0 <= j < D``, which is what makes
reshape round trips (``[N, D] -> [N*D] -> [N, D]``) vanish. A variable of extent 1 is the
constant 0. Indices are never negative in well-formed kernels, so floor-div and mod are the
C ``/`` and ``%`` of non-negative numbers.
"""

from __future__ import annotations

import math

__all__ = ["Dyn", "Expr", "Var", "const", "var", "ravel", "unravel", "INF"]

INF = float("inf")


class Var:
    """A loop variable with extent ``size``: ``0 <= v < size``."""

    __slots__ = ("name", "size")

    def __init__(self, name: str, size: int) -> None:
        self.name = name
        self.size = size

    def key(self) -> tuple:
        return (0, self.name)

    def bounds(self) -> tuple[float, float]:
        return (0, self.size - 1)

    def __eq__(self, other) -> bool:
        return isinstance(other, Var) and other.name == self.name and other.size == self.size

    def __hash__(self) -> int:
        return hash(("var", self.name, self.size))

    def __str__(self) -> str:
        return self.name


class Dyn:
    """A value the kernel body computed (an integer op result), used inside an index."""

    __slots__ = ("ref", "low", "high")

    def __init__(self, ref: int, low: float = -INF, high: float = INF) -> None:
        self.ref = ref
        self.low = low
        self.high = high

    def key(self) -> tuple:
        return (1, self.ref)

    def bounds(self) -> tuple[float, float]:
        return (self.low, self.high)

    def __eq__(self, other) -> bool:
        return isinstance(other, Dyn) and other.ref == self.ref

    def __hash__(self) -> int:
        return hash(("dyn", self.ref))

    def __str__(self) -> str:
        return f"%{self.ref}"


class _DivMod:
    """``inner // d`` (kind "div") or ``inner % d`` (kind "mod") that did not simplify."""

    __slots__ = ("kind", "inner", "d")

    def __init__(self, kind: str, inner: Expr, d: int) -> None:
        self.kind = kind
        self.inner = inner
        self.d = d

    def key(self) -> tuple:
        return (2, self.kind, self.d, self.inner.key())

    def bounds(self) -> tuple[float, float]:
        lo, hi = self.inner.bounds()
        if self.kind == "mod":
            return (0, self.d - 1) if lo >= 0 else (-(self.d - 1), self.d - 1)
        return (lo // self.d if lo != -INF else -INF, hi // self.d if hi != INF else INF)

    def __eq__(self, other) -> bool:
        return isinstance(other, _DivMod) and other.key() == self.key()

    def __hash__(self) -> int:
        return hash(self.key())

    def __str__(self) -> str:
        op = "//" if self.kind == "div" else "%"
        inner = str(self.inner)
        if len(self.inner.terms) > 1 or (self.inner.terms and self.inner.const):
            inner = f"({inner})"
        return f"({inner} {op} {self.d})"


Atom = Var | Dyn | _DivMod


class Expr:
    """``const + sum(coef * atom)``, canonical and immutable; see the module docstring."""

    __slots__ = ("terms", "const", "_key")

    def __init__(self, terms: dict | tuple = (), const: int = 0) -> None:
        items = terms.items() if isinstance(terms, dict) else terms
        kept = tuple(sorted(((a, c) for a, c in items if c != 0), key=lambda t: t[0].key()))
        self.terms: tuple[tuple[Atom, int], ...] = kept
        self.const = int(const)
        self._key = None

    # -- queries -------------------------------------------------------------------------
    def key(self) -> tuple:
        if self._key is None:
            self._key = (tuple((a.key(), c) for a, c in self.terms), self.const)
        return self._key

    def bounds(self) -> tuple[float, float]:
        lo = hi = self.const
        for atom, coef in self.terms:
            a, b = atom.bounds()
            lo += coef * (a if coef > 0 else b)
            hi += coef * (b if coef > 0 else a)
        return lo, hi

    @property
    def is_const(self) -> bool:
        return not self.terms

    def atoms(self) -> list[Atom]:
        """Every atom, nested ones included (the inner expressions of div/mod atoms)."""
        out = []
        for atom, _ in self.terms:
            out.append(atom)
            if isinstance(atom, _DivMod):
                out.extend(atom.inner.atoms())
        return out

    def vars(self) -> set[str]:
        return {a.name for a in self.atoms() if isinstance(a, Var)}

    def dyns(self) -> set[int]:
        return {a.ref for a in self.atoms() if isinstance(a, Dyn)}

    # -- arithmetic ----------------------------------------------------------------------
    def __add__(self, other: Expr | int) -> Expr:
        other = _as_expr(other)
        terms: dict = dict(self.terms)
        for atom, coef in other.terms:
            terms[atom] = terms.get(atom, 0) + coef
        return _recombine(Expr(terms, self.const + other.const))

    __radd__ = __add__

    def __sub__(self, other: Expr | int) -> Expr:
        return self + _as_expr(other) * -1

    def __mul__(self, k: int) -> Expr:
        if not isinstance(k, int):
            raise TypeError("an index expression can only be scaled by an integer")
        return Expr(tuple((a, c * k) for a, c in self.terms), self.const * k)

    __rmul__ = __mul__

    def _split(self, d: int) -> tuple[Expr, Expr]:
        """``self == quotient*d + rest``: the terms whose coefficients ``d`` divides."""
        q_terms, r_terms = [], []
        for atom, coef in self.terms:
            (q_terms if coef % d == 0 else r_terms).append((atom, coef))
        q_const, r_const = divmod(self.const, d)
        quotient = Expr(tuple((a, c // d) for a, c in q_terms), q_const)
        return quotient, Expr(tuple(r_terms), r_const)

    def _coarsen(self, d: int) -> tuple[int, Expr, Expr] | None:
        """``(g, A, B)`` with ``self == g*A + B``, ``0 <= B < g`` and ``g`` dividing ``d``."""
        gs = sorted({math.gcd(d, c) for _, c in self.terms} - {1, d}, reverse=True)
        for g in gs:
            big, small = self._split(g)
            lo, hi = small.bounds()
            if lo >= 0 and hi < g:
                return g, big, small
        return None

    def __floordiv__(self, d: int) -> Expr:
        if d == 1:
            return self
        coarse = self._coarsen(d)
        if coarse is not None:
            g, big, _ = coarse
            return big // (d // g)
        quotient, rest = self._split(d)
        lo, hi = rest.bounds()
        if lo >= 0 and hi < d:
            return quotient
        if len(rest.terms) == 1 and rest.const == 0:
            atom, coef = rest.terms[0]
            if coef == 1 and isinstance(atom, _DivMod) and atom.kind == "div":
                return quotient + atom.inner // (atom.d * d)  # (x // a) // b == x // (a*b)
        if lo >= 0:
            return quotient + Expr(((_DivMod("div", rest, d), 1),))
        return Expr(((_DivMod("div", self, d), 1),))

    def __mod__(self, d: int) -> Expr:
        if d == 1:
            return Expr()
        coarse = self._coarsen(d)
        if coarse is not None:
            g, big, small = coarse
            return (big % (d // g)) * g + small
        _, rest = self._split(d)
        lo, hi = rest.bounds()
        if lo >= 0 and hi < d:
            return rest
        if lo >= 0:
            return Expr(((_DivMod("mod", rest, d), 1),))
        return Expr(((_DivMod("mod", self, d), 1),))

    def substitute(self, mapping: dict[str, Expr]) -> Expr:
        """The expression with each variable named in ``mapping`` replaced (and simplified)."""
        out = Expr((), self.const)
        for atom, coef in self.terms:
            if isinstance(atom, Var):
                part = mapping.get(atom.name, Expr(((atom, 1),)))
            elif isinstance(atom, _DivMod):
                inner = atom.inner.substitute(mapping)
                part = inner // atom.d if atom.kind == "div" else inner % atom.d
            else:
                part = Expr(((atom, 1),))
            out = out + part * coef
        return out

    # -- identity ------------------------------------------------------------------------
    def __eq__(self, other) -> bool:
        if isinstance(other, int):
            return not self.terms and self.const == other
        return isinstance(other, Expr) and other.key() == self.key()

    def __hash__(self) -> int:
        return hash(self.key())

    def __str__(self) -> str:
        parts = []
        for atom, coef in self.terms:
            text = str(atom)
            parts.append(text if coef == 1 else f"{coef}*{text}")
        if self.const or not parts:
            parts.append(str(self.const))
        return " + ".join(parts).replace("+ -", "- ")

    __repr__ = __str__


def _recombine(e: Expr) -> Expr:
    """``c*d*(x // d) + c*(x % d)`` -> ``c*x``: what a reshape round trip leaves behind."""
    divs = {(a.inner, a.d): c for a, c in e.terms if isinstance(a, _DivMod) and a.kind == "div"}
    if not divs:
        return e
    for atom, coef in e.terms:
        if isinstance(atom, _DivMod) and atom.kind == "mod":
            c = divs.get((atom.inner, atom.d))
            if c is not None and c == coef * atom.d:
                terms = dict(e.terms)
                del terms[atom]
                del terms[_DivMod("div", atom.inner, atom.d)]
                return _recombine(Expr(terms, e.const) + atom.inner * coef)
            nested = _lone_div(atom.inner)  # (y // a) % m beside m*(y // (a*m))
            if nested is not None:
                y, a = nested
                c = divs.get((y, a * atom.d))
                if c is not None and c == coef * atom.d:
                    terms = dict(e.terms)
                    del terms[atom]
                    del terms[_DivMod("div", y, a * atom.d)]
                    return _recombine(Expr(terms, e.const) + atom.inner * coef)
    return e


def _lone_div(e: Expr) -> tuple[Expr, int] | None:
    """``(y, a)`` when ``e`` is exactly ``y // a``."""
    if len(e.terms) == 1 and e.const == 0:
        atom, coef = e.terms[0]
        if coef == 1 and isinstance(atom, _DivMod) and atom.kind == "div":
            return atom.inner, atom.d
    return None


def _as_expr(x: Expr | int) -> Expr:
    return x if isinstance(x, Expr) else Expr((), int(x))


def const(value: int) -> Expr:
    return Expr((), value)


def var(name: str, size: int) -> Expr:
    """The loop variable ``name`` of extent ``size`` (the constant 0 when ``size <= 1``)."""
    if size <= 1:
        return Expr()
    return Expr(((Var(name, size), 1),))


def ravel(index: tuple[Expr, ...], shape: tuple[int, ...]) -> Expr:
    """The row-major linear position of ``index`` in ``shape``."""
    out = Expr()
    for e, n in zip(index, shape):
        out = out * n + e
    return out


def unravel(linear: Expr, shape: tuple[int, ...]) -> tuple[Expr, ...]:
    """The row-major multi-index of ``linear`` in ``shape`` (inverse of `ravel`). A shape
    with no elements has no index to compute: all zeros (nothing is ever read)."""
    if 0 in shape:
        return tuple(Expr() for _ in shape)
    out = []
    stride = 1
    strides = []
    for n in reversed(shape):
        strides.append(stride)
        stride *= n
    strides.reverse()
    for k, (n, s) in enumerate(zip(shape, strides)):
        if n == 1:
            out.append(Expr())
            continue
        e = linear // s
        out.append(e if k == 0 else e % n)
    return tuple(out)
