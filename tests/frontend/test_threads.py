"""``ember.set_num_threads`` and friends against PyTorch's, and their reach into BLAS.

threadpoolctl, the library ember uses to size BLAS pools, is also the independent observer
here: after ``set_num_threads(n)`` it must report ``n`` threads for every BLAS pool loaded.
Defaults and the once-only interop rule are checked in fresh interpreters, beside torch's.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import threadpoolctl
import torch

import ember

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _blas_threads():
    return [p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]


@pytest.fixture
def restore_threads():
    before = ember.get_num_threads()
    blas = _blas_threads()
    yield
    ember.set_num_threads(before)
    threadpoolctl.threadpool_limits(limits=max(blas), user_api="blas")


@pytest.mark.parametrize("n", [1, 2, 3])
def test_set_num_threads_sizes_the_blas_pools(restore_threads, n):
    assert _blas_threads(), "numpy's BLAS is not visible to threadpoolctl"
    ember.set_num_threads(n)
    assert ember.get_num_threads() == n
    assert _blas_threads() == [n] * len(_blas_threads())


def test_matmul_still_matches_with_one_thread(restore_threads):
    ember.set_num_threads(1)
    a = np.random.default_rng(0).standard_normal((64, 32))
    b = np.random.default_rng(1).standard_normal((32, 16))
    got = (ember.tensor(a) @ ember.tensor(b)).numpy()
    np.testing.assert_allclose(got, (torch.tensor(a) @ torch.tensor(b)).numpy(), rtol=1e-12)


@pytest.mark.parametrize("fn", ["set_num_threads", "set_num_interop_threads"])
@pytest.mark.parametrize("value", [0, -1, 1.5, "2"])
def test_invalid_counts_raise_like_torch(fn, value):
    with pytest.raises(RuntimeError) as torch_err:
        getattr(torch, fn)(value)
    with pytest.raises(RuntimeError) as ember_err:
        getattr(ember, fn)(value)
    # same complaint: "expects a positive integer" or "expects an int, but got float"
    assert str(torch_err.value).split(",")[0] in str(ember_err.value)


PROGRAM = """
import json, os, sys
affinity = json.loads(sys.argv[1])
if affinity is not None:
    os.sched_setaffinity(0, affinity)
import threadpoolctl
import {lib} as m
blas = [p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]
out = {{"threads": m.get_num_threads(), "interop": m.get_num_interop_threads(), "blas": blas}}
m.set_num_interop_threads(3)
out["interop_set"] = m.get_num_interop_threads()
try:
    m.set_num_interop_threads(2)
    out["second"] = "ok"
except RuntimeError as exc:
    out["second"] = "RuntimeError"
print(json.dumps(out))
"""


def _fresh(lib, affinity=None, omp=None):
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    if omp is not None:
        env["OMP_NUM_THREADS"] = str(omp)
    out = subprocess.run(
        [sys.executable, "-c", PROGRAM.format(lib=lib), json.dumps(affinity)],
        capture_output=True, text=True, check=True, cwd=ROOT, env=env,
    )  # fmt: skip
    return json.loads(out.stdout)


def test_defaults_and_interop_rule_match_torch():
    got, expected = _fresh("ember"), _fresh("torch")
    assert got["threads"] == expected["threads"] == len(os.sched_getaffinity(0))
    assert got["interop_set"] == expected["interop_set"] == 3
    assert got["second"] == expected["second"] == "RuntimeError"


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity here")
def test_default_follows_the_cores_this_process_may_use():
    got = _fresh("ember", affinity=[sorted(os.sched_getaffinity(0))[0]])
    assert got["threads"] == 1
    assert got["blas"] == [1] * len(got["blas"])


def test_omp_num_threads_sets_the_default_like_torch():
    assert _fresh("ember", omp=1)["threads"] == _fresh("torch", omp=1)["threads"] == 1
