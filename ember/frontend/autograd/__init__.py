"""``ember.autograd``: the tape (recorded `Node`s), the backward engine, grad mode and
custom Functions. VJP rules come from the primitive table (`ember.passes.vjp_rules`)."""

from .anomaly import detect_anomaly, set_detect_anomaly
from .engine import backward, grad
from .function import Function, FunctionCtx, once_differentiable
from .grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .graph import Node

__all__ = [
    "backward",
    "grad",
    "Function",
    "FunctionCtx",
    "once_differentiable",
    "no_grad",
    "enable_grad",
    "set_grad_enabled",
    "is_grad_enabled",
    "Node",
    "detect_anomaly",
    "set_detect_anomaly",
]
