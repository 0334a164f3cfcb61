"""Adamax (Adam with the infinity norm), and the betas check the Adam variants share."""

from __future__ import annotations

from ..ops.creation import zeros_like
from ..ops.elementwise import maximum
from ..tensor import Tensor
from .optimizer import Optimizer, _check_common, _scalar, hyperparameter, learning_rate
from .step_scalars import in_dtype, scalar_dtype, scalar_state, state_number

__all__ = ["Adamax"]


def checked_betas(betas) -> tuple:
    """``betas`` as a tuple of numbers, each in [0, 1) (PyTorch's messages)."""
    if not 0.0 <= betas[0] < 1.0:
        raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
    if not 0.0 <= betas[1] < 1.0:
        raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
    return tuple(_scalar(b) for b in betas)


class Adamax(Optimizer):
    """Adamax, PyTorch's single-tensor algorithm (``torch.optim.Adamax``)::

        g = grad + weight_decay * p
        m = lerp(m, g, 1 - beta1)
        u = max(beta2 * u, |g| + eps)
        p = p - lr / (1 - beta1 ** t) * m / u

    ``state[p]`` holds ``step``, ``exp_avg`` (m) and ``exp_inf`` (u), as in PyTorch.
    """

    def __init__(
        self,
        params,
        lr: float | Tensor = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        foreach: bool | None = None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        capturable: bool = False,
    ) -> None:
        _check_common(lr, differentiable, foreach=foreach, eps=eps, weight_decay=weight_decay)
        betas = checked_betas(betas)
        defaults = {
            "lr": lr,
            "betas": betas,
            "eps": eps,
            "weight_decay": weight_decay,
            "foreach": foreach,
            "maximize": maximize,
            "differentiable": differentiable,
            "capturable": capturable,
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
        beta1, beta2 = hyperparameter(group, "betas", 0), hyperparameter(group, "betas", 1)
        lr = learning_rate(group)
        eps, weight_decay = group["eps"], group["weight_decay"]
        for p in group["params"]:
            if p.grad is None:
                continue
            state = self.state[p]
            if len(state) == 0:
                state["step"] = scalar_state(0.0, scalar_dtype())
                state["exp_avg"] = zeros_like(p)
                state["exp_inf"] = zeros_like(p)
            exp_avg, exp_inf, step_t = state["exp_avg"], state["exp_inf"], state["step"]
            grad = p.grad if not group["maximize"] else -p.grad
            step_t += 1
            if weight_decay != 0:
                grad = grad.add(p, alpha=weight_decay)
            exp_avg.lerp_(grad, in_dtype(1 - beta1, p))
            exp_inf.mul_(in_dtype(beta2, p))
            exp_inf.copy_(maximum(exp_inf, grad.abs().add_(eps)))
            clr = lr / (1 - beta1 ** state_number(step_t))
            p.addcdiv_(exp_avg, exp_inf, value=in_dtype(-clr, p))
