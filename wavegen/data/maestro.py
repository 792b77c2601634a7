"""MAESTRO v3: piano performances listed in ``maestro-v3.0.0.csv`` with their own splits.

The CSV's ``split`` column is used as is (the dataset guarantees no composition
appears in two splits). Audio is 44.1/48 kHz stereo; :func:`wavegen.audio.io.read_audio`
turns it into mono at the configured rate when the segment sampler decodes it.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Mapping

from wavegen.data.files import expand_path
from wavegen.data.items import SPLITS, AudioItem, assign_file_ids
from wavegen.errors import WavegenError

CSV_NAME = "maestro-v3.0.0.csv"
REQUIRED_COLUMNS = (
    "canonical_composer",
    "canonical_title",
    "split",
    "year",
    "midi_filename",
    "audio_filename",
    "duration",
)


def read_maestro_csv(csv_path: Path) -> list[dict]:
    """Parse and validate the metadata CSV -> one dict per row (plus its CSV line number)."""
    if not csv_path.is_file():
        raise WavegenError(f"MAESTRO metadata not found: {csv_path} (set data.root to the folder holding {csv_path.name})")
    try:
        with open(csv_path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            header = [h.strip() for h in (reader.fieldnames or [])]
            missing = [c for c in REQUIRED_COLUMNS if c not in header]
            if missing:
                raise WavegenError(f"{csv_path} is missing column(s): {', '.join(missing)}")
            reader.fieldnames = header
            rows = []
            for row_number, row in enumerate(reader, start=1):
                rows.append(_check_row(csv_path, row_number, reader.line_num, row))
    except UnicodeDecodeError as exc:
        raise WavegenError(f"{csv_path} is not a UTF-8 CSV file ({exc.reason})") from None
    except csv.Error as exc:
        raise WavegenError(f"{csv_path} is not a valid CSV file: {exc}") from None
    if not rows:
        raise WavegenError(f"{csv_path} lists no recordings")
    return rows


def _check_row(csv_path: Path, row_number: int, line: int, row: dict) -> dict:
    where = f"{csv_path.name} row {row_number} (line {line})"
    if None in row or any(row.get(c) is None for c in REQUIRED_COLUMNS):
        raise WavegenError(f"{where}: wrong number of fields")
    row = {k: (v or "").strip() for k, v in row.items()}
    if row["split"] not in SPLITS:
        raise WavegenError(f"{where}: unknown split '{row['split']}' (expected one of: {', '.join(SPLITS)})")
    if not row["audio_filename"]:
        raise WavegenError(f"{where}: empty audio_filename")
    try:
        duration = float(row["duration"])
    except ValueError:
        raise WavegenError(f"{where}: duration '{row['duration']}' is not a number") from None
    if not duration > 0:
        raise WavegenError(f"{where}: duration must be positive, got {row['duration']}")
    row["duration"] = duration
    row["row"] = row_number
    return row


def load_maestro(data_cfg: Mapping[str, Any], require_audio: bool = True) -> list[AudioItem]:
    """Items of a MAESTRO v3 folder (``data.root``), optionally limited to ``data.splits``.

    With ``require_audio`` (training), any listed audio file that does not exist
    is an error naming the first one and the count; ``wavegen data check`` turns
    it off to report missing files alongside unreadable ones.
    """
    root = expand_path(data_cfg["root"])
    if not root.is_dir():
        raise WavegenError(f"MAESTRO folder not found: {root} (set data.root or MAESTRO_ROOT)")
    csv_path = root / str(data_cfg.get("csv", CSV_NAME) or CSV_NAME)
    rows = read_maestro_csv(csv_path)
    wanted = set(data_cfg.get("splits") or SPLITS)
    unknown = wanted - set(SPLITS)
    if unknown:
        raise WavegenError(f"data.splits has unknown split(s) {sorted(unknown)} (expected: {', '.join(SPLITS)})")
    items, missing = [], []
    for row in rows:
        if row["split"] not in wanted:
            continue
        path = root / row["audio_filename"]
        if not path.is_file():
            missing.append((row, path))
        piece = f"{row['canonical_composer']} / {row['canonical_title']}"
        items.append(AudioItem(path=path, piece=piece, split=row["split"], duration=row["duration"]))
    if require_audio and missing:
        row, path = missing[0]
        raise WavegenError(
            f"MAESTRO audio file missing: {path} (listed in {csv_path.name} row {row['row']}; "
            f"{len(missing)} of {len(items)} files missing)"
        )
    limit = data_cfg.get("max_files_per_split")
    if limit:
        # Deterministic subset for quick experiments: the first files of each split by path.
        kept: list[AudioItem] = []
        for split in SPLITS:
            kept += sorted((it for it in items if it.split == split), key=lambda it: str(it.path))[: int(limit)]
        items = kept
    return assign_file_ids(items)
