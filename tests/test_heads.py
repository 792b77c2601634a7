"""Output heads: μ-law and mixture-of-logistics round trips, likelihoods and sampling."""

import math

import torch

from wavegen.nn.heads import CategoricalHead, MixtureOfLogisticsHead


def test_mu_law_round_trip():
    head = CategoricalHead(256, "mulaw")
    classes = torch.arange(256)
    assert torch.equal(head.encode(head.decode(classes)), classes)  # every class survives decode -> encode
    audio = torch.linspace(-1, 1, 20001)
    back = head.decode(head.encode(audio))
    # μ-law bins are finest near zero: the error is bounded by the local bin width.
    assert (back - audio).abs().max() < 0.035
    quiet = audio.abs() < 0.01
    assert (back - audio)[quiet].abs().max() < 3e-4
    assert head.silence(3).tolist() == [128, 128, 128] and head.decode(head.silence(1)).abs().item() < 1e-2


def test_mixture_of_logistics_round_trip_and_likelihood():
    head = MixtureOfLogisticsHead(mixtures=3, bits=16)
    audio = torch.rand(1000) * 2 - 1
    tokens = head.encode(audio)
    assert torch.equal(head.encode(head.decode(tokens)), tokens)  # the 16-bit grid is a fixed point
    assert (tokens - audio).abs().max() <= head.half_bin + 1e-7
    # A sharp single component centred on the target puts almost all mass in the target's bin.
    target = tokens[:5].reshape(1, 5)
    logits = torch.full((1, 9, 5), -30.0)
    logits[:, 0] = 30.0  # component 0 takes all the weight
    logits[:, 3] = target  # its mean
    logits[:, 6] = math.log(head.half_bin / 20)  # its scale: far narrower than a bin
    nll = head.nll(logits, target)
    assert nll.max().item() < 1e-3
    # The same distribution scores a far-away sample as very unlikely.
    assert head.nll(logits, (target + 0.5).clamp(-1, 1)).min().item() > 50


def test_mixture_sampling_follows_the_uniforms():
    head = MixtureOfLogisticsHead(mixtures=2, bits=16)
    logits = torch.tensor([[0.0, 0.0, -0.5, 0.5, -6.0, -6.0]])  # equal weights, means -0.5 and 0.5
    low = head.sample(logits, torch.tensor([[0.2, 0.5]]))  # first component, median noise
    high = head.sample(logits, torch.tensor([[0.8, 0.5]]))
    assert abs(low.item() + 0.5) < 1e-6 and abs(high.item() - 0.5) < 1e-6
    assert head.sample(logits, torch.tensor([[0.8, 0.9]]), temperature=0.0).item() == high.item()
    draws = torch.stack([head.sample(logits, torch.rand(1, 2, generator=torch.Generator().manual_seed(i)))
                         for i in range(400)])
    assert 0.35 < (draws > 0).float().mean().item() < 0.65


def test_categorical_sampling_is_inverse_cdf():
    head = CategoricalHead(4, "none")
    logits = torch.log(torch.tensor([[0.1, 0.2, 0.3, 0.4]]))
    picks = [head.sample(logits, torch.tensor([[u, 0.0]])).item() for u in (0.05, 0.15, 0.45, 0.95)]
    assert picks == [0, 1, 2, 3]
    assert head.sample(logits, torch.tensor([[0.05, 0.0]]), temperature=0).item() == 3
