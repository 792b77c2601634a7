"""The shipped autoencoder (`piano-ae`): encode -> codes -> log-mel -> piano-16k, on piano rendered now.

The score is written here, not taken from the embedded set, so the model never trained on it;
the built-in synthesiser renders it (FluidR3 too where fluidsynth is installed). Fixed seeds:
the figures are reproducible, and the margins sit below what the model measured (noted beside
each) so a regression fails them.
"""

from pathlib import Path

import pytest
import torch

import wavegen
from wavegen.audio.metrics import log_mel_l1, peak_energy_share

from test_shipped_vocoder import fluidsynth_ready, rendered

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# Log-mel L1 of the decoded clip to the clip; measured with the shipped file: 0.829 (built-in,
# peak share 0.803) and 0.544 (FluidR3, peak share 0.788).
LOG_MEL_L1_BOUND = {"builtin": 1.0, "fluidr3": 0.7}


@pytest.fixture(scope="module")
def piano_ae():
    return wavegen.load("piano-ae")


@pytest.mark.parametrize("renderer", [
    "builtin",
    pytest.param("fluidr3", marks=pytest.mark.skipif(not fluidsynth_ready(), reason="fluidsynth + FluidR3 not installed")),
])
def test_piano_ae_decodes_a_clip_rendered_now_as_pitched_piano(piano_ae, renderer):
    clip = rendered(renderer)
    codes = piano_ae.encode(clip)
    assert codes.shape == (piano_ae.module.channels, clip.shape[0] // piano_ae.hop)
    out = piano_ae.decode(codes, clip.shape[0])  # seed 0, the vocoder's stored 6-step schedule
    assert out.shape == clip.shape
    share, l1 = peak_energy_share(out), float(log_mel_l1(clip, out, piano_ae.audio))
    print(f"{renderer}: peak-energy share {share:.3f} (input {peak_energy_share(clip):.3f}), log-mel L1 {l1:.3f}")
    assert share >= 0.5
    assert l1 < LOG_MEL_L1_BOUND[renderer]


def test_piano_ae_is_small_checksummed_and_names_its_vocoder():
    from wavegen.pretrained import entry, registry_root

    info = entry("piano-ae")
    path = Path(str(registry_root() / info["file"]))
    assert path.stat().st_size == info["bytes"] <= 10 * 2**20
    assert info["family"] == "autoencoder" and info["dtype"] == "float16"
    model = wavegen.load("piano-ae")
    assert model.module.decoder_kind == "mel" and model.module.cfg.vocoder == "piano-16k"
    assert model.vocoder.audio == model.audio
