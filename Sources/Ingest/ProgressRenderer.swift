import Foundation
import Store
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Draws `IngestEvent`s for a person: on a terminal, one progress bar line redrawn in place (at most 10 times a second)
/// with count, rate and ETA; otherwise (a pipe or a log file) a plain line every `interval` seconds. Skips are printed
/// as they happen, and the summary at the end. Writes to standard error by default, so standard output stays clean.
/// Thread-safe: `handle` may be called from any task.
public final class ProgressRenderer: Sendable {
    public enum Style: Sendable { case bar, lines }

    public let style: Style
    /// Seconds between plain lines.
    public let interval: Double
    private let write: @Sendable (String) -> Void
    private let state = Mutex(RenderState())

    private struct RenderState {
        var lastDraw: Double = -.infinity
        var barVisible = false
        var planned = 0
        var lastProgress: IngestProgress? = nil
    }

    /// `style` nil picks `.bar` when standard error is a terminal (`isatty(2)`), else `.lines`.
    /// What the progress counts, per second ("posters/s"; `pinecone copy` counts vectors).
    public let unit: String

    public init(
        style: Style? = nil, interval: Double = 10, unit: String = "posters", write: @escaping @Sendable (String) -> Void = ProgressRenderer.toStandardError
    ) {
        self.style = style ?? (isatty(STDERR_FILENO) == 1 ? .bar : .lines)
        self.interval = interval
        self.unit = unit
        self.write = write
    }

    public static let toStandardError: @Sendable (String) -> Void = { text in
        FileHandle.standardError.write(Data(text.utf8))
    }

    private static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    public func handle(_ event: IngestEvent) {
        let text: String? = state.withLock { s in
            switch event {
            case .listingPage(let page, let last):
                // A discover walk does not know its last page (0): it counts pages read.
                let of = last > 0 ? "/\(last)" : ""
                if style == .bar {
                    s.barVisible = true
                    return "\r\u{1B}[2Klisting movies: page \(page)\(of)"
                }
                return page == last ? "listed page \(page)\(of)\n" : nil
            case .listed(let movies, let malformed):
                return clear(&s) + "listed \(movies) movies" + (malformed > 0 ? " (\(malformed) malformed entries dropped)" : "")
                    + "\n"
            case .planned(let pending, let alreadyDone, let notRetried, let models):
                s.planned = pending
                return "models \(models.joined(separator: ", ")): \(pending) movies to embed, \(alreadyDone) already done"
                    + (notRetried > 0 ? ", \(notRetried) skipped before and not retried (--retry-skipped)" : "") + "\n"
            case .skipped(let skip):
                let what = skip.space.map { " [\($0)]" } ?? ""
                return clear(&s) + "skipped \(skip.movieID) \"\(skip.title)\"\(what): \(skip.reason): \(skip.detail)\n"
            case .batchStored:
                return nil
            case .progress(let p):
                s.lastProgress = p
                let t = Self.now()
                let final = p.completed == p.total
                switch style {
                case .bar:
                    guard final || t - s.lastDraw >= 0.1 else { return nil }
                    s.lastDraw = t
                    s.barVisible = true
                    return "\r\u{1B}[2K" + Self.bar(p, unit: unit)
                case .lines:
                    guard final || t - s.lastDraw >= interval else { return nil }
                    s.lastDraw = t
                    return Self.line(p, unit: unit) + "\n"
                }
            case .finished(let summary):
                // Keep the final bar on screen; the summary goes below it.
                let end = s.barVisible ? "\n" : ""
                s.barVisible = false
                return end + Self.summaryText(summary)
            }
        }
        if let text { write(text) }
    }

    /// Ends the bar line if one is showing.
    private func clear(_ s: inout RenderState) -> String {
        guard s.barVisible else { return "" }
        s.barVisible = false
        return "\r\u{1B}[2K"
    }

    static func bar(_ p: IngestProgress, width: Int = 30, unit: String = "posters") -> String {
        let fraction = p.total > 0 ? Double(p.completed) / Double(p.total) : 1
        let filled = min(width, max(0, Int((fraction * Double(width)).rounded(.down))))
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
        return "[\(bar)] " + line(p, unit: unit)
    }

    /// `123/1000 (12%) 4.5 posters/s ETA 3m15s, 2 skipped`.
    static func line(_ p: IngestProgress, unit: String = "posters") -> String {
        let percent = p.total > 0 ? p.completed * 100 / p.total : 100
        var text = "\(p.completed)/\(p.total) (\(percent)%) " + String(format: "%.1f ", p.rate) + unit + "/s"
        if p.completed < p.total { text += " ETA " + (p.eta.map(duration) ?? "?") }
        if p.skipped > 0 { text += ", \(p.skipped) skipped" }
        return text
    }

    static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "?" }
        let s = Int(seconds.rounded())
        if s >= 3600 { return "\(s / 3600)h\(String(format: "%02d", s % 3600 / 60))m" }
        if s >= 60 { return "\(s / 60)m\(String(format: "%02d", s % 60))s" }
        return "\(s)s"
    }

    /// The end-of-run report: counts, vectors per model, skips per reason.
    public static func summaryText(_ s: IngestSummary) -> String {
        var lines: [String] = []
        lines.append(
            "ingest finished in \(duration(s.elapsedSeconds)): \(s.listed) movies listed, \(s.alreadyDone) already done, "
                + "\(s.embedded) embedded, \(s.skippedMovies) skipped")
        for (space, n) in s.vectorsWritten.sorted(by: { $0.key < $1.key }) {
            lines.append("  \(space): \(n) vectors written")
        }
        for (reason, n) in s.skippedByReason.sorted(by: { $0.key < $1.key }) {
            let retried = SkipReason(rawValue: reason)?.isTransient == true ? "retried next run" : "not retried"
            lines.append("  skipped (\(reason)): \(n), \(retried)")
        }
        if s.notRetried > 0 {
            lines.append("  \(s.notRetried) movies skipped by an earlier run for a permanent reason were not retried "
                + "(--retry-skipped retries them; `postersim skipped` lists them)")
        }
        if s.nothingDone { lines.append("nothing could be ingested") }
        return lines.joined(separator: "\n") + "\n"
    }
}
