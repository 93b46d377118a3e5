// Settings read from the environment the way huggingface_hub reads them
// (huggingface_hub/constants.py: HF_HOME, HF_HUB_CACHE, HF_HUB_OFFLINE, HF_ENDPOINT, timeouts).
import Foundation

/// Where the Hugging Face cache is, which endpoint to talk to, and how.
///
/// Built from an explicit environment dictionary (never by mutating the process environment), so several
/// settings can coexist in one process, e.g. in parallel tests. Guarantees: `cacheDirectory` is absolute,
/// `endpoint` has no trailing slash, timeouts and retry counts are positive.
public struct HubSettings: Sendable, Equatable {
    /// The hub cache root (the folder holding `models--ORG--NAME`).
    public var cacheDirectory: URL
    /// Base URL of the Hub, e.g. `https://huggingface.co`.
    public var endpoint: String
    /// When true nothing touches the network; only the cache is used.
    public var offline: Bool
    /// Bearer token sent to the Hub (not to CDN hosts it redirects to).
    public var token: String?
    /// Seconds to wait for the metadata (HEAD) response.
    public var metadataTimeout: Double
    /// Seconds a download may stay silent (no bytes) before it is considered stalled.
    public var downloadTimeout: Double
    /// How many times a failed request (429, 5xx, connection error, cut download) is retried.
    public var maxRetries: Int
    /// First back-off delay in seconds; doubles on each retry up to `maxRetryDelay`.
    public var retryBaseDelay: Double
    /// Upper bound for one back-off delay in seconds.
    public var maxRetryDelay: Double
    /// HTTP proxy (CONNECT for https) all requests go through, from HTTPS_PROXY / HTTP_PROXY.
    public var proxy: HTTPProxy?

    /// An HTTP proxy server.
    public struct HTTPProxy: Sendable, Equatable {
        public var host: String
        public var port: Int

        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }
    }

    /// The endpoint used when `HF_ENDPOINT` is not set.
    public static let defaultEndpoint = "https://huggingface.co"

    /// Environment variables that influence the settings, for help texts.
    public static let environmentVariables: [(name: String, meaning: String)] = [
        ("HF_HUB_CACHE", "the cache folder (default: $HF_HOME/hub)"),
        ("HF_HOME", "default: ~/.cache/huggingface (or under $XDG_CACHE_HOME)"),
        ("HF_HUB_OFFLINE", "1 (or true/yes/on): use the cache only, no network"),
        ("HF_ENDPOINT", "Hub or mirror URL (default: \(defaultEndpoint))"),
        ("HF_TOKEN", "access token for gated or private repositories"),
        ("HF_HUB_ETAG_TIMEOUT", "seconds to wait for an answer (default 10)"),
        ("HF_HUB_DOWNLOAD_TIMEOUT", "seconds a download may stall (default 10)"),
        ("HTTPS_PROXY, NO_PROXY", "proxy for the Hub, and hosts that bypass it"),
    ]

    public init(
        cacheDirectory: URL, endpoint: String = HubSettings.defaultEndpoint, offline: Bool = false,
        token: String? = nil, metadataTimeout: Double = 10, downloadTimeout: Double = 10, maxRetries: Int = 5,
        retryBaseDelay: Double = 1, maxRetryDelay: Double = 8, proxy: HTTPProxy? = nil
    ) {
        self.proxy = proxy
        self.cacheDirectory = cacheDirectory.standardizedFileURL
        self.endpoint = HubSettings.trimmedEndpoint(endpoint)
        self.offline = offline
        self.token = token
        self.metadataTimeout = metadataTimeout > 0 ? metadataTimeout : 10
        self.downloadTimeout = downloadTimeout > 0 ? downloadTimeout : 10
        self.maxRetries = max(0, maxRetries)
        self.retryBaseDelay = max(0, retryBaseDelay)
        self.maxRetryDelay = max(0, maxRetryDelay)
    }

    /// Reads the settings from `environment` with huggingface_hub's precedence:
    /// cache = `HF_HUB_CACHE`, else legacy `HUGGINGFACE_HUB_CACHE`, else `HF_HOME/hub`, else
    /// `$XDG_CACHE_HOME/huggingface/hub`, else `~/.cache/huggingface/hub` (with `~` and `$VAR` expanded);
    /// offline when `HF_HUB_OFFLINE` (or `TRANSFORMERS_OFFLINE`) is one of 1/ON/YES/TRUE, any case.
    public init(environment: [String: String]) {
        func nonEmpty(_ key: String) -> String? {
            guard let value = environment[key], !value.isEmpty else { return nil }
            return value
        }
        let home = nonEmpty("HOME") ?? NSHomeDirectory()
        let hfHome =
            nonEmpty("HF_HOME")
            ?? ((nonEmpty("XDG_CACHE_HOME") ?? (home as NSString).appendingPathComponent(".cache")) as NSString)
            .appendingPathComponent("huggingface")
        let hubCache =
            nonEmpty("HF_HUB_CACHE") ?? nonEmpty("HUGGINGFACE_HUB_CACHE")
            ?? (HubSettings.expand(hfHome, environment: environment, home: home) as NSString)
            .appendingPathComponent("hub")
        let cachePath = HubSettings.expand(hubCache, environment: environment, home: home)
        let absolute =
            cachePath.hasPrefix("/")
            ? cachePath : (FileManager.default.currentDirectoryPath as NSString).appendingPathComponent(cachePath)

        let offlineFlag = nonEmpty("HF_HUB_OFFLINE") ?? nonEmpty("TRANSFORMERS_OFFLINE")
        self.init(
            cacheDirectory: URL(fileURLWithPath: absolute, isDirectory: true),
            endpoint: nonEmpty("HF_ENDPOINT") ?? HubSettings.defaultEndpoint,
            offline: offlineFlag.map(HubSettings.isTrue) ?? false,
            token: nonEmpty("HF_TOKEN"),
            metadataTimeout: nonEmpty("HF_HUB_ETAG_TIMEOUT").flatMap(Double.init) ?? 10,
            downloadTimeout: nonEmpty("HF_HUB_DOWNLOAD_TIMEOUT").flatMap(Double.init) ?? 10)
        self.proxy = HubSettings.proxy(for: endpoint, environment: environment)
    }

    /// The proxy curl and httpx would use for `endpoint`: HTTPS_PROXY (or https_proxy) for https,
    /// HTTP_PROXY (or http_proxy) for http, unless NO_PROXY lists the host ("*", the host, or a domain suffix).
    static func proxy(for endpoint: String, environment: [String: String]) -> HTTPProxy? {
        guard let endpointURL = URLComponents(string: endpoint), let host = endpointURL.host?.lowercased() else {
            return nil
        }
        let noProxy = (environment["NO_PROXY"] ?? environment["no_proxy"] ?? "").split(separator: ",")
            .map { $0.trimmingCharacters(in: .whitespaces).lowercased() }.filter { !$0.isEmpty }
        for entry in noProxy {
            let domain = entry.hasPrefix(".") ? String(entry.dropFirst()) : entry
            if entry == "*" || host == domain || host.hasSuffix("." + domain) { return nil }
        }
        let keys = endpointURL.scheme?.lowercased() == "https" ? ["HTTPS_PROXY", "https_proxy"] : ["HTTP_PROXY", "http_proxy"]
        guard let text = keys.lazy.compactMap({ environment[$0] }).first(where: { !$0.isEmpty }) else { return nil }
        // "host:port" without a scheme is common; read it as http://host:port.
        let withScheme = text.contains("://") ? text : "http://" + text
        guard let components = URLComponents(string: withScheme), let proxyHost = components.host, !proxyHost.isEmpty
        else { return nil }
        return HTTPProxy(host: proxyHost, port: components.port ?? 80)
    }

    /// Settings from the current process environment.
    public static func fromProcessEnvironment() -> HubSettings {
        HubSettings(environment: ProcessInfo.processInfo.environment)
    }

    /// huggingface_hub's truth test for flag variables (constants.py ENV_VARS_TRUE_VALUES).
    public static func isTrue(_ value: String) -> Bool {
        ["1", "ON", "YES", "TRUE"].contains(value.uppercased())
    }

    static func trimmedEndpoint(_ endpoint: String) -> String {
        var result = endpoint
        while result.hasSuffix("/") { result.removeLast() }
        return result
    }

    /// `os.path.expanduser` then `os.path.expandvars`: a leading `~` becomes the home folder and
    /// `$NAME` / `${NAME}` are replaced when set (unset ones are left as they are, like Python).
    static func expand(_ path: String, environment: [String: String], home: String) -> String {
        var text = path
        if text == "~" {
            text = home
        } else if text.hasPrefix("~/") {
            text = home + text.dropFirst(1)
        }
        guard text.contains("$") else { return text }
        var output = ""
        var index = text.startIndex
        while index < text.endIndex {
            let character = text[index]
            guard character == "$" else {
                output.append(character)
                index = text.index(after: index)
                continue
            }
            let afterDollar = text.index(after: index)
            var nameStart = afterDollar
            var braced = false
            if afterDollar < text.endIndex, text[afterDollar] == "{" {
                braced = true
                nameStart = text.index(after: afterDollar)
            }
            var nameEnd = nameStart
            while nameEnd < text.endIndex, text[nameEnd].isLetter || text[nameEnd].isNumber || text[nameEnd] == "_" {
                nameEnd = text.index(after: nameEnd)
            }
            let name = String(text[nameStart..<nameEnd])
            var end = nameEnd
            if braced {
                guard nameEnd < text.endIndex, text[nameEnd] == "}" else {
                    output.append(character)
                    index = afterDollar
                    continue
                }
                end = text.index(after: nameEnd)
            }
            if !name.isEmpty, let value = environment[name] {
                output += value
            } else {
                output += text[index..<end]
            }
            index = end > index ? end : text.index(after: index)
        }
        return output
    }
}
