// Cross-checks with the reference huggingface_hub (in the Python reference environment, when present):
// a cache it writes is read by ModelResolver, and a cache HubClient writes is read by huggingface_hub.
import TestSupport
import Foundation
import Testing

@testable import ModelHub

/// The reference environment's Python (with huggingface_hub), set by `make interop`; the test is skipped without it,
/// and fails when it is set to something that is not there (so the make target cannot pass by skipping).
let referencePython = ProcessInfo.processInfo.environment["POSTERSIM_REFERENCE_PYTHON"].flatMap { $0.isEmpty ? nil : $0 }

/// Runs the reference Python with `script`, returning standard output; records an issue on failure.
func runReferencePython(_ script: String, environment: [String: String]) async throws -> String {
    let process = Process()
    let python = try #require(referencePython)
    #expect(FileManager.default.isExecutableFile(atPath: python), "POSTERSIM_REFERENCE_PYTHON=\(python) is not executable")
    process.executableURL = URL(fileURLWithPath: python)
    process.arguments = ["-c", script]
    var env = environment
    env["HF_HUB_DISABLE_TELEMETRY"] = "1"
    env["HF_HUB_DISABLE_UPDATE_CHECK"] = "1"
    env["HF_HUB_DISABLE_XET"] = "1"
    env["NO_PROXY"] = "*"
    env["HOME"] = ProcessInfo.processInfo.environment["HOME"] ?? "/tmp"
    process.environment = env
    let output = Pipe()
    let errors = Pipe()
    process.standardOutput = output
    process.standardError = errors
    try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
        process.terminationHandler = { _ in continuation.resume() }
        do { try process.run() } catch { continuation.resume(throwing: error) }
    }
    let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    if process.terminationStatus != 0 {
        let stderr = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        Issue.record("reference python failed: \(stderr)")
    }
    return text
}

@Suite struct InteropTests {
    @Test(.enabled(if: referencePython != nil, "POSTERSIM_REFERENCE_PYTHON is not set (make interop sets it)"))
    func cacheIsSharedWithHuggingfaceHub() async throws {
        let pythonCache = try temporaryFolder()
        let swiftCache = try temporaryFolder()
        defer {
            try? FileManager.default.removeItem(at: pythonCache)
            try? FileManager.default.removeItem(at: swiftCache)
        }
        let hub = FakeHub()
        let files = vggRepo(weights: 200_000)
        hub.addRepo("timm/vgg16.tv_in1k", files: files)
        let weights = try digests(of: files["model.safetensors"]!.bytes)
        try await withFakeHub(hub) { endpoint in
            // huggingface_hub downloads from the fake Hub; PosterSim resolves its cache.
            _ = try await runReferencePython(
                """
                from huggingface_hub import hf_hub_download
                for name in ["config.json", "model.safetensors"]:
                    print(hf_hub_download("timm/vgg16.tv_in1k", name))
                """,
                environment: ["HF_ENDPOINT": endpoint, "HF_HUB_CACHE": pythonCache.path])
            let resolver = ModelResolver(settings: HubSettings(environment: ["HF_HUB_CACHE": pythonCache.path]))
            let location = try resolver.resolve(.vgg16)
            #expect(location.source == .cache(revision: "main", commit: hub.commit(of: "timm/vgg16.tv_in1k")!))
            #expect(try resolver.weightsSHA256(for: .vgg16) == weights.sha256)
            #expect(try Data(contentsOf: location.url(for: "config.json")) == Data(files["config.json"]!.bytes))

            // PosterSim downloads; huggingface_hub finds the files offline.
            _ = try await HubClient.withClient(settings: testSettings(cache: swiftCache, endpoint: endpoint)) {
                try await $0.fetch(.vgg16)
            }
            let printed = try await runReferencePython(
                """
                import hashlib
                from huggingface_hub import try_to_load_from_cache, scan_cache_dir
                for name in ["config.json", "model.safetensors"]:
                    path = try_to_load_from_cache("timm/vgg16.tv_in1k", name)
                    print(hashlib.sha256(open(path, "rb").read()).hexdigest())
                info = scan_cache_dir()
                print(len(info.warnings), [r.repo_id for r in info.repos])
                """,
                environment: ["HF_HUB_CACHE": swiftCache.path, "HF_HUB_OFFLINE": "1"])
            let lines = printed.split(separator: "\n").map(String.init)
            #expect(lines == [
                try digests(of: files["config.json"]!.bytes).sha256, weights.sha256, "0 ['timm/vgg16.tv_in1k']",
            ])
        }
    }
}
