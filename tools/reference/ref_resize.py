"""Stage `resize`: Pillow resize goldens for every filter (resize/resize.npz).

The preprocessing goldens only exercise BICUBIC (clip, resnet50) and BILINEAR (vgg16). This stage covers the
remaining filters of Pillow 13.0.0 -- NEAREST 0, LANCZOS 1, BILINEAR 2, BICUBIC 3, BOX 4, HAMMING 5, MKS2013 6,
MKS2021 7 -- with `Image.resize((w, h), resample=F)` (no box, reducing_gap=None) on mode "RGB" images.

Sources are generated fixture images, decoded as the pipeline does (`Image.open(f).convert("RGB")`, pixels only; the
same arrays as decoded.npz). Target sizes (per source, see SIZES) cover: non-integer up- and downscaling, integer
factors (1/2, 2x), one axis only (each axis, growing and shrinking), extreme ratios (1xN, Nx1, 1x1, 250x3, 2x150), the pass order
Pillow 13 picks in src/libImaging/Resample.c (vertical pass first when the height shrinks by more than twice as many
pixels as the width; otherwise horizontal first) on both sides of its boundary, and a 1-px-wide source.

Keys: `<src>__<filter>__<w>x<h>` -> uint8 array h x w x 3, where <filter> is the lower-case Pillow name
(`Image.Resampling.MKS2013.name.lower()` == "mks2013").
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

FILTERS = [Image.Resampling(i) for i in range(8)]  # raises if this Pillow lacks MKS2013 / MKS2021

# source file -> target (width, height) list. Comments give width / height loss (source - target) where the pass
# order matters: vertical first iff height loss > 0 and height loss > 2 * width loss.
SIZES: dict[str, list[tuple[int, int]]] = {
    # Poster-like flat shapes with hard edges (ringing filters overshoot and must clip); compresses well.
    "png_palette8_90x60.png": [
        (113, 71),   # upscale, non-integer factors 1.26 / 1.18
        (45, 30),    # exact 1/2
        (53, 37),    # downscale ~0.6 both (losses 37 / 23: horizontal first)
        (31, 22),    # downscale ~2.9 / 2.7
        (90, 41),    # height only, shrinking
        (90, 71),    # height only, growing
        (107, 60),   # width only, growing
        (38, 60),    # width only, shrinking
        (1, 60),     # 1 x N
        (90, 1),     # N x 1
        (1, 1),
        (250, 3),    # extreme ratio, much wider and much shorter (vertical first: losses -160 / 57)
        (2, 150),    # extreme ratio, much narrower and much taller
        (80, 12),    # vertical first: losses 10 / 48
        (110, 14),   # vertical first with the width growing: losses -20 / 46
        (65, 10),    # boundary: losses 25 / 50 -> horizontal first
        (65, 9),     # boundary: losses 25 / 51 -> vertical first
    ],
    # Noisy photo-like content (every rounding difference shows); small outputs only, it barely compresses.
    "jpeg_rgb420_120x180.jpg": [
        (23, 34),    # downscale ~5.2 both (losses 97 / 146: horizontal first)
        (70, 12),    # vertical first: losses 50 / 168
        (119, 4),    # vertical first, extreme height shrink: losses 1 / 176
        (126, 6),    # vertical first with the width growing: losses -6 / 174
        (3, 180),    # width only, strong shrink
        (120, 5),    # height only, strong shrink
        (1, 37),
        (13, 1),
    ],
    "png_1x24.png": [
        (1, 7),      # height only, shrinking, from a 1-px-wide source
        (1, 40),     # height only, growing
        (5, 24),     # width only, from 1 px
        (9, 40),     # both growing
        (2, 48),     # exact 2x
        (3, 5),      # width grows, height shrinks (vertical first: losses -2 / 19)
    ],
}


def pillow_pass_order(src: Image.Image, size: tuple[int, int], f: Image.Resampling) -> str:
    """'H' or 'V': which single-axis composition equals the full resize (the order Pillow actually ran)."""
    w, h = size
    full = np.asarray(src.resize(size, f))
    horizontal_first = np.array_equal(full, np.asarray(src.resize((w, src.height), f).resize(size, f)))
    vertical_first = np.array_equal(full, np.asarray(src.resize((src.width, h), f).resize(size, f)))
    if horizontal_first == vertical_first:
        return "?"
    return "H" if horizontal_first else "V"


def stage_resize(out: Path) -> None:
    from make_fixtures import load_rgb, save_npz
    assert [f.name for f in FILTERS] == ["NEAREST", "LANCZOS", "BILINEAR", "BICUBIC", "BOX", "HAMMING",
                                         "MKS2013", "MKS2021"], FILTERS
    arrays: dict[str, np.ndarray] = {}
    orders: dict[str, int] = {"H": 0, "V": 0, "?": 0}
    for name, sizes in SIZES.items():
        src = load_rgb(out, name)
        assert src.mode == "RGB"
        assert len(set(sizes)) == len(sizes) and src.size not in sizes, name
        for w, h in sizes:
            width_loss, height_loss = src.width - w, src.height - h
            expect_order = "V" if height_loss > 0 and height_loss > 2 * width_loss else "H"
            for f in FILTERS:
                resized = np.asarray(src.resize((w, h), resample=f))
                assert resized.dtype == np.uint8 and resized.shape == (h, w, 3), (name, f, resized.shape)
                arrays[f"{name}__{f.name.lower()}__{w}x{h}"] = resized
                if f != Image.Resampling.NEAREST and w != src.width and h != src.height:
                    # The documented pass-order rule must be what Pillow did (where the order is observable).
                    order = pillow_pass_order(src, (w, h), f)
                    orders[order] += 1
                    assert order in (expect_order, "?"), (name, f.name, w, h, order, expect_order)
    assert orders["H"] > 0 and orders["V"] > 0, orders
    save_npz(out / "resize" / "resize.npz", arrays)
    print(f"resize/resize.npz: {len(arrays)} arrays ({len(FILTERS)} filters); two-pass cases by observed order {orders}")
