"""The data layer: embedded piano set, MAESTRO and folder loaders, segment sampling, checks, CLI."""

from __future__ import annotations

import json
from dataclasses import replace
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import write_sine
from wavegen.data import SegmentSampler, build_dataset, build_sampler, load_items, num_files
from wavegen.data.files import file_sha256
from wavegen.data.items import AudioItem
from wavegen.errors import WavegenError

SR = 16000
AUDIO = {"sample_rate": SR}


def expect_error(fn, *words):
    with pytest.raises(WavegenError) as info:
        fn()
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word.lower() in message.lower(), message
    return message


# ----------------------------------------------------------------------------- renderer


def peak_hz(audio: np.ndarray, sample_rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    return float(np.argmax(spectrum) * sample_rate / len(audio))


def centroid_hz(audio: np.ndarray, sample_rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(audio))
    freqs = np.fft.rfftfreq(len(audio), 1 / sample_rate)
    return float((spectrum * freqs).sum() / spectrum.sum())


def test_rendered_a4_sounds_at_440_hz():
    from wavegen.data.renderer import NoteEvent, render_builtin

    audio = render_builtin([NoteEvent(onset=0.0, duration=1.0, pitch=69, velocity=90)], SR, seed=0)
    assert audio.dtype == np.float32 and np.abs(audio).max() == pytest.approx(0.89, abs=1e-3)
    assert peak_hz(audio, SR) == pytest.approx(440.0, abs=2.0)
    # One octave down is one octave down.
    low = render_builtin([NoteEvent(0.0, 1.0, 57, 90)], SR, seed=0)
    assert peak_hz(low, SR) == pytest.approx(220.0, abs=2.0)


def test_renderer_is_deterministic_and_velocity_brightens():
    from wavegen.data.renderer import NoteEvent, render_builtin

    notes = [NoteEvent(0.0, 0.5, 60, 40), NoteEvent(0.25, 0.5, 64, 100)]
    a = render_builtin(notes, SR, seed=1)
    assert np.array_equal(a, render_builtin(notes, SR, seed=1))
    assert not np.array_equal(a, render_builtin(notes, SR, seed=2))  # hammer noise follows the seed
    soft = render_builtin([NoteEvent(0.0, 0.5, 60, 30)], SR, seed=0)
    loud = render_builtin([NoteEvent(0.0, 0.5, 60, 120)], SR, seed=0)
    assert centroid_hz(loud, SR) > 1.2 * centroid_hz(soft, SR)


def test_note_release_silences_the_note():
    from wavegen.data.renderer import NoteEvent, render_builtin

    audio = render_builtin([NoteEvent(0.0, 0.3, 60, 90)], SR, seed=0, tail=1.0)
    lead = int(0.05 * SR)
    held = np.abs(audio[lead + int(0.1 * SR) : lead + int(0.3 * SR)]).max()
    after = np.abs(audio[lead + int(0.9 * SR) :]).max()
    assert after < 0.01 * held


def test_fluidsynth_renderer_choice(monkeypatch):
    from wavegen.data import renderer

    monkeypatch.setattr(renderer, "fluidsynth_available", lambda: False)
    assert renderer.resolve_renderer("auto") == "builtin"
    assert renderer.resolve_renderer("builtin") == "builtin"
    expect_error(lambda: renderer.resolve_renderer("fluidsynth"), "fluidsynth", "builtin")
    expect_error(lambda: renderer.resolve_renderer("timidity"), "unknown renderer")
    monkeypatch.setattr(renderer, "fluidsynth_available", lambda: True)
    assert renderer.resolve_renderer("auto") == "fluidsynth"


def test_fluidsynth_path_with_a_stand_in_program(tmp_path, monkeypatch):
    """The fluidsynth route end to end (MIDI written by music21, WAV read back), with a fake binary."""
    from wavegen.data import renderer

    fake = tmp_path / "bin" / "fluidsynth"
    fake.parent.mkdir()
    write_sine(tmp_path / "rendered.wav", seconds=0.5, sample_rate=SR, channels=2)
    # Stand-in: checks it got a MIDI file, then "renders" by copying a stereo WAV to the -F path.
    fake.write_text(
        "#!/bin/sh\n"
        "out=''; prev=''\n"
        "for a in \"$@\"; do [ \"$prev\" = -F ] && out=\"$a\"; prev=\"$a\"; last=\"$a\"; done\n"
        "[ \"$(head -c 4 \"$last\")\" = MThd ] || exit 3\n"
        f"cp {tmp_path / 'rendered.wav'} \"$out\"\n"
    )
    fake.chmod(0o755)
    (tmp_path / "gm.sf2").write_bytes(b"RIFF")
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("WAVEGEN_SOUNDFONT", str(tmp_path / "gm.sf2"))
    assert renderer.resolve_renderer("auto") == "fluidsynth"
    audio = renderer.render_fluidsynth([renderer.NoteEvent(0.0, 0.5, 69, 90)], SR)
    assert len(audio) == SR // 2 and np.abs(audio).max() == pytest.approx(0.89, abs=1e-3)


def test_midi_file_holds_the_notes(tmp_path):
    from music21 import converter

    from wavegen.data.renderer import NoteEvent, write_midi

    notes = [NoteEvent(0.0, 0.5, 60, 80), NoteEvent(0.5, 0.25, 64, 70), NoteEvent(0.5, 1.0, 67, 100)]
    write_midi(notes, tmp_path / "x.mid")
    parsed = converter.parse(tmp_path / "x.mid").flatten().notes
    pitches = sorted(p.midi for el in parsed for p in el.pitches)
    assert pitches == [60, 64, 67]


def test_performance_merges_ties_like_music21():
    from music21 import corpus

    from wavegen.data.scores import perform

    performance = perform(corpus.parse("bach/bwv66.6"), "bach/bwv66.6", np.random.default_rng(0), tempo_jitter=0.0)
    reference = corpus.parse("bach/bwv66.6").stripTies().flatten().notes
    assert len(performance.notes) == sum(len(el.pitches) for el in reference)
    quarters = sum(float(el.quarterLength) * len(el.pitches) for el in reference)
    seconds = sum(n.duration for n in performance.notes)
    assert seconds == pytest.approx(quarters * 60 / performance.tempo_bpm * 0.93, rel=1e-6)
    assert all(21 <= n.pitch <= 108 and 1 <= n.velocity <= 127 for n in performance.notes)


# ----------------------------------------------------------------------------- embedded dataset

TINY = {
    "kind": "embedded",
    "seed": 0,
    "renderer": "builtin",
    "minutes": 0.1,
    "max_piece_seconds": 3.0,
    "chorales": False,
    "pieces": ["schoenberg/opus19/movement2", "schoenberg/opus19/movement6", "mozart/k545/movement1_exposition"],
    "validation_fraction": 0.3,
}


def tiny_cfg(root: Path, **changes) -> dict:
    return {**TINY, "root": str(root), **changes}


@pytest.fixture(scope="module")
def tiny_embedded(tmp_path_factory):
    root = tmp_path_factory.mktemp("embedded") / "seed0"
    items = load_items(tiny_cfg(root), AUDIO)
    return root, items


def manifest_hashes(root: Path) -> list[str]:
    manifest = json.loads((root / "manifest.json").read_text())
    return [entry["sha256"] for entry in manifest["items"]]


def test_embedded_build_layout_and_split_by_piece(tiny_embedded):
    root, items = tiny_embedded
    assert (root / "manifest.json").is_file()
    assert all(it.path.is_file() and it.path.parent == root / "audio" for it in items)
    assert [it.file_id for it in items] == list(range(len(items)))
    info = sf.info(str(items[0].path))
    assert info.samplerate == SR and info.subtype == "PCM_16" and info.channels == 1
    splits = {it.split for it in items}
    assert splits == {"train", "validation"}
    train_pieces = {it.piece for it in items if it.split == "train"}
    val_pieces = {it.piece for it in items if it.split == "validation"}
    assert not train_pieces & val_pieces
    assert sum(it.duration for it in items) >= TINY["minutes"] * 60
    # Nothing left over from building in a temporary folder.
    assert [p.name for p in root.parent.iterdir() if p.name.startswith(".") and not p.name.endswith(".lock")] == []


def test_embedded_build_is_deterministic_per_seed(tiny_embedded, tmp_path):
    root, items = tiny_embedded
    again = load_items(tiny_cfg(tmp_path / "again"), AUDIO)
    assert manifest_hashes(tmp_path / "again") == manifest_hashes(root)
    assert all(a.path.read_bytes() == b.path.read_bytes() for a, b in zip(items, again))
    load_items(tiny_cfg(tmp_path / "other", seed=1), AUDIO)
    assert manifest_hashes(tmp_path / "other") != manifest_hashes(root)


def test_embedded_build_is_reused_and_rebuilt_when_params_change(tmp_path, monkeypatch):
    from wavegen.data import embedded

    root = tmp_path / "reuse"
    cfg = tiny_cfg(root, pieces=TINY["pieces"][:2], max_piece_seconds=2.0)
    first = load_items(cfg, AUDIO)
    calls = []
    real_build = embedded._build_into
    monkeypatch.setattr(embedded, "_build_into", lambda *a, **k: calls.append(1) or real_build(*a, **k))
    assert load_items(cfg, AUDIO) == first and calls == []  # reused
    load_items({**cfg, "max_piece_seconds": 2.5}, AUDIO)  # a parameter changed: rebuilt in place
    assert calls == [1]
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["params"]["max_piece_seconds"] == 2.5
    load_items(cfg, {"sample_rate": 8000})  # the audio rate is a build parameter too
    assert calls == [1, 1] and sf.info(str(next((root / "audio").iterdir()))).samplerate == 8000


def test_a_timbre_spread_plays_each_piece_on_another_built_in_piano(tiny_embedded, tmp_path):
    import numpy as np

    from wavegen.data.renderer import PianoParams

    base = PianoParams()
    assert base.varied(0.0, np.random.default_rng(1)) == base
    pianos = [base.varied(1.0, np.random.default_rng(seed)) for seed in range(200)]
    inharmonicity = np.array([p.inharmonicity for p in pianos]) / base.inharmonicity
    decay = np.array([p.decay_seconds for p in pianos]) / base.decay_seconds
    assert 0.25 <= inharmonicity.min() < 0.4 and 2.5 < inharmonicity.max() <= 4.0  # x/÷ up to 4, spread over it
    assert 0.5 <= decay.min() < 0.6 and 1.7 < decay.max() <= 2.0
    assert all(0.1 <= p.strike_point <= 0.2 and p.prompt_fraction <= 0.9 for p in pianos)
    assert base.varied(1.0, np.random.default_rng(7)) == base.varied(1.0, np.random.default_rng(7))
    root, items = tiny_embedded
    varied = load_items(tiny_cfg(tmp_path / "varied", timbre_spread=1.0), AUDIO)
    same_notes = [(a, b) for a, b in zip(items, varied) if a.piece == b.piece]
    assert len(same_notes) == len(items)  # the same pieces, split and lengths: only the piano differs
    assert all(a.path.read_bytes() != b.path.read_bytes() and a.split == b.split for a, b in same_notes)
    assert json.loads((tmp_path / "varied" / "manifest.json").read_text())["params"]["timbre_spread"] == 1.0
    # One piano (0, the default) keeps the hash of sets built before the knob existed: no rebuild.
    assert "timbre_spread" not in json.loads((root / "manifest.json").read_text())["params"]
    expect_error(lambda: load_items(tiny_cfg(tmp_path, timbre_spread=1.5), AUDIO), "data.timbre_spread")


def test_the_unison_beats_and_the_tilt_darkens(tiny_embedded):
    from wavegen.data.renderer import PianoParams, _sustained_tone

    rate = 16000
    base = PianoParams(max_partials=1, decay_seconds=100.0, prompt_fraction=0.0)  # one partial that barely decays
    plain = _sustained_tone(60, 8, rate, rate, base)
    beating = _sustained_tone(60, 8, rate, rate, replace(base, unison_cents=20.0))
    # Two strings 20 cents apart around middle C (261.6 Hz) beat at 3.02 Hz: silent half a beat in (0.166 s).
    rms = lambda x, t: float(np.sqrt(np.mean(x[int(t * rate) - 40 : int(t * rate) + 40] ** 2)))
    assert rms(beating, 0.1656) < 0.05 * rms(beating, 0.02) and rms(plain, 0.1656) > 0.9 * rms(plain, 0.02)

    def centroid(params: PianoParams) -> float:
        spectrum = np.abs(np.fft.rfft(_sustained_tone(60, 8, rate, rate, params)))
        return float(np.sum(np.arange(len(spectrum)) * spectrum) / np.sum(spectrum))

    assert centroid(replace(PianoParams(), partial_tilt=0.5)) < centroid(PianoParams()) < centroid(
        replace(PianoParams(), partial_tilt=-0.5))
    pianos = [PianoParams().varied(1.0, np.random.default_rng(seed)) for seed in range(200)]
    assert all(0.0 <= p.unison_cents <= 3.0 and abs(p.partial_tilt) <= 0.6 for p in pianos)
    assert max(p.unison_cents for p in pianos) > 2.5 and max(abs(p.partial_tilt) for p in pianos) > 0.5
    # At 0 both knobs are left out of the set's parameters: the hash of every set built before them.
    root, _ = tiny_embedded
    piano = json.loads((root / "manifest.json").read_text())["params"]["piano"]
    assert "unison_cents" not in piano and "partial_tilt" not in piano


def test_extra_soundfonts_add_a_rendering_of_every_piece(tiny_embedded, tmp_path):
    from wavegen.data.renderer import find_soundfont, fluidsynth_available

    if not fluidsynth_available():
        pytest.skip("fluidsynth + a General MIDI SoundFont not installed")
    font = tmp_path / "other piano.sf2"  # FluidR3 under another name: its renderings must be FluidR3's
    font.symlink_to(Path(find_soundfont()).resolve())  # not a copy: the file is 148 MB
    root, items = tiny_embedded
    more = load_items(tiny_cfg(tmp_path / "more", extra_soundfonts=[str(font)]), AUDIO)
    manifest = json.loads((tmp_path / "more" / "manifest.json").read_text())
    renderers = [entry["renderer"] for entry in manifest["items"]]
    assert renderers == ["builtin", "fluidsynth_other_piano"] * len(items)
    assert [(i.piece, i.split) for i in more[::2]] == [(i.piece, i.split) for i in items]
    assert all(a.path.read_bytes() == b.path.read_bytes() for a, b in zip(items, more[::2]))  # built-in as before
    fluid = load_items(tiny_cfg(tmp_path / "fluid", renderer="fluidsynth"), AUDIO)
    assert all(np.array_equal(sf.read(str(a.path))[0], sf.read(str(b.path))[0]) for a, b in zip(fluid, more[1::2]))
    # Keyed by the SoundFont's bytes, not its path; none (the default) keeps every earlier set's hash.
    assert manifest["params"]["extra_soundfonts"] == [file_sha256(font)]
    assert "extra_soundfonts" not in json.loads((root / "manifest.json").read_text())["params"]
    expect_error(lambda: load_items(tiny_cfg(tmp_path / "x", extra_soundfonts=[str(tmp_path / "nope.sf2")]), AUDIO),
                 "data.extra_soundfonts", "nope.sf2")


def test_embedded_config_errors(tmp_path):
    expect_error(lambda: load_items(tiny_cfg(tmp_path, renderer="nope"), AUDIO), "unknown renderer")
    expect_error(lambda: load_items(tiny_cfg(tmp_path, minutes=0), AUDIO), "minutes")
    expect_error(lambda: load_items(tiny_cfg(tmp_path, piano={"sparkle": 1}), AUDIO), "sparkle", "data.piano")
    expect_error(lambda: load_items(tiny_cfg(tmp_path, pieces=["nobody/nothing"]), AUDIO), "nobody/nothing")
    expect_error(lambda: load_items({**TINY, "kind": "youtube", "root": "x"}, AUDIO), "data.kind")


def test_chorales_come_from_the_local_corpus():
    from wavegen.data.scores import chorale_paths

    chorales = chorale_paths()
    assert len(chorales) > 300 and all(c.startswith("bach/bwv") for c in chorales)


# ----------------------------------------------------------------------------- MAESTRO


def test_maestro_loader_uses_csv_splits(tiny_maestro):
    root = tiny_maestro()
    dataset = build_dataset({"kind": "maestro", "root": str(root)}, AUDIO)
    assert [len(dataset[s]) for s in ("train", "validation", "test")] == [3, 1, 1]
    assert num_files(dataset) == 5
    item = dataset["train"][0]
    assert item.duration == 0.5 and item.piece == "Composer 0 / Piece 0"
    limited = build_dataset({"kind": "maestro", "root": str(root), "splits": ["validation"]}, AUDIO)
    assert len(limited["validation"]) == 1 and not limited["train"]


def test_maestro_audio_becomes_mono_at_the_configured_rate(tiny_maestro, tmp_path):
    root = tiny_maestro()
    dataset = build_dataset({"kind": "maestro", "root": str(root)}, AUDIO)
    sampler = SegmentSampler(dataset["train"], SR // 4, SR, 2, 0, tmp_path / "cache")
    for i, item in enumerate(dataset["train"]):
        assert sf.info(str(item.path)).channels == 2
        assert sf.info(str(item.path)).samplerate in (44100, 48000)
        decoded = sampler.cache.load(item.path)
        assert decoded.ndim == 1 and abs(len(decoded) - SR // 2) <= 1


def test_maestro_errors(tiny_maestro, tmp_path):
    cfg = lambda root: {"kind": "maestro", "root": str(root)}  # noqa: E731
    expect_error(lambda: load_items(cfg(tmp_path / "absent"), AUDIO), "not found")
    (tmp_path / "empty").mkdir()
    expect_error(lambda: load_items(cfg(tmp_path / "empty"), AUDIO), "maestro-v3.0.0.csv", "not found")

    header = ["canonical_composer", "canonical_title", "year", "midi_filename", "audio_filename"]
    root = tiny_maestro(header=header, name="cols")
    expect_error(lambda: load_items(cfg(root), AUDIO), "missing column", "split", "duration")

    good = {"canonical_composer": "A", "canonical_title": "B", "split": "train", "year": "2004",
            "midi_filename": "a.midi", "audio_filename": "a.wav", "duration": "0.5"}
    root = tiny_maestro(rows=[good, {**good, "audio_filename": "b.wav", "duration": "long"}], name="dur")
    expect_error(lambda: load_items(cfg(root), AUDIO), "row 2", "duration", "long")
    root = tiny_maestro(rows=[good, {**good, "audio_filename": "c.wav", "split": "holdout"}], name="split")
    expect_error(lambda: load_items(cfg(root), AUDIO), "row 2", "unknown split", "holdout")
    root = tiny_maestro(rows=[good, {**good, "audio_filename": "", "split": "test"}], name="nofile")
    expect_error(lambda: load_items(cfg(root), AUDIO), "row 2", "audio_filename")

    root = tiny_maestro(name="missing")
    (root / "2005" / "rec1.wav").unlink()
    expect_error(lambda: load_items(cfg(root), AUDIO), "missing", "rec1.wav", "row 2")
    # The checker lists the files instead of stopping at the first.
    assert len(load_items(cfg(root), AUDIO, strict=False)) == 5

    # A row with too many fields.
    root = tiny_maestro(name="ragged")
    with open(root / "maestro-v3.0.0.csv", "a") as f:
        f.write("A,B,train,2004,x.midi,x.wav,0.5,extra\n")
    expect_error(lambda: load_items(cfg(root), AUDIO), "row 6", "fields")


# ----------------------------------------------------------------------------- folder


def test_folder_loader_is_recursive_and_splits_by_path(tmp_audio_dir):
    files = {f"d{i % 3}/clip{i}.{'wav' if i % 2 else 'flac'}": {"seconds": 0.2} for i in range(30)}
    root = tmp_audio_dir(files)
    (root / "readme.txt").write_text("not audio")
    items = load_items({"kind": "folder", "root": str(root), "validation_fraction": 0.2}, AUDIO)
    assert len(items) == 30
    val = {it.piece for it in items if it.split == "validation"}
    assert 1 <= len(val) <= 15
    # Splits depend only on each file's own path: adding files moves nobody.
    write_sine(root / "new" / "extra.wav", seconds=0.2)
    again = load_items({"kind": "folder", "root": str(root), "validation_fraction": 0.2}, AUDIO)
    assert {it.piece for it in again if it.split == "validation"} - {"new/extra.wav"} == val
    assert all(it.duration == pytest.approx(0.2) for it in again)


def test_folder_always_has_a_validation_file(tmp_audio_dir):
    from wavegen.data.folder import assign_splits

    splits = assign_splits(["a.wav", "b.wav"], 0.01)
    assert sorted(splits.values()) == ["train", "validation"]
    assert assign_splits(["a.wav", "b.wav"], 0.0) == {"a.wav": "train", "b.wav": "train"}


def test_folder_errors(tmp_path, tmp_audio_dir):
    expect_error(lambda: load_items({"kind": "folder", "root": str(tmp_path / "nope")}, AUDIO), "not found")
    (tmp_path / "texts").mkdir()
    (tmp_path / "texts" / "a.txt").write_text("x")
    expect_error(lambda: load_items({"kind": "folder", "root": str(tmp_path / "texts")}, AUDIO), "no audio files")
    root = tmp_audio_dir({"good.wav": {}})
    (root / "bad.wav").write_bytes(b"garbage" * 100)
    expect_error(lambda: load_items({"kind": "folder", "root": str(root)}, AUDIO), "bad.wav", "wavegen data check")


# ----------------------------------------------------------------------------- segment sampling


def make_items(tmp_audio_dir, lengths: dict[str, float]) -> list[AudioItem]:
    root = tmp_audio_dir({name: {"seconds": s, "freq": 200.0 + 100 * i} for i, (name, s) in enumerate(lengths.items())})
    return [
        AudioItem(path=root / name, piece=name, split="train", duration=s, file_id=i)
        for i, (name, s) in enumerate(lengths.items())
    ]


def test_batches_are_a_pure_function_of_seed_step_rank(tmp_audio_dir, tmp_path):
    items = make_items(tmp_audio_dir, {"a.wav": 1.0, "b.wav": 2.0, "c.wav": 0.5})
    make = lambda rank=0, seed=7: SegmentSampler(items, 4000, SR, 6, seed, tmp_path / "cache", rank, 2)  # noqa: E731
    first, second = make(), make()
    b = first.batch(3)
    assert b["audio"].shape == (6, 4000) and b["audio"].dtype == torch.float32
    assert b["piece"].dtype == torch.long and set(b["piece"].tolist()) <= {0, 1, 2}
    # Same (seed, step, rank) -> same batch, whatever was drawn before and in which object.
    first.batch(0), first.batch(99)
    assert torch.equal(second.batch(3)["audio"], b["audio"]) and torch.equal(second.batch(3)["piece"], b["piece"])
    assert not torch.equal(first.batch(4)["audio"], b["audio"])
    assert not torch.equal(make(rank=1).batch(3)["audio"], b["audio"])
    assert not torch.equal(make(seed=8).batch(3)["audio"], b["audio"])


def test_files_are_drawn_in_proportion_to_duration(tmp_audio_dir, tmp_path):
    items = make_items(tmp_audio_dir, {"short.wav": 0.5, "long.wav": 1.5})
    sampler = SegmentSampler(items, 800, SR, 100, 0, tmp_path / "cache")
    pieces = torch.cat([sampler.batch(step)["piece"] for step in range(20)])
    assert (pieces == 1).float().mean().item() == pytest.approx(0.75, abs=0.05)


def test_crops_come_from_the_file_and_short_files_are_left_padded(tmp_audio_dir, tmp_path):
    items = make_items(tmp_audio_dir, {"long.wav": 1.0, "short.wav": 0.1})
    sampler = SegmentSampler(items, 4000, SR, 8, 0, tmp_path / "cache")
    long_audio = np.asarray(sampler.cache.load(items[0].path))
    short_audio = np.asarray(sampler.cache.load(items[1].path))
    for step in range(5):
        batch = sampler.batch(step)
        for crop, piece in zip(batch["audio"].numpy(), batch["piece"].tolist()):
            if piece == 0:  # a real window of the long file
                starts = [s for s in range(len(long_audio) - 4000 + 1) if long_audio[s] == crop[0]]
                assert any(np.array_equal(long_audio[s : s + 4000], crop) for s in starts)
            else:
                assert np.all(crop[: 4000 - len(short_audio)] == 0)
                assert np.array_equal(crop[4000 - len(short_audio) :], short_audio)


def test_decode_cache_means_a_second_sampler_does_not_decode(tmp_audio_dir, tmp_path, monkeypatch):
    from wavegen.data import segments

    items = make_items(tmp_audio_dir, {"a.wav": 0.5, "b.wav": 0.5})
    calls = []
    real = segments.read_audio
    monkeypatch.setattr(segments, "read_audio", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    first = SegmentSampler(items, 1000, SR, 4, 0, tmp_path / "cache")
    first.prepare()
    first.batch(0), first.batch(1)
    assert len(calls) == 2
    second = SegmentSampler(items, 1000, SR, 4, 0, tmp_path / "cache")
    second.batch(0), second.prepare()
    assert len(calls) == 2
    assert isinstance(second.cache.load(items[0].path), np.memmap)
    # Touching a file (new mtime/size) invalidates its entry.
    write_sine(items[0].path, seconds=0.6)
    SegmentSampler(items, 1000, SR, 4, 0, tmp_path / "cache").prepare()
    assert len(calls) == 3
    assert not [p for p in (tmp_path / "cache").iterdir() if p.suffix != ".npy"]  # no temp files left


def test_validation_batches_are_fixed_and_cover_the_split(tmp_audio_dir, tmp_path):
    items = make_items(tmp_audio_dir, {"a.wav": 1.0, "b.wav": 0.6, "c.wav": 0.1})
    sampler = SegmentSampler(items, 4000, SR, 3, 0, tmp_path / "cache")
    crops = sampler.validation_crops()
    # a: 4 full crops; b: 2 full + a 0.1 s tail (>= 1/4 segment, kept); c: one padded crop.
    assert crops == [(0, 0), (0, 4000), (0, 8000), (0, 12000), (1, 0), (1, 4000), (1, 8000), (2, 0)]
    batches = sampler.validation_batches()
    assert [len(b["audio"]) for b in batches] == [3, 3, 2]
    again = SegmentSampler(items, 4000, SR, 3, 0, tmp_path / "cache").validation_batches()
    assert all(torch.equal(x["audio"], y["audio"]) for x, y in zip(batches, again))
    limited = sampler.validation_batches(max_batches=1)
    assert len(limited) == 1 and limited[0]["piece"].tolist() == [0, 1, 2]  # spread over the whole split
    shares = [SegmentSampler(items, 4000, SR, 3, 0, tmp_path / "cache", r, 3).validation_crops() for r in range(3)]
    assert all(len(s) == 2 for s in shares) and not set(shares[0]) & set(shares[1])


def test_sampler_argument_errors(tmp_path):
    expect_error(lambda: SegmentSampler([], 100, SR, 2, 0, tmp_path), "empty")
    item = AudioItem(tmp_path / "x.wav", "x", "train", 1.0)
    expect_error(lambda: SegmentSampler([item], 100, SR, 2, 0, tmp_path, rank=2, world_size=2), "rank")


def test_build_sampler_from_composed_config(tmp_path, monkeypatch):
    from omegaconf import OmegaConf

    from wavegen.config import compose

    monkeypatch.setenv("WAVEGEN_DATA", str(tmp_path))
    cfg = compose(["data=embedded_debug", "train.batch_size=3", "train.segment_length=500", "seed=5"])
    assert cfg.data.root == f"{tmp_path}/embedded_piano_debug_seed0"
    OmegaConf.update(cfg, "data.pieces", TINY["pieces"][:2])  # the smallest build that still splits
    OmegaConf.update(cfg, "data.max_piece_seconds", 2.0)
    train = build_sampler(cfg, "train")
    val = build_sampler(cfg, "validation")
    assert train.batch(0)["audio"].shape == (3, 500)
    assert train.num_pieces == val.num_pieces == 2
    assert {it.piece for it in train.items}.isdisjoint({it.piece for it in val.items})
    assert len(val.validation_batches(2)) >= 1
    assert list((tmp_path / "decoded").glob("*.npy"))
    expect_error(lambda: build_sampler(cfg, "test"), "test split", "empty")


@pytest.mark.parametrize("name", ["embedded", "embedded_debug", "maestro", "folder"])
def test_data_configs_compose_and_expand_home(name, monkeypatch):
    from wavegen.config import compose
    from wavegen.data.files import expand_path

    monkeypatch.delenv("WAVEGEN_DATA", raising=False)
    cfg = compose([f"data={name}"])
    assert cfg.data.kind in ("embedded", "maestro", "folder")
    assert "~" not in str(expand_path(cfg.data.root)) and "~" not in str(expand_path(cfg.data.cache_dir))


# ----------------------------------------------------------------------------- check and CLI


def test_check_flags_silence_clipping_and_unreadable(tmp_path, tmp_audio_dir, capsys):
    from wavegen.cli import main

    root = tmp_audio_dir({"fine.wav": {"seconds": 0.5}, "stereo.flac": {"sample_rate": 44100, "channels": 2}})
    sf.write(str(root / "quiet.wav"), np.zeros(SR, dtype=np.float32), SR)
    sf.write(str(root / "loud.wav"), np.clip(2 * np.sin(np.linspace(0, 200, SR)), -1, 1).astype(np.float32), SR)
    (root / "broken.wav").write_bytes(b"RIFF nonsense" * 30)

    code = main(["data", "check", str(root)])
    out = capsys.readouterr().out
    assert code == 1
    assert "5 files, 4 readable" in out
    # The split's count is what training can use: the broken file is named beside it, not counted in it.
    split_lines = [line.split() for line in out.splitlines() if line.startswith(("  train", "  validation"))]
    assert sum(int(words[1]) for words in split_lines) == 4
    assert sum(" ".join(words).endswith("(+1 unreadable)") for words in split_lines) == 1
    assert "16000 Hz x3" in out and "44100 Hz x1" in out
    lines = out.splitlines()
    assert any("quiet.wav" in line and "mostly silent" in line for line in lines)
    assert any("loud.wav" in line and "clips" in line for line in lines)
    assert not any("fine.wav" in line and "<-" in line for line in lines)
    assert any(line.strip().startswith("broken.wav: cannot decode") for line in lines)

    (root / "broken.wav").unlink()
    assert main(["data", "check", str(root)]) == 0


def test_cli_data_build_and_check_by_name(tmp_path, monkeypatch, capsys):
    from wavegen.cli import main

    monkeypatch.setenv("WAVEGEN_DATA", str(tmp_path))
    overrides = ["data=embedded_debug", "data.max_piece_seconds=2.0",
                 "data.pieces=[schoenberg/opus19/movement2,schoenberg/opus19/movement6]"]
    assert main(["data", "build", *overrides]) == 0
    out = capsys.readouterr().out
    assert "embedded dataset: 2 files" in out and "validation" in out
    assert main(["data", "check", "embedded_debug", *overrides[1:]]) == 0
    assert "2 files, 2 readable" in capsys.readouterr().out
    assert main(["data", "check", "no_such_dataset"]) == 2
    assert "neither a folder nor a data config" in capsys.readouterr().err
    assert main(["data", "build", "data.minutez=1"]) == 2
    assert "did you mean 'data.minutes'" in capsys.readouterr().err
