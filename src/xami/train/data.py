"""Training data for the segmentor: frames with ground-truth masks, and the embedding cache.

A `Sample` is one frame with its ground truth: boolean masks, their tight boxes and classes,
all in the frame's pixels (boxes XYXY, exclusive max, as `xami.structures.masks_to_boxes`).

The frozen image encoder's output depends only on the pixels it is given, the encoder's weights
and the model input size, so `EmbeddingCache` stores it on disk under a key made of exactly
those three (a SHA-256 of the frame bytes, of the encoder's tensors and of ``sam_size``): a
changed checkpoint or input size can never pick up a stale entry. The authors re-encoded every
image every epoch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from xami.data import Dataset
from xami.io.atomic import atomic_path
from xami.io.images import read_frame
from xami.models.segmentor import Segmentor
from xami.structures import masks_to_boxes


@dataclass(frozen=True)
class Sample:
    """One training frame and its ground truth.

    Attributes
    ----------
    key : str
        ``"{split}/{file_name}"``, unique within a dataset.
    frame : numpy.ndarray
        ``uint8 [H, W]``, 0 = no coverage.
    masks : numpy.ndarray
        ``bool [N, H, W]`` ground-truth masks, none empty.
    boxes : numpy.ndarray
        ``float64 [N, 4]`` tight XYXY boxes of ``masks`` in pixels.
    labels : numpy.ndarray
        ``int64 [N]`` COCO category ids.
    """

    key: str
    frame: np.ndarray
    masks: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray

    @property
    def size(self) -> tuple[int, int]:
        """``(height, width)`` of the frame."""
        return self.frame.shape[0], self.frame.shape[1]


def make_sample(key: str, frame: np.ndarray, masks: np.ndarray, labels: np.ndarray) -> Sample:
    """A `Sample` from a frame and its masks: empty masks dropped, boxes made tight."""
    masks = np.asarray(masks, dtype=bool).reshape(-1, *frame.shape[:2])
    keep = masks.any(axis=(1, 2))
    masks, labels = masks[keep], np.asarray(labels, dtype=np.int64)[keep]
    return Sample(key, frame, masks, masks_to_boxes(masks), labels)


def load_samples(dataset: Dataset, split: str) -> list[Sample]:
    """Read the frames of one split and rasterise their ground truth.

    Images without any (non-empty) annotation are left out: with no prompt they contribute
    nothing to the segmentor losses (the authors skip them too).

    Parameters
    ----------
    dataset : xami.data.Dataset
        The dataset.
    split : str
        A split name of ``dataset`` (``"train"``, ``"valid"``); a missing split gives ``[]``.

    Returns
    -------
    list of Sample
        In the split's order.
    """
    samples = []
    for record in dataset.splits.get(split, ()):
        frame = read_frame(dataset.image_path(split, record))
        h, w = frame.shape
        masks = np.array([a.mask(h, w) for a in record.annotations], dtype=bool)
        labels = np.array([a.category_id for a in record.annotations], dtype=np.int64)
        sample = make_sample(f"{split}/{record.file_name}", frame, masks, labels)
        if len(sample.masks):
            samples.append(sample)
    return samples


def frame_hash(frame: np.ndarray) -> str:
    """SHA-256 of a frame's dtype, shape and bytes."""
    frame = np.ascontiguousarray(frame)
    digest = hashlib.sha256(f"{frame.dtype.str}{frame.shape}".encode())
    digest.update(frame.tobytes())
    return digest.hexdigest()


def module_checksum(module: torch.nn.Module) -> str:
    """SHA-256 of a module's state dict (names, dtypes, shapes and values, in key order)."""
    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        value = tensor.detach().cpu().contiguous()
        digest.update(f"{name}{value.dtype}{tuple(value.shape)}".encode())
        digest.update(value.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


class EmbeddingCache:
    """Frozen-encoder image embeddings, computed once and kept on disk.

    Parameters
    ----------
    folder : str or os.PathLike
        Where the ``<key>.pt`` files go (created when needed); it may be shared by runs, as the
        key covers everything the embedding depends on.
    segmentor : xami.models.segmentor.Segmentor
        Whose image encoder produces the embeddings. Its weights must not change while the cache
        is in use (they are checksummed once, here).

    Examples
    --------
    >>> cache = EmbeddingCache("run/embeddings", segmentor)  # doctest: +SKIP
    >>> cache.embed(frame).shape  # doctest: +SKIP
    torch.Size([1, 256, 64, 64])
    """

    def __init__(self, folder: str | Path, segmentor: Segmentor) -> None:
        self.folder = Path(folder)
        self.segmentor = segmentor
        encoder = segmentor.model.image_encoder
        self._model_key = f"{module_checksum(encoder)}-{segmentor.config.sam_size}"

    def key(self, frame: np.ndarray) -> str:
        """The cache key of ``frame``: a hash of its pixels, the encoder weights and sam_size."""
        return hashlib.sha256(f"{frame_hash(frame)}-{self._model_key}".encode()).hexdigest()

    def embed(self, frame: np.ndarray, *, store: bool = True) -> torch.Tensor:
        """The ``[1, 256, S/16, S/16]`` embedding of ``frame``, from disk or from the encoder.

        ``store=False`` encodes without writing (for one-off augmented frames).
        """
        path = self.folder / f"{self.key(frame)}.pt"
        if path.is_file():
            return torch.load(path, map_location="cpu", weights_only=True)
        embedding = encode_frozen(self.segmentor, frame)
        if store:
            with atomic_path(path) as tmp:
                torch.save(embedding, tmp)
        return embedding


def encode_frozen(segmentor: Segmentor, frame: np.ndarray) -> torch.Tensor:
    """Embed ``frame`` with the encoder in eval mode and without gradients."""
    encoder = segmentor.model.image_encoder
    mode = encoder.training
    encoder.eval()
    with torch.no_grad():
        embedding = segmentor.embed(segmentor.prepare(frame)).cpu()
    encoder.train(mode)
    return embedding


Embedder = Callable[[np.ndarray, bool], torch.Tensor]
"""``embed(frame, cacheable) -> [1, 256, S/16, S/16]`` image embeddings."""


def make_embedder(segmentor: Segmentor, *, train_encoder: bool,
                  cache: EmbeddingCache | None) -> Embedder:
    """``embed(frame, cacheable) -> [1, 256, S/16, S/16]`` for the training losses.

    A trained encoder runs on every call (with gradients outside ``no_grad``); a frozen one is
    served by ``cache`` (frames that are not ``cacheable`` are encoded but not stored), or run
    without gradients when there is no cache.
    """
    def embed(frame: np.ndarray, cacheable: bool = True) -> torch.Tensor:
        if train_encoder:
            return segmentor.embed(segmentor.prepare(frame))
        if cache is None:
            return encode_frozen(segmentor, frame)
        return cache.embed(frame, store=cacheable)

    return embed
