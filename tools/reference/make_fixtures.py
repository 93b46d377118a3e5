#!/usr/bin/env python3
"""PosterSim reference script: writes the golden fixtures described in tools/reference/README.md.

Usage (from the package root, with the reference venv):
    .venv-reference/bin/python tools/reference/make_fixtures.py [--out Tests/Fixtures] [--only images,preprocess,...]
    .venv-reference/bin/python tools/reference/make_fixtures.py --full-size DIR          # heavy, for `make parity`

Determinism: every random source is seeded; .npz files are written by `save_npz` below (zip + deflate like
np.savez_compressed, but with fixed zip timestamps) so re-running gives byte-identical files.

Stages (each can be run alone with --only; later stages read earlier outputs from --out):
    images      images/*, images/manifest.json, decoded.npz
    preprocess  preprocess/{clip,resnet50,vgg16}.npz
    resize      resize/resize.npz (Pillow Image.resize for every filter, several sizes; see ref_resize.py)
    checkpoints checkpoints/** (tiny random-weight models, malformed files, dtypes, tensors.npz)
    embeddings  embeddings/** (reference embeddings of the tiny checkpoints, tokenizer ids, text embeddings)
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import sys
import warnings
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fixture_images  # noqa: E402

STAGES = ["images", "preprocess", "resize", "checkpoints", "embeddings"]


# --------------------------------------------------------------------------------------------------------------------
# Deterministic output helpers
# --------------------------------------------------------------------------------------------------------------------

def save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Like np.savez_compressed (zip of `<key>.npy`, deflate), with a fixed timestamp so output is reproducible."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for key, arr in arrays.items():
            assert "/" not in key, key
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arr), allow_pickle=False)
            info = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue(), compresslevel=9)


def write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def describe_exception(e: BaseException) -> str:
    msg = re.sub(r"<_io\.BytesIO object at 0x[0-9a-f]+>", "<file>", str(e))
    return f"{type(e).__module__}.{type(e).__name__}: {msg}".replace("builtins.", "")


# --------------------------------------------------------------------------------------------------------------------
# Stage: images
# --------------------------------------------------------------------------------------------------------------------

NOTES = {
    "png_gray16_40x60.png": "Pillow opens 16-bit gray as mode I;16; convert('RGB') CLIPS each value to 255 "
                            "(min(v,255)), it does not scale by 1/257 or take the high byte",
    "png_gray16_lowrange_40x30.png": "16-bit gray with values 0..600: Pillow's I;16 -> RGB clips at 255",
    "png_rgb16_48x72.png": "16-bit RGB: Pillow keeps the high byte of each sample (v >> 8)",
    "png_rgba16_44x66.png": "16-bit RGBA: high byte, alpha dropped by convert('RGB')",
    "png_graya16_36x54.png": "16-bit gray+alpha: Pillow opens it as RGBA (high byte), alpha dropped",
    "png_interlaced_rgba16_21x13.png": "Adam7 + 16-bit RGBA: high byte, alpha dropped",
    "png_gray1_37x23.png": "1-bit gray opens as mode '1' (0 -> 0, 1 -> 255)",
    "png_gray2_37x23.png": "2-bit gray scales by 85", "png_gray4_37x23.png": "4-bit gray scales by 17",
    "png_palette8_trns_90x60.png": "palette + tRNS: convert('RGB') ignores transparency (palette colour only)",
    "png_rgb_trns_64x48.png": "RGB + tRNS colour key: ignored by convert('RGB')",
    "png_gray8_trns_40x40.png": "gray + tRNS: ignored by convert('RGB')",
    "png_rgba8_80x120.png": "alpha is dropped (no compositing) by Image.convert('RGB')",
    "jpeg_cmyk_adobe_72x108.jpg": "Adobe CMYK, stored inverted; Pillow reads rawmode CMYK;I then CMYK->RGB is "
                                  "R = MULDIV255(255-C, 255-K) (rounded (a*b)/255), no colour management",
    "jpeg_ycck_adobe_72x108.jpg": "Adobe transform 2 (YCCK): libjpeg converts to CMYK, then as the CMYK case",
    "jpeg_exif_orientation6_60x90.jpg": "EXIF orientation 6 present; Image.open/convert do NOT rotate",
    "jpeg_restart_90x135.jpg": "DRI restart interval of 3 MCUs",
    "png_bytes_named.jpg": "PNG bytes in a .jpg file: the format is sniffed from the magic bytes",
    "corrupt_scan_data.jpg": "200 garbage bytes inside the entropy-coded data: libjpeg only WARNS (corrupt data) and "
                             "Pillow returns an image without raising; pixels after the damage are garbage",
    "bad_crc_idat.png": "IDAT CRC wrong: Pillow does not verify IDAT CRCs and decodes normally (libpng would error "
                        "by default; use png_set_crc_action to match)",
    "bad_crc_ihdr.png": "IHDR CRC wrong: Pillow's PNG plugin rejects it while opening",
    "bomb_20000x20000.png": "400 Mpx > 2 * Image.MAX_IMAGE_PIXELS (178956970 px): DecompressionBombError at open "
                            "(between 1x and 2x the limit Pillow only warns)",
    "webp_lossy_alpha_80x80.webp": "lossy WebP with ALPH chunk: Pillow decodes RGBA, convert('RGB') drops alpha",
}

# Entries the image builder marks "probe": their expectation is whatever Pillow does (checked below).
PROBE_ERROR_KIND = {"corrupt_scan_data.jpg": "corrupt", "bad_crc_idat.png": "corrupt"}


def build_image_set() -> list[tuple[str, bytes, dict]]:
    images = fixture_images.build_images()
    # Extra: a 16-bit gray image with small values, to show the clip-at-255 behaviour on real data.
    rng = np.random.default_rng(56)
    low = (np.linspace(0, 600, 40)[None, :] + rng.integers(0, 40, (30, 40))).astype(np.uint32)
    images.append(("png_gray16_lowrange_40x30.png", fixture_images.png_bytes(low[..., None], 16, 0), {"expect": "ok"}))
    names = [n for n, _, _ in images]
    assert len(names) == len(set(names)), "duplicate file names"
    return images


def stage_images(out: Path) -> None:
    img_dir = out / "images"
    img_dir.mkdir(parents=True, exist_ok=True)
    for old in img_dir.iterdir():
        old.unlink()
    manifest = []
    decoded: dict[str, np.ndarray] = {}
    for name, data, hints in build_image_set():
        (img_dir / name).write_bytes(data)
        entry: dict = {"file": name}
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                with Image.open(io.BytesIO(data)) as im:
                    fmt, mode, (w, h) = im.format, im.mode, im.size
                    rgb = np.asarray(im.convert("RGB"))
            if hints["expect"] == "error":
                raise SystemExit(f"{name}: expected Pillow to fail but it decoded ({fmt} {mode} {w}x{h})")
            assert rgb.dtype == np.uint8 and rgb.shape == (h, w, 3)
            entry.update({"format": fmt.lower(), "width": w, "height": h, "expect": "ok", "pillow_mode": mode})
            if caught:
                entry["pillow_warnings"] = sorted({str(c.message) for c in caught})
            decoded[name] = rgb
        except Exception as e:  # noqa: BLE001 - we record whatever Pillow raises
            if hints["expect"] == "ok":
                raise SystemExit(f"{name}: Pillow failed on an 'ok' image: {e!r}")
            kind = hints.get("error") or PROBE_ERROR_KIND[name]
            sniff = data[:12]
            fmt = ("jpeg" if sniff[:3] == b"\xff\xd8\xff" else "png" if sniff[:8] == fixture_images.PNG_SIGNATURE
                   else "webp" if sniff[:4] == b"RIFF" and sniff[8:12] == b"WEBP" else None)
            entry.update({"format": fmt, "expect": "error", "error": kind, "pillow": describe_exception(e)})
        if name in NOTES:
            entry["note"] = NOTES[name]
        if name in PROBE_ERROR_KIND and entry["expect"] == "ok":
            # Damaged file that Pillow nevertheless decodes: a lenient decoder must return these pixels.
            entry["damaged"] = True
        manifest.append(entry)
    write_json(img_dir / "manifest.json", manifest)
    save_npz(out / "decoded.npz", decoded)
    print(f"images: {len(manifest)} files, {len(decoded)} decodable")


def ok_images(out: Path) -> list[dict]:
    manifest = json.loads((out / "images" / "manifest.json").read_text())
    return [e for e in manifest if e["expect"] == "ok"]


def load_rgb(out: Path, name: str) -> Image.Image:
    """The reference pipeline decodes with Pillow to RGB first; the processors then see plain RGB pixels.

    A fresh image is built from the array on purpose: Image.convert("RGB") keeps a colour-key `transparency` in
    `info` (tRNS PNGs), and transformers 5.x's convert_to_rgb then alpha-composites those pixels onto WHITE even
    for an RGB-mode image (4.x returned RGB images untouched). PosterSim's decoder yields RGB8 without any
    transparency, so the goldens must be computed from the pixels alone.
    """
    with Image.open(out / "images" / name) as im:
        return Image.fromarray(np.asarray(im.convert("RGB")), "RGB")


# --------------------------------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------------------------------

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_out = Path(__file__).resolve().parents[2] / "Tests" / "Fixtures"
    ap.add_argument("--out", type=Path, default=default_out)
    ap.add_argument("--only", default=",".join(STAGES), help="comma-separated subset of " + ",".join(STAGES))
    ap.add_argument("--full-size", nargs="?", const="", metavar="DIR",
                    help="write full-size random-weight checkpoints (HF cache layout) + goldens into DIR "
                         "(or into --out); DIR must be outside the git work tree")
    args = ap.parse_args()
    out: Path = args.out.resolve()
    if args.full_size is not None:
        import full_size  # heavy; torch/transformers/timm
        full_size.run(Path(args.full_size).resolve() if args.full_size else out)
        return
    stages = [s.strip() for s in args.only.split(",") if s.strip()]
    for s in stages:
        if s not in STAGES:
            ap.error(f"unknown stage {s}")
    if "images" in stages:
        stage_images(out)
    if "preprocess" in stages:
        import ref_preprocess
        ref_preprocess.stage_preprocess(out)
    if "resize" in stages:
        import ref_resize
        ref_resize.stage_resize(out)
    if "checkpoints" in stages:
        import ref_checkpoints
        ref_checkpoints.stage_checkpoints(out)
    if "embeddings" in stages:
        import ref_embeddings
        ref_embeddings.stage_embeddings(out)


if __name__ == "__main__":
    main()
