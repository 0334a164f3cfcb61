"""``ember.compiler``: settings and cache control of ``ember.compile``.

- ``reset()`` forgets every compiled graph; the next calls trace and compile again;
- ``config.recompile_limit`` (default 8): cache entries per compiled function before new
  inputs run eagerly; ``config.partition``: ``"min_cut"`` (default) or ``"save_all"``;
- ``config.check_guards`` (or ``EMBER_CHECK_GUARDS=1``): check mode, every cache hit traces
  the call again and raises ``GuardCheckError`` if that gives another program than the cached
  one (a missing guard);
- ``cache_info()`` and ``cache_clear()``: the compile cache on disk (``EMBER_CACHE_DIR``, by
  default the user's cache directory; ``EMBER_CACHE_SIZE`` in MiB; ``EMBER_DISK_CACHE=0``
  turns it off), which keeps compiled object code so a new process starts warm.
"""

from .codegen.disk_cache import CacheInfo, cache_clear, cache_info
from .tracer.api import GuardCheckError, config, reset

__all__ = ["reset", "config", "GuardCheckError", "CacheInfo", "cache_info", "cache_clear"]
