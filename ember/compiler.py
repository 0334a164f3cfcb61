"""``ember.compiler``: settings and cache control of ``ember.compile``.

- ``reset()`` forgets every compiled graph; the next calls trace and compile again;
- ``config.recompile_limit`` (default 8): cache entries per compiled function before new
  inputs run eagerly; ``config.partition``: ``"min_cut"`` (default) or ``"save_all"``.
"""

from .tracer.api import config, reset

__all__ = ["reset", "config"]
