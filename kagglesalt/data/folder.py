"""Read the competition files in the layout a Kaggle download unpacks.

    data/train/images/<id>.png   8-bit RGB, the three channels equal
    data/train/masks/<id>.png    16-bit 0/65535 as Kaggle ships them (8-bit 0/255 accepted)
    data/train.csv               id,rle_mask
    data/depths.csv              id,z
    data/test/images/<id>.png
    data/sample_submission.csv   id,rle_mask

Decoding 22,000 PNGs takes a while, so decoded arrays are cached in `data/.cache/`, keyed by a
fingerprint of the files' names, sizes and modification times: any change rebuilds the cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from kagglesalt.atomic import atomic_open
from kagglesalt.competition import rle
from kagglesalt.errors import KaggleSaltError

SIZE = rle.SIZE
CACHE_DIR = ".cache"
# The Kaggle layout, as `kaggle competitions download` unpacks it.
LAYOUT = ("train.csv", "depths.csv", "sample_submission.csv", "train/images", "train/masks",
          "test/images")
SOURCE_MARKER = ".kagglesalt-source.json"  # where the data came from: kaggle or synthetic
CACHE_VERSION = 1

Progress = Callable[[int, int], None]

# OpenCV logs "[ WARN:0@...] ... PNG input buffer is incomplete" to stderr for a damaged PNG;
# kagglesalt says what is wrong itself, in one line.
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)


@dataclass(frozen=True)
class Split:
    """One split of the data set: ids, uint8 images (N, 101, 101), bool masks, depths."""

    ids: np.ndarray
    images: np.ndarray
    masks: np.ndarray | None
    depths: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def truth(self) -> np.ndarray:
        """The masks of a split that has them (the training split)."""
        if self.masks is None:
            raise ValueError("this split has no masks")
        return self.masks

    @property
    def coverage(self) -> np.ndarray:
        """Fraction of salt pixels per image."""
        return self.truth.reshape(len(self), -1).mean(axis=1)

    @property
    def has_depths(self) -> bool:
        return bool(len(self)) and not np.isnan(self.depths).all()

    def fingerprint(self) -> str:
        """A short hash of ids, images and masks: runs compare it before mixing predictions."""
        h = hashlib.sha256()
        h.update("\n".join(self.ids).encode())
        h.update(self.images.tobytes())
        if self.masks is not None:
            h.update(np.packbits(self.masks).tobytes())
        return h.hexdigest()[:16]


def has_train(data_dir: str | os.PathLike) -> bool:
    return (Path(data_dir) / "train" / "images").is_dir()


def source(data_dir: str | os.PathLike) -> dict:
    """Where the data set came from, as its marker file says: {"source": "kaggle" or
    "synthetic", ...}; {} when there is no marker (files put there by hand)."""
    try:
        return json.loads((Path(data_dir) / SOURCE_MARKER).read_text())
    except (OSError, ValueError):
        return {}


def is_synthetic(data_dir: str | os.PathLike) -> bool:
    return source(data_dir).get("source") == "synthetic"


def layout_complete(data_dir: str | os.PathLike) -> bool:
    """Every file and folder of the Kaggle layout is there."""
    return all((Path(data_dir) / part).exists() for part in LAYOUT)


def replace_folder(new: Path, data_dir: Path) -> None:
    """Put the finished folder `new` in place of `data_dir` (which may not exist): the old
    one is moved aside first, so a reader sees either the whole old set or the whole new."""
    old = data_dir.with_name(f".{data_dir.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(new, 0o777 & ~mask)  # a temporary folder is made 0700; data is not private
    if data_dir.exists():
        os.replace(data_dir, old)
    os.replace(new, data_dir)
    shutil.rmtree(old, ignore_errors=True)


def load_train(data_dir: str | os.PathLike, progress: Progress | None = None,
               cache_dir: str | os.PathLike | None = None) -> Split:
    """Load the training images, masks and depths, checked against train.csv.

    Decoded arrays are cached in `cache_dir` (default `data_dir/.cache`).
    """
    data_dir = Path(data_dir)
    image_dir, mask_dir = data_dir / "train" / "images", data_dir / "train" / "masks"
    if not image_dir.is_dir():
        raise KaggleSaltError(f"no training images in {image_dir}: run `kagglesalt download`, "
                              "or `kagglesalt synth` for a synthetic data set")
    image_ids = _png_ids(image_dir)
    if not image_ids:
        raise KaggleSaltError(f"{image_dir} holds no .png images: run `kagglesalt download`, "
                              "or `kagglesalt synth` for a synthetic data set")
    mask_ids = set(_png_ids(mask_dir)) if mask_dir.is_dir() else set()
    for i in image_ids:
        if i not in mask_ids:
            raise KaggleSaltError(f"image {i} has no mask: {mask_dir / (i + '.png')} is missing")
    table = _read_csv(data_dir / "train.csv", ["id", "rle_mask"]) \
        if (data_dir / "train.csv").exists() else None
    ids = sorted(image_ids)
    if table is not None:
        listed, present = set(table["id"]), set(image_ids)
        for i in table["id"]:
            if i not in present:
                raise KaggleSaltError(f"id {i} in train.csv has no image: "
                                      f"{image_dir / (i + '.png')} is missing")
        extra = sorted(present - listed)
        if extra:
            raise KaggleSaltError(f"image {extra[0]} has no row in {data_dir / 'train.csv'}: "
                                  "add it or remove the image")
    image_files = [image_dir / f"{i}.png" for i in ids]
    mask_files = [mask_dir / f"{i}.png" for i in ids]
    key = _fingerprint(image_files + mask_files + [data_dir / "train.csv",
                                                   data_dir / "depths.csv"])

    def build() -> dict[str, np.ndarray]:
        images = _read_images(image_files, read_image, progress)
        masks = _read_images(mask_files, _read_mask, progress)
        if table is not None:
            _check_rle_agrees(table, ids, masks, data_dir / "train.csv")
        return {"images": images, "masks": masks}

    arrays = _cached(Path(cache_dir or data_dir / CACHE_DIR) / "train", key, build)
    return Split(np.array(ids), arrays["images"], arrays["masks"], _depths(data_dir, ids))


def load_test(data_dir: str | os.PathLike, progress: Progress | None = None,
              cache_dir: str | os.PathLike | None = None) -> Split:
    """Load the test images in the order of sample_submission.csv (or of the folder)."""
    data_dir = Path(data_dir)
    image_dir = data_dir / "test" / "images"
    sample = data_dir / "sample_submission.csv"
    if sample.exists():
        ids = sample_submission_ids(data_dir)
        present = set(_png_ids(image_dir)) if image_dir.is_dir() else set()
        for i in ids:
            if i not in present:
                raise KaggleSaltError(f"id {i} in sample_submission.csv has no image: "
                                      f"{image_dir / (i + '.png')} is missing")
    else:
        ids = sorted(_png_ids(image_dir)) if image_dir.is_dir() else []
    if not ids:
        empty = np.zeros((0, SIZE, SIZE), np.uint8)
        return Split(np.array([], dtype=str), empty, None, np.zeros(0, np.float32))
    files = [image_dir / f"{i}.png" for i in ids]
    key = _fingerprint(files + [sample, data_dir / "depths.csv"])

    def build() -> dict[str, np.ndarray]:
        return {"images": _read_images(files, read_image, progress)}

    arrays = _cached(Path(cache_dir or data_dir / CACHE_DIR) / "test", key, build)
    return Split(np.array(ids), arrays["images"], None, _depths(data_dir, ids))


def sample_submission_ids(data_dir: str | os.PathLike) -> list[str]:
    """The ids a submission must have, in Kaggle's order."""
    path = Path(data_dir) / "sample_submission.csv"
    if not path.exists():
        raise KaggleSaltError(f"{path} is missing: run `kagglesalt download` (or `kagglesalt "
                              "synth`) to get the competition files")
    return list(_read_csv(path, ["id", "rle_mask"])["id"])


def _png_ids(folder: Path) -> list[str]:
    return [e.name[:-4] for e in os.scandir(folder) if e.name.endswith(".png")]


def _read_csv(path: Path, columns: list[str]) -> pd.DataFrame:
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise KaggleSaltError(f"{path} is empty: it needs the columns "
                              f"{','.join(columns)}; run `kagglesalt download` again to "
                              "restore it") from None
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as e:
        raise KaggleSaltError(f"cannot read {path}: {e}") from None
    if list(table.columns[: len(columns)]) != columns:
        raise KaggleSaltError(f"{path} has columns {','.join(table.columns)}; "
                              f"expected {','.join(columns)}")
    return table


def _depths(data_dir: Path, ids: list[str]) -> np.ndarray:
    path = data_dir / "depths.csv"
    if not path.exists():
        return np.full(len(ids), np.nan, np.float32)
    table = _read_csv(path, ["id", "z"])
    z = pd.to_numeric(table["z"], errors="coerce").to_numpy(np.float32)
    lookup = dict(zip(table["id"], z, strict=True))
    return np.array([lookup.get(i, np.nan) for i in ids], dtype=np.float32)


def _read_png(path: Path) -> np.ndarray:
    data = np.fromfile(path, dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise KaggleSaltError(f"{path} is not a readable PNG: replace it with a whole copy "
                              "(in a downloaded data set, `kagglesalt download --force`)")
    if image.shape[:2] != (SIZE, SIZE):
        raise KaggleSaltError(f"{path} is {image.shape[1]}x{image.shape[0]}, "
                              f"not {SIZE}x{SIZE}: it is not a competition image")
    return image


def read_image(path: Path) -> np.ndarray:
    """A competition image as uint8 (101, 101); KaggleSaltError names a bad file."""
    image = _read_png(path)
    if image.ndim == 3:
        image = image[:, :, 0]
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    return image


def _read_mask(path: Path) -> np.ndarray:
    mask = _read_png(path)
    if mask.ndim == 3:
        mask = mask[:, :, 0]
    return mask > 0


def _read_images(paths: list[Path], reader: Callable[[Path], np.ndarray],
                 progress: Progress | None) -> np.ndarray:
    # cv2 releases the GIL while decoding, so threads use every core.
    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 1) * 2)) as pool:
        out = []
        for i, image in enumerate(pool.map(reader, paths, chunksize=64)):
            out.append(image)
            if progress and (i % 500 == 0 or i == len(paths) - 1):
                progress(i + 1, len(paths))
    dtype = bool if reader is _read_mask else np.uint8
    return np.stack(out).astype(dtype) if out else np.zeros((0, SIZE, SIZE), dtype)


def _check_rle_agrees(table: pd.DataFrame, ids: list[str], masks: np.ndarray,
                      path: Path) -> None:
    by_id = dict(zip(table["id"], table["rle_mask"], strict=True))
    decoded = rle.decode_many([by_id[i] for i in ids], ids=ids)
    differs = (decoded != masks).reshape(len(ids), -1).any(axis=1)
    if differs.any():
        i = ids[int(np.argmax(differs))]
        raise KaggleSaltError(f"the RLE of id {i} in {path} disagrees with its mask PNG: "
                              "one of the two files is damaged; download the data again")


def _fingerprint(paths: list[Path]) -> str:
    h = hashlib.sha256(str(CACHE_VERSION).encode())
    for p in paths:
        try:
            st = p.stat()
            h.update(f"{p.name}:{st.st_size}:{st.st_mtime_ns}\n".encode())
        except FileNotFoundError:
            h.update(f"{p.name}:absent\n".encode())
    return h.hexdigest()


def _cached(folder: Path, key: str,
            build: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Arrays from `folder` when its key matches and each array's bytes still have the
    checksum stored with them, else built and stored there. The key covers the PNGs'
    names, sizes and times, not the cache's own bytes: a damaged cache would otherwise
    train and predict on wrong images without a word."""
    meta = folder / "key.json"
    if meta.exists():
        try:
            stored = json.loads(meta.read_text())
            if stored["key"] == key:
                arrays = {a: np.load(folder / f"{a}.npy") for a in stored["arrays"]}
                if all(_checksum(arrays[a]) == stored["sha256"][a] for a in arrays):
                    return arrays
        except (OSError, ValueError, KeyError, TypeError, EOFError):
            pass  # a damaged cache is rebuilt
    arrays = build()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        meta.unlink(missing_ok=True)
        for a, array in arrays.items():
            with atomic_open(folder / f"{a}.npy", "wb") as f:
                np.save(f, array)
        with atomic_open(meta, "w") as f:
            json.dump({"key": key, "arrays": sorted(arrays),
                       "sha256": {a: _checksum(array) for a, array in arrays.items()}}, f)
    except OSError:
        pass  # a read-only data folder still loads, just without a cache
    return arrays


def _checksum(array: np.ndarray) -> str:
    h = hashlib.sha256(f"{array.dtype.str}{array.shape}".encode())
    h.update(np.ascontiguousarray(array).data)
    return h.hexdigest()
