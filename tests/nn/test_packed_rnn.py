"""nn.utils.rnn (PackedSequence, pack/pad helpers) and RNN/LSTM/GRU on packed sequences against
PyTorch in float64: packed data, batch sizes and permutations, padded outputs, final states and
the gradients of the input, the initial states and every parameter."""

import numpy as np
import pytest
import torch
from torch.nn.utils import rnn as trnn

import ember
import ember.nn as nn
from ember.nn.utils import rnn as ernn

RNG = np.random.default_rng(9)
TOL = dict(rtol=1e-11, atol=1e-12)


def _randn(*shape):
    return RNG.standard_normal(shape)


def _leaves(a):
    return ember.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)


def _same(e, t, **tol):
    assert tuple(e.shape) == tuple(t.shape)
    np.testing.assert_allclose(e.detach().numpy(), t.detach().numpy(), **(tol or TOL))


def _same_packed(ep, tp):
    assert isinstance(ep, ernn.PackedSequence)
    _same(ep.data, tp.data)
    np.testing.assert_array_equal(ep.batch_sizes.numpy(), tp.batch_sizes.numpy())
    for a, b in (
        (ep.sorted_indices, tp.sorted_indices),
        (ep.unsorted_indices, tp.unsorted_indices),
    ):
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_array_equal(a.numpy(), b.numpy())


# ---- packing and padding ------------------------------------------------------------------------

PACK_CASES = {
    "sorted": ([5, 3, 3, 1], True),
    "unsorted": ([2, 5, 1, 3], False),
    "sorted-not-enforced": ([4, 2, 1], False),
    "distinct-unsorted": ([1, 4, 2, 5, 3], False),
    "single": ([3], True),
}


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("case", list(PACK_CASES))
def test_pack_pad_round_trip(case, batch_first):
    lengths, enforce = PACK_CASES[case]
    b, steps = len(lengths), max(lengths) + 1
    x = _randn(b, steps, 3) if batch_first else _randn(steps, b, 3)
    xe, xt = _leaves(x)
    for lens in (lengths, torch.tensor(lengths)):
        elens = lens if isinstance(lens, list) else ember.tensor(lengths)
        ep = ernn.pack_padded_sequence(xe, elens, batch_first=batch_first, enforce_sorted=enforce)
        tp = trnn.pack_padded_sequence(xt, lens, batch_first=batch_first, enforce_sorted=enforce)
        _same_packed(ep, tp)
    for total in (None, steps + 2):
        pe, le = ernn.pad_packed_sequence(ep, batch_first, padding_value=-2.5, total_length=total)
        pt, lt = trnn.pad_packed_sequence(tp, batch_first, padding_value=-2.5, total_length=total)
        _same(pe, pt)
        np.testing.assert_array_equal(le.numpy(), lt.numpy())
        assert le.dtype == ember.int64
    w = _randn(*pt.shape)
    (pe * ember.tensor(w)).sum().backward()
    (pt * torch.tensor(w)).sum().backward()
    _same(xe.grad, xt.grad)


@pytest.mark.parametrize("padding_side", ["right", "left"])
@pytest.mark.parametrize("batch_first", [False, True])
def test_pad_sequence(batch_first, padding_side):
    arrays = [_randn(n, 2, 3) for n in (3, 1, 4)]
    pairs = [_leaves(a) for a in arrays]
    pe = ernn.pad_sequence([e for e, _ in pairs], batch_first, 0.5, padding_side)
    pt = trnn.pad_sequence([t for _, t in pairs], batch_first, 0.5, padding_side)
    _same(pe, pt)
    w = _randn(*pt.shape)
    (pe * ember.tensor(w)).sum().backward()
    (pt * torch.tensor(w)).sum().backward()
    for e, t in pairs:
        _same(e.grad, t.grad)


@pytest.mark.parametrize("enforce_sorted", [True, False])
def test_pack_sequence_and_unpack(enforce_sorted):
    lengths = [4, 3, 1] if enforce_sorted else [2, 4, 1]
    arrays = [_randn(n, 3) for n in lengths]
    ep = ernn.pack_sequence([ember.tensor(a) for a in arrays], enforce_sorted=enforce_sorted)
    tp = trnn.pack_sequence([torch.tensor(a) for a in arrays], enforce_sorted=enforce_sorted)
    _same_packed(ep, tp)
    for e, a in zip(ernn.unpack_sequence(ep), arrays):
        np.testing.assert_array_equal(e.numpy(), a)
    padded, lens = ernn.pad_packed_sequence(ep)
    for e, a in zip(ernn.unpad_sequence(padded, lens), arrays):
        np.testing.assert_array_equal(e.numpy(), a)


def test_packed_sequence_surface():
    ep = ernn.pack_sequence([ember.ones(3, 2), ember.ones(1, 2)])
    assert isinstance(ep, tuple) and len(ep) == 4
    data, batch_sizes, sorted_indices, unsorted_indices = ep
    assert sorted_indices is None and unsorted_indices is None
    assert ep.double().data.dtype == ember.float64 and ep.double().batch_sizes is batch_sizes
    assert ep.to(ember.float32) is ep
    perm = ember.tensor([2, 0, 1])
    np.testing.assert_array_equal(ernn.invert_permutation(perm).numpy(), [1, 2, 0])
    p2 = ernn.PackedSequence(data, batch_sizes, perm)
    np.testing.assert_array_equal(p2.unsorted_indices.numpy(), [1, 2, 0])


def test_pack_errors():
    x = ember.randn(4, 3, 2)
    with pytest.raises(RuntimeError, match="sorted in decreasing order"):
        ernn.pack_padded_sequence(x, [1, 3, 2])
    with pytest.raises(RuntimeError, match="greater than 0"):
        ernn.pack_padded_sequence(x, [3, 2, 0])
    with pytest.raises(RuntimeError, match="equal to batch_size"):
        ernn.pack_padded_sequence(x, [3, 2])
    with pytest.raises(ValueError, match="total_length"):
        ernn.pad_packed_sequence(ernn.pack_padded_sequence(x, [4, 2, 1]), total_length=3)
    with pytest.raises(ValueError, match="padding_side"):
        ernn.pad_sequence([ember.ones(2)], padding_side="middle")


# ---- recurrent layers on packed input ----------------------------------------------------------

RNN_CONFIGS = {
    "1layer": dict(),
    "2layer-bidir": dict(num_layers=2, bidirectional=True),
    "bidir-nobias": dict(bidirectional=True, bias=False),
    "batch_first": dict(batch_first=True, num_layers=2),
}
KINDS = ["RNN", "RNN-relu", "LSTM", "LSTM-proj", "GRU"]


def _modules(kind, cfg):
    kwargs = dict(RNN_CONFIGS[cfg])
    name = kind.split("-")[0]
    if kind == "RNN-relu":
        kwargs["nonlinearity"] = "relu"
    if kind == "LSTM-proj":
        kwargs["proj_size"] = 2
    em = getattr(nn, name)(3, 4, **kwargs).double()
    tm = getattr(torch.nn, name)(3, 4, **kwargs).double()
    tm.load_state_dict({k: torch.tensor(v.numpy()) for k, v in em.state_dict().items()})
    return em, tm, kwargs


def _states(kind, kwargs, batch):
    d = 2 if kwargs.get("bidirectional") else 1
    n = kwargs.get("num_layers", 1) * d
    h = _randn(n, batch, kwargs.get("proj_size") or 4)
    if kind.startswith("LSTM"):
        return (h, _randn(n, batch, 4))
    return h


@pytest.mark.parametrize("with_hx", [False, True])
@pytest.mark.parametrize("lengths", [[5, 3, 3, 1], [2, 5, 1, 3]], ids=["sorted", "unsorted"])
@pytest.mark.parametrize("cfg", list(RNN_CONFIGS))
@pytest.mark.parametrize("kind", KINDS)
def test_rnn_on_packed_sequence(kind, cfg, lengths, with_hx):
    em, tm, kwargs = _modules(kind, cfg)
    bf = kwargs.get("batch_first", False)
    b, steps = len(lengths), max(lengths)
    x = _randn(b, steps, 3) if bf else _randn(steps, b, 3)
    xe, xt = _leaves(x)
    enforce = lengths == sorted(lengths, reverse=True)
    pe = ernn.pack_padded_sequence(xe, lengths, batch_first=bf, enforce_sorted=enforce)
    pt = trnn.pack_padded_sequence(xt, lengths, batch_first=bf, enforce_sorted=enforce)
    he = ht = None
    if with_hx:
        hx = _states(kind, kwargs, b)
        pairs = [_leaves(h) for h in (hx if isinstance(hx, tuple) else (hx,))]
        he = tuple(e for e, _ in pairs) if isinstance(hx, tuple) else pairs[0][0]
        ht = tuple(t for _, t in pairs) if isinstance(hx, tuple) else pairs[0][1]
    oe, hne = em(pe, he)
    ot, hnt = tm(pt, ht)
    _same_packed(oe, ot)
    outs_e = [ernn.pad_packed_sequence(oe, bf)[0], *(hne if isinstance(hne, tuple) else (hne,))]
    outs_t = [trnn.pad_packed_sequence(ot, bf)[0], *(hnt if isinstance(hnt, tuple) else (hnt,))]
    loss_e = loss_t = 0
    for a, c in zip(outs_e, outs_t):
        _same(a, c)
        w = _randn(*c.shape)
        loss_e = loss_e + (a * ember.tensor(w)).sum()
        loss_t = loss_t + (c * torch.tensor(w)).sum()
    loss_e.backward()
    loss_t.backward()
    _same(xe.grad, xt.grad)
    if with_hx:
        for a, c in zip(
            he if isinstance(he, tuple) else (he,), ht if isinstance(ht, tuple) else (ht,)
        ):
            _same(a.grad, c.grad)
    pt_params = dict(tm.named_parameters())
    for name, p in em.named_parameters():
        np.testing.assert_allclose(
            p.grad.numpy(), pt_params[name].grad.numpy(), err_msg=name, **TOL
        )


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_packed_equals_padded_for_full_lengths(kind):
    # with every sequence full length, the packed path computes what the padded path does
    em = getattr(nn, kind)(3, 4, num_layers=2, bidirectional=True).double()
    x = ember.tensor(_randn(4, 3, 3))
    out, h = em(x)
    pout, ph = em(ernn.pack_padded_sequence(x, [4, 4, 4]))
    _same(ernn.pad_packed_sequence(pout)[0], out)
    for a, c in zip(ph if isinstance(ph, tuple) else (ph,), h if isinstance(h, tuple) else (h,)):
        _same(a, c)


def test_packed_dropout_between_layers_and_errors():
    em = nn.GRU(3, 4, num_layers=2, dropout=0.5).double()
    p = ernn.pack_padded_sequence(ember.tensor(_randn(4, 2, 3)), [4, 2])
    ember.manual_seed(0)
    a = em(p)[0].data.detach().numpy()
    ember.manual_seed(0)
    np.testing.assert_array_equal(em(p)[0].data.detach().numpy(), a)
    em.eval()
    assert not np.array_equal(em(p)[0].data.detach().numpy(), a)
    with pytest.raises(RuntimeError, match="input.size\\(-1\\) must be equal to input_size"):
        em(ernn.pack_padded_sequence(ember.randn(4, 2, 5).double(), [4, 2]))
    with pytest.raises(RuntimeError, match="Expected hidden size"):
        em(p, ember.zeros(2, 3, 4).double())
