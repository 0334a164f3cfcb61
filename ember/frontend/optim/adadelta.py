"""Adadelta."""

from __future__ import annotations

from ..ops.creation import zeros_like
from ..tensor import Tensor
from .optimizer import Optimizer, _check_common, learning_rate
from .step_scalars import in_dtype, scalar_dtype, scalar_state

__all__ = ["Adadelta"]


class Adadelta(Optimizer):
    """Adadelta, PyTorch's single-tensor algorithm (``torch.optim.Adadelta``)::

        g = grad + weight_decay * p
        v = rho * v + (1 - rho) * g * g
        delta = sqrt(u + eps) / sqrt(v + eps) * g
        u = rho * u + (1 - rho) * delta * delta
        p = p - lr * delta

    ``state[p]`` holds ``step``, ``square_avg`` (v) and ``acc_delta`` (u), as in PyTorch.
    """

    def __init__(
        self,
        params,
        lr: float | Tensor = 1.0,
        rho: float = 0.9,
        eps: float = 1e-6,
        weight_decay: float = 0,
        foreach: bool | None = None,
        *,
        capturable: bool = False,
        maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        _check_common(lr, differentiable, foreach=foreach, eps=eps, weight_decay=weight_decay)
        if not 0.0 <= rho <= 1.0:
            raise ValueError(f"Invalid rho value: {rho}")
        defaults = {
            "lr": lr,
            "rho": rho,
            "eps": eps,
            "weight_decay": weight_decay,
            "maximize": maximize,
            "capturable": capturable,
            "foreach": foreach,
            "differentiable": differentiable,
        }
        super().__init__(params, defaults)

    _GROUP_DEFAULTS = {
        "foreach": None,
        "maximize": False,
        "differentiable": False,
        "capturable": False,
    }
    _STEP_COUNTS_AS_TENSORS = True

    def _update_group(self, group) -> None:
        lr = learning_rate(group)
        rho, eps, weight_decay = group["rho"], group["eps"], group["weight_decay"]
        for p in group["params"]:
            if p.grad is None:
                continue
            state = self.state[p]
            if len(state) == 0:
                state["step"] = scalar_state(0.0, scalar_dtype())
                state["square_avg"] = zeros_like(p)
                state["acc_delta"] = zeros_like(p)
            square_avg, acc_delta = state["square_avg"], state["acc_delta"]
            state["step"] += 1
            grad = p.grad if not group["maximize"] else -p.grad
            if weight_decay != 0:
                grad = grad.add(p, alpha=weight_decay)
            square_avg.mul_(rho).addcmul_(grad, grad, value=1 - rho)
            std = square_avg.add(eps).sqrt_()
            delta = acc_delta.add(eps).sqrt_()
            delta.div_(std).mul_(grad)
            acc_delta.mul_(rho).addcmul_(delta, delta, value=1 - rho)
            p.add_(delta, alpha=in_dtype(-lr, p))
