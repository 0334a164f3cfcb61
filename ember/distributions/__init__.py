"""``ember.distributions`` (PyTorch's ``torch.distributions``): Normal, Bernoulli,
Categorical, Uniform, MultivariateNormal and Independent with sampling (from ember's
generator), reparameterized sampling, log densities, entropies, moments, argument validation
and ``kl_divergence``."""

from . import constraints, kl
from .bernoulli import Bernoulli
from .categorical import Categorical
from .distribution import Distribution
from .independent import Independent
from .kl import kl_divergence, register_kl
from .multivariate_normal import MultivariateNormal
from .normal import Normal
from .uniform import Uniform

__all__ = [
    "Bernoulli", "Categorical", "Distribution", "Independent", "MultivariateNormal", "Normal",
    "Uniform", "constraints", "kl", "kl_divergence", "register_kl",
]  # fmt: skip
