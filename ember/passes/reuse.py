"""Kernel IR rewrite: a stage that would compute a costly value again loads it from its output.

A value computed inside a loop stage is local to it, so a later stage over the same loop
computes it again (`ember.ir.kernel`). That is the right trade for cheap arithmetic, but not
for a transcendental: softmax's last stage would evaluate ``exp(x - max)`` a second time to
scale it. When the last use of such a value is a store into an output at the loop's own
index, the earlier stage stores the value there already and the later stage loads it back
(the row is in L1 by then) and overwrites it in place::

    stage r0 < 1024:                          stage r0 < 1024:
      %4 = exp %3                               %4 = exp %3
      %5 = reduce sum %4                        %5 = reduce sum %4
    stage r0 < 1024:                ->          store out1[p0, r0], %4
      %8 = exp %7                             stage r0 < 1024:
      %9 = div %8, %5                           %8 = load out1[p0, r0]
      store out1[p0, r0], %9                    %9 = div %8, %5
                                                store out1[p0, r0], %9

The value is bit-identical (it is stored in its own dtype), so results do not change. The
output must be written by that one store only and read by no other op of the kernel, its
index must use every loop variable that takes more than one value (each iteration owns its
element), and the value must be the same expression in both stages: the same ops on the same
loads at the same indices. (A kernel that stores an output this early is not allowed to write
it over an input it reads later: `ember.codegen.llvm.backend` donates an input to an output
only when no load of it comes after the output's first store.)
"""

from __future__ import annotations

import dataclasses

from ..ir.kernel import GemmKernel, Kernel, KOp, Stage
from .lower import LoweredProgram

__all__ = ["reuse_stored", "COSTLY"]

# Ops worth a store and a load from L1 rather than being evaluated again.
COSTLY = frozenset(("exp", "log", "tanh", "sigmoid", "erf", "sin", "cos", "pow", "log1p", "expm1"))


def reuse_stored(program: LoweredProgram) -> LoweredProgram:
    """``program`` with every loop kernel rewritten as the module docstring says."""
    kernels = [k if isinstance(k, GemmKernel) else _reuse(k) for k in program.kernels]
    return dataclasses.replace(program, kernels=kernels)


def _reuse(kernel: Kernel) -> Kernel:
    stores = [(s, op) for s, st in enumerate(kernel.stages) for op in st.ops if op.op == "store"]
    written: dict[int, int] = {}
    for _, op in stores:
        written[op.attrs["buffer"]] = written.get(op.attrs["buffer"], 0) + 1
    read = {op.attrs["buffer"] for op in kernel.ops() if op.op == "load"}
    stages = list(kernel.stages)
    next_id = max((op.id for op in kernel.ops()), default=-1) + 1
    changed = False
    for j, store in stores:
        buf = store.attrs["buffer"]
        index = store.attrs["index"]
        later = stages[j]
        if written[buf] != 1 or buf in read or not later.extents:
            continue
        looping = {v for v, n in zip(later.var_names(), later.extents) if n > 1}
        if any(e.dyns() for e in index) or not looping <= _vars(index):
            continue
        keys: dict = {}
        later_keys = _keys(later, keys)
        for i in range(j):
            earlier = stages[i]
            if earlier.extents != later.extents or earlier.reverse != later.reverse:
                continue
            found = {key: op_id for op_id, key in _keys(earlier, keys).items()}
            target = _largest_match(later, store.args[0], later_keys, found)
            if target is None or target.dtype is not kernel.buffers[buf].dtype:
                continue
            saved = KOp(next_id, "store", (found[later_keys[target.id]],), None,
                        {"buffer": buf, "index": index})  # fmt: skip
            next_id += 1
            stages[i] = dataclasses.replace(earlier, ops=[*earlier.ops, saved])
            stages[j] = _load_instead(later, target, buf, index)
            changed = True
            break
    return dataclasses.replace(kernel, stages=stages) if changed else kernel


def _vars(index) -> set[str]:
    out: set[str] = set()
    for e in index:
        out |= e.vars()
    return out


def _keys(stage: Stage, table: dict) -> dict[int, int]:
    """A number per op of ``stage`` that is equal for equal expressions (``table`` interns
    them, shared between stages); ops that are not expressions get none."""
    local: dict[int, int] = {}
    own = {op.id for op in stage.ops}
    for op in stage.ops:
        unkeyed = any(a in own and a not in local for a in op.args)
        if op.op in ("store", "reduce", "scan") or unkeyed:
            continue
        args = tuple(local[a] if a in own else ("outer", a) for a in op.args)
        if op.op in ("load", "index", "philox"):
            exprs = _index_exprs(op)
            if any(e.dyns() for e in exprs):
                continue
            attrs = (op.attrs.get("buffer"), exprs)
        elif op.op == "const":
            attrs = (repr(op.attrs["value"]),)
        else:
            attrs = tuple(sorted((k, repr(v)) for k, v in op.attrs.items()))
        key = (op.op, op.dtype, attrs, args)
        local[op.id] = table.setdefault(key, len(table))
    return local


def _largest_match(stage: Stage, root: int, keys: dict[int, int], found: dict) -> KOp | None:
    """The first op, from ``root`` down, that the earlier stage computes too and whose
    expression holds a costly op."""
    ops = {op.id: op for op in stage.ops}
    costly: dict[int, bool] = {}
    for op in stage.ops:
        costly[op.id] = op.op in COSTLY or any(costly.get(a, False) for a in op.args)
    queue = [root]
    seen = set()
    while queue:
        op_id = queue.pop(0)
        op = ops.get(op_id)
        if op is None or op_id in seen:
            continue
        seen.add(op_id)
        if not costly[op_id]:
            continue
        if op_id in keys and keys[op_id] in found:
            return op
        queue.extend(op.args)
    return None


def _load_instead(stage: Stage, target: KOp, buf: int, index) -> Stage:
    """``stage`` with ``target`` replaced by a load of ``buf`` at ``index``, and the ops only
    it needed dropped."""
    load = KOp(target.id, "load", (), target.dtype, {"buffer": buf, "index": index})
    ops = [load if op.id == target.id else op for op in stage.ops]
    # (a store of the loaded value itself, where it already is, is dropped)
    ops = [
        op
        for op in ops
        if not (op.op == "store" and op.args == (target.id,) and op.attrs["buffer"] == buf)
    ]
    needed: set[int] = set()
    for op in reversed(ops):
        if op.op in ("store", "reduce", "scan") or op.id in needed:
            needed.update(op.args)
            needed.update(_index_refs(op))
            needed.add(op.id)
    return dataclasses.replace(stage, ops=[op for op in ops if op.id in needed])


def _index_exprs(op: KOp) -> tuple:
    """The index expressions of ``op`` (a load's or store's per dimension, an ``index`` op's
    expression, a ``philox`` op's position)."""
    if op.op == "index":
        return (op.attrs["expr"],)
    if op.op == "philox":
        return (op.attrs["index"],)
    return tuple(op.attrs.get("index", ()))


def _index_refs(op: KOp) -> set[int]:
    """The values a data-dependent index of ``op`` reads (a gather's or a flip's position)."""
    refs: set[int] = set()
    for e in _index_exprs(op):
        refs |= e.dyns()
    return refs
