"""Loss functions with PyTorch's reduction modes.

Every loss is a composition of ember ops (so eager autograd and the tracer see ordinary
primitive nodes) and follows the formulas of PyTorch's ATen kernels, including their edge
cases: ``nll_loss``'s ``'mean'`` divides by the summed weights of the targets that are not
ignored, ``cross_entropy``'s label smoothing mixes in ``-sum_c w_c log p_c / C``,
``binary_cross_entropy`` clamps its logs at -100 and ``binary_cross_entropy_with_logits`` uses
the ``log_sigmoid`` formulation that is stable for any logit.
"""

from __future__ import annotations

import math
import warnings

from ....ir import dtypes as D
from ....ir import ops as P
from ....ir.errors import DTypeError, InvalidValueError, ShapeError
from ...ops import elementwise as E
from ...ops import reduction as R
from ...ops import shape as S
from ...ops.common import broadcast_shapes, check_values_in_range, describe
from ...tensor import Tensor
from .activation import log_softmax

__all__ = [
    "cross_entropy",
    "nll_loss",
    "mse_loss",
    "l1_loss",
    "smooth_l1_loss",
    "huber_loss",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "kl_div",
]


class LossShapeError(ShapeError, ValueError):
    """A shape mismatch for which PyTorch raises ``ValueError`` (BCE's target size...)."""


# ---- helpers ---------------------------------------------------------------------------------


def _legacy_reduction(size_average, reduce) -> str:
    """PyTorch's ``_Reduction.legacy_get_string`` for the deprecated ``size_average``/``reduce``."""
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    if size_average and reduce:
        ret = "mean"
    elif reduce:
        ret = "sum"
    else:
        ret = "none"
    warnings.warn(
        f"size_average and reduce args will be deprecated, please use reduction='{ret}' instead.",
        stacklevel=3,
    )
    return ret


def _reduction(op: str, reduction: str, size_average=None, reduce=None, extra=()) -> str:
    if size_average is not None or reduce is not None:
        return _legacy_reduction(size_average, reduce)
    if reduction == "elementwise_mean":
        warnings.warn(
            "reduction='elementwise_mean' is deprecated. Please use reduction='mean' instead.",
            stacklevel=3,
        )
        return "mean"
    if reduction not in ("none", "mean", "sum", *extra):
        valid = ", ".join(repr(r) for r in ("none", "mean", "sum", *extra))
        raise ValueError(f"{op}: {reduction} is not a valid value for reduction (expected {valid})")
    return reduction


def _reduce(loss, reduction: str):
    if reduction == "none":
        return loss
    if reduction == "sum":
        return R.sum(loss)
    return R.mean(loss)


def _check_tensor(op: str, x, what: str) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: expected {what} to be an ember.Tensor, got {type(x).__name__}")


def _check_float(op: str, x, what: str) -> None:
    if not x.dtype.is_floating_point:
        raise DTypeError(op, f"expected a floating point {what}, got {describe(x)}")


def _same_size(op: str, input, target) -> None:
    if tuple(input.shape) != tuple(target.shape):
        raise LossShapeError(
            op,
            f"target size {list(target.shape)} must be the same as input size "
            f"{list(input.shape)} (input {describe(input)}, target {describe(target)})",
        )


def _broadcast_pair(op: str, input, target):
    """``input`` and ``target`` broadcast to one shape, warning like PyTorch when they differ."""
    if tuple(target.shape) != tuple(input.shape):
        warnings.warn(
            f"{op}: Using a target size ({target.shape}) that is different to the input size "
            f"({input.shape}). This will likely lead to incorrect results due to broadcasting. "
            "Please ensure they have the same size.",
            stacklevel=3,
        )
        shape = broadcast_shapes(op, input.shape, target.shape, operands=(input, target))
        return S.expand(input, *shape), S.expand(target, *shape)
    return input, target


def _elementwise_weight(op: str, loss, input_shape, weight, reduction: str, mean_by_weight: bool):
    """``mse_loss``/``l1_loss``/``huber_loss``'s optional elementwise ``weight`` (PyTorch 2.6+):
    it must have the input's shape (before broadcasting with the target)."""
    if weight is None:
        return _reduce(loss, reduction)
    _check_tensor(op, weight, "weight")
    if tuple(weight.shape) != tuple(input_shape):
        raise LossShapeError(
            op,
            f"Weights and input must have the same size: weight {describe(weight)}, "
            f"input shape {list(input_shape)}",
        )
    loss = E.mul(loss, weight)
    if reduction == "none":
        return loss
    if reduction == "sum" or not mean_by_weight:
        return _reduce(loss, reduction)
    return E.div(R.sum(loss), R.sum(weight))


def _log_sigmoid(x):
    """``log(sigmoid(x)) = min(x, 0) - log1p(exp(-|x|))``, stable for any x.

    Written with ``where`` so no branch overflows and the gradient at 0 is exactly 1/2.
    """
    negative = E.lt(x, 0.0)
    return E.sub(E.where(negative, x, 0.0), E.log1p(E.exp(E.where(negative, x, E.neg(x)))))


def _class_weight(op: str, weight, n_classes: int, dtype):
    _check_tensor(op, weight, "weight")
    if weight.ndim != 1 or weight.shape[0] != n_classes:
        raise ShapeError(
            op,
            f"weight tensor should be defined either for all {n_classes} classes or no classes "
            f"but got weight tensor of shape: {list(weight.shape)}",
        )
    return weight if weight.dtype is dtype else weight.to(dtype)


def _check_class_target(op: str, input, target) -> None:
    """Shapes and dtype of class-index targets, as ``nll_loss_nd`` checks them."""
    if target.is_floating_point() or target.dtype is D.bool_:
        raise DTypeError(
            op,
            f"expected class indices of an integer dtype (or a floating point target of the "
            f"input's shape for class probabilities), got target {describe(target)} for input "
            f"{describe(input)}",
        )
    if input.ndim == 1:
        expected: tuple = ()
    else:
        expected = (input.shape[0], *input.shape[2:])
        if target.ndim >= 1 and target.shape[0] != input.shape[0]:
            raise LossShapeError(
                op,
                f"Expected input batch_size ({input.shape[0]}) to match target batch_size "
                f"({target.shape[0]}): input {describe(input)}, target {describe(target)}",
            )
    if tuple(target.shape) != expected:
        raise ShapeError(
            op,
            f"expected target of shape {list(expected)} for input {describe(input)}, "
            f"got target {describe(target)}",
        )


def _check_target_bounds(op: str, target, n_classes: int, ignore_index: int) -> None:
    """A class index outside ``[0, C)`` that is not ``ignore_index`` is an error, as in
    PyTorch (``gather`` alone would wrap negative indices around)."""
    check_values_in_range(
        op, target, 0, n_classes - 1,
        f"Target {{value}} is out of bounds: expected class indices in [0, {n_classes}) or "
        f"ignore_index={ignore_index}, target {describe(target)}",
        ignore=ignore_index,
    )  # fmt: skip


def _check_input_rank(op: str, input) -> None:
    if input.ndim < 1:
        raise ShapeError(
            op, f"Expected 1 or more dimensions (got {input.ndim}): input {describe(input)}"
        )


def _weighted_mean(total, weight):
    """``total / weight``; NaN when every target is ignored (weight 0), as in PyTorch, but
    with a zero gradient there instead of the 0/0 that differentiating the division gives."""
    empty = E.eq(weight, 0)
    return E.where(empty, math.nan, E.div(total, E.where(empty, 1.0, weight)))


def _nll(logp, target, weight, ignore_index: int, reduction: str):
    """Negative log likelihood of the class-index ``target`` under log-probabilities ``logp``.

    Returns ``(loss, ignored, target_weight)``: ``target_weight`` is the weight of each target
    (zero where ignored), whose sum divides the ``'mean'`` reduction.
    """
    class_dim = 0 if logp.ndim == 1 else 1
    target = target if target.dtype is D.int64 else target.to(D.int64)
    ignored = E.eq(target, ignore_index)
    safe = E.where(ignored, 0, target)
    picked = S.squeeze(P.gather(logp, S.unsqueeze(safe, class_dim), axis=class_dim), class_dim)
    kept = E.logical_not(ignored).to(logp.dtype)
    if weight is not None:
        flat = P.gather(weight, S.reshape(safe, (-1,)), axis=0)
        target_weight = E.mul(S.reshape(flat, tuple(safe.shape)), kept)
    else:
        target_weight = kept
    loss = E.neg(E.mul(picked, target_weight))
    if reduction == "none":
        out = loss
    elif reduction == "sum":
        out = R.sum(loss)
    else:
        out = _weighted_mean(R.sum(loss), R.sum(target_weight))
    return out, ignored, target_weight


# ---- classification --------------------------------------------------------------------------


def nll_loss(input, target, weight=None, size_average=None, ignore_index: int = -100, reduce=None,
             reduction: str = "mean"):  # fmt: skip
    """Negative log likelihood of class indices ``target`` given log-probabilities ``input``.

    ``input`` is ``[C]``, ``[N, C]`` or ``[N, C, d1, ...]``; ``target`` is ``[]``, ``[N]`` or
    ``[N, d1, ...]``. ``'mean'`` divides by the summed weights of the non-ignored targets.
    """
    op = "nll_loss"
    reduction = _reduction(op, reduction, size_average, reduce)
    _check_tensor(op, input, "input")
    _check_tensor(op, target, "target")
    _check_input_rank(op, input)
    _check_float(op, input, "input")
    _check_class_target(op, input, target)
    class_dim = 0 if input.ndim == 1 else 1
    _check_target_bounds(op, target, input.shape[class_dim], ignore_index)
    if weight is not None:
        weight = _class_weight(op, weight, input.shape[class_dim], input.dtype)
    return _nll(input, target, weight, ignore_index, reduction)[0]


def cross_entropy(input, target, weight=None, size_average=None, ignore_index: int = -100,
                  reduce=None, reduction: str = "mean", label_smoothing: float = 0.0):  # fmt: skip
    """Cross entropy between ``log_softmax(input)`` and class indices or class probabilities.

    A ``target`` of the input's shape holds class probabilities; otherwise it holds class
    indices (with ``ignore_index``). ``label_smoothing`` mixes the target with the uniform
    distribution, as in PyTorch.
    """
    op = "cross_entropy"
    reduction = _reduction(op, reduction, size_average, reduce)
    _check_tensor(op, input, "input")
    _check_tensor(op, target, "target")
    _check_input_rank(op, input)
    _check_float(op, input, "input")
    if not 0.0 <= label_smoothing <= 1.0:
        raise RuntimeError(
            f"{op}: label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}"
        )
    class_dim = 0 if input.ndim == 1 else 1
    n_classes = input.shape[class_dim]
    if weight is not None:
        weight = _class_weight(op, weight, n_classes, input.dtype)
        weight_b = S.reshape(weight, tuple(n_classes if d == class_dim else 1
                                           for d in range(input.ndim)))  # fmt: skip
    logp = log_softmax(input, class_dim)

    if tuple(target.shape) == tuple(input.shape):
        # class probabilities
        if not target.is_floating_point():
            raise DTypeError(
                op,
                f"expected a floating point target for class probabilities, got target "
                f"{describe(target)} for input {describe(input)}",
            )
        if label_smoothing > 0.0:
            target = E.add(E.mul(target, 1.0 - label_smoothing), label_smoothing / n_classes)
        prod = E.mul(logp, target)
        if weight is not None:
            prod = E.mul(prod, weight_b)
        if reduction == "none":
            return E.neg(R.sum(prod, class_dim))
        total = E.neg(R.sum(prod))
        if reduction == "sum":
            return total
        return E.div(total, input.numel() // n_classes if input.numel() else 0.0)

    _check_class_target(op, input, target)
    _check_target_bounds(op, target, n_classes, ignore_index)
    nll, ignored, target_weight = _nll(logp, target, weight, ignore_index, reduction)
    if label_smoothing <= 0.0:
        return nll
    smooth = R.sum(E.mul(logp, weight_b) if weight is not None else logp, class_dim)
    smooth = E.where(ignored, 0.0, E.neg(smooth))
    if reduction == "sum":
        smooth = R.sum(smooth)
    elif reduction == "mean":
        smooth = _weighted_mean(R.sum(smooth), R.sum(target_weight))
    return E.add(E.mul(nll, 1.0 - label_smoothing), E.mul(smooth, label_smoothing / n_classes))


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None,
                         reduction: str = "mean"):  # fmt: skip
    """``-w (y log x + (1 - y) log(1 - x))`` with each log clamped at -100, as in PyTorch.

    The gradient with respect to ``input`` is PyTorch's ``w (x - y) / max(x (1 - x), 1e-12)``
    (finite at x = 0 and 1); it is not differentiable twice with respect to ``input``.
    """
    op = "binary_cross_entropy"
    reduction = _reduction(op, reduction, size_average, reduce)
    _check_tensor(op, input, "input")
    _check_tensor(op, target, "target")
    _same_size(op, input, target)
    _check_float(op, input, "input")
    check_values_in_range(
        op, input, 0.0, 1.0,
        f"all elements of input should be between 0 and 1, got {describe(input)}",
        error=InvalidValueError,
    )  # fmt: skip
    # PyTorch's gradient is not the derivative of its forward where x(1 - x) < 1e-12: it is
    # w (x - y) / max(x (1 - x), 1e-12). The loss is computed from the detached input and the
    # term (x - x.detach()) * that gradient (exactly zero in value) carries the gradient.
    x = input.detach()
    log_x = E.clamp(E.log(x), min=-100.0)
    log_1mx = E.clamp(E.log(E.sub(1.0, x)), min=-100.0)
    loss = E.neg(E.add(E.mul(target, log_x), E.mul(E.sub(1.0, target), log_1mx)))
    if input.requires_grad:
        y = target.detach()
        grad = E.div(E.sub(x, y), E.maximum(E.mul(x, E.sub(1.0, x)), 1e-12))
        loss = E.add(loss, E.mul(E.sub(input, x), grad))
    if weight is not None:
        _check_tensor(op, weight, "weight")
        loss = E.mul(loss, weight)
        if tuple(loss.shape) != tuple(input.shape):
            raise ShapeError(
                op, f"weight {describe(weight)} does not broadcast to input {describe(input)}"
            )
    return _reduce(loss, reduction)


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None,
                                     reduction: str = "mean", pos_weight=None):  # fmt: skip
    """``sigmoid`` + ``binary_cross_entropy`` in one numerically stable formula:
    ``(1 - y) x - (1 + (pos_weight - 1) y) log_sigmoid(x)``, times ``weight``."""
    op = "binary_cross_entropy_with_logits"
    reduction = _reduction(op, reduction, size_average, reduce)
    _check_tensor(op, input, "input")
    _check_tensor(op, target, "target")
    _same_size(op, input, target)
    _check_float(op, input, "input")
    log_sig = _log_sigmoid(input)
    if pos_weight is not None:
        _check_tensor(op, pos_weight, "pos_weight")
        log_sig = E.mul(log_sig, E.add(E.mul(E.sub(pos_weight, 1.0), target), 1.0))
    loss = E.sub(E.mul(E.sub(1.0, target), input), log_sig)
    if weight is not None:
        _check_tensor(op, weight, "weight")
        loss = E.mul(loss, weight)
    if tuple(loss.shape) != tuple(input.shape):
        raise ShapeError(
            op,
            f"weight/pos_weight do not broadcast to input {describe(input)}: "
            f"the loss came out {describe(loss)}",
        )
    return _reduce(loss, reduction)


def kl_div(input, target, size_average=None, reduce=None, reduction: str = "mean",
           log_target: bool = False):  # fmt: skip
    """Pointwise KL divergence ``target * (log(target) - input)`` (``input`` is log-probabilities).

    ``'batchmean'`` divides the sum by the batch size (the mathematically right KL divergence);
    ``'mean'`` divides by the number of elements, as in PyTorch.
    """
    op = "kl_div"
    legacy = size_average is not None or reduce is not None
    red = _reduction(op, reduction, size_average, reduce, extra=("batchmean",))
    if not legacy and red == "mean":
        warnings.warn(
            "reduction: 'mean' divides the total loss by both the batch size and the support "
            "size.'batchmean' divides only by the batch size, and aligns with the KL div math "
            "definition.'mean' will be changed to behave the same as 'batchmean' in the next "
            "major release.",
            stacklevel=2,
        )
    _check_tensor(op, input, "input")
    _check_tensor(op, target, "target")
    if tuple(input.shape) != tuple(target.shape):
        input, target = S.broadcast_tensors(input, target)
    if log_target:
        loss = E.mul(E.exp(target), E.sub(target, input))
    else:
        positive = E.gt(target, 0.0)
        xlogy = E.where(positive, E.mul(target, E.log(E.where(positive, target, 1.0))), 0.0)
        xlogy = E.where(E.isnan(target), target, xlogy)
        loss = E.sub(xlogy, E.mul(target, input))
    if red == "batchmean":
        total = R.sum(loss)
        return E.div(total, input.shape[0]) if input.ndim != 0 else total
    return _reduce(loss, red)


# ---- regression ------------------------------------------------------------------------------


def mse_loss(input, target, size_average=None, reduce=None, reduction: str = "mean",
             weight=None):  # fmt: skip
    """Mean squared error ``(x - y)^2``; with ``weight``, ``'mean'`` divides by ``weight.sum()``."""
    op = "mse_loss"
    _check_tensor(op, input, "input")
    _check_tensor(op, target, "target")
    input_shape = tuple(input.shape)
    input, target = _broadcast_pair(op, input, target)
    reduction = _reduction(op, reduction, size_average, reduce)
    diff = E.sub(input, target)
    return _elementwise_weight(op, E.mul(diff, diff), input_shape, weight, reduction, True)


def l1_loss(input, target, size_average=None, reduce=None, reduction: str = "mean",
            weight=None):  # fmt: skip
    """Mean absolute error ``|x - y|``; with ``weight``, ``'mean'`` divides by ``weight.sum()``."""
    op = "l1_loss"
    _check_tensor(op, input, "input")
    _check_tensor(op, target, "target")
    input_shape = tuple(input.shape)
    input, target = _broadcast_pair(op, input, target)
    reduction = _reduction(op, reduction, size_average, reduce)
    loss = E.abs(E.sub(input, target))
    return _elementwise_weight(op, loss, input_shape, weight, reduction, True)


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction: str = "mean",
                   beta: float = 1.0):  # fmt: skip
    """``0.5 d^2 / beta`` where ``|d| < beta``, else ``|d| - 0.5 beta`` (``beta = 0``: L1)."""
    op = "smooth_l1_loss"
    _check_tensor(op, input, "input")
    _check_tensor(op, target, "target")
    input, target = _broadcast_pair(op, input, target)
    reduction = _reduction(op, reduction, size_average, reduce)
    if beta < 0:
        raise RuntimeError(f"{op}: smooth_l1_loss does not support negative values for beta.")
    diff = E.sub(input, target)
    z = E.abs(diff)
    if beta == 0.0:
        return _reduce(z, reduction)
    loss = E.where(E.lt(z, beta), E.mul(E.mul(diff, diff), 0.5 / beta), E.sub(z, 0.5 * beta))
    return _reduce(loss, reduction)


def huber_loss(input, target, reduction: str = "mean", delta: float = 1.0, weight=None):
    """``0.5 d^2`` where ``|d| < delta``, else ``delta (|d| - 0.5 delta)``."""
    op = "huber_loss"
    _check_tensor(op, input, "input")
    _check_tensor(op, target, "target")
    input_shape = tuple(input.shape)
    input, target = _broadcast_pair(op, input, target)
    reduction = _reduction(op, reduction)
    if delta <= 0:
        raise RuntimeError(f"{op}: huber_loss does not support non-positive values for delta.")
    diff = E.sub(input, target)
    z = E.abs(diff)
    loss = E.where(
        E.lt(z, delta), E.mul(E.mul(diff, diff), 0.5), E.mul(E.sub(z, 0.5 * delta), delta)
    )
    return _elementwise_weight(op, loss, input_shape, weight, reduction, False)
