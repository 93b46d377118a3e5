"""Real preprocessing configurations of the three model repos PosterSim uses.

The two transformers configs are written in the legacy form the Hub repos carry (`feature_extractor_type`, integer
`size`/`crop_size`); transformers 5.23 still loads them, and `check_processor_configs` asserts the loaded processors
have exactly the documented defaults (`CLIPImageProcessorPil()` defaults are openai's CLIP values; ConvNext with
size 224, crop_pct 0.875, bicubic, ImageNet mean/std). The timm config comes straight from timm's registry.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

# openai/clip-vit-base-patch32 preprocessor_config.json
CLIP_PREPROCESSOR_CONFIG = {
    "crop_size": 224,
    "do_center_crop": True,
    "do_normalize": True,
    "do_resize": True,
    "feature_extractor_type": "CLIPFeatureExtractor",
    "image_mean": [0.48145466, 0.4578275, 0.40821073],
    "image_std": [0.26862954, 0.26130258, 0.27577711],
    "resample": 3,
    "size": 224,
}

# microsoft/resnet-50 preprocessor_config.json
RESNET50_PREPROCESSOR_CONFIG = {
    "crop_pct": 0.875,
    "do_normalize": True,
    "do_resize": True,
    "feature_extractor_type": "ConvNextFeatureExtractor",
    "image_mean": [0.485, 0.456, 0.406],
    "image_std": [0.229, 0.224, 0.225],
    "resample": 3,
    "size": 224,
}

VGG16_TIMM_NAME = "vgg16.tv_in1k"


def vgg16_pretrained_cfg() -> dict:
    import timm
    return timm.models.get_pretrained_cfg(VGG16_TIMM_NAME).to_dict()


def load_pil_processor(config: dict):
    """Load a transformers image processor from a preprocessor_config.json with the Pillow backend.

    transformers 5.x defaults to the torchvision ("fast") backend; `backend="pil"` selects the `...Pil` classes
    (image_processing_pil_*.py), which resize with PIL.Image.resize like the 4.x "slow" processors did.
    """
    from transformers import AutoImageProcessor
    from transformers.image_processing_backends import PilBackend
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "preprocessor_config.json").write_text(json.dumps(config))
        proc = AutoImageProcessor.from_pretrained(d, backend="pil")
    assert isinstance(proc, PilBackend), type(proc)
    return proc


def clip_processor():
    proc = load_pil_processor(CLIP_PREPROCESSOR_CONFIG)
    assert type(proc).__name__ == "CLIPImageProcessorPil", type(proc)
    from transformers import CLIPImageProcessorPil
    ref = CLIPImageProcessorPil()
    for k in ("size", "crop_size", "resample", "image_mean", "image_std", "rescale_factor", "do_center_crop",
              "do_convert_rgb"):
        assert getattr(proc, k) == getattr(ref, k) or list(getattr(proc, k)) == list(getattr(ref, k)), k
    return proc


def resnet50_processor():
    proc = load_pil_processor(RESNET50_PREPROCESSOR_CONFIG)
    assert type(proc).__name__ == "ConvNextImageProcessorPil", type(proc)
    assert proc.size.shortest_edge == 224 and proc.crop_pct == 0.875 and int(proc.resample) == 3
    assert list(proc.image_mean) == [0.485, 0.456, 0.406] and list(proc.image_std) == [0.229, 0.224, 0.225]
    assert not proc.do_center_crop  # the crop happens inside ConvNextImageProcessorPil.resize
    return proc


def vgg16_transform():
    import timm.data
    cfg = vgg16_pretrained_cfg()
    data_cfg = timm.data.resolve_data_config(pretrained_cfg=cfg)
    return timm.data.create_transform(**data_cfg), data_cfg
