"""The kernel IR (`ember.ir.kernel`): golden text of hand-built kernels and the verifier.

The kernels here are built op by op, without the fusion passes, so these tests pin the IR
itself: what `format_kernel` prints and which malformed kernels `verify_kernel` rejects, each
with the kernel's name and the offending op in the message.
"""

from __future__ import annotations

import pytest

from ember.ir import GraphError
from ember.ir import dtypes as D
from ember.ir.index import Dyn, Expr, var
from ember.ir.kernel import Buffer, GemmKernel, Kernel, KOp, Stage, format_kernel, verify_kernel

F32, I64 = D.float32, D.int64
P0, R0 = var("p0", 4), var("r0", 8)


def buffers() -> list[Buffer]:
    return [
        Buffer("in0", F32, (4, 8), (8, 1)),
        Buffer("out1", F32, (4, 8), (8, 1), 0, "out"),
    ]


def softmax_kernel() -> Kernel:
    """softmax over the rows of a f32[4,8]: max; exp and sum; scale and store."""
    return Kernel(
        "softmax_0",
        buffers(),
        (4,),
        [
            Stage(
                (8,),
                [
                    KOp(0, "load", (), F32, {"buffer": 0, "index": (P0, R0)}),
                    KOp(1, "reduce", (0,), F32, {"kind": "max"}),
                ],
            ),
            Stage(
                (8,),
                [
                    KOp(2, "load", (), F32, {"buffer": 0, "index": (P0, R0)}),
                    KOp(3, "sub", (2, 1), F32),
                    KOp(4, "exp", (3,), F32),
                    KOp(5, "reduce", (4,), F32, {"kind": "sum"}),
                ],
            ),
            Stage(
                (),
                [
                    KOp(6, "const", (), F32, {"value": 1.0}),
                    KOp(7, "div", (6, 5), F32),
                ],
            ),
            Stage(
                (8,),
                [
                    KOp(8, "load", (), F32, {"buffer": 0, "index": (P0, R0)}),
                    KOp(9, "sub", (8, 1), F32),
                    KOp(10, "exp", (9,), F32),
                    KOp(11, "mul", (10, 7), F32),
                    KOp(12, "store", (11,), None, {"buffer": 1, "index": (P0, R0)}),
                ],
            ),
        ],
        locs=("model.py:12",),
        nodes=("reduce_max", "sub", "exp", "reduce_sum", "div"),
    )


SOFTMAX_TEXT = """\
kernel @softmax_0(in0: f32[4,8]{8,1}+0 in, out1: f32[4,8]{8,1}+0 out)  # model.py:12
    parallel p0 < 4
  stage r0 < 8:
    %0 = load in0[p0, r0] : f32
    %1 = reduce max %0 : f32
  stage r0 < 8:
    %2 = load in0[p0, r0] : f32
    %3 = sub %2, %1 : f32
    %4 = exp %3 : f32
    %5 = reduce sum %4 : f32
  stage:
    %6 = const 1.0 : f32
    %7 = div %6, %5 : f32
  stage r0 < 8:
    %8 = load in0[p0, r0] : f32
    %9 = sub %8, %1 : f32
    %10 = exp %9 : f32
    %11 = mul %10, %7 : f32
    store out1[p0, r0], %11"""


def test_softmax_kernel_text():
    k = softmax_kernel()
    assert format_kernel(k) == SOFTMAX_TEXT
    assert str(k) == SOFTMAX_TEXT


def test_softmax_kernel_verifies():
    verify_kernel(softmax_kernel())


def test_ops_lists_every_stage_in_order():
    assert [op.id for op in softmax_kernel().ops()] == list(range(13))


def gemm_with_epilogue() -> GemmKernel:
    bufs = [
        Buffer("in0", F32, (1, 4, 3), (0, 3, 1)),
        Buffer("in1", F32, (1, 3, 8), (0, 1, 3)),
        Buffer("out2", F32, (4, 8), (8, 1), 0, "out"),
        Buffer("in3", F32, (8,), (1,)),
        Buffer("out4", F32, (4, 8), (8, 1), 0, "out"),
    ]
    p1 = var("p1", 8)
    epilogue = Kernel(
        "k0_epilogue",
        bufs,
        (4, 8),
        [
            Stage(
                (),
                [
                    KOp(0, "load", (), F32, {"buffer": 2, "index": (P0, p1)}),
                    KOp(1, "load", (), F32, {"buffer": 3, "index": (p1,)}),
                    KOp(2, "add", (0, 1), F32),
                    KOp(3, "const", (), F32, {"value": 0.0}),
                    KOp(4, "maximum", (2, 3), F32),
                    KOp(5, "store", (4,), None, {"buffer": 4, "index": (P0, p1)}),
                ],
            )
        ],
    )
    return GemmKernel(
        "k0", bufs, 0, 1, 2, 1, 4, 8, 3, False, True, epilogue, ("mlp.py:3",), ("matmul", "add")
    )


GEMM_TEXT = """\
gemm @k0(in0: f32[1,4,3]{0,3,1}+0 in, in1: f32[1,3,8]{0,1,3}+0 in, out2: f32[4,8]{8,1}+0 out, \
in3: f32[8]{1}+0 in, out4: f32[4,8]{8,1}+0 out)  # mlp.py:3
    out2 = in0 @ in1T  batch=1 m=4 n=8 k=3
  epilogue:
  kernel @k0_epilogue(in0: f32[1,4,3]{0,3,1}+0 in, in1: f32[1,3,8]{0,1,3}+0 in, \
out2: f32[4,8]{8,1}+0 out, in3: f32[8]{1}+0 in, out4: f32[4,8]{8,1}+0 out)
      parallel p0 < 4, p1 < 8
    stage:
      %0 = load out2[p0, p1] : f32
      %1 = load in3[p1] : f32
      %2 = add %0, %1 : f32
      %3 = const 0.0 : f32
      %4 = maximum %2, %3 : f32
      store out4[p0, p1], %4"""


def test_gemm_with_epilogue_text_and_verify():
    k = gemm_with_epilogue()
    assert format_kernel(k) == GEMM_TEXT
    verify_kernel(k)


def test_text_of_index_scan_philox_and_an_empty_domain():
    bufs = [Buffer("out0", F32, (8,), (1,), 0, "out")]
    r = var("r0", 8)
    k = Kernel(
        "misc",
        bufs,
        (),
        [
            Stage(
                (),
                [
                    KOp(0, "const", (), I64, {"value": 7}),
                    KOp(1, "const", (), I64, {"value": 0}),
                ],
            ),
            Stage(
                (8,),
                [
                    KOp(2, "index", (), I64, {"expr": r * 2 + 1}),
                    KOp(3, "philox", (0, 1), F32, {"index": r}),
                    KOp(4, "scan", (3,), F32, {"kind": "sum"}),
                    KOp(5, "store", (4,), None, {"buffer": 0, "index": (r,)}),
                ],
                reverse=True,
            ),
        ],
    )
    verify_kernel(k)
    assert format_kernel(k) == (
        "kernel @misc(out0: f32[8]{1}+0 out)\n"
        "    parallel (none)\n"
        "  stage:\n"
        "    %0 = const 7 : i64\n"
        "    %1 = const 0 : i64\n"
        "  stage r0 < 8 reverse:\n"
        "    %2 = index 2*r0 + 1 : i64\n"
        "    %3 = philox %0, %1 @ r0 : f32\n"
        "    %4 = scan sum %3 : f32\n"
        "    store out0[r0], %4"
    )


# ---------------------------------------------------------------------------------------------
# The verifier rejects each malformed kernel
# ---------------------------------------------------------------------------------------------


def rejects(kernel, *fragments: str) -> str:
    with pytest.raises(GraphError) as info:
        verify_kernel(kernel)
    message = str(info.value)
    assert message.startswith(f"kernel @{kernel.name}: "), message
    for fragment in fragments:
        assert fragment in message, message
    return message


def one_stage(extents, ops, parallel=(4,), bufs=None) -> Kernel:
    return Kernel("bad", bufs or buffers(), parallel, [Stage(extents, ops)])


def test_a_local_value_is_not_visible_in_a_later_stage():
    k = Kernel(
        "bad",
        buffers(),
        (4,),
        [
            Stage(
                (8,),
                [
                    KOp(0, "load", (), F32, {"buffer": 0, "index": (P0, R0)}),
                    KOp(1, "exp", (0,), F32),
                    KOp(2, "reduce", (1,), F32, {"kind": "sum"}),
                ],
            ),
            Stage(
                (8,),
                [
                    KOp(3, "div", (1, 2), F32),  # %1 lives in the first loop only
                    KOp(4, "store", (3,), None, {"buffer": 1, "index": (P0, R0)}),
                ],
            ),
        ],
    )
    rejects(k, "%3 reads %1, which is not visible here")


def test_a_value_is_not_visible_before_it_is_defined():
    k = one_stage((), [KOp(0, "exp", (1,), F32), KOp(1, "const", (), F32, {"value": 1.0})])
    rejects(k, "%0 reads %1")


def test_a_reduction_result_and_a_row_value_are_visible_later():
    k = softmax_kernel()
    verify_kernel(k)  # %1 and %5 (reduce) and %7 (a stage without extents) are read later
    k.stages[1].ops[1].args = (2, 0)  # %3 now reads the loop-local %0 of stage 0
    rejects(k, "%3 reads %0, which is not visible here")


def test_a_loop_variable_is_not_usable_outside_its_loop():
    k = one_stage(
        (),
        [
            KOp(0, "load", (), F32, {"buffer": 0, "index": (P0, R0)}),
            KOp(1, "store", (0,), None, {"buffer": 1, "index": (P0, var("r0", 8))}),
        ],
    )
    rejects(k, "%0: index uses ['r0'] outside their loops")


def test_an_unknown_parallel_variable_is_rejected():
    k = one_stage(
        (8,),
        [KOp(0, "load", (), F32, {"buffer": 0, "index": (var("p1", 4), R0)})],
    )
    rejects(k, "%0: index uses ['p1'] outside their loops")


def test_store_into_an_input_buffer():
    k = one_stage(
        (8,),
        [
            KOp(0, "load", (), F32, {"buffer": 0, "index": (P0, R0)}),
            KOp(1, "store", (0,), None, {"buffer": 0, "index": (P0, R0)}),
        ],
    )
    rejects(k, "%1: store into input buffer in0")


def test_wrong_index_arity():
    k = one_stage((8,), [KOp(0, "load", (), F32, {"buffer": 0, "index": (R0,)})])
    rejects(k, "%0: 2-d buffer in0 indexed with 1 expressions")


def test_reduce_in_a_stage_without_extents():
    k = one_stage(
        (),
        [
            KOp(0, "load", (), F32, {"buffer": 0, "index": (P0, Expr())}),
            KOp(1, "reduce", (0,), F32, {"kind": "sum"}),
        ],
    )
    rejects(k, "%1: reduce in a stage without a loop")


def test_scan_in_a_stage_without_extents():
    k = one_stage(
        (),
        [
            KOp(0, "load", (), F32, {"buffer": 0, "index": (P0, Expr())}),
            KOp(1, "scan", (0,), F32, {"kind": "sum"}),
        ],
    )
    rejects(k, "%1: scan in a stage without a loop")


def test_unknown_reduce_kind():
    k = one_stage(
        (8,),
        [
            KOp(0, "load", (), F32, {"buffer": 0, "index": (P0, R0)}),
            KOp(1, "reduce", (0,), F32, {"kind": "mean"}),
        ],
    )
    rejects(k, "%1: unknown reduce kind mean")


def test_unknown_op():
    k = one_stage((), [KOp(0, "softplus", (), F32)])
    rejects(k, "%0: unknown op 'softplus'")


def test_undefined_dyn_in_an_index():
    gathered = Expr(((Dyn(5, 0, 7), 1),))
    k = one_stage(
        (),
        [KOp(0, "load", (), F32, {"buffer": 0, "index": (P0, gathered)})],
    )
    rejects(k, "%0: index reads %5 before it is defined")


def test_a_defined_dyn_in_an_index_is_accepted():
    gathered = Expr(((Dyn(0, 0, 7), 1),))
    k = one_stage(
        (),
        [
            KOp(0, "const", (), I64, {"value": 3}),
            KOp(1, "load", (), F32, {"buffer": 0, "index": (P0, gathered)}),
            KOp(2, "store", (1,), None, {"buffer": 1, "index": (P0, gathered)}),
        ],
    )
    verify_kernel(k)


def test_an_index_must_be_an_expression():
    k = one_stage((8,), [KOp(0, "load", (), F32, {"buffer": 0, "index": (P0, 3)})])
    rejects(k, "%0: an index must be an Expr, got 3")


def test_a_value_defined_twice():
    k = one_stage(
        (),
        [KOp(0, "const", (), F32, {"value": 1.0}), KOp(0, "const", (), F32, {"value": 2.0})],
    )
    rejects(k, "%0 is defined twice")


def test_a_missing_buffer():
    k = one_stage((8,), [KOp(0, "load", (), F32, {"buffer": 2, "index": (P0, R0)})])
    rejects(k, "%0: buffer 2 does not exist")


def test_a_load_typed_unlike_its_buffer():
    k = one_stage((8,), [KOp(0, "load", (), D.float64, {"buffer": 0, "index": (P0, R0)})])
    rejects(k, "%0: load of f32 typed")


def test_a_value_without_a_dtype():
    k = one_stage((), [KOp(0, "const", (), None, {"value": 1.0})])
    rejects(k, "%0: no dtype")


def test_a_gemm_naming_a_missing_buffer():
    k = gemm_with_epilogue()
    k.out = 7
    rejects(k, "buffer 7 does not exist")


def test_a_gemm_epilogue_is_verified_too():
    k = gemm_with_epilogue()
    k.epilogue.stages[0].ops[2].args = (0, 9)
    with pytest.raises(GraphError, match=r"kernel @k0_epilogue: %2 reads %9"):
        verify_kernel(k)
