"""The diffusion vocoder model: sizes and hop checks, noise-level encoding, shapes, overfitting, task."""

import math

import pytest
import torch

from wavegen.audio.dsp import AudioConfig
from wavegen.diffusion.training import Objective, aligned_pair, vocoder_loss
from wavegen.errors import WavegenError
from wavegen.audio.dsp import frames_to_samples
from wavegen.models.vocoder import VocoderConfig, WaveGradVocoder
from wavegen.models.vocoder.layers import noise_level_encoding

AUDIO = AudioConfig()


pytestmark = pytest.mark.usefixtures("one_torch_thread")
TINY = dict(upsample_channels=[16, 16, 8, 8, 8], downsample_channels=[4, 8, 8, 8, 16], mel_channels=16)


def tiny_model(seed: int = 0) -> WaveGradVocoder:
    torch.manual_seed(seed)
    return WaveGradVocoder(VocoderConfig(**TINY))


def piano_like_clip(samples: int) -> torch.Tensor:
    """A decaying harmonic tone: deterministic audio with a clear mel."""
    t = torch.arange(samples) / AUDIO.sample_rate
    tone = sum(0.2 / (k + 1) * torch.sin(2 * math.pi * 220 * (k + 1) * t) for k in range(4))
    return tone * torch.exp(-3 * t)


# ----------------------------------------------------------------------------- config and hop


@pytest.mark.parametrize("factors", [[4, 4, 4, 2], [4, 4, 4, 4, 2], [5, 5, 3, 2, 2]])
def test_factors_must_multiply_to_the_hop(factors):
    channels = dict(upsample_channels=[8] * len(factors), downsample_channels=[4] * len(factors))
    with pytest.raises(WavegenError) as err:
        VocoderConfig.from_mapping({"upsample_factors": factors, **channels})
    message = str(err.value)
    assert "\n" not in message
    assert f"multiply to {math.prod(factors)}" in message and "hop is 256" in message


def test_channel_lists_must_match_the_factors():
    with pytest.raises(WavegenError, match="one upsample channel"):
        VocoderConfig.from_mapping({"upsample_channels": [8, 8]})


def test_unknown_option_is_named():
    with pytest.raises(WavegenError, match="upsampel_factors"):
        VocoderConfig.from_mapping({"upsampel_factors": [4, 4, 4, 2, 2]})


def test_vocoder_refuses_other_mel_settings():
    with pytest.raises(WavegenError, match=r"hop_length 256 \(audio config: 300\)"):
        VocoderConfig().check_audio({**AUDIO.to_dict(), "hop_length": 300})
    with pytest.raises(WavegenError, match=r"f_max 8000.0 \(audio config: 7600"):
        VocoderConfig().check_audio({**AUDIO.to_dict(), "f_max": 7600.0})


def test_bad_factors_through_the_composed_config():
    from wavegen.config import compose
    from wavegen.tasks import build_task

    cfg = compose(["experiment=vocoder_debug", "model.upsample_factors=[4,4,4,2,1]"])
    with pytest.raises(WavegenError, match="multiply to 128"):
        build_task(cfg)


def test_segment_length_must_be_whole_hops():
    from wavegen.config import compose
    from wavegen.tasks import build_task

    cfg = compose(["experiment=vocoder_debug", "train.segment_length=1000"])
    with pytest.raises(WavegenError, match="multiple of audio.hop_length=256"):
        build_task(cfg)


# ----------------------------------------------------------------------------- shapes


def test_output_has_one_hop_per_frame():
    model = tiny_model().eval()
    mel = torch.randn(2, AUDIO.n_mels, 5)
    out = model(torch.randn(2, 5 * 256), mel, torch.tensor([0.3, 0.9]))
    assert out.shape == (2, 5 * 256)
    assert frames_to_samples(5, 256) == 4 * 256


def test_length_mismatch_is_an_error():
    model = tiny_model()
    with pytest.raises(WavegenError, match="1000 samples but 5 mel frames need 1280"):
        model(torch.randn(1, 1000), torch.randn(1, AUDIO.n_mels, 5), torch.tensor([0.5]))


def test_base_size_is_wavegrad_base():
    from omegaconf import OmegaConf

    from wavegen.config import config_dir

    raw = OmegaConf.to_container(OmegaConf.load(config_dir() / "model/vocoder/base.yaml"))
    raw.update(n_mels=AUDIO.n_mels, hop_length=AUDIO.hop_length)
    cfg = VocoderConfig.from_mapping(raw)
    assert cfg.upsample_channels == [512, 512, 256, 128, 128]
    params = sum(p.numel() for p in WaveGradVocoder(cfg).parameters())
    assert 14e6 < params < 18e6  # WaveGrad Base is about 15 M


def test_aligned_pair_pairs_frame_f_with_hop_f():
    """A burst in the first half of hop 3 is loudest in mel frame 3 (centred at sample 3·hop),
    reaches exactly the frames whose n_fft window overlaps it, and the audio is the input with
    its tail (not its head) cropped to whole hops."""
    hop, half_window = AUDIO.hop_length, AUDIO.n_fft // 2
    clip = torch.zeros(2, hop * 7 + 100)
    start, end = 3 * hop, 3 * hop + hop // 2
    clip[:, start:end] = 0.5 * torch.randn(2, end - start, generator=torch.Generator().manual_seed(0))
    clip[:, hop * 7:] = 0.7  # the tail that must be dropped
    audio, mel = aligned_pair(clip, AUDIO)
    assert torch.equal(audio, clip[:, : hop * 7])
    assert mel.shape == (2, AUDIO.n_mels, 7)
    energy = mel.exp().sum(1)  # [2, 7]
    assert energy.argmax(-1).tolist() == [3, 3]
    reached = [f for f in range(7) if f * hop - half_window < end and start < f * hop + half_window]
    silent = mel.amax(1) <= mel.min() + 1e-6  # at the log floor
    assert [f for f in range(7) if not silent[0, f]] == reached == [2, 3, 4, 5]


# ----------------------------------------------------------------------------- noise-level encoding


def test_noise_level_encoding_shape_determinism_and_distinctness():
    from wavegen.diffusion.schedules import level_from_sigma

    # Noise-to-signal ratios from a last, hiss-removing step to pure noise.
    levels = level_from_sigma(torch.tensor([0.001, 0.0045, 0.02, 0.1, 1.0, 10.0]))
    a = noise_level_encoding(levels, 32)
    b = noise_level_encoding(levels.clone(), 32)
    assert a.shape == (6, 32)
    assert torch.equal(a, b)
    distances = torch.cdist(a, a) + torch.eye(6) * 1e9
    assert distances.min() > 0.5, distances.min()
    assert torch.allclose(a[:, :16] ** 2 + a[:, 16:] ** 2, torch.ones(6, 16), atol=1e-5)


def test_noise_level_changes_the_prediction():
    model = tiny_model().eval()
    y, mel = torch.randn(1, 4 * 256), torch.randn(1, AUDIO.n_mels, 4)
    with torch.no_grad():
        a, b = model(y, mel, torch.tensor([0.5])), model(y, mel, torch.tensor([0.6]))
    assert not torch.allclose(a, b)


# ----------------------------------------------------------------------------- learning


def test_training_on_one_clip_improves_the_clean_estimate():
    """The output, not the loss: 60 Adam steps on one clip bring the clean estimate x̂ from
    that clip noised at 0 dB (σ = 1) closer to the clip (MR-STFT, fixed noise), and the
    estimate depends on the mel it is given. (The few-step sampler's output from pure noise
    does not improve measurably in 60 steps: docs/vocoder.md.)"""
    from wavegen.diffusion.schedules import level_from_sigma
    from wavegen.audio.metrics import multi_resolution_stft_distance

    audio, mel = aligned_pair(piano_like_clip(2048)[None].repeat(2, 1), AUDIO)
    model = tiny_model()
    a = level_from_sigma(torch.tensor([1.0]))
    z = torch.randn(audio[:1].shape, generator=torch.Generator().manual_seed(7))

    def estimate(log_mel) -> torch.Tensor:
        y = a * audio[:1] + (1 - a * a).sqrt() * model.prior.shape(z, log_mel)
        with torch.no_grad():
            return model.eval().predict(y, log_mel, a)[1]

    before = multi_resolution_stft_distance(audio[:1], estimate(mel[:1])).item()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(60):
        loss, _ = vocoder_loss(model, audio, mel, Objective(), g)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = multi_resolution_stft_distance(audio[:1], estimate(mel[:1])).item()
    assert after < 0.9 * before, f"MR-STFT {before:.3f} -> {after:.3f}"
    assert (estimate(mel[:1]) - estimate(mel[:1] - 2.0)).abs().max().item() > 1e-3


def test_task_loss_validate_media_on_the_debug_config():
    from wavegen.config import compose
    from wavegen.tasks import build_task

    task = build_task(compose(["experiment=vocoder_debug"]))
    batch = {"audio": piano_like_clip(2048)[None].repeat(2, 1), "piece": torch.zeros(2, dtype=torch.long)}
    loss, _ = task.loss(task.model, batch)
    assert loss.ndim == 0 and loss.requires_grad
    metrics = task.validate(task.model, [batch])
    assert set(metrics) == {"val_loss", "val_log_mel_l1", "val_mr_stft"}
    assert metrics == task.validate(task.model, [batch])  # fixed seed: comparable across steps
    media = task.media(task.model, batch)
    assert media["audio/vocoded"].shape == media["audio/reference"].shape
    assert media["image/vocoded_spectrogram"].shape[-1] == 3
    assert task.model_config()["family"] == "vocoder"
