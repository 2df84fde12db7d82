"""Segmentor fine-tuning: loss goes down, frozen parts, cache, resume, early stopping, CLI."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
import torch

from xami.cli import main
from xami.data import Annotation, Dataset, ImageRecord, write_dataset
from xami.data.polygons import mask_to_polygons
from xami.errors import CheckpointError, DatasetError, InputError
from xami.io.images import write_frame
from xami.models.box_segmentor import SegmentorConfig
from xami.models.build import load_segmentor
from xami.models.segmentor import Segmentor, build_segmentor
from xami.train import loop
from xami.train.augment import AugmentConfig, augment_sample, jitter_boxes
from xami.train.data import EmbeddingCache, make_sample
from xami.train.losses import segmentor_loss
from xami.train.schedule import ScheduleConfig
from xami.train.segmentor import SegmentorTrainConfig, train_segmentor

SIZE, SAM_SIZE = 96, 128  # tiny frames; SAM at 128 px (8x8 embeddings) keeps the tests fast


def tiny_dataset(root, *, n_train: int = 2, n_valid: int = 1, seed: int = 0) -> Dataset:
    """Frames with a bright streak and a blob, as COCO under ``root``; 0 = no coverage corner."""
    rng = np.random.default_rng(seed)
    splits, dirs = {}, {}
    yy, xx = np.mgrid[:SIZE, :SIZE]
    for split, n in (("train", n_train), ("valid", n_valid)):
        dirs[split] = root / split
        records = []
        for i in range(n):
            frame = (40 + rng.normal(0, 6, (SIZE, SIZE))).clip(1, 255).astype(np.uint8)
            bar = (xx >= 20 + 6 * i) & (xx < 26 + 6 * i)
            blob = np.hypot(yy - 60, xx - 60 + 8 * i) < 10
            frame[bar | blob] = 220
            frame[:8, -8:] = 0
            name = f"S00000000{i:02d}_{split[0].upper()}.png"
            write_frame(dirs[split] / name, frame)
            anns = tuple(Annotation(c, mask_to_polygons(m)) for c, m in ((3, bar), (4, blob)))
            records.append(ImageRecord(name, SIZE, SIZE, anns, image_id=i + 1))
        splits[split] = tuple(records)
    dataset = Dataset(splits, dirs)
    write_dataset(dataset, root, layout="coco")
    return dataset


def random_init(path, seed: int = 0):
    """A random-weight segmentor checkpoint at SAM_SIZE (the same weights for one seed)."""
    torch.manual_seed(seed)
    segmentor = build_segmentor(SegmentorConfig(sam_size=SAM_SIZE))
    torch.save(segmentor.checkpoint(), path)
    return segmentor


def tiny_config(tmp, **changes) -> SegmentorTrainConfig:
    """Fast settings: 128 px SAM, one batch per epoch, a shared embedding cache."""
    base = {"sam_size": SAM_SIZE, "epochs": 3, "batch_size": 2, "cache_dir": str(tmp / "cache"),
            "schedule": ScheduleConfig(lr0=1e-3, lr_final=5e-4, decay_steps=2)}
    return SegmentorTrainConfig(**{**base, **changes})


def params(state: dict, prefix: str) -> dict:
    """The tensors of one model part."""
    return {k: v for k, v in state.items() if k.startswith(prefix)}


def same(a: dict, b: dict) -> bool:
    """True when two state dicts hold equal tensors."""
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def encoder_calls(segmentor) -> list:
    """A list that grows by one per image-encoder forward."""
    calls = []
    segmentor.model.image_encoder.register_forward_hook(lambda *_: calls.append(1))
    return calls


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Dataset, random init checkpoint and a 3-epoch run from it (encoder calls counted)."""
    tmp = tmp_path_factory.mktemp("seg")
    tiny_dataset(tmp / "data")
    init = random_init(tmp / "init.pt")
    calls = encoder_calls(init)
    best = train_segmentor(tmp / "data", tmp / "run3", config=tiny_config(tmp), init=init,
                           progress=False)
    return tmp, best, len(calls)


def test_training_reduces_the_loss_and_writes_the_run(tiny):
    tmp, best, _ = tiny
    rows = json.loads((tmp / "run3" / "metrics.json").read_text())
    train_loss = [row["train_total"] for row in rows]
    assert [row["epoch"] for row in rows] == [1, 2, 3]
    assert [row["step"] for row in rows] == [1, 2, 3]  # one batch of 2 images per epoch
    assert train_loss[-1] < train_loss[0] and all(math.isfinite(v) for v in train_loss)
    assert (tmp / "run3" / "metrics.csv").read_text().startswith("epoch,step,lr,train_total")
    saved = json.loads((tmp / "run3" / "xami_config.json").read_text())
    assert saved["train"]["sam_size"] == SAM_SIZE and saved["kind"] == "segmentor"
    segmentor = load_segmentor(best, sam_size=SAM_SIZE, backend="torch")
    assert segmentor.predict(np.full((SIZE, SIZE), 50, np.uint8), [[10, 10, 40, 40]]).masks.shape \
        == (1, SIZE, SIZE)


def test_frozen_parts_do_not_change(tiny):
    tmp, _, _ = tiny
    before = torch.load(tmp / "init.pt", weights_only=True)["model"]
    after = torch.load(tmp / "run3" / "weights" / "last.pt", weights_only=True)["model"]
    for part in ("image_encoder.", "prompt_encoder."):
        assert same(params(before, part), params(after, part))
    assert not same(params(before, "mask_decoder."), params(after, "mask_decoder."))


def test_frozen_parts_get_no_gradient(tmp_path):
    segmentor = random_init(tmp_path / "init.pt")
    trainable = loop.set_trainable(segmentor.model, train_encoder=False)
    sample = make_sample("x", np.full((SIZE, SIZE), 60, np.uint8),
                         np.ones((1, SIZE, SIZE), bool), np.array([3]))
    embedding = segmentor.embed(segmentor.prepare(sample.frame))
    logits, iou = segmentor.decode(embedding, sample.boxes, sample.size)
    segmentor_loss(logits, iou, torch.ones(1, SIZE, SIZE)).total.backward()
    named = dict(segmentor.model.named_parameters())
    assert all(p.grad is None for k, p in named.items() if not k.startswith("mask_decoder."))
    assert len(trainable) == len(params(named, "mask_decoder."))
    assert all(p.grad is not None for p in trainable)


def test_embeddings_are_encoded_once_per_image(tiny):
    tmp, _, calls = tiny
    assert calls == 3  # 2 train + 1 valid images, over 3 epochs
    assert len(list((tmp / "cache").glob("*.pt"))) == 3


def test_cache_is_reused_and_a_changed_encoder_invalidates_it(tiny, tmp_path, rng):
    tmp, _, _ = tiny
    frame = rng.integers(1, 255, (SIZE, SIZE), dtype=np.uint8)
    segmentor = load_segmentor(tmp / "init.pt", sam_size=SAM_SIZE, backend="torch")
    calls = encoder_calls(segmentor)
    cache = EmbeddingCache(tmp_path, segmentor)
    first = cache.embed(frame)
    assert torch.equal(cache.embed(frame), first) and len(calls) == 1
    with torch.no_grad():
        segmentor.model.image_encoder.neck[0].weight.mul_(1.01)
    changed = EmbeddingCache(tmp_path, segmentor)
    assert changed.key(frame) != cache.key(frame)
    assert not torch.equal(changed.embed(frame), first) and len(calls) == 2
    resized = Segmentor(segmentor.model, SegmentorConfig(sam_size=2 * SAM_SIZE))
    assert EmbeddingCache(tmp_path, resized).key(frame) != changed.key(frame)


def test_resume_continues_at_the_same_step_and_lr(tiny):
    tmp, _, _ = tiny
    config = tiny_config(tmp)
    train_segmentor(tmp / "data", tmp / "run2", config=tiny_config(tmp, epochs=1),
                    init=tmp / "init.pt", progress=False)
    train_segmentor(tmp / "data", tmp / "run2", config=config, resume=True, progress=False)
    whole = torch.load(tmp / "run3" / "weights" / "last.pt", weights_only=True)
    resumed = torch.load(tmp / "run2" / "weights" / "last.pt", weights_only=True)
    assert (resumed["step"], resumed["epoch"]) == (whole["step"], whole["epoch"]) == (3, 3)
    assert [r["lr"] for r in resumed["metrics"]] == [r["lr"] for r in whole["metrics"]]
    assert same(resumed["model"], whole["model"])
    with pytest.raises(CheckpointError, match="changed: \\['weight_decay'\\]"):
        train_segmentor(tmp / "data", tmp / "run2", config=tiny_config(tmp, weight_decay=0.1),
                        resume=True, progress=False)
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        train_segmentor(tmp / "data", tmp / "none", config=config, resume=True)


def test_early_stopping_keeps_the_best_epochs_weights(tiny, monkeypatch):
    tmp, _, _ = tiny
    losses, seen = iter([1.0, 0.5, 0.9, 0.8]), []

    def fake_validate(run):
        seen.append(copy.deepcopy(run.segmentor.model.mask_decoder.state_dict()))
        return dict.fromkeys(loop.TERMS, next(losses))

    monkeypatch.setattr(loop, "validate", fake_validate)
    config = tiny_config(tmp, epochs=10, patience=1)
    best = train_segmentor(tmp / "data", tmp / "early", config=config, init=tmp / "init.pt",
                           progress=False)
    assert len(seen) == 3  # epoch 2 best, epoch 3 worse: stop (patience 1)
    kept = torch.load(best, weights_only=True)
    assert kept["epoch"] == 2
    decoder = {k.removeprefix("mask_decoder."): v
               for k, v in params(kept["model"], "mask_decoder.").items()}
    assert same(decoder, seen[1]) and not same(decoder, seen[2])


def test_train_encoder_changes_the_encoder(tiny):
    tmp, _, _ = tiny
    config = tiny_config(tmp, epochs=1, train_encoder=True)
    best = train_segmentor(tmp / "data", tmp / "enc", config=config, init=tmp / "init.pt",
                           progress=False)
    before = torch.load(tmp / "init.pt", weights_only=True)["model"]
    after = torch.load(best, weights_only=True)["model"]
    assert not same(params(before, "image_encoder."), params(after, "image_encoder."))
    assert not (tmp / "enc" / "embeddings").exists()


def test_cli_trains_from_random_weights(tiny, capsys):
    tmp, _, _ = tiny
    yaml_text = (f"segmentor:\n  sam_size: {SAM_SIZE}\n  epochs: 1\n  batch_size: 2\n"
                 f"  cache_dir: {tmp / 'cache'}\n  schedule: {{lr0: 1.0e-3}}\n")
    (tmp / "cfg.yaml").write_text(yaml_text)
    out = tmp / "cli"
    code = main(["train", "segmentor", "--data", str(tmp / "data"), "--config",
                 str(tmp / "cfg.yaml"), "--out", str(out)])
    assert code == 0 and "best checkpoint" in capsys.readouterr().out
    assert (out / "weights" / "best.pt").is_file() and (out / "metrics.csv").is_file()
    best = load_segmentor(out / "weights" / "best.pt", sam_size=SAM_SIZE, backend="torch")
    assert best.config.sam_size == 128
    # random init with seed 0 = the fixture's init: the shared cache already held every image
    assert len(list((tmp / "cache").glob("*.pt"))) == 3


def test_missing_valid_split_is_an_error(tmp_path):
    tiny_dataset(tmp_path / "data", n_valid=0)
    with pytest.raises(DatasetError, match="'valid' split"):
        train_segmentor(tmp_path / "data", tmp_path / "run", config=tiny_config(tmp_path))


def test_config_validation():
    with pytest.raises(InputError, match="batch_size must be even"):
        SegmentorTrainConfig(augment=True, batch_size=3)
    with pytest.raises(InputError, match="epochs must be a positive integer"):
        SegmentorTrainConfig(epochs=0)
    nested = SegmentorTrainConfig(schedule={"lr0": 1e-3}, loss={"iou_kind": "l1"})
    assert nested.schedule.lr(0) == 1e-3 and nested.loss.iou_kind == "l1"


def test_augmentation_moves_masks_with_the_frame(rng):
    frame = np.full((40, 50), 30, np.uint8)
    masks = np.zeros((2, 40, 50), bool)
    masks[0, 5:15, 10:30] = True
    masks[1, 30:33, 40:42] = True  # 6 px: dropped as too small (min_area 20)
    frame[masks[0]], frame[masks[1]] = 200, 201
    sample = make_sample("s", frame, masks, np.array([3, 4]))
    geometric = AugmentConfig(flip=1.0, rot90=1.0, crop=0.0, blur=0.0, noise=0.0)
    for _ in range(4):
        out = augment_sample(sample, rng, geometric)
        assert out.labels.tolist() == [3] and geometric.is_cacheable
        np.testing.assert_array_equal(out.masks[0], out.frame == 200)
        assert out.boxes[0, 2] - out.boxes[0, 0] in (20, 10)
    full = augment_sample(sample, rng, AugmentConfig(crop=1.0, blur=1.0, noise=1.0))
    assert full.frame.shape in ((40, 50), (50, 40)) and full.masks.shape[1:] == full.frame.shape


def test_jitter_keeps_boxes_inside_the_image(rng):
    boxes = np.array([[0.0, 0.0, 10.0, 10.0], [40.0, 30.0, 50.0, 40.0]])
    assert np.array_equal(jitter_boxes(boxes, (40, 50), 0.0, rng), boxes)
    moved = jitter_boxes(boxes, (40, 50), 0.5, rng)
    assert not np.array_equal(moved, boxes)
    assert (moved[:, [0, 2]] <= 50).all() and (moved[:, [1, 3]] <= 40).all() and (moved >= 0).all()
    assert (moved[:, 2:] > moved[:, :2]).all()
