"""A vocoder against Griffin-Lim on compositions and pianos it never trained on.

    python benchmarks/vocoder_other_pianos.py CKPT_OR_NAME [--pieces 3] [--seconds 10] [--steps 6]

Compositions: the first ``--pieces`` corpus pieces that the embedded dataset (default
spec, seed 0) does not select, so neither split holds them. Pianos: every General MIDI
SoundFont found in ``--soundfonts`` (default: the .sf2/.sf3 files under
/usr/share/sounds), rendered by fluidsynth, plus the built-in synthesiser. The training
data holds only the built-in piano and FluidR3, so any other SoundFont's piano is
unseen (Debian: ``timgm6mb-soundfont``, ``musescore-general-soundfont-small``). Each
row: ``--seconds`` from ``--offset`` of each piece, MR-STFT / LSD / log-mel L1 / peak
share from :mod:`wavegen.metrics`, the vocoder at ``--steps`` (seed 0) and Griffin-Lim
(64 iterations) on the same mel. Prints a markdown table; ``--json`` saves the rows.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def unseen_pieces(count: int) -> list[str]:
    from wavegen.data.embedded import EmbeddedSpec, candidate_order, select_performances

    spec = EmbeddedSpec(root="unused")
    chosen = {p.piece for p in select_performances(spec)}
    return [piece for piece in candidate_order(spec) if piece not in chosen][:count]


def render_unseen(pieces: list[str], soundfont, sample_rate: int, hop: int, seconds: float, offset: float):
    """Tensor[N, T]: ``seconds`` from ``offset`` of each piece (performed as the embedded set would),
    rendered by the built-in synthesiser (``soundfont`` None) or fluidsynth with ``soundfont``;
    T = ``seconds`` rounded down to whole ``hop``s, zero-padded where a piece ends sooner."""
    import numpy as np
    import torch

    from wavegen.data.embedded import EmbeddedSpec, _piece_key, _rng
    from wavegen.data.renderer import render_builtin, render_fluidsynth
    from wavegen.data.scores import parse_corpus_piece, perform

    spec = EmbeddedSpec(root="unused")
    clips = []
    for piece in pieces:
        performance = perform(parse_corpus_piece(piece), piece, _rng(spec.seed, 2, _piece_key(piece)),
                              default_tempo_bpm=spec.tempo_bpm, tempo_jitter=spec.tempo_jitter,
                              max_seconds=offset + seconds + 2)
        if soundfont is None:
            audio = render_builtin(performance.notes, sample_rate, seed=_piece_key(piece))
        else:
            os.environ["WAVEGEN_SOUNDFONT"] = str(soundfont)
            audio = render_fluidsynth(performance.notes, sample_rate)
        start = int(offset * sample_rate)
        length = int(seconds * sample_rate) // hop * hop
        clip = np.zeros(length, dtype=np.float32)
        piece_audio = audio[start: start + length]
        clip[: piece_audio.shape[0]] = piece_audio
        clips.append(torch.from_numpy(clip))
    return torch.stack(clips)


def soundfonts(folder: str) -> list[Path]:
    found = sorted({p.resolve() for p in Path(folder).rglob("*") if p.suffix.lower() in (".sf2", ".sf3")})
    return [p for p in found if p.is_file()]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", help="a vocoder checkpoint or the name of a shipped one")
    p.add_argument("--tag", default="", help="a label for this run's vocoder rows")
    p.add_argument("--pieces", type=int, default=3)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--offset", type=float, default=5.0)
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--mel-projection", type=int, default=None, help="default: the model's stored count")
    p.add_argument("--soundfonts", default="/usr/share/sounds")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json")
    args = p.parse_args()

    import numpy as np
    import torch

    import wavegen
    from wavegen.audio.dsp import griffin_lim
    from wavegen.metrics import log_mel_l1, log_spectral_distance, multi_resolution_stft_distance, peak_energy_share

    torch.set_num_threads(args.threads)
    vocoder = wavegen.load(args.model)
    cfg = vocoder.audio
    pieces = unseen_pieces(args.pieces)
    pianos = [("built-in", None)] + [(sf.stem, sf) for sf in soundfonts(args.soundfonts)]
    rows = []
    for piano, path in pianos:
        x = render_unseen(pieces, path, cfg.sample_rate, cfg.hop_length, args.seconds, args.offset)
        clips = list(x)
        mel = torch.stack([vocoder.mel(c) for c in clips])
        out = vocoder.vocode(mel, steps=args.steps, generator=torch.Generator().manual_seed(0),
                             mel_projection=args.mel_projection)
        torch.manual_seed(0)
        gl = griffin_lim(mel, cfg)[:, : x.shape[-1]]
        for name, y in ((f"vocoder {args.steps} steps{args.tag}", out), ("griffin-lim", gl)):
            rows.append({
                "piano": piano, "system": name,
                "log_mel_l1": float(log_mel_l1(x, y, cfg)),
                "mr_stft": float(multi_resolution_stft_distance(x, y)),
                "lsd_db": float(log_spectral_distance(x, y)),
                "peak_share": float(np.mean([peak_energy_share(c) for c in y])),
                "reference_peak_share": float(np.mean([peak_energy_share(c) for c in x])),
            })
        print(f"{piano}: done", file=sys.stderr, flush=True)
    print(f"{len(pieces)} unseen piece(s) × {args.seconds:g} s per piano: {', '.join(pieces)}")
    print("| piano | system | log-mel L1 | MR-STFT | LSD dB | peak share (input) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['piano']} | {r['system']} | {r['log_mel_l1']:.3f} | {r['mr_stft']:.3f} | {r['lsd_db']:.2f} | "
              f"{r['peak_share']:.3f} ({r['reference_peak_share']:.3f}) |")
    if args.json:
        Path(args.json).write_text(json.dumps({"pieces": pieces, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
