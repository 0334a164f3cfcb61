"""Random small programs for the capture fuzzer, and the state comparison both capture test
files use.

`snapshot` turns whatever a program touches (tensors with their ``.grad``, modules, optimizers,
schedulers, dicts, lists, Python numbers) into plain data, and `assert_same` compares two
snapshots exactly (1e-12 in float64) and names the path of the first difference.

`generate(seed)` writes one program as Python source: module-level Python state (a global
float, a config dict, a list, a module with float/bool/tensor attributes, a closure cell), a
``step(x, y)`` function whose body reads and writes that state, takes views, writes in place
through them and may run an optimizer step and an LR scheduler; ``make_args(i)`` builds the
arguments of call ``i`` (sometimes the same tensor twice, sometimes overlapping views of one
base); ``mutate(i)`` changes the state before call ``i``. `run_program` executes it in a
fresh namespace, compiled or eagerly, and returns one snapshot per call.
"""

from __future__ import annotations

import inspect
import random
import textwrap
import warnings

import numpy as np

import ember
from ember.nn import Module
from ember.optim import Optimizer
from ember.optim.lr_scheduler import LRScheduler

__all__ = ["snapshot", "assert_same", "generate", "run_program", "Program", "OPTIMIZERS"]

TOL = 1e-12


# ---- state snapshots ---------------------------------------------------------------------


def snapshot(obj, depth: int = 0):
    """Plain data for ``obj`` and everything reachable from it that a program can change."""
    if depth > 6:
        return "<deep>"
    if isinstance(obj, ember.Tensor):
        return {
            "tensor": obj.detach().numpy().copy(),
            "dtype": str(obj.dtype),
            "requires_grad": obj.requires_grad,
            "grad": snapshot(obj.grad, depth + 1),
        }
    if isinstance(obj, Module):
        out = {"training": obj.training}
        for name, p in obj.named_parameters():
            out["param " + name] = snapshot(p, depth + 1)
        for name, b in obj.named_buffers():
            out["buffer " + name] = snapshot(b, depth + 1)
        for name, mod in obj.named_modules():
            for key, value in vars(mod).items():
                if not key.startswith("_") and key != "training":
                    out[f"attr {name}.{key}"] = snapshot(value, depth + 1)
        return out
    if isinstance(obj, Optimizer):
        state = obj.state_dict()
        return {"param_groups": snapshot(state["param_groups"], depth + 1),
                "state": snapshot(state["state"], depth + 1)}  # fmt: skip
    if isinstance(obj, LRScheduler):
        return {"state": snapshot(obj.state_dict(), depth + 1), "last_lr": obj.get_last_lr()}
    if isinstance(obj, dict):
        return {repr(k): snapshot(v, depth + 1) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [snapshot(v, depth + 1) for v in obj]
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    if callable(obj):
        return f"<callable {getattr(obj, '__qualname__', type(obj).__name__)}>"
    return f"<{type(obj).__name__}>"


def assert_same(got, want, path: str = "") -> None:
    """Raise AssertionError naming the first path where snapshots ``got`` and ``want`` differ."""
    if isinstance(want, np.ndarray):
        assert isinstance(got, np.ndarray), f"{path}: got {got!r}, want an array"
        assert got.shape == want.shape, f"{path}: shape {got.shape} != {want.shape}"
        close = np.isclose(got, want, rtol=TOL, atol=TOL) | (got == want)
        if want.dtype.kind == "f":
            close |= np.isnan(got) & np.isnan(want)
        assert close.all(), (
            f"{path}: {int((~close).sum())} of {close.size} values differ\n"
            f"got:\n{got}\nwant (eager):\n{want}"
        )
    elif isinstance(want, dict):
        assert isinstance(got, dict), f"{path}: got {got!r:.300}, want a dict"
        assert got.keys() == want.keys(), f"{path}: keys {sorted(got)} != {sorted(want)}"
        for k in want:
            assert_same(got[k], want[k], f"{path}[{k}]")
    elif isinstance(want, list):
        assert isinstance(got, list), f"{path}: got {got!r:.300}, want a list"
        assert len(got) == len(want), f"{path}: length {len(got)} != {len(want)}"
        for i, (g, w) in enumerate(zip(got, want)):
            assert_same(g, w, f"{path}[{i}]")
    elif isinstance(want, float) and isinstance(got, float):
        assert abs(got - want) <= TOL * (1 + abs(want)), f"{path}: {got!r} != {want!r}"
    else:
        assert got == want, f"{path}: {got!r} != {want!r}"


# ---- the generator -----------------------------------------------------------------------

# optimizer class name -> constructor keywords (classes not listed get ``lr=0.01``)
OPTIMIZERS = {
    "SGD": "lr=0.1, momentum=0.9",
    "Adam": "lr=0.05",
    "AdamW": "lr=0.05, weight_decay=0.1",
    "RMSprop": "lr=0.01, momentum=0.5",
    "Adagrad": "lr=0.1",
}
SCHEDULERS = [
    "StepLR(OPT, step_size=2, gamma=0.5)",
    "ExponentialLR(OPT, gamma=0.7)",
    "LambdaLR(OPT, lambda e: 1.0 / (1 + e))",
    "CosineAnnealingLR(OPT, T_max=3)",
    "MultiStepLR(OPT, milestones=[1, 3], gamma=0.3)",
]
ALIAS_KINDS = ["distinct", "same", "overlap", "transposed", "expanded"]

HEADER = """\
import ember
import ember.nn as nn
import ember.nn.functional as F
from ember.optim import lr_scheduler

G_S = {s0}
CFG = {{"scale": {c0}, "flag": {f0}, "p": {p0}}}
LST = [{l0}, {k0}]
ST = {{"t": ember.arange(12.0).reshape(4, 3) * 0.1}}
G_T = ember.linspace(-1.0, 1.0, 12).reshape(4, 3)
HIST = []
CNT = [0]


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 3)
        self.scale = {a0}
        self.use_bias = {f1}
        self.bias_t = ember.ones(3) * 0.5
        self.last = None

    def forward(self, v):
        v = self.lin(v).tanh() * self.scale
        if self.use_bias:
            v = v + self.bias_t
        return v


M = Net()
OPT = ember.optim.{opt}(M.parameters(), {opt_kwargs})
SCH = lr_scheduler.{sch}


def helper(v):
    return v * G_S + LST[0]


def make_step():
    c0 = {cl0}

    def set_c0(value):
        nonlocal c0
        c0 = value

    def step(x, y):
{body}

    return step, set_c0


step, set_c0 = make_step()


def make_args(i):
    base = ember.arange(15.0).reshape(5, 3) * 0.1 - 0.7 + 0.05 * i
    kind = {kinds}[i]
    if kind == "same":
        x = base[0:4].clone()
        y = x
    elif kind == "overlap":
        x, y = base[0:4], base[1:5]
    elif kind == "transposed":
        t = base[0:4].clone()
        x, y = t, t.t().contiguous().t()
    elif kind == "expanded":
        x, y = base[0:4].clone(), base[4:5].expand(4, 3)
    else:
        x, y = base[0:4].clone(), base[1:5].clone()
    if ARG_GRAD:
        x.requires_grad_(True)
    return (x, y), [base, x, y]


def mutate(i):
    global G_S
{mutate}

MODE = {mode!r}
ARG_GRAD = {arg_grad}
STATE = ["G_S", "CFG", "LST", "ST", "G_T", "HIST", "CNT", "M", "OPT", "SCH"]
"""

# body snippets: feature -> list of statement templates over ``v`` (shape (4, 3))
SNIPPETS = {
    "global": ["v = v * G_S"],
    "closure": ["v = v + c0"],
    "attr": ["v = v * M.scale"],
    "dict": ['v = v * CFG["scale"]'],
    "list": ["v = v + LST[0]"],
    "flag": ['if CFG["flag"]:\n    v = v.sin()\nelse:\n    v = v.cos() * 2'],
    "int": ["v = v.roll(LST[1], 0)", "v = v + v[LST[1]]"],
    "tensor_dict": ['v = v + ST["t"]'],
    "tensor_store": ['ST["t"] = v.detach() * 0.5'],
    "tensor_attr": ["v = v * M.bias_t", "if M.last is not None:\n    v = v + M.last",
                    "M.last = v.detach()"],
    "global_tensor": ["v = v + G_T"],
    "append": ["HIST.append(v.detach().sum())"],
    "counter": ["CNT[0] += 1"],
    "views": ["v = v + v[0:1].expand(4, 3)", "v = v.reshape(3, 4).t() * 1.5",
              "v = v + v.transpose(0, 1).reshape(4, 3)", "v = v[:, [2, 0, 1]] - v[1:2]"],
    "inplace_view": ["v = v.clone()\nv[1:3].mul_(1.5)",
                     "v = v.clone()\nv.t()[0].add_(G_S)",
                     "v = v.clone()\nv.view(12)[::2].sub_(0.25)",
                     "v = v.clone()\nw = v[:, 1:]\nw.mul_(-1.0)\nv = v + w.sum()"],
    "helper": ["v = helper(v)"],
    "dropout": ['v = F.dropout(v, p=CFG["p"], training=True)'],
    "module": ["v = M(v)"],
    "use_y": ["v = v + y", "v = v * y"],
}  # fmt: skip
FEATURES = tuple(SNIPPETS) + ("arg_inplace", "optimizer", "scheduler", "alias")


class Program:
    """One generated program: its source, the features it uses and how to call it."""

    def __init__(self, seed: int, source: str, features: list[str], mode: str, calls: int):
        self.seed, self.source, self.features, self.mode, self.calls = (
            seed, source, features, mode, calls,
        )  # fmt: skip

    def describe(self) -> str:
        return f"program seed={self.seed} mode={self.mode} features={self.features}\n" + "\n".join(
            f"{i + 1:4d}  {line}" for i, line in enumerate(self.source.splitlines())
        )


def _values(rng: random.Random, pool: list, calls: int) -> list:
    return [rng.choice(pool) for _ in range(calls)]


def _steps_without_closure(cls) -> bool:
    """Whether ``cls.step()`` runs without a closure (LBFGS's needs one)."""
    closure = inspect.signature(cls.step).parameters.get("closure")
    return closure is None or closure.default is not inspect.Parameter.empty


def generate(seed: int, calls: int = 4) -> Program:
    """A random program (deterministic in ``seed``) called ``calls`` times."""
    rng = random.Random(seed)
    mode = rng.choices(["train", "grad_outside", "no_grad"], [0.45, 0.3, 0.25])[0]
    features = [f for f in SNIPPETS if rng.random() < 0.3]
    if mode == "train" or rng.random() < 0.5:
        features.append("module")
    if "use_y" not in features and rng.random() < 0.6:
        features.append("use_y")
    while len(features) < 3:
        features.append(rng.choice(list(SNIPPETS)))
    features = list(dict.fromkeys(features))
    arg_grad = mode == "grad_outside" and rng.random() < 0.4
    arg_inplace = not arg_grad and rng.random() < 0.35
    alias = rng.random() < 0.6
    kinds = _values(rng, ALIAS_KINDS if alias else ["distinct"], calls)
    if arg_grad:  # overlapping views of one base and in-place writes need a leaf-free setup
        kinds = _values(rng, ["distinct", "same", "expanded"], calls)

    lines: list[str] = []
    if arg_inplace:
        lines.append(rng.choice(['x.mul_(CFG["scale"])', "x.add_(G_S)", "x[1:3].add_(1.0)"]))
    lines.append("v = x * 1.0")
    snippets = [(f, s) for f in features for s in SNIPPETS[f] if rng.random() < 0.7]
    snippets = snippets or [(f, SNIPPETS[f][0]) for f in features]
    rng.shuffle(snippets)
    if mode != "no_grad" and ("module", "v = M(v)") not in snippets:  # something to differentiate
        snippets.insert(rng.randrange(len(snippets) + 1), ("module", "v = M(v)"))
    lines += [s for _, s in snippets]
    scheduler = False
    if mode == "train":
        lines += ["loss = (v * v).mean()", "OPT.zero_grad()", "loss.backward()", "OPT.step()"]
        scheduler = rng.random() < 0.6
        if scheduler:
            lines.append("SCH.step()")
        lines.append("return loss.detach(), v.detach()")
    else:
        lines.append("return v")
    body = textwrap.indent("\n".join(lines), " " * 8)

    mutations: list[str] = []

    def mut(template: str, pool: list) -> None:
        mutations.append(template.format(vals=_values(rng, pool, calls)))

    used = " ".join(s for _, s in snippets) + " ".join(lines)
    if "G_S" in used and rng.random() < 0.8:
        mut("G_S = {vals}[i]", [1.5, 2.0, -0.5, 0.75])
    if 'CFG["scale"]' in used and rng.random() < 0.8:
        mut('CFG["scale"] = {vals}[i]', [0.5, 1.25, -2.0])
    if 'CFG["flag"]' in used and rng.random() < 0.8:
        mut('CFG["flag"] = {vals}[i]', [True, False])
    if 'CFG["p"]' in used and rng.random() < 0.8:
        mut('CFG["p"] = {vals}[i]', [0.1, 0.5, 0.9])
    if "LST[0]" in used and rng.random() < 0.8:
        mut("LST[0] = {vals}[i]", [2.0, 3.0, -1.0])
    if "LST[1]" in used and rng.random() < 0.8:
        mut("LST[1] = {vals}[i]", [0, 1, 2, 3])
    if "c0" in used and rng.random() < 0.8:
        mut("set_c0({vals}[i])", [0.25, 0.5, -1.0])
    if "M." in used or "M(v)" in used:
        if rng.random() < 0.5:
            mut("M.scale = {vals}[i]", [1.0, 0.5, 2.0])
        if rng.random() < 0.5:
            mut("M.use_bias = {vals}[i]", [True, False])
        if rng.random() < 0.4:
            mut("M.bias_t = ember.ones(3) * {vals}[i]", [0.5, -1.0, 2.0])
    if 'ST["t"]' in used and rng.random() < 0.4:
        mut('ST["t"] = ember.full((4, 3), {vals}[i])', [0.1, -0.3])
    if "G_T" in used and rng.random() < 0.5:
        mut("with ember.no_grad():\n    G_T.mul_({vals}[i])", [0.5, -1.0, 1.0])
    if mode == "train" and rng.random() < 0.3:
        mut('OPT.param_groups[0]["lr"] = {vals}[i]', [0.01, 0.05, 0.1])
    if rng.random() < 0.2:
        mutations.append("SCH.step()")
    mutate = textwrap.indent("\n".join(mutations) or "pass", " " * 4)

    optimizers = [c for c in vars(ember.optim).values()
                  if isinstance(c, type) and issubclass(c, Optimizer) and c is not Optimizer
                  and _steps_without_closure(c)]  # fmt: skip
    opt = rng.choice(sorted(c.__name__ for c in optimizers))
    source = HEADER.format(
        s0=rng.choice([1.5, 2.0]), c0=rng.choice([0.5, 1.25]), f0=rng.random() < 0.5,
        p0=rng.choice([0.1, 0.5]), l0=rng.choice([2.0, -1.0]), k0=rng.randrange(4),
        a0=rng.choice([1.0, 0.5]), f1=rng.random() < 0.5, opt=opt,
        opt_kwargs=OPTIMIZERS.get(opt, "lr=0.01"), sch=rng.choice(SCHEDULERS),
        cl0=rng.choice([0.25, -1.0]), body=body, kinds=kinds, mutate=mutate, mode=mode,
        arg_grad=arg_grad,
    )  # fmt: skip
    used_features = [f for f, _ in snippets]
    used_features += ["arg_inplace"] * arg_inplace + ["alias"] * (set(kinds) != {"distinct"})
    used_features += ["optimizer"] * (mode == "train") + ["scheduler"] * scheduler
    return Program(seed, source, sorted(set(used_features)), mode, calls)


# ---- running a program -------------------------------------------------------------------


def run_program(program: Program, compiled: bool) -> list:
    """Run ``program`` in a fresh namespace (float64, seeded), its ``step`` compiled or not;
    one snapshot per call (outputs, arguments and state), or ``("raised", class name)``."""
    previous = ember.get_default_dtype()
    ember.set_default_dtype(ember.float64)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scheduler order, recompile limit: compared below
            return _run(program, compiled)
    finally:
        ember.set_default_dtype(previous)


def _run(program: Program, compiled: bool) -> list:
    ember.manual_seed(program.seed)
    namespace = {"__name__": f"fuzz_program_{program.seed}"}
    exec(compile(program.source, f"<fuzz program {program.seed}>", "exec"), namespace)
    fn = ember.compile(namespace["step"]) if compiled else namespace["step"]
    results: list = []
    for i in range(program.calls):
        try:
            if i:
                namespace["mutate"](i)
            args, holders = namespace["make_args"](i)
            ember.manual_seed(1000 + i)
            if program.mode == "no_grad":
                with ember.no_grad():
                    out = fn(*args)
            else:
                out = fn(*args)
            if program.mode == "grad_outside":
                (out * out).sum().backward()
        except Exception as exc:  # compared: eager and compiled must raise alike
            results.append(("raised", type(exc).__name__))
            break
        state = {name: namespace[name] for name in namespace["STATE"]}
        try:
            results.append(snapshot({"out": out, "args": holders, "state": state}))
        except Exception as exc:  # e.g. a traced value left in Python state
            results.append(("state unreadable", f"{type(exc).__name__}: {exc}"))
            break
    return results
