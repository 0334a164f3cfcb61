"""Differential fuzzing of ``ember.compile``: random small programs (`fuzz_programs`) run
compiled and eagerly from identical state must agree on every call.

Each program reads Python state (globals, closure cells, module attributes, dict and list
entries, flags, ints), keeps tensors in dicts, lists and attributes, passes aliased arguments
and views of one base, writes in place through views and may run an optimizer step and an LR
scheduler inside; its state changes between calls the same way in both runs. Outputs,
arguments and all state (``.grad``s, optimizer and scheduler state included) must match to
1e-12 in float64, or both runs must raise the same exception class.

The bounded run below is part of the suite; ``EMBER_FUZZ_LONG=1`` runs thousands of programs
(``EMBER_FUZZ_LONG=5000`` picks the count) and reports the mismatch rate. Both run in check
mode (``ember.compiler.config.check_guards``): every cache hit is traced again and must give
the cached program, so a missing guard fails even when the numbers happen to agree.

The programs compile for the reference backend (``EMBER_BACKEND=reference``), whose kernels
are eager's own: the comparison can then be exact, and any difference is a capture bug. On the
LLVM backend sums are added in another order, and the normalizing optimizers (Adam's family,
Adamax, RMSprop...) turn the rounding noise of a gradient that is zero in exact arithmetic
into a full step, so exactness would not hold; the LLVM backend is held to the reference by
``tests/codegen/llvm/test_llvm_fuzz.py`` and by the other compile tests, which run on it.
"""

from __future__ import annotations

import os

import pytest
from fuzz_programs import FEATURES, assert_same, generate, run_program

import ember

CI_PROGRAMS = 100
LONG_DEFAULT = 3000


@pytest.fixture(autouse=True)
def _fresh_cache(monkeypatch):
    monkeypatch.setenv("EMBER_BACKEND", "reference")
    ember.compiler.reset()
    ember.compiler.config.check_guards = True
    yield
    ember.compiler.config.check_guards = False
    ember.compiler.reset()


def _mismatch(seed: int) -> str | None:
    """None when the compiled program agrees with eager on every call, else a report naming
    the call and printing the program."""
    program = generate(seed)
    eager = run_program(program, compiled=False)
    compiled = run_program(program, compiled=True)
    for i in range(max(len(eager), len(compiled))):
        want = eager[i] if i < len(eager) else "<no call: eager stopped>"
        got = compiled[i] if i < len(compiled) else "<no call: compiled stopped>"
        try:
            assert_same(got, want)
        except AssertionError as exc:
            return f"call {i} differs: {exc}\n{program.describe()}"
    return None


def test_generator_covers_every_feature():
    # the bounded run must exercise each feature several times
    seen = {f: 0 for f in FEATURES}
    for seed in range(CI_PROGRAMS):
        for f in generate(seed).features:
            seen[f] += 1
    rare = {f: n for f, n in seen.items() if n < 5}
    assert not rare, f"features used by fewer than 5 of {CI_PROGRAMS} programs: {rare}"


def test_generated_programs_run_eagerly():
    # a generated program is valid eager code: compiled runs are compared with finished calls
    raised = [s for s in range(CI_PROGRAMS) if len(run_program(generate(s), False)) < 4]
    assert not raised, f"programs whose eager run raised: {raised}"


@pytest.mark.parametrize("seed", range(CI_PROGRAMS))
def test_compiled_program_matches_eager(seed):
    # one random program: compiled == eager on every call, outputs and all state
    report = _mismatch(seed)
    if report is not None:
        print(report)
        pytest.fail(report.splitlines()[0] + f" (program seed {seed}, source printed above)")


@pytest.mark.skipif(not os.environ.get("EMBER_FUZZ_LONG"), reason="set EMBER_FUZZ_LONG=1")
def test_long_fuzz_run():
    # thousands of programs; prints the mismatch rate and the first failing programs
    value = os.environ["EMBER_FUZZ_LONG"]
    count = int(value) if value.isdigit() and int(value) > 1 else LONG_DEFAULT
    failures = []
    for seed in range(CI_PROGRAMS, CI_PROGRAMS + count):
        ember.compiler.reset()
        report = _mismatch(seed)
        if report is not None:
            failures.append((seed, report))
    print(f"capture fuzz: {len(failures)} of {count} programs differ from eager")
    for _, report in failures[:5]:
        print(report)
    assert not failures, (
        f"{len(failures)} of {count} programs differ; first seeds: {[s for s, _ in failures[:20]]}"
    )
