// `make bench-int8` (issue 17): what int8 convolutions with VNNI would buy the engine, layer by layer.
//
// For every convolution of ResNet-50 (v1.5, as microsoft/resnet-50) and VGG16 at 224×224, times one batch
//   fp32  as the engine runs it (Sources/Tensors/Conv2d.swift): nChw16c activations, 3×3 stride-1 layers as
//         Winograd one image at a time, the rest direct; fused ReLU and (ResNet) residual-sum post-ops;
//   int8  u8 activations, s8 weights (oneDNN's `any` layouts), per-output-channel output scales, the same
//         post-ops, u8 output: what a quantized network would run between its layers.
// Both take the same fused post-ops, so the sums compare whole networks' convolution time; the rest of a
// network (max pool, final pooling, one reorder) is under 1% of ResNet-50's time (ONEDNN_VERBOSE profile in
// Sources/Tensors/KernelChoice.swift). The fp32 and int8 runs of a layer alternate, and each figure is the
// fastest of --reps runs, so a burst of load from another process lands on both.
//
//   int8_layers [resnet50|vgg16] [--batch 8] [--reps 7]     threads: OMP_NUM_THREADS
#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

using namespace dnnl;
using tag = memory::format_tag;
using dt = memory::data_type;

namespace {

struct Layer {
    int in, out, kernel, stride, size, count;  // size: input height = width; count: layers of this shape
    bool residual;                             // carries the block's residual sum (ResNet)
};

// ResNet-50 v1.5: stride in the 3×3 of each stage's first block; shortcut 1×1 convs with stride.
const std::vector<Layer> resnet50 = {
    {3, 64, 7, 2, 224, 1, false},
    {64, 64, 1, 1, 56, 1, false}, {64, 64, 3, 1, 56, 3, false}, {64, 256, 1, 1, 56, 3, true},
    {64, 256, 1, 1, 56, 1, false}, {256, 64, 1, 1, 56, 2, false},
    {256, 128, 1, 1, 56, 1, false}, {128, 128, 3, 2, 56, 1, false}, {128, 512, 1, 1, 28, 4, true},
    {256, 512, 1, 2, 56, 1, false}, {512, 128, 1, 1, 28, 3, false}, {128, 128, 3, 1, 28, 3, false},
    {512, 256, 1, 1, 28, 1, false}, {256, 256, 3, 2, 28, 1, false}, {256, 1024, 1, 1, 14, 6, true},
    {512, 1024, 1, 2, 28, 1, false}, {1024, 256, 1, 1, 14, 5, false}, {256, 256, 3, 1, 14, 5, false},
    {1024, 512, 1, 1, 14, 1, false}, {512, 512, 3, 2, 14, 1, false}, {512, 2048, 1, 1, 7, 3, true},
    {1024, 2048, 1, 2, 14, 1, false}, {2048, 512, 1, 1, 7, 2, false}, {512, 512, 3, 1, 7, 2, false},
};

const std::vector<Layer> vgg16 = {
    {3, 64, 3, 1, 224, 1, false}, {64, 64, 3, 1, 224, 1, false}, {64, 128, 3, 1, 112, 1, false},
    {128, 128, 3, 1, 112, 1, false}, {128, 256, 3, 1, 56, 1, false}, {256, 256, 3, 1, 56, 2, false},
    {256, 512, 3, 1, 28, 1, false}, {512, 512, 3, 1, 28, 2, false}, {512, 512, 3, 1, 14, 3, false},
};

struct Buffer {  // 64-byte aligned, as the engine's arenas are
    void* data = nullptr;
    explicit Buffer(size_t bytes) {
        data = std::aligned_alloc(64, (std::max<size_t>(bytes, 64) + 63) / 64 * 64);
        std::memset(data, 0, bytes);
    }
    ~Buffer() { std::free(data); }
};

// Values that keep every product a normal float (denormals would slow the fp32 kernels down).
void fill(const memory::desc& desc, void* data, int seed) {
    size_t bytes = desc.get_size();
    if (desc.data_type() == dt::f32) {
        auto* p = static_cast<float*>(data);
        for (size_t i = 0; i < bytes / 4; i++) p[i] = 0.01f * float((i * 7 + seed) % 13) - 0.05f;
    } else {
        auto* p = static_cast<uint8_t*>(data);
        for (size_t i = 0; i < bytes; i++) p[i] = uint8_t((i * 7 + seed) % 13);
    }
}

// One layer in one configuration, ready to run `batch` images.
struct Run {
    convolution_forward primitive;
    memory::desc src, weights, dst, bias, scratchpad;
    std::unique_ptr<Buffer> srcData, weightData, biasData, dstData, scratch;
    int images = 1;  // images per primitive call (1 for the engine's one-image Winograd)
    std::string impl;
};

Run make(const engine& eng, const Layer& l, int batch, bool int8) {
    const int pad = l.kernel / 2, outSize = (l.size + 2 * pad - l.kernel) / l.stride + 1;
    const bool winograd = !int8 && l.kernel == 3 && l.stride == 1 && l.in >= 16;
    const int images = winograd ? 1 : batch;
    const dt act = int8 ? dt::u8 : dt::f32, wei = int8 ? dt::s8 : dt::f32;
    const tag layout = int8 ? tag::any : tag::nChw16c;
    memory::desc src({images, l.in, l.size, l.size}, act, l.in < 16 && !winograd ? tag::any : layout);
    memory::desc weights({l.out, l.in, l.kernel, l.kernel}, wei, tag::any);
    memory::desc bias({l.out}, dt::f32, tag::a);
    memory::desc dst({images, l.out, outSize, outSize}, act, layout);
    auto desc = convolution_forward::desc(prop_kind::forward_inference,
                                          winograd ? algorithm::convolution_winograd : algorithm::convolution_direct,
                                          src, weights, bias, dst, {l.stride, l.stride}, {pad, pad}, {pad, pad});
    primitive_attr attr;
    post_ops ops;
    if (l.residual) ops.append_sum(1.f);
    ops.append_eltwise(1.f, algorithm::eltwise_relu, 0.f, 0.f);
    attr.set_post_ops(ops);
    if (int8) attr.set_output_scales(1 << 1, std::vector<float>(l.out, 1.f / 64));  // per output channel
    attr.set_scratchpad_mode(scratchpad_mode::user);
    convolution_forward::primitive_desc pd(desc, attr, eng);
    Run run;
    run.primitive = convolution_forward(pd);
    run.src = pd.src_desc();
    run.weights = pd.weights_desc();
    run.dst = pd.dst_desc();
    run.bias = pd.bias_desc();
    run.scratchpad = pd.scratchpad_desc();
    run.images = images;
    run.impl = pd.impl_info_str();
    const int calls = batch / images;
    run.srcData = std::make_unique<Buffer>(run.src.get_size() * calls);
    run.weightData = std::make_unique<Buffer>(run.weights.get_size());
    run.biasData = std::make_unique<Buffer>(run.bias.get_size());
    run.dstData = std::make_unique<Buffer>(run.dst.get_size() * calls);
    run.scratch = std::make_unique<Buffer>(run.scratchpad.get_size());
    for (int i = 0; i < calls; i++)
        fill(run.src, static_cast<char*>(run.srcData->data) + i * run.src.get_size(), i);
    fill(run.weights, run.weightData->data, 3);
    return run;
}

double time_once(const engine& eng, stream& strm, Run& run, int batch) {
    const auto start = std::chrono::steady_clock::now();
    memory weights(run.weights, eng, run.weightData->data);
    memory bias(run.bias, eng, run.biasData->data);
    memory scratch(run.scratchpad, eng, run.scratch->data);
    for (int i = 0; i < batch / run.images; i++) {
        memory src(run.src, eng, static_cast<char*>(run.srcData->data) + i * run.src.get_size());
        memory dst(run.dst, eng, static_cast<char*>(run.dstData->data) + i * run.dst.get_size());
        run.primitive.execute(strm, {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_BIAS, bias},
                                     {DNNL_ARG_DST, dst}, {DNNL_ARG_SCRATCHPAD, scratch}});
    }
    strm.wait();
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
    std::string network = "resnet50";
    int batch = 8, reps = 7;
    for (int i = 1; i < argc; i++) {
        std::string arg = argv[i];
        if (arg == "--batch" && i + 1 < argc) batch = std::atoi(argv[++i]);
        else if (arg == "--reps" && i + 1 < argc) reps = std::atoi(argv[++i]);
        else if (arg == "resnet50" || arg == "vgg16") network = arg;
        else { std::fprintf(stderr, "usage: int8_layers [resnet50|vgg16] [--batch N] [--reps N]\n"); return 2; }
    }
    if (batch < 1 || reps < 1) { std::fprintf(stderr, "--batch and --reps must be >= 1\n"); return 2; }
    engine eng(engine::kind::cpu, 0);
    stream strm(eng);
    const auto& layers = network == "vgg16" ? vgg16 : resnet50;
    std::printf("%s convolutions, batch %d, fastest of %d alternating runs, ms per batch (OMP_NUM_THREADS=%s)\n",
                network.c_str(), batch, reps, std::getenv("OMP_NUM_THREADS") ? std::getenv("OMP_NUM_THREADS") : "-");
    std::printf("%-28s %5s %9s %9s %7s  %-30s %s\n", "layer", "count", "fp32", "int8", "ratio", "fp32 kernel",
                "int8 kernel");
    double fp32Total = 0, int8Total = 0;
    for (const auto& l : layers) {
        Run fp32 = make(eng, l, batch, false), int8 = make(eng, l, batch, true);
        double bestF = 1e30, bestI = 1e30;
        for (int r = 0; r < reps + 1; r++) {  // the first run of each is a warm-up
            double f = time_once(eng, strm, fp32, batch), q = time_once(eng, strm, int8, batch);
            if (r > 0) { bestF = std::min(bestF, f); bestI = std::min(bestI, q); }
        }
        fp32Total += bestF * l.count;
        int8Total += bestI * l.count;
        char name[64];
        std::snprintf(name, sizeof name, "%d->%d %dx%d/%d @%d%s", l.in, l.out, l.kernel, l.kernel, l.stride, l.size,
                      l.residual ? " +sum" : "");
        std::printf("%-28s %5d %9.3f %9.3f %7.2f  %-30s %s\n", name, l.count, bestF, bestI, bestI / bestF,
                    fp32.impl.c_str(), int8.impl.c_str());
    }
    std::printf("total: fp32 %.1f ms, int8 %.1f ms per batch (%.2f ms / %.2f ms per image), int8/fp32 %.2f\n",
                fp32Total, int8Total, fp32Total / batch, int8Total / batch, int8Total / fp32Total);
    return 0;
}
