"""The decode floor of ``freq`` on a CelebAMask-HQ tree: a plain numpy + Pillow script that decodes
every part mask once and does the least a count needs, in N processes (chunks of images).

    python scripts/decode_floor.py ROOT --workers 2 --mode array
    python scripts/decode_floor.py ROOT --workers 2 --mode merge --orders '[["skin", ...], ...]'

``--mode load``: Pillow decodes each mask (``Image.load``), nothing else. ``array``: decoded into a
numpy array (``np.asarray``). ``merge``: ``array``, then the masks painted into one label map per
order in ``--orders`` (later parts over earlier ones), as any merge must. Nothing is counted or
written. It imports nothing from lt_faceparse, so its start-up is Python + numpy + Pillow only.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import re

import numpy as np
from PIL import Image

MASK_NAME = re.compile(r"^(\d+)_([a-z_]+)\.png$")


def list_images(root: str) -> list[dict[str, str]]:
    """{part: path} of every image, by HQ index."""
    images: dict[int, dict[str, str]] = {}
    base = os.path.join(root, "CelebAMask-HQ-mask-anno")
    for sub in sorted(os.listdir(base)):
        for entry in os.scandir(os.path.join(base, sub)):
            m = MASK_NAME.match(entry.name)
            if m:
                images.setdefault(int(m.group(1)), {})[m.group(2)] = entry.path
    return [images[i] for i in sorted(images)]


def _as_mask(img: Image.Image) -> np.ndarray:
    arr = np.asarray(img)
    if arr.ndim == 3:
        arr = np.maximum(np.maximum(arr[..., 0], arr[..., 1]), arr[..., 2])
    return arr > 0


def _chunk(args: tuple[list[dict[str, str]], str, list[list[str]]]) -> int:
    images, mode, orders = args
    for files in images:
        masks = {}
        for part, path in files.items():
            with Image.open(path) as img:
                img.load()
                if mode != "load":
                    masks[part] = _as_mask(img)
        for order in orders:
            label = np.zeros(next(iter(masks.values())).shape, dtype=np.uint8)
            for value, part in enumerate(order, 1):
                if part in masks:
                    np.copyto(label, value, where=masks[part])
    return len(images)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--mode", choices=["load", "array", "merge"], default="array")
    parser.add_argument("--orders", default="[]", help="JSON list of paint orders (mode merge)")
    args = parser.parse_args()
    images = list_images(args.root)
    orders = json.loads(args.orders) if args.mode == "merge" else []
    size = max(1, min(32, len(images) // (4 * args.workers)))
    jobs = [(images[i:i + size], args.mode, orders) for i in range(0, len(images), size)]
    with mp.get_context("fork").Pool(args.workers) as pool:
        done = sum(pool.imap_unordered(_chunk, jobs))
    print(f"{done} images, {sum(map(len, images))} masks ({args.mode}, {len(orders)} orders)")


if __name__ == "__main__":
    main()
