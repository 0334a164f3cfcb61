"""``ember.nn``: modules, parameters, functional API, initializers and utilities."""

from . import functional, init, utils
from .modules import *  # noqa: F403
from .parameter import Parameter
