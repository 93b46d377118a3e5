// swift-tools-version:6.1
//
// PosterSim: find movie posters that look alike.
//
// Modules, with dependencies pointing one way:
//
//   CCodecs (C glue over libjpeg-turbo, libpng, libwebp)
//     -> Imaging        decode posters, Pillow-exact resize, per-model preprocessing
//   TensorFiles          safetensors, PyTorch zip checkpoints (restricted unpickler), .npy/.npz, model configs
//     -> ModelHub       Hugging Face cache layout, `models fetch` from HF_ENDPOINT
//   Tensors              our tensor layer over oneDNN (CDNNL): conv, matmul, pooling, element-wise, attention
//   Tokenization         CLIP's BPE tokenizer
//   (Tensors, TensorFiles, Imaging, Tokenization, ModelHub) -> Models   CLIP, ResNet-50, VGG16 built from checkpoints
//   ModelHub -> Store (VectorStore protocol, embedded SQLite store; DistanceMetric comes from ModelHub) -> PostgresStore (the same protocol on PostgreSQL + pgvector)
//   (Store, Models, Ingest) -> Server   the HTTP API (Hummingbird), `buildApplication` shared by `serve` and the tests
//   everything -> PosterSimCLI  the `postersim` command
import PackageDescription

let package = Package(
    name: "PosterSim",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "postersim", targets: ["PosterSimCLI"]),
        .library(name: "Imaging", targets: ["Imaging"]),
        .library(name: "TensorFiles", targets: ["TensorFiles"]),
        .library(name: "ModelHub", targets: ["ModelHub"]),
        .library(name: "Tensors", targets: ["Tensors"]),
        .library(name: "Models", targets: ["Models"]),
        .library(name: "Store", targets: ["Store"]),
        .library(name: "Ingest", targets: ["Ingest"]),
        .library(name: "Server", targets: ["Server"]),
        .library(name: "PostgresStore", targets: ["PostgresStore"]),
        .executable(name: "postersim-bench-store", targets: ["StoreBench"]),
        .executable(name: "postersim-bench-pg", targets: ["PGBench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/vapor/multipart-kit", from: "4.7.1"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
    ],
    targets: [
        // System libraries from Debian (see scripts/bootstrap).
        .systemLibrary(name: "CLibJPEG", pkgConfig: "libjpeg", providers: [.apt(["libjpeg62-turbo-dev"])]),
        .systemLibrary(name: "CLibPNG", pkgConfig: "libpng16", providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CLibWebP", pkgConfig: "libwebp", providers: [.apt(["libwebp-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // oneDNN 2.6 ships no pkg-config file; the module map links `dnnl`.
        .systemLibrary(name: "CDNNL", providers: [.apt(["libdnnl-dev"])]),

        // C glue: libjpeg and libpng report errors by longjmp, which Swift cannot catch.
        .target(name: "CCodecs", dependencies: ["CLibJPEG", "CLibPNG", "CLibWebP"]),

        .target(name: "Imaging", dependencies: ["CCodecs"]),

        // Exact vector scan kernels: baseline, AVX2+FMA and AVX-512 variants, chosen once at run time.
        .target(name: "CVectorScan"),
        // The embedded vector store (SQLite through GRDB) and its exact in-memory search.
        .target(
            name: "Store",
            dependencies: ["CVectorScan", "ModelHub", .product(name: "GRDB", package: "GRDB.swift")]),
        // The same VectorStore on PostgreSQL + pgvector (postgres-nio and its connection pool).
        .target(
            name: "PostgresStore",
            dependencies: [
                "Store",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        // OpenBLAS, only for the benchmark's kernel comparison (cblas_sgemv).
        .systemLibrary(name: "COpenBLAS", path: "Benchmarks/COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .executableTarget(
            name: "StoreBench",
            dependencies: ["Store", "CVectorScan", "COpenBLAS", "TensorFiles", "TestSupport"],
            path: "Benchmarks/StoreBench", exclude: ["README.md"]),
        // The embedded store next to PostgreSQL + pgvector on the same vectors (make bench-pg).
        .executableTarget(
            name: "PGBench", dependencies: ["Store", "PostgresStore", "TestSupport"], path: "Benchmarks/PGBench",
            exclude: ["README.md"]),
        .target(name: "TensorFiles", dependencies: ["CZlib"]),
        // CLIP's BPE tokenizer (text search).
        .target(name: "Tokenization"),
        // Seeded test-data generation shared by the test targets and the benchmarks (not part of the product).
        .target(name: "TestSupport"),
        // Our tensor layer over oneDNN (convolutions, matmul, pooling) plus own loops for the rest.
        .target(name: "Tensors", dependencies: ["CDNNL"]),
        // ResNet-50, VGG16 and CLIP built from checkpoints on top of Tensors.
        .target(name: "Models", dependencies: ["Tensors", "TensorFiles", "Imaging", "Tokenization", "ModelHub"]),
        // The one HTTP retry policy (retryable statuses, Retry-After, back-off with jitter) and the injectable clock
        // of every HTTP client; imports nothing of ours.
        .target(name: "HTTPSupport"),
        .target(
            name: "ModelHub",
            dependencies: [
                "TensorFiles", "HTTPSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        // TMDB client, poster cache and the resumable ingest pipeline (posters -> embedders -> store).
        .target(
            name: "Ingest",
            dependencies: [
                "Store", "Imaging", "HTTPSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        // The HTTP API: routes, bounded embedding pool, response cache, metrics, static files (Public).
        .target(
            name: "Server",
            dependencies: [
                "Store", "Models", "Imaging", "Ingest", "ModelHub",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "MultipartKit", package: "multipart-kit"),
            ],
            resources: [.copy("Public")]),
        .executableTarget(
            name: "PosterSimCLI",
            dependencies: [
                "Imaging", "TensorFiles", "ModelHub", "Models", "Tokenization", "Store", "PostgresStore", "Ingest",
                "Server",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]),

        .testTarget(name: "ImagingTests", dependencies: ["Imaging", "TensorFiles", "TestSupport"]),
        .testTarget(name: "TensorFilesTests", dependencies: ["TensorFiles"]),
        .testTarget(name: "TokenizationTests", dependencies: ["Tokenization", "TestSupport"], exclude: ["Goldens"]),
        .testTarget(name: "TensorsTests", dependencies: ["Tensors", "TensorFiles"]),
        .testTarget(name: "ModelsTests", dependencies: ["Models", "Tensors", "TensorFiles", "Imaging", "Tokenization"]),
        .testTarget(
            name: "IngestTests",
            dependencies: [
                "Ingest", "Store", "PostgresStore", "Imaging", "CZlib", "TestSupport", "HTTPSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
            ]),
        .testTarget(
            name: "ServerTests",
            dependencies: [
                "Server", "Store", "PostgresStore", "Models", "ModelHub", "Ingest", "Imaging", "TestSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        // The contract suite runs against both stores here (PostgreSQL from scripts/pgserver; see the README).
        .testTarget(
            name: "StoreTests",
            dependencies: [
                "Store", "PostgresStore", "TensorFiles", "TestSupport",
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ]),
        .testTarget(name: "HTTPSupportTests", dependencies: ["HTTPSupport"]),
        .testTarget(
            name: "ModelHubTests",
            dependencies: [
                "ModelHub", "HTTPSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
            ]),
    ]
)
