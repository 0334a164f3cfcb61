"""Adagrad."""

from __future__ import annotations

from ...ir import dtypes as D
from ..ops.creation import full_like, tensor
from ..tensor import Tensor
from .optimizer import Optimizer, _check_common, learning_rate

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    """Adagrad, PyTorch's single-tensor algorithm (``torch.optim.Adagrad``)::

        g = grad + weight_decay * p
        clr = lr / (1 + (t - 1) * lr_decay)
        s = s + g * g                      (s starts at initial_accumulator_value)
        p = p - clr * g / (sqrt(s) + eps)

    As in PyTorch, the state (``step``, ``sum``) is created in the constructor.
    """

    def __init__(
        self,
        params,
        lr: float | Tensor = 1e-2,
        lr_decay: float = 0,
        weight_decay: float = 0,
        initial_accumulator_value: float = 0,
        eps: float = 1e-10,
        foreach: bool | None = None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        _check_common(
            lr,
            differentiable,
            fused=fused,
            foreach=foreach,
            lr_decay=lr_decay,
            weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value,
            eps=eps,
        )
        defaults = {
            "lr": lr,
            "lr_decay": lr_decay,
            "eps": eps,
            "weight_decay": weight_decay,
            "initial_accumulator_value": initial_accumulator_value,
            "foreach": foreach,
            "maximize": maximize,
            "differentiable": differentiable,
            "fused": fused,
        }
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                state = self.state[p]
                state["step"] = tensor(0.0, dtype=D.float32)
                state["sum"] = full_like(p, initial_accumulator_value)

    _GROUP_DEFAULTS = {"foreach": None, "maximize": False, "differentiable": False, "fused": None}
    _STEP_COUNTS_AS_TENSORS = True

    def share_memory(self) -> None:
        """A no-op kept for API compatibility (ember tensors live in the process's memory)."""

    def _update_group(self, group) -> None:
        lr = learning_rate(group)
        weight_decay, lr_decay, eps = group["weight_decay"], group["lr_decay"], group["eps"]
        for p in group["params"]:
            if p.grad is None:
                continue
            state = self.state[p]
            if len(state) == 0:
                state["step"] = tensor(0.0, dtype=D.float32)
                state["sum"] = full_like(p, self.defaults["initial_accumulator_value"])
            state_sum, step_t = state["sum"], state["step"]
            step_t += 1
            # inside ember.compile the step is a graph value, and so is the decayed rate
            step = step_t.double() if step_t._traced else step_t.item()
            grad = p.grad if not group["maximize"] else -p.grad
            if weight_decay != 0:
                grad = grad.add(p, alpha=weight_decay)
            clr = lr / (1 + (step - 1) * lr_decay)
            if step_t._traced:
                clr = clr.to(p.dtype)
            state_sum.addcmul_(grad, grad, value=1)
            std = state_sum.sqrt().add_(eps)
            p.addcdiv_(grad, std, value=-clr)
