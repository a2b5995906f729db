"""The model's input rules (pianogenie.inputs): one rule for Python numbers, numpy and torch."""

from __future__ import annotations

import numpy as np
import torch

from pianogenie.inputs import button_value, button_values, delta_time, delta_times
from pianogenie.model import IntegerQuantizer


def test_button_values_are_the_quantizers_bin_centres_for_every_kind_of_number():
    for n in (1, 2, 8, 9):
        values = button_values(n)
        b = torch.arange(n)
        # training computes in float32, the session and the browser in float64: equal up to float32 rounding
        torch.testing.assert_close(
            IntegerQuantizer(n).discrete_to_real(b), torch.tensor(values, dtype=torch.float32), rtol=0, atol=2e-7
        )
        np.testing.assert_array_equal(button_value(np.arange(n), n), values)
        assert values[0] == (-1.0 if n > 1 else 0.0) and values[-1] == (1.0 if n > 1 else 0.0)
        if n > 1:  # the encoder's real value at a centre quantizes back to its button
            assert torch.equal(IntegerQuantizer(n).real_to_discrete(torch.tensor(values)), b)


def test_one_delta_time_rule_for_a_session_and_for_a_performance():
    onsets = np.array([5.0, 5.0, 5.3, 7.5, 7.4, 7.9])  # a chord, a long gap, a clock going backwards
    last, one_by_one = None, []
    for t in onsets:
        one_by_one.append(delta_time(float(t), last, 1.0))
        last = float(t)
    np.testing.assert_allclose(delta_times(onsets, 1.0), one_by_one, rtol=0, atol=1e-12)
    np.testing.assert_allclose(one_by_one, [1.0, 0.0, 0.3, 1.0, 0.0, 0.5], atol=1e-12)
