"""nn.Module and the containers against torch.nn: the same model class is defined once per
library, and traversal order and names, state_dict keys, load_state_dict's errors, hooks,
copies, dtype conversion and repr are compared with torch's."""

import copy
from collections import OrderedDict

import numpy as np
import pytest
import torch
import torch.nn as tnn

import ember
import ember.nn as enn

# ---------------------------------------------------------------- one model, two libraries


def make_model_classes(nn, lib):
    """The same custom modules written against ``nn``/``lib`` (torch.nn/torch or ember)."""

    class Scale(nn.Module):
        def __init__(self, n, factor):
            super().__init__()
            self.n, self.factor = n, factor
            self.weight = nn.Parameter(lib.full((n,), factor))
            self.register_buffer("count", lib.zeros((), dtype=lib.int64))
            self.register_buffer("cache", lib.zeros(n), persistent=False)

        def forward(self, x):
            return x * self.weight

        def extra_repr(self):
            return f"n={self.n}, factor={self.factor}"

    class Block(nn.Module):
        def __init__(self, shared):
            super().__init__()
            self.lin = nn.Linear(4, 4)
            self.act = nn.ReLU()
            self.shared = shared
            self.register_buffer("running", lib.zeros(4))

        def forward(self, x):
            return self.shared(self.act(self.lin(x)))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.shared = Scale(4, 2.0)
            self.stem = nn.Sequential(nn.Linear(3, 4), nn.ReLU())
            self.register_buffer("step", lib.tensor(0))
            self.blocks = nn.ModuleList([Block(self.shared), Block(self.shared)])
            self.heads = nn.ModuleDict({"cls": nn.Linear(4, 2), "reg": Scale(4, 0.5)})
            self.register_buffer("tmp", lib.ones(2), persistent=False)
            self.register_parameter("temperature", nn.Parameter(lib.tensor(1.5)))
            self.register_buffer("absent", None)
            self.register_parameter("nothing", None)
            self.tied = self.stem[0]  # one module under two names
            self.empty = nn.Sequential()

        def forward(self, x):
            h = self.stem(x)
            for block in self.blocks:
                h = block(h)
            cls = self.heads["cls"](h) * self.temperature
            return cls + self.heads["reg"](h).sum(-1, keepdim=True) + self.tied(x)[:, :2]

    return Scale, Block, Net


EScale, EBlock, ENet = make_model_classes(enn, ember)
TScale, TBlock, TNet = make_model_classes(tnn, torch)


def to_torch(t):
    return torch.tensor(t.detach().numpy())


def to_ember(t):
    return ember.tensor(t.detach().numpy())


def make_pair():
    """An ember Net and a torch Net with the same parameter and buffer values."""
    em, tm = ENet(), TNet()
    rng = np.random.default_rng(0)
    with torch.no_grad(), ember.no_grad():
        for (en, ep), (tn, tp) in zip(em.named_parameters(), tm.named_parameters()):
            assert en == tn
            value = rng.uniform(-1, 1, size=tuple(tp.shape)).astype(np.float32)
            ep.copy_(ember.tensor(value))
            tp.copy_(torch.tensor(value))
    return em, tm


def torch_message(exc):
    return str(exc).replace("torch.Size", "ember.Size").replace("torch.", "ember.")


def raises_like(e_fn, t_fn, compare_message=True):
    """Both raise the same exception type (and, by default, the same message)."""
    with pytest.raises(Exception) as t_info:
        t_fn()
    with pytest.raises(type(t_info.value)) as e_info:
        e_fn()
    if compare_message:
        # ember has no nn.Buffer class (torch 2.5+); its messages leave that name out
        t_msg = torch_message(t_info.value).replace("torch ", "ember ")
        t_msg = t_msg.replace("ember.nn.Buffer, ", "")
        e_msg = str(e_info.value)
        if e_msg.startswith("Error(s) in loading state_dict"):  # PyTorch's words, then where
            e_msg, _, where = e_msg.partition("\n(at ")
            assert where.startswith("test_module.py:"), where
        assert e_msg == t_msg
    return e_info.value, t_info.value


def names(pairs):
    return [n for n, _ in pairs]


# ---------------------------------------------------------------- traversal


def test_traversal_order_and_names_match_torch():
    em, tm = make_pair()
    assert names(em.named_parameters()) == names(tm.named_parameters())
    assert names(em.named_buffers()) == names(tm.named_buffers())
    assert names(em.named_children()) == names(tm.named_children())
    assert names(em.named_modules()) == names(tm.named_modules())
    assert [type(m).__name__ for m in em.modules()] == [type(m).__name__ for m in tm.modules()]
    assert [type(m).__name__ for m in em.children()] == [type(m).__name__ for m in tm.children()]
    for kw in [
        {"remove_duplicate": False},
        {"prefix": "model"},
        {"prefix": "m", "recurse": False},
        {"recurse": False},
    ]:
        assert names(em.named_parameters(**kw)) == names(tm.named_parameters(**kw)), kw
        assert names(em.named_buffers(**kw)) == names(tm.named_buffers(**kw)), kw
    assert names(em.named_modules(remove_duplicate=False)) == names(
        tm.named_modules(remove_duplicate=False)
    )
    assert names(em.named_modules(prefix="root")) == names(tm.named_modules(prefix="root"))
    assert [tuple(p.shape) for p in em.parameters()] == [tuple(p.shape) for p in tm.parameters()]
    assert [tuple(b.shape) for b in em.buffers()] == [tuple(b.shape) for b in tm.buffers()]
    assert len(list(em.parameters(recurse=False))) == len(list(tm.parameters(recurse=False)))
    # the shared module and the shared parameter are the same objects
    assert em.blocks[0].shared is em.blocks[1].shared is em.shared
    assert em.get_parameter("blocks.1.shared.weight") is em.shared.weight


def test_state_dict_keys_order_and_values_match_torch():
    em, tm = make_pair()
    esd, tsd = em.state_dict(), tm.state_dict()
    assert list(esd) == list(tsd)
    for k in tsd:
        np.testing.assert_array_equal(esd[k].detach().numpy(), tsd[k].detach().numpy())
        assert esd[k].dtype.name == str(tsd[k].dtype).removeprefix("torch.")
    # values are detached but share storage; keep_vars returns the Parameters themselves
    assert not esd["shared.weight"].requires_grad
    assert em.state_dict(keep_vars=True)["shared.weight"] is em.shared.weight
    assert list(em.state_dict(prefix="p.")) == list(tm.state_dict(prefix="p."))
    # non-persistent buffers are not saved, None entries are skipped
    assert "tmp" not in esd and "shared.cache" not in esd and "absent" not in esd


def test_forward_and_gradients_match_torch():
    em, tm = make_pair()
    x = np.random.default_rng(1).standard_normal((5, 3)).astype(np.float32)
    eo, to = em(ember.tensor(x)), tm(torch.tensor(x))
    np.testing.assert_allclose(eo.detach().numpy(), to.detach().numpy(), rtol=1e-5, atol=1e-5)
    w = np.random.default_rng(2).standard_normal(tuple(to.shape)).astype(np.float32)
    (eo * ember.tensor(w)).sum().backward()
    (to * torch.tensor(w)).sum().backward()
    for (n, ep), (_, tp) in zip(em.named_parameters(), tm.named_parameters()):
        np.testing.assert_allclose(ep.grad.detach().numpy(), tp.grad.detach().numpy(), rtol=1e-5, atol=1e-5,
                                   err_msg=n)  # fmt: skip


# ---------------------------------------------------------------- load_state_dict


def _loaded_pair():
    em, tm = make_pair()
    return em, tm, em.state_dict(), tm.state_dict()


def test_load_state_dict_roundtrip():
    em, tm, esd, tsd = _loaded_pair()
    other_e, other_t = ENet(), TNet()
    res_e, res_t = other_e.load_state_dict(esd), other_t.load_state_dict(tsd)
    assert repr(res_e) == repr(res_t) == "<All keys matched successfully>"
    assert res_e.missing_keys == [] and res_e.unexpected_keys == []
    for k, v in other_e.state_dict().items():
        np.testing.assert_array_equal(v.detach().numpy(), esd[k].detach().numpy())
    # copied, not aliased
    assert other_e.shared.weight is not em.shared.weight
    with ember.no_grad():
        em.shared.weight.add_(1.0)
    assert not np.allclose(
        other_e.shared.weight.detach().numpy(), em.shared.weight.detach().numpy()
    )


@pytest.mark.parametrize(
    "edit",
    ["missing", "unexpected", "size", "missing+unexpected", "all", "nested_unexpected"],
)
def test_load_state_dict_strict_errors_match_torch_messages(edit):
    def mutate(sd, lib):
        sd = OrderedDict(sd)
        if "missing" in edit or edit == "all":
            del sd["stem.0.bias"]
            del sd["blocks.1.running"]
        if "unexpected" in edit or edit == "all":
            sd["extra"] = lib.zeros(1)
            sd["blocks.0.lin.extra"] = lib.zeros(1)
            sd["stem.5.weight"] = lib.zeros(1)
        if edit == "nested_unexpected":
            sd = OrderedDict([("zzz.a", lib.zeros(1)), *sd.items(), ("aaa", lib.zeros(1))])
        if edit in ("size", "all"):
            sd["heads.cls.weight"] = lib.zeros(3, 4)
            sd["temperature"] = lib.zeros(2)
        return sd

    em, tm, esd, tsd = _loaded_pair()
    e_exc, t_exc = raises_like(
        lambda: ENet().load_state_dict(mutate(esd, ember)),
        lambda: TNet().load_state_dict(mutate(tsd, torch)),
    )
    assert isinstance(e_exc, RuntimeError)
    assert str(e_exc).startswith("Error(s) in loading state_dict for Net:")


def test_load_state_dict_non_strict_returns_missing_and_unexpected():
    em, tm, esd, tsd = _loaded_pair()
    for sd, lib in ((esd, ember), (tsd, torch)):
        del sd["heads.reg.weight"]
        del sd["step"]
        sd["bogus.key"] = lib.ones(1)
        sd["blocks.0.nope"] = lib.ones(1)
    e_res = ENet().load_state_dict(esd, strict=False)
    t_res = TNet().load_state_dict(tsd, strict=False)
    assert e_res.missing_keys == t_res.missing_keys
    assert e_res.unexpected_keys == t_res.unexpected_keys
    assert repr(e_res) == repr(t_res)
    missing, unexpected = e_res
    assert missing == ["step", "heads.reg.weight"]
    # a size mismatch raises even when not strict
    esd["stem.0.weight"] = ember.zeros(1, 1)
    tsd["stem.0.weight"] = torch.zeros(1, 1)
    raises_like(
        lambda: ENet().load_state_dict(esd, strict=False),
        lambda: TNet().load_state_dict(tsd, strict=False),
    )


def test_load_state_dict_casts_dtype_and_handles_bad_values():
    em = enn.Linear(2, 3)
    tm = tnn.Linear(2, 3)
    sd64 = {"weight": ember.ones(3, 2, dtype=ember.float64), "bias": ember.zeros(3)}
    em.load_state_dict(sd64)
    assert em.weight.dtype is ember.float32 and em.weight.detach().numpy().sum() == 6.0
    raises_like(
        lambda: em.load_state_dict({"weight": 3, "bias": ember.zeros(3)}),
        lambda: tm.load_state_dict({"weight": 3, "bias": torch.zeros(3)}),
    )
    with pytest.raises(TypeError, match="Expected state_dict to be dict-like"):
        em.load_state_dict([1, 2])
    with pytest.raises(TypeError, match="Expected state_dict to be dict-like"):
        tm.load_state_dict([1, 2])


def test_load_state_dict_assign():
    em = enn.Linear(2, 3)
    w = ember.ones(3, 2)
    em.load_state_dict({"weight": w, "bias": ember.zeros(3)}, assign=True)
    assert isinstance(em.weight, enn.Parameter) and em.weight.requires_grad
    assert [n for n, _ in em.named_parameters()] == ["weight", "bias"]
    with ember.no_grad():
        w.add_(1.0)
    assert em.weight.detach().numpy().sum() == 12.0  # assign=True shares the checkpoint's storage


# ---------------------------------------------------------------- registration errors


def _fresh(lib_nn, lib):
    m = lib_nn.Module()
    m.register_buffer("b", lib.zeros(1))
    m.p = lib_nn.Parameter(lib.zeros(1))
    m.sub = lib_nn.Module()
    return m


@pytest.mark.parametrize(
    "action",
    [
        lambda m, nn, lib: m.register_buffer(1, None),
        lambda m, nn, lib: m.register_buffer("a.b", None),
        lambda m, nn, lib: m.register_buffer("", None),
        lambda m, nn, lib: m.register_buffer("training", None),
        lambda m, nn, lib: m.register_buffer("p", None),
        lambda m, nn, lib: m.register_buffer("x", 3),
        lambda m, nn, lib: m.register_parameter(1, None),
        lambda m, nn, lib: m.register_parameter("a.b", None),
        lambda m, nn, lib: m.register_parameter("", None),
        lambda m, nn, lib: m.register_parameter("b", None),
        lambda m, nn, lib: m.register_parameter("sub", None),
        lambda m, nn, lib: m.register_parameter("x", 3),
        lambda m, nn, lib: m.add_module("a.b", nn.Module()),
        lambda m, nn, lib: m.add_module("", nn.Module()),
        lambda m, nn, lib: m.add_module("b", nn.Module()),
        lambda m, nn, lib: m.add_module(1, nn.Module()),
        lambda m, nn, lib: m.add_module("q", 3),
        lambda m, nn, lib: m.register_module("forward", nn.Module()),
        lambda m, nn, lib: setattr(m, "b", 3),
        lambda m, nn, lib: setattr(m, "sub", 3),
        lambda m, nn, lib: m.get_submodule("x"),
        lambda m, nn, lib: m.get_submodule("sub.y"),
        lambda m, nn, lib: m.get_submodule("b"),
        lambda m, nn, lib: m.get_parameter("b"),
        lambda m, nn, lib: m.get_parameter("zz"),
        lambda m, nn, lib: m.get_parameter("sub.zz"),
        lambda m, nn, lib: m.get_buffer("zz"),
        lambda m, nn, lib: m.get_buffer("p"),
        lambda m, nn, lib: m.train(1),
        lambda m, nn, lib: m.to(lib.int64),
        lambda m, nn, lib: m.nope,
        lambda m, nn, lib: nn.Module()(1),
    ],
)
def test_registration_errors_match_torch(action):
    raises_like(
        lambda: action(_fresh(enn, ember), enn, ember),
        lambda: action(_fresh(tnn, torch), tnn, torch),
    )


def test_registration_errors_with_tensor_types():
    # torch names its tensor types (torch.FloatTensor); compare the exception type and shape
    # of the message
    for action in [
        lambda m, nn, lib: m.register_parameter("x", lib.zeros(1)),
        lambda m, nn, lib: setattr(m, "p", lib.zeros(1)),
    ]:
        e, t = raises_like(
            lambda a=action: a(_fresh(enn, ember), enn, ember),
            lambda a=action: a(_fresh(tnn, torch), tnn, torch),
            compare_message=False,
        )
        assert str(e).split("'")[2:] == str(t).replace("torch", "ember").split("'")[2:]


def test_use_before_init_errors_match_torch():
    def classes(nn, lib):
        class A(nn.Module):
            def __init__(self):
                self.register_buffer("x", None)

        class B(nn.Module):
            def __init__(self):
                self.p = nn.Parameter(lib.zeros(1))

        class C(nn.Module):
            def __init__(self):
                self.m = nn.ReLU()

        class D(nn.Module):
            def __init__(self):
                self.register_parameter("p", None)

        return A, B, C, D

    for ec, tc in zip(classes(enn, ember), classes(tnn, torch)):
        raises_like(ec, tc)


def test_register_and_replace_members_like_torch():
    for nn, lib in ((enn, ember), (tnn, torch)):
        m = nn.Module()
        m.x = nn.Parameter(lib.zeros(2))
        m.register_buffer("y", lib.ones(1))
        m.z = nn.ReLU()
        m.x = None  # a registered parameter may be set to None
        assert "x" in m._parameters and m.x is None
        m.y = lib.zeros(3)  # a buffer may be replaced by any tensor
        assert tuple(m.y.shape) == (3,)
        m.z = nn.Parameter(lib.zeros(1))  # a parameter replaces a module of the same name
        assert "z" not in m._modules and "z" in m._parameters
        m.y = nn.ReLU()
        assert "y" not in m._buffers and "y" in m._modules
        del m.z
        assert not hasattr(m, "z")
        assert names(m.named_parameters()) == []
        assert names(m.named_children()) == ["y"]
    # a Parameter that is the output of an op cannot be registered
    p, q = enn.Parameter(ember.ones(2)), enn.Parameter(ember.ones(2))
    q._grad_fn = (p * 2).grad_fn
    with pytest.raises(ValueError, match="Cannot assign non-leaf Tensor to parameter 'q'"):
        enn.Module().register_parameter("q", q)


# ---------------------------------------------------------------- state changes


def test_train_eval_propagation():
    em, tm = make_pair()
    for m in (em, tm):
        assert all(x.training for x in m.modules())
        assert m.eval() is m
        assert not any(x.training for x in m.modules())
        m.blocks.train()
        assert m.blocks.training and m.blocks[1].lin.training and m.shared.training
        assert not m.training and not m.stem.training and not m.heads["cls"].training
    assert [x.training for x in em.modules()] == [x.training for x in tm.modules()]
    em.train(), tm.train()
    assert [x.training for x in em.modules()] == [x.training for x in tm.modules()]


@pytest.mark.parametrize("nn", [enn, tnn], ids=["ember", "torch"])
def test_train_reaches_children_through_their_train_method(nn):
    # train() reaches children through their own train(), so overrides run (as in torch)

    class Frozen(nn.Module):
        def train(self, mode=True):
            return super().train(False)

    class Outer(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = Frozen()
            self.b = nn.ReLU()

    o = Outer().train()
    assert o.training and not o.a.training and o.b.training


def test_zero_grad():
    for set_to_none in (True, False):
        em, tm = make_pair()
        x = np.ones((2, 3), np.float32)
        em(ember.tensor(x)).sum().backward()
        tm(torch.tensor(x)).sum().backward()
        em.zero_grad(set_to_none=set_to_none)
        tm.zero_grad(set_to_none=set_to_none)
        for (n, ep), (_, tp) in zip(em.named_parameters(), tm.named_parameters()):
            if tp.grad is None:
                assert ep.grad is None, n
            else:
                assert ep.grad is not None and not ep.grad.detach().numpy().any(), n
                assert not ep.grad.requires_grad
    em = ENet()
    em.zero_grad()  # no gradients yet: nothing to do
    assert all(p.grad is None for p in em.parameters())


def test_requires_grad_():
    em, tm = make_pair()
    assert em.requires_grad_(False) is em
    tm.requires_grad_(False)
    assert [p.requires_grad for p in em.parameters()] == [p.requires_grad for p in tm.parameters()]
    em.stem.requires_grad_()
    tm.stem.requires_grad_()
    assert [p.requires_grad for p in em.parameters()] == [p.requires_grad for p in tm.parameters()]
    out = em(ember.ones(2, 3)).sum()
    out.backward()
    assert em.stem[0].weight.grad is not None and em.heads["cls"].weight.grad is None


def test_apply_visits_children_first():
    em, tm = make_pair()
    e_seen, t_seen = [], []
    assert em.apply(lambda m: e_seen.append(type(m).__name__)) is em
    tm.apply(lambda m: t_seen.append(type(m).__name__))
    assert e_seen == t_seen

    def init(m):
        if isinstance(m, enn.Linear):
            with ember.no_grad():
                m.weight.fill_(0.25)

    em.apply(init)
    assert float(em.heads["cls"].weight.detach().numpy().mean()) == 0.25


def test_get_submodule_parameter_buffer():
    em, tm = make_pair()
    for target in ["", "stem", "stem.0", "blocks.1.lin", "heads.reg", "blocks.0.shared"]:
        assert type(em.get_submodule(target)).__name__ == type(tm.get_submodule(target)).__name__
    assert em.get_submodule("") is em
    assert em.get_submodule("blocks.1.shared") is em.shared
    for target in ["temperature", "heads.cls.bias", "blocks.0.lin.weight"]:
        assert tuple(em.get_parameter(target).shape) == tuple(tm.get_parameter(target).shape)
    assert em.get_buffer("blocks.1.running") is em.blocks[1].running
    assert em.get_buffer("shared.cache") is em.shared.cache  # non-persistent buffers too


# ---------------------------------------------------------------- hooks


@pytest.mark.parametrize("nn,lib", [(enn, ember), (tnn, torch)], ids=["ember", "torch"])
def test_forward_hooks_modify_and_remove(nn, lib):
    lin = nn.Linear(3, 2)
    calls = []

    def pre(module, args):
        calls.append("pre")
        return args[0] * 0  # a single value (not a tuple) replaces the only argument

    def pre_tuple(module, args):
        calls.append("pre_tuple")
        return (args[0] + 1,)

    def post(module, args, output):
        calls.append("post")
        return output * 10

    def observe(module, args, output):
        calls.append("observe")

    x = lib.ones(1, 3)
    h1 = lin.register_forward_pre_hook(pre)
    h2 = lin.register_forward_pre_hook(pre_tuple)
    h3 = lin.register_forward_hook(post)
    h4 = lin.register_forward_hook(observe)
    out = lin(x)
    assert calls == ["pre", "pre_tuple", "post", "observe"]
    expected = (lin.weight.sum(1) + lin.bias) * 10  # input became 0 then 1
    assert np.allclose(out.detach().numpy(), expected.detach().numpy())
    h1.remove()
    h3.remove()
    calls.clear()
    out = lin(x)
    assert calls == ["pre_tuple", "observe"]
    expected = (2 * lin.weight.sum(1) + lin.bias).detach().numpy()
    assert np.allclose(out.detach().numpy(), expected)
    h2.remove()
    h4.remove()
    h4.remove()  # removing twice is harmless
    calls.clear()
    lin(x)
    assert calls == []


@pytest.mark.parametrize("nn,lib", [(enn, ember), (tnn, torch)], ids=["ember", "torch"])
def test_forward_hook_prepend_and_kwargs(nn, lib):

    class Add(nn.Module):
        def forward(self, x, *, y=0):
            return x + y

    m = Add()
    order = []
    m.register_forward_pre_hook(lambda mod, args: order.append("a"))
    m.register_forward_pre_hook(lambda mod, args: order.append("b"), prepend=True)
    m.register_forward_pre_hook(
        lambda mod, args, kwargs: (args, {"y": kwargs.get("y", 0) + 100}), with_kwargs=True
    )
    h = m.register_forward_hook(lambda mod, args, kwargs, out: out + kwargs["y"], with_kwargs=True)
    out = m(lib.zeros(1), y=1)
    assert order == ["b", "a"]
    assert float(out.detach().numpy()[0]) == 202.0
    with h:
        pass  # a handle is a context manager that removes its hook
    assert float(m(lib.zeros(1), y=1).detach().numpy()[0]) == 101.0


def test_hooks_on_submodules_see_the_data_flow():
    em, tm = make_pair()
    e_seen, t_seen = [], []
    for m, seen in ((em, e_seen), (tm, t_seen)):
        for name, sub in m.named_modules():
            if name:
                sub.register_forward_hook(
                    lambda mod, args, out, name=name, seen=seen: seen.append(
                        (name, tuple(out.shape))
                    )
                )
    x = np.ones((2, 3), np.float32)
    em(ember.tensor(x))
    tm(torch.tensor(x))
    assert e_seen == t_seen


# ---------------------------------------------------------------- copies and dtypes


def test_deepcopy_is_independent_and_keeps_sharing():
    em, _ = make_pair()
    c = copy.deepcopy(em)
    assert names(c.named_parameters()) == names(em.named_parameters())
    assert names(c.named_modules()) == names(em.named_modules())
    for p, q in zip(c.parameters(), em.parameters()):
        assert p is not q and isinstance(p, enn.Parameter) and p.requires_grad
        np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy())
    # sharing inside the copy is preserved
    assert c.blocks[0].shared is c.blocks[1].shared is c.shared
    assert c.tied is c.stem[0]
    assert c.get_parameter("blocks.0.shared.weight") is c.shared.weight
    # and the copy is independent of the original
    with ember.no_grad():
        c.shared.weight.fill_(7.0)
        c.stem[0].bias.zero_()
    assert not np.any(em.shared.weight.detach().numpy() == 7.0)
    assert np.any(em.stem[0].bias.detach().numpy() != 0)
    out = c(ember.ones(2, 3)).sum()
    out.backward()
    assert c.shared.weight.grad is not None and em.shared.weight.grad is None
    assert c.state_dict()["step"] is not em.state_dict()["step"]


def test_to_double_float():
    em, tm = make_pair()
    p_before = em.shared.weight
    assert em.double() is em
    tm.double()
    for (n, e), (_, t) in zip(em.state_dict().items(), tm.state_dict().items()):
        assert e.dtype.name == str(t.dtype).removeprefix("torch."), n
    assert em.shared.weight is p_before  # parameters are converted in place
    assert em.tmp.dtype is ember.float64  # non-persistent buffers too
    x = np.ones((2, 3))
    out = em(ember.tensor(x))
    assert out.dtype is ember.float64
    np.testing.assert_allclose(out.detach().numpy(), tm(torch.tensor(x)).detach().numpy(),
                               rtol=1e-12)  # fmt: skip
    em.float()
    assert all(p.dtype is ember.float32 for p in em.parameters())
    assert em.step.dtype is ember.int64 and em.shared.count.dtype is ember.int64
    em.to(ember.float64)
    assert em.stem[0].weight.dtype is ember.float64
    em.to(dtype=ember.float32)
    assert em.stem[0].weight.dtype is ember.float32
    em.to("cpu")
    em.to(ember.ones(1, dtype=ember.float64))
    assert em.stem[0].weight.dtype is ember.float64
    em.to("cpu", ember.float32)
    assert em.stem[0].weight.dtype is ember.float32
    # gradients are converted with their parameters
    em(ember.ones(2, 3)).sum().backward()
    em.double()
    assert em.stem[0].weight.grad.dtype is ember.float64


# ---------------------------------------------------------------- containers


def _lin(nn, i, o):
    return nn.Linear(i, o)


def test_sequential_operations_match_torch():
    results = []
    for nn in (enn, tnn):
        s = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 4), nn.Tanh())
        log = [repr(s), len(s), type(s[0]).__name__, type(s[-1]).__name__]
        sl = s[1:3]
        log += [type(sl).__name__, repr(sl), names(sl.named_children())]
        s.append(nn.Sigmoid())
        s.insert(1, nn.Identity())
        s.insert(-1, nn.ReLU6())
        log.append(repr(s))
        del s[2]
        log.append(repr(s))
        del s[1:3]
        log.append(repr(s))
        popped = s.pop(0)
        log += [type(popped).__name__, repr(s)]
        s[0] = nn.ReLU()
        log.append(repr(s))
        s.extend([nn.Linear(1, 1)])
        log += [repr(s), names(s.named_parameters())]
        log.append(repr(s + nn.Sequential(nn.ReLU())))
        log.append(repr(nn.Sequential(nn.ReLU(), nn.Tanh()) * 2))
        named = nn.Sequential(OrderedDict([("conv", nn.Linear(1, 2)), ("act", nn.ReLU())]))
        log += [repr(named), names(named.named_parameters()), type(named.act).__name__]
        del named[0]
        log += [repr(named), names(named.named_children())]
        log.append(repr(nn.Sequential()))
        results.append(log)
    assert results[0] == results[1]


def test_sequential_forward_and_index_errors():
    es = enn.Sequential(enn.Linear(2, 3), enn.ReLU())
    ts = tnn.Sequential(tnn.Linear(2, 3), tnn.ReLU())
    ts.load_state_dict({k: to_torch(v) for k, v in es.state_dict().items()})
    x = np.random.default_rng(3).standard_normal((4, 2)).astype(np.float32)
    np.testing.assert_allclose(es(ember.tensor(x)).detach().numpy(),
                               ts(torch.tensor(x)).detach().numpy(), rtol=1e-6)  # fmt: skip
    assert [type(m).__name__ for m in es] == ["Linear", "ReLU"]
    with pytest.raises(IndexError):
        es[2]
    with pytest.raises(IndexError):
        ts[2]
    with pytest.raises(IndexError):
        es[-3]
    raises_like(lambda: es.insert(5, enn.ReLU()), lambda: ts.insert(5, tnn.ReLU()))
    with pytest.raises(TypeError):
        es.append(3)


def test_module_list_operations_match_torch():
    results = []
    for nn in (enn, tnn):
        ml = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
        log = [repr(ml), len(ml), names(ml.named_parameters())]
        ml.append(nn.ReLU())
        ml.extend([nn.Tanh(), nn.Tanh()])
        ml.insert(1, nn.Sigmoid())
        log += [repr(ml), len(ml)]
        log.append(type(ml[-1]).__name__)
        log.append(repr(ml[1:4]))
        del ml[0]
        log.append(repr(ml))
        del ml[::2]
        log.append(repr(ml))
        p = ml.pop(1)
        log += [type(p).__name__, repr(ml)]
        ml[0] = nn.Linear(5, 5)
        log.append(repr(ml))
        ml += [nn.ReLU()]
        log.append(repr(ml))
        log.append(repr(ml + nn.ModuleList([nn.Identity()])))
        log += [repr(nn.ModuleList()), [type(m).__name__ for m in ml]]
        results.append(log)
    assert results[0] == results[1]
    with pytest.raises(IndexError):
        enn.ModuleList([enn.ReLU()])[1]
    with pytest.raises(NotImplementedError):
        enn.ModuleList([enn.ReLU()])(ember.ones(1))


def test_module_dict_operations_match_torch():
    results = []
    for nn in (enn, tnn):
        md = nn.ModuleDict({"b": nn.Linear(1, 2), "a": nn.ReLU()})
        log = [repr(md), list(md.keys()), len(md), "a" in md, "z" in md, list(md)]
        md["c"] = nn.Tanh()
        md.update([("d", nn.Sigmoid()), ("b", nn.Identity())])
        log += [repr(md), list(md.keys())]
        md.update(nn.ModuleDict({"e": nn.ReLU()}))
        md.update(OrderedDict([("f", nn.Linear(2, 2))]))
        log += [repr(md), [type(v).__name__ for v in md.values()]]
        log.append([(k, type(v).__name__) for k, v in md.items()])
        p = md.pop("c")
        del md["a"]
        log += [type(p).__name__, repr(md), names(md.named_parameters())]
        md.clear()
        log += [repr(md), len(md)]
        results.append(log)
    assert results[0] == results[1]
    raises_like(lambda: enn.ModuleDict()["x"], lambda: tnn.ModuleDict()["x"])
    raises_like(lambda: enn.ModuleDict().update(3), lambda: tnn.ModuleDict().update(3))
    raises_like(lambda: enn.ModuleDict().update([(1, 2, 3)]),
                lambda: tnn.ModuleDict().update([(1, 2, 3)]))  # fmt: skip


# ---------------------------------------------------------------- repr


def test_nested_repr_matches_torch():
    em, tm = make_pair()
    assert repr(em) == repr(tm)
    assert repr(em.blocks) == repr(tm.blocks)
    assert repr(em.heads) == repr(tm.heads)
    assert repr(em.shared) == repr(tm.shared) == "Scale(n=4, factor=2.0)"


def test_repr_with_extra_repr_only_and_multiline():
    def classes(nn):
        class One(nn.Module):
            def extra_repr(self):
                return "k=3"

        class Multi(nn.Module):
            def extra_repr(self):
                return "a=1,\nb=2"

        class Both(nn.Module):
            def __init__(self):
                super().__init__()
                self.one = One()
                self.multi = Multi()
                self.none = None

            def extra_repr(self):
                return "tag=x"

        return One, Multi, Both

    for ec, tc in zip(classes(enn), classes(tnn)):
        assert repr(ec()) == repr(tc())
    assert repr(enn.Module()) == repr(tnn.Module()) == "Module()"
