"""Test-session setup: ember's disk compile cache goes to a fresh directory of the session's
own (removed at the end), never the user's cache; subprocesses the tests start inherit it."""

from __future__ import annotations

import os
import shutil
import tempfile

_CACHE = tempfile.mkdtemp(prefix="ember-test-cache-")
os.environ["EMBER_CACHE_DIR"] = _CACHE
os.environ.pop("EMBER_DISK_CACHE", None)


def pytest_unconfigure(config):
    shutil.rmtree(_CACHE, ignore_errors=True)
