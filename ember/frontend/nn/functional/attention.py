"""scaled_dot_product_attention and multi_head_attention_forward, from matmul and softmax.

``scaled_dot_product_attention`` follows PyTorch's reference (math) implementation: scores
``q @ k^T * scale``, a boolean mask keeps positions where it is True, a float mask is added,
``is_causal`` masks with a top-left aligned lower triangle of the L x S score matrix, then
softmax over the keys, dropout and ``@ v``. Rows whose every score is -inf come out as zeros
(with zero gradient), as PyTorch's safe softmax gives. ``multi_head_attention_forward`` is
PyTorch's function of the same name, line for line (packed or separate projections,
``bias_k``/``bias_v``, ``add_zero_attn``, key padding masks, per-head or averaged weights).
"""

from __future__ import annotations

import math

import numpy as np

from ....ir import dtypes as D
from ....ir import ops as P
from ....ir.errors import DTypeError, ShapeError
from ...ops.common import broadcast_shapes, describe
from ...ops.linalg import matmul
from ...tensor import Tensor
from .activation import softmax
from .dropout import dropout
from .linear import linear

__all__ = ["scaled_dot_product_attention", "multi_head_attention_forward"]


def _bcast(x, shape):
    shape = tuple(shape)
    if tuple(x.shape) == shape:
        return x
    if x.ndim < len(shape):
        x = P.reshape(x, shape=(1,) * (len(shape) - x.ndim) + tuple(x.shape))
    return P.broadcast_to(x, shape=shape)


def _transpose_last(x):
    n = x.ndim
    return P.permute(x, dims=(*range(n - 2), n - 1, n - 2))


def _repeat_heads(x, reps: int):
    """``x.repeat_interleave(reps, dim=-3)`` via reshape and broadcast."""
    if reps == 1:
        return x
    shape = tuple(x.shape)
    lead, h, rest = shape[:-3], shape[-3], shape[-2:]
    y = P.reshape(x, shape=(*lead, h, 1, *rest))
    y = P.broadcast_to(y, shape=(*lead, h, reps, *rest))
    return P.reshape(y, shape=(*lead, h * reps, *rest))


def scaled_dot_product_attention(
    query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False
):
    """``softmax(q @ k^T * scale + bias) @ v`` over (..., L, E), (..., S, E), (..., S, Ev).

    ``attn_mask``: a bool mask (True = take part in attention) or a float mask added to the
    scores, broadcastable to (..., L, S). ``is_causal``: a lower-triangular mask aligned to the
    top-left corner (query i sees keys 0..i). ``enable_gqa``: key/value heads (dim -3) are
    repeated to match the query heads.
    """
    op = "scaled_dot_product_attention"
    for name, t in (("query", query), ("key", key), ("value", value)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}(): argument '{name}' must be Tensor, not {type(t).__name__}")
        if t.ndim < 2:
            raise ShapeError(op, f"expected {name} of rank >= 2, got {describe(t)}")
    if not (query.dtype is key.dtype is value.dtype) or not query.dtype.is_floating_point:
        raise DTypeError(
            op,
            f"Expected query, key, and value to have the same floating point dtype, got query "
            f"{describe(query)}, key {describe(key)}, value {describe(value)}",
        )
    if query.shape[-1] != key.shape[-1] or key.shape[-2] != value.shape[-2]:
        raise ShapeError(
            op,
            f"expected query (..., L, E), key (..., S, E) and value (..., S, Ev), got query "
            f"{describe(query)}, key {describe(key)}, value {describe(value)}",
        )
    if is_causal and attn_mask is not None:
        raise ShapeError(op, "Explicit attn_mask should not be set when is_causal=True")
    if enable_gqa and query.ndim >= 3 and key.ndim >= 3:
        hq, hk, hv = query.shape[-3], key.shape[-3], value.shape[-3]
        if hq % hk or hq % hv:
            raise ShapeError(
                op,
                f"number of heads in key/value must divide the number of heads in query, got "
                f"query {describe(query)}, key {describe(key)}, value {describe(value)}",
            )
        key, value = _repeat_heads(key, hq // hk), _repeat_heads(value, hq // hv)
    L, S = query.shape[-2], key.shape[-2]
    scale_factor = 1.0 / math.sqrt(query.shape[-1]) if scale is None else float(scale)
    scores = P.mul(matmul(query, _transpose_last(key)), scale_factor)
    if is_causal:
        keep = Tensor._make(np.tril(np.ones((L, S), dtype=bool)))
        scores = P.where(_bcast(keep, scores.shape), scores, float("-inf"))
    if attn_mask is not None:
        if not isinstance(attn_mask, Tensor):
            raise TypeError(
                f"{op}(): argument 'attn_mask' must be Tensor, not {type(attn_mask).__name__}"
            )
        shape = broadcast_shapes(op, tuple(scores.shape), tuple(attn_mask.shape))
        scores = _bcast(scores, shape)
        if attn_mask.dtype is D.bool_:
            scores = P.where(_bcast(attn_mask, shape), scores, float("-inf"))
        elif attn_mask.dtype.is_floating_point:
            mask = (
                attn_mask
                if attn_mask.dtype is scores.dtype
                else P.convert(attn_mask, dtype=scores.dtype)
            )
            scores = P.add(scores, _bcast(mask, shape))
        else:
            raise DTypeError(
                op, f"expected a bool or floating attn_mask, got {describe(attn_mask)}"
            )
    attn_is_masked = is_causal or attn_mask is not None
    if attn_is_masked:
        # Safe softmax: a row of only -inf scores attends to nothing (zeros), not NaN.
        alive = P.reduce_max(P.ne(scores, float("-inf")), axes=(scores.ndim - 1,))
        dead = _bcast(P.reshape(P.logical_not(alive), shape=(*scores.shape[:-1], 1)), scores.shape)
        scores = P.where(dead, 0.0, scores)
    attn = softmax(scores, dim=-1)
    if attn_is_masked:
        attn = P.where(dead, 0.0, attn)
    if dropout_p > 0.0:
        attn = dropout(attn, dropout_p, training=True)
    return matmul(attn, value)


# ---- multi-head attention ---------------------------------------------------------------------


def _canonical_mask(op, mask, name, target_dtype):
    """Bool masks become float masks with -inf where True; float masks pass."""
    if mask is None:
        return None
    if not isinstance(mask, Tensor):
        raise TypeError(f"{op}(): argument '{name}' must be Tensor, not {type(mask).__name__}")
    if mask.dtype is D.bool_:
        return P.where(
            mask, float("-inf"), P.full(shape=tuple(mask.shape), value=0.0, dtype=target_dtype)
        )
    if not mask.dtype.is_floating_point:
        raise DTypeError(
            op, f"only bool and floating types of {name} are supported, got {describe(mask)}"
        )
    return mask


def _rows(w, start, stop):
    """Rows ``start:stop`` of a matrix or vector (a chunk of the packed projection)."""
    starts = (start,) + (0,) * (w.ndim - 1)
    stops = (stop, *w.shape[1:])
    return P.slice(w, starts=starts, stops=stops, steps=(1,) * w.ndim)


def _pad_last(mask):
    """``F.pad(mask, (0, 1))``: one more zero column (a float mask)."""
    n = mask.ndim
    return P.pad(mask, low=(0,) * n, high=(0,) * (n - 1) + (1,), interior=(0,) * n, value=0.0)


def multi_head_attention_forward(
    query,
    key,
    value,
    embed_dim_to_check,
    num_heads,
    in_proj_weight,
    in_proj_bias,
    bias_k,
    bias_v,
    add_zero_attn,
    dropout_p,
    out_proj_weight,
    out_proj_bias,
    training=True,
    key_padding_mask=None,
    need_weights=True,
    attn_mask=None,
    use_separate_proj_weight=False,
    q_proj_weight=None,
    k_proj_weight=None,
    v_proj_weight=None,
    static_k=None,
    static_v=None,
    average_attn_weights=True,
    is_causal=False,
):
    """PyTorch's ``F.multi_head_attention_forward``: sequence-first (L, N, E) or unbatched
    (L, E) inputs; returns ``(attn_output, attn_weights or None)``."""
    op = "multi_head_attention_forward"
    for name, t in (("query", query), ("key", key), ("value", value)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}(): argument '{name}' must be Tensor, not {type(t).__name__}")
    if query.ndim == 3:
        is_batched = True
        if key.ndim != 3 or value.ndim != 3:
            raise ShapeError(
                op,
                "For batched (3-D) `query`, expected `key` and `value` to be "
                f"3-D but found key {describe(key)} and value {describe(value)}",
            )
        if key_padding_mask is not None and key_padding_mask.ndim != 2:
            raise ShapeError(
                op,
                "For batched (3-D) `query`, expected `key_padding_mask` to be "
                f"`None` or 2-D but found {describe(key_padding_mask)}",
            )
    elif query.ndim == 2:
        is_batched = False
        if key.ndim != 2 or value.ndim != 2:
            raise ShapeError(
                op,
                "For unbatched (2-D) `query`, expected `key` and `value` to be "
                f"2-D but found key {describe(key)} and value {describe(value)}",
            )
        if key_padding_mask is not None and key_padding_mask.ndim != 1:
            raise ShapeError(
                op,
                "For unbatched (2-D) `query`, expected `key_padding_mask` to be "
                f"`None` or 1-D but found {describe(key_padding_mask)}",
            )
    else:
        raise ShapeError(
            op, f"query should be unbatched 2D or batched 3D tensor but received {describe(query)}"
        )
    if attn_mask is not None and attn_mask.ndim not in (2, 3):
        raise ShapeError(
            op, f"expected `attn_mask` to be `None`, 2-D or 3-D but found {describe(attn_mask)}"
        )
    if not is_batched:
        query = P.reshape(query, shape=(query.shape[0], 1, query.shape[1]))
        key = P.reshape(key, shape=(key.shape[0], 1, key.shape[1]))
        value = P.reshape(value, shape=(value.shape[0], 1, value.shape[1]))
        if key_padding_mask is not None:
            key_padding_mask = P.reshape(key_padding_mask, shape=(1, key_padding_mask.shape[0]))
        if attn_mask is not None and attn_mask.ndim == 3:
            expected = (num_heads, query.shape[0], key.shape[0])
            if tuple(attn_mask.shape) != expected:
                raise ShapeError(
                    op,
                    f"Expected `attn_mask` shape to be {expected} but got {tuple(attn_mask.shape)}",
                )

    tgt_len, bsz, embed_dim = query.shape
    src_len = key.shape[0]
    key_padding_mask = _canonical_mask(op, key_padding_mask, "key_padding_mask", query.dtype)
    if is_causal and attn_mask is None:
        raise ShapeError(
            op,
            "Need attn_mask if specifying the is_causal hint. You may use the Transformer "
            "module method `generate_square_subsequent_mask` to create this mask.",
        )
    if is_causal and key_padding_mask is None and not need_weights:
        attn_mask = None
    else:
        attn_mask = _canonical_mask(op, attn_mask, "attn_mask", query.dtype)
        if key_padding_mask is not None:
            is_causal = False

    if embed_dim != embed_dim_to_check:
        raise ShapeError(
            op,
            f"was expecting embedding dimension of {embed_dim_to_check}, but "
            f"got query {describe(query)}",
        )
    head_dim = embed_dim // num_heads
    if head_dim * num_heads != embed_dim:
        raise ShapeError(op, f"embed_dim {embed_dim} not divisible by num_heads {num_heads}")
    if use_separate_proj_weight:
        if tuple(key.shape[:2]) != tuple(value.shape[:2]):
            raise ShapeError(
                op,
                f"key's sequence and batch dims {tuple(key.shape[:2])} do not "
                f"match value's {tuple(value.shape[:2])}",
            )
    elif tuple(key.shape) != tuple(value.shape):
        raise ShapeError(
            op, f"key shape {tuple(key.shape)} does not match value shape {tuple(value.shape)}"
        )

    # ---- in-projection
    E = embed_dim
    if not use_separate_proj_weight:
        if in_proj_weight is None:
            raise ShapeError(op, "use_separate_proj_weight is False but in_proj_weight is None")
        if query is key and key is value:
            proj = linear(query, in_proj_weight, in_proj_bias)  # (L, N, 3E)
            q, k, v = (
                P.slice(
                    proj, starts=(0, 0, i * E), stops=(tgt_len, bsz, (i + 1) * E), steps=(1, 1, 1)
                )
                for i in range(3)
            )
        else:
            bq, bk, bv = (
                (None,) * 3
                if in_proj_bias is None
                else (_rows(in_proj_bias, i * E, (i + 1) * E) for i in range(3))
            )
            q = linear(query, _rows(in_proj_weight, 0, E), bq)
            k = linear(key, _rows(in_proj_weight, E, 2 * E), bk)
            v = linear(value, _rows(in_proj_weight, 2 * E, 3 * E), bv)
    else:
        for name, w in (
            ("q_proj_weight", q_proj_weight),
            ("k_proj_weight", k_proj_weight),
            ("v_proj_weight", v_proj_weight),
        ):
            if w is None:
                raise ShapeError(op, f"use_separate_proj_weight is True but {name} is None")
        bq, bk, bv = (
            (None,) * 3
            if in_proj_bias is None
            else (_rows(in_proj_bias, i * E, (i + 1) * E) for i in range(3))
        )
        q = linear(query, q_proj_weight, bq)
        k = linear(key, k_proj_weight, bk)
        v = linear(value, v_proj_weight, bv)

    # ---- masks to (1 or N*H, L, S)
    if attn_mask is not None:
        if attn_mask.ndim == 2:
            if tuple(attn_mask.shape) != (tgt_len, src_len):
                raise ShapeError(
                    op,
                    f"The shape of the 2D attn_mask is {tuple(attn_mask.shape)}"
                    f", but should be {(tgt_len, src_len)}.",
                )
            attn_mask = P.reshape(attn_mask, shape=(1, tgt_len, src_len))
        elif tuple(attn_mask.shape) != (bsz * num_heads, tgt_len, src_len):
            raise ShapeError(
                op,
                f"The shape of the 3D attn_mask is {tuple(attn_mask.shape)}, "
                f"but should be {(bsz * num_heads, tgt_len, src_len)}.",
            )
        if attn_mask.dtype is not q.dtype:
            attn_mask = P.convert(attn_mask, dtype=q.dtype)

    if bias_k is not None and bias_v is not None:
        if static_k is not None or static_v is not None:
            raise ShapeError(op, "bias cannot be added to static key or value.")
        k = P.concat(k, P.broadcast_to(bias_k, shape=(1, bsz, E)), axis=0)
        v = P.concat(v, P.broadcast_to(bias_v, shape=(1, bsz, E)), axis=0)
        if attn_mask is not None:
            attn_mask = _pad_last(attn_mask)
        if key_padding_mask is not None:
            key_padding_mask = _pad_last(key_padding_mask)
    elif bias_k is not None or bias_v is not None:
        raise ShapeError(op, "bias_k and bias_v must be given together")

    # ---- heads: (L, N, E) -> (N*H, L, hd)
    q = P.permute(P.reshape(q, shape=(tgt_len, bsz * num_heads, head_dim)), dims=(1, 0, 2))
    if static_k is None:
        k = P.permute(P.reshape(k, shape=(k.shape[0], bsz * num_heads, head_dim)), dims=(1, 0, 2))
    else:
        if static_k.shape[0] != bsz * num_heads or static_k.shape[2] != head_dim:
            raise ShapeError(
                op,
                f"expecting static_k of shape ({bsz * num_heads}, S, "
                f"{head_dim}), but got {describe(static_k)}",
            )
        k = static_k
    if static_v is None:
        v = P.permute(P.reshape(v, shape=(v.shape[0], bsz * num_heads, head_dim)), dims=(1, 0, 2))
    else:
        if static_v.shape[0] != bsz * num_heads or static_v.shape[2] != head_dim:
            raise ShapeError(
                op,
                f"expecting static_v of shape ({bsz * num_heads}, S, "
                f"{head_dim}), but got {describe(static_v)}",
            )
        v = static_v

    if add_zero_attn:
        zeros = P.full(shape=(bsz * num_heads, 1, head_dim), value=0.0, dtype=k.dtype)
        k = P.concat(k, zeros, axis=1)
        v = P.concat(
            v, P.full(shape=(bsz * num_heads, 1, head_dim), value=0.0, dtype=v.dtype), axis=1
        )
        if attn_mask is not None:
            attn_mask = _pad_last(attn_mask)
        if key_padding_mask is not None:
            key_padding_mask = _pad_last(key_padding_mask)

    src_len = k.shape[1]
    if key_padding_mask is not None:
        if tuple(key_padding_mask.shape) != (bsz, src_len):
            raise ShapeError(
                op,
                f"Expected key_padding_mask of shape {(bsz, src_len)}, but got "
                f"{tuple(key_padding_mask.shape)}",
            )
        kpm = P.reshape(key_padding_mask, shape=(bsz, 1, 1, src_len))
        kpm = P.broadcast_to(kpm, shape=(bsz, num_heads, 1, src_len))
        kpm = P.reshape(kpm, shape=(bsz * num_heads, 1, src_len))
        if kpm.dtype is not q.dtype:
            kpm = P.convert(kpm, dtype=q.dtype)
        if attn_mask is None:
            attn_mask = kpm
        else:
            shape = (bsz * num_heads, attn_mask.shape[1], src_len)
            attn_mask = P.add(_bcast(attn_mask, shape), _bcast(kpm, shape))

    if not training:
        dropout_p = 0.0

    if need_weights:
        q_scaled = P.mul(q, math.sqrt(1.0 / float(head_dim)))
        weights = P.matmul(q_scaled, _transpose_last(k))
        if attn_mask is not None:
            weights = P.add(weights, _bcast(attn_mask, weights.shape))
        weights = softmax(weights, dim=-1)
        if dropout_p > 0.0:
            weights = dropout(weights, p=dropout_p)
        out = P.matmul(weights, v)  # (N*H, L, hd)
        out = P.reshape(P.permute(out, dims=(1, 0, 2)), shape=(tgt_len * bsz, embed_dim))
        out = linear(out, out_proj_weight, out_proj_bias)
        out = P.reshape(out, shape=(tgt_len, bsz, out.shape[1]))
        weights = P.reshape(weights, shape=(bsz, num_heads, tgt_len, src_len))
        if average_attn_weights:
            weights = P.div(P.reduce_sum(weights, axes=(1,)), float(num_heads))
        if not is_batched:
            out = P.reshape(out, shape=(tgt_len, out.shape[2]))
            weights = P.reshape(weights, shape=tuple(weights.shape[1:]))
        return out, weights

    if attn_mask is not None:
        if attn_mask.shape[0] == 1:
            attn_mask = P.reshape(attn_mask, shape=(1, *attn_mask.shape))
        else:
            attn_mask = P.reshape(attn_mask, shape=(bsz, num_heads, attn_mask.shape[1], src_len))
    q = P.reshape(q, shape=(bsz, num_heads, tgt_len, head_dim))
    k = P.reshape(k, shape=(bsz, num_heads, src_len, head_dim))
    v = P.reshape(v, shape=(bsz, num_heads, src_len, head_dim))
    out = scaled_dot_product_attention(q, k, v, attn_mask, dropout_p, is_causal)
    out = P.reshape(P.permute(out, dims=(2, 0, 1, 3)), shape=(bsz * tgt_len, embed_dim))
    out = linear(out, out_proj_weight, out_proj_bias)
    out = P.reshape(out, shape=(tgt_len, bsz, out.shape[1]))
    if not is_batched:
        out = P.reshape(out, shape=(tgt_len, out.shape[2]))
    return out, None
