// Kernel choice for the engine, measured before choosing (issue 3).
//
// Machine: AMD EPYC (Zen 4, family 25 model 17), 2 cores, AVX-512 (oneDNN reports avx512_core_bf16), KVM.
// Libraries: Debian oneDNN 2.6.3 (OpenMP, 2 threads), OpenBLAS 0.3.21 pthread (DYNAMIC_ARCH, picked
// "Cooperlake"; OPENBLAS_CORETYPE unset and left alone). Benchmark: a throw-away C program (not committed)
// timing each kernel after a warm-up; the machine was shared with ~5 other jobs compiling Swift (load average
// 6–20), so every number is the BEST of 3 rounds × ≥7 repetitions, and the noise is still large (±2× between
// rounds). Conv columns include im2col; "blocked" is the conv primitive alone with src/weights/dst `any`
// (oneDNN picked channels-last `acdb` activations and Acdb64a/Acdb32a weights for every shape here), the reorders in/out it would need if the model did not keep the blocked layout are
// listed separately. Convs carry a fused ReLU post-op. ms, best of rounds, 2 threads, batch 1 unless noted:
//
//   GEMM (M×N×K, weights N×K)        dnnl_sgemm   OpenBLAS   oneDNN matmul, weights prepacked (`any`)
//   2048³                              292         251         232
//   64×3136×576 (ResNet-like)            7.95        2.77        1.06
//   VGG fc1 1×4096×25088                28.3        56.2        43.1     (memory-bound: 411 MB of weights)
//   VGG fc1 8×4096×25088                80.0       120.3        32.0
//   VGG fc2 1×4096×4096                  6.27       12.7         7.57
//   VGG fc2 8×4096×4096                 20.0        24.2         3.22
//   CLIP 50×768×768                      0.45        0.36        0.25
//   CLIP 50×3072×768                     7.03        1.92        1.10
//   CLIP 50×768×3072                    12.4         4.01        1.06
//   CLIP 400×768×768 (batch 8)           2.29        4.75        2.11
//   CLIP 400×3072×768                   28.8        30.0        17.1
//   CLIP 400×768×3072                   23.7        19.5        17.5
//
//   Convolution                    im2col+dnnl_sgemm  im2col+OpenBLAS  oneDNN NCHW  oneDNN blocked (+reorders)
//   ResNet stem 3→64 7×7/2 @224          12.0             6.27          7.97 (gemm:jit)   1.03 (brgconv)
//   ResNet 3×3 64→64 @56                 12.0             3.40          2.12              0.97
//   ResNet 1×1 256→64 @56                 0.44 (no im2col) 0.54         0.96              0.44 (brgconv_1x1)
//   ResNet 1×1 64→256 @56                 0.46             0.57          2.56              0.45
//   ResNet 3×3 512 @7                     1.55             4.15          1.48              0.84
//   VGG conv1_1 3→64 @224                 1.80            12.0          29.1               1.12
//   VGG conv1_2 64→64 @224               73.8            111            87.0              48.8 (+15.8 reorders)
//   VGG conv5_3 512 @14                  30.8             21.0          14.0              15.9 (1-thread: 9.7 vs 25!)
//   batch 8, ResNet 3×3 64 @56          121              111            52.3              28.0
//   batch 8, VGG conv1_2 @224           655             1211           836               406
//   batch 8, VGG conv5_3 @14            239              256           112                91.7
//
// Decision, per op type:
// - Convolutions (all of ResNet-50 and VGG16's 13 convs): oneDNN convolution primitives with `any` formats,
//   keeping the layout oneDNN picks (channels-last here) from layer to layer. brgconv is 2–10× faster than im2col + either sgemm on the
//   3×3 and 7×7 shapes and ties them on 1×1 (which needs no im2col); the same primitive on plain NCHW falls back
//   to gemm:jit and loses everywhere, and reordering around every layer would cost as much as the conv itself
//   (e.g. 15.8 ms of reorders for a 48.8 ms conv). Only the input (3 channels, read as plain NCHW by the
//   primitive) and the final feature map are reordered.
// - Fully-connected layers (VGG fc1 as a 7×7 conv on the 7×7 map = a 25088-wide linear on the flattened map,
//   VGG fc2, CLIP's q/k/v/out/MLP, projections): oneDNN matmul with weights packed once at load — best or tied
//   on every batched shape (2–6× over sgemm at batch 8). Known gap: at batch 1 the memory-bound VGG fc1 measured
//   faster as dnnl_sgemm on plain weights (28 vs 43 ms); revisit when `make bench-embed` exists.
// - Attention's per-head products (T×T×64): dnnl_sgemm on strided views (too small for a primitive to pay).
// - Element-wise: own SIMD loops (add, ReLU), oneDNN eltwise for GELU/quick GELU (fused into matmul as post-ops
//   in the models), own loops for layer norm, softmax, adaptive average pooling and batch-norm folding.
//
// Memory (`make bench-embed`, all three models loaded, 2026-11-26): peak resident 1508 MB = 1.20x the 1261 MB of
// weights (PyTorch 1.83x, ONNX Runtime 2.41x). What got it there from 2.01x: each model's checkpoint pages are
// dropped once packed (CLIP after every encoder layer); VGG16's fully-connected weights are read in place from the
// mapped file; activations go through a `WorkspaceRelay` (two arenas in turn, so only two steps' outputs live at
// once: ResNet-50's batch-8 arena fell from 310 to about 80 MiB); the models borrow their arenas from one
// process-wide `WorkspacePool`, so one model reuses what another grew; arena chunks are mmap'd so freed ones leave
// at once; and a ResNet block's last conv writes over its residual instead of copying it first.
//
// Tried for ResNet-50 at batch 8 and dropped (each an A/B in one session, 2 threads, ms per image, no gain outside
// the run-to-run noise of about ±3%): forcing nChw16c activations instead of oneDNN's channels-last pick
// (40.3-42.0 vs 38.6-41.6); OMP_PROC_BIND=true or OMP_WAIT_POLICY=active (no change); the stem reading plain NCHW
// (jit:avx512_core, 11.4 ms per batch against 11.9 + 0.6 for brgconv + reorder, then a reorder after it); running
// the stem and the 56×56/28×28 stages image by image and only the late stages batched (ONEDNN_VERBOSE suggested
// ~5%; end to end 38.2-41.7 vs 38.6-40.8); Winograd for the stride-1 3×3 convs (batch 1: 34.5 against 39 ms, but
// oneDNN 2.6 cannot re-lay Winograd weights for another batch size, so batches failed, a copy per batch size would
// break the memory budget, and it changes the summation order away from PyTorch's). ResNet-50 ends at parity with ONNX Runtime: ours/ORT 0.97-1.05 in single
// runs, 1.01-1.02 best of 3 rounds. Its convolutions run at 130-210 GFLOP/s (3×3: ~200; 1×1 on 56×56 maps with the
// residual sum: ~130, bound by memory traffic), against the 485 GFLOP/s the issue measured for dnnl_sgemm on 2048³;
// closing that gap would mean convolution kernels of our own, which this project leaves to oneDNN.
