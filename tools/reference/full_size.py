"""`make_fixtures.py --full-size --out DIR`: full-size random-weight checkpoints in the Hugging Face cache layout.

Writes (nothing of it is meant for the repository; DIR must lie outside the git work tree):
  DIR/models--openai--clip-vit-base-patch32/   CLIPModel ViT-B/32 (12+12 layers, text tower), config.json,
                                               model.safetensors, preprocessor_config.json, tokenizer files
  DIR/models--microsoft--resnet-50/            ResNetForImageClassification (ResNet-50 v1.5), config.json,
                                               model.safetensors, preprocessor_config.json
  DIR/models--timm--vgg16.tv_in1k/             timm VGG16: config.json, model.safetensors
  DIR/goldens/images/*                         a handful of generated posters
  DIR/goldens/reference.npz                    `<file>__<model>_tensor` (preprocessed input) and `<file>__<model>`
                                               (embedding) for clip / resnet50 / vgg16, `text__<i>` text features
  DIR/goldens/texts.json                       the texts and their token ids

Cache layout, as huggingface_hub writes it: `models--<org>--<name>/refs/main` holds the revision (40 hex),
`snapshots/<rev>/<file>` are relative symlinks to `blobs/<etag>`; the etag of an LFS file (weights) is its sha256
(64 hex), that of a plain git file (json/txt) is its git blob id (sha1 of "blob <len>\\0" + content, 40 hex).
The revision is derived from the file hashes so reruns give the same tree.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

LFS_SUFFIXES = (".safetensors", ".bin", ".pth", ".pt", ".onnx", ".msgpack", ".h5")
GOLDEN_IMAGES = [("poster_a_120x180.jpg", 120, 180, 101), ("poster_b_500x750.jpg", 500, 750, 102),
                 ("poster_c_320x180.png", 320, 180, 103), ("poster_d_67x45.png", 67, 45, 104)]


def file_etag(path: Path) -> str:
    data_hash = hashlib.sha256() if path.name.endswith(LFS_SUFFIXES) else None
    if data_hash is not None:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                data_hash.update(chunk)
        return data_hash.hexdigest()
    data = path.read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def install_into_cache(cache: Path, repo_id: str, staging: Path) -> Path:
    """Move the files of `staging` into the HF cache layout for `repo_id`; returns the snapshot directory."""
    repo_dir = cache / ("models--" + repo_id.replace("/", "--"))
    if repo_dir.exists():
        shutil.rmtree(repo_dir)
    blobs = repo_dir / "blobs"
    blobs.mkdir(parents=True)
    files = sorted(p for p in staging.rglob("*") if p.is_file())
    etags = {p: file_etag(p) for p in files}
    rev = hashlib.sha1("".join(f"{p.relative_to(staging)}:{etags[p]}\n" for p in files).encode()).hexdigest()
    snap = repo_dir / "snapshots" / rev
    for p in files:
        rel = p.relative_to(staging)
        blob = blobs / etags[p]
        if not blob.exists():
            shutil.move(str(p), blob)
        link = snap / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / "main").write_text(rev)  # no trailing newline, as huggingface_hub writes it
    return snap


def inside_git_worktree(path: Path) -> bool:
    probe = path if path.exists() else path.parent
    while not probe.exists():
        probe = probe.parent
    r = subprocess.run(["git", "-C", str(probe), "rev-parse", "--is-inside-work-tree"], capture_output=True, text=True)
    return r.returncode == 0 and r.stdout.strip() == "true"


def run(out: Path) -> None:
    import torch
    from PIL import Image

    import fixture_images
    import ref_checkpoints
    import ref_configs
    import ref_preprocess
    import ref_tokenizer
    from make_fixtures import save_npz, write_json

    if inside_git_worktree(out):
        raise SystemExit(f"{out} is inside a git work tree; full-size output (and the real CLIP vocabulary) must "
                         "not end up in the repository")
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    goldens = out / "goldens"
    (goldens / "images").mkdir(parents=True, exist_ok=True)
    reference: dict[str, np.ndarray] = {}

    images = {}
    for name, w, h, seed in GOLDEN_IMAGES:
        arr = fixture_images.poster(w, h, seed)
        path = goldens / "images" / name
        Image.fromarray(arr).save(path, quality=90) if name.endswith(".jpg") else Image.fromarray(arr).save(path)
        with Image.open(path) as im:
            images[name] = Image.fromarray(np.asarray(im.convert("RGB")), "RGB")
    procs = ref_preprocess.processors()
    tensors = {(n, m): torch.from_numpy(ref_preprocess.reference_steps(m, procs[m], rgb)[1])[None]
               for n, rgb in images.items() for m in ("clip", "resnet50", "vgg16")}
    for (n, m), t in tensors.items():
        reference[f"{n}__{m}_tensor"] = t[0].numpy().copy()

    # ---------------- CLIP ViT-B/32 ----------------
    merges = ref_tokenizer.real_clip_merges()
    vocab_note = "real CLIP vocabulary (open_clip wheel)"
    if merges is None:
        merges = ref_checkpoints.tiny_merges()
        vocab_note = "PosterSim's small BPE vocabulary (real one unavailable)"
    with tempfile.TemporaryDirectory(dir=out) as staging, torch.no_grad():
        model = ref_checkpoints.build_clip(49408, full=True)
        ref_checkpoints.write_clip_dir(Path(staging), model, merges)
        for n in images:
            reference[f"{n}__clip"] = model.get_image_features(
                pixel_values=tensors[(n, "clip")]).pooler_output[0].numpy().copy()
        from transformers import CLIPTokenizer
        tok = CLIPTokenizer.from_pretrained(staging)
        texts = []
        for i, text in enumerate(ref_tokenizer.TEXTS):
            ids = tok(text, truncation=True, max_length=77)["input_ids"]
            texts.append({"index": i, "text": text, "ids_truncated_77": ids})
            reference[f"text__{i}"] = model.get_text_features(
                input_ids=torch.tensor([ids])).pooler_output[0].numpy().copy()
        del model
        snap = install_into_cache(out, "openai/clip-vit-base-patch32", Path(staging))
    write_json(goldens / "texts.json", {"vocabulary": vocab_note, "texts": texts})
    print("clip ->", snap)

    # ---------------- ResNet-50 ----------------
    with tempfile.TemporaryDirectory(dir=out) as staging, torch.no_grad():
        from transformers import ResNetModel
        model = ref_checkpoints.build_resnet(full=True)
        model.save_pretrained(staging)
        (Path(staging) / "preprocessor_config.json").write_text(
            json.dumps(ref_configs.RESNET50_PREPROCESSOR_CONFIG, indent=2) + "\n")
        base = ResNetModel(model.config).eval()
        base.load_state_dict({k[len("resnet."):]: v for k, v in model.state_dict().items()
                              if k.startswith("resnet.")}, strict=True)
        for n in images:
            reference[f"{n}__resnet50"] = base(pixel_values=tensors[(n, "resnet50")]).pooler_output.flatten(1)[0] \
                .numpy().copy()
        del model, base
        snap = install_into_cache(out, "microsoft/resnet-50", Path(staging))
    print("resnet50 ->", snap)

    # ---------------- VGG16 (timm) ----------------
    with tempfile.TemporaryDirectory(dir=out) as staging, torch.no_grad():
        from safetensors.torch import save_file
        model = ref_checkpoints.build_vgg16_timm(full=True)
        sd = {k: v.contiguous() for k, v in model.state_dict().items()}
        save_file(sd, str(Path(staging) / "model.safetensors"))
        (Path(staging) / "config.json").write_text(
            json.dumps(ref_checkpoints.timm_hf_config(model, full=True), indent=2) + "\n")
        for n in images:
            x = tensors[(n, "vgg16")]
            reference[f"{n}__vgg16"] = model.forward_head(model.forward_features(x), pre_logits=True)[0] \
                .numpy().copy()
        del model, sd
        snap = install_into_cache(out, "timm/vgg16.tv_in1k", Path(staging))
    print("vgg16 ->", snap)

    save_npz(goldens / "reference.npz", reference)
    verify_cache(out)
    print(f"full-size checkpoints and goldens written to {out}")


def verify_cache(cache: Path) -> None:
    """Reload everything through huggingface_hub's cache resolution, offline."""
    import torch
    from huggingface_hub import snapshot_download
    from transformers import CLIPModel, ResNetForImageClassification
    os.environ["HF_HUB_OFFLINE"] = "1"
    for repo in ("openai/clip-vit-base-patch32", "microsoft/resnet-50", "timm/vgg16.tv_in1k"):
        snapshot_download(repo, cache_dir=cache, local_files_only=True)
    CLIPModel.from_pretrained("openai/clip-vit-base-patch32", cache_dir=cache, local_files_only=True)
    ResNetForImageClassification.from_pretrained("microsoft/resnet-50", cache_dir=cache, local_files_only=True)
    import timm
    snap = Path(snapshot_download("timm/vgg16.tv_in1k", cache_dir=cache, local_files_only=True))
    m = timm.create_model("vgg16", pretrained=True,
                          pretrained_cfg_overlay={"file": str(snap / "model.safetensors")})
    assert m.pre_logits.fc1.weight.shape == torch.Size([4096, 512, 7, 7])
