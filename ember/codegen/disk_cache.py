"""The compile cache on disk: what a backend built (object code, text, JSON), kept across
processes so a program compiled once starts warm next time.

Entries are addressed by a key the caller derives from everything the contents depend on (for
LLVM: the module's text, the optimization level, the llvmlite and LLVM versions, the target
triple, CPU name and features). An entry is a set of named byte strings ("parts"); the store
never unpickles anything.

Where: ``EMBER_CACHE_DIR``, else ``$XDG_CACHE_HOME/ember``, else ``~/.cache/ember``. The
directory is created with mode 0700. A directory owned by another user, or writable by group
or others, is refused with a warning (its object code would run in this process): the cache
is then off. ``EMBER_DISK_CACHE=0`` turns it off too. ``EMBER_CACHE_SIZE`` bounds its size in
MiB (default 1024): when a write takes it past the bound, the least recently used entries
(oldest modification time; a hit touches its file) are removed down to 90% of it.

One file per entry, ``<dir>/<namespace>/<key[:2]>/<key>``:

    EMBER-CACHE 1\\n
    {"key": ..., "namespace": ..., "parts": [[name, length, sha256], ...]}\\n
    <the parts' bytes, in order>

Writes go to a temporary file in the same directory and are moved into place with
``os.replace``, so a reader (another process too) sees the old entry, the new one or none,
never half of one. A file that does not parse, whose key is not the one asked for, or whose
parts fail their checksum is reported with a warning, removed, and treated as a miss, so the
caller rebuilds and writes it again.

``cache_info()`` reports the directory, its entries and bytes, the bound, and this process's
hits, misses, writes, evictions and corrupt entries; ``cache_clear()`` removes every entry.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import stat
import tempfile
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CacheInfo", "cache_clear", "cache_dir", "cache_info", "contains", "get", "put"]

_MAGIC = b"EMBER-CACHE 1\n"
_DEFAULT_MIB = 1024
_LOCK = threading.Lock()
_stats = {"hits": 0, "misses": 0, "writes": 0, "evictions": 0, "corrupt": 0}
_written_since_scan: int | None = None  # None: no scan yet in this process
_refused: set[str] = set()  # directories already warned about


@dataclass(frozen=True)
class CacheInfo:
    """What ``cache_info()`` reports; the counts after ``entries`` are this process's."""

    directory: str | None  # None: the disk cache is off
    entries: int
    bytes: int
    limit_bytes: int
    hits: int
    misses: int
    writes: int
    evictions: int
    corrupt: int

    def __str__(self) -> str:
        if self.directory is None:
            return "ember compile cache: off"
        return (
            f"ember compile cache at {self.directory}: {self.entries} entries, "
            f"{self.bytes / 2**20:.1f} MiB of {self.limit_bytes / 2**20:.0f} MiB; this process: "
            f"{self.hits} hits, {self.misses} misses, {self.writes} writes, "
            f"{self.evictions} evictions, {self.corrupt} corrupt"
        )


def _configured_dir() -> Path | None:
    if os.environ.get("EMBER_DISK_CACHE", "1").strip().lower() in ("0", "false", "off", "no"):
        return None
    explicit = os.environ.get("EMBER_CACHE_DIR", "").strip()
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(xdg) if xdg else Path.home() / ".cache") / "ember"


def _limit_bytes() -> int:
    text = os.environ.get("EMBER_CACHE_SIZE", "").strip()
    try:
        mib = float(text) if text else _DEFAULT_MIB
    except ValueError:
        mib = math.nan
    if math.isinf(mib) and mib > 0:
        return 2**62  # (unbounded)
    if not math.isfinite(mib):
        warnings.warn(
            f"EMBER_CACHE_SIZE={text!r} is not a number of MiB; using {_DEFAULT_MIB}",
            stacklevel=3,
        )
        mib = _DEFAULT_MIB
    return max(0, int(mib * 2**20))


def _safe(root: Path) -> bool:
    """Whether ``root`` (existing) is ours alone; warns once per directory when not."""
    st = root.stat()
    problem = None
    if not stat.S_ISDIR(st.st_mode):
        problem = "is not a directory"
    elif hasattr(os, "getuid") and st.st_uid != os.getuid():
        problem = "is owned by another user"
    elif st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        problem = "is writable by group or others"
    if problem is not None and str(root) not in _refused:
        _refused.add(str(root))
        warnings.warn(
            f"ember: the compile cache directory {root} {problem}; the disk cache is off "
            "(set EMBER_CACHE_DIR to a directory of your own)",
            stacklevel=4,
        )
    return problem is None


def cache_dir(create: bool = False) -> Path | None:
    """The cache directory, or None when the disk cache is off (or its directory refused).
    With ``create``, a missing directory is made (mode 0700)."""
    root = _configured_dir()
    if root is None:
        return None
    if not root.exists():
        if not create:
            return root
        try:
            root.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            if str(root) not in _refused:
                _refused.add(str(root))
                warnings.warn(f"ember: cannot create the compile cache {root}: {exc}", stacklevel=3)
            return None
    return root if _safe(root) else None


def _path(root: Path, namespace: str, key: str) -> Path:
    if not key.isalnum() or not namespace.isidentifier():
        raise ValueError(f"disk cache: bad namespace {namespace!r} or key {key!r}")
    return root / namespace / key[:2] / key


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _parse(blob: bytes, namespace: str, key: str) -> dict[str, bytes]:
    """The parts of an entry file; ValueError when it is not a whole, matching entry."""
    if not blob.startswith(_MAGIC):
        raise ValueError("not an ember cache entry")
    end = blob.index(b"\n", len(_MAGIC))
    header = json.loads(blob[len(_MAGIC) : end])
    if not isinstance(header, dict):
        raise ValueError("the header is not an object")
    if header.get("key") != key or header.get("namespace") != namespace:
        raise ValueError("the entry belongs to another key")
    parts: dict[str, bytes] = {}
    at = end + 1
    for name, length, digest in header["parts"]:
        data = blob[at : at + length]
        if len(data) != length or _digest(data) != digest:
            raise ValueError(f"part {name!r} is truncated or fails its checksum")
        parts[name] = data
        at += length
    if at != len(blob):
        raise ValueError("trailing bytes")
    return parts


def contains(namespace: str, key: str) -> bool:
    """Whether an entry file for ``key`` exists (not checked, not counted as a hit)."""
    root = cache_dir()
    return root is not None and _path(root, namespace, key).exists()


def get(namespace: str, key: str) -> dict[str, bytes] | None:
    """The parts stored under ``key``, or None (a miss, the cache off, or a corrupt entry,
    which is removed with a warning)."""
    root = cache_dir()
    if root is None:
        return None
    path = _path(root, namespace, key)
    try:
        blob = path.read_bytes()
    except OSError:
        with _LOCK:
            _stats["misses"] += 1
        return None
    try:
        parts = _parse(blob, namespace, key)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        warnings.warn(
            f"ember: discarding the corrupt compile cache entry {path} ({exc}); rebuilding it",
            stacklevel=3,
        )
        with _LOCK:
            _stats["corrupt"] += 1
            _stats["misses"] += 1
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)
        return None
    with contextlib.suppress(OSError):
        os.utime(path)  # (last use, for eviction)
    with _LOCK:
        _stats["hits"] += 1
    return parts


def put(namespace: str, key: str, parts: dict[str, bytes]) -> None:
    """Store ``parts`` under ``key`` atomically; errors (a full disk, say) only warn."""
    global _written_since_scan
    root = cache_dir(create=True)
    if root is None:
        return
    path = _path(root, namespace, key)
    header = {
        "key": key,
        "namespace": namespace,
        "parts": [[name, len(data), _digest(data)] for name, data in parts.items()],
    }
    blob = b"".join([_MAGIC, json.dumps(header).encode(), b"\n", *parts.values()])
    try:
        path.parent.parent.mkdir(mode=0o700, exist_ok=True)
        path.parent.mkdir(mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(blob)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        warnings.warn(f"ember: could not write the compile cache entry {path}: {exc}", stacklevel=3)
        return
    limit = _limit_bytes()
    with _LOCK:
        _stats["writes"] += 1
        scan = _written_since_scan is None or _written_since_scan + len(blob) > limit // 16
        _written_since_scan = 0 if scan else _written_since_scan + len(blob)
    if scan:
        _evict(root, limit)


def _entries(root: Path) -> list[tuple[float, int, Path]]:
    """(last use, bytes, path) of every entry file under ``root``."""
    out = []
    for path in root.glob("*/*/*"):
        if path.name.startswith(".tmp-"):
            continue
        try:
            st = path.stat()
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode):
            out.append((st.st_mtime, st.st_size, path))
    return out


def _evict(root: Path, limit: int) -> None:
    entries = _entries(root)
    total = sum(size for _, size, _ in entries)
    if total <= limit:
        return
    for _, size, path in sorted(entries, key=lambda e: e[0]):
        if total <= limit * 0.9:
            break
        try:
            path.unlink()
        except OSError:
            continue
        total -= size
        with _LOCK:
            _stats["evictions"] += 1


def cache_info() -> CacheInfo:
    """The cache's directory, size and bound, and this process's counts."""
    root = cache_dir()
    entries = _entries(root) if root is not None and root.exists() else []
    with _LOCK:
        counts = dict(_stats)
    return CacheInfo(
        str(root) if root is not None else None,
        len(entries),
        sum(size for _, size, _ in entries),
        _limit_bytes(),
        **counts,
    )


def cache_clear() -> int:
    """Remove every entry from the disk cache; returns how many were removed."""
    root = cache_dir()
    if root is None or not root.exists():
        return 0
    removed = 0
    for _, _, path in _entries(root):
        try:
            path.unlink()
            removed += 1
        except OSError:
            pass
    return removed
