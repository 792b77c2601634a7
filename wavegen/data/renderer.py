"""Turn note events into piano audio.

Two renderers:

- ``builtin``: additive synthesis in numpy. Deterministic for a seed and identical
  on every machine with the same numpy, so it is the default for the embedded data.
- ``fluidsynth``: the ``fluidsynth`` program with a General MIDI SoundFont (Debian
  packages ``fluidsynth`` and ``fluid-soundfont-gm``), fed a MIDI file written by
  music21. Sounds more like a real piano, but depends on what the machine has.

``auto`` picks fluidsynth where it is installed and the built-in renderer elsewhere.

The built-in model, per note of MIDI pitch p (f0 = 440·2^((p-69)/12)):

- partials f_n = n·f0·sqrt(1 + B·n²): stiff strings are slightly inharmonic, and
  B grows toward the treble;
- amplitudes fall as n^-k with k smaller for louder notes (harder hammers excite
  more partials: velocity-dependent brightness), times a comb |sin(π·n·x0)| from
  the hammer's strike point x0 ≈ 1/7 along the string;
- each partial decays in two stages (a fast "prompt" sound and a slow
  "aftersound", as coupled piano strings do), higher partials and higher notes
  decaying faster;
- a short, low-passed noise burst for the hammer knock, louder at high velocity;
- a quick release when the key comes up (the damper), a few-ms onset ramp so
  the attack does not click;
- notes are summed into one mono track and the piece is normalised to a fixed peak.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from wavegen.errors import WavegenError

RENDERERS = ("builtin", "fluidsynth", "auto", "both")

SOUNDFONT_CANDIDATES = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/soundfonts/FluidR3_GM.sf2",
    "/usr/share/soundfonts/default.sf2",
)


@dataclass(frozen=True)
class NoteEvent:
    """One key press: when, how long, which key, how hard."""

    onset: float  # seconds
    duration: float  # seconds until the key is released
    pitch: int  # MIDI note number, 21..108 on a piano
    velocity: int  # MIDI velocity, 1..127


@dataclass(frozen=True)
class PianoParams:
    """Knobs of the built-in piano. Part of the dataset's content hash."""

    max_partials: int = 14
    inharmonicity: float = 3.0e-4  # B at middle C; doubles every 1.5 octaves up
    decay_seconds: float = 3.0  # slow-stage decay time (1/e) of the fundamental at middle C
    prompt_fraction: float = 0.6  # share of the energy in the fast-decaying stage
    release_seconds: float = 0.09  # damper time constant after note-off
    hammer_level: float = 0.06
    strike_point: float = 1.0 / 7.0
    max_sustain_seconds: float = 8.0  # a held key is rendered for at most this long
    peak: float = 0.89  # the piece's peak after normalisation (about -1 dBFS)
    # Two knobs the first piano did not have; at 0 they change nothing and are left out of to_dict(),
    # so every data set built before them keeps its hash.
    unison_cents: float = 0.0  # each partial from two strings this many cents apart: they beat, as a real unison does
    partial_tilt: float = 0.0  # partial n's level times n^-tilt (> 0 darker, < 0 brighter)

    def to_dict(self) -> dict:
        params = asdict(self)
        for knob in ("unison_cents", "partial_tilt"):
            if not params[knob]:
                params.pop(knob)
        return params

    def varied(self, spread: float, rng: np.random.Generator) -> "PianoParams":
        """Another piano around this one: each timbre knob moved by a random factor, more the larger
        ``spread`` in [0, 1] (0: this piano; 1: inharmonicity x/÷ up to 4, decay time and hammer level x/÷
        up to 2, the fast stage's share x/÷ up to √2 (at most 0.9), the strike point 1/7 ± 3/70 of the string,
        the unison's detuning up to 3 cents more, the partial tilt ± 0.6).

        Why: a model trained on one or two pianos plays partials off the pitches of a piano it never heard
        (docs/ar_study/README.md section 12); pieces each rendered by a different piano widen what it hears.
        """
        def factor(most: float) -> float:
            return float(most ** (spread * rng.uniform(-1.0, 1.0)))

        strike = 1.0 / 7.0 + spread * rng.uniform(-1.0, 1.0) * (1.0 / 7.0 - 1.0 / 10.0)  # drawn first
        return replace(
            self,
            inharmonicity=self.inharmonicity * factor(4.0),
            decay_seconds=self.decay_seconds * factor(2.0),
            prompt_fraction=min(0.9, self.prompt_fraction * factor(2.0) ** 0.5),
            hammer_level=self.hammer_level * factor(2.0),
            strike_point=strike,
            # Drawn after the knobs above, so that those keep the values they had before these existed.
            unison_cents=self.unison_cents + spread * rng.uniform(0.0, 3.0),
            partial_tilt=self.partial_tilt + spread * rng.uniform(-0.6, 0.6),
        )


def midi_to_hz(pitch: float) -> float:
    return 440.0 * 2.0 ** ((pitch - 69.0) / 12.0)


# Brightness depends on velocity through this many levels, so that all notes of
# one key and level share one synthesised tone (rendering is then mostly copying).
_BRIGHTNESS_LEVELS = 16


def _held_seconds(note: NoteEvent, params: PianoParams) -> float:
    return min(max(note.duration, 0.02), params.max_sustain_seconds)


# exp and sin of t = (b·_BLOCK + i)/sr factor into a per-block and a within-block
# part, so [N, T] tables cost one multiply per entry instead of a transcendental.
_BLOCK = 256


def _block_times(length: int, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    blocks = -(-length // _BLOCK)
    return np.arange(blocks) * (_BLOCK / sample_rate), np.arange(_BLOCK) / sample_rate


def _decay(tau: np.ndarray, length: int, sample_rate: int) -> np.ndarray:
    """Tensor[N] time constants -> ndarray[N, length] of exp(-t / tau)."""
    outer, inner = _block_times(length, sample_rate)
    table = np.exp(-outer[None, :, None] / tau[:, None, None]) * np.exp(-inner[None, None, :] / tau[:, None, None])
    return table.reshape(len(tau), -1)[:, :length]


def _sine(freqs: np.ndarray, length: int, sample_rate: int) -> np.ndarray:
    """ndarray[N] frequencies -> ndarray[N, length] of sin(2π f t), via sin(a+b) = sin a cos b + cos a sin b."""
    outer, inner = _block_times(length, sample_rate)
    a = 2.0 * np.pi * freqs[:, None, None] * outer[None, :, None]
    b = 2.0 * np.pi * freqs[:, None, None] * inner[None, None, :]
    table = np.sin(a) * np.cos(b) + np.cos(a) * np.sin(b)
    return table.reshape(len(freqs), -1)[:, :length]


def _sustained_tone(pitch: int, level: int, length: int, sample_rate: int, params: PianoParams) -> np.ndarray:
    """The undamped tone of one key at one brightness level -> ndarray[length] float64, unit RMS-ish amplitude."""
    p = float(np.clip(pitch, 21, 108))
    v = level / _BRIGHTNESS_LEVELS
    f0 = midi_to_hz(p)

    # Inharmonic partial frequencies, kept safely below Nyquist.
    B = params.inharmonicity * 2.0 ** ((p - 60.0) / 18.0)
    n = np.arange(1, params.max_partials + 1, dtype=np.float64)
    freqs = n * f0 * np.sqrt(1.0 + B * n * n)
    keep = freqs < 0.45 * sample_rate
    n, freqs = n[keep], freqs[keep]

    # Brightness: soft notes roll off steeply (k≈2.6), loud ones gently (k≈1.3).
    k = 2.6 - 1.3 * v
    amps = n ** -(k + params.partial_tilt) * (0.25 + np.abs(np.sin(np.pi * n * params.strike_point)))
    amps /= np.sqrt(np.sum(amps**2))

    # Two-stage decay; bass notes ring longer, upper partials die sooner.
    slow = params.decay_seconds * 2.0 ** (-(p - 60.0) / 24.0) / (1.0 + 0.35 * (n - 1.0))
    fast = slow / 6.0
    w = params.prompt_fraction
    env = w * _decay(fast, length, sample_rate) + (1.0 - w) * _decay(slow, length, sample_rate)
    if params.unison_cents:
        # Two strings a cent-distance apart, each at half the level: the partial beats at their difference.
        detune = 2.0 ** (params.unison_cents / 2400.0)
        strings = 0.5 * (_sine(freqs * detune, length, sample_rate) + _sine(freqs / detune, length, sample_rate))
    else:
        strings = _sine(freqs, length, sample_rate)
    tone = amps @ (env * strings)

    # Onset ramp (3 ms raised cosine) so the attack does not click.
    ramp = min(int(0.003 * sample_rate), length)
    tone[:ramp] *= 0.5 - 0.5 * np.cos(np.pi * np.arange(ramp) / max(ramp, 1))
    return tone


def _hammer_knock(velocity: float, sample_rate: int, params: PianoParams, rng: np.random.Generator) -> np.ndarray:
    """About 20 ms of decaying noise, smoothed more (darker) for soft notes."""
    length = int(0.02 * sample_rate)
    noise = rng.standard_normal(length) * np.exp(-np.arange(length) / (0.004 * sample_rate))
    taps = int(round((1.0 - velocity) * 6)) + 1
    noise = np.convolve(noise, np.ones(taps) / taps, mode="same")
    return params.hammer_level * velocity * noise


def render_builtin(
    notes: list[NoteEvent],
    sample_rate: int,
    seed: int,
    params: PianoParams = PianoParams(),
    lead_in: float = 0.05,
    tail: float = 1.0,
) -> np.ndarray:
    """Note events -> ndarray[T] float32 mono piano, peak-normalised to ``params.peak``.

    Deterministic: the only randomness (hammer noise) comes from ``seed``.
    """
    if not notes:
        raise WavegenError("cannot render a piece without notes")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, 0x9A1]))
    release_len = int(6.0 * params.release_seconds * sample_rate)
    release = np.exp(-np.arange(release_len) / (params.release_seconds * sample_rate))
    notes = sorted(notes, key=lambda n: (n.onset, n.pitch, n.duration, n.velocity))
    end = max(n.onset + _held_seconds(n, params) for n in notes)
    total = int((lead_in + end + tail) * sample_rate) + release_len + 1
    out = np.zeros(total, dtype=np.float64)

    # One sustained tone per (key, brightness level), as long as its longest note needs.
    def level_of(n: NoteEvent) -> int:
        return int(round(np.clip(n.velocity, 1, 127) / 127.0 * _BRIGHTNESS_LEVELS))

    longest: dict[tuple[int, int], int] = {}
    for n in notes:
        key = (int(np.clip(n.pitch, 21, 108)), level_of(n))
        longest[key] = max(longest.get(key, 0), int(_held_seconds(n, params) * sample_rate) + release_len)
    tones = {key: _sustained_tone(key[0], key[1], length, sample_rate, params) for key, length in sorted(longest.items())}

    for n in notes:
        v = float(np.clip(n.velocity, 1, 127)) / 127.0
        held = int(_held_seconds(n, params) * sample_rate)
        tone = tones[(int(np.clip(n.pitch, 21, 108)), level_of(n))][: held + release_len].copy()
        tone[held:] *= release[: len(tone) - held]  # the damper falls at note-off
        knock = _hammer_knock(v, sample_rate, params, rng)
        tone[: len(knock)] += knock[: len(tone)]
        gain = 10.0 ** ((v - 1.0) * 36.0 / 20.0)  # velocity 1..127 spans about 36 dB
        start = int(round((lead_in + n.onset) * sample_rate))
        stop = min(start + len(tone), total)
        out[start:stop] += gain * tone[: stop - start]
    peak = float(np.max(np.abs(out)))
    if peak > 0:
        out *= params.peak / peak
    return out.astype(np.float32)


# ----------------------------------------------------------------------------- fluidsynth


def find_soundfont() -> str | None:
    env = os.environ.get("WAVEGEN_SOUNDFONT")
    for candidate in ((env,) if env else ()) + SOUNDFONT_CANDIDATES:
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def fluidsynth_available() -> bool:
    return shutil.which("fluidsynth") is not None and find_soundfont() is not None


def resolve_renderer(name: str) -> str:
    """'builtin' | 'fluidsynth' | 'auto' | 'both' -> the renderer(s) that will actually run.

    ``both`` renders every piece twice, by the built-in synthesiser and by fluidsynth, so a
    model hears two different pianos play the same music (the split stays by piece).
    """
    if name not in RENDERERS:
        raise WavegenError(f"unknown renderer '{name}' (choose one of: {', '.join(RENDERERS)})")
    if name == "auto":
        return "fluidsynth" if fluidsynth_available() else "builtin"
    if name in ("fluidsynth", "both") and not fluidsynth_available():
        raise WavegenError(
            f"renderer '{name}' needs the fluidsynth program and a GM SoundFont "
            "(apt-get install fluidsynth fluid-soundfont-gm, or set WAVEGEN_SOUNDFONT); "
            "use renderer=builtin or renderer=auto"
        )
    return name


def write_midi(notes: list[NoteEvent], path: Path) -> None:
    """Note events -> a one-track piano MIDI file, via music21 (tempo 60: 1 quarter = 1 s)."""
    from music21 import instrument, note as m21note, stream, tempo

    part = stream.Part()
    part.insert(0, instrument.Piano())
    part.insert(0, tempo.MetronomeMark(number=60))
    for ev in notes:
        n = m21note.Note(int(ev.pitch))
        n.quarterLength = max(round(ev.duration * 480) / 480, 1 / 480)
        n.volume.velocity = int(ev.velocity)
        part.insert(round(ev.onset * 480) / 480, n)
    score = stream.Score([part])
    score.write("midi", fp=str(path))


def render_fluidsynth(notes: list[NoteEvent], sample_rate: int, gain: float = 0.6, peak: float = 0.89,
                      soundfont: str | os.PathLike | None = None) -> np.ndarray:
    """Note events -> ndarray[T] float32 mono rendered by fluidsynth with ``soundfont`` (default: the
    General MIDI SoundFont :func:`find_soundfont` finds), peak-normalised."""
    from wavegen.audio.io import read_audio

    if soundfont is not None and not Path(soundfont).is_file():
        raise WavegenError(f"SoundFont not found: {soundfont}")
    soundfont = str(soundfont) if soundfont is not None else find_soundfont()
    if shutil.which("fluidsynth") is None or soundfont is None:
        resolve_renderer("fluidsynth")  # raises the explanatory error
    with tempfile.TemporaryDirectory(prefix="wavegen-fluid-") as tmp:
        midi, wav = Path(tmp) / "piece.mid", Path(tmp) / "piece.wav"
        write_midi(notes, midi)
        cmd = ["fluidsynth", "-ni", "-q", "-g", str(gain), "-r", str(int(sample_rate)), "-F", str(wav), soundfont, str(midi)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if proc.returncode != 0 or not wav.exists():
            reason = " ".join((proc.stderr or proc.stdout or "no output").split())[:200]
            raise WavegenError(f"fluidsynth failed (exit {proc.returncode}): {reason}")
        audio = read_audio(wav, sample_rate).numpy()
    top = float(np.max(np.abs(audio)))
    if top > 0:
        audio = audio * (peak / top)
    return audio.astype(np.float32)
