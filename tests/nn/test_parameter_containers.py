"""nn.ParameterList / nn.ParameterDict against torch: registration, state_dict, repr, API."""

from collections import OrderedDict

import numpy as np
import pytest
import torch

import ember
import ember.nn as nn
from ember.frontend.nn.modules.parameter_containers import ParameterDict, ParameterList


def pair(shape, seed=0, dtype=np.float32):
    arr = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    return ember.tensor(arr), torch.tensor(arr)


def e_repr(torch_obj) -> str:
    return repr(torch_obj).replace("torch.", "ember.")


# ---- ParameterList -------------------------------------------------------------------------


def test_parameter_list_registration_and_state_dict():
    (e1, t1), (e2, t2), (e3, t3) = pair((2, 3), 0), pair((3,), 1), pair((), 2)
    el = ParameterList([nn.Parameter(e1), e2])  # a plain tensor becomes a Parameter
    tl = torch.nn.ParameterList([torch.nn.Parameter(t1), t2])
    el.append(e3)
    tl.append(t3)
    assert len(el) == len(tl) == 3
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in el)
    assert [n for n, _ in el.named_parameters()] == [n for n, _ in tl.named_parameters()]
    esd, tsd = el.state_dict(), tl.state_dict()
    assert list(esd) == list(tsd) == ["0", "1", "2"]
    for k in esd:
        np.testing.assert_array_equal(esd[k]._data, tsd[k].numpy())
    assert el[1] is el[-2]
    assert el[0]._data is e1._data or np.shares_memory(el[0]._data, e1._data)


def test_parameter_list_in_module_and_gradients():
    class EM(nn.Module):
        def __init__(self):
            super().__init__()
            self.ps = ParameterList([ember.ones(2, 2) * (i + 1) for i in range(3)])

        def forward(self, x):
            for p in self.ps:
                x = x @ p
            return x

    class TM(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.ps = torch.nn.ParameterList([torch.ones(2, 2) * (i + 1) for i in range(3)])

        def forward(self, x):
            for p in self.ps:
                x = x @ p
            return x

    em, tm = EM(), TM()
    assert list(em.state_dict()) == list(tm.state_dict()) == ["ps.0", "ps.1", "ps.2"]
    (ex, tx), (ew, tw) = pair((4, 2), 3), pair((4, 2), 4)
    (em(ex) * ew).sum().backward()
    (tm(tx) * tw).sum().backward()
    for ep, tp in zip(em.parameters(), tm.parameters()):
        np.testing.assert_allclose(ep.grad._data, tp.grad.numpy(), rtol=1e-5)
    # load_state_dict through the container
    em2 = EM()
    sd = {k: v * 0 + 7 for k, v in em.state_dict().items()}
    em2.load_state_dict(sd)
    assert em2.ps[2].tolist() == [[7.0, 7.0], [7.0, 7.0]]


def test_parameter_list_slicing_setitem_extend_errors():
    el = ParameterList([ember.zeros(i + 1) for i in range(5)])
    tl = torch.nn.ParameterList([torch.zeros(i + 1) for i in range(5)])
    es, ts = el[1:4:2], tl[1:4:2]
    assert type(es) is ParameterList and len(es) == len(ts) == 2
    assert [tuple(p.shape) for p in es] == [tuple(p.shape) for p in ts]
    assert es[0] is el[1]
    el[-1] = ember.ones(9)
    tl[-1] = torch.ones(9)
    assert tuple(el[4].shape) == tuple(tl[4].shape) == (9,) and isinstance(el[4], nn.Parameter)
    el += [ember.ones(1)]
    assert len(el) == 6
    with pytest.raises(IndexError, match="index 6 is out of range"):
        el[6]
    with pytest.raises(IndexError, match="index -7 is out of range"):
        el[-7] = ember.ones(1)
    with pytest.raises(TypeError, match="should be called with an iterable, but got Tensor"):
        el.extend(ember.ones(3))
    with pytest.raises(TypeError, match="iterable, but got int"):
        el.extend(3)
    with pytest.raises(RuntimeError, match="ParameterList should not be called"):
        el(1)
    assert "0" not in dir(el) and "append" in dir(el)


def test_parameter_list_non_tensor_entries_and_repr():
    el = ParameterList([ember.zeros(2, 3), ember.zeros(4, dtype=ember.float64), "x", 3])
    tl = torch.nn.ParameterList([torch.zeros(2, 3), torch.zeros(4, dtype=torch.float64), "x", 3])
    assert el[2] == "x" and el[3] == 3
    assert [n for n, _ in el.named_parameters()] == ["0", "1"]
    assert repr(el) == e_repr(tl)
    assert repr(ParameterList()) == repr(torch.nn.ParameterList()) == "ParameterList()"
    assert repr(ParameterList([ember.zeros(2)])) == e_repr(torch.nn.ParameterList([torch.zeros(2)]))
    empty_e = ParameterList([nn.Parameter(ember.zeros(0, 2), requires_grad=False)])
    empty_t = torch.nn.ParameterList([torch.nn.Parameter(torch.zeros(0, 2), requires_grad=False)])
    assert repr(empty_e) == e_repr(empty_t)
    ints_e = ParameterList([nn.Parameter(ember.zeros(2, dtype=ember.int64), requires_grad=False)])
    ints_t = torch.nn.ParameterList(
        [torch.nn.Parameter(torch.zeros(2, dtype=torch.int64), requires_grad=False)]
    )
    assert repr(ints_e) == e_repr(ints_t)
    with pytest.raises(RuntimeError, match="floating point"):  # an int tensor cannot need grad
        torch.nn.ParameterList([torch.zeros(2, dtype=torch.int64)])
    with pytest.raises(Exception, match="floating point"):
        ParameterList([ember.zeros(2, dtype=ember.int64)])


def test_parameter_list_module_entry():
    lin_e, lin_t = nn.Linear(2, 3), torch.nn.Linear(2, 3)
    el, tl = ParameterList([ember.zeros(1), lin_e]), torch.nn.ParameterList([torch.zeros(1), lin_t])
    assert el[1] is lin_e
    assert list(el.state_dict()) == list(tl.state_dict())
    assert repr(el) == e_repr(tl)


# ---- ParameterDict -------------------------------------------------------------------------


def test_parameter_dict_order_state_dict_and_wrapping():
    (ea, ta), (eb, tb), (ec, tc) = pair((2,), 0), pair((3, 1), 1), pair((), 2)
    ed = ParameterDict({"b": eb, "a": ea})  # a plain dict is added in sorted order
    td = torch.nn.ParameterDict({"b": tb, "a": ta})
    ed["c"] = nn.Parameter(ec, requires_grad=False)
    td["c"] = torch.nn.Parameter(tc, requires_grad=False)
    assert list(ed) == list(td) == ["a", "b", "c"]
    assert list(ed.keys()) == list(td.keys())
    assert list(ed.state_dict()) == list(td.state_dict())
    assert [n for n, _ in ed.named_parameters()] == [n for n, _ in td.named_parameters()]
    assert all(isinstance(v, nn.Parameter) for v in ed.values())
    assert ed["a"].requires_grad and not ed["c"].requires_grad
    for k, v in ed.items():
        np.testing.assert_array_equal(v._data, td[k].detach().numpy())
    od = ParameterDict(OrderedDict([("z", ember.ones(1)), ("y", ember.ones(1))]))
    assert list(od) == ["z", "y"]
    pairs = ParameterDict([("q", ember.ones(1)), ("p", ember.ones(2))])
    assert list(pairs) == ["q", "p"]


def test_parameter_dict_mapping_api_matches_torch():
    ed = ParameterDict([("a", ember.zeros(1)), ("b", ember.zeros(2)), ("c", ember.zeros(3))])
    td = torch.nn.ParameterDict(
        [("a", torch.zeros(1)), ("b", torch.zeros(2)), ("c", torch.zeros(3))]
    )
    for d in (ed, td):
        assert "a" in d and "z" not in d and len(d) == 3
        assert d.get("z") is None and d.get("z", 5) == 5
        d.setdefault("d", None)
    assert list(ed) == list(td)
    assert list(reversed(ed)) == list(reversed(td))
    assert ed.pop("b").shape == (2,) and td.pop("b").shape == (2,)
    k_e, v_e = ed.popitem()
    k_t, v_t = td.popitem()
    assert k_e == k_t == "d" and v_e is None and v_t is None
    assert list(ed) == list(td) == ["a", "c"]
    assert list(ed.state_dict()) == list(td.state_dict())
    cp = ed.copy()
    assert list(cp) == ["a", "c"] and cp["a"] is ed["a"]
    merged = ed | ParameterDict({"x": ember.ones(1)})
    assert list(merged) == ["a", "c", "x"] and list(ed) == ["a", "c"]
    ed |= ParameterDict({"y": ember.ones(1)})
    assert list(ed) == ["a", "c", "y"]
    fk = ed.fromkeys(["u", "v"], None)
    assert list(fk) == ["u", "v"] and fk["u"] is None
    del ed["a"]
    assert "a" not in ed and "a" not in dict(ed.named_parameters())
    ed.clear()
    assert len(ed) == 0 and list(ed.parameters()) == []


def test_parameter_dict_errors():
    ed = ParameterDict()
    with pytest.raises(TypeError, match="not a string \\(type is 'int'\\)"):
        ed[1] = ember.ones(1)
    with pytest.raises(TypeError, match="not a string"):
        ed[1]
    with pytest.raises(AttributeError):
        ed["missing"]
    with pytest.raises(TypeError, match="should be called with an iterable"):
        ed.update(3)
    with pytest.raises(ValueError, match="element #0 has length 3; 2 is required"):
        ed.update([("a", 1, 2)])
    with pytest.raises(TypeError, match="element #0 should be Iterable"):
        ed.update([5])
    with pytest.raises(RuntimeError, match="ParameterDict should not be called"):
        ed(1)
    with pytest.raises(KeyError, match="contain"):
        ed["a.b"] = ember.ones(1)
    assert repr(ed) == "ParameterDict()"  # a rejected int key leaves nothing behind


def test_parameter_dict_repr_matches_torch():
    ed = ParameterDict(
        [("w", ember.zeros(2, 3)), ("h", ember.zeros(4, dtype=ember.float64)), ("s", "text")]
    )
    td = torch.nn.ParameterDict(
        [("w", torch.zeros(2, 3)), ("h", torch.zeros(4, dtype=torch.float64)), ("s", "text")]
    )
    assert repr(ed) == e_repr(td)
    assert repr(ParameterDict()) == repr(torch.nn.ParameterDict())
    one_e = ParameterDict({"k": nn.Parameter(ember.zeros(3, dtype=ember.float16))})
    one_t = torch.nn.ParameterDict({"k": torch.nn.Parameter(torch.zeros(3, dtype=torch.float16))})
    assert repr(one_e) == e_repr(one_t)


def test_parameter_dict_in_module_gradients_and_load():
    class EM(nn.Module):
        def __init__(self):
            super().__init__()
            self.p = ParameterDict({"left": ember.ones(3, 2), "right": ember.ones(3, 2) * 2})

        def forward(self, x, choice):
            return x @ self.p[choice]

    class TM(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.p = torch.nn.ParameterDict(
                {"left": torch.ones(3, 2), "right": torch.ones(3, 2) * 2}
            )

        def forward(self, x, choice):
            return x @ self.p[choice]

    em, tm = EM(), TM()
    assert list(em.state_dict()) == list(tm.state_dict()) == ["p.left", "p.right"]
    (ex, tx), (ew, tw) = pair((4, 3), 0), pair((4, 2), 1)
    (em(ex, "right") * ew).sum().backward()
    (tm(tx, "right") * tw).sum().backward()
    np.testing.assert_allclose(em.p["right"].grad._data, tm.p["right"].grad.numpy(), rtol=1e-5)
    assert em.p["left"].grad is None and tm.p["left"].grad is None
    sd = {k: ember.tensor(v.detach().numpy() + 1) for k, v in tm.state_dict().items()}
    em.load_state_dict(sd)
    np.testing.assert_array_equal(em.p["left"]._data, tm.p["left"].detach().numpy() + 1)
    em.double()
    assert em.p["left"].dtype is ember.float64 and isinstance(em.p["left"], nn.Parameter)
