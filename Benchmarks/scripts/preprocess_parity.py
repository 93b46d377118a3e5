"""Full-size preprocessing parity: `postersim preprocess` against the reference tensors of the golden posters.

Reads DIR/goldens/reference.npz (written by tools/reference/make_fixtures.py --full-size), runs the Swift command on
each golden image for each model, with --model-dir pointing into the same Hugging Face cache snapshot the reference
used, and prints the largest absolute difference per model. Exit status 1 if any difference is 1e-6 or more.

    python Benchmarks/scripts/preprocess_parity.py --cache DIR --swift-cmd ".build/release/postersim"
"""
import argparse
import glob
import os
import shlex
import subprocess
import sys
import tempfile

import numpy as np

REPOS = {"clip": "openai/clip-vit-base-patch32", "resnet50": "microsoft/resnet-50", "vgg16": "timm/vgg16.tv_in1k"}
TOLERANCE = 1e-6


def snapshot_dir(cache, repo):
    base = os.path.join(cache, "models--" + repo.replace("/", "--"))
    with open(os.path.join(base, "refs", "main")) as f:
        return os.path.join(base, "snapshots", f.read().strip())


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", required=True, help="full-size directory (HF cache layout + goldens/)")
    parser.add_argument("--swift-cmd", required=True, help="the postersim executable (split with shlex)")
    args = parser.parse_args()

    goldens = np.load(os.path.join(args.cache, "goldens", "reference.npz"))
    images = sorted(glob.glob(os.path.join(args.cache, "goldens", "images", "*")))
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        for model, repo in REPOS.items():
            worst = 0.0
            for image in images:
                key = f"{os.path.basename(image)}__{model}_tensor"
                if key not in goldens:
                    continue
                out = os.path.join(tmp, "t.npy")
                cmd = shlex.split(args.swift_cmd) + [
                    "preprocess", "--model", model, image, "--out", out, "--no-batch-dim",
                    "--model-dir", f"{model}={snapshot_dir(args.cache, repo)}"]
                subprocess.run(cmd, check=True)
                ours = np.load(out)
                ref = goldens[key]
                if ours.shape != ref.shape:
                    print(f"{model} {os.path.basename(image)}: shape {ours.shape} != reference {ref.shape}")
                    failed = True
                    continue
                worst = max(worst, float(np.abs(ours - ref).max()))
            ok = worst < TOLERANCE
            failed |= not ok
            print(f"preprocess {model:9s} {len(images)} images  max |ours - reference| = {worst:.3g}  {'ok' if ok else 'FAIL'}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
