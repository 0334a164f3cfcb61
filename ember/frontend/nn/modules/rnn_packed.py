"""nn.RNN / nn.LSTM / nn.GRU over a PackedSequence: the time loop of variable-length batches.

The packed data holds the sequences sorted by decreasing length, so at step ``t`` only the
first ``batch_sizes[t]`` rows of the state advance. Forward in time, the state loses its last
rows as sequences end (those rows are their final states); backward in time (the reverse
direction of a bidirectional layer), rows join as sequences start at their last step, from the
initial state. Each step is the cell step of the module (``module._step``), so the numbers are
those of the padded path, and gradients flow through the row slices and concatenations.

``batch_sizes`` is read in Python (it decides shapes), as PyTorch's CPU-only ``batch_sizes``
is; a compiled function therefore specializes on the lengths.
"""

from __future__ import annotations

from ....ir.errors import ShapeError
from ...ops.creation import zeros
from ...ops.selection import index_select
from ...ops.shape import cat, unbind
from ...ops.shape import stack as _stack
from ..functional.dropout import dropout as _dropout
from ..functional.linear import linear
from ..utils.rnn import PackedSequence


def _forward_in_time(module, proj, offsets, batch_sizes, h, c, params):
    """The forward direction over packed steps; returns (outputs per step, h_n, c_n)."""
    w_hh, b_hh, w_hr = params
    ended_h, ended_c, seq = [], [], []
    for t, b in enumerate(batch_sizes):
        if b < h.shape[0]:  # sequences b.. ended at step t - 1
            ended_h.append(h[b:])
            h = h[:b]
            if c is not None:
                ended_c.append(c[b:])
                c = c[:b]
        h, c = module._step(proj[offsets[t] : offsets[t] + b], h, c, w_hh, b_hh, w_hr)
        seq.append(h)
    h_n = cat([h, *reversed(ended_h)], 0) if ended_h else h
    c_n = None if c is None else (cat([c, *reversed(ended_c)], 0) if ended_c else c)
    return seq, h_n, c_n


def _backward_in_time(module, proj, offsets, batch_sizes, h0, c0, params):
    """The reverse direction: rows of the initial state join as their sequences start."""
    w_hh, b_hh, w_hr = params
    last = batch_sizes[-1]
    h = h0[:last]
    c = c0[:last] if c0 is not None else None
    seq = []
    for t in range(len(batch_sizes) - 1, -1, -1):
        b = batch_sizes[t]
        if b > h.shape[0]:
            h = cat([h, h0[h.shape[0] : b]], 0)
            if c is not None:
                c = cat([c, c0[c.shape[0] : b]], 0)
        h, c = module._step(proj[offsets[t] : offsets[t] + b], h, c, w_hh, b_hh, w_hr)
        seq.append(h)
    seq.reverse()
    return seq, h, c


def _run_packed(module, data, batch_sizes, h0, c0):
    """``data`` (sum(batch_sizes), I), states (L*D, B, H) in sorted order; returns the packed
    output (sum(batch_sizes), D*H) and the final states."""
    num_directions = 2 if module.bidirectional else 1
    offsets = [0]
    for b in batch_sizes[:-1]:
        offsets.append(offsets[-1] + b)
    h_init = unbind(h0, 0)
    c_init = unbind(c0, 0) if c0 is not None else None
    layer_input = data
    h_n, c_n = [], []
    for layer in range(module.num_layers):
        outs = []
        for direction in range(num_directions):
            w_ih, b_ih, w_hh, b_hh, w_hr = module._layer_params(layer, direction)
            idx = layer * num_directions + direction
            proj = linear(layer_input, w_ih, b_ih)
            c = c_init[idx] if c_init is not None else None
            run = _forward_in_time if direction == 0 else _backward_in_time
            seq, h, c = run(module, proj, offsets, batch_sizes, h_init[idx], c, (w_hh, b_hh, w_hr))
            outs.append(cat(seq, 0))
            h_n.append(h)
            if c is not None:
                c_n.append(c)
        layer_input = outs[0] if num_directions == 1 else cat(outs, 1)
        if module.dropout > 0 and module.training and layer < module.num_layers - 1:
            layer_input = _dropout(layer_input, module.dropout, True)
    return layer_input, _stack(h_n, 0), (_stack(c_n, 0) if c_n else None)


def forward_packed(module, input: PackedSequence, hx, is_lstm: bool):
    """``module(packed, hx)``: returns ``(PackedSequence output, h_n)`` (``(h_n, c_n)`` for
    LSTM), the states in the caller's batch order, as PyTorch does."""
    name = module._get_name()
    data, batch_sizes_t, sorted_indices, unsorted_indices = input
    if data.ndim != 2:
        raise ShapeError(name, f"input must have 2 dimensions, got {data.ndim}")
    module._check_input(data)
    batch_sizes = [int(b) for b in batch_sizes_t.tolist()]
    batch = batch_sizes[0]
    num_directions = 2 if module.bidirectional else 1
    real_hidden = module.proj_size if module.proj_size > 0 else module.hidden_size
    h_shape = (module.num_layers * num_directions, batch, real_hidden)
    c_shape = (module.num_layers * num_directions, batch, module.hidden_size)
    if hx is None:
        h0 = zeros(*h_shape, dtype=data.dtype)
        c0 = zeros(*c_shape, dtype=data.dtype) if is_lstm else None
    else:
        h0, c0 = hx if is_lstm else (hx, None)
        states = (h0, c0) if is_lstm else (h0,)
        if any(s.ndim != 3 for s in states):
            dims = ", ".join(f"{s.ndim}-D" for s in states)
            raise ShapeError(name, f"For batched 3-D input, hx should also be 3-D but got ({dims})")
        if sorted_indices is not None:
            h0 = index_select(h0, 1, sorted_indices)
            c0 = index_select(c0, 1, sorted_indices) if c0 is not None else None
        if is_lstm:
            module._check_hidden(h0, h_shape, "Expected hidden[0] size {}, got {}")
            module._check_hidden(c0, c_shape, "Expected hidden[1] size {}, got {}")
        else:
            module._check_hidden(h0, h_shape)
    out, h_n, c_n = _run_packed(module, data, batch_sizes, h0, c0)
    output = PackedSequence(out, batch_sizes_t, sorted_indices, unsorted_indices)
    if unsorted_indices is not None:
        h_n = index_select(h_n, 1, unsorted_indices)
        c_n = index_select(c_n, 1, unsorted_indices) if c_n is not None else None
    return output, ((h_n, c_n) if is_lstm else h_n)
