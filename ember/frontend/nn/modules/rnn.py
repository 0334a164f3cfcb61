"""Recurrent layers: nn.RNN, nn.LSTM, nn.GRU and their single-step cells.

Parameter names, shapes, gate order (LSTM: i, f, g, o; GRU: r, z, n), initialization, forward
signatures, state shapes and ``extra_repr`` follow PyTorch. The time loop runs in Python over
ember ops, so autograd (and a tracer) sees only primitives: the input projection of a whole
sequence is one ``linear``; each step adds the hidden projection and applies the gates.
RNN, LSTM and GRU also take a ``PackedSequence`` and return one (`rnn_packed`).
"""

from __future__ import annotations

import math
import numbers
import warnings

from ....ir.errors import DTypeError, ShapeError
from ...ops.creation import empty, zeros
from ...ops.shape import cat, chunk, stack, unbind
from .. import init
from ..functional.activation import relu, sigmoid, tanh
from ..functional.dropout import dropout as _dropout
from ..functional.linear import linear
from ..parameter import Parameter
from ..utils.rnn import PackedSequence
from .module import Module
from .rnn_packed import forward_packed

__all__ = ["RNNBase", "RNN", "LSTM", "GRU", "RNNCellBase", "RNNCell", "LSTMCell", "GRUCell"]


# ---- one step of each cell kind (x_proj = W_ih x + b_ih, already computed) -----------------


def _rnn_step(x_proj, h, w_hh, b_hh, act):
    return act(x_proj + linear(h, w_hh, b_hh))


def _lstm_step(x_proj, h, c, w_hh, b_hh, w_hr=None):
    gates = x_proj + linear(h, w_hh, b_hh)
    i, f, g, o = chunk(gates, 4, 1)
    c_new = sigmoid(f) * c + sigmoid(i) * tanh(g)
    h_new = sigmoid(o) * tanh(c_new)
    if w_hr is not None:
        h_new = linear(h_new, w_hr)
    return h_new, c_new


def _gru_step(x_proj, h, w_hh, b_hh):
    i_r, i_z, i_n = chunk(x_proj, 3, 1)
    h_r, h_z, h_n = chunk(linear(h, w_hh, b_hh), 3, 1)
    r = sigmoid(i_r + h_r)
    z = sigmoid(i_z + h_z)
    n = tanh(i_n + r * h_n)
    return n + z * (h - n)  # (1 - z) * n + z * h


class _ValueShapeError(ShapeError, ValueError):
    """A shape mistake PyTorch reports as ValueError (input rank of RNNs and cells)."""


class _ValueDTypeError(DTypeError, ValueError):
    """PyTorch reports an RNN input/weight dtype mismatch as ValueError."""


def _activation(nonlinearity: str):
    if nonlinearity == "tanh":
        return tanh
    if nonlinearity == "relu":
        return relu
    raise RuntimeError(f"Unknown nonlinearity: {nonlinearity}")


def _shape(t) -> list[int]:
    return [int(s) for s in t.shape]


# ---- multi-layer modules ---------------------------------------------------------------------


class RNNBase(Module):
    """Shared constructor, parameters and time loop of nn.RNN, nn.LSTM and nn.GRU."""

    __constants__ = [
        "mode", "input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout",
        "bidirectional", "proj_size",
    ]  # fmt: skip

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, device=None,
                 dtype=None) -> None:  # fmt: skip
        super().__init__()
        if (
            not isinstance(dropout, numbers.Number)
            or isinstance(dropout, bool)
            or not 0 <= dropout <= 1
        ):
            raise ValueError(
                "dropout should be a number in range [0, 1] representing the probability of "
                "an element being zeroed"
            )
        if dropout > 0 and num_layers == 1:
            warnings.warn(
                "dropout option adds dropout after all but last recurrent layer, so non-zero "
                "dropout expects num_layers greater than 1, but got "
                f"dropout={dropout} and num_layers={num_layers}",
                stacklevel=2,
            )
        if not isinstance(bias, bool):
            raise TypeError(f"bias should be of type bool, got: {type(bias).__name__}")
        if not isinstance(batch_first, bool):
            raise TypeError(
                f"batch_first should be of type bool, got: {type(batch_first).__name__}"
            )
        if not isinstance(input_size, int):
            raise TypeError(f"input_size should be of type int, got: {type(input_size).__name__}")
        if input_size <= 0:
            raise ValueError("input_size must be greater than zero")
        if not isinstance(hidden_size, int):
            raise TypeError(f"hidden_size should be of type int, got: {type(hidden_size).__name__}")
        if hidden_size <= 0:
            raise ValueError("hidden_size must be greater than zero")
        if num_layers <= 0:
            raise ValueError("num_layers must be greater than zero")
        if proj_size < 0:
            raise ValueError(
                "proj_size should be a positive integer or zero to disable projections"
            )
        if proj_size >= hidden_size:
            raise ValueError("proj_size has to be smaller than hidden_size")
        gates = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}
        if mode not in gates:
            raise ValueError("Unrecognized RNN mode: " + mode)

        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = proj_size
        num_directions = 2 if bidirectional else 1
        gate_size = gates[mode] * hidden_size
        real_hidden = proj_size if proj_size > 0 else hidden_size

        self._flat_weights_names: list[str] = []
        self._all_weights: list[list[str]] = []
        for layer in range(num_layers):
            for direction in range(num_directions):
                layer_input = input_size if layer == 0 else real_hidden * num_directions
                suffix = "_reverse" if direction == 1 else ""
                shapes = [("weight_ih", (gate_size, layer_input)),
                          ("weight_hh", (gate_size, real_hidden))]  # fmt: skip
                if bias:
                    shapes += [("bias_ih", (gate_size,)), ("bias_hh", (gate_size,))]
                if proj_size > 0:
                    shapes += [("weight_hr", (proj_size, hidden_size))]
                names = []
                for base, shape in shapes:
                    name = f"{base}_l{layer}{suffix}"
                    setattr(self, name, Parameter(empty(shape, dtype=dtype)))
                    names.append(name)
                self._flat_weights_names.extend(names)
                self._all_weights.append(names)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for weight in self.parameters():
            init.uniform_(weight, -stdv, stdv)

    @property
    def _flat_weights(self):
        return [getattr(self, n) for n in self._flat_weights_names]

    @property
    def all_weights(self):
        return [[getattr(self, n) for n in names] for names in self._all_weights]

    def flatten_parameters(self) -> None:
        """A no-op (cuDNN weight packing does not apply to ember)."""

    def extra_repr(self) -> str:
        s = "{input_size}, {hidden_size}"
        if self.proj_size != 0:
            s += ", proj_size={proj_size}"
        if self.num_layers != 1:
            s += ", num_layers={num_layers}"
        if self.bias is not True:
            s += ", bias={bias}"
        if self.batch_first is not False:
            s += ", batch_first={batch_first}"
        if self.dropout != 0:
            s += ", dropout={dropout}"
        if self.bidirectional is not False:
            s += ", bidirectional={bidirectional}"
        return s.format(**self.__dict__)

    # ---- argument checks ----------------------------------------------------------------

    def _check_input(self, input) -> None:
        w_dtype = self.weight_ih_l0.dtype
        if input.dtype != w_dtype:
            raise _ValueDTypeError(
                self._get_name(),
                f"RNN input dtype ({input.dtype}) does not match weight dtype ({w_dtype}). "
                f"Convert input: input.to({w_dtype}), or convert model: model.to({input.dtype})",
            )
        if input.shape[-1] != self.input_size:
            raise ShapeError(
                self._get_name(),
                f"input.size(-1) must be equal to input_size. Expected {self.input_size}, "
                f"got {input.shape[-1]} (input {_shape(input)})",
            )

    def _check_hidden(self, hx, expected, msg: str = "Expected hidden size {}, got {}") -> None:
        if tuple(hx.shape) != tuple(expected):
            raise ShapeError(self._get_name(), msg.format(tuple(expected), _shape(hx)))

    def _prepare(self, input, hx, is_lstm: bool):
        """Validate, add the batch dim for unbatched input, and make the states (L*D, B, H)."""
        name = self._get_name()
        if input.ndim not in (2, 3):
            raise _ValueShapeError(
                name, f"Expected input to be 2D or 3D, got {input.ndim}D tensor instead "
                f"(input {_shape(input)})"
            )  # fmt: skip
        is_batched = input.ndim == 3
        batch_dim = 0 if self.batch_first else 1
        if not is_batched:
            input = input.unsqueeze(batch_dim)
            if hx is not None:
                states = hx if is_lstm else (hx,)
                if any(s.ndim != 2 for s in states):
                    dims = ", ".join(f"{s.ndim}-D" for s in states)
                    raise ShapeError(
                        name, f"For unbatched 2-D input, hx should also be 2-D but got ({dims})"
                    )
                states = tuple(s.unsqueeze(1) for s in states)
                hx = states if is_lstm else states[0]
        elif hx is not None:
            states = hx if is_lstm else (hx,)
            if any(s.ndim != 3 for s in states):
                dims = ", ".join(f"{s.ndim}-D" for s in states)
                raise ShapeError(
                    name, f"For batched 3-D input, hx should also be 3-D but got ({dims})"
                )
        self._check_input(input)
        batch = input.shape[0] if self.batch_first else input.shape[1]
        num_directions = 2 if self.bidirectional else 1
        real_hidden = self.proj_size if self.proj_size > 0 else self.hidden_size
        h_shape = (self.num_layers * num_directions, batch, real_hidden)
        c_shape = (self.num_layers * num_directions, batch, self.hidden_size)
        if hx is None:
            h0 = zeros(*h_shape, dtype=input.dtype)
            c0 = zeros(*c_shape, dtype=input.dtype) if is_lstm else None
        elif is_lstm:
            h0, c0 = hx
            self._check_hidden(h0, h_shape, "Expected hidden[0] size {}, got {}")
            self._check_hidden(c0, c_shape, "Expected hidden[1] size {}, got {}")
        else:
            h0, c0 = hx, None
            self._check_hidden(h0, h_shape)
        return input, h0, c0, is_batched, batch_dim

    # ---- the time loop --------------------------------------------------------------------

    def _layer_params(self, layer: int, direction: int):
        """``(w_ih, b_ih, w_hh, b_hh, w_hr)`` of one layer and direction (None where absent)."""
        num_directions = 2 if self.bidirectional else 1
        names = self._all_weights[layer * num_directions + direction]
        params = [getattr(self, n) for n in names]
        b_ih, b_hh = (params[2], params[3]) if self.bias else (None, None)
        w_hr = params[-1] if self.proj_size > 0 else None
        return params[0], b_ih, params[1], b_hh, w_hr

    def _step(self, x_proj, h, c, w_hh, b_hh, w_hr):
        """One time step of this module's cell: returns ``(h', c')`` (``c'`` None but LSTM)."""
        if self.mode == "LSTM":
            return _lstm_step(x_proj, h, c, w_hh, b_hh, w_hr)
        if self.mode == "GRU":
            return _gru_step(x_proj, h, w_hh, b_hh), None
        act = tanh if self.mode == "RNN_TANH" else relu
        return _rnn_step(x_proj, h, w_hh, b_hh, act), None

    def _run(self, input, h0, c0):
        """``input`` is (T, B, I); returns output (T, B, D*H) and the final states."""
        num_directions = 2 if self.bidirectional else 1
        h_init = unbind(h0, 0)
        c_init = unbind(c0, 0) if c0 is not None else None
        layer_input = input
        h_n, c_n = [], []
        for layer in range(self.num_layers):
            outs = []
            for direction in range(num_directions):
                w_ih, b_ih, w_hh, b_hh, w_hr = self._layer_params(layer, direction)
                idx = layer * num_directions + direction
                steps = list(unbind(linear(layer_input, w_ih, b_ih), 0))
                if direction == 1:
                    steps.reverse()
                h = h_init[idx]
                c = c_init[idx] if c_init is not None else None
                seq = []
                for x_proj in steps:
                    h, c = self._step(x_proj, h, c, w_hh, b_hh, w_hr)
                    seq.append(h)
                if direction == 1:
                    seq.reverse()
                outs.append(stack(seq, 0))
                h_n.append(h)
                if c is not None:
                    c_n.append(c)
            layer_input = outs[0] if num_directions == 1 else cat(outs, 2)
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                layer_input = _dropout(layer_input, self.dropout, True)
        return layer_input, stack(h_n, 0), (stack(c_n, 0) if c_n else None)

    def _forward(self, input, hx, is_lstm: bool):
        input, h0, c0, is_batched, batch_dim = self._prepare(input, hx, is_lstm)
        if self.batch_first:
            input = input.transpose(0, 1)
        output, h_n, c_n = self._run(input, h0, c0)
        if self.batch_first:
            output = output.transpose(0, 1)
        if not is_batched:
            output = output.squeeze(batch_dim)
            h_n = h_n.squeeze(1)
            c_n = c_n.squeeze(1) if c_n is not None else None
        return output, ((h_n, c_n) if is_lstm else h_n)


class RNN(RNNBase):
    """Elman RNN: ``h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)`` with tanh or ReLU.

    ``RNN(input_size, hidden_size, num_layers=1, nonlinearity='tanh', bias=True,
    batch_first=False, dropout=0.0, bidirectional=False)``; ``forward(input, hx=None)`` returns
    ``(output, h_n)``."""

    def __init__(self, *args, **kwargs) -> None:
        if "proj_size" in kwargs:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        if len(args) > 3:
            self_nonlinearity = args[3]
            args = args[:3] + args[4:]
        else:
            self_nonlinearity = kwargs.pop("nonlinearity", "tanh")
        if self_nonlinearity == "tanh":
            mode = "RNN_TANH"
        elif self_nonlinearity == "relu":
            mode = "RNN_RELU"
        else:
            raise ValueError(
                f"Unknown nonlinearity '{self_nonlinearity}'. Select from 'tanh' or 'relu'."
            )
        super().__init__(mode, *args, **kwargs)
        self.nonlinearity = self_nonlinearity

    def forward(self, input, hx=None):
        if isinstance(input, PackedSequence):
            return forward_packed(self, input, hx, is_lstm=False)
        return self._forward(input, hx, is_lstm=False)


class LSTM(RNNBase):
    """Long short-term memory with PyTorch's gate order (i, f, g, o) and optional projection
    (``proj_size``). ``forward(input, hx=None)`` with ``hx = (h_0, c_0)`` returns
    ``(output, (h_n, c_n))``."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__("LSTM", *args, **kwargs)

    def forward(self, input, hx=None):
        if isinstance(input, PackedSequence):
            return forward_packed(self, input, hx, is_lstm=True)
        return self._forward(input, hx, is_lstm=True)


class GRU(RNNBase):
    """Gated recurrent unit with PyTorch's gate order (r, z, n) and
    ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``. Returns ``(output, h_n)``."""

    def __init__(self, *args, **kwargs) -> None:
        if "proj_size" in kwargs:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        super().__init__("GRU", *args, **kwargs)

    def forward(self, input, hx=None):
        if isinstance(input, PackedSequence):
            return forward_packed(self, input, hx, is_lstm=False)
        return self._forward(input, hx, is_lstm=False)


# ---- cells -----------------------------------------------------------------------------------


class RNNCellBase(Module):
    __constants__ = ["input_size", "hidden_size", "bias"]

    def __init__(self, input_size: int, hidden_size: int, bias: bool, num_chunks: int,
                 device=None, dtype=None) -> None:  # fmt: skip
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        self.weight_ih = Parameter(empty((num_chunks * hidden_size, input_size), dtype=dtype))
        self.weight_hh = Parameter(empty((num_chunks * hidden_size, hidden_size), dtype=dtype))
        if bias:
            self.bias_ih = Parameter(empty(num_chunks * hidden_size, dtype=dtype))
            self.bias_hh = Parameter(empty(num_chunks * hidden_size, dtype=dtype))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def extra_repr(self) -> str:
        s = "{input_size}, {hidden_size}"
        if "bias" in self.__dict__ and self.bias is not True:
            s += ", bias={bias}"
        if "nonlinearity" in self.__dict__ and self.nonlinearity != "tanh":
            s += ", nonlinearity={nonlinearity}"
        return s.format(**self.__dict__)

    def reset_parameters(self) -> None:
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for weight in self.parameters():
            init.uniform_(weight, -stdv, stdv)

    def _check(self, input, states, names) -> bool:
        """Validate dims and sizes; returns whether the input is batched."""
        cls = self._get_name()
        if input.ndim not in (1, 2):
            raise _ValueShapeError(
                cls, f"Expected input to be 1D or 2D, got {input.ndim}D instead "
                f"(input {_shape(input)})"
            )  # fmt: skip
        for label, s in zip(names, states):
            if s is not None and s.ndim not in (1, 2):
                raise _ValueShapeError(
                    cls, f"Expected {label} to be 1D or 2D, got {s.ndim}D instead"
                )
        if input.dtype != self.weight_ih.dtype:
            raise DTypeError(
                cls, f"input dtype ({input.dtype}) does not match weight dtype "
                f"({self.weight_ih.dtype})"
            )  # fmt: skip
        if input.shape[-1] != self.input_size:
            raise ShapeError(
                cls, f"input has inconsistent input_size: got {input.shape[-1]} expected "
                f"{self.input_size} (input {_shape(input)})"
            )  # fmt: skip
        batched = input.ndim == 2
        batch = input.shape[0] if batched else None
        for label, s in zip(names, states):
            if s is None:
                continue
            expected = (batch, self.hidden_size) if batched else (self.hidden_size,)
            if tuple(s.shape) != expected:
                raise ShapeError(
                    cls, f"{label} has shape {_shape(s)}, expected {list(expected)} "
                    f"(input {_shape(input)})"
                )  # fmt: skip
        return batched


class RNNCell(RNNCellBase):
    """``h' = act(W_ih x + b_ih + W_hh h + b_hh)``; ``forward(input, hx=None)`` returns h'."""

    __constants__ = ["input_size", "hidden_size", "bias", "nonlinearity"]

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh", device=None, dtype=None) -> None:  # fmt: skip
        super().__init__(input_size, hidden_size, bias, num_chunks=1, dtype=dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input, hx=None):
        batched = self._check(input, (hx,), ("hidden",))
        act = _activation(self.nonlinearity)
        if not batched:
            input = input.unsqueeze(0)
            hx = hx.unsqueeze(0) if hx is not None else None
        if hx is None:
            hx = zeros(input.shape[0], self.hidden_size, dtype=input.dtype)
        h = _rnn_step(linear(input, self.weight_ih, self.bias_ih), hx, self.weight_hh,
                      self.bias_hh, act)  # fmt: skip
        return h if batched else h.squeeze(0)


class LSTMCell(RNNCellBase):
    """One LSTM step; ``forward(input, hx=None)`` with ``hx = (h, c)`` returns ``(h', c')``."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None,
                 dtype=None) -> None:  # fmt: skip
        super().__init__(input_size, hidden_size, bias, num_chunks=4, dtype=dtype)

    def forward(self, input, hx=None):
        states = tuple(hx) if hx is not None else (None, None)
        batched = self._check(input, states, ("hx[0]", "hx[1]"))
        if not batched:
            input = input.unsqueeze(0)
            states = tuple(s.unsqueeze(0) if s is not None else None for s in states)
        if hx is None:
            z = zeros(input.shape[0], self.hidden_size, dtype=input.dtype)
            states = (z, z)
        h, c = _lstm_step(linear(input, self.weight_ih, self.bias_ih), states[0], states[1],
                          self.weight_hh, self.bias_hh)  # fmt: skip
        return (h, c) if batched else (h.squeeze(0), c.squeeze(0))


class GRUCell(RNNCellBase):
    """One GRU step (gates r, z, n); ``forward(input, hx=None)`` returns h'."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None,
                 dtype=None) -> None:  # fmt: skip
        super().__init__(input_size, hidden_size, bias, num_chunks=3, dtype=dtype)

    def forward(self, input, hx=None):
        batched = self._check(input, (hx,), ("hidden",))
        if not batched:
            input = input.unsqueeze(0)
            hx = hx.unsqueeze(0) if hx is not None else None
        if hx is None:
            hx = zeros(input.shape[0], self.hidden_size, dtype=input.dtype)
        h = _gru_step(linear(input, self.weight_ih, self.bias_ih), hx, self.weight_hh,
                      self.bias_hh)  # fmt: skip
        return h if batched else h.squeeze(0)
