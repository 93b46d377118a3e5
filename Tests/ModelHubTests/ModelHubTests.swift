import TestSupport
import PosterSimCore
import Foundation
import HTTPSupport
import Testing

@testable import ModelHub

// MARK: - Model names and settings

@Suite struct ModelNameTests {
    @Test func aliasesParseCaseInsensitively() {
        for text in ["clip", "CLIP", "Clip"] { #expect(ModelName(parsing: text) == .clip) }
        for text in ["ResNet-50", "resnet-50", "resnet50", "RESNET_50"] { #expect(ModelName(parsing: text) == .resnet50) }
        for text in ["VGG16", "vgg-16", "vgg16"] { #expect(ModelName(parsing: text) == .vgg16) }
        #expect(ModelName(parsing: "microsoft/resnet-50") == .resnet50)
        #expect(ModelName(parsing: "resnet-101") == nil)
        #expect(ModelName(parsing: "") == nil)
    }

    @Test func factsPerModel() {
        #expect(ModelName.clip.repoID == "openai/clip-vit-base-patch32")
        #expect(ModelName.resnet50.repoID == "microsoft/resnet-50")
        #expect(ModelName.vgg16.repoID == "timm/vgg16.tv_in1k")
        #expect(ModelName.allCases.map(\.metric) == [.cosine, .euclidean, .euclidean])
        #expect(ModelName.allCases.map(\.embeddingDimension) == [512, 2048, 4096])
        #expect(ModelName.vgg16.files.required == ["config.json", "model.safetensors"])
    }

    @Test func clipNeedsOneTokenizerForm() {
        let files = ModelName.clip.files
        let base: Set<String> = ["config.json", "preprocessor_config.json", "model.safetensors"]
        #expect(files.missing(present: base.union(["vocab.json", "merges.txt"])).isEmpty)
        #expect(files.missing(present: base.union(["tokenizer.json"])).isEmpty)
        #expect(!files.missing(present: base.union(["vocab.json"])).isEmpty)
        #expect(files.missing(present: ["tokenizer.json"]) .contains("model.safetensors"))
    }
}

@Suite struct SettingsTests {
    @Test func cacheFolderPrecedence() {
        let home = ["HOME": "/home/u"]
        #expect(HubSettings(environment: home).cacheDirectory.path == "/home/u/.cache/huggingface/hub")
        #expect(
            HubSettings(environment: home.merging(["XDG_CACHE_HOME": "/xdg"]) { $1 }).cacheDirectory.path
                == "/xdg/huggingface/hub")
        #expect(
            HubSettings(environment: home.merging(["XDG_CACHE_HOME": "/xdg", "HF_HOME": "/hf"]) { $1 }).cacheDirectory
                .path == "/hf/hub")
        #expect(
            HubSettings(environment: home.merging(["HF_HOME": "/hf", "HF_HUB_CACHE": "/c"]) { $1 }).cacheDirectory.path
                == "/c")
        #expect(HubSettings(environment: home.merging(["HF_HOME": "~/hf"]) { $1 }).cacheDirectory.path == "/home/u/hf/hub")
        #expect(
            HubSettings(environment: home.merging(["HF_HUB_CACHE": "$HOME/x/${HOME}"]) { $1 }).cacheDirectory.path
                == "/home/u/x/home/u")
    }

    @Test func offlineAndEndpoint() {
        for value in ["1", "true", "TRUE", "yes", "on"] {
            #expect(HubSettings(environment: ["HF_HUB_OFFLINE": value]).offline)
        }
        for value in ["0", "false", "no", ""] {
            #expect(!HubSettings(environment: ["HF_HUB_OFFLINE": value]).offline)
        }
        #expect(HubSettings(environment: [:]).endpoint == "https://huggingface.co")
        #expect(HubSettings(environment: ["HF_ENDPOINT": "http://mirror:8080/"]).endpoint == "http://mirror:8080")
        #expect(HubSettings(environment: ["HF_TOKEN": "t"]).token == "t")
    }

    @Test func proxyFromEnvironment() {
        let proxy = HubSettings.HTTPProxy(host: "proxy.local", port: 3128)
        #expect(HubSettings(environment: ["HTTPS_PROXY": "http://proxy.local:3128"]).proxy == proxy)
        #expect(HubSettings(environment: ["https_proxy": "proxy.local:3128"]).proxy == proxy)
        #expect(HubSettings(environment: ["HTTP_PROXY": "http://proxy.local:3128"]).proxy == nil)  // endpoint is https
        #expect(
            HubSettings(environment: ["HTTP_PROXY": "http://proxy.local:3128", "HF_ENDPOINT": "http://mirror"]).proxy
                == proxy)
        #expect(HubSettings(environment: ["HTTPS_PROXY": "http://proxy.local:3128", "NO_PROXY": "localhost,.huggingface.co"]).proxy == nil)
        #expect(HubSettings(environment: ["HTTPS_PROXY": "http://proxy.local:3128", "NO_PROXY": "*"]).proxy == nil)
    }

    @Test func resolveURLEncodesRevision() async throws {
        let client = HubClient(settings: HubSettings(cacheDirectory: URL(fileURLWithPath: "/tmp/x"), offline: true))
        #expect(
            client.resolveURL(repoID: "a/b", revision: "refs/pr/1", file: "dir/x y.json")
                == "https://huggingface.co/a/b/resolve/refs%2Fpr%2F1/dir/x%20y.json")
        try await client.shutdown()
    }
}

@Suite struct DigestTests {
    // Expected values from `git hash-object` and `sha256sum` run on the same bytes.
    @Test func knownVectors() throws {
        let empty = try digests(of: [])
        #expect(empty.gitSHA1 == "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391")
        #expect(empty.sha256 == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        let hello = try digests(of: Array("hello world\n".utf8))
        #expect(hello.gitSHA1 == "3b18e512dba79e4c8300dd08aeb37f8e728b8dad")
        #expect(hello.sha256 == "a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447")
    }

    @Test func etagNormalisation() {
        #expect(HubClient.normalizeEtag("W/\"abc\"") == "abc")
        #expect(HubClient.normalizeEtag("\"abc\"") == "abc")
        #expect(HubClient.contentRangeStart("bytes 100-199/200") == 100)
        #expect(HubClient.isSafeEtag("e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"))
        #expect(!HubClient.isSafeEtag("../../etc/passwd") && !HubClient.isSafeEtag("a/b") && !HubClient.isSafeEtag(""))
    }
}

// MARK: - Model directories and the cache without network

@Suite struct ResolverTests {
    @Test func modelDirectoryWinsAndIsChecked() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let weights = randomBytes(4096)
        try Data(weights).write(to: folder.appendingPathComponent("model.safetensors"))
        let settings = HubSettings(cacheDirectory: folder.appendingPathComponent("empty-cache"), offline: true)
        let resolver = try ModelResolver(settings: settings, modelDirectoryArguments: ["VGG-16=\(folder.path)"])
        #expect(throws: ModelHubError.missingFiles(model: .vgg16, directory: folder.path, files: ["config.json"])) {
            try resolver.resolve(.vgg16)
        }
        try Data("{}".utf8).write(to: folder.appendingPathComponent("config.json"))
        let location = try resolver.resolve(.vgg16)
        #expect(location.source == .modelDirectory)
        #expect(try resolver.weightsSHA256(for: .vgg16) == digests(of: weights).sha256)

        // A model without --model-dir is looked up in the (empty) cache.
        do {
            _ = try resolver.resolve(.clip)
            Issue.record("expected notInCache")
        } catch let error as ModelHubError {
            guard case let .notInCache(model, repoFolder, revision) = error else {
                Issue.record("unexpected \(error)")
                return
            }
            #expect(model == .clip && revision == "main")
            #expect(repoFolder.hasSuffix("empty-cache/models--openai--clip-vit-base-patch32"))
            #expect(error.description.contains("--model-dir clip=PATH"))
        }
        #expect(throws: ModelHubError.invalidModelDirectoryArgument("alexnet=/x")) {
            try ModelResolver.parseModelDirectory("alexnet=/x")
        }
        #expect(throws: ModelHubError.modelDirectoryNotFound(model: .clip, path: "/nonexistent/dir")) {
            try ModelResolver(settings: settings, modelDirectoryArguments: ["clip=/nonexistent/dir"]).resolve(.clip)
        }
    }
}

// MARK: - The real client against a local fake Hub

/// The files of a small fake `timm/vgg16.tv_in1k`.
func vggRepo(weights: Int = 300_000) -> [String: FakeFile] {
    ["config.json": FakeFile(bytes: randomBytes(700), lfs: false),
     "model.safetensors": FakeFile(bytes: randomBytes(weights), lfs: true)]
}

@Suite struct FetchTests {
    @Test func fullFetchBuildsTheCacheLayoutAndRefetchDownloadsNothing() async throws {
        let cache = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: cache) }
        let hub = FakeHub()
        let files = vggRepo()
        hub.addRepo("timm/vgg16.tv_in1k", files: files)
        let commit = try #require(hub.commit(of: "timm/vgg16.tv_in1k"))
        let config = try digests(of: files["config.json"]!.bytes)
        let weights = try digests(of: files["model.safetensors"]!.bytes)

        try await withFakeHub(hub) { endpoint in
            let settings = testSettings(cache: cache, endpoint: endpoint, token: "secret-token")
            let report = try await HubClient.withClient(settings: settings) { try await $0.fetch(.vgg16) }
            #expect(report.commit == commit)
            #expect(report.files.map(\.status) == [.downloaded, .downloaded])
            #expect(report.weightsSHA256 == weights.sha256)
            #expect(report.bytesTransferred == Int64(700 + 300_000))

            let repo = cache.appendingPathComponent("models--timm--vgg16.tv_in1k")
            #expect(try String(contentsOf: repo.appendingPathComponent("refs/main"), encoding: .utf8) == commit)
            let snapshot = repo.appendingPathComponent("snapshots/\(commit)")
            let fm = FileManager.default
            #expect(
                try fm.destinationOfSymbolicLink(atPath: snapshot.appendingPathComponent("config.json").path)
                    == "../../blobs/\(config.gitSHA1)")
            #expect(
                try fm.destinationOfSymbolicLink(atPath: snapshot.appendingPathComponent("model.safetensors").path)
                    == "../../blobs/\(weights.sha256)")
            #expect(try Data(contentsOf: snapshot.appendingPathComponent("model.safetensors")) == Data(files["model.safetensors"]!.bytes))
            #expect(
                try Set(fm.contentsOfDirectory(atPath: repo.appendingPathComponent("blobs").path))
                    == [config.gitSHA1, weights.sha256])

            // The token goes to the Hub but not to the CDN host the LFS file redirects to.
            let requests = hub.requests
            let cdn = requests.filter { $0.path.hasPrefix("/cdn/") }
            #expect(cdn.count == 1 && cdn.allSatisfy { $0.host.hasPrefix("localhost") && $0.authorization == nil })
            #expect(requests.filter { $0.path.contains("/resolve/") }.allSatisfy { $0.authorization == "Bearer secret-token" })

            // The store's identity for the weights.
            let resolver = ModelResolver(settings: settings)
            #expect(try resolver.weightsSHA256(for: .vgg16) == weights.sha256)
            #expect(try resolver.weightsSHA256(for: .vgg16, verify: true) == weights.sha256)
            #expect(try resolver.resolve(.vgg16).source == .cache(revision: "main", commit: commit))

            hub.clearLog()
            let again = try await HubClient.withClient(settings: settings) { try await $0.fetch(.vgg16) }
            #expect(again.files.map(\.status) == [.cached, .cached])
            #expect(again.bytesTransferred == 0)
            #expect(again.weightsSHA256 == weights.sha256)
            #expect(hub.requests.allSatisfy { $0.method == "HEAD" })
            #expect(hub.requests.count == 1)  // the first HEAD pins the commit; the rest is on disk
        }
    }

    @Test func interruptedDownloadResumesWithRange() async throws {
        let cache = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: cache) }
        let hub = FakeHub()
        let files = vggRepo()
        hub.addRepo("timm/vgg16.tv_in1k", files: files)
        hub.cut(file: "model.safetensors", afterBytes: 100_000)
        try await withFakeHub(hub) { endpoint in
            let events = EventLog()
            let report = try await HubClient.withClient(settings: testSettings(cache: cache, endpoint: endpoint)) {
                try await $0.fetch(.vgg16) { events.append($0) }
            }
            let weights = try digests(of: files["model.safetensors"]!.bytes)
            #expect(report.weightsSHA256 == weights.sha256)
            let cdn = hub.requests.filter { $0.path.hasPrefix("/cdn/") && $0.method == "GET" }
            // The client resumes from what reached it (at most what the server wrote before the cut).
            #expect(cdn.count == 2 && cdn[0].range == nil)
            let resumedAt = cdn.count == 2 ? cdn[1].range.flatMap { Int($0.dropFirst(6).dropLast()) } : nil
            #expect(resumedAt.map { $0 > 0 && $0 <= 100_000 } == true)
            #expect(events.retries == 1)
            #expect(events.lastProgress["model.safetensors"]?.done == 300_000)
            let blob = cache.appendingPathComponent("models--timm--vgg16.tv_in1k/blobs/\(weights.sha256)")
            #expect(try Data(contentsOf: blob) == Data(files["model.safetensors"]!.bytes))
        }
    }

    @Test func leftoverIncompleteFileIsResumed() async throws {
        let cache = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: cache) }
        let hub = FakeHub()
        let files = vggRepo()
        hub.addRepo("timm/vgg16.tv_in1k", files: files)
        let bytes = files["model.safetensors"]!.bytes
        let weights = try digests(of: bytes)
        let blobs = cache.appendingPathComponent("models--timm--vgg16.tv_in1k/blobs")
        try FileManager.default.createDirectory(at: blobs, withIntermediateDirectories: true)
        try Data(bytes[0..<12_345]).write(to: blobs.appendingPathComponent("\(weights.sha256).incomplete"))
        try await withFakeHub(hub) { endpoint in
            let report = try await HubClient.withClient(settings: testSettings(cache: cache, endpoint: endpoint)) {
                try await $0.fetch(.vgg16)
            }
            #expect(report.files.first { $0.file == "model.safetensors" }?.bytesTransferred == Int64(bytes.count - 12_345))
            #expect(hub.requests.filter { $0.path.hasPrefix("/cdn/") }.map(\.range) == ["bytes=12345-"])
            #expect(try Data(contentsOf: blobs.appendingPathComponent(weights.sha256)) == Data(bytes))
            #expect(!FileManager.default.fileExists(atPath: blobs.appendingPathComponent("\(weights.sha256).incomplete").path))
        }
    }

    @Test func serverIgnoringRangeReplacesThePartialFile() async throws {
        let cache = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: cache) }
        let hub = FakeHub()
        let files = vggRepo()
        hub.addRepo("timm/vgg16.tv_in1k", files: files)
        hub.ignoreRange()
        let bytes = files["model.safetensors"]!.bytes
        let weights = try digests(of: bytes)
        let blobs = cache.appendingPathComponent("models--timm--vgg16.tv_in1k/blobs")
        try FileManager.default.createDirectory(at: blobs, withIntermediateDirectories: true)
        // Bytes that are not the file's prefix: appending the full body to them would corrupt the blob.
        try Data(randomBytes(5_000)).write(to: blobs.appendingPathComponent("\(weights.sha256).incomplete"))
        try await withFakeHub(hub) { endpoint in
            let report = try await HubClient.withClient(settings: testSettings(cache: cache, endpoint: endpoint)) {
                try await $0.fetch(.vgg16)
            }
            #expect(report.weightsSHA256 == weights.sha256)
            #expect(hub.requests.filter { $0.path.hasPrefix("/cdn/") }.map(\.range) == ["bytes=5000-"])
            #expect(try Data(contentsOf: blobs.appendingPathComponent(weights.sha256)) == Data(bytes))
        }
    }

    @Test func corruptedBlobIsRejectedAndNotInstalled() async throws {
        let cache = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: cache) }
        let hub = FakeHub()
        let files = vggRepo()
        hub.addRepo("timm/vgg16.tv_in1k", files: files)
        hub.corrupt(file: "model.safetensors")
        let weights = try digests(of: files["model.safetensors"]!.bytes)
        try await withFakeHub(hub) { endpoint in
            do {
                _ = try await HubClient.withClient(settings: testSettings(cache: cache, endpoint: endpoint)) {
                    try await $0.fetch(.vgg16)
                }
                Issue.record("a corrupted download was accepted")
            } catch let error as ModelHubError {
                guard case let .checksumMismatch(file, algorithm, expected, actual) = error else {
                    Issue.record("unexpected \(error)")
                    return
                }
                #expect(file == "model.safetensors" && algorithm == "sha256")
                #expect(expected == weights.sha256 && actual != weights.sha256)
            }
            let repo = cache.appendingPathComponent("models--timm--vgg16.tv_in1k")
            let blobs = try FileManager.default.contentsOfDirectory(atPath: repo.appendingPathComponent("blobs").path)
            #expect(!blobs.contains { $0.hasPrefix(weights.sha256) })
            #expect(!FileManager.default.fileExists(atPath: repo.appendingPathComponent("refs/main").path))
            #expect(throws: ModelHubError.self) { try ModelResolver(settings: testSettings(cache: cache, endpoint: endpoint)).resolve(.vgg16) }
        }
    }

    @Test func notFoundAndDeniedAreTyped() async throws {
        let cache = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: cache) }
        let hub = FakeHub()
        // ResNet-50 without its preprocessor_config.json; no CLIP repository at all; VGG gated.
        hub.addRepo(
            "microsoft/resnet-50",
            files: ["config.json": FakeFile(bytes: randomBytes(10), lfs: false),
                    "model.safetensors": FakeFile(bytes: randomBytes(10), lfs: true)])
        hub.deny("timm/vgg16.tv_in1k", status: 403)
        let resnetCommit = try #require(hub.commit(of: "microsoft/resnet-50"))
        try await withFakeHub(hub) { endpoint in
            try await HubClient.withClient(settings: testSettings(cache: cache, endpoint: endpoint)) { client in
                await #expect(
                    throws: ModelHubError.notFound(
                        // Files after the first are asked for by the commit the first one pinned.
                        url: "\(endpoint)/microsoft/resnet-50/resolve/\(resnetCommit)/preprocessor_config.json",
                        errorCode: "EntryNotFound")
                ) { try await client.fetch(.resnet50) }
                await #expect(
                    throws: ModelHubError.notFound(
                        url: "\(endpoint)/openai/clip-vit-base-patch32/resolve/main/config.json",
                        errorCode: "RepoNotFound")
                ) { try await client.fetch(.clip) }
                await #expect(
                    throws: ModelHubError.forbidden(url: "\(endpoint)/timm/vgg16.tv_in1k/resolve/main/config.json")
                ) { try await client.fetch(.vgg16) }
                await #expect(
                    throws: ModelHubError.notFound(
                        url: "\(endpoint)/microsoft/resnet-50/resolve/v9/config.json", errorCode: "RevisionNotFound")
                ) { try await client.fetch(.resnet50, revision: "v9") }
            }
        }
    }

    @Test func serverErrorsAreRetried() async throws {
        let cache = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: cache) }
        let hub = FakeHub()
        hub.addRepo("timm/vgg16.tv_in1k", files: vggRepo())
        hub.inject(statuses: [500], forPath: "/timm/vgg16.tv_in1k/resolve/main/config.json")
        hub.inject(statuses: [503, 429], forPath: "/cdn/model.safetensors")
        try await withFakeHub(hub) { endpoint in
            let report = try await HubClient.withClient(settings: testSettings(cache: cache, endpoint: endpoint)) {
                try await $0.fetch(.vgg16)
            }
            #expect(report.files.map(\.status) == [.downloaded, .downloaded])
            #expect(hub.requests.filter { $0.path.hasSuffix("/config.json") && $0.method == "HEAD" }.count == 2)
            #expect(hub.requests.filter { $0.path == "/cdn/model.safetensors" }.count == 3)

            // A server that keeps failing gives up after maxRetries with a typed error.
            hub.inject(statuses: Array(repeating: 502, count: 10), forPath: "/timm/vgg16.tv_in1k/resolve/v2/config.json")
            await #expect(
                throws: ModelHubError.httpStatus(
                    status: 502, url: "\(endpoint)/timm/vgg16.tv_in1k/resolve/v2/config.json", attempts: 3)
            ) {
                try await HubClient.withClient(settings: testSettings(cache: cache, endpoint: endpoint, maxRetries: 2)) {
                    try await $0.fetch(.vgg16, revision: "v2")
                }
            }
        }
    }

    /// The hub client honours Retry-After as an HTTP-date too (it used to read only delta-seconds and fall back to
    /// its short back-off), through the retry policy it shares with the TMDB client; waits are on a VirtualClock.
    @Test func retryAfterAsHTTPDateIsHonoured() async throws {
        let cache = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: cache) }
        let hub = FakeHub()
        hub.addRepo("timm/vgg16.tv_in1k", files: vggRepo())
        let clock = VirtualClock()
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        let retryDate = clock.date.addingTimeInterval(20)
        hub.inject(
            statuses: [503], forPath: "/timm/vgg16.tv_in1k/resolve/main/config.json",
            retryAfter: formatter.string(from: retryDate))
        try await withFakeHub(hub) { endpoint in
            let client = HubClient(settings: testSettings(cache: cache, endpoint: endpoint), clock: clock)
            do {
                let report = try await client.fetch(.vgg16)
                #expect(report.files.map(\.status) == [.downloaded, .downloaded])
                try await client.shutdown()
            } catch {
                try? await client.shutdown()
                throw error
            }
        }
        #expect(clock.date >= retryDate)
        #expect(clock.sleeps.contains(.seconds(20)))
    }

    @Test func offlineMakesNoRequestsAndResolvesFromCache() async throws {
        let cache = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: cache) }
        let hub = FakeHub()
        hub.addRepo("timm/vgg16.tv_in1k", files: vggRepo())
        try await withFakeHub(hub) { endpoint in
            let offlineEnvironment = ["HF_HUB_CACHE": cache.path, "HF_ENDPOINT": endpoint, "HF_HUB_OFFLINE": "1"]
            let offline = HubSettings(environment: offlineEnvironment)
            #expect(offline.offline)
            // Empty cache: a clear error, and nothing sent.
            await #expect(throws: ModelHubError.self) {
                try await HubClient.withClient(settings: offline) { try await $0.fetch(.vgg16) }
            }
            #expect(hub.requests.isEmpty)

            _ = try await HubClient.withClient(settings: testSettings(cache: cache, endpoint: endpoint)) {
                try await $0.fetch(.vgg16)
            }
            hub.clearLog()
            let report = try await HubClient.withClient(settings: offline) { try await $0.fetch(.vgg16) }
            #expect(report.files.map(\.status) == [.cached, .cached])
            #expect(report.commit == hub.commit(of: "timm/vgg16.tv_in1k"))
            let location = try ModelResolver(settings: HubSettings(environment: ["HF_HUB_CACHE": cache.path, "HF_HUB_OFFLINE": "true"]))
                .resolve(.vgg16)
            #expect(location.presentFiles == ["config.json", "model.safetensors"])
            #expect(hub.requests.isEmpty)
        }
    }

    @Test func cacheFoundThroughHFHome() async throws {
        let home = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: home) }
        let hub = FakeHub()
        let files = vggRepo(weights: 5000)
        hub.addRepo("timm/vgg16.tv_in1k", files: files)
        try await withFakeHub(hub) { endpoint in
            let environment = ["HF_HOME": home.path, "HF_ENDPOINT": endpoint]
            let settings = HubSettings(environment: environment)
            #expect(settings.cacheDirectory.path == home.appendingPathComponent("hub").path)
            _ = try await HubClient.withClient(settings: settings) { try await $0.fetch(.vgg16) }
            let location = try ModelResolver(settings: HubSettings(environment: ["HF_HOME": home.path])).resolve(.vgg16)
            #expect(location.directory.path.hasPrefix(home.appendingPathComponent("hub/models--timm--vgg16.tv_in1k/snapshots").path))
            // The same cache through HF_HUB_CACHE, which wins over HF_HOME.
            let viaHubCache = try ModelResolver(
                settings: HubSettings(environment: ["HF_HOME": "/nonexistent", "HF_HUB_CACHE": home.appendingPathComponent("hub").path])
            ).resolve(.vgg16)
            #expect(viaHubCache.directory == location.directory)
            #expect(try ModelResolver(settings: HubSettings(environment: ["HF_HOME": home.path])).weightsSHA256(for: .vgg16)
                == digests(of: files["model.safetensors"]!.bytes).sha256)
        }
    }

    @Test func renamedRepositoryRedirectIsFollowed() async throws {
        let cache = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: cache) }
        let hub = FakeHub()
        let files = vggRepo(weights: 1000)
        hub.addRepo("timm/vgg16.tv_in1k", files: files)
        hub.rename("old-org/old-vgg", to: "timm/vgg16.tv_in1k")
        try await withFakeHub(hub) { endpoint in
            let (commit, results) = try await HubClient.withClient(settings: testSettings(cache: cache, endpoint: endpoint)) {
                try await $0.fetchFiles(repoID: "old-org/old-vgg", required: ["config.json", "model.safetensors"], optional: [])
            }
            #expect(commit == hub.commit(of: "timm/vgg16.tv_in1k"))
            #expect(results.map(\.status) == [.downloaded, .downloaded])
            // Stored under the name that was asked for, as huggingface_hub does.
            let snapshot = cache.appendingPathComponent("models--old-org--old-vgg/snapshots/\(commit)")
            #expect(try Data(contentsOf: snapshot.appendingPathComponent("config.json")) == Data(files["config.json"]!.bytes))
        }
    }

    @Test func clipOptionalTokenizerFiles() async throws {
        let cache = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: cache) }
        let hub = FakeHub()
        var files: [String: FakeFile] = [
            "config.json": FakeFile(bytes: randomBytes(50), lfs: false),
            "preprocessor_config.json": FakeFile(bytes: randomBytes(50), lfs: false),
            "model.safetensors": FakeFile(bytes: randomBytes(2000), lfs: true),
        ]
        hub.addRepo("openai/clip-vit-base-patch32", files: files)
        try await withFakeHub(hub) { endpoint in
            let settings = testSettings(cache: cache, endpoint: endpoint)
            await #expect(throws: ModelHubError.self) {
                try await HubClient.withClient(settings: settings) { try await $0.fetch(.clip) }
            }
            files["vocab.json"] = FakeFile(bytes: randomBytes(80), lfs: false)
            files["merges.txt"] = FakeFile(bytes: randomBytes(80), lfs: false)
            hub.addRepo("openai/clip-vit-base-patch32", files: files, commit: randomCommit())
            let report = try await HubClient.withClient(settings: settings) { try await $0.fetch(.clip) }
            let status = Dictionary(uniqueKeysWithValues: report.files.map { ($0.file, $0.status) })
            #expect(status["vocab.json"] == .downloaded && status["merges.txt"] == .downloaded)
            #expect(status["tokenizer.json"] == .absent && status["special_tokens_map.json"] == .absent)
            let location = try ModelResolver(settings: settings).resolve(.clip)
            #expect(Set(location.presentFiles) == Set(files.keys))
            // The absence is remembered per commit: a second fetch asks nothing about those files.
            hub.clearLog()
            _ = try await HubClient.withClient(settings: settings) { try await $0.fetch(.clip) }
            #expect(hub.requests.count == 1)

            // Offline, optional files that are not on disk are reported absent, not as errors, even without
            // the markers (as in a cache huggingface_hub filled).
            try FileManager.default.removeItem(at: cache.appendingPathComponent("models--openai--clip-vit-base-patch32/.no_exist"))
            let offline = testSettings(cache: cache, endpoint: endpoint, offline: true)
            let offlineReport = try await HubClient.withClient(settings: offline) { try await $0.fetch(.clip) }
            #expect(offlineReport.files.filter { $0.status == .absent }.map(\.file).sorted()
                == ["special_tokens_map.json", "tokenizer.json", "tokenizer_config.json"])
            #expect(hub.requests.count == 1)
        }
    }

    @Test func unreachableEndpointIsOneClearError() async throws {
        let cache = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: cache) }
        // Port 1 on the loopback: nothing listens there, the connection is refused at once.
        let settings = testSettings(cache: cache, endpoint: "http://127.0.0.1:1", metadataTimeout: 1)
        do {
            _ = try await HubClient.withClient(settings: settings) { try await $0.fetch(.vgg16) }
            Issue.record("expected unreachable")
        } catch let error as ModelHubError {
            guard case let .unreachable(endpoint, _, _) = error else {
                Issue.record("unexpected \(error)")
                return
            }
            #expect(endpoint == "http://127.0.0.1:1")
            #expect(error.description.contains("HF_ENDPOINT") && error.description.contains("--model-dir"))
        }
    }
}

/// Collects progress events from the (Sendable) callback.
final class EventLog: @unchecked Sendable {
    private let lock = NSLock()
    private var events: [FetchEvent] = []

    func append(_ event: FetchEvent) { lock.withLock { events.append(event) } }

    var retries: Int {
        lock.withLock { events.filter { if case .retrying = $0 { true } else { false } }.count }
    }

    var lastProgress: [String: (done: Int64, total: Int64?)] {
        lock.withLock {
            var result: [String: (done: Int64, total: Int64?)] = [:]
            for case let .downloading(_, file, done, total) in events { result[file] = (done, total) }
            return result
        }
    }
}
