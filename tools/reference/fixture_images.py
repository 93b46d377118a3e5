"""Generated test images for PosterSim (phase 1a of make_fixtures.py).

Everything here needs only numpy + Pillow. Images are synthesised (gradients, shapes, text-like bars, noise) from
fixed seeds; nothing is fetched. Formats Pillow cannot write (16-bit RGB/RGBA PNG, 1/2/4-bit PNG, Adam7 interlace,
hand-made broken headers) are assembled chunk by chunk with zlib, following the PNG specification (ISO/IEC 15948)
in our own words: signature, IHDR, optional PLTE/tRNS, IDAT (zlib of filtered scanlines), IEND, each chunk with a
CRC-32 over type+data.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------------------------------------------------
# Poster-like content
# --------------------------------------------------------------------------------------------------------------------

def poster(width: int, height: int, seed: int) -> np.ndarray:
    """uint8 HxWx3 poster-like picture: vertical+diagonal gradient, a disc, boxes, a 'title' of bars, mild noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    ty = yy / max(height - 1, 1)
    tx = xx / max(width - 1, 1)
    c0 = rng.uniform(0, 255, 3)
    c1 = rng.uniform(0, 255, 3)
    img = c0[None, None, :] * (1 - ty[..., None]) + c1[None, None, :] * ty[..., None]
    img += (tx[..., None] - 0.5) * rng.uniform(-60, 60, 3)[None, None, :]
    # A soft-edged disc ("sun"/"face").
    cx, cy = rng.uniform(0.2, 0.8) * width, rng.uniform(0.15, 0.5) * height
    radius = max(1.0, rng.uniform(0.15, 0.35) * min(width, height))
    dist = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2)
    disc = np.clip(radius - dist + 0.5, 0, 1)[..., None]
    img = img * (1 - disc) + rng.uniform(0, 255, 3)[None, None, :] * disc
    # Hard-edged boxes.
    for _ in range(3):
        x0 = int(rng.uniform(0, width))
        y0 = int(rng.uniform(0, height))
        x1 = min(width, x0 + 1 + int(rng.uniform(0, 0.4) * width))
        y1 = min(height, y0 + 1 + int(rng.uniform(0, 0.3) * height))
        img[y0:y1, x0:x1] = rng.uniform(0, 255, 3)
    # Text-like bars in a band near the bottom (sharp high-contrast edges like a title).
    band_h = max(1, height // 16)
    band_y = int(height * 0.78)
    ink = rng.uniform(0, 40, 3) if img[min(band_y, height - 1)].mean() > 128 else rng.uniform(215, 255, 3)
    x = max(0, width // 10)
    while x < width - width // 10:
        glyph_w = 1 + int(rng.integers(1, max(2, width // 25 + 2)))
        if rng.uniform() < 0.8:
            img[band_y:band_y + band_h, x:x + glyph_w] = ink
        x += glyph_w + 1 + int(rng.integers(0, max(1, width // 40 + 1)))
    img += rng.normal(0, 5, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def to_gray(rgb: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(rgb.astype(np.float64) @ [0.299, 0.587, 0.114]), 0, 255).astype(np.uint8)


def alpha_ramp(width: int, height: int, seed: int) -> np.ndarray:
    """uint8 HxW alpha with fully transparent, fully opaque and partial regions."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    a = 255 * (xx / max(width - 1, 1))
    a[: height // 4] = 0
    a[height // 4: height // 2, : width // 3] = 255
    a += rng.normal(0, 3, a.shape)
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------------------------------------------------
# Hand-made PNG writer
# --------------------------------------------------------------------------------------------------------------------

def png_chunk(kind: bytes, data: bytes, crc: int | None = None) -> bytes:
    if crc is None:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def ihdr(width: int, height: int, bit_depth: int, color_type: int, interlace: int = 0) -> bytes:
    return struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, interlace)


def pack_samples(samples: np.ndarray, bit_depth: int) -> list[bytes]:
    """samples: HxWxC integer array -> one packed byte string per row (no filter byte)."""
    h, w, c = samples.shape
    rows = []
    for y in range(h):
        row = samples[y].reshape(-1)
        if bit_depth == 16:
            rows.append(row.astype(">u2").tobytes())
        elif bit_depth == 8:
            rows.append(row.astype(np.uint8).tobytes())
        else:
            per_byte = 8 // bit_depth
            nbytes = (len(row) * bit_depth + 7) // 8
            out = bytearray(nbytes)
            for i, v in enumerate(row.tolist()):
                shift = 8 - bit_depth * (i % per_byte + 1)
                out[i // per_byte] |= (int(v) & ((1 << bit_depth) - 1)) << shift
            rows.append(bytes(out))
    return rows


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    if pb <= pc:
        return b
    return c


def filter_rows(rows: list[bytes], bpp: int, first_filter: int = 0) -> bytes:
    """Apply PNG filters, cycling through all five types row by row so decoders exercise every unfilter path."""
    out = bytearray()
    prev = bytes(len(rows[0])) if rows else b""
    for i, row in enumerate(rows):
        ftype = (first_filter + i) % 5
        res = bytearray(len(row))
        for x in range(len(row)):
            a = row[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if ftype == 0:
                pred = 0
            elif ftype == 1:
                pred = a
            elif ftype == 2:
                pred = b
            elif ftype == 3:
                pred = (a + b) // 2
            else:
                pred = _paeth(a, b, c)
            res[x] = (row[x] - pred) & 0xFF
        out.append(ftype)
        out += res
        prev = row
    return bytes(out)


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def png_bytes(samples: np.ndarray, bit_depth: int, color_type: int, *, plte: bytes | None = None,
              trns: bytes | None = None, interlace: bool = False, extra_chunks: list[bytes] | None = None) -> bytes:
    """Assemble a PNG from HxWxC integer samples (palette indices for color type 3)."""
    h, w, c = samples.shape
    bits_per_pixel = bit_depth * c
    bpp = max(1, bits_per_pixel // 8)
    if interlace:
        raw = bytearray()
        for k, (xs, ys, dx, dy) in enumerate(ADAM7):
            sub = samples[ys::dy, xs::dx]
            if sub.shape[0] == 0 or sub.shape[1] == 0:
                continue  # empty passes contribute no scanlines at all
            raw += filter_rows(pack_samples(sub, bit_depth), bpp, first_filter=k)
        raw = bytes(raw)
    else:
        raw = filter_rows(pack_samples(samples, bit_depth), bpp)
    data = PNG_SIGNATURE + png_chunk(b"IHDR", ihdr(w, h, bit_depth, color_type, 1 if interlace else 0))
    if plte is not None:
        data += png_chunk(b"PLTE", plte)
    if trns is not None:
        data += png_chunk(b"tRNS", trns)
    for ch in extra_chunks or []:
        data += ch
    comp = zlib.compress(raw, 9)
    # Split IDAT in two chunks (decoders must concatenate them).
    half = len(comp) // 2
    data += png_chunk(b"IDAT", comp[:half]) + png_chunk(b"IDAT", comp[half:])
    data += png_chunk(b"IEND", b"")
    return data


def random_palette(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 3), dtype=np.uint8)


def quantize_to(rgb: np.ndarray, palette: np.ndarray) -> np.ndarray:
    d = ((rgb[:, :, None, :].astype(np.int32) - palette[None, None, :, :].astype(np.int32)) ** 2).sum(-1)
    return d.argmin(-1).astype(np.uint8)


# --------------------------------------------------------------------------------------------------------------------
# JPEG helpers
# --------------------------------------------------------------------------------------------------------------------

def pil_bytes(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def jpeg_segments(data: bytes):
    """Yield (offset, marker, length) for JPEG marker segments up to and including SOS."""
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            raise ValueError("not at a marker")
        marker = data[i + 1]
        length = struct.unpack(">H", data[i + 2:i + 4])[0]
        yield i, marker, length
        if marker == 0xDA:
            return
        i += 2 + length


def cmyk_to_ycck_stored(cmyk_pillow: np.ndarray) -> np.ndarray:
    """Values Pillow must be given (as a 'CMYK' image) so the stored components are YCCK for `cmyk_pillow`.

    Pillow reads Adobe 4-channel JPEGs with rawmode 'CMYK;I' (it inverts what libjpeg returns), and writes 'CMYK'
    as 'CMYK;I' as well. libjpeg's YCCK->CMYK conversion (jdcolor.c) treats (255-C,255-M,255-Y) as RGB and the YCC
    components as JFIF YCbCr of that RGB; K passes through. So: libjpeg output = 255 - pillow value; the RGB it encodes
    is 255 - libjpeg output = pillow value; stored = (Y, Cb, Cr of pillow CMY, 255 - pillow K); given value = 255 - stored.
    """
    cmy = cmyk_pillow[..., :3].astype(np.float64)
    r, g, b = cmy[..., 0], cmy[..., 1], cmy[..., 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = -0.168735892 * r - 0.331264108 * g + 0.5 * b + 128
    cr = 0.5 * r - 0.418687589 * g - 0.081312411 * b + 128
    k = 255 - cmyk_pillow[..., 3].astype(np.float64)
    stored = np.stack([y, cb, cr, k], -1)
    stored = np.clip(np.rint(stored), 0, 255).astype(np.uint8)
    return 255 - stored


def set_adobe_transform(data: bytes, transform: int) -> bytes:
    for off, marker, length in jpeg_segments(data):
        if marker == 0xEE and data[off + 4:off + 9] == b"Adobe":
            pos = off + 4 + 11
            return data[:pos] + bytes([transform]) + data[pos + 1:]
    raise ValueError("no Adobe APP14 segment")


def scan_data_offset(data: bytes) -> int:
    for off, marker, length in jpeg_segments(data):
        if marker == 0xDA:
            return off + 2 + length
    raise ValueError("no SOS")


# --------------------------------------------------------------------------------------------------------------------
# The image set
# --------------------------------------------------------------------------------------------------------------------

def build_images() -> list[tuple[str, bytes, dict]]:
    """Return [(file name, bytes, manifest hints)]. Hints: {"expect": "ok"} or {"expect": "error", "error": kind}."""
    out: list[tuple[str, bytes, dict]] = []
    ok = {"expect": "ok"}

    def add(name, data, **hints):
        out.append((name, data, dict(ok, **hints) if not hints.get("expect") else hints))

    # ---------------- JPEG ----------------
    p = poster(120, 180, 1)
    add("jpeg_rgb420_120x180.jpg", pil_bytes(Image.fromarray(p), "JPEG", quality=90, subsampling=2))
    add("jpeg_rgb420_odd_45x33.jpg", pil_bytes(Image.fromarray(poster(45, 33, 2)), "JPEG", quality=85, subsampling=2))
    add("jpeg_rgb444_96x64.jpg", pil_bytes(Image.fromarray(poster(96, 64, 3)), "JPEG", quality=95, subsampling=0))
    add("jpeg_rgb422_81x50.jpg", pil_bytes(Image.fromarray(poster(81, 50, 4)), "JPEG", quality=88, subsampling=1))
    add("jpeg_progressive_100x150.jpg",
        pil_bytes(Image.fromarray(poster(100, 150, 5)), "JPEG", quality=85, progressive=True, subsampling=2))
    add("jpeg_optimized_70x105.jpg",
        pil_bytes(Image.fromarray(poster(70, 105, 6)), "JPEG", quality=80, optimize=True))
    add("jpeg_gray_64x96.jpg", pil_bytes(Image.fromarray(to_gray(poster(64, 96, 7))), "JPEG", quality=90))
    rst = pil_bytes(Image.fromarray(poster(90, 135, 8)), "JPEG", quality=85, restart_marker_blocks=3)
    assert any(m == 0xDD for _, m, _ in jpeg_segments(rst)), "restart interval (DRI) not written"
    add("jpeg_restart_90x135.jpg", rst)
    # CMYK as Photoshop writes it: Adobe APP14 (transform 0) and inverted samples. Pillow writes exactly that.
    rgb = poster(72, 108, 9).astype(np.float64) / 255
    k = 1 - rgb.max(-1)
    cmy = (1 - rgb - k[..., None]) / np.maximum(1 - k[..., None], 1e-6)
    cmyk = np.clip(np.rint(np.concatenate([cmy, k[..., None]], -1) * 255), 0, 255).astype(np.uint8)
    cmyk_jpeg = pil_bytes(Image.fromarray(cmyk, "CMYK"), "JPEG", quality=90)
    assert set_adobe_transform(cmyk_jpeg, 0) == cmyk_jpeg, "expected Adobe transform 0 in Pillow's CMYK JPEG"
    add("jpeg_cmyk_adobe_72x108.jpg", cmyk_jpeg)
    # YCCK: a 4-component JPEG whose components hold Y/Cb/Cr/K, flagged by Adobe transform 2 (Pillow cannot write
    # it directly, so we write the YCCK planes as 'CMYK' and patch the transform byte).
    cmyk2 = np.array(cmyk)
    ycck_given = cmyk_to_ycck_stored(cmyk2)
    ycck_jpeg = set_adobe_transform(pil_bytes(Image.fromarray(ycck_given, "CMYK"), "JPEG", quality=92), 2)
    add("jpeg_ycck_adobe_72x108.jpg", ycck_jpeg)
    # EXIF orientation 6: Pillow's open+convert does NOT apply it, so the decoded array keeps the stored layout.
    exif = Image.Exif()
    exif[0x0112] = 6
    add("jpeg_exif_orientation6_60x90.jpg",
        pil_bytes(Image.fromarray(poster(60, 90, 10)), "JPEG", quality=85, exif=exif.tobytes()))
    add("jpeg_large_500x750.jpg", pil_bytes(Image.fromarray(poster(500, 750, 11)), "JPEG", quality=80))
    add("jpeg_30x1.jpg", pil_bytes(Image.fromarray(poster(30, 1, 12)), "JPEG", quality=90))
    add("jpeg_1x1.jpg", pil_bytes(Image.fromarray(poster(1, 1, 13)), "JPEG", quality=90))

    # ---------------- PNG (Pillow-written) ----------------
    add("png_rgb8_160x240.png", pil_bytes(Image.fromarray(poster(160, 240, 20)), "PNG"))
    rgba = np.dstack([poster(80, 120, 21), alpha_ramp(80, 120, 21)])
    add("png_rgba8_80x120.png", pil_bytes(Image.fromarray(rgba, "RGBA"), "PNG"))
    add("png_gray8_64x64.png", pil_bytes(Image.fromarray(to_gray(poster(64, 64, 22))), "PNG"))
    la = np.dstack([to_gray(poster(50, 75, 23)), alpha_ramp(50, 75, 23)])
    add("png_graya8_50x75.png", pil_bytes(Image.fromarray(la, "LA"), "PNG"))
    pal = random_palette(64, 24)
    idx = quantize_to(poster(90, 60, 24), pal)
    im = Image.fromarray(idx, "P")
    im.putpalette(pal.tobytes())
    add("png_palette8_90x60.png", pil_bytes(im, "PNG"))
    # Palette with tRNS: a per-entry alpha table shorter than the palette (the rest are opaque).
    trns = bytes([0, 64, 128, 200] + [255] * 4 + [0, 30])
    add("png_palette8_trns_90x60.png", pil_bytes(im, "PNG", transparency=trns))
    add("png_rgb_trns_64x48.png",
        pil_bytes(Image.fromarray(poster(64, 48, 25)), "PNG", transparency=tuple(int(v) for v in poster(64, 48, 25)[0, 0])))
    add("png_1x24.png", pil_bytes(Image.fromarray(poster(1, 24, 26)), "PNG"))
    add("png_24x1.png", pil_bytes(Image.fromarray(poster(24, 1, 27)), "PNG"))

    # ---------------- PNG (hand-assembled) ----------------
    def scale16(a8: np.ndarray, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        return (a8.astype(np.uint32) * 257 + rng.integers(-200, 201, a8.shape)).clip(0, 65535).astype(np.uint32)

    add("png_rgb16_48x72.png", png_bytes(scale16(poster(48, 72, 30), 30), 16, 2))
    add("png_gray16_40x60.png", png_bytes(scale16(to_gray(poster(40, 60, 31)), 31)[..., None], 16, 0))
    rgba16 = np.dstack([scale16(poster(44, 66, 32), 32), scale16(alpha_ramp(44, 66, 32), 33)])
    add("png_rgba16_44x66.png", png_bytes(rgba16, 16, 6))
    la16 = np.dstack([scale16(to_gray(poster(36, 54, 34)), 34), scale16(alpha_ramp(36, 54, 34), 35)])
    add("png_graya16_36x54.png", png_bytes(la16, 16, 4))
    g8 = to_gray(poster(37, 23, 36)).astype(np.uint32)
    for bits in (1, 2, 4):
        add(f"png_gray{bits}_37x23.png", png_bytes((g8 >> (8 - bits))[..., None], bits, 0))
    for bits in (1, 2, 4):
        n = 1 << bits
        palb = random_palette(n, 40 + bits)
        # Use the palette as the quantisation target so every index appears.
        idxb = quantize_to(poster(37, 23, 40 + bits), palb)
        add(f"png_palette{bits}_37x23.png", png_bytes(idxb[..., None], bits, 3, plte=palb.tobytes()))
    add("png_interlaced_rgb8_67x45.png", png_bytes(poster(67, 45, 50), 8, 2, interlace=True))
    pal2 = random_palette(4, 51)
    add("png_interlaced_palette2_29x31.png",
        png_bytes(quantize_to(poster(29, 31, 51), pal2)[..., None], 2, 3, plte=pal2.tobytes(), interlace=True))
    # 3x2 interlaced: several Adam7 passes are empty and must be skipped.
    add("png_interlaced_tiny_3x2.png", png_bytes(poster(3, 2, 52), 8, 2, interlace=True))
    add("png_interlaced_rgba16_21x13.png",
        png_bytes(np.dstack([scale16(poster(21, 13, 53), 53), scale16(alpha_ramp(21, 13, 53), 54)]), 16, 6,
                  interlace=True))
    g = to_gray(poster(40, 40, 55))
    add("png_gray8_trns_40x40.png", png_bytes(g[..., None], 8, 0, trns=struct.pack(">H", int(g[0, 0]))))

    # ---------------- WebP ----------------
    add("webp_lossy_100x150.webp", pil_bytes(Image.fromarray(poster(100, 150, 60)), "WEBP", quality=80, method=4))
    add("webp_lossless_64x96.webp", pil_bytes(Image.fromarray(poster(64, 96, 61)), "WEBP", lossless=True))
    wa = np.dstack([poster(80, 80, 62), alpha_ramp(80, 80, 62)])
    add("webp_lossy_alpha_80x80.webp", pil_bytes(Image.fromarray(wa, "RGBA"), "WEBP", quality=75))
    add("webp_lossless_alpha_48x32.webp",
        pil_bytes(Image.fromarray(np.dstack([poster(48, 32, 63), alpha_ramp(48, 32, 63)]), "RGBA"), "WEBP",
                  lossless=True))
    add("webp_lossy_320x180.webp", pil_bytes(Image.fromarray(poster(320, 180, 64)), "WEBP", quality=85))

    # ---------------- Misnamed ----------------
    add("png_bytes_named.jpg", pil_bytes(Image.fromarray(poster(50, 40, 70)), "PNG"))

    # ---------------- Malformed ----------------
    def err(name, data, kind):
        out.append((name, data, {"expect": "error", "error": kind}))

    err("empty.jpg", b"", "empty")
    err("random_bytes.bin", np.random.default_rng(80).integers(0, 256, 777, dtype=np.uint8).tobytes(),
        "unknownFormat")
    err("text_file.png", b"This is not an image.\nJust some text pretending to be a poster.\n", "unknownFormat")
    base_jpeg = pil_bytes(Image.fromarray(poster(64, 96, 81)), "JPEG", quality=90)
    err("truncated.jpg", base_jpeg[: len(base_jpeg) * 6 // 10], "truncated")
    base_png = pil_bytes(Image.fromarray(poster(64, 96, 82)), "PNG")
    err("truncated.png", base_png[: len(base_png) * 6 // 10], "truncated")
    base_webp = pil_bytes(Image.fromarray(poster(64, 96, 83)), "WEBP", quality=80)
    err("truncated.webp", base_webp[: len(base_webp) * 6 // 10], "truncated")
    # Corrupt JPEG: a valid header followed by a bogus Huffman table definition (counts sum > 256) -> fatal in
    # libjpeg; plus garbage in the middle of the entropy-coded data (see corrupt_scan below).
    out.extend(corrupt_jpegs(base_jpeg))
    # PNG with a bad CRC on IHDR (Pillow checks the CRCs of chunks it reads while opening).
    ihdr_crc_pos = 8 + 8 + 13
    bad = bytearray(base_png)
    bad[ihdr_crc_pos] ^= 0x55
    err("bad_crc_ihdr.png", bytes(bad), "corrupt")
    out.append(("bad_crc_idat.png", bad_idat_crc(base_png), {"expect": "probe"}))
    # Decompression bomb: IHDR claims 20000x20000 RGB (400 Mpx > 2 * Pillow's MAX_IMAGE_PIXELS) with a tiny IDAT.
    bomb = PNG_SIGNATURE + png_chunk(b"IHDR", ihdr(20000, 20000, 8, 2)) + \
        png_chunk(b"IDAT", zlib.compress(b"\x00" * 100)) + png_chunk(b"IEND", b"")
    err("bomb_20000x20000.png", bomb, "tooManyPixels")
    zero = PNG_SIGNATURE + png_chunk(b"IHDR", ihdr(0, 16, 8, 2)) + \
        png_chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + png_chunk(b"IEND", b"")
    err("zero_width.png", zero, "zeroSize")
    out.append(("zero_height.jpg", zero_height_jpeg(base_jpeg), {"expect": "error", "error": "zeroSize"}))
    return out


def corrupt_jpegs(base_jpeg: bytes) -> list[tuple[str, bytes, dict]]:
    res = []
    # Bogus DHT: replace the first DHT's 16 code-length counts with 0xFF each (sum 4080 > 256).
    for off, marker, length in jpeg_segments(base_jpeg):
        if marker == 0xC4:
            counts_pos = off + 5
            bad = base_jpeg[:counts_pos] + b"\xff" * 16 + base_jpeg[counts_pos + 16:]
            res.append(("corrupt_huffman_table.jpg", bad, {"expect": "error", "error": "corrupt"}))
            break
    # Garbage inside the entropy-coded segment (no 0xFF bytes, so no fake markers).
    sos_end = scan_data_offset(base_jpeg)
    mid = sos_end + (len(base_jpeg) - sos_end) // 2
    rng = np.random.default_rng(90)
    junk = rng.integers(0, 255, 200, dtype=np.uint8).tobytes()
    bad = base_jpeg[:mid] + junk + base_jpeg[mid + 200:]
    res.append(("corrupt_scan_data.jpg", bad, {"expect": "probe"}))
    return res


def bad_idat_crc(png: bytes) -> bytes:
    i = 8
    data = bytearray(png)
    while i < len(png):
        length = struct.unpack(">I", png[i:i + 4])[0]
        kind = png[i + 4:i + 8]
        if kind == b"IDAT":
            data[i + 8 + length] ^= 0x55
            return bytes(data)
        i += 12 + length
    raise ValueError("no IDAT")


def zero_height_jpeg(base_jpeg: bytes) -> bytes:
    for off, marker, length in jpeg_segments(base_jpeg):
        if marker in (0xC0, 0xC1, 0xC2):
            pos = off + 5  # FF Cx Lh Ll P Yh Yl
            return base_jpeg[:pos] + b"\x00\x00" + base_jpeg[pos + 2:]
    raise ValueError("no SOF")
