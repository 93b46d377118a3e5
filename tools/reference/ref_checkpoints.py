"""Stage `checkpoints`: tiny random-weight checkpoints in the real repo layouts, malformed files, dtype goldens.

Layouts reproduced (weights are random, widths tiny, structure real):
  clip/                 transformers CLIPModel.save_pretrained (config.json + model.safetensors), openai's
                        preprocessor_config.json, our own small BPE tokenizer files; quick_gelu, patch 32.
  clip-gelu/            same with hidden_act gelu and patch 14 (large-patch14 style).
  resnet50/             transformers ResNetForImageClassification.save_pretrained (resnet.*, classifier.1.*), bottleneck
                        v1.5 (stride on the 3x3), microsoft/resnet-50 preprocessor_config.json.
  resnet50-bin/         the same weights as pytorch_model.bin (torch.save zip format) + config.json.
  vgg16/                timm HF layout: config.json (architecture + pretrained_cfg of vgg16.tv_in1k) and
                        model.safetensors with features.*, pre_logits.fc1 (7x7 conv), pre_logits.fc2, head.fc;
                        13 convs + 5 max-pools like vgg16, tiny channel widths.
  vgg16-torchvision/    vgg16.pth: torchvision VGG state dict (features.N.*, classifier.0/3/6) with the same weights.
  malformed/            broken safetensors / pickles / checkpoints + manifest.json.
  dtypes.safetensors, dtypes.npz, tensors.npz.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import struct
import zipfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

import ref_configs
import ref_tokenizer

N_MERGES = 300
SEED = 20240607


# --------------------------------------------------------------------------------------------------------------------
# Model construction (shared with ref_embeddings / full_size)
# --------------------------------------------------------------------------------------------------------------------

def perturb_(model: nn.Module, seed: int) -> None:
    """Give norm layers, biases and BatchNorm statistics non-trivial values (default init leaves many at 0/1, which
    would hide swapped or ignored parameters in a port)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for mod_name, mod in model.named_modules():
            if isinstance(mod, (nn.LayerNorm, nn.BatchNorm2d)):
                mod.weight.copy_(1 + 0.2 * torch.randn(mod.weight.shape, generator=g))
                mod.bias.copy_(0.1 * torch.randn(mod.bias.shape, generator=g))
                if isinstance(mod, nn.BatchNorm2d):
                    mod.running_mean.copy_(0.1 * torch.randn(mod.running_mean.shape, generator=g))
                    mod.running_var.copy_(0.5 + torch.rand(mod.running_var.shape, generator=g))
            elif isinstance(mod, (nn.Linear, nn.Conv2d)) and mod.bias is not None:
                mod.bias.copy_(0.05 * torch.randn(mod.bias.shape, generator=g))


def tiny_merges() -> list[tuple[str, str]]:
    return ref_tokenizer.train_bpe(ref_tokenizer.corpus(), N_MERGES)


def clip_config(vocab_size: int, *, gelu: bool = False, full: bool = False):
    from transformers import CLIPConfig
    act = "gelu" if gelu else "quick_gelu"
    if full:  # openai/clip-vit-base-patch32
        text = dict(vocab_size=49408, hidden_size=512, intermediate_size=2048, num_hidden_layers=12,
                    num_attention_heads=8, max_position_embeddings=77, hidden_act=act, projection_dim=512)
        vision = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                      image_size=224, patch_size=32, hidden_act=act, projection_dim=512)
        proj = 512
    else:
        text = dict(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                    num_attention_heads=4, max_position_embeddings=77, hidden_act=act, projection_dim=16)
        vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                      image_size=224, patch_size=14 if gelu else 32, hidden_act=act, projection_dim=16)
        proj = 16
    # As in openai's config.json: bos 0 / pad 1 / eos 2 are the legacy values, which make CLIPTextTransformer pool
    # at argmax(input_ids) -- the <|endoftext|> token, the largest id in a CLIP vocabulary.
    text.update(bos_token_id=0, pad_token_id=1, eos_token_id=2, layer_norm_eps=1e-5)
    vision.update(layer_norm_eps=1e-5)
    return CLIPConfig(text_config=text, vision_config=vision, projection_dim=proj, logit_scale_init_value=2.6592)


def build_clip(vocab_size: int, *, gelu: bool = False, full: bool = False, seed: int = SEED):
    from transformers import CLIPModel
    torch.manual_seed(seed)
    model = CLIPModel(clip_config(vocab_size, gelu=gelu, full=full)).eval()
    perturb_(model, seed + 1)
    return model


def resnet_config(full: bool = False):
    from transformers import ResNetConfig
    if full:  # microsoft/resnet-50
        return ResNetConfig(embedding_size=64, hidden_sizes=[256, 512, 1024, 2048], depths=[3, 4, 6, 3],
                            layer_type="bottleneck", hidden_act="relu", downsample_in_first_stage=False,
                            num_labels=1000)
    return ResNetConfig(embedding_size=8, hidden_sizes=[16, 32, 64, 128], depths=[2, 1, 1, 1],
                        layer_type="bottleneck", hidden_act="relu", downsample_in_first_stage=False, num_labels=10)


def build_resnet(full: bool = False, seed: int = SEED + 10):
    from transformers import ResNetForImageClassification
    torch.manual_seed(seed)
    model = ResNetForImageClassification(resnet_config(full)).eval()
    perturb_(model, seed + 1)
    return model


TINY_VGG16_CFG = [4, 4, "M", 8, 8, "M", 8, 8, 8, "M", 16, 16, 16, "M", 16, 16, 16, "M"]
TINY_VGG_HIDDEN = 32
TINY_VGG_CLASSES = 10


def build_vgg16_timm(full: bool = False, seed: int = SEED + 20):
    """timm VGG (features / pre_logits ConvMlp / head). Tiny: our channel list; fc6/fc7 width 32."""
    import timm
    from timm.models.vgg import VGG, ConvMlp, cfgs
    from timm.layers import ClassifierHead
    torch.manual_seed(seed)
    if full:
        model = timm.create_model("vgg16.tv_in1k", pretrained=False)
    else:
        model = VGG(cfg=TINY_VGG16_CFG, num_classes=TINY_VGG_CLASSES)
        # timm's VGG fixes fc6/fc7 at 4096; shrink them (same module types and key names).
        model.pre_logits = ConvMlp(model.num_features, TINY_VGG_HIDDEN, 7, mlp_ratio=1.0)
        model.head = ClassifierHead(TINY_VGG_HIDDEN, TINY_VGG_CLASSES, pool_type="avg")
        model.head_hidden_size = TINY_VGG_HIDDEN
        assert [v for v in TINY_VGG16_CFG if v == "M"].__len__() == 5 and \
            len([v for v in TINY_VGG16_CFG if v != "M"]) == 13 and len(cfgs["vgg16"]) == len(TINY_VGG16_CFG)
    model.eval()
    perturb_(model, seed + 1)
    return model


def vgg_timm_to_torchvision(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """timm VGG state dict -> torchvision VGG state dict (what timm's _filter_fn undoes when loading tv weights)."""
    out = {}
    for k, v in sd.items():
        if k.startswith("features."):
            out[k] = v
        elif k == "pre_logits.fc1.weight":
            out["classifier.0.weight"] = v.reshape(v.shape[0], -1)
        elif k == "pre_logits.fc1.bias":
            out["classifier.0.bias"] = v
        elif k == "pre_logits.fc2.weight":
            out["classifier.3.weight"] = v.reshape(v.shape[0], -1)
        elif k == "pre_logits.fc2.bias":
            out["classifier.3.bias"] = v
        elif k == "head.fc.weight":
            out["classifier.6.weight"] = v
        elif k == "head.fc.bias":
            out["classifier.6.bias"] = v
        else:
            raise KeyError(k)
    return {k: v.contiguous().clone() for k, v in out.items()}


def build_torchvision_vgg(sd_tv: dict[str, torch.Tensor]):
    """torchvision VGG module with sizes taken from a (possibly tiny) torchvision-style state dict."""
    import torchvision
    from torchvision.models.vgg import make_layers
    cfg = []
    convs = sorted({int(k.split(".")[1]) for k in sd_tv if k.startswith("features.")})
    prev = -10
    for idx in convs:
        if prev >= 0 and idx - prev > 2:  # conv, relu, [pool] -> a gap of 3 means a max-pool in between
            cfg.append("M")
        cfg.append(sd_tv[f"features.{idx}.weight"].shape[0])
        prev = idx
    cfg.append("M")
    model = torchvision.models.VGG(make_layers(cfg), num_classes=sd_tv["classifier.6.weight"].shape[0],
                                   init_weights=False)
    hidden = sd_tv["classifier.0.weight"].shape[0]
    model.classifier = nn.Sequential(
        nn.Linear(sd_tv["classifier.0.weight"].shape[1], hidden), nn.ReLU(True), nn.Dropout(),
        nn.Linear(hidden, sd_tv["classifier.3.weight"].shape[0]), nn.ReLU(True), nn.Dropout(),
        nn.Linear(sd_tv["classifier.6.weight"].shape[1], sd_tv["classifier.6.weight"].shape[0]))
    model.load_state_dict(sd_tv, strict=True)
    return model.eval()


def timm_hf_config(model, full: bool) -> dict:
    """config.json of a timm Hub repo (as timm's save_config_for_hf writes it), for vgg16.tv_in1k."""
    cfg = ref_configs.vgg16_pretrained_cfg()
    pretrained_cfg = {k: v for k, v in cfg.items()
                      if k not in ("url", "hf_hub_id", "architecture", "file", "hf_hub_filename", "source")
                      and v is not None and v != ""}
    pretrained_cfg = json.loads(json.dumps(pretrained_cfg))  # tuples -> lists
    pretrained_cfg["num_classes"] = model.num_classes
    out = {"architecture": cfg["architecture"], "num_classes": model.num_classes,
           "num_features": model.num_features, "global_pool": "avg", "pretrained_cfg": pretrained_cfg}
    if not full:
        # Not a timm key: the tiny widths, for humans (the loader infers widths from tensor shapes).
        out["postersim_tiny"] = {"features_cfg": TINY_VGG16_CFG, "pre_logits_hidden": TINY_VGG_HIDDEN}
    return out


# --------------------------------------------------------------------------------------------------------------------
# Writers
# --------------------------------------------------------------------------------------------------------------------

def torch_save_deterministic(obj, path: Path) -> None:
    buf = io.BytesIO()
    torch.save(obj, buf)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue())


def write_clip_dir(d: Path, model, merges, *, full: bool = False) -> None:
    d.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(d)
    (d / "preprocessor_config.json").write_text(json.dumps(ref_configs.CLIP_PREPROCESSOR_CONFIG, indent=2) + "\n")
    ref_tokenizer.write_clip_tokenizer_files(d, merges)


def write_transformers_config_only(model, d: Path) -> None:
    d.mkdir(parents=True, exist_ok=True)
    model.config.save_pretrained(d)


def safetensors_bytes(header: dict, data: bytes, header_len: int | None = None) -> bytes:
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h) if header_len is None else header_len) + h + data


def pickle_zip(pickle_bytes: bytes, name: str = "archive") -> bytes:
    """A torch.save-style zip: <name>/data.pkl, <name>/version, <name>/byteorder (stored, no compression)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for fname, data in ((f"{name}/data.pkl", pickle_bytes), (f"{name}/byteorder", b"little"),
                            (f"{name}/version", b"3\n")):
            info = zipfile.ZipInfo(fname, date_time=(1980, 1, 1, 0, 0, 0))
            zf.writestr(info, data)
    return buf.getvalue()


def evil_pickle(module: str, name: str, arg: str) -> bytes:
    """Protocol-2 pickle: {'weight': module.name(arg)} built opcode by opcode (never produced by pickling)."""
    a = arg.encode()
    return (b"\x80\x02" + b"}" + b"X" + struct.pack("<I", 6) + b"weight" +
            b"c" + module.encode() + b"\n" + name.encode() + b"\n" +
            b"X" + struct.pack("<I", len(a)) + a + b"\x85" + b"R" + b"s" + b".")


def stage_checkpoints(out: Path) -> None:
    from safetensors.torch import save_file
    ck = out / "checkpoints"
    if ck.exists():
        shutil.rmtree(ck)
    ck.mkdir(parents=True)
    tensors_npz: dict[str, np.ndarray] = {}

    def sample(dirname: str, sd: dict[str, torch.Tensor], keys: list[str]) -> None:
        for k in keys:
            tensors_npz[f"{dirname}__{k}"] = sd[k].detach().float().numpy().copy()

    # ---- CLIP ----
    merges = tiny_merges()
    vocab_size = len(ref_tokenizer.clip_vocab(merges))
    for dirname, gelu in (("clip", False), ("clip-gelu", True)):
        model = build_clip(vocab_size, gelu=gelu, seed=SEED + (5 if gelu else 0))
        write_clip_dir(ck / dirname, model, merges)
        sd = model.state_dict()
        sample(dirname, sd, ["vision_model.embeddings.class_embedding",
                             "vision_model.embeddings.position_embedding.weight",
                             "vision_model.pre_layrnorm.weight",
                             "vision_model.encoder.layers.1.self_attn.k_proj.bias",
                             "vision_model.encoder.layers.0.mlp.fc1.weight",
                             "visual_projection.weight",
                             "text_model.final_layer_norm.bias",
                             "text_projection.weight",
                             "logit_scale"])
        # Large tensors: only a slice is stored (enough to catch layout/transposition mistakes).
        tensors_npz[f"{dirname}__vision_model.embeddings.patch_embedding.weight[:2]"] = \
            sd["vision_model.embeddings.patch_embedding.weight"][:2].float().numpy().copy()
        tensors_npz[f"{dirname}__text_model.embeddings.token_embedding.weight[-4:]"] = \
            sd["text_model.embeddings.token_embedding.weight"][-4:].float().numpy().copy()
    # ---- ResNet-50 ----
    resnet = build_resnet()
    resnet.save_pretrained(ck / "resnet50")
    (ck / "resnet50" / "preprocessor_config.json").write_text(
        json.dumps(ref_configs.RESNET50_PREPROCESSOR_CONFIG, indent=2) + "\n")
    write_transformers_config_only(resnet, ck / "resnet50-bin")
    (ck / "resnet50-bin" / "preprocessor_config.json").write_text(
        json.dumps(ref_configs.RESNET50_PREPROCESSOR_CONFIG, indent=2) + "\n")
    rsd = {k: v.contiguous() for k, v in resnet.state_dict().items()}
    torch_save_deterministic(rsd, ck / "resnet50-bin" / "pytorch_model.bin")
    rkeys = ["resnet.embedder.embedder.convolution.weight",
             "resnet.embedder.embedder.normalization.running_var",
             "resnet.encoder.stages.0.layers.0.shortcut.convolution.weight",
             "resnet.encoder.stages.1.layers.0.layer.1.normalization.bias",
             "resnet.encoder.stages.3.layers.0.layer.2.convolution.weight",
             "classifier.1.weight", "classifier.1.bias"]
    sample("resnet50", rsd, rkeys)
    sample("resnet50-bin", rsd, rkeys)
    # ---- VGG16 (timm + torchvision) ----
    vgg = build_vgg16_timm()
    vsd = {k: v.contiguous() for k, v in vgg.state_dict().items()}
    (ck / "vgg16").mkdir()
    save_file(vsd, str(ck / "vgg16" / "model.safetensors"))
    (ck / "vgg16" / "config.json").write_text(json.dumps(timm_hf_config(vgg, full=False), indent=2) + "\n")
    tvsd = vgg_timm_to_torchvision(vsd)
    torch_save_deterministic(tvsd, ck / "vgg16-torchvision" / "vgg16.pth")
    sample("vgg16", vsd, ["features.0.weight", "features.0.bias", "features.28.weight", "pre_logits.fc1.weight",
                          "pre_logits.fc2.bias", "head.fc.weight"])
    sample("vgg16-torchvision", tvsd, ["features.0.weight", "features.28.weight", "classifier.0.weight",
                                       "classifier.3.weight", "classifier.6.bias"])

    verify_reloads(ck)
    write_dtypes(ck)
    write_malformed(ck, vsd, rsd)
    from make_fixtures import save_npz
    save_npz(ck / "tensors.npz", tensors_npz)
    print(f"checkpoints: {sum(1 for p in ck.rglob('*') if p.is_file())} files")


def verify_reloads(ck: Path) -> None:
    """Load every written checkpoint back through the reference libraries (weights_only for pickles)."""
    from transformers import CLIPModel, ResNetForImageClassification, CLIPTokenizer
    from safetensors.torch import load_file
    for name in ("clip", "clip-gelu"):
        CLIPModel.from_pretrained(ck / name)
        CLIPTokenizer.from_pretrained(ck / name)
    a = ResNetForImageClassification.from_pretrained(ck / "resnet50").state_dict()
    sd_bin = torch.load(ck / "resnet50-bin" / "pytorch_model.bin", weights_only=True)
    assert set(sd_bin) == set(a) and all(torch.equal(sd_bin[k], a[k]) for k in a)
    b = ResNetForImageClassification.from_pretrained(ck / "resnet50-bin").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    vsd = load_file(str(ck / "vgg16" / "model.safetensors"))
    tv = torch.load(ck / "vgg16-torchvision" / "vgg16.pth", weights_only=True)
    build_torchvision_vgg(tv)
    assert torch.equal(vsd["pre_logits.fc1.weight"].reshape(TINY_VGG_HIDDEN, -1), tv["classifier.0.weight"])


# --------------------------------------------------------------------------------------------------------------------
# dtypes
# --------------------------------------------------------------------------------------------------------------------

def write_dtypes(ck: Path) -> None:
    from safetensors.torch import save_file
    from make_fixtures import save_npz
    rng = np.random.default_rng(77)
    special = np.array([0.0, -0.0, 1.0, -1.0, 1 / 3, 0.1, 2.5, -7.75, 65504.0, 65520.0, 70000.0, -1e6, 1e-8, 6e-8,
                        5.96e-8, 6.1e-5, 1e-40, 3.0e38, np.inf, -np.inf, 1.00390625, 1.0078125, 255.5, 1e4 + 0.3],
                       dtype=np.float64)
    values = np.concatenate([special, rng.normal(0, 3, 40)]).astype(np.float64)
    base = torch.from_numpy(values)
    tensors = {
        "f64": base.clone(),
        "f32": base.float(),
        "f16": base.half(),
        "bf16": base.bfloat16(),
        "f32_2d": base.float().reshape(8, 8),
        "bf16_3d": base.bfloat16().reshape(4, 4, 4),
        "i64": torch.from_numpy(np.clip(np.rint(values), -2**40, 2**40).astype(np.int64)),
        "scalar_f32": torch.tensor(3.25, dtype=torch.float32),
        "empty_f32": torch.zeros((0, 3), dtype=torch.float32),
    }
    tensors["f16_nan"] = torch.tensor([float("nan"), 1.0], dtype=torch.float16)
    save_file(tensors, str(ck / "dtypes.safetensors"), metadata={"format": "pt"})
    expected = {k: v.float().numpy().copy() for k, v in tensors.items()}
    save_npz(ck / "dtypes.npz", expected)


# --------------------------------------------------------------------------------------------------------------------
# malformed
# --------------------------------------------------------------------------------------------------------------------

def write_malformed(ck: Path, vgg_sd: dict, resnet_sd: dict) -> None:
    from safetensors.torch import save_file, load_file
    md = ck / "malformed"
    md.mkdir()
    entries = []
    f32 = np.arange(6, dtype="<f4").tobytes()  # 24 bytes

    def add_st(fname, data, kind, desc):
        (md / fname).write_bytes(data)
        try:
            load_file(str(md / fname))
            raise SystemExit(f"safetensors accepted malformed {fname}")
        except Exception as e:  # noqa: BLE001
            msg = f"{type(e).__name__}: {e}"
        entries.append({"file": fname, "expect": "error", "error": kind, "description": desc, "python": msg})

    add_st("offsets_out_of_bounds.safetensors",
           safetensors_bytes({"a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
                              "b": {"dtype": "F32", "shape": [2, 3], "data_offsets": [24, 48]}}, f32),
           "offsetsOutOfBounds", "tensor b's data_offsets end (48) past the 24-byte data section")
    add_st("overlapping.safetensors",
           safetensors_bytes({"a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
                              "b": {"dtype": "F32", "shape": [2, 2], "data_offsets": [8, 24]}}, f32),
           "overlappingTensors", "a covers bytes 0..24 and b 8..24")
    add_st("size_mismatch.safetensors",
           safetensors_bytes({"a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 20]}}, f32[:20]),
           "sizeMismatch", "shape [2,3] x F32 = 24 bytes but the offsets span 20")
    add_st("header_too_large.safetensors",
           safetensors_bytes({"a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}}, f32,
                             header_len=1 << 40),
           "headerTooLarge", "8-byte header length = 2^40, larger than the file")
    add_st("non_json_header.safetensors",
           struct.pack("<Q", 16) + b"this is not json" + f32, "invalidHeader", "header bytes are not JSON")
    add_st("invalid_dtype.safetensors",
           safetensors_bytes({"a": {"dtype": "F33", "shape": [2, 3], "data_offsets": [0, 24]}}, f32),
           "invalidHeader", "unknown dtype string")
    add_st("offsets_reversed.safetensors",
           safetensors_bytes({"a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [24, 0]}}, f32),
           "offsetsOutOfBounds", "data_offsets begin > end")
    add_st("truncated_header.safetensors", struct.pack("<Q", 64) + b'{"a":{"dtype":"F32"', "headerTooLarge",
           "header length 64 but only 19 header bytes follow")
    add_st("short_file.safetensors", b"\x05\x00\x00", "headerTooLarge", "shorter than the 8-byte length prefix")

    # Pickles that reference callables: a restricted unpickler must refuse them without executing anything.
    def add_pickle(fname, module, name, arg, desc):
        data = pickle_zip(evil_pickle(module, name, arg))
        (md / fname).write_bytes(data)
        try:
            torch.load(md / fname, weights_only=True)  # safe: weights_only never calls os.system / eval
            raise SystemExit(f"torch.load(weights_only=True) accepted {fname}")
        except Exception as e:  # noqa: BLE001
            text = re.sub(r"\x1b\[[0-9;]*m", "", str(e))
            lines = [ln.strip() for ln in text.splitlines() if "GLOBAL" in ln or "Unsupported global" in ln]
            msg = f"{type(e).__name__}: {lines[0] if lines else text.splitlines()[0]}"
        entries.append({"file": fname, "expect": "error", "error": "forbiddenGlobal", "description": desc,
                        "python": msg})

    add_pickle("pickle_os_system.pth", "os", "system", "echo postersim-fixture-must-never-run",
               "data.pkl: GLOBAL os.system + REDUCE")
    add_pickle("pickle_builtins_eval.pth", "builtins", "eval", "__import__('os').getcwd()",
               "data.pkl: GLOBAL builtins.eval + REDUCE")
    add_pickle("pickle_posix_system.bin", "posix", "system", "echo postersim-fixture-must-never-run",
               "pytorch_model.bin-style zip whose pickle names posix.system")

    # Checkpoints that parse but do not match the model (for model-loading tests).
    def add_model_dir(dirname, sd, kind, desc, src_cfg_dir):
        d = md / dirname
        d.mkdir()
        save_file(sd, str(d / "model.safetensors"), metadata={"format": "pt"})
        for f in ("config.json", "preprocessor_config.json"):
            if (ck / src_cfg_dir / f).exists():
                shutil.copy(ck / src_cfg_dir / f, d / f)
        entries.append({"file": dirname + "/", "expect": "error", "error": kind, "description": desc})

    missing = {k: v for k, v in resnet_sd.items() if k != "resnet.encoder.stages.2.layers.0.layer.1.convolution.weight"}
    add_model_dir("resnet50_missing_tensor", missing, "missingTensor",
                  "resnet.encoder.stages.2.layers.0.layer.1.convolution.weight removed", "resnet50")
    bad = dict(vgg_sd)
    bad["features.7.weight"] = bad["features.7.weight"][:, :, :2, :].contiguous()
    add_model_dir("vgg16_misshaped_tensor", bad, "shapeMismatch",
                  "features.7.weight is [8,8,2,3] instead of [8,8,3,3]", "vgg16")
    from make_fixtures import write_json
    write_json(md / "manifest.json", entries)
