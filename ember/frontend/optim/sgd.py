"""SGD with momentum, dampening, nesterov and weight decay."""

from __future__ import annotations

from ..tensor import Tensor
from .optimizer import Optimizer, _check_common, _scalar, hyperparameter, learning_rate

__all__ = ["SGD"]


class SGD(Optimizer):
    """Stochastic gradient descent, PyTorch's algorithm (``torch.optim.SGD``).

    With momentum ``mu``, dampening ``tau`` and weight decay ``lambda``::

        g = grad + lambda * p
        b = g                           (first step)
        b = mu * b + (1 - tau) * g      (later steps)
        g = g + mu * b if nesterov else b
        p = p - lr * g                  (p + lr * g when maximize)
    """

    def __init__(
        self,
        params,
        lr: float | Tensor = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        _check_common(
            lr,
            differentiable,
            fused=fused,
            foreach=foreach,
            momentum=momentum,
            weight_decay=weight_decay,
        )
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "dampening": dampening,
            "weight_decay": weight_decay,
            "nesterov": nesterov,
            "maximize": maximize,
            "foreach": foreach,
            "differentiable": differentiable,
            "fused": fused,
        }
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, defaults)

    _GROUP_DEFAULTS = {
        "nesterov": False,
        "maximize": False,
        "foreach": None,
        "differentiable": False,
        "fused": False,
    }

    def _update_group(self, group) -> None:
        lr = learning_rate(group)
        weight_decay = _scalar(group["weight_decay"])
        momentum = group["momentum"]
        dampening = group["dampening"]
        for p in group["params"]:
            if p.grad is None:
                continue
            grad = p.grad if not group["maximize"] else -p.grad
            if weight_decay != 0:
                grad = grad.add(p, alpha=weight_decay)
            if momentum != 0:  # (a static branch: compiled code guards on it)
                mu = hyperparameter(group, "momentum")
                state = self.state[p]
                buf = state.get("momentum_buffer")
                if buf is None:
                    buf = grad.detach().clone()
                    state["momentum_buffer"] = buf
                else:
                    buf.mul_(mu).add_(grad, alpha=1 - dampening)
                grad = grad.add(buf, alpha=mu) if group["nesterov"] else buf
            p.add_(grad, alpha=-lr)
