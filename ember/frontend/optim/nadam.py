"""NAdam (Adam with Nesterov momentum)."""

from __future__ import annotations

from ..ops.creation import zeros_like
from ..tensor import Tensor
from .adamax import checked_betas
from .optimizer import Optimizer, _check_common, hyperparameter, learning_rate
from .step_scalars import in_dtype, scalar_dtype, scalar_state, state_number

__all__ = ["NAdam"]


class NAdam(Optimizer):
    """NAdam, PyTorch's single-tensor algorithm (``torch.optim.NAdam``).

    Per parameter, with ``t`` the step count and ``psi`` the momentum decay::

        g = grad + weight_decay * p             (decoupled_weight_decay: p *= 1 - lr * wd)
        mu_t = beta1 * (1 - 0.5 * 0.96 ** (t * psi)), mu_{t+1} likewise
        P = P * mu_t                            (the running product of the mu's)
        m = lerp(m, g, 1 - beta1)
        v = beta2 * v + (1 - beta2) * g * g
        denom = sqrt(v / (1 - beta2 ** t)) + eps
        p = p - lr * (1 - mu_t) / (1 - P) * g / denom
              - lr * mu_{t+1} / (1 - P * mu_{t+1}) * m / denom

    ``state[p]`` holds ``step``, ``mu_product`` (P, 0-d like ``step``), ``exp_avg`` and
    ``exp_avg_sq``, as in PyTorch.
    """

    def __init__(
        self,
        params,
        lr: float | Tensor = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum_decay: float = 4e-3,
        decoupled_weight_decay: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
    ) -> None:
        _check_common(
            lr,
            differentiable,
            foreach=foreach,
            eps=eps,
            weight_decay=weight_decay,
            momentum_decay=momentum_decay,
        )
        betas = checked_betas(betas)
        defaults = {
            "lr": lr,
            "betas": betas,
            "eps": eps,
            "weight_decay": weight_decay,
            "momentum_decay": momentum_decay,
            "decoupled_weight_decay": decoupled_weight_decay,
            "maximize": maximize,
            "foreach": foreach,
            "capturable": capturable,
            "differentiable": differentiable,
        }
        super().__init__(params, defaults)

    def __setstate__(self, state) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("maximize", False)
            group.setdefault("foreach", None)
            group.setdefault("capturable", False)
            group.setdefault("differentiable", False)
            group.setdefault("decoupled_weight_decay", False)
            for p in group["params"]:
                p_state = self.state.get(p, {})
                if len(p_state) != 0 and not isinstance(p_state["mu_product"], Tensor):
                    p_state["mu_product"] = scalar_state(float(p_state["mu_product"]))
        self._step_counts_as_tensors()

    def _update_group(self, group) -> None:
        beta1, beta2 = hyperparameter(group, "betas", 0), hyperparameter(group, "betas", 1)
        lr = learning_rate(group)
        eps, weight_decay = group["eps"], group["weight_decay"]
        momentum_decay = group["momentum_decay"]
        for p in group["params"]:
            if p.grad is None:
                continue
            state = self.state[p]
            if len(state) == 0:
                state["step"] = scalar_state(0.0, scalar_dtype())
                state["mu_product"] = scalar_state(1.0, scalar_dtype())
                state["exp_avg"] = zeros_like(p)
                state["exp_avg_sq"] = zeros_like(p)
            exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
            mu_product, step_t = state["mu_product"], state["step"]
            grad = p.grad if not group["maximize"] else -p.grad

            step_t += 1
            step = state_number(step_t)
            bias_correction2 = 1 - beta2**step
            if weight_decay != 0:
                if group["decoupled_weight_decay"]:
                    p.mul_(in_dtype(1 - lr * weight_decay, p))
                else:
                    grad = grad.add(p, alpha=weight_decay)

            # the momentum cache mu_t and mu_{t+1}
            mu = beta1 * (1.0 - 0.5 * (0.96 ** (step * momentum_decay)))
            mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((step + 1) * momentum_decay)))
            mu_product *= in_dtype(mu, mu_product)

            exp_avg.lerp_(grad, in_dtype(1 - beta1, p))
            exp_avg_sq.mul_(in_dtype(beta2, p)).addcmul_(grad, grad, value=in_dtype(1 - beta2, p))
            denom = exp_avg_sq.div(in_dtype(bias_correction2, p)).sqrt()

            product = state_number(mu_product)
            product_next = product * mu_next
            denom.add_(eps)
            p.addcdiv_(grad, denom, value=in_dtype(-lr * (1.0 - mu) / (1.0 - product), p))
            p.addcdiv_(exp_avg, denom, value=in_dtype((-lr * mu_next) / (1.0 - product_next), p))
