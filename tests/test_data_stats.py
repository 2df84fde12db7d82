"""Dataset statistics on a hand-made dataset: exact counts, percentages, files and plots."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from _data_factory import tiny_records
from xami.data.records import Annotation, Dataset, ImageRecord
from xami.data.stats import DatasetStats, compute_stats
from xami.report.dataset import plot_stats

pytestmark = pytest.mark.light  # needs no optional extra (CI's light venv runs it)


@pytest.fixture
def stats() -> DatasetStats:
    """Stats of `tiny_records`: train U, V, U (2 ROS + CR; two-part SL; empty), valid L, L."""
    splits = tiny_records()
    return compute_stats(Dataset(splits, {s: Path(s) for s in splits}))


def test_table1_per_filter(stats: DatasetStats) -> None:
    assert stats.filters == {"V": (1, 1), "U": (2, 3), "L": (2, 2)}
    assert list(stats.filters) == ["V", "U", "L"]  # xami.instrument.FILTERS order


def test_table2_per_class_and_split(stats: DatasetStats) -> None:
    assert stats.images == {"train": 3, "valid": 2}
    assert stats.empty_images == {"train": 1, "valid": 1}
    assert stats.instances["train"] == {"central-ring": 1, "other": 0, "read-out-streak": 2,
                                        "smoke-ring": 0, "star-loop": 1}
    assert stats.instances["valid"]["smoke-ring"] == 1
    assert stats.percent("train", "read-out-streak") == 50.0
    assert stats.percent("train", "central-ring") == 25.0
    assert stats.percent("valid", "read-out-streak") == 50.0
    assert stats.images_with["train"]["read-out-streak"] == 1
    assert stats.instances_per_image("read-out-streak") == 1.5
    assert stats.instances_per_image("other") is None


def test_box_sizes_and_centres(stats: DatasetStats) -> None:
    assert stats.mean_box["read-out-streak"] == (2.0, 24.0)
    assert stats.mean_box["star-loop"] == (28.0, 18.0)
    assert stats.mean_box["other"] is None
    np.testing.assert_allclose(stats.box_centres["central-ring"], [[14.5 / 32, 12 / 24]])
    assert stats.box_centres["other"].shape == (0, 2)


def test_markdown_tables(stats: DatasetStats) -> None:
    text = stats.to_markdown()
    assert "| UVW1 (L) | 291 | 2 | 2 |" in text
    assert "| ROS | 2 (50.00%) | 1 (50.00%) |" in text
    assert "| CR | 1 (25.00%) | 0 (0.00%) |" in text
    assert "| all | 4 in 3 images | 2 in 2 images |" in text
    assert "| ROS | 2 | 3 | 1.50 | 2.0 x 24.0 |" in text


def test_save_writes_json_markdown_and_plot_stats_the_pngs(stats: DatasetStats,
                                                          tmp_path: Path) -> None:
    paths = stats.save(tmp_path / "stats") + plot_stats(stats, tmp_path / "stats")
    assert [p.name for p in paths] == ["stats.json", "stats.md", "class_distribution.png",
                                       "box_centres.png"]
    data = json.loads(paths[0].read_text())
    assert data == json.loads(json.dumps(stats.to_dict()))
    assert data["classes"]["star-loop"]["percent"] == {"train": 25.0, "valid": 0.0}
    assert data["filters"]["U"] == {"images": 2, "masks": 3}
    assert paths[1].read_text() == stats.to_markdown()
    for png in paths[2:]:
        with Image.open(png) as im:
            assert im.format == "PNG" and im.width > 100
            im.verify()


def test_filter_from_meta_wins_and_unknown_names(tmp_path: Path) -> None:
    ann = Annotation(2, (np.array([[0.0, 0], [4, 0], [0, 4]]),))
    recs = (ImageRecord("frame1.png", 8, 8, (ann,)),
            ImageRecord("S0000000009_U.png", 8, 8, (), meta={"filter": "B"}))
    stats = compute_stats(Dataset({"all": recs}, {"all": tmp_path}))
    assert stats.filters == {"B": (1, 0), "?": (1, 1)}
