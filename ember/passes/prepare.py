"""Graph rewrites that prepare a graph for fusion and kernel code generation.

- `materialize_outputs`: every graph output becomes a distinct value computed by a node (a
  ``copy`` where an output is a graph input, a view, a creation op or repeats another
  output), so each output gets storage of its own and callers own their results.
- `prepare_matmuls`: ``permute(matmul(a, b))`` that swaps the last two dims (a weight's
  gradient, as autodiff writes it) becomes ``matmul(b^T, a^T)``, so the product is written
  in the layout it is read in. A matmul reads its operands in place through a BLAS, which needs each
  operand as a strided matrix (rows or columns contiguous). An operand view that is not one is
  copied first. Matmuls of types a BLAS lacks (integers; float16 and bfloat16, which compute
  in float32 as the eager kernels do) become a broadcast multiply and a ``reduce_sum``, or go
  through float32.
- `select_scatters`: a ``scatter_add`` whose index has one entry along its axis (the
  gradient of a ``gather`` such as cross_entropy's pick of the target) adds into one element
  per row: it becomes a pointwise select, ``where(position == index, base + src, base)``,
  which fuses with what reads it instead of running alone.
- `split_reductions`: a full reduction of many elements would run on one thread; it becomes a
  reduction of fixed-size chunks and a reduction of the partial results. The chunk size does
  not depend on the thread count, so results stay bitwise identical for any thread count.
"""

from __future__ import annotations

from ..ir import dtypes as D
from ..ir.graph import Graph, Node, Value
from ..ir.index import Var, ravel, var
from .simplify import dce
from .views import resolve, root_of

__all__ = [
    "gemm_layout",
    "materialize_outputs",
    "prepare_matmuls",
    "select_scatters",
    "split_reductions",
]

_GEMM_DTYPES = (D.float32, D.float64)
_SPLIT_MIN = 1 << 16
_CHUNKS = (8192, 4096, 2048, 1024, 512)


def _rebuild(graph: Graph, rewrite) -> Graph:
    """A copy of ``graph`` where ``rewrite(out, node, inputs)`` may emit replacement nodes
    (returning the new value) or return None to copy the node as it is."""
    out = Graph(graph.name)
    env: dict[Value, Value] = {v: out.add_input(v.type, v.name) for v in graph.inputs}
    for node in graph.nodes:
        ins = [env[x] if isinstance(x, Value) else x for x in node.inputs]
        new = rewrite(out, node, ins)
        env[node.output] = new if new is not None else out.add_copy(node, ins)
    out.set_outputs([env[v] for v in graph.outputs])
    return out


def materialize_outputs(graph: Graph) -> Graph:
    seen: set[Value] = set()
    needs = []
    for v in graph.outputs:
        root = root_of(v)
        node = root.producer
        copy = (
            root is not v
            or node is None
            or node.op in ("full", "iota", "philox_uniform")
            or root in seen
        )
        seen.add(root)
        needs.append(copy)
    if not any(needs):
        return graph
    out = _rebuild(graph, lambda g, n, ins: None)
    outputs = []
    for v, copy in zip(out.outputs, needs):
        loc = v.producer.loc if v.producer is not None else None
        outputs.append(out.add("copy", [v], {}, loc) if copy else v)
    out.set_outputs(outputs)
    return out


def gemm_layout(value: Value) -> tuple[Value, tuple[int, ...], int] | None:
    """How a BLAS reads matmul operand ``value`` (shape ``[..., rows, cols]``) in place:
    ``(root, strides, offset)``, one stride per dim of ``value`` and the offset in elements of
    the root's storage, or None when it is not a strided matrix with rows or columns
    contiguous."""
    shape = value.type.shape
    rows, cols = shape[-2], shape[-1]
    names = [f"g{d}" for d in range(len(shape))]
    index = tuple(var(name, n) for name, n in zip(names, shape))
    root, idx = resolve(value, index)
    if root.producer is not None and root.producer.op in ("full", "iota", "philox_uniform"):
        return None
    address = ravel(idx, root.type.shape)
    strides = dict.fromkeys(names, 0)
    for atom, coef in address.terms:
        if not isinstance(atom, Var) or atom.name not in strides:
            return None  # a reshape that does not keep rows apart, or a gathered index
        strides[atom.name] = coef
    out = [strides[name] for name in names]
    si, sk = out[-2], out[-1]
    if rows <= 1:  # one row: its stride is never used
        si = max(cols, 1)
    if cols <= 1:  # one column: likewise
        sk = 1
    if not ((sk == 1 and si >= cols) or (si == 1 and sk >= rows)):
        return None
    out[-2], out[-1] = si, sk
    return root, tuple(out), address.const


def _swaps_last_two(node: Node) -> bool:
    dims = node.attrs.get("dims", ())
    n = len(dims)
    return node.op == "permute" and n >= 2 and dims == (*range(n - 2), n - 1, n - 2)


def prepare_matmuls(graph: Graph) -> Graph:
    if not any(n.op == "matmul" for n in graph.nodes):
        return graph
    readers: dict[Value, list[Node]] = {}
    for n in graph.nodes:
        for v in n.inputs:
            if isinstance(v, Value):
                readers.setdefault(v, []).append(n)
    transposed = {  # permute(matmul(a, b)) -> matmul(b^T, a^T): no copy of the result
        n
        for n in graph.nodes
        if _swaps_last_two(n)
        and n.inputs[0].producer is not None
        and n.inputs[0].producer.op == "matmul"
        and len(readers.get(n.inputs[0], ())) == 1
        and n.inputs[0] not in graph.outputs
    }

    def rewrite(g: Graph, node: Node, ins):
        if node in transposed:
            a, b = ins[0].producer.inputs
            dims = node.attrs["dims"]
            ins = [
                g.add("permute", [b], {"dims": dims}, node.loc),
                g.add("permute", [a], {"dims": dims}, node.loc),
            ]
            return _gemm(g, ins, node.output.type.dtype, node.loc)
        if node.op != "matmul":
            return None
        return _gemm(g, ins, node.output.type.dtype, node.loc)

    return dce(_rebuild(graph, rewrite))


def _gemm(g: Graph, ins, dtype, loc) -> Value:
    """``matmul(*ins)`` as a BLAS can take it (see the module docstring)."""
    a, b = ins
    if dtype in (D.float16, D.bfloat16):
        a32 = g.add("convert", [a], {"dtype": D.float32}, loc)
        b32 = g.add("convert", [b], {"dtype": D.float32}, loc)
        c = g.add("matmul", [a32, b32], {}, loc)
        return g.add("convert", [c], {"dtype": dtype}, loc)
    if dtype not in _GEMM_DTYPES:
        return _matmul_as_reduction(g, a, b, loc)
    ins = [x if gemm_layout(x) is not None else g.add("copy", [x], {}, loc) for x in ins]
    return g.add("matmul", ins, {}, loc)


def _matmul_as_reduction(g: Graph, a: Value, b: Value, loc) -> Value:
    *batch, m, k = a.type.shape
    n = b.type.shape[-1]
    nb = len(batch)
    a4 = g.add("reshape", [a], {"shape": (*batch, m, k, 1)}, loc)
    b4 = g.add("reshape", [b], {"shape": (*batch, 1, k, n)}, loc)
    full = (*batch, m, k, n)
    prod = g.add(
        "mul",
        [
            g.add("broadcast_to", [a4], {"shape": full}, loc),
            g.add("broadcast_to", [b4], {"shape": full}, loc),
        ],
        {},
        loc,
    )
    return g.add("reduce_sum", [prod], {"axes": (nb + 1,)}, loc)


def select_scatters(graph: Graph) -> Graph:
    def rewrite(g: Graph, node: Node, ins):
        if node.op != "scatter_add":
            return None
        base, idx, src = ins
        axis = node.attrs["axis"]
        shape = base.type.shape
        ishape = idx.type.shape
        if ishape[axis] != 1 or any(ishape[d] != shape[d] for d in range(len(shape)) if d != axis):
            return None
        loc = node.loc
        i64 = D.int64
        if idx.type.dtype is not i64:
            idx = g.add("convert", [idx], {"dtype": i64}, loc)
        wide = g.add("broadcast_to", [idx], {"shape": shape}, loc)
        pos = g.add("iota", [], {"shape": shape, "axis": axis, "dtype": i64}, loc)
        hit = g.add("eq", [pos, wide], {}, loc)
        added = g.add("add", [base, g.add("broadcast_to", [src], {"shape": shape}, loc)], {}, loc)
        return g.add("where", [hit, added, base], {}, loc)

    if not any(n.op == "scatter_add" for n in graph.nodes):
        return graph
    return _rebuild(graph, rewrite)


def split_reductions(graph: Graph) -> Graph:
    def rewrite(g: Graph, node: Node, ins):
        if node.op not in ("reduce_sum", "reduce_max", "reduce_min", "reduce_prod"):
            return None
        x = ins[0]
        if not node.attrs["axes"]:  # reduces nothing: its operand, as a pointwise copy
            return g.add("copy", [x], {}, node.loc)
        shape = x.type.shape
        if len(node.attrs["axes"]) != len(shape) or x.type.numel < _SPLIT_MIN:
            return None
        total = x.type.numel
        chunk = next((c for c in _CHUNKS if total % c == 0), None)
        if chunk is None:
            return None
        flat = g.add("reshape", [x], {"shape": (total // chunk, chunk)}, node.loc)
        part = g.add(node.op, [flat], {"axes": (1,)}, node.loc)
        return g.add(node.op, [part], {"axes": (0,)}, node.loc)

    if not any(n.op.startswith("reduce_") for n in graph.nodes):
        return graph
    return _rebuild(graph, rewrite)  # (also: a reduction over no axes becomes a copy)
