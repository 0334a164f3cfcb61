"""nn.RNN / nn.LSTM / nn.GRU and their cells against PyTorch with copied weights: outputs, final
states, gradients of the input, the initial states and every parameter; state_dict keys, reprs,
dropout between layers, unbatched input and argument errors."""

import numpy as np
import pytest
import torch

import ember
from ember.frontend.nn.modules.rnn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell

pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections:UserWarning")

RNG = np.random.default_rng(7)
TOL = dict(rtol=1e-4, atol=1e-5)

EM = {"RNN": RNN, "LSTM": LSTM, "GRU": GRU, "RNNCell": RNNCell, "LSTMCell": LSTMCell,
      "GRUCell": GRUCell}  # fmt: skip


def _randn(*shape, dtype=np.float32):
    return RNG.standard_normal(shape).astype(dtype)


def _pair(kind, *args, **kwargs):
    em = EM[kind](*args, **kwargs)
    tm = getattr(torch.nn, kind)(*args, **kwargs)
    assert repr(em) == repr(tm)
    assert list(em.state_dict()) == list(tm.state_dict())
    for (ne, pe), (nt, pt) in zip(em.named_parameters(), tm.named_parameters()):
        assert ne == nt and tuple(pe.shape) == tuple(pt.shape) and pe.requires_grad
    tm.load_state_dict({k: torch.tensor(v.numpy()) for k, v in em.state_dict().items()})
    return em, tm


def _flat(out):
    """Flatten (output, h) / (output, (h, c)) / h / (h, c) into a list of tensors."""
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _flat(o)]
    return [out]


def _check(em, tm, x, hx=None):
    """Compare every output, then gradients of ``sum(out_i * w_i)`` for x, hx and params."""
    xe = ember.tensor(x, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    he = ht = None
    if hx is not None:
        if isinstance(hx, tuple):
            he = tuple(ember.tensor(h, requires_grad=True) for h in hx)
            ht = tuple(torch.tensor(h, requires_grad=True) for h in hx)
        else:
            he = ember.tensor(hx, requires_grad=True)
            ht = torch.tensor(hx, requires_grad=True)
    oe = _flat(em(xe) if he is None else em(xe, he))
    ot = _flat(tm(xt) if ht is None else tm(xt, ht))
    assert len(oe) == len(ot)
    loss_e = loss_t = 0
    for a, b in zip(oe, ot):
        assert tuple(a.shape) == tuple(b.shape)
        assert str(a.dtype).split(".")[-1] == str(b.dtype).split(".")[-1]
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), **TOL)
        w = _randn(*b.shape).astype(b.detach().numpy().dtype)
        loss_e = loss_e + (a * ember.tensor(w)).sum()
        loss_t = loss_t + (b * torch.tensor(w)).sum()
    loss_e.backward()
    loss_t.backward()
    np.testing.assert_allclose(xe.grad.numpy(), xt.grad.numpy(), **TOL)
    if he is not None:
        for a, b in zip(_flat(he), _flat(ht)):
            np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), **TOL)
    pt = dict(tm.named_parameters())
    for name, p in em.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), pt[name].grad.numpy(), err_msg=name, **TOL)
    return oe, ot


def _states(kind, num, batch, hidden, proj=0):
    shape = (num, batch, proj or hidden) if batch else (num, proj or hidden)
    if kind == "LSTM":
        cshape = shape[:-1] + (hidden,)
        return (_randn(*shape), _randn(*cshape))
    return _randn(*shape)


# ---- multi-layer modules --------------------------------------------------------------------

CONFIGS = [
    dict(num_layers=1),
    dict(num_layers=2),
    dict(num_layers=1, bidirectional=True),
    dict(num_layers=2, bidirectional=True, batch_first=True),
    dict(num_layers=2, batch_first=True, bias=False),
]


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
@pytest.mark.parametrize("with_hx", [False, True])
def test_rnn_modules_match_torch(kind, cfg, with_hx):
    em, tm = _pair(kind, 3, 5, **cfg)
    T, B = 4, 2
    x = _randn(B, T, 3) if cfg.get("batch_first") else _randn(T, B, 3)
    num = cfg["num_layers"] * (2 if cfg.get("bidirectional") else 1)
    hx = _states(kind, num, B, 5) if with_hx else None
    _check(em, tm, x, hx)


@pytest.mark.parametrize("cfg", CONFIGS[:4], ids=str)
def test_rnn_relu_matches_torch(cfg):
    em, tm = _pair("RNN", 3, 6, nonlinearity="relu", **cfg)
    x = _randn(2, 5, 3) if cfg.get("batch_first") else _randn(5, 2, 3)
    num = cfg["num_layers"] * (2 if cfg.get("bidirectional") else 1)
    _check(em, tm, x, _states("RNN", num, 2, 6))
    # positional nonlinearity, as torch allows: RNN(input, hidden, num_layers, nonlinearity)
    em2, tm2 = _pair("RNN", 3, 6, 1, "relu")
    assert em2.nonlinearity == "relu"
    _check(em2, tm2, _randn(5, 2, 3))


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("with_hx", [False, True])
def test_unbatched_input(kind, batch_first, with_hx):
    em, tm = _pair(kind, 3, 4, num_layers=2, bidirectional=True, batch_first=batch_first)
    hx = _states(kind, 4, None, 4) if with_hx else None
    oe, ot = _check(em, tm, _randn(5, 3), hx)
    assert tuple(oe[0].shape) == (5, 8) and tuple(oe[1].shape) == (4, 4)


@pytest.mark.parametrize("cfg", [dict(), dict(num_layers=2, bidirectional=True)], ids=str)
def test_lstm_proj_size(cfg):
    em, tm = _pair("LSTM", 3, 6, proj_size=4, **cfg)
    num = cfg.get("num_layers", 1) * (2 if cfg.get("bidirectional") else 1)
    oe, _ = _check(em, tm, _randn(5, 2, 3), _states("LSTM", num, 2, 6, proj=4))
    assert tuple(oe[1].shape) == (num, 2, 4) and tuple(oe[2].shape) == (num, 2, 6)


def test_float64():
    em = GRU(3, 4, num_layers=2, dtype=ember.float64)
    tm = torch.nn.GRU(3, 4, num_layers=2, dtype=torch.float64)
    assert all(p.dtype == ember.float64 for p in em.parameters())
    tm.load_state_dict({k: torch.tensor(v.numpy()) for k, v in em.state_dict().items()})
    oe, _ = _check(em, tm, _randn(4, 2, 3, dtype=np.float64))
    assert oe[0].dtype == ember.float64


def test_gate_order_and_gru_reset_placement():
    """Hand-set weights: only one gate's block nonzero, so a wrong gate order or GRU's
    ``r * (W_hn h + b_hn)`` placed wrongly would change the result."""
    for kind, chunks in (("LSTM", 4), ("GRU", 3)):
        em, tm = _pair(kind, 2, 3)
        x, h0 = _randn(3, 1, 2), _randn(1, 1, 3)
        hx = (h0, _randn(1, 1, 3)) if kind == "LSTM" else h0
        for k in range(chunks):
            state = {}
            for name, v in em.state_dict().items():
                arr = v.numpy().copy()
                mask = np.zeros(arr.shape[0], bool)
                mask[k * 3 : (k + 1) * 3] = True
                arr[~mask] *= 0.1
                state[name] = arr
            em.load_state_dict({n: ember.tensor(a) for n, a in state.items()})
            tm.load_state_dict({n: torch.tensor(a) for n, a in state.items()})
            for p in list(em.parameters()) + list(tm.parameters()):
                p.grad = None
            _check(em, tm, x, hx)


def test_reprs_and_state_dict_keys():
    cases = [
        ("RNN", (3, 4), dict(num_layers=3, nonlinearity="relu", bias=False)),
        ("LSTM", (3, 4), dict(batch_first=True, dropout=0.5, num_layers=2, bidirectional=True)),
        ("LSTM", (3, 4), dict(proj_size=2)),
        ("GRU", (3, 4), dict(dropout=0.25, num_layers=2)),
        ("RNNCell", (3, 4), dict(nonlinearity="relu", bias=False)),
        ("LSTMCell", (3, 4), dict(bias=False)),
        ("GRUCell", (3, 4), dict()),
    ]
    for kind, args, kwargs in cases:
        em = EM[kind](*args, **kwargs)
        tm = getattr(torch.nn, kind)(*args, **kwargs)
        assert repr(em) == repr(tm)
        assert list(em.state_dict()) == list(tm.state_dict())
        assert [tuple(v.shape) for v in em.state_dict().values()] == [
            tuple(v.shape) for v in tm.state_dict().values()
        ]


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell"])
def test_init_is_uniform_within_bound(kind):
    em = EM[kind](8, 16)
    bound = 1 / np.sqrt(16)
    values = np.concatenate([p.detach().numpy().ravel() for p in em.parameters()])
    assert np.all(np.abs(values) <= bound)
    assert values.max() > 0.8 * bound and values.min() < -0.8 * bound
    assert abs(values.mean()) < 0.02


# ---- dropout between layers -----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_dropout_between_layers(kind):
    x = ember.tensor(_randn(5, 2, 3))
    em = EM[kind](3, 4, num_layers=2, dropout=0.5)
    out_eval1 = em.eval()(x)[0].detach().numpy()
    out_eval2 = em(x)[0].detach().numpy()
    np.testing.assert_array_equal(out_eval1, out_eval2)
    em.train()
    ember.manual_seed(0)
    out_train = em(x)[0].detach().numpy()
    assert not np.allclose(out_train, out_eval1)
    # the last layer is not followed by dropout, and the first layer's output is unaffected:
    # the final hidden state of layer 0 matches eval mode
    ember.manual_seed(0)
    h_train = _flat(em(x)[1])[0].detach().numpy()
    np.testing.assert_allclose(h_train[0], _flat(em.eval()(x)[1])[0].detach().numpy()[0], rtol=1e-6)

    # zero dropout: training and eval give the same output, equal to torch's
    em0, tm0 = _pair(kind, 3, 4, num_layers=2, dropout=0.0)
    em0.train()
    tm0.train()
    _check(em0, tm0, _randn(5, 2, 3))


def test_dropout_single_layer_warns_and_bad_dropout():
    with pytest.warns(UserWarning, match="num_layers greater than 1"):
        LSTM(3, 4, dropout=0.3)
    for bad in (-0.1, 1.5, True, "0.1"):
        with pytest.raises(ValueError, match="dropout should be a number"):
            GRU(3, 4, num_layers=2, dropout=bad)


# ---- cells ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["RNNCell", "LSTMCell", "GRUCell"])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("with_hx", [False, True])
def test_cells_match_torch(kind, bias, batched, with_hx):
    kwargs = dict(bias=bias)
    em, tm = _pair(kind, 3, 5, **kwargs)
    x = _randn(4, 3) if batched else _randn(3)
    hshape = (4, 5) if batched else (5,)
    hx = None
    if with_hx:
        hx = (_randn(*hshape), _randn(*hshape)) if kind == "LSTMCell" else _randn(*hshape)
    oe, _ = _check(em, tm, x, hx)
    assert tuple(oe[0].shape) == hshape


def test_rnn_cell_relu_matches_torch():
    em, tm = _pair("RNNCell", 3, 5, nonlinearity="relu")
    _check(em, tm, _randn(4, 3), _randn(4, 5))


def test_cell_time_loop_matches_lstm_module():
    """Unrolling LSTMCell by hand equals nn.LSTM with the same weights."""
    cell = LSTMCell(3, 4)
    lstm = LSTM(3, 4)
    lstm.load_state_dict({f"{k}_l0": v for k, v in cell.state_dict().items()})
    x = ember.tensor(_randn(5, 2, 3))
    h = c = ember.zeros(2, 4)
    outs = []
    for t in range(5):
        h, c = cell(x[t], (h, c))
        outs.append(h.detach().numpy())
    out, (hn, cn) = lstm(x)
    np.testing.assert_allclose(out.detach().numpy(), np.stack(outs), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(cn.detach().numpy()[0], c.detach().numpy(), rtol=1e-5, atol=1e-6)


# ---- errors ----------------------------------------------------------------------------------


def test_module_errors():
    m = LSTM(3, 4, num_layers=2)
    with pytest.raises(ValueError, match="2D or 3D"):
        m(ember.randn(2, 3, 4, 3))
    with pytest.raises(RuntimeError, match="input_size"):
        m(ember.randn(5, 2, 7))
    with pytest.raises(RuntimeError, match=r"Expected hidden\[0\] size \(2, 2, 4\)"):
        m(ember.randn(5, 2, 3), (ember.zeros(1, 2, 4), ember.zeros(2, 2, 4)))
    with pytest.raises(RuntimeError, match=r"Expected hidden\[1\] size"):
        m(ember.randn(5, 2, 3), (ember.zeros(2, 2, 4), ember.zeros(2, 3, 4)))
    with pytest.raises(RuntimeError, match="3-D"):
        m(ember.randn(5, 2, 3), (ember.zeros(2, 4), ember.zeros(2, 4)))
    with pytest.raises(RuntimeError, match="Expected hidden size"):
        GRU(3, 4)(ember.randn(5, 2, 3), ember.zeros(1, 3, 4))
    with pytest.raises(RuntimeError, match="2-D"):
        RNN(3, 4)(ember.randn(5, 3), ember.zeros(1, 1, 4))
    with pytest.raises(ValueError, match="dtype"):
        RNN(3, 4)(ember.randn(5, 2, 3, dtype=ember.float64))
    with pytest.raises(ValueError, match="Unknown nonlinearity"):
        RNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="proj_size"):
        GRU(3, 4, proj_size=2)
    with pytest.raises(ValueError, match="proj_size has to be smaller"):
        LSTM(3, 4, proj_size=4)
    with pytest.raises(ValueError, match="hidden_size must be greater"):
        LSTM(3, 0)
    with pytest.raises(TypeError, match="bias should be of type bool"):
        LSTM(3, 4, bias=1)


def test_cell_errors():
    with pytest.raises(ValueError, match="1D or 2D"):
        GRUCell(3, 4)(ember.randn(2, 2, 3))
    with pytest.raises(RuntimeError, match="input_size"):
        RNNCell(3, 4)(ember.randn(2, 5))
    with pytest.raises(RuntimeError, match="hidden"):
        RNNCell(3, 4)(ember.randn(2, 3), ember.zeros(3, 4))
    with pytest.raises(ValueError, match=r"hx\[1\]"):
        LSTMCell(3, 4)(ember.randn(2, 3), (ember.zeros(2, 4), ember.zeros(1, 2, 4)))
