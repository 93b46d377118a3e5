"""The three PosterSim image models as PyTorch modules `pixel_values (N,3,224,224) -> embedding (N,D)`.

Shared by export_onnx.py, bench_embed.py, parity.py and ref_embed.py. Everything loads from a Hugging Face cache
directory (the layout `tools/reference/make_fixtures.py --full-size` writes) with the hub offline; nothing is
downloaded. `use_cache(DIR)` must run before transformers / huggingface_hub / timm are imported, because
huggingface_hub reads HF_HUB_CACHE and HF_HUB_OFFLINE at import time.

What each model returns (the seed pipeline's vectors, see issue 3):
  clip      CLIPModel.get_image_features(...).pooler_output = visual_projection(post_layernorm(CLS)), 512-d
  resnet50  ResNetModel(...).pooler_output flattened, 2048-d (ResNetForImageClassification checkpoint, `resnet.` keys)
  vgg16     timm vgg16: forward_head(forward_features(x), pre_logits=True) = fc7 after its ReLU, 4096-d
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REFERENCE_DIR = BENCH_DIR.parent.parent / "tools" / "reference"


@dataclass(frozen=True)
class ModelSpec:
    name: str       # PosterSim's model name (`postersim embed --model NAME`)
    repo: str       # Hugging Face repo id inside the cache
    dim: int        # embedding width


MODELS: dict[str, ModelSpec] = {
    "clip": ModelSpec("clip", "openai/clip-vit-base-patch32", 512),
    "resnet50": ModelSpec("resnet50", "microsoft/resnet-50", 2048),
    "vgg16": ModelSpec("vgg16", "timm/vgg16.tv_in1k", 4096),
}
MODEL_NAMES = tuple(MODELS)


def use_cache(cache: Path) -> None:
    """Point huggingface_hub at `cache`, offline. Call before importing transformers/timm/huggingface_hub."""
    if "huggingface_hub" in sys.modules and os.environ.get("HF_HUB_CACHE") != str(cache):
        raise RuntimeError("use_cache() must run before huggingface_hub is imported")
    os.environ["HF_HUB_CACHE"] = str(cache)
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def snapshot_dir(cache: Path, repo: str) -> Path:
    """`<cache>/models--org--name/snapshots/<refs/main>`; a clear error if the cache lacks the repo."""
    repo_dir = cache / ("models--" + repo.replace("/", "--"))
    ref = repo_dir / "refs" / "main"
    if not ref.is_file():
        raise SystemExit(f"{repo} is not in the cache {cache} (no {ref}); write it with "
                         f"tools/reference/make_fixtures.py --full-size --out {cache}")
    snap = repo_dir / "snapshots" / ref.read_text().strip()
    if not snap.is_dir():
        raise SystemExit(f"{repo}: refs/main names a missing snapshot {snap}")
    return snap


def weight_files(cache: Path, name: str) -> list[Path]:
    """The weight files of a model (resolved through the snapshot symlinks to their blobs)."""
    snap = snapshot_dir(cache, MODELS[name].repo)
    files = [p for p in sorted(snap.iterdir()) if p.name.endswith((".safetensors", ".bin", ".pth"))]
    if not files:
        raise SystemExit(f"{MODELS[name].repo}: no weight file in {snap}")
    return [p.resolve() for p in files]


def weights_bytes(cache: Path, name: str) -> int:
    return sum(p.stat().st_size for p in weight_files(cache, name))


def load_torch(name: str, cache: Path):
    """The eval-mode torch module for `name`: pixel_values (N,3,224,224) float32 -> (N, dim) float32."""
    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    spec = MODELS[name]
    if name == "clip":
        from transformers import CLIPModel

        class ClipImage(torch.nn.Module):
            def __init__(self, m):
                super().__init__()
                self.m = m

            def forward(self, pixel_values):
                return self.m.get_image_features(pixel_values=pixel_values).pooler_output

        # The text tower is loaded too (the engine serves embed-text from the same checkpoint), so the resident
        # memory compares like with like; it takes no part in the image forward.
        model = ClipImage(CLIPModel.from_pretrained(spec.repo, cache_dir=cache, local_files_only=True))
    elif name == "resnet50":
        from transformers import ResNetModel

        class ResNetPooled(torch.nn.Module):
            def __init__(self, m):
                super().__init__()
                self.m = m

            def forward(self, pixel_values):
                return self.m(pixel_values=pixel_values).pooler_output.flatten(1)

        # ResNetModel.from_pretrained on a ResNetForImageClassification checkpoint strips the `resnet.` prefix and
        # drops the classifier.
        model = ResNetPooled(ResNetModel.from_pretrained(spec.repo, cache_dir=cache, local_files_only=True))
    elif name == "vgg16":
        import timm

        class VggFc7(torch.nn.Module):
            def __init__(self, m):
                super().__init__()
                self.m = m

            def forward(self, pixel_values):
                return self.m.forward_head(self.m.forward_features(pixel_values), pre_logits=True)

        model = VggFc7(timm.create_model("hf-hub:" + spec.repo, pretrained=True))
    else:
        raise SystemExit(f"unknown model {name!r} (one of {', '.join(MODEL_NAMES)})")
    return model.eval()


def sample_inputs(cache: Path, name: str):
    """(N,3,224,224) float32: the golden images' reference tensors for `name` (DIR/goldens/reference.npz), else a
    seeded random batch; returns (array, description). Needs numpy only (the ORT worker never imports torch)."""
    import numpy as np
    ref = cache / "goldens" / "reference.npz"
    if ref.is_file():
        with np.load(ref) as z:
            keys = sorted(k for k in z.files if k.endswith(f"__{name}_tensor"))
            if keys:
                return np.stack([z[k] for k in keys]).astype(np.float32), "golden tensors"
    rng = np.random.default_rng(20240)
    return rng.standard_normal((3, 3, 224, 224), dtype=np.float32), "seeded random tensors"


def ort_session(path: Path, threads: int):
    """An ONNX Runtime CPU session: `threads` intra-op threads, 1 inter-op thread, sequential, all graph
    optimisations (the configuration issue 3 benchmarks against)."""
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])


def parse_models(text: str) -> list[str]:
    names = [s.strip().lower() for s in text.split(",") if s.strip()]
    for n in names:
        if n not in MODELS:
            raise SystemExit(f"unknown model {n!r} (one of {', '.join(MODEL_NAMES)})")
    return names


def peak_rss_bytes() -> int:
    """VmHWM of this process (peak resident set), in bytes."""
    return _status_kib("VmHWM") * 1024


def current_rss_bytes() -> int:
    return _status_kib("VmRSS") * 1024


def _status_kib(field: str) -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    # Not Linux: ru_maxrss is the peak in KiB on Linux, bytes on macOS; only the peak is available.
    import resource
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak
