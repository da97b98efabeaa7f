"""Sampling math: top-k and top-p masks keep exactly the tokens they should, temperature 0 is the
argmax, sampling follows the softmax and is reproducible with a seeded generator."""

from __future__ import annotations

import pytest
import torch

from s4lab.sampling import sample, top_k_filter, top_p_filter

LOGITS = torch.log(torch.tensor([[0.5, 0.05, 0.3, 0.15], [0.1, 0.2, 0.3, 0.4]]))


def kept(logits: torch.Tensor) -> list[list[int]]:
    return [torch.nonzero(torch.isfinite(row)).flatten().tolist() for row in logits]


def test_top_k_keeps_the_k_largest():
    assert kept(top_k_filter(LOGITS, 2)) == [[0, 2], [2, 3]]
    assert kept(top_k_filter(LOGITS, 1)) == [[0], [3]]
    assert torch.equal(top_k_filter(LOGITS, 10), LOGITS)  # k >= V: nothing dropped
    kept_values = top_k_filter(LOGITS, 2)
    torch.testing.assert_close(kept_values[0, [0, 2]], LOGITS[0, [0, 2]])  # values untouched


def test_top_p_keeps_the_smallest_set_reaching_the_mass():
    # row 0 sorted: 0.5, 0.3, 0.15, 0.05; row 1: 0.4, 0.3, 0.2, 0.1
    assert kept(top_p_filter(LOGITS, 0.5)) == [[0], [2, 3]]
    assert kept(top_p_filter(LOGITS, 0.75)) == [[0, 2], [1, 2, 3]]
    assert kept(top_p_filter(LOGITS, 0.01)) == [[0], [3]]  # the most likely is always kept
    assert kept(top_p_filter(LOGITS, 1.0)) == [[0, 1, 2, 3]] * 2


def test_temperature_zero_is_greedy_and_small_temperatures_approach_it():
    assert sample(LOGITS, temperature=0).tolist() == [0, 3]
    g = torch.Generator().manual_seed(0)
    draws = torch.stack([sample(LOGITS, 0.01, generator=g) for _ in range(50)])
    assert (draws == torch.tensor([0, 3])).all()


def test_samples_follow_the_filtered_softmax():
    g = torch.Generator().manual_seed(0)
    logits = LOGITS[:1].expand(20_000, -1)
    draws = sample(logits, temperature=1.0, top_k=3, generator=g)
    freq = torch.bincount(draws, minlength=4).double() / len(draws)
    expected = torch.tensor([0.5, 0.0, 0.3, 0.15], dtype=torch.float64) / 0.95
    torch.testing.assert_close(freq, expected, atol=0.015, rtol=0)
    hot = torch.bincount(sample(logits, temperature=2.0, generator=g), minlength=4).double()
    flat = torch.tensor([0.5, 0.05, 0.3, 0.15], dtype=torch.float64).sqrt()
    torch.testing.assert_close(hot / hot.sum(), flat / flat.sum(), atol=0.015, rtol=0)


def test_a_seeded_generator_reproduces_the_draws():
    def draws(seed: int) -> list[int]:
        g = torch.Generator().manual_seed(seed)
        return sample(LOGITS.repeat(32, 1), top_p=0.9, generator=g).tolist()

    assert draws(3) == draws(3)
    assert draws(3) != draws(4)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"temperature": -1.0}, "temperature"),
        ({"top_k": 0}, "top_k"),
        ({"top_p": 0.0}, "top_p"),
        ({"top_p": 1.5}, "top_p"),
    ],
)
def test_bad_options_fail_by_name(kwargs, match):
    with pytest.raises(ValueError, match=match):
        sample(LOGITS, **kwargs)


def test_top_p_one_keeps_a_large_vocabulary_whole():
    """p = 1 drops nothing, even where a float32 running sum of 50K probabilities passes 1."""
    logits = 3 * torch.randn(8, 50_000, generator=torch.Generator().manual_seed(0))
    assert torch.equal(top_p_filter(logits, 1.0), logits)


def test_greedy_sampling_still_checks_the_filters():
    logits = torch.randn(2, 5)
    with pytest.raises(ValueError, match="top_k = 0 must be >= 1"):
        sample(logits, temperature=0, top_k=0)
    with pytest.raises(ValueError, match="top_p = 1.5 must lie in"):
        sample(logits, temperature=0, top_p=1.5)
