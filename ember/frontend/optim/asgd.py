"""ASGD (averaged stochastic gradient descent)."""

from __future__ import annotations

from ..ops.creation import zeros_like
from ..ops.elementwise import where
from ..tensor import Tensor
from .optimizer import Optimizer, _check_common, learning_rate
from .step_scalars import in_dtype, scalar_dtype, scalar_state, state_number

__all__ = ["ASGD"]


class ASGD(Optimizer):
    """Averaged SGD, PyTorch's single-tensor algorithm (``torch.optim.ASGD``).

    Per parameter, with ``t`` the step count::

        g = grad + weight_decay * p
        p = p * (1 - lambd * eta) - eta * g
        ax = p if mu == 1 else ax + mu * (p - ax)
        eta = lr / (1 + lambd * lr * t) ** alpha
        mu = 1 / max(1, t - t0)

    ``state[p]`` holds ``step``, ``eta`` and ``mu`` (0-d, like ``step``) and ``ax`` (the
    average), as in PyTorch; ``eta`` starts at the group's learning rate.
    """

    def __init__(
        self,
        params,
        lr: float | Tensor = 1e-2,
        lambd: float = 1e-4,
        alpha: float = 0.75,
        t0: float = 1e6,
        weight_decay: float = 0,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
        capturable: bool = False,
    ) -> None:
        _check_common(lr, differentiable, foreach=foreach, weight_decay=weight_decay)
        defaults = {
            "lr": lr,
            "lambd": lambd,
            "alpha": alpha,
            "t0": t0,
            "weight_decay": weight_decay,
            "foreach": foreach,
            "maximize": maximize,
            "differentiable": differentiable,
            "capturable": capturable,
        }
        super().__init__(params, defaults)

    def __setstate__(self, state) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("foreach", None)
            group.setdefault("maximize", False)
            group.setdefault("differentiable", False)
            group.setdefault("capturable", False)
            for p in group["params"]:
                p_state = self.state.get(p, {})
                for key in ("eta", "mu"):
                    if len(p_state) != 0 and not isinstance(p_state[key], Tensor):
                        p_state[key] = scalar_state(float(p_state[key]))
        self._step_counts_as_tensors()

    def _update_group(self, group) -> None:
        lr = learning_rate(group)
        lambd, alpha, t0 = group["lambd"], group["alpha"], group["t0"]
        weight_decay = group["weight_decay"]
        for p in group["params"]:
            if p.grad is None:
                continue
            state = self.state[p]
            if len(state) == 0:
                state["step"] = scalar_state(0.0, scalar_dtype())
                state["eta"] = scalar_state(lr, scalar_dtype())
                state["mu"] = scalar_state(1.0, scalar_dtype())
                state["ax"] = zeros_like(p)
            mu, ax, eta, step_t = state["mu"], state["ax"], state["eta"], state["step"]
            grad = p.grad if not group["maximize"] else -p.grad

            step_t += 1
            if weight_decay != 0:
                grad = grad.add(p, alpha=weight_decay)
            eta_value = state_number(eta)
            p.mul_(in_dtype(1 - lambd * eta_value, p))
            p.add_(grad, alpha=in_dtype(-eta_value, p))

            # averaging: ax takes p's values exactly while mu is 1 (before step t0)
            ax.copy_(where(mu == 1, p, ax.add(p.sub(ax).mul_(mu))))

            step = state_number(step_t)
            eta.copy_(scalar_state(lr / ((1 + lambd * lr * step) ** alpha)))
            later = step - t0
            if isinstance(later, Tensor):
                mu.copy_(scalar_state(1 / later.clamp(min=1)))
            else:
                mu.copy_(scalar_state(1 / max(1, later)))
