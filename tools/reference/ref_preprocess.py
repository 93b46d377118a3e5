"""Stage `preprocess`: per-model preprocessing goldens (preprocess/{clip,resnet50,vgg16}.npz).

Produced by (transformers 5.23 / timm 1.0.31 / torchvision 0.29.2 / Pillow 13.0.0):
  clip      transformers CLIPImageProcessorPil (Pillow backend; NOT the default torchvision CLIPImageProcessor),
            openai/clip-vit-base-patch32 config: shortest edge -> 224 with PIL bicubic, long edge
            int(224 * long / short) (truncation), centre crop 224 with top = (H - 224) // 2 (floor),
            then float64(x) * (1/255) cast to float32, then (x - mean_f32) / std_f32 in float32.
  resnet50  transformers ConvNextImageProcessorPil, microsoft/resnet-50 config: shortest edge -> int(224 / 0.875) =
            256 bicubic (long edge truncated), centre crop 224 (floor), same rescale/normalise as clip.
  vgg16     timm create_transform(resolve_data_config(vgg16.tv_in1k)): torchvision Resize(256, bilinear) on the
            PIL image (PIL.Image.resize, long edge truncated), CenterCrop(224) with
            top = int(round((H - 224) / 2.0)) -- Python round(): halves go to the EVEN integer --, ToTensor
            (float32 x / 255, a true division), Normalize (float32 (x - mean) / std).
Every processor receives the Pillow-decoded RGB image (Image.open(f).convert("RGB")), as the pipeline does, so the
transformers alpha-compositing in convert_to_rgb never applies.

Keys: `<file>__resized` (uint8 HxWx3, right after the resize, before cropping) for RESIZE_SUBSET and
`<file>__tensor` (float32 3x224x224) for TENSOR_SUBSET (all of them would exceed the fixture size budget).
Every ok image is still run through all three pipelines and checked against the rules above.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

import ref_configs

# The fixture budget (~10 MB) does not allow every array for every image: upsampled noisy posters barely compress.
# Decoding is covered by decoded.npz for all images; the resize only sees RGB8 pixels + a size, so these subsets
# cover the size cases: portrait/landscape, up- and down-sampling, odd sizes with both vgg16 crop roundings
# (67x45 -> top 78 = round(78.5) down, 320x180 -> round(115.5) up), 1-px and 1x1 sources, 3x2 and a binary image
# (bicubic overshoot must clip).
RESIZE_SUBSET = [
    "jpeg_rgb420_120x180.jpg",
    "jpeg_large_500x750.jpg",
    "webp_lossy_320x180.webp",
    "jpeg_rgb420_odd_45x33.jpg",
    "jpeg_rgb422_81x50.jpg",
    "png_interlaced_rgb8_67x45.png",
    "jpeg_gray_64x96.jpg",
    "png_gray1_37x23.png",
    "png_interlaced_tiny_3x2.png",
    "jpeg_1x1.jpg",
    "png_1x24.png",
    "png_24x1.png",
    "jpeg_30x1.jpg",
]
# Images whose final normalised tensors are stored.
TENSOR_SUBSET = [
    "jpeg_rgb420_120x180.jpg",
    "jpeg_large_500x750.jpg",
    "webp_lossy_320x180.webp",
    "png_interlaced_rgb8_67x45.png",
    "png_1x24.png",
]


def processors():
    return {
        "clip": ref_configs.clip_processor(),
        "resnet50": ref_configs.resnet50_processor(),
        "vgg16": ref_configs.vgg16_transform()[0],
    }


def reference_steps(model: str, proc, rgb: Image.Image) -> tuple[np.ndarray, np.ndarray]:
    """(resized uint8 HxWx3, final float32 3x224x224) for one model, using the reference implementations."""
    from transformers.image_processing_base import BatchFeature  # noqa: F401 (import check)
    from transformers.image_transforms import get_resize_output_image_size
    from transformers.image_utils import ChannelDimension, SizeDict
    from transformers.image_processing_backends import PilBackend

    if model == "vgg16":
        resize = proc.transforms[0]
        resized = np.asarray(resize(rgb))
        tensor = proc(rgb).numpy()
        return resized, tensor.astype(np.float32)

    chw = np.moveaxis(np.asarray(rgb), -1, 0)
    if model == "clip":
        resized_chw = proc.resize(chw, size=proc.size, resample=proc.resample)
    else:
        short = int(proc.size.shortest_edge / proc.crop_pct)
        h, w = get_resize_output_image_size(chw, size=short, default_to_square=False,
                                            input_data_format=ChannelDimension.FIRST)
        # The base-class resize (what ConvNextImageProcessorPil.resize calls before its crop).
        resized_chw = PilBackend.resize(proc, chw, size=SizeDict(height=h, width=w), resample=proc.resample)
    assert resized_chw.dtype == np.uint8
    tensor = proc(images=rgb, return_tensors="np")["pixel_values"][0]
    return np.ascontiguousarray(np.moveaxis(resized_chw, 0, -1)), tensor.astype(np.float32)


def check_against_spec(model: str, resized: np.ndarray, tensor: np.ndarray, src: Image.Image, cfg) -> None:
    """Recompute the tensor from the resized image with the rules documented above; must match bit for bit."""
    H, W = resized.shape[:2]
    w0, h0 = src.size
    short_target = 224 if model == "clip" else 256
    short, long = (w0, h0) if w0 <= h0 else (h0, w0)
    new_long = int(short_target * long / short)
    assert (H, W) == ((new_long, short_target) if w0 <= h0 else (short_target, new_long)), (model, H, W, w0, h0)
    if model == "vgg16":
        top, left = int(round((H - 224) / 2.0)), int(round((W - 224) / 2.0))
        crop = resized[top:top + 224, left:left + 224].astype(np.float32)
        x = np.moveaxis(crop, -1, 0) / np.float32(255)
        mean = np.array(cfg["mean"], np.float32)[:, None, None]
        std = np.array(cfg["std"], np.float32)[:, None, None]
        expect = (x - mean) / std
    else:
        top, left = (H - 224) // 2, (W - 224) // 2
        crop = resized[top:top + 224, left:left + 224]
        x = (np.moveaxis(crop, -1, 0).astype(np.float64) * (1 / 255)).astype(np.float32)
        mean = np.array(cfg["image_mean"], np.float32)[:, None, None]
        std = np.array(cfg["image_std"], np.float32)[:, None, None]
        expect = (x - mean) / std
    assert expect.dtype == np.float32
    assert np.array_equal(expect, tensor), (model, float(np.abs(expect - tensor).max()))


def stage_preprocess(out: Path) -> None:
    from make_fixtures import load_rgb, ok_images, save_npz
    procs = processors()
    cfgs = {"clip": ref_configs.CLIP_PREPROCESSOR_CONFIG, "resnet50": ref_configs.RESNET50_PREPROCESSOR_CONFIG,
            "vgg16": ref_configs.vgg16_pretrained_cfg()}
    entries = [e for e in ok_images(out) if not e.get("damaged")]
    names = {e["file"] for e in entries}
    assert all(n in names for n in TENSOR_SUBSET + RESIZE_SUBSET)
    for model, proc in procs.items():
        arrays: dict[str, np.ndarray] = {}
        for e in entries:
            rgb = load_rgb(out, e["file"])
            resized, tensor = reference_steps(model, proc, rgb)
            check_against_spec(model, resized, tensor, rgb, cfgs[model])
            assert tensor.shape == (3, 224, 224)
            if e["file"] in RESIZE_SUBSET:
                arrays[f"{e['file']}__resized"] = resized
            if e["file"] in TENSOR_SUBSET:
                arrays[f"{e['file']}__tensor"] = tensor
        save_npz(out / "preprocess" / f"{model}.npz", arrays)
        print(f"preprocess/{model}.npz: {len(arrays)} arrays")
