"""``ember.compiler``: settings and cache control of ``ember.compile``.

- ``reset()`` forgets every compiled graph; the next calls trace and compile again;
- ``config.recompile_limit`` (default 8): cache entries per compiled function before new
  inputs run eagerly; ``config.partition``: ``"min_cut"`` (default) or ``"save_all"``;
- ``config.check_guards`` (or ``EMBER_CHECK_GUARDS=1``): check mode, every cache hit traces
  the call again and raises ``GuardCheckError`` if that gives another program than the cached
  one (a missing guard).
"""

from .tracer.api import GuardCheckError, config, reset

__all__ = ["reset", "config", "GuardCheckError"]
