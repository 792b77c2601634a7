"""Priors over code frames: joint indices, code sets and their sampler, the prior models and tasks."""

import math

import pytest
import torch

from wavegen.config import compose
from wavegen.errors import WavegenError
from wavegen.hierarchy.codeset import CodeSetSampler, CodeSetWriter, load_codeset
from wavegen.codes.joint import from_joint, joint_classes, to_joint
from wavegen.models.prior import CodeAutoencoder, CodePrior, PriorConfig
from wavegen.tasks import build_task


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_joint_index_round_trip_and_order():
    levels = [5, 3, 4]
    codes = torch.stack(torch.meshgrid(*[torch.arange(v) for v in levels], indexing="ij")).reshape(3, -1)
    joint = to_joint(codes, levels)
    assert joint.tolist() == list(range(joint_classes(levels)))  # mixed radix, last channel fastest
    assert torch.equal(from_joint(joint, levels), codes)
    batch = torch.randint(0, 3, (2, 3, 7))
    assert torch.equal(from_joint(to_joint(batch, levels), levels), batch)


def test_prior_config_refuses_owned_options_and_huge_softmaxes():
    with pytest.raises(WavegenError, match="wavenet.classes is set by the prior"):
        PriorConfig.from_mapping({"levels": [5, 5], "wavenet": {"classes": 25}})
    with pytest.raises(WavegenError, match="joint classes"):
        PriorConfig.from_mapping({"levels": [15, 15, 15, 15]})
    with pytest.raises(WavegenError, match="unknown prior option"):
        PriorConfig.from_mapping({"levels": [5, 5], "levelz": 3})


def _codeset(tmp_path, levels=(5, 5, 5), frames=(300, 170), hop=16):
    writer = CodeSetWriter(tmp_path / "cs", list(levels), hop, 16000, bytes(16), "test")
    gen = torch.Generator().manual_seed(0)
    for i, f in enumerate(frames):
        # Slowly varying codes: runs of 1..8 frames, like a slowness-trained encoder's.
        runs = torch.randint(1, 9, (f,), generator=gen)
        values = torch.stack([torch.randint(0, v, (f,), generator=gen) for v in levels])
        codes = values.repeat_interleave(runs, dim=1)[:, :f]
        writer.add("train" if i else "validation", f"piece{i}", codes, f * hop)
    return writer.finish()


def test_codeset_round_trip_and_refusals(tmp_path):
    cs = _codeset(tmp_path)
    again = load_codeset(tmp_path / "cs")
    assert again.levels == [5, 5, 5] and again.hop == 16 and again.frame_rate == 1000
    seqs = again.sequences("train")
    assert len(seqs) == 1 and seqs[0].shape == (3, 170)
    with pytest.raises(WavegenError, match="already exists"):
        CodeSetWriter(tmp_path / "cs", [5], 16, 16000, bytes(16))
    with pytest.raises(WavegenError, match="no code set"):
        load_codeset(tmp_path / "nothing")


def test_codes_stats_reports_each_splits_event_rate(tmp_path, capsys):
    import json

    from wavegen.cli import main
    from wavegen.codes.events import codes_to_events

    cs = _codeset(tmp_path)
    assert main(["codes", "stats", str(cs.root), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    for split in ("train", "validation"):
        (seq,) = cs.sequences(split)
        events = len(codes_to_events(seq))
        assert report[split]["events"] == events
        assert report[split]["events_per_second"] == pytest.approx(events / (seq.shape[-1] / cs.frame_rate))
    assert main(["codes", "stats", str(tmp_path / "nothing")]) != 0
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("error: no code set")


def test_codeset_sampler_is_a_pure_function_of_seed_step_rank(tmp_path):
    cs = _codeset(tmp_path)
    seqs = cs.sequences("train") + cs.sequences("validation")
    a = CodeSetSampler(seqs, cs.levels, window=32, batch_size=4, seed=1)
    b = CodeSetSampler(seqs, cs.levels, window=32, batch_size=4, seed=1)
    assert torch.equal(a.batch(5)["tokens"], b.batch(5)["tokens"])
    assert not torch.equal(a.batch(5)["tokens"], a.batch(6)["tokens"])
    other_rank = CodeSetSampler(seqs, cs.levels, window=32, batch_size=4, seed=1, rank=1, world_size=2)
    assert not torch.equal(a.batch(5)["tokens"], other_rank.batch(5)["tokens"])
    batch = a.batch(0)
    assert batch["tokens"].shape == (4, 33) and batch["codes"].shape == (4, 3, 33)
    # Tokens are the joint index of the codes, frame for frame.
    assert torch.equal(batch["tokens"][:, 1:], to_joint(batch["codes"][:, :, 1:], cs.levels))
    assert len(a.validation_batches()) >= 1


def test_level2_autoencoder_shapes_and_encoding():
    cfg = PriorConfig.from_mapping(compose(["model=prior/level2_debug"]).model)
    model = CodeAutoencoder(cfg)
    codes = torch.randint(0, 5, (2, 3, 17))
    upper = model.encode(codes)
    assert upper.shape == (2, 2, math.ceil(17 / 4)) and int(upper.max()) < 5
    tokens = to_joint(torch.randint(0, 5, (2, 3, 13)), cfg.levels)
    logits = model(tokens, torch.randint(0, 5, (2, 3, 13)))
    assert logits.shape == (2, 125, 12)


@pytest.mark.parametrize("model_name,extra", [("prior/debug", ["model.hop=16", "model.levels=[5,5,5]"]),
                                              ("prior/level2_debug", [])])
def test_prior_task_learns_a_code_set(tmp_path, model_name, extra):
    """A few dozen steps on a small code set must beat the uniform distribution clearly."""
    cs = _codeset(tmp_path)
    cfg = compose([f"model={model_name}", *extra, f"codeset={cs.root}", "train.segment_length=32",
                   "train.batch_size=8"])
    task = build_task(cfg)
    sampler = task.build_sampler(cfg, "train")
    torch.manual_seed(0)
    opt = torch.optim.Adam(task.model.parameters(), lr=3e-3)
    val = sampler.validation_batches(2)
    before = task.validate(task.model, val)["val_loss"]
    for step in range(40):
        loss, metrics = task.loss(task.model, sampler.batch(step))
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = task.validate(task.model, val)["val_loss"]
    assert before == pytest.approx(math.log(125), rel=0.1)  # an untrained softmax is near uniform
    # Runs of repeated frames are predictable: the model must find that out.
    assert after < before - 0.5
    assert task.model_config()["codes_fingerprint"] == bytes(16).hex()


def test_prior_task_refuses_a_mismatched_code_set(tmp_path):
    cs = _codeset(tmp_path)
    cfg = compose(["model=prior/debug", f"codeset={cs.root}"])
    task = build_task(cfg)
    with pytest.raises(WavegenError, match="set model.levels and model.hop to match"):
        task.build_sampler(cfg, "train")


def test_level2_autoencoder_on_audio_trains_against_level1_codes(tmp_path):
    """The alternative level 2: upper codes from the audio, level-1 codes (the targets) from level 1."""
    from wavegen.hierarchy.randomised import build_random_hierarchy

    level1 = build_random_hierarchy(tmp_path, "debug")["level1"]
    cfg = compose(["model=prior/level2_audio_debug", f"autoencoder={level1}", "data=embedded_debug",
                   "train.segment_length=32", "train.batch_size=2"])
    task = build_task(cfg)
    batch = task.build_sampler(cfg, "train").batch(0)
    assert batch["audio"].shape == (2, 32 * 16)  # window frames x level-1 hop
    loss, metrics = task.loss(task.model, batch)
    loss.backward()
    assert math.isfinite(loss.item()) and metrics["bits_per_frame"] > 0
    assert task.model.encode(batch["audio"]).shape == (2, 2, 32 // 4)
    from wavegen.hierarchy.provenance import weights_fingerprint

    assert task.model_config()["codes_fingerprint"] == weights_fingerprint(task.autoencoder)


def _event_model(context=64):
    from wavegen.models.event_transformer import EventTransformer, EventTransformerConfig

    torch.manual_seed(0)
    cfg = EventTransformerConfig.from_mapping(compose(["model=event_prior/debug", f"model.context={context}"]).model)
    return EventTransformer(cfg).eval()


def test_event_transformer_kv_cache_equals_the_full_pass():
    model = _event_model()
    values = torch.cat([torch.tensor([[model.start_value]]), torch.randint(0, 25, (1, 9))], dim=1)
    runs = torch.cat([torch.zeros(1, 1, dtype=torch.long), torch.randint(1, 17, (1, 9))], dim=1)
    with torch.no_grad():
        full = model.hidden(values, runs)[0]
    state = model.init_state(1)
    steps = torch.stack([model.feed(state, values[:, i], runs[:, i])[0] for i in range(10)])
    torch.testing.assert_close(steps, full, rtol=1e-4, atol=1e-5)


def test_event_transformer_cache_is_a_sliding_window_and_sampling_is_exact():
    from wavegen.hierarchy.streaming import sample_events

    model = _event_model(context=8)
    chunks = list(sample_events(model, 333, 3, torch.Generator().manual_seed(0), chunk_frames=50))
    codes = torch.cat(chunks, dim=-1)
    assert codes.shape == (3, 2, 333) and int(codes.max()) < 5
    assert not torch.equal(codes[0], codes[1])  # independent streams
    state = model.init_state(1)
    for _ in range(20):
        model.feed(state, torch.tensor([0]), torch.tensor([1]))
    assert state.k[0].shape[2] == 7 and state.pos.tolist() == list(range(13, 20))


def test_event_transformer_steps_draw_what_the_full_pass_predicts():
    """Batched steps from pre-drawn uniforms: every drawn event is the inverse-CDF pick of the full
    (teacher-forced) pass's distributions over the stream's own history, whatever the batch."""
    from wavegen.nn.heads import inverse_cdf_sample

    model = _event_model()
    uniforms = torch.rand(12, 3, 2, generator=torch.Generator().manual_seed(4))
    state = model.init_state(3)
    events = model.step(state, uniforms, temperature=0.8)  # [3, 12, 2]
    assert events.shape == (3, 12, 2) and int(events[..., 1].min()) >= 1
    for b in range(3):
        values = torch.cat([torch.tensor([model.start_value]), events[b, :-1, 0]])[None]
        runs = torch.cat([torch.tensor([0]), events[b, :-1, 1]])[None]
        with torch.no_grad():
            value_logits, run_logits = model(values, runs, events[b, :, 0][None])
        assert torch.equal(inverse_cdf_sample(value_logits[0], uniforms[:, b, 0], 0.8), events[b, :, 0])
        assert torch.equal(inverse_cdf_sample(run_logits[0], uniforms[:, b, 1], 0.8) + 1, events[b, :, 1])


def test_event_prior_task_learns_a_code_set(tmp_path):
    cs = _codeset(tmp_path, levels=(5, 5), hop=256)
    cfg = compose(["model=event_prior/debug", f"codeset={cs.root}", "train.segment_length=16",
                   "train.batch_size=8"])
    task = build_task(cfg)
    sampler = task.build_sampler(cfg, "train")
    val = sampler.validation_batches(2)  # the training events: too few to generalise from
    torch.manual_seed(0)
    opt = torch.optim.Adam(task.model.parameters(), lr=2e-2)
    before = task.validate(task.model, val)
    for step in range(40):
        loss, metrics = task.loss(task.model, sampler.batch(step))
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = task.validate(task.model, val)
    assert after["val_bits_per_event"] < before["val_bits_per_event"] - 2.0
    assert "bits_per_second" in metrics
