"""Checkpoint format version 2: the weights carry a SHA-256 that loading verifies."""

from __future__ import annotations

import io

import pytest
import torch

from wavegen.errors import WavegenError
from wavegen import checkpoint as C
from wavegen.train.checkpoint import latest_checkpoint, save_checkpoint


def _state(seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    weights = {"conv.weight": torch.randn(4, 3, 2, generator=g), "conv.bias": torch.randn(4, generator=g),
               "head.scale": torch.randn(3, generator=g).to(torch.bfloat16)}
    return {"family": "wavenet", "model_config": {}, "audio": {}, "model": weights,
            "ema": {k: v.clone() for k, v in weights.items()}, "step": 0, "extra": {}, "config": {}}


def test_the_digest_covers_names_dtypes_shapes_and_values_but_not_order_or_pickling():
    weights = _state()["model"]
    digest = C.weights_digest(weights)
    assert C.weights_digest(dict(reversed(list(weights.items())))) == digest
    # A pickle round trip (another byte layout on disk) leaves it unchanged.
    buf = io.BytesIO()
    torch.save(weights, buf)
    assert C.weights_digest(torch.load(io.BytesIO(buf.getvalue()), weights_only=True)) == digest
    changed = [
        {**weights, "conv.bias": weights["conv.bias"].clone().index_fill_(0, torch.tensor([2]), 0.5)},
        {**weights, "conv.bias": weights["conv.bias"].double()},
        {**weights, "conv.weight": weights["conv.weight"].reshape(4, 6)},
        {("conv.b" if k == "conv.bias" else k): v for k, v in weights.items()},
    ]
    assert len({C.weights_digest(w) for w in changed} | {digest}) == 5


def test_saved_checkpoints_are_version_2_with_checksums_of_model_and_ema(tmp_path):
    path = save_checkpoint(tmp_path, _state(), 3)
    raw = torch.load(path, weights_only=True)
    assert raw["version"] == 2 == C.VERSION
    assert raw["checksums"] == {"model": C.weights_digest(raw["model"]), "ema": C.weights_digest(raw["ema"])}
    assert C.load_checkpoint(path)["step"] == 3


@pytest.mark.parametrize("block", ["model", "ema"])
def test_one_changed_weight_value_is_refused_in_one_line(tmp_path, block):
    path = save_checkpoint(tmp_path, _state(), 3)
    raw = torch.load(path, weights_only=True)
    raw[block]["conv.weight"][1, 2, 0] += 1e-6  # below any loss curve's noise, still another model
    torch.save(raw, path)
    with pytest.raises(C.DamagedCheckpoint) as info:
        C.load_checkpoint(path)
    assert str(info.value) == f"{path}: the weights do not match their checksum (the file is damaged or was edited)"


def test_one_flipped_byte_inside_the_tensor_data_is_refused(tmp_path):
    state = _state()
    path = save_checkpoint(tmp_path, state, 3)
    data = bytearray(path.read_bytes())
    raw = state["model"]["conv.weight"].contiguous().view(-1).view(torch.uint8).numpy().tobytes()
    at = data.find(raw)
    assert at >= 0
    data[at + 5] ^= 0x10
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(bytes(data))
    # PyTorch itself reads the damaged file without complaint...
    assert not torch.equal(torch.load(damaged, weights_only=True)["model"]["conv.weight"], state["model"]["conv.weight"])
    # ...the checksum does not.
    with pytest.raises(WavegenError, match="do not match their checksum"):
        C.load_checkpoint(damaged)


def test_a_removed_checksum_is_refused(tmp_path):
    path = save_checkpoint(tmp_path, _state(), 3)
    raw = torch.load(path, weights_only=True)
    del raw["checksums"]
    torch.save(raw, path)
    with pytest.raises(WavegenError, match="have no checksum"):
        C.load_checkpoint(path)


@pytest.mark.parametrize("content, reason", [
    (b"", "the file is empty"),
    (b"step: 3\nmodel: my weights\n", "it is not a PyTorch file"),
    ("zip", "the file is damaged or cut short"),
])
def test_unreadable_files_get_one_whole_sentence(tmp_path, content, reason):
    good = save_checkpoint(tmp_path, _state(), 3)
    path = tmp_path / "bad.pt"
    path.write_bytes(good.read_bytes()[:700] if content == "zip" else content)
    with pytest.raises(C.UnreadableCheckpoint) as info:
        C.load_checkpoint(path)
    message = str(info.value)
    assert message == f"{path} is not a readable wavegen checkpoint: {reason}" or (
        reason == "it is not a PyTorch file" and message.startswith(f"{path} is not a readable wavegen checkpoint: "
                                                                      f"{reason}"))
    assert "KeyError" not in message and "miniz" not in message


def test_version_1_files_still_load_with_one_warning_line(tmp_path, capsys):
    state = {"format": C.FORMAT, "version": 1, **_state()}
    path = tmp_path / "old.pt"
    torch.save(state, path)  # what wavegen wrote before checksums
    C._WARNED_UNVERIFIED.discard(str(path))
    for _ in range(3):
        assert C.load_checkpoint(path)["version"] == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [f"warning: {path} is a version-1 checkpoint without weight checksums, so it loads unverified "
                     "(checkpoints written from now on carry them)"]


def test_a_resume_passes_over_a_damaged_newest_step_file(tmp_path):
    save_checkpoint(tmp_path, _state(), 3)
    newest = save_checkpoint(tmp_path, _state(1), 6)
    raw = torch.load(newest, weights_only=True)
    raw["model"]["conv.bias"][0] = 0.0
    torch.save(raw, newest)
    (tmp_path / "last.pt").unlink()
    assert latest_checkpoint(tmp_path).name == "step_00000003.pt"
