"""pianogenie.lstm.LSTM against nn.LSTM: same state dict, outputs, final states and every gradient."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from pianogenie.lstm import LSTM

ATOL = 1e-5


def _pair(num_layers: int, bidirectional: bool, input_size: int = 5, hidden: int = 7, **kw):
    torch.manual_seed(num_layers * 10 + bidirectional)
    ref = nn.LSTM(input_size, hidden, num_layers, batch_first=True, bidirectional=bidirectional, **kw)
    ours = LSTM(input_size, hidden, num_layers, batch_first=True, bidirectional=bidirectional, **kw)
    ours.load_state_dict(ref.state_dict())
    return ref, ours


def _run(module: nn.Module, x: torch.Tensor, hx, weights):
    """Outputs and gradients of a loss touching y, h_n and c_n w.r.t. x, h_0, c_0 and the weights."""
    y, (h_n, c_n) = module(x, hx) if hx is not None else module(x)
    w_y, w_h, w_c = weights
    loss = (y * w_y).sum() + (h_n * w_h).sum() + (c_n * w_c).sum()
    inputs = [x, *(hx if hx is not None else ()), *module.parameters()]
    return [y, h_n, c_n, *torch.autograd.grad(loss, inputs)]


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("with_state", [False, True])
def test_outputs_states_and_gradients_match_nn_lstm(bidirectional, num_layers, batch, with_state):
    ref, ours = _pair(num_layers, bidirectional)
    D, T, H = 2 if bidirectional else 1, 9, 7
    g = torch.Generator().manual_seed(1)
    x = torch.randn(batch, T, 5, generator=g, requires_grad=True)
    hx = None
    if with_state:
        hx = (torch.randn(num_layers * D, batch, H, generator=g, requires_grad=True),
              torch.randn(num_layers * D, batch, H, generator=g, requires_grad=True))
    weights = (torch.randn(batch, T, D * H, generator=g), torch.randn(num_layers * D, batch, H, generator=g),
               torch.randn(num_layers * D, batch, H, generator=g))
    expected = _run(ref, x, hx, weights)
    got = _run(ours, x, hx, weights)
    names = ["y", "h_n", "c_n", "dx", *(["dh_0", "dc_0"] if with_state else []),
             *[f"d{n}" for n, _ in ref.named_parameters()]]
    assert len(got) == len(expected) == len(names)
    for name, a, b in zip(names, got, expected):
        assert a.shape == b.shape, name
        torch.testing.assert_close(a, b, atol=ATOL, rtol=1e-5, msg=lambda m, name=name: f"{name}: {m}")


def test_only_output_used_and_long_saturating_sequence():
    # large inputs saturate the gates (sigmoid ~ 0/1, tanh ~ +-1) over many steps
    ref, ours = _pair(2, True, input_size=4, hidden=16)
    x = 6 * torch.randn(4, 60, 4, generator=torch.Generator().manual_seed(2))
    x.requires_grad_(True)
    results = []
    for m in (ref, ours):
        y, _ = m(x)
        results.append([y, *torch.autograd.grad(y.sum(), [x, *m.parameters()])])
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, atol=ATOL, rtol=1e-5)


def test_same_state_dict_as_nn_lstm_and_loads_into_it():
    ref, ours = _pair(2, True)
    assert [(k, v.shape) for k, v in ours.state_dict().items()] == [(k, v.shape) for k, v in ref.state_dict().items()]
    back = nn.LSTM(5, 7, 2, batch_first=True, bidirectional=True)
    back.load_state_dict(ours.state_dict())


def test_no_grad_forward_matches():
    ref, ours = _pair(2, False)
    x = torch.randn(2, 5, 5)
    with torch.no_grad():
        y_ref, (h_ref, c_ref) = ref(x)
        y, (h, c) = ours(x)
    assert not y.requires_grad
    for a, b in ((y, y_ref), (h, h_ref), (c, c_ref)):
        torch.testing.assert_close(a, b, atol=ATOL, rtol=1e-5)


def test_carried_state_equals_one_long_sequence():
    # the decoder's step API feeds h_n, c_n back one note at a time
    _, ours = _pair(2, False)
    x = torch.randn(1, 6, 5)
    with torch.no_grad():
        y_seq, _ = ours(x)
        state, steps = None, []
        for t in range(6):
            y, state = ours(x[:, t:t + 1], state) if state is not None else ours(x[:, t:t + 1])
            steps.append(y)
    torch.testing.assert_close(torch.cat(steps, 1), y_seq, atol=ATOL, rtol=1e-5)


def test_other_inputs_fall_back_to_nn_lstm():
    ref, ours = _pair(1, True)
    x = torch.randn(3, 6, 5)
    packed = nn.utils.rnn.pack_padded_sequence(x, torch.tensor([6, 4, 2]), batch_first=True)
    with torch.no_grad():
        torch.testing.assert_close(ours(packed)[0].data, ref(packed)[0].data)
        torch.testing.assert_close(ours(x[0])[0], ref(x[0])[0])  # unbatched (T, I)
        torch.testing.assert_close(ours.double()(x.double())[0], ref.double()(x.double())[0])  # float64


def test_bad_state_shape_is_rejected_like_nn_lstm():
    _, ours = _pair(2, False)
    h = torch.zeros(1, 3, 7)
    with pytest.raises(RuntimeError, match="Expected hidden"):
        ours(torch.randn(3, 4, 5), (h, h))
