"""Read a folder of images, one sub-folder per class (the class is the sub-folder's name).

Layout: `root/<class>/<image>`; or, with splits, `root/train/<class>/<image>` and
`root/test/<class>/<image>`. Hidden entries (starting with '.') and files of other types
are ignored. Images become uint8 arrays: if any image has colour, all become RGB (h, w, 3);
otherwise they stay grayscale (h, w). Alpha channels are dropped; GIFs give their first frame.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from contrastkit.data.dataset import Dataset
from contrastkit.errors import DataError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
_GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}


def _visible_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _images_in(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS
    )


def _is_split_layout(root: Path) -> bool:
    train, test = root / "train", root / "test"
    return all(p.is_dir() and _visible_dirs(p) and not _images_in(p) for p in (train, test))


def _unreadable(file: Path, err: Exception) -> DataError:
    detail = str(err).replace(f"'{file}'", "").replace(str(file), "").strip(" :")
    return DataError(f"Image {file} cannot be read ({detail}); remove or replace it.")


def folder_has_split(root: Path, split: str) -> bool:
    """True when `root` holds `train/` and `test/` folders of class sub-folders."""
    return _is_split_layout(root) and (root / split).is_dir()


def read_image_folder(root: Path, source: str, split: str | None) -> Dataset:
    """Images and their class names (str labels) from a folder of class sub-folders."""
    from PIL import Image, UnidentifiedImageError

    where = source  # the folder named in messages; Dataset.source stays as the user gave it
    if _is_split_layout(root):
        root = root / (split or "train")
        where = f"{source.rstrip('/')}/{split or 'train'}"
    elif split == "test":
        raise DataError(
            f"{source} has no test split (no 'train' and 'test' sub-folders); pass a test folder."
        )
    classes = _visible_dirs(root)
    if not classes:
        raise DataError(
            f"{where} holds no class sub-folders; put the images of each class in a "
            "sub-folder named after the class."
        )
    files: list[Path] = []
    labels: list[str] = []
    for folder in classes:
        found = _images_in(folder)
        if not found:
            raise DataError(
                f"Class folder {folder} holds no images ({', '.join(IMAGE_EXTENSIONS)}); "
                "add images or remove the folder."
            )
        files += found
        labels += [folder.name] * len(found)

    modes, shapes = [], []
    for file in files:  # first pass reads headers only: modes and sizes
        try:
            with Image.open(file) as image:
                modes.append(image.mode)
                shapes.append((image.height, image.width))
        except (UnidentifiedImageError, OSError) as err:
            raise _unreadable(file, err) from err
    if len(set(shapes)) > 1:
        other = next(i for i, s in enumerate(shapes) if s != shapes[0])
        first, second = (files[i].relative_to(root) for i in (0, other))
        raise DataError(
            f"Images in {where} differ in size (h, w): {first} is {shapes[0]} but {second} is "
            f"{shapes[other]}; resize them to one size."
        )
    target = "L" if all(m in _GRAY_MODES for m in modes) else "RGB"
    height, width = shapes[0]
    out = np.empty((len(files), height, width) + ((3,) if target == "RGB" else ()), np.uint8)
    for i, file in enumerate(files):
        try:
            with Image.open(file) as image:
                out[i] = np.asarray(image.convert(target))
        except (UnidentifiedImageError, OSError) as err:
            raise _unreadable(file, err) from err
    return Dataset(
        kind="images",
        inputs=out,
        labels=np.asarray(labels, dtype=object),
        source=source,
        format="images",
        split=split,
        files=[str(f.relative_to(root)) for f in files],
    )
