"""The compile cache on disk: entries round-trip, the directory is private, corrupt or
foreign entries are rebuilt with a warning, the size bound evicts least recently used
entries, concurrent writers never leave half an entry, and a new process whose kernels are
cached runs without LLVM."""

from __future__ import annotations

import json
import multiprocessing
import os
import stat
import subprocess
import sys
import textwrap
import time
import warnings

import pytest

import ember
from ember.codegen import disk_cache


@pytest.fixture
def cache(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("EMBER_CACHE_DIR", str(root))
    monkeypatch.delenv("EMBER_CACHE_SIZE", raising=False)
    monkeypatch.delenv("EMBER_DISK_CACHE", raising=False)
    return root


def _file(root, key, namespace="llvm"):
    return root / namespace / key[:2] / key


def test_entries_round_trip_and_the_directory_is_private(cache):
    assert disk_cache.get("llvm", "ab" * 32) is None
    parts = {"object": bytes(range(256)) * 3, "text": b"define void @f()"}
    disk_cache.put("llvm", "ab" * 32, parts)
    assert disk_cache.get("llvm", "ab" * 32) == parts
    for directory in (cache, cache / "llvm", cache / "llvm" / "ab"):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    info = ember.compiler.cache_info()
    assert (info.directory, info.entries) == (str(cache), 1)
    assert info.bytes == _file(cache, "ab" * 32).stat().st_size
    assert "1 entries" in str(info)
    assert ember.compiler.cache_clear() == 1
    assert disk_cache.get("llvm", "ab" * 32) is None


@pytest.mark.parametrize(
    "damage",
    ["truncate", "flip", "garbage", "foreign", "empty"],
)
def test_a_corrupt_entry_is_discarded_with_a_warning_and_rebuilt(cache, damage):
    key, other = "cd" * 32, "ef" * 32
    parts = {"object": b"\x7fELF" + bytes(500)}
    disk_cache.put("llvm", key, parts)
    path = _file(cache, key)
    blob = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(blob[:-10])
    elif damage == "flip":
        path.write_bytes(blob[:-1] + bytes([blob[-1] ^ 1]))
    elif damage == "garbage":
        path.write_bytes(b"not a cache entry at all")
    elif damage == "foreign":  # a whole entry, stored under another key
        disk_cache.put("llvm", other, parts)
        path.write_bytes(_file(cache, other).read_bytes())
    else:
        path.write_bytes(b"")
    before = disk_cache.cache_info().corrupt
    with pytest.warns(UserWarning, match="corrupt compile cache entry"):
        assert disk_cache.get("llvm", key) is None
    assert disk_cache.cache_info().corrupt == before + 1
    assert not path.exists()
    disk_cache.put("llvm", key, parts)
    assert disk_cache.get("llvm", key) == parts


def test_the_size_bound_evicts_the_least_recently_used(cache, monkeypatch):
    monkeypatch.setenv("EMBER_CACHE_SIZE", str(20_000 / 2**20))  # about 20 kB
    keys = [f"{i:02d}" * 32 for i in range(6)]
    start = time.time() - 100
    for i, key in enumerate(keys[:4]):
        disk_cache.put("llvm", key, {"object": bytes(4000)})
        os.utime(_file(cache, key), (start + i, start + i))
    os.utime(_file(cache, keys[0]))  # (used just now: the newest)
    monkeypatch.setattr(disk_cache, "_written_since_scan", None)  # (scan on the next write)
    disk_cache.put("llvm", keys[4], {"object": bytes(4000)})
    disk_cache.put("llvm", keys[5], {"object": bytes(4000)})
    monkeypatch.setattr(disk_cache, "_written_since_scan", None)
    disk_cache.put("llvm", keys[5], {"object": bytes(4000)})
    present = [key for key in keys if _file(cache, key).exists()]
    assert keys[0] in present and keys[5] in present
    assert keys[1] not in present  # the least recently used goes first
    assert disk_cache.cache_info().bytes <= 20_000


def test_an_unsafe_directory_or_the_switch_turns_the_cache_off(cache, monkeypatch):
    cache.mkdir(mode=0o700)
    os.chmod(cache, 0o777)
    with pytest.warns(UserWarning, match="writable by group or others"):
        disk_cache.put("llvm", "aa" * 32, {"object": b"x"})
    assert not (cache / "llvm").exists()
    assert disk_cache.cache_info().directory is None
    os.chmod(cache, 0o700)
    monkeypatch.setenv("EMBER_DISK_CACHE", "0")
    disk_cache.put("llvm", "aa" * 32, {"object": b"x"})
    assert not (cache / "llvm").exists()
    assert str(disk_cache.cache_info()) == "ember compile cache: off"


def _writer(root: str, seed: int) -> None:
    os.environ["EMBER_CACHE_DIR"] = root
    for i in range(30):
        disk_cache.put("llvm", "77" * 32, {"object": bytes([seed]) * (1000 + 37 * i)})


def test_concurrent_writers_never_leave_half_an_entry(cache):
    cache.mkdir(mode=0o700)
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(cache), s)) for s in range(4)]
    for p in procs:
        p.start()
    seen = 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a corrupt read would warn
        while any(p.is_alive() for p in procs):
            parts = disk_cache.get("llvm", "77" * 32)
            if parts is not None:
                data = parts["object"]
                assert len(set(data)) == 1 and (len(data) - 1000) % 37 == 0
                seen += 1
    for p in procs:
        p.join()
        assert p.exitcode == 0
    assert disk_cache.get("llvm", "77" * 32) is not None
    assert not [p for p in cache.rglob(".tmp-*")]


_PROGRAM = textwrap.dedent(
    """
    import json, sys
    import ember, ember.nn as nn, ember.nn.functional as F
    from ember.codegen import disk_cache
    ember.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 4))
    opt = ember.optim.SGD(model.parameters(), lr=0.1)
    x, y = ember.randn(32, 8), ember.randint(0, 4, (32,))

    @ember.compile
    def step(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    losses = [step(x, y).item() for _ in range(3)]
    info = disk_cache.cache_info()
    print(json.dumps({"losses": losses, "hits": info.hits, "misses": info.misses,
                      "writes": info.writes, "corrupt": info.corrupt}))
    """
)


def _run(cache) -> dict:
    env = dict(os.environ, EMBER_CACHE_DIR=str(cache))
    out = subprocess.run(
        [sys.executable, "-c", _PROGRAM], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.splitlines()[-1])


def test_a_new_process_loads_every_kernel_from_the_cache(cache):
    cold = _run(cache)
    assert cold["writes"] > 0 and cold["misses"] == cold["writes"]
    warm = _run(cache)
    assert warm["misses"] == 0 and warm["writes"] == 0
    assert warm["hits"] == cold["hits"] + cold["writes"]
    assert warm["losses"] == cold["losses"]
    # damage every entry: the next process warns, rebuilds them all, and computes the same
    for path in cache.rglob("*"):
        if path.is_file():
            path.write_bytes(path.read_bytes()[:-1])
    rebuilt = _run(cache)
    assert rebuilt["corrupt"] == cold["writes"] and rebuilt["writes"] == cold["writes"]
    assert rebuilt["losses"] == cold["losses"]


def test_odd_size_bounds_and_headers_do_not_break_the_cache(cache, monkeypatch):
    monkeypatch.setenv("EMBER_CACHE_SIZE", "inf")
    disk_cache.put("llvm", "ab" * 32, {"object": b"x"})
    assert disk_cache.cache_info().limit_bytes > 2**60
    monkeypatch.setenv("EMBER_CACHE_SIZE", "lots")
    with pytest.warns(UserWarning, match="not a number of MiB"):
        assert disk_cache.cache_info().limit_bytes == 1024 * 2**20
    monkeypatch.delenv("EMBER_CACHE_SIZE")
    path = _file(cache, "ab" * 32)
    path.write_bytes(b"EMBER-CACHE 1\n[1]\n")
    with pytest.warns(UserWarning, match="corrupt"):
        assert disk_cache.get("llvm", "ab" * 32) is None


_PANELS = textwrap.dedent(
    """
    import sys, numpy as np, ember
    import ember.codegen.llvm.pool as pool
    if len(sys.argv) > 1:  # pretend another number of cores (GEMM panels are cut for them)
        pool.core_count.cache_clear()
        pool.core_count = lambda: int(sys.argv[1])
        import ember.codegen.llvm.emit as emit, ember.codegen.llvm.kernels as kernels
        emit.core_count = kernels.core_count = pool.core_count
    ember.manual_seed(0)
    a, b = ember.randn(512, 64), ember.randn(64, 64)
    y = ember.compile(lambda a, b: a @ b)(a, b).numpy()
    print(float(np.abs(y - a.numpy() @ b.numpy()).max()))
    """
)


def test_a_kernel_cut_for_other_cores_is_not_loaded(cache):
    env = dict(os.environ, EMBER_CACHE_DIR=str(cache))
    for argv in (["4"], []):
        out = subprocess.run([sys.executable, "-c", _PANELS, *argv], env=env,
                             capture_output=True, text=True, check=True)  # fmt: skip
        assert float(out.stdout.split()[-1]) < 1e-3, argv


_PLAN_CHILD = textwrap.dedent(
    """
    import numpy as np
    import ember
    from ember.codegen.llvm import backend
    made = []
    init = backend.LLVMCompiledGraph.__init__

    def record(self, *args, **kwargs):
        init(self, *args, **kwargs)
        made.append(self)

    backend.LLVMCompiledGraph.__init__ = record
    ember.manual_seed(0)
    lin = ember.nn.Linear(8, 4)

    def step(x, y):
        loss = ember.nn.functional.cross_entropy(lin(x), y)
        loss.backward()
        return loss

    f = ember.compile(step)
    rng = np.random.default_rng(0)
    x = ember.tensor(rng.standard_normal((16, 8)).astype(np.float32))
    y = ember.tensor(rng.integers(0, 4, 16))
    loss = f(x, y)
    graph = made[0]
    print("PLAN", graph.plan_from_cache, float(loss), lin.weight.grad.numpy().sum())
    print("KERNELS", graph.kernel_count, len(graph.kernels))
    """
)


def test_a_warm_process_skips_the_passes_and_gives_the_same_numbers(cache):
    env = dict(os.environ, EMBER_CACHE_DIR=str(cache))
    runs = [
        subprocess.run([sys.executable, "-c", _PLAN_CHILD], env=env, capture_output=True, text=True)
        for _ in range(2)
    ]
    lines = [[ln.split()[1:] for ln in r.stdout.splitlines() if ln[:4] in ("PLAN", "KERN")]
             for r in runs]  # fmt: skip
    assert all(r.returncode == 0 for r in runs), runs[-1].stderr
    (cold, cold_k), (warm, warm_k) = lines
    assert cold[0] == "False" and warm[0] == "True"
    assert cold[1:] == warm[1:]  # the same loss and gradient, bit for bit
    assert cold_k == warm_k  # the kernels, made again by the passes when asked for
    assert len(list((cache / "plan").rglob("*"))) > 0


def test_a_warm_process_that_logs_the_passes_runs_them(cache):
    env = dict(os.environ, EMBER_CACHE_DIR=str(cache))
    subprocess.run([sys.executable, "-c", _PLAN_CHILD], env=env, check=True, capture_output=True)
    env["EMBER_LOGS"] = "passes"
    run = subprocess.run(
        [sys.executable, "-c", _PLAN_CHILD], env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    assert "PLAN False" in run.stdout and "# input graph" in run.stderr + run.stdout
