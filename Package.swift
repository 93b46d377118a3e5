// swift-tools-version:6.1
//
// PosterSim: find movie posters that look alike.
//
// Modules, with dependencies pointing one way (the README's layout table says what each owns):
//
//   PosterSimCore        the domain: ids, movies, model names, metrics, spaces, identities, poster file layout,
//                        the Pinecone-shaped match JSON, JSONValue. Imports nothing of ours.
//   CCodecs -> Imaging   decode posters, Pillow-exact resize, per-model preprocessing
//   TensorFiles          safetensors, PyTorch zip checkpoints (restricted unpickler), .npy/.npz
//   Tensors              our tensor layer over oneDNN: fp32 and bf16 (Core for `Precision`, CDNNL)
//   Tokenization         CLIP's BPE tokenizer
//   Embedding            the EmbeddingModel protocol and ModelError (Core, Imaging)
//   HTTPSupport          the one HTTP retry policy and the clock it waits on. Imports nothing of ours.
//   ModelHub             Hugging Face cache layout, `models fetch` from HF_ENDPOINT (Core, TensorFiles, HTTPSupport)
//   Models               CLIP, ResNet-50, VGG16 from config.json + checkpoint (Embedding, Tensors, TensorFiles, Tokenization)
//   Store -> PostgresStore   the VectorStore protocol and its SQLite and PostgreSQL implementations (Core)
//   Ingest               TMDB client and the ingest pipeline (Store, Embedding, Imaging, HTTPSupport; not Models,
//                        not ModelHub)
//   Server               the HTTP API (Store, Embedding, Imaging; not Ingest, Models or ModelHub)
//   PosterSimCLI         the `postersim` command: the one place that wires models, stores, ingest and server
import PackageDescription

let package = Package(
    name: "PosterSim",
    products: [
        .executable(name: "postersim", targets: ["PosterSimCLI"]),
        .library(name: "PosterSimCore", targets: ["PosterSimCore"]),
        .library(name: "Embedding", targets: ["Embedding"]),
        .library(name: "Imaging", targets: ["Imaging"]),
        .library(name: "TensorFiles", targets: ["TensorFiles"]),
        .library(name: "ModelHub", targets: ["ModelHub"]),
        .library(name: "Tensors", targets: ["Tensors"]),
        .library(name: "Models", targets: ["Models"]),
        .library(name: "Store", targets: ["Store"]),
        .library(name: "Ingest", targets: ["Ingest"]),
        .library(name: "Server", targets: ["Server"]),
        .library(name: "PostgresStore", targets: ["PostgresStore"]),
        .executable(name: "postersim-bench", targets: ["PosterSimBench"]),
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

        // The domain: the types every module shares. Depends on nothing of ours.
        .target(name: "PosterSimCore"),

        .target(name: "Imaging", dependencies: ["PosterSimCore", "CCodecs"]),

        // The one protocol every user of a model depends on (ingest, server, CLI, tests' fakes) and the models' error.
        .target(name: "Embedding", dependencies: ["PosterSimCore", "Imaging"]),

        // Exact vector scan kernels: baseline, AVX2+FMA and AVX-512 variants, chosen once at run time.
        .target(name: "CVectorScan"),
        // The embedded vector store (SQLite through GRDB) and its exact in-memory search.
        .target(
            name: "Store",
            dependencies: [
                "PosterSimCore", "CVectorScan", "CDNNL", .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        // The same VectorStore on PostgreSQL + pgvector (postgres-nio and its connection pool).
        .target(
            name: "PostgresStore",
            dependencies: [
                "PosterSimCore", "Store",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        // OpenBLAS, only for the benchmark's kernel comparison (cblas_sgemv).
        .systemLibrary(name: "COpenBLAS", path: "Benchmarks/COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .executableTarget(
            name: "StoreBench",
            dependencies: ["PosterSimCore", "Store", "CVectorScan", "COpenBLAS", "TensorFiles", "TestSupport"],
            path: "Benchmarks/StoreBench", exclude: ["README.md"]),
        // The embedded store next to PostgreSQL + pgvector on the same vectors (make bench-pg).
        .executableTarget(
            name: "PGBench", dependencies: ["PosterSimCore", "Store", "PostgresStore", "TestSupport"], path: "Benchmarks/PGBench",
            exclude: ["README.md"]),
        .target(name: "TensorFiles", dependencies: ["CZlib"]),
        // CLIP's BPE tokenizer (text search).
        .target(name: "Tokenization", dependencies: ["CZlib"]),
        // Seeded test-data generation shared by the test targets and the benchmarks (not part of the product).
        .target(name: "TestSupport", dependencies: ["PosterSimCore"]),
        // Our tensor layer over oneDNN (convolutions, matmul, pooling) plus own loops for the rest.
        .target(name: "Tensors", dependencies: ["PosterSimCore", "CDNNL"]),
        // ResNet-50, VGG16 and CLIP built from checkpoints on top of Tensors.
        .target(name: "Models", dependencies: ["PosterSimCore", "Embedding", "Tensors", "TensorFiles", "Imaging", "Tokenization"]),
        // The one HTTP retry policy (retryable statuses, Retry-After, back-off with jitter) and the injectable clock
        // of every HTTP client; imports nothing of ours.
        .target(name: "HTTPSupport"),
        .target(
            name: "ModelHub",
            dependencies: [
                "PosterSimCore", "HTTPSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        // TMDB client, poster cache and the resumable ingest pipeline (posters -> embedders -> store).
        .target(
            name: "Ingest",
            dependencies: [
                "PosterSimCore", "Store", "Embedding", "Imaging", "HTTPSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        // The HTTP API: routes, bounded embedding pool, response cache, metrics, static files (Public).
        .target(
            name: "Server",
            dependencies: [
                "PosterSimCore", "Store", "Embedding", "Imaging",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "MultipartKit", package: "multipart-kit"),
            ],
            resources: [.copy("Public")]),
        // Option groups shared by `postersim` and `postersim-bench`: where models and stores are.
        .target(
            name: "CommandSupport",
            dependencies: [
                "PosterSimCore", "ModelHub", "Models", "Store", "PostgresStore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        // The engine's and the server's benchmarks (make bench-embed, bench-server), outside the product binary.
        .executableTarget(
            name: "PosterSimBench",
            dependencies: [
                "PosterSimCore", "CommandSupport", "Imaging", "Models", "Store", "TestSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Benchmarks/PosterSimBench"),
        .executableTarget(
            name: "PosterSimCLI",
            dependencies: [
                "PosterSimCore", "Imaging", "TensorFiles", "ModelHub", "Embedding", "Models", "Tokenization", "Store",
                "PostgresStore", "Ingest", "Server", "CommandSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]),

        .testTarget(name: "ImagingTests", dependencies: ["PosterSimCore", "Imaging", "TensorFiles", "TestSupport"]),
        .testTarget(name: "TensorFilesTests", dependencies: ["TensorFiles"]),
        .testTarget(name: "TokenizationTests", dependencies: ["Tokenization", "TestSupport"], exclude: ["Goldens"]),
        .testTarget(name: "TensorsTests", dependencies: ["PosterSimCore", "Tensors", "TensorFiles"]),
        .testTarget(
            name: "ModelsTests",
            dependencies: ["PosterSimCore", "Embedding", "Models", "Tensors", "TensorFiles", "Imaging", "Tokenization"]),
        .testTarget(
            name: "IngestTests",
            dependencies: [
                "PosterSimCore", "Embedding", "Ingest", "Store", "PostgresStore", "Imaging", "CZlib", "TestSupport",
                "HTTPSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
            ]),
        .testTarget(
            name: "ServerTests",
            dependencies: [
                "PosterSimCore", "Embedding", "Server", "Store", "PostgresStore", "Models", "Ingest", "Imaging",
                "TestSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        // The contract suite runs against both stores here (PostgreSQL from scripts/pgserver; see the README).
        .testTarget(
            name: "StoreTests",
            dependencies: [
                "PosterSimCore", "Store", "PostgresStore", "TensorFiles", "TestSupport",
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ]),
        .testTarget(name: "HTTPSupportTests", dependencies: ["HTTPSupport"]),
        .testTarget(
            name: "ModelHubTests",
            dependencies: [
                "PosterSimCore", "ModelHub", "TestSupport", "HTTPSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]),
    ]
)
