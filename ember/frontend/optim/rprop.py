"""Rprop (resilient backpropagation)."""

from __future__ import annotations

from ..ops.creation import zeros_like
from ..ops.elementwise import where
from ..tensor import Tensor
from .optimizer import Optimizer, _check_common, _scalar, learning_rate
from .step_scalars import filled_like, scalar_dtype, scalar_state

__all__ = ["Rprop"]


class Rprop(Optimizer):
    """Rprop, PyTorch's single-tensor algorithm (``torch.optim.Rprop``).

    Per element, with ``s`` the sign of ``grad * prev``::

        factor = etaplus (s > 0), etaminus (s < 0), 1 (s == 0)
        step_size = clamp(step_size * factor, *step_sizes)
        g = 0 where s < 0, else grad
        p = p - sign(g) * step_size
        prev = g

    ``state[p]`` holds ``step``, ``prev`` and ``step_size`` (starting at ``lr``), as in PyTorch.
    The masked assignments of PyTorch's loop are ``where``s here, the same values in eager and
    compiled code.
    """

    def __init__(
        self,
        params,
        lr: float | Tensor = 1e-2,
        etas: tuple[float, float] = (0.5, 1.2),
        step_sizes: tuple[float, float] = (1e-6, 50),
        *,
        capturable: bool = False,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        _check_common(lr, differentiable, foreach=foreach)
        if not 0.0 < etas[0] < 1.0 < etas[1]:
            raise ValueError(f"Invalid eta values: {etas[0]}, {etas[1]}")
        defaults = {
            "lr": lr,
            "etas": tuple(_scalar(e) for e in etas),
            "step_sizes": tuple(_scalar(s) for s in step_sizes),
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
        etaminus, etaplus = group["etas"]
        step_size_min, step_size_max = group["step_sizes"]
        for p in group["params"]:
            if p.grad is None:
                continue
            state = self.state[p]
            if len(state) == 0:
                state["step"] = scalar_state(0.0, scalar_dtype())
                state["prev"] = zeros_like(p)
                state["step_size"] = filled_like(p, learning_rate(group))
            prev, step_size = state["prev"], state["step_size"]
            state["step"] += 1
            grad = p.grad if not group["maximize"] else -p.grad

            sign = grad.mul(prev).sign()
            reversed_ = sign.lt(0)  # the gradient changed sign: shrink, and skip this step
            sign = where(sign.gt(0), etaplus, sign)
            sign = where(reversed_, etaminus, sign)
            sign = where(sign.eq(0), 1.0, sign)
            step_size.mul_(sign).clamp_(step_size_min, step_size_max)

            grad = where(reversed_, 0.0, grad)
            p.addcmul_(grad.sign(), step_size, value=-1)
            prev.copy_(grad)
