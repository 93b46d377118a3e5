"""Stage `embeddings`: reference outputs of the tiny checkpoints (embeddings/*).

For every ok, undamaged image the reference tensor of the model's preprocessing (ref_preprocess) is fed to:
  clip, clip-gelu  transformers CLIPModel.get_image_features(pixel_values).pooler_output  (projected, NOT normalised)
  resnet50         transformers ResNetModel (loaded from the ResNetForImageClassification checkpoint)
                   pooler_output (adaptive avg pool of the last stage) flattened
  vgg16            timm VGG: forward_features -> forward_head(pre_logits=True) = fc7 after ReLU (eval: no dropout);
                   cross-checked against the torchvision path features -> avgpool -> flatten -> classifier[:-1]
                   on vgg16-torchvision/vgg16.pth.
Text: token ids from transformers CLIPTokenizer on checkpoints/clip (our own BPE vocabulary) and the projected
text features (CLIPModel.get_text_features, pooled at argmax(input_ids) as openai's config implies).
Everything runs in float32 on CPU with torch.no_grad().
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import torch

import ref_checkpoints
import ref_preprocess
import ref_tokenizer
from ref_configs import vgg16_transform

DEBUG_IMAGE = "jpeg_rgb420_120x180.jpg"


def load_tiny_vgg(ck: Path):
    from safetensors.torch import load_file
    model = ref_checkpoints.build_vgg16_timm()
    model.load_state_dict(load_file(str(ck / "vgg16" / "model.safetensors")), strict=True)
    return model.eval()


@torch.no_grad()
def stage_embeddings(out: Path) -> None:
    from transformers import CLIPModel, ResNetModel
    from make_fixtures import load_rgb, ok_images, save_npz, write_json
    torch.set_num_threads(1)  # one thread: reduction order does not depend on the machine
    ck = out / "checkpoints"
    emb = out / "embeddings"
    emb.mkdir(parents=True, exist_ok=True)

    procs = ref_preprocess.processors()
    clip = CLIPModel.from_pretrained(ck / "clip").eval()
    clip_gelu = CLIPModel.from_pretrained(ck / "clip-gelu").eval()
    resnet = ResNetModel.from_pretrained(ck / "resnet50").eval()
    resnet_bin = ResNetModel.from_pretrained(ck / "resnet50-bin").eval()
    vgg = load_tiny_vgg(ck)
    tv = ref_checkpoints.build_torchvision_vgg(
        torch.load(ck / "vgg16-torchvision" / "vgg16.pth", weights_only=True))

    results: dict[str, dict[str, np.ndarray]] = {m: {} for m in ("clip", "clip-gelu", "resnet50", "vgg16")}
    intermediates: dict[str, np.ndarray] = {}
    max_tv_diff = 0.0
    entries = [e for e in ok_images(out) if not e.get("damaged")]
    for e in entries:
        name = e["file"]
        rgb = load_rgb(out, name)
        tensors = {m: torch.from_numpy(ref_preprocess.reference_steps(m, procs[m], rgb)[1])[None]
                   for m in ("clip", "resnet50", "vgg16")}
        results["clip"][name] = clip.get_image_features(pixel_values=tensors["clip"]).pooler_output[0].numpy()
        results["clip-gelu"][name] = \
            clip_gelu.get_image_features(pixel_values=tensors["clip"]).pooler_output[0].numpy()
        r = resnet(pixel_values=tensors["resnet50"])
        results["resnet50"][name] = r.pooler_output.flatten(1)[0].numpy()
        assert torch.equal(resnet_bin(pixel_values=tensors["resnet50"]).pooler_output, r.pooler_output)
        feats = vgg.forward_features(tensors["vgg16"])
        fc7 = vgg.forward_head(feats, pre_logits=True)
        results["vgg16"][name] = fc7[0].numpy()
        x = torch.flatten(tv.avgpool(tv.features(tensors["vgg16"])), 1)
        tv_fc7 = tv.classifier[:-1](x)
        max_tv_diff = max(max_tv_diff, float((tv_fc7 - fc7).abs().max()))
        if name == DEBUG_IMAGE:
            vis = clip.vision_model(pixel_values=tensors["clip"], output_hidden_states=True)
            intermediates["clip__input"] = tensors["clip"][0].numpy()
            intermediates["clip__vision_embeddings"] = vis.hidden_states[0][0].numpy()
            intermediates["clip__vision_last_hidden_state"] = vis.last_hidden_state[0].numpy()
            intermediates["clip__vision_pooler_output"] = vis.pooler_output[0].numpy()
            rh = resnet(pixel_values=tensors["resnet50"], output_hidden_states=True)
            for i, h in enumerate(rh.hidden_states):
                intermediates[f"resnet50__hidden_state_{i}"] = h[0].numpy()
            intermediates["vgg16__forward_features"] = feats[0].numpy()
            intermediates["vgg16__fc6"] = torch.relu(vgg.pre_logits.fc1(feats))[0].flatten().numpy()
    for m, arrays in results.items():
        for k, v in arrays.items():
            assert v.dtype == np.float32 and np.isfinite(v).all(), (m, k)
            assert np.count_nonzero(v) > 0, (m, k, "degenerate embedding")
        save_npz(emb / f"{m}.npz", {k: v.copy() for k, v in arrays.items()})
    save_npz(emb / "intermediates.npz", {k: v.copy() for k, v in intermediates.items()})
    assert max_tv_diff < 1e-4, max_tv_diff
    print(f"embeddings: {len(entries)} images; timm vs torchvision vgg16 fc7 max |diff| = {max_tv_diff:.3g}")

    text_stage(out, clip, clip_gelu)


@torch.no_grad()
def text_stage(out: Path, clip, clip_gelu) -> None:
    from transformers import CLIPTokenizer
    from make_fixtures import save_npz, write_json
    ck = out / "checkpoints"
    emb = out / "embeddings"
    tok = CLIPTokenizer.from_pretrained(ck / "clip")
    records = []
    arrays: dict[str, np.ndarray] = {}
    for i, text in enumerate(ref_tokenizer.TEXTS):
        ids = tok(text)["input_ids"]
        trunc = tok(text, truncation=True, max_length=77)["input_ids"]
        assert trunc[-1] == tok.eos_token_id and len(trunc) <= 77
        records.append({"index": i, "text": text, "ids": ids, "ids_truncated_77": trunc,
                        "tokens": tok.convert_ids_to_tokens(ids)})
        t = torch.tensor([trunc])
        arrays[f"clip__{i}"] = clip.get_text_features(input_ids=t).pooler_output[0].numpy().copy()
        arrays[f"clip-gelu__{i}"] = clip_gelu.get_text_features(input_ids=t).pooler_output[0].numpy().copy()
        # Padding to 77 with <|endoftext|> + attention mask must not change the result (causal mask + argmax pool).
        padded = tok(text, truncation=True, max_length=77, padding="max_length", return_tensors="pt")
        alt = clip.get_text_features(**padded).pooler_output[0].numpy()
        assert np.allclose(alt, arrays[f"clip__{i}"], atol=1e-5), i
    write_json(emb / "clip_text.json", {
        "tokenizer": "transformers CLIPTokenizer (tokenizers BPE) loaded from checkpoints/clip",
        "bos_token_id": tok.bos_token_id, "eos_token_id": tok.eos_token_id, "pad_token_id": tok.pad_token_id,
        "texts": records})
    save_npz(emb / "clip_text.npz", arrays)
    real_vocab_ids(emb)
    print(f"text: {len(records)} texts")


def real_vocab_ids(emb: Path) -> None:
    """Ids of the same texts under the real CLIP vocabulary (from the open_clip wheel; files only in a temp dir)."""
    from transformers import CLIPTokenizer
    from make_fixtures import write_json
    merges = ref_tokenizer.real_clip_merges()
    if merges is None:
        print("real CLIP vocabulary not available; clip_real_vocab_ids.json not written")
        return
    with tempfile.TemporaryDirectory() as d:
        size = ref_tokenizer.write_clip_tokenizer_files(Path(d), merges)
        assert size == 49408, size
        tok = CLIPTokenizer.from_pretrained(d)
        records = []
        for i, text in enumerate(ref_tokenizer.TEXTS):
            records.append({"index": i, "text": text, "ids": tok(text)["input_ids"],
                            "ids_truncated_77": tok(text, truncation=True, max_length=77)["input_ids"]})
    try:
        import open_clip
        oc = open_clip.tokenizer.SimpleTokenizer()
        for r in records:
            # open_clip's own tokenizer applies ftfy + html.unescape before BPE; recorded only for comparison.
            ref = [oc.encoder["<start_of_text>"]] + oc.encode(r["text"]) + [oc.encoder["<end_of_text>"]]
            r["open_clip_ids_differ"] = ref != r["ids"]
    except Exception as e:  # noqa: BLE001
        print("open_clip comparison skipped:", e)
    write_json(emb / "clip_real_vocab_ids.json", {
        "tokenizer": "transformers CLIPTokenizer built from bpe_simple_vocab_16e6.txt.gz (open_clip_torch wheel); "
                     "the vocabulary itself is not part of this repository",
        "vocab_size": 49408, "bos_token_id": tok.bos_token_id, "eos_token_id": tok.eos_token_id,
        "texts": records})
