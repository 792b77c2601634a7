"""The hostile-input catalogue: one entry per way a user can hand wavegen something broken.

Each case is a function ``case(ws) -> (argv, expected)`` registered under the
sub-command it runs: it makes its inputs in ``ws.dir``, returns the ``wavegen``
arguments, and the fragments the one-line error must contain (file names, keys,
expected values). The test runs every case through the real CLI and checks the
exit status, the single ``error:`` line, and that nothing on disk changed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Callable

import yaml

from hostile import files as F
from hostile import models as M

Case = Callable[["Workspace"], tuple[list[str], list[str]]]
CASES: dict[str, tuple[str, Case]] = {}


def case(command: str):
    """Register ``fn`` as a case of ``wavegen <command>`` (skipped while the command does not exist)."""

    def register(fn: Case) -> Case:
        assert fn.__name__ not in CASES, fn.__name__
        CASES[fn.__name__] = (command, fn)
        return fn

    return register


class Shared:
    """Inputs many cases read, built once per test module on first use (and never modified)."""

    def __init__(self, root: Path):
        self.dir = root
        root.mkdir(parents=True, exist_ok=True)

    @cached_property
    def wavenet(self) -> Path:
        return M.untrained_checkpoint(self.dir / "wavenet.pt", "wavenet_debug")

    @cached_property
    def autoencoder(self) -> Path:
        return M.untrained_checkpoint(self.dir / "autoencoder.pt", "autoencoder_debug")

    @cached_property
    def other_autoencoder(self) -> Path:
        """Same config, other weights: its codes must not decode with :attr:`autoencoder`."""
        return M.untrained_checkpoint(self.dir / "autoencoder_other.pt", "autoencoder_debug", seed=1)

    @cached_property
    def vocoder(self) -> Path:
        return M.untrained_checkpoint(self.dir / "vocoder.pt", "vocoder_debug")

    @cached_property
    def wav(self) -> Path:
        return F.good_wav(self.dir / "piano.wav", seconds=0.3)

    def codes_of(self, checkpoint: Path) -> Path:
        """A real code file: ``wavegen encode`` of :attr:`wav` with ``checkpoint``."""
        from wavegen.cli import main

        out = self.dir / f"{checkpoint.stem}.codes"
        if not out.exists():
            assert main(["encode", str(checkpoint), str(self.wav), "-o", str(out)]) == 0
        return out


@dataclass
class Workspace:
    dir: Path  # this case's own folder: the inputs it makes, the outputs it names
    shared: Shared

    def __post_init__(self):
        self.dir.mkdir(parents=True, exist_ok=True)

    def __truediv__(self, name: str) -> Path:
        return self.dir / name

    def existing(self, name: str, content: bytes = b"precious earlier output\n") -> Path:
        """An output file from an earlier run that must keep its bytes."""
        path = self.dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        return path


def _sample(ws: Workspace, *extra: str) -> list[str]:
    return ["sample", str(ws.shared.wavenet), "-o", str(ws / "samples"), "--seconds", "0.01", *map(str, extra)]


def _train(ws: Workspace, *overrides: str) -> list[str]:
    return ["train", "experiment=wavenet_debug", f"train.run_dir={ws / 'run'}", *map(str, overrides)]


# ============================================================================= audio files
# Read by `sample --prompt` (and by encode, training data, vocode of audio) through one reader.


@case("sample")
def audio_missing(ws):
    return _sample(ws, "--prompt", ws / "nope.wav"), ["audio file not found", "nope.wav"]


@case("sample")
def audio_empty_file(ws):
    return _sample(ws, "--prompt", F.empty_file(ws / "empty.wav")), ["empty (0 bytes)", "empty.wav"]


@case("sample")
def audio_truncated_wav(ws):
    return _sample(ws, "--prompt", F.truncated_wav(ws / "cut.wav")), ["truncated WAV file", "cut.wav", "only"]


@case("sample")
def audio_header_without_data(ws):
    return _sample(ws, "--prompt", F.header_only_wav(ws / "hdr.wav")), ["truncated", "hdr.wav", "only 0 are present"]


@case("sample")
def audio_corrupt_wav(ws):
    return _sample(ws, "--prompt", F.corrupt_wav(ws / "corrupt.wav")), ["cannot decode audio file", "corrupt.wav"]


@case("sample")
def audio_random_bytes_named_flac(ws):
    return _sample(ws, "--prompt", F.random_bytes(ws / "download.flac")), ["cannot decode", "download.flac"]


@case("sample")
def audio_nan_samples(ws):
    return _sample(ws, "--prompt", F.float_wav_with(ws / "nan.wav", float("nan"))), ["NaN or infinite", "nan.wav"]


@case("sample")
def audio_inf_samples(ws):
    return _sample(ws, "--prompt", F.float_wav_with(ws / "inf.wav", float("inf"))), ["NaN or infinite", "inf.wav"]


@case("sample")
def audio_rate_1_hz(ws):
    return (_sample(ws, "--prompt", F.wav_with_rate(ws / "slow.wav", 1)),
            ["sample rate 1 Hz", "slow.wav", "1000..384000"])


@case("sample")
def audio_rate_2_ghz(ws):
    return (_sample(ws, "--prompt", F.wav_with_rate(ws / "fast.wav", 2_000_000_000)),
            ["sample rate 2000000000 Hz", "fast.wav"])


@case("sample")
def audio_text_file(ws):
    return _sample(ws, "--prompt", F.text_file(ws / "notes.txt")), ["unsupported audio format '.txt'", ".wav, .flac"]


@case("sample")
def audio_unsupported_aiff(ws):
    return _sample(ws, "--prompt", F.good_wav(ws / "take.aiff")), ["unsupported audio format '.aiff'", "take.aiff"]


@case("sample")
def audio_folder_instead_of_file(ws):
    (ws / "takes.wav").mkdir()
    return _sample(ws, "--prompt", ws / "takes.wav"), ["found a folder", "takes.wav"]


@case("encode")
def encode_corrupt_audio(ws):
    return (["encode", str(ws.shared.autoencoder), str(F.corrupt_wav(ws / "in.wav")), "-o", str(ws / "in.codes")],
            ["cannot decode audio file", "in.wav"])


# ============================================================================= datasets


@case("train")
def folder_missing(ws):
    return _train(ws, "data=folder", f"data.root={ws / 'nowhere'}"), ["audio folder not found", "nowhere"]


@case("train")
def folder_without_audio(ws):
    F.text_file(ws / "audio" / "readme.txt")
    F.good_wav(ws / "audio" / ".hidden.wav")
    return _train(ws, "data=folder", f"data.root={ws / 'audio'}"), ["no audio files", ".wav, .flac", "audio"]


@case("train")
def folder_with_a_corrupt_file(ws):
    F.good_wav(ws / "audio" / "a.wav")
    F.corrupt_wav(ws / "audio" / "b.wav")
    return _train(ws, "data=folder", f"data.root={ws / 'audio'}"), ["b.wav", "wavegen data check"]


@case("train")
def folder_with_a_truncated_file(ws):
    F.good_wav(ws / "audio" / "a.wav")
    F.truncated_wav(ws / "audio" / "b.wav")
    return _train(ws, "data=folder", f"data.root={ws / 'audio'}"), ["truncated WAV file", "b.wav"]


@case("train")
def folder_of_nan_audio(ws):
    F.float_wav_with(ws / "audio" / "a.wav", float("nan"))
    F.float_wav_with(ws / "audio" / "b.wav", float("nan"))
    return _train(ws, "data=folder", f"data.root={ws / 'audio'}"), ["NaN or infinite", "/audio/"]


def _maestro(ws, rows=None, header=None) -> list[str]:
    root = F.maestro_folder(ws / "maestro", rows=rows, header=header)
    return _train(ws, "data=maestro", f"data.root={root}")


ROW = ["Chopin", "Ballade", "train", "2004", "2004/a.midi", "2004/a.wav", "0.2"]


@case("train")
def maestro_unknown_split(ws):
    return _maestro(ws, [ROW, [*ROW[:2], "dev", *ROW[3:]]]), ["row 2", "unknown split 'dev'", "validation"]


@case("train")
def maestro_duration_not_a_number(ws):
    return _maestro(ws, [ROW, [*ROW[:6], "three"]]), ["row 2", "duration 'three' is not a number"]


@case("train")
def maestro_short_row(ws):
    return _maestro(ws, [ROW, ROW[:4]]), ["row 2", "wrong number of fields"]


@case("train")
def maestro_missing_column(ws):
    header = F.MAESTRO_HEADER[:-1]
    return _maestro(ws, [ROW[:-1]], header=header), ["missing column(s): duration"]


@case("train")
def maestro_missing_audio_file(ws):
    return _maestro(ws, [ROW, [*ROW[:5], "2004/gone.flac", "0.2"]]), ["audio file missing", "gone.flac", "row 2"]


@case("train")
def maestro_without_csv(ws):
    (ws / "maestro").mkdir()
    return _train(ws, "data=maestro", f"data.root={ws / 'maestro'}"), ["metadata not found", "maestro-v3.0.0.csv"]


@case("data")
def data_check_missing_folder(ws):
    return ["data", "check", str(ws / "nowhere")], ["audio folder not found", "nowhere"]


@case("data")
def data_check_folder_without_audio(ws):
    F.text_file(ws / "audio" / "list.txt")
    return ["data", "check", str(ws / "audio")], ["no audio files", "audio"]


@case("data")
def data_check_unknown_dataset(ws):
    return ["data", "check", "maestro_v4"], ["'maestro_v4' is neither a folder nor a data config", "maestro"]


@case("data")
def data_check_malformed_maestro_csv(ws):
    root = F.maestro_folder(ws / "maestro", rows=[ROW, [*ROW[:2], "train", "2004", "x.midi", "", "1"]])
    return ["data", "check", "maestro", f"data.root={root}"], ["row 2", "empty audio_filename"]


# ============================================================================= configs


@case("train")
def config_key_typo(ws):
    return _train(ws, "train.stepz=5"), ["'train.stepz'", "did you mean 'train.steps'", "batch_size, betas"]


@case("train")
def config_model_key_typo(ws):
    return _train(ws, "model.layerz=3"), ["'model.layerz'", "did you mean 'model.layers'", "residual_channels"]


@case("train")
def config_experiment_typo(ws):
    return ["train", "experiment=wavenet_pinao"], ["experiment=wavenet_pinao", "wavenet_piano", "wavenet_debug"]


@case("train")
def config_experiment_transposed_letters(ws):
    return ["train", "experiment=quickstrat"], ["experiment=quickstrat", "did you mean 'quickstart'?"]


@case("train")
def config_section_typo(ws):
    return _train(ws, "trian.steps=5"), ["'trian.steps'", "did you mean 'train.steps'?"]


@case("train")
def config_bare_key_without_its_section(ws):
    return _train(ws, "steps=5"), ["'steps'", "did you mean 'train.steps'?"]


@case("generate")
def generate_recipe_without_that_stage(ws):
    return (["generate", "--recipe", "quickstart", "--stage", "nope", "-o", str(ws / "long.wav")],
            ["recipe 'quickstart' has no generate stage named 'nope'"])


@case("train")
def config_group_option_typo(ws):
    return _train(ws, "model=wavenet/huge"), ["model=wavenet/huge", "wavenet/base", "wavenet/tiny"]


@case("train")
def config_text_for_a_number(ws):
    return _train(ws, "train.lr=1e-3x"), ["'train.lr'", "expects a number", "'1e-3x'"]


@case("train")
def config_text_for_a_boolean(ws):
    return _train(ws, "train.deterministic=maybe"), ["'train.deterministic'", "true or false", "'maybe'"]


@case("train")
def config_absurd_sample_rate(ws):
    return _train(ws, "audio.sample_rate=5"), ["audio.sample_rate=5", "1000..384000"]


@case("train")
def config_unknown_device(ws):
    return _train(ws, "train.device=gpu"), ["train.device", "auto, cpu or cuda", "'gpu'"]


@case("data")
def config_typo_in_data_build(ws):
    return ["data", "build", "data=embedded_debug", "data.minutez=1"], ["'data.minutez'", "did you mean 'data.minutes'"]


@case("eval")
def eval_source_missing(ws):
    return (["eval", "vocoder", str(ws.shared.vocoder), str(ws / "held_out.wav")],
            ["held_out.wav", "neither an audio file, a folder, nor a split"])


@case("recipe")
def recipe_unknown(ws):
    return ["recipe", "run", "piano_wavenett", "--root", str(ws / "recipe")], ["piano_wavenett", "piano_wavenet"]


# ============================================================================= checkpoints


@case("sample")
def checkpoint_missing(ws):
    return ["sample", str(ws / "last.pt"), "-o", str(ws / "out")], ["checkpoint not found", "last.pt"]


@case("sample")
def checkpoint_is_a_run_folder(ws):
    (ws / "run").mkdir()
    return ["sample", str(ws / "run"), "-o", str(ws / "out")], ["is a folder", "checkpoints/last.pt"]


@case("sample")
def checkpoint_truncated(ws):
    cut = F.truncated_copy(ws.shared.wavenet, ws / "cut.pt")
    return ["sample", str(cut), "-o", str(ws / "out")], ["cut.pt", "not a readable wavegen checkpoint"]


@case("sample")
def checkpoint_random_bytes(ws):
    junk = F.random_bytes(ws / "junk.pt")
    return ["sample", str(junk), "-o", str(ws / "out")], ["junk.pt", "not a readable wavegen checkpoint"]


@case("sample")
def checkpoint_text_file(ws):
    text = ws / "notes.pt"
    text.write_text("these are my notes, not weights\n")
    # torch.load's own complaint is a bare "KeyError: 116"; the line must be a whole sentence.
    return ["sample", str(text), "-o", str(ws / "out")], ["notes.pt", "not a readable wavegen checkpoint",
                                                         "not a PyTorch file"]


@case("sample")
def checkpoint_cut_inside_its_archive(ws):
    cut = F.truncated_copy(ws.shared.wavenet, ws / "cut.pt", keep_bytes=700)
    # torch.load's own message runs to five sentences ("...internal miniz error. If you are seeing...").
    return ["sample", str(cut), "-o", str(ws / "out")], ["cut.pt", "is damaged or cut short"]


@case("sample")
def checkpoint_one_weight_edited(ws):
    edited = M.one_weight_changed(ws.shared.wavenet, ws / "edited.pt")
    return ["sample", str(edited), "-o", str(ws / "out")], ["edited.pt", "do not match their checksum"]


@case("vocode")
def checkpoint_one_byte_flipped_inside_a_tensor(ws):
    flipped = M.tensor_byte_flipped(ws.shared.vocoder, ws / "flipped.pt")
    return (["vocode", str(flipped), str(ws.shared.wav), "-o", str(ws / "out.wav")],
            ["flipped.pt", "do not match their checksum"])


@case("sample")
def checkpoint_newer_version(ws):
    newer = M.forged(ws.shared.wavenet, ws / "v3.pt", version=3)
    return ["sample", str(newer), "-o", str(ws / "out")], ["v3.pt", "format version 3", "reads versions 1, 2"]


@case("sample")
def checkpoint_bare_state_dict(ws):
    bare = M.bare_state_dict(ws.shared.wavenet, ws / "weights.pt")
    return ["sample", str(bare), "-o", str(ws / "out")], ["weights.pt", "is not a wavegen checkpoint"]


@case("sample")
def checkpoint_of_a_vocoder_for_sample(ws):
    return (["sample", str(ws.shared.vocoder), "-o", str(ws / "out")],
            ["vocoder.pt", "holds a 'vocoder' model", "needs 'wavenet'"])


@case("sample")
def checkpoint_of_an_autoencoder_for_sample(ws):
    return (["sample", str(ws.shared.autoencoder), "-o", str(ws / "out")],
            ["holds an 'autoencoder' model", "needs 'wavenet'"])


@case("encode")
def checkpoint_of_a_wavenet_for_encode(ws):
    return (["encode", str(ws.shared.wavenet), str(ws.shared.wav), "-o", str(ws / "x.codes")],
            ["wavenet.pt", "holds a 'wavenet' model", "needs 'autoencoder'"])


@case("sample")
def checkpoint_config_does_not_fit_weights(ws):
    forged = M.with_model_config(ws.shared.wavenet, ws / "forged.pt", residual_channels=4)
    return ["sample", str(forged), "-o", str(ws / "out")], ["forged.pt", "weights do not fit"]


@case("sample")
def checkpoint_that_would_run_code(ws):
    evil = M.code_executing_pickle(ws / "evil.pt", marker=ws / "PWNED")
    # The snapshot check proves the marker file was never created.
    return ["sample", str(evil), "-o", str(ws / "out")], ["evil.pt", "not a readable wavegen checkpoint"]


@case("train")
def resume_into_a_run_of_another_model(ws):
    from wavegen.config import compose, to_container

    (ws / "run").mkdir()
    other = to_container(compose(["experiment=wavenet_debug", "model.residual_channels=4"]))
    (ws / "run" / "config.yaml").write_text(yaml.safe_dump(other))
    return _train(ws), ["run", "different 'model' config", "train.run_dir"]


@case("train")
def resume_from_a_newer_checkpoint_version(ws):
    (ws / "run" / "checkpoints").mkdir(parents=True)
    M.forged(ws.shared.wavenet, ws / "run" / "checkpoints" / "last.pt", version=3)
    return _train(ws), ["last.pt", "format version 3"]


@case("train")
def run_dir_is_a_file(ws):
    ws.existing("run")
    return _train(ws), ["train.run_dir", "is a file"]


@case("eval")
def checkpoint_of_a_wavenet_for_eval_vocoder(ws):
    return (["eval", "vocoder", str(ws.shared.wavenet), str(ws.shared.wav)],
            ["wavenet.pt", "holds a 'wavenet' model", "needs 'vocoder'"])


@case("vocoder")
def checkpoint_of_a_wavenet_for_schedule_search(ws):
    return ["vocoder", "search-schedule", str(ws.shared.wavenet)], ["holds a 'wavenet' model", "needs 'vocoder'"]


@case("codes")
def checkpoint_of_a_wavenet_for_codes_dump(ws):
    return (["codes", "dump", str(ws.shared.wavenet), "-o", str(ws / "codeset")],
            ["holds a 'wavenet' model", "needs 'autoencoder' or 'prior'"])


@case("generate")
def checkpoint_of_a_wavenet_as_prior(ws):
    return (["generate", "--prior", str(ws.shared.wavenet), "--level1", str(ws.shared.autoencoder),
             "-o", str(ws / "long.wav"), "--seconds", "0.1"],
            ["wavenet.pt", "holds a 'wavenet' model", "needs 'prior' or 'event_prior'"])


# ============================================================================= existing outputs


@case("sample")
def output_exists_sample(ws):
    ws.existing("samples/sample_000.wav")
    return _sample(ws), ["already exists", "sample_000.wav", "--overwrite"]


@case("sample")
def output_is_a_file_sample(ws):
    out = ws.existing("samples")
    return ["sample", str(ws.shared.wavenet), "-o", str(out)], ["--out must be a folder", "samples"]


@case("encode")
def output_exists_encode(ws):
    out = ws.existing("piano.codes")
    return (["encode", str(ws.shared.autoencoder), str(ws.shared.wav), "-o", str(out)],
            ["already exists", "piano.codes", "--overwrite"])


@case("decode")
def output_exists_decode(ws):
    out = ws.existing("piano.wav")
    return (["decode", str(ws.shared.autoencoder), str(ws.shared.codes_of(ws.shared.autoencoder)), "-o", str(out)],
            ["already exists", "piano.wav", "--overwrite"])


@case("vocode")
def output_exists_vocode(ws):
    out = ws.existing("voc.wav")
    return (["vocode", str(ws.shared.vocoder), str(ws.shared.wav), "-o", str(out)],
            ["already exists", "voc.wav", "--overwrite"])


@case("eval")
def output_exists_eval_json(ws):
    out = ws.existing("metrics.json", b"{}\n")
    return (["eval", "vocoder", str(ws.shared.vocoder), str(ws.shared.wav), "--json", str(out)],
            ["already exists", "metrics.json", "--overwrite"])


@case("codes")
def output_exists_code_set(ws):
    ws.existing("codes1/codeset.json", b'{"earlier": "code set"}\n')
    # Overrides after the option, as users type them (argparse alone would reject this order).
    return (["codes", "dump", str(ws.shared.autoencoder), "-o", str(ws / "codes1"), "data=embedded_debug"],
            ["code set already exists", "codes1", "--overwrite"])


# ============================================================================= code files


def _decode(ws, codes: Path) -> list[str]:
    return ["decode", str(ws.shared.autoencoder), str(codes), "-o", str(ws / "decoded.wav")]


@case("decode")
def codes_missing(ws):
    return _decode(ws, ws / "gone.codes"), ["code file not found", "gone.codes"]


@case("decode")
def codes_truncated(ws):
    cut = F.truncated_copy(ws.shared.codes_of(ws.shared.autoencoder), ws / "cut.codes", keep_fraction=0.9)
    return _decode(ws, cut), ["cut.codes", "truncated"]


@case("decode")
def codes_cut_inside_the_header(ws):
    cut = F.truncated_copy(ws.shared.codes_of(ws.shared.autoencoder), ws / "stub.codes", keep_bytes=40)
    return _decode(ws, cut), ["stub.codes", "truncated", "header"]


@case("decode")
def codes_with_a_flipped_byte(ws):
    bad = F.flipped_copy(ws.shared.codes_of(ws.shared.autoencoder), ws / "flip.codes")
    return _decode(ws, bad), ["flip.codes", "checksum mismatch"]


@case("decode")
def codes_not_a_code_file(ws):
    return _decode(ws, F.random_bytes(ws / "noise.codes")), ["noise.codes", "wrong magic bytes"]


@case("decode")
def decode_unknown_backend(ws):
    argv = _decode(ws, ws.shared.codes_of(ws.shared.autoencoder)) + ["--backend", "fast"]
    return argv, ["--backend", "auto, reference, cpu, cuda", "'fast'"]


@case("generate")
def generate_unknown_backend(ws):
    return (["generate", "--prior", str(ws.shared.wavenet), "--level1", str(ws.shared.autoencoder),
             "-o", str(ws / "long.wav"), "--seconds", "0.1", "--backend", "fast"],
            ["--backend", "auto, reference, cpu, cuda", "'fast'"])


@case("decode")
def codes_forged_length(ws):
    source = ws.shared.codes_of(ws.shared.autoencoder)
    forged = F.forged_code_file(source, ws / "long.codes", num_samples=10**9)
    return _decode(ws, forged), ["long.codes", "cannot stand for 1000000000 samples"]


@case("decode")
def codes_forged_zero_run(ws):
    source = ws.shared.codes_of(ws.shared.autoencoder)
    payload = bytearray(F.code_file_payload(source))
    channels = F.code_file_channels(source)
    payload[channels] = 0  # the first event's run length (after its C index bytes): zero frames
    forged = F.forged_code_file(source, ws / "zero.codes", payload=bytes(payload))
    return _decode(ws, forged), ["zero.codes", "run length 0"]


@case("decode")
def codes_from_another_model(ws):
    other = ws.shared.codes_of(ws.shared.other_autoencoder)
    return _decode(ws, other), ["autoencoder_other.codes", "written by another model"]


# ============================================================================= mel arrays (vocode)


def _vocode(ws, mel: Path) -> list[str]:
    return ["vocode", str(ws.shared.vocoder), str(mel), "-o", str(ws / "voc.wav")]


@case("vocode")
def mel_one_dimensional(ws):
    return _vocode(ws, F.mel_npy(ws / "flat.npy", (80,))), ["flat.npy", "shape [n_mels, frames]", "(80,)"]


@case("vocode")
def mel_transposed(ws):
    return _vocode(ws, F.mel_npy(ws / "t.npy", (40, 80))), ["t.npy", "40 mel bins", "n_mels=80", "transposed"]


@case("vocode")
def mel_wrong_bin_count(ws):
    return _vocode(ws, F.mel_npy(ws / "m128.npy", (128, 40))), ["m128.npy", "128 mel bins", "n_mels=80"]


@case("vocode")
def mel_batch_of_two(ws):
    return _vocode(ws, F.mel_npy(ws / "batch.npy", (2, 80, 40))), ["batch.npy", "(2, 80, 40)"]


@case("vocode")
def mel_with_nan(ws):
    return _vocode(ws, F.mel_npy(ws / "nan.npy", (80, 40), nan=True)), ["nan.npy", "NaN or infinite"]


@case("vocode")
def mel_in_decibels(ws):
    return _vocode(ws, F.mel_npy(ws / "db.npy", (80, 40), fill=-100.0)), ["db.npy", "not decibels"]


@case("vocode")
def mel_with_wrong_hop_sidecar(ws):
    mel = F.mel_npy(ws / "side.npy", (80, 40))
    (ws / "side.json").write_text(json.dumps({"sample_rate": 16000, "hop_length": 300}))
    return _vocode(ws, mel), ["side.json", "hop_length=300", "hop_length=256"]


@case("vocode")
def mel_input_missing(ws):
    return _vocode(ws, ws / "gone.npy"), ["input not found", "gone.npy"]


@case("vocode")
def checkpoint_of_a_wavenet_for_vocode(ws):
    return (["vocode", str(ws.shared.wavenet), str(F.mel_npy(ws / "m.npy", (80, 40))), "-o", str(ws / "v.wav")],
            ["holds a 'wavenet' model", "needs 'vocoder'"])


# ============================================================================= generation arguments


@case("sample")
def sample_negative_seconds(ws):
    return _sample(ws, "--seconds", "-1"), ["--seconds", "-1"]


@case("sample")
def sample_nan_seconds(ws):
    return _sample(ws, "--seconds", "nan"), ["--seconds", "nan"]


@case("sample")
def sample_negative_temperature(ws):
    return _sample(ws, "--temperature", "-0.5"), ["--temperature", "-0.5"]


@case("sample")
def sample_unknown_backend(ws):
    return _sample(ws, "--backend", "fast"), ["--backend", "auto, reference, cpu, cuda", "'fast'"]


@case("sample")
def sample_zero_chunk(ws):
    return _sample(ws, "--chunk", "0"), ["--chunk", "at least 1"]


@case("sample")
def device_unknown(ws):
    return _sample(ws, "--device", "tpu"), ["unknown device 'tpu'", "cpu, cuda"]


@case("encode")
def device_that_is_not_there(ws):
    argv = ["encode", str(ws.shared.autoencoder), str(ws.shared.wav), "-o", str(ws / "x.codes"), "--device", "cuda:99"]
    return argv, ["'cuda:99'"]


@case("train")
def config_zero_checkpoint_interval(ws):
    return _train(ws, "train.checkpoint_every=0"), ["train.checkpoint_every", "at least 1", "got 0"]


def snapshot(*roots: Path) -> dict[str, tuple]:
    """{path: (kind, size, mtime_ns, bytes)} of everything under ``roots``: any change shows."""
    state = {}
    for root in roots:
        for path in sorted([root, *root.rglob("*")]):
            st = path.lstat()
            if path.is_dir():
                state[str(path)] = ("dir",)
            else:
                state[str(path)] = ("file", st.st_size, st.st_mtime_ns, path.read_bytes())
    return state


# ============================================================================= sampling controls, tonality


@case("sample")
def sample_top_p_out_of_range(ws):
    return _sample(ws, "--top-p", "1.5"), ["--top-p", "(0, 1]", "1.5"]


@case("sample")
def sample_mixture_temperature_for_a_categorical_model(ws):
    return _sample(ws, "--mixture-temperature", "0.5"), ["mixture temperature", "categorical"]


@case("eval")
def tonality_file_missing(ws):
    return ["eval", "tonality", str(ws / "take.wav")], ["audio file not found", "take.wav"]


@case("eval")
def tonality_corrupt_prompt(ws):
    return (["eval", "tonality", str(ws.shared.wav), "--prompt", str(F.corrupt_wav(ws / "prompt.wav"))],
            ["cannot decode audio file", "prompt.wav"])


@case("eval")
def output_exists_tonality_json(ws):
    out = ws.existing("tonality.json", b"{}\n")
    return (["eval", "tonality", str(ws.shared.wav), "--json", str(out)], ["already exists", "tonality.json", "--overwrite"])
