"""Index expressions (`ember.ir.index`): the simplifier's rules and its soundness.

The rules that fusion relies on are pinned one by one (reshape round trips vanish, a row-major
position divided by its row length is the row, variables of extent 1 are 0, coarsening,
recombination). Property tests then check soundness: for random affine expressions with
floor-div and mod over variables of small extents, the simplified `Expr` evaluated at every
point of the variables' ranges equals the same arithmetic done on Python ints. The evaluator
here reads only the public structure (``Expr.terms``, ``Expr.const`` and the atoms), so it is
independent of the simplifier.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ember.ir.index import Dyn, Expr, Var, _DivMod, const, ravel, unravel, var

# ---------------------------------------------------------------------------------------------
# An independent evaluator
# ---------------------------------------------------------------------------------------------


def evaluate(e: Expr, env: dict) -> int:
    """``e`` at the point ``env`` (variable name or Dyn ref -> int), in Python int arithmetic."""
    total = e.const
    for atom, coef in e.terms:
        total += coef * _atom_value(atom, env)
    return total


def _atom_value(atom, env: dict) -> int:
    if isinstance(atom, Var):
        return env[atom.name]
    if isinstance(atom, Dyn):
        return env[atom.ref]
    assert isinstance(atom, _DivMod), atom
    inner = evaluate(atom.inner, env)
    return inner // atom.d if atom.kind == "div" else inner % atom.d


def points(extents: dict[str, int], dyns: dict[int, tuple[int, int]] | None = None):
    """Every point of the variables' ranges (and of each Dyn's ``[low, high]``)."""
    names = list(extents)
    refs = list(dyns or {})
    ranges = [range(extents[n]) for n in names]
    ranges += [range(lo, hi + 1) for lo, hi in (dyns or {}).values()]
    for values in itertools.product(*ranges):
        yield dict(zip(names + refs, values))


def same_everywhere(a: Expr, b: Expr, extents: dict[str, int]) -> bool:
    return all(evaluate(a, env) == evaluate(b, env) for env in points(extents))


# ---------------------------------------------------------------------------------------------
# The rules
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(5, 7), (3, 1), (1, 6), (4, 4), (2, 3, 4), (2, 1, 3, 2)])
def test_reshape_round_trip_of_an_index_vanishes(shape):
    index = tuple(var(f"i{k}", n) for k, n in enumerate(shape))
    flat = ravel(index, shape)
    assert unravel(flat, shape) == index


@pytest.mark.parametrize("shape", [(5, 7), (6, 1), (1, 6), (3, 1, 4)])
def test_flat_round_trip_through_two_nontrivial_dims_vanishes(shape):
    n = 1
    for d in shape:
        n *= d
    lin = var("l", n)
    assert ravel(unravel(lin, shape), shape) == lin


def test_flat_round_trip_through_three_dims_vanishes():
    lin = var("l", 24)
    assert ravel(unravel(lin, (2, 3, 4)), (2, 3, 4)) == lin


def test_the_flat_round_trip_through_three_dims_is_still_exact():
    lin = var("l", 24)
    back = ravel(unravel(lin, (2, 3, 4)), (2, 3, 4))
    assert same_everywhere(back, lin, {"l": 24})


def test_row_major_position_divided_by_the_row_length_is_the_row():
    i, j = var("i", 5), var("j", 7)
    assert (i * 7 + j) // 7 == i
    assert (i * 7 + j) % 7 == j
    assert (j + i * 7) // 7 == i  # the order of the terms does not matter
    assert (i * 7 + j + 7) // 7 == i + 1
    assert (i * 14 + j) // 7 == i * 2


def test_mod_rules():
    i, j = var("i", 5), var("j", 7)
    x = var("x", 100)
    assert j % 7 == j  # already in range
    assert (i * 7) % 7 == 0
    assert (i * 7 + j) % 7 == j
    assert x % 1 == 0
    assert x // 1 == x
    assert (x + 7) % 7 == x % 7  # multiples of the divisor drop out
    assert str(x % 7) == "(x % 7)"
    assert (x % 7).bounds() == (0, 6)


def test_a_division_that_cannot_simplify_keeps_its_atom():
    x = var("x", 100)
    q = x // 7
    assert q.terms and isinstance(q.terms[0][0], _DivMod)
    assert q.terms[0][0].kind == "div" and q.terms[0][0].d == 7
    assert q.bounds() == (0, 14)


def test_variables_of_extent_one_are_zero():
    assert var("e", 1) == 0
    assert var("e", 1).is_const
    j = var("j", 3)
    assert var("e", 1) * 5 + j == j
    assert unravel(var("l", 6), (1, 6, 1)) == (const(0), var("l", 6), const(0))


def test_coarsening_divides_by_a_common_factor_first():
    p0, p1 = var("p0", 8), var("p1", 1024)
    assert (p0 * 1024 + p1) // 2048 == p0 // 2
    assert (p0 * 1024 + p1) % 2048 == (p0 % 2) * 1024 + p1


def test_no_coarsening_when_the_small_part_can_reach_the_factor():
    p0, p1 = var("p0", 4), var("p1", 1030)  # p1 may exceed 1023
    e = (p0 * 1024 + p1) // 2048
    assert e != p0 // 2
    assert same_everywhere(e, (p0 * 1024 + p1) // 2048, {"p0": 4, "p1": 1030})
    for p0v, p1v in [(1, 1029), (3, 1025), (0, 1023)]:
        assert evaluate(e, {"p0": p0v, "p1": p1v}) == (p0v * 1024 + p1v) // 2048


def test_nested_divisions_merge():
    x = var("x", 100)
    assert (x // 4) // 5 == x // 20


@pytest.mark.parametrize("order", ["div_first", "mod_first"])
def test_recombine_quotient_and_remainder(order):
    x = var("x", 100)
    q, r = x // 7, x % 7
    e = q * 7 + r if order == "div_first" else r + q * 7
    assert e == x
    assert q * 21 + r * 3 == x * 3  # scaled by c
    assert q * 7 + r + 5 == x + 5  # with a constant
    assert q * 6 + r != x  # the coefficient must be c*d


def test_recombine_of_a_compound_inner_expression():
    y = var("y", 100) + var("z", 3) * 100
    assert (y // 5) * 15 + (y % 5) * 3 == y * 3


def test_bounds_follow_the_sign_of_each_coefficient():
    i, j = var("i", 5), var("j", 7)
    assert (i * 3 - j + 2).bounds() == (2 - 6, 12 + 2)
    d = Expr(((Dyn(4, -2, 9), 1),))
    assert d.bounds() == (-2, 9)
    assert (d * -2).bounds() == (-18, 4)


def test_queries_and_text():
    i, x = var("i", 5), var("x", 100)
    d = Expr(((Dyn(3, 0, 9), 1),))
    e = i * 2 + (x // 4) % 3 + d - 1
    assert e.vars() == {"i", "x"}
    assert e.dyns() == {3}
    assert Var("x", 100) in e.atoms()  # nested atoms are listed too
    assert str(i - 1) == "i - 1"
    assert str((x // 4) % 3) == "((x // 4) % 3)"
    assert str(const(0)) == "0"
    with pytest.raises(TypeError):
        i * 0.5


def test_substitute_replaces_and_simplifies():
    i, j = var("i", 5), var("j", 7)
    flat = var("l", 35)
    e = (flat // 7) * 7 + flat % 7  # already recombined to l
    assert e == flat
    pos = flat.substitute({"l": i * 7 + j})
    assert pos == i * 7 + j
    assert (flat // 7).substitute({"l": i * 7 + j}) == i
    assert (flat % 7).substitute({"l": i * 7 + j}) == j


def test_equal_expressions_hash_alike():
    i, j = var("i", 5), var("j", 7)
    a, b = i * 7 + j, j + 7 * i
    assert a == b and hash(a) == hash(b)
    assert a != i * 7 + j + 1


# ---------------------------------------------------------------------------------------------
# Soundness properties
# ---------------------------------------------------------------------------------------------

NAMES = ("a", "b", "c")
DYN_REF = 9


@st.composite
def environments(draw):
    extents = {n: draw(st.integers(1, 5)) for n in NAMES}
    low = draw(st.integers(-3, 3))
    high = low + draw(st.integers(0, 3))
    return extents, (low, high)


def trees(with_dyn: bool):
    leaves = st.one_of(
        st.tuples(st.just("var"), st.sampled_from(NAMES)),
        st.tuples(st.just("const"), st.integers(-6, 12)),
        *([st.just(("dyn",))] if with_dyn else []),
    )

    def extend(children):
        return st.one_of(
            st.tuples(st.just("add"), children, children),
            st.tuples(st.just("sub"), children, children),
            st.tuples(st.just("mul"), children, st.integers(-3, 6)),
            st.tuples(st.just("div"), children, st.integers(1, 12)),
            st.tuples(st.just("mod"), children, st.integers(1, 12)),
        )

    return st.recursive(leaves, extend, max_leaves=10)


def build(tree, extents, dyn_bounds) -> Expr:
    kind = tree[0]
    if kind == "var":
        return var(tree[1], extents[tree[1]])
    if kind == "const":
        return const(tree[1])
    if kind == "dyn":
        return Expr(((Dyn(DYN_REF, *dyn_bounds), 1),))
    a = build(tree[1], extents, dyn_bounds)
    if kind == "add":
        return a + build(tree[2], extents, dyn_bounds)
    if kind == "sub":
        return a - build(tree[2], extents, dyn_bounds)
    if kind == "mul":
        return a * tree[2]
    if kind == "div":
        return a // tree[2]
    return a % tree[2]


def compute(tree, env) -> int:
    """The tree's arithmetic on Python ints (floor division and modulo)."""
    kind = tree[0]
    if kind == "var":
        return env[tree[1]]
    if kind == "const":
        return tree[1]
    if kind == "dyn":
        return env[DYN_REF]
    a = compute(tree[1], env)
    if kind == "add":
        return a + compute(tree[2], env)
    if kind == "sub":
        return a - compute(tree[2], env)
    if kind == "mul":
        return a * tree[2]
    if kind == "div":
        return a // tree[2]
    return a % tree[2]


PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(tree=trees(with_dyn=True), envs=environments())
def test_simplified_expression_equals_integer_arithmetic_everywhere(tree, envs):
    extents, dyn_bounds = envs
    e = build(tree, extents, dyn_bounds)
    for env in points(extents, {DYN_REF: dyn_bounds}):
        assert evaluate(e, env) == compute(tree, env), (tree, str(e), env)


@PROPERTY
@given(tree=trees(with_dyn=False), envs=environments())
def test_bounds_contain_every_value(tree, envs):
    extents, dyn_bounds = envs
    e = build(tree, extents, dyn_bounds)
    lo, hi = e.bounds()
    for env in points(extents):
        assert lo <= evaluate(e, env) <= hi, (str(e), env)


@PROPERTY
@given(a=trees(with_dyn=False), b=trees(with_dyn=False), envs=environments())
def test_addition_is_canonical_in_its_operand_order(a, b, envs):
    extents, dyn_bounds = envs
    x, y = build(a, extents, dyn_bounds), build(b, extents, dyn_bounds)
    assert x + y == y + x


@PROPERTY
@given(
    tree=trees(with_dyn=False),
    envs=environments(),
    k=st.integers(1, 4),
    name=st.sampled_from(NAMES),
)
def test_substitute_equals_evaluating_at_the_substituted_point(tree, envs, k, name):
    extents, dyn_bounds = envs
    e = build(tree, extents, dyn_bounds)
    others = [n for n in NAMES if n != name]
    # name := k*other + 1: a value that may lie outside name's own extent
    repl = var(others[0], extents[others[0]]) * k + 1
    sub = e.substitute({name: repl})
    for env in points(extents):
        moved = dict(env)
        moved[name] = evaluate(repl, env)
        assert evaluate(sub, env) == evaluate(e, moved), (str(e), str(sub), env)


shapes = st.lists(st.integers(1, 5), min_size=1, max_size=4).map(tuple)


def _numel(shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


@settings(max_examples=200, deadline=None)
@given(shape=shapes)
def test_unravel_inverts_ravel_structurally(shape):
    index = tuple(var(f"i{k}", n) for k, n in enumerate(shape))
    assert unravel(ravel(index, shape), shape) == index


@settings(max_examples=200, deadline=None)
@given(shape=shapes)
def test_unravel_is_row_major_and_ravel_inverts_it(shape):
    n = _numel(shape)
    lin = var("l", n)
    multi = unravel(lin, shape)
    back = ravel(multi, shape)
    row_major = list(itertools.product(*(range(d) for d in shape)))
    for pos in range(n):
        env = {"l": pos}
        assert tuple(evaluate(e, env) for e in multi) == row_major[pos]
        assert evaluate(back, env) == pos


def _rest_is_one_division(x: Expr, d: int) -> bool:
    """Whether the part of ``x`` that ``d`` does not divide is a lone ``y // a`` (the nested
    division case of `test_recombine_after_a_nested_division`)."""
    rest = [(a, k) for a, k in x.terms if k % d]
    return (
        len(rest) == 1
        and rest[0][1] == 1
        and x.const % d == 0
        and isinstance(rest[0][0], _DivMod)
        and rest[0][0].kind == "div"
    )


@PROPERTY
@given(tree=trees(with_dyn=True), envs=environments(), d=st.integers(2, 12), c=st.integers(1, 4))
def test_quotient_and_remainder_recombine(tree, envs, d, c):
    extents, dyn_bounds = envs
    x = build(tree, extents, dyn_bounds)
    e = (x // d) * (c * d) + (x % d) * c
    for env in points(extents, {DYN_REF: dyn_bounds}):
        assert evaluate(e, env) == c * evaluate(x, env)
    assume(not _rest_is_one_division(x, d))
    assert e == x * c, str(x)
    assert (x % d) * c + (x // d) * (c * d) == x * c, str(x)


def test_recombine_after_a_nested_division():
    x = var("y", 100) // 2
    assert (x // 2) * 2 + x % 2 == x


def _factorizations(n: int, most: int = 4) -> list[tuple[int, ...]]:
    if n == 1:
        return [()]
    out = []
    for d in range(2, n + 1):
        if n % d == 0:
            out.extend((d, *rest) for rest in _factorizations(n // d, most - 1) if most > 1)
    return out


@settings(max_examples=200, deadline=None)
@given(data=st.data(), n=st.sampled_from([6, 8, 12, 16, 24, 30, 36]))
def test_chains_of_reshapes_are_exact(data, n):
    """A view chain A -> B -> C -> A maps every index of A to itself (evaluated)."""
    options = _factorizations(n)
    a, b, c = (data.draw(st.sampled_from(options)) for _ in range(3))
    index = tuple(var(f"i{k}", m) for k, m in enumerate(a))
    through_b = unravel(ravel(index, a), b)
    through_c = unravel(ravel(through_b, b), c)
    back = unravel(ravel(through_c, c), a)
    extents = {f"i{k}": m for k, m in enumerate(a)}
    for env in points(extents):
        assert tuple(evaluate(e, env) for e in back) == tuple(env[f"i{k}"] for k in range(len(a)))
