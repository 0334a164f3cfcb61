"""RAdam (Adam with a rectified adaptive learning rate)."""

from __future__ import annotations

from ..ops.creation import zeros_like
from ..ops.elementwise import where
from ..tensor import Tensor
from .adamax import checked_betas
from .optimizer import Optimizer, _check_common, hyperparameter, learning_rate
from .step_scalars import in_dtype, scalar_dtype, scalar_state, state_number

__all__ = ["RAdam"]


class RAdam(Optimizer):
    """RAdam, PyTorch's single-tensor algorithm (``torch.optim.RAdam``).

    Per parameter, with ``t`` the step count::

        g = grad + weight_decay * p             (decoupled_weight_decay: p *= 1 - lr * wd)
        m = lerp(m, g, 1 - beta1)
        v = beta2 * v + (1 - beta2) * g * g
        rho_inf = 2 / (1 - beta2) - 1
        rho_t = rho_inf - 2 t beta2 ** t / (1 - beta2 ** t)
        r = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))
        l = sqrt(1 - beta2 ** t) / (sqrt(v) + eps)
        p = p - lr * m / (1 - beta1 ** t) * l * r      (rho_t > 5)
        p = p - lr * m / (1 - beta1 ** t)              (otherwise)

    ``state[p]`` holds ``step``, ``exp_avg`` and ``exp_avg_sq``, as in PyTorch. Inside
    ``ember.compile`` ``rho_t`` is a graph value, so the test ``rho_t > 5`` is a ``where`` over
    the same two expressions.
    """

    def __init__(
        self,
        params,
        lr: float | Tensor = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        decoupled_weight_decay: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
    ) -> None:
        _check_common(lr, differentiable, foreach=foreach, eps=eps, weight_decay=weight_decay)
        betas = checked_betas(betas)
        defaults = {
            "lr": lr,
            "betas": betas,
            "eps": eps,
            "weight_decay": weight_decay,
            "maximize": maximize,
            "foreach": foreach,
            "capturable": capturable,
            "decoupled_weight_decay": decoupled_weight_decay,
            "differentiable": differentiable,
        }
        super().__init__(params, defaults)

    _GROUP_DEFAULTS = {
        "foreach": None,
        "maximize": False,
        "differentiable": False,
        "decoupled_weight_decay": False,
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
                state["exp_avg_sq"] = zeros_like(p)
            exp_avg, exp_avg_sq, step_t = state["exp_avg"], state["exp_avg_sq"], state["step"]
            grad = p.grad if not group["maximize"] else -p.grad

            step_t += 1
            step = state_number(step_t)
            if weight_decay != 0:
                if group["decoupled_weight_decay"]:
                    p.mul_(in_dtype(1 - lr * weight_decay, p))
                else:
                    grad = grad.add(p, alpha=weight_decay)

            exp_avg.lerp_(grad, in_dtype(1 - beta1, p))
            exp_avg_sq.mul_(in_dtype(beta2, p)).addcmul_(grad, grad, value=in_dtype(1 - beta2, p))

            bias_correction1 = 1 - beta1**step
            bias_correction2 = 1 - beta2**step
            bias_corrected_exp_avg = exp_avg / in_dtype(bias_correction1, p)
            # the length of the approximated simple moving average, at most rho_inf
            rho_inf = 2 / (1 - beta2) - 1
            rho_t = rho_inf - 2 * step * (beta2**step) / bias_correction2

            plain = bias_corrected_exp_avg * in_dtype(lr, p)
            if isinstance(rho_t, Tensor) or rho_t > 5.0:
                rect = (
                    (rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)
                ) ** 0.5
                adaptive_lr = in_dtype(bias_correction2**0.5, p) / exp_avg_sq.sqrt().add_(eps)
                rectified = plain * adaptive_lr * in_dtype(rect, p)
            if isinstance(rho_t, Tensor):  # (NaN in the branch not taken is never read)
                update = where(rho_t > 5.0, rectified, plain)
            else:
                update = rectified if rho_t > 5.0 else plain
            p.add_(update, alpha=-1.0)
