"""Token sampling with one random stream per row (infscale.tts.backends.sampling): the right distributions, and a
row's draw independent of its batch."""

import math

import torch

from infscale.tts.backends.sampling import row_uniforms, sample_rows
from infscale.tts.core.generation import SamplingParams


def test_temperature_top_p_and_greedy():
    """p = (0.5, 0.3, 0.15, 0.05): top_p 0.7 keeps the two tokens whose preceding mass is below 0.7, renormalised to
    (0.625, 0.375); temperature 0.5 squares and renormalises p; the returned log-probability is the drawn token's
    under the distribution it was drawn from."""
    p = torch.tensor([0.5, 0.3, 0.15, 0.05])
    logits = p.log().repeat(20_000, 1) + 3.0  # a shift changes nothing
    keys = torch.arange(20_000, dtype=torch.long)
    tokens, logp = sample_rows(logits, SamplingParams(temperature=1.0, top_p=0.7), keys, 0)
    freq = torch.bincount(tokens, minlength=4).double() / len(tokens)
    assert freq[2] == 0 and freq[3] == 0 and abs(freq[0] - 0.625) < 0.012
    assert torch.allclose(logp[tokens == 0], torch.tensor(math.log(0.625)), atol=1e-5)
    tokens, logp = sample_rows(logits, SamplingParams(temperature=0.5), keys, 1)
    q = p**2 / (p**2).sum()
    freq = torch.bincount(tokens, minlength=4).double() / len(tokens)
    assert torch.allclose(freq, q.double(), atol=0.012)
    assert torch.allclose(logp, q.log()[tokens], atol=1e-5)
    tokens, logp = sample_rows(logits[:3], SamplingParams(temperature=0.0), keys[:3], 0)
    assert tokens.tolist() == [0, 0, 0] and torch.allclose(logp, p.log()[0].repeat(3), atol=1e-5)


def test_a_rows_numbers_depend_on_its_key_and_step_only():
    keys = torch.tensor([7, 123456789, 2**31 - 1, 0], dtype=torch.long)
    u = row_uniforms(keys, 5)
    assert torch.equal(row_uniforms(keys[[2, 0]], 5), u[[2, 0]])  # another batch, another order: the same numbers
    assert not torch.equal(row_uniforms(keys, 6), u)  # the next step draws anew
    assert ((u > 0) & (u < 1)).all()


def test_uniform_and_uncorrelated_across_steps_and_keys():
    keys = torch.arange(50_000, dtype=torch.long) * 7919
    u0, u1 = row_uniforms(keys, 0).double(), row_uniforms(keys, 1).double()
    for u in (u0, u1):
        hist = torch.histc(u, bins=10, min=0, max=1) / len(u)
        assert (hist - 0.1).abs().max() < 0.006  # ~4 standard errors of a bin
        assert abs(u.mean() - 0.5) < 0.005
    assert abs(torch.corrcoef(torch.stack([u0, u1]))[0, 1]) < 0.02
    # neighbouring keys (a unit's consecutive samples) are not correlated either
    assert abs(torch.corrcoef(torch.stack([u0[:-1], u0[1:]]))[0, 1]) < 0.02
