"""The .codes file format: exact round trips, atomic writes, and every corruption rejected in one line."""

import struct
import zlib

import pytest
import torch

from wavegen.codes.codefile import MAGIC, CodeFile, pack_code_file, read_code_file, unpack_code_file, write_code_file
from wavegen.codes.events import Events
from wavegen.errors import WavegenError

FINGERPRINT = bytes(range(16))
LEVELS = [15, 15, 8, 5]
HOP = 64


def slow_codes(frames=500, seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    codes = torch.zeros(len(LEVELS), frames, dtype=torch.long)
    for f in range(frames):
        if f == 0 or torch.rand(1, generator=g).item() < 0.1:
            codes[:, f] = torch.stack([torch.randint(0, level, (1,), generator=g)[0] for level in LEVELS])
        else:
            codes[:, f] = codes[:, f - 1]
    # One run longer than 127 frames, so some run length needs a two-byte varint.
    codes[:, 200:400] = codes[:, 200:201]
    return codes


def make_code(frames=500, num_samples=None) -> CodeFile:
    num_samples = frames * HOP - 17 if num_samples is None else num_samples
    return CodeFile.from_codes(slow_codes(frames), LEVELS, HOP, 16000, num_samples, FINGERPRINT)


def with_crcs(data: bytes) -> bytes:
    """Recompute both checksums, so a test can reach the checks behind them."""
    channels = struct.unpack_from("<H", data, 68)[0]
    header_size = 78 + channels
    payload = data[header_size:]
    head = bytearray(data[: header_size - 4])
    head[70 + channels : 74 + channels] = struct.pack("<I", zlib.crc32(payload))
    return bytes(head) + struct.pack("<I", zlib.crc32(bytes(head))) + payload


def test_round_trip_is_exact(tmp_path):
    code = make_code()
    path = write_code_file(tmp_path / "a.codes", code)
    back = read_code_file(path, fingerprint=FINGERPRINT)
    assert torch.equal(back.codes(), slow_codes())
    assert back.events == code.events
    assert (back.sample_rate, back.hop, back.levels, back.num_samples, back.fingerprint) == (
        16000, HOP, LEVELS, 500 * HOP - 17, FINGERPRINT)
    # The payload is the events: C bytes + a short varint each, far less than the frames.
    assert path.stat().st_size < 82 + len(code.events) * (len(LEVELS) + 2)
    assert len(code.events) < 100


def test_write_refuses_existing_output_and_leaves_no_temporary_files(tmp_path):
    path = tmp_path / "a.codes"
    write_code_file(path, make_code())
    before = path.read_bytes()
    with pytest.raises(WavegenError, match="already exists"):
        write_code_file(path, make_code(frames=100))
    assert path.read_bytes() == before
    write_code_file(path, make_code(frames=100), overwrite=True)
    assert read_code_file(path).frames == 100
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.codes"]


def test_writer_refuses_inconsistent_codes(tmp_path):
    bad_values = make_code()
    bad_values.events.values[3, 2] = 8  # channel 2 has 8 levels: 0..7
    bad_length = make_code(num_samples=500 * HOP + 1)
    for code, message in [(bad_values, "outside the levels"), (bad_length, "cannot stand for")]:
        with pytest.raises(WavegenError, match=message):
            write_code_file(tmp_path / "x.codes", code)
    assert not any(tmp_path.iterdir()), "a refused write must leave nothing behind"


def _corruptions():
    good = pack_code_file(make_code())
    header_size = 78 + len(LEVELS)
    cases = []
    # Truncated at several points: inside the magic, the fixed header, the levels, the CRCs, the payload.
    for cut in [3, 20, 69, 72, header_size - 1, header_size + 5, len(good) // 2, len(good) - 1]:
        cases.append((f"truncated at {cut}", good[:cut], "truncated|wrong magic"))
    cases.append(("empty file", b"", "wrong magic"))
    cases.append(("extra bytes", good + b"\x00", "unexpected bytes"))
    # A flipped byte anywhere is caught by a checksum (or the check in front of it).
    for pos, why in [(12, "header checksum"), (30, "header checksum"), (54, "header checksum"),
                     (header_size + 1, "payload checksum"), (len(good) - 2, "payload checksum")]:
        flipped = bytearray(good)
        flipped[pos] ^= 0x40
        cases.append((f"flipped byte {pos}", bytes(flipped), why))
    cases.append(("wrong magic", b"RIFF" + good[4:], "wrong magic"))
    cases.append(("a WAV file", b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(64), "wrong magic"))
    cases.append(("wrong version", good[:8] + struct.pack("<H", 2) + good[10:], "version 2 is not supported"))
    cases.append(("header size", with_crcs(good[:10] + struct.pack("<H", 99) + good[12:]), "header size"))
    # Checksums recomputed, so only the semantic checks can catch these.
    bad_level = bytearray(good)
    bad_level[70] = 1
    cases.append(("a channel with one level", with_crcs(bytes(bad_level)), "at least 2 levels"))
    code = make_code()
    code.events.values[5, 3] = 5  # channel 3 has 5 levels: 0..4
    cases.append(("index out of range", with_crcs(pack_code_file(code, validate=False)), "has only 5 levels"))
    zero_run = make_code()
    zero_run.events.lengths[3] += zero_run.events.lengths[2]  # keeps the total, so only the zero run is wrong
    zero_run.events.lengths[2] = 0
    cases.append(("zero run", with_crcs(pack_code_file(zero_run, validate=False)), "run length 0"))
    frames = bytearray(good)
    frames[28:36] = struct.pack("<Q", 499)
    frames[20:28] = struct.pack("<Q", 499 * HOP)
    cases.append(("frame count", with_crcs(bytes(frames)), "add up to"))
    samples = bytearray(good)
    samples[20:28] = struct.pack("<Q", 500 * HOP + 1)
    cases.append(("sample count", with_crcs(bytes(samples)), "cannot stand for"))
    events = bytearray(good)
    events[36:44] = struct.pack("<Q", len(make_code().events) + 1)
    cases.append(("event count", with_crcs(bytes(events)), "payload ends inside"))
    return cases


@pytest.mark.parametrize("name,data,message", _corruptions(), ids=[c[0] for c in _corruptions()])
def test_every_corrupt_code_file_is_rejected_in_one_line(tmp_path, name, data, message):
    path = tmp_path / "bad.codes"
    path.write_bytes(data)
    with pytest.raises(WavegenError, match=message) as info:
        read_code_file(path)
    text = str(info.value)
    assert "\n" not in text and str(path) in text


def test_wrong_fingerprint_is_rejected(tmp_path):
    path = write_code_file(tmp_path / "a.codes", make_code())
    other = bytes(16)
    with pytest.raises(WavegenError, match="another model") as info:
        read_code_file(path, fingerprint=other)
    assert FINGERPRINT.hex() in str(info.value)
    assert read_code_file(path, fingerprint=FINGERPRINT).frames == 500


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(WavegenError, match="not found"):
        read_code_file(tmp_path / "nope.codes")
    with pytest.raises(WavegenError, match="folder"):
        read_code_file(tmp_path)
    with pytest.raises(WavegenError, match="folder"):
        write_code_file(tmp_path, make_code())


def test_magic_identifies_the_format():
    data = pack_code_file(make_code())
    assert data.startswith(MAGIC) and unpack_code_file(data).frames == 500
    empty = CodeFile(16000, HOP, LEVELS, 0, FINGERPRINT, Events(torch.zeros(0, 4, dtype=torch.long),
                                                                torch.zeros(0, dtype=torch.long)))
    assert unpack_code_file(pack_code_file(empty)).frames == 0
