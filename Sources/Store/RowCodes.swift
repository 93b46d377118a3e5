import PosterSimCore
import CDNNL
import Foundation

/// A space's rows as 8-bit integer codes, one scale per row, with what it takes to bound how far a dot product of codes
/// lies from the rows' own: used by the list upkeep to screen pairs at the int8 GEMM's rate (`NeighbourScoring+GEMM`).
///
/// A row v becomes v = s·q + e with s = max|vᵢ|/127 and q = round(v/s) in [-127, 127]; `norms` holds ‖v‖ and `residuals`
/// ‖e‖, both rounded up. For two vectors, |x·y − s_x·s_y·(q_x·q_y)| ≤ ‖x‖·‖e_y‖ + ‖e_x‖·(‖y‖ + ‖e_y‖) (Cauchy–Schwarz on
/// x·e_y and e_x·(s_y·q_y)), and q_x·q_y is an exact integer. The bound is rigorous whatever the data; on the rows of a
/// 4096-d space it is about 2% of ‖x‖‖y‖, wide next to the fp32 GEMM's (see `NeighbourScoringMethod.boundedInt8GEMM`
/// for what that costs).
///
/// Sharing rule: the codes follow their `MatrixStorage` (whose rows below a published count never change, see
/// `MatrixStorage`), so codes made for rows `0..<count` stay valid for as long as the storage does, and `extend` only
/// appends. Only the store's single writer calls `extend` and reads the codes.
final class RowCodes: @unchecked Sendable {
    /// The matrix coded. Weak, so that cached codes do not keep a compacted-away matrix alive.
    private(set) weak var storage: MatrixStorage?
    let dimension: Int
    /// Rows coded so far.
    private(set) var count = 0
    /// The first coded row whose magnitude is outside what the bounds cover, if any.
    private var firstUncodable: Int?
    /// Whether every coded row is within what the bounds cover (else the int8 screen is not used).
    var usable: Bool { dimension <= Self.maxDimension && firstUncodable == nil }
    /// The snapshot the codes were last extended for: asked again for it, they need no truncating.
    weak var codedFor: SpaceIndex?
    let codes: UnsafeMutablePointer<Int8>
    let scales: UnsafeMutablePointer<Float>
    let norms: UnsafeMutablePointer<Float>
    let residuals: UnsafeMutablePointer<Float>

    /// Largest magnitude coded: keeps every product of scales, norms and integer sums a normal, finite Float.
    static let magnitudeRange: ClosedRange<Float> = 1e-15...1e15
    /// Largest dimension whose integer sums (up to 255·127 per term, with the GEMM's offset) fit in Int32.
    static let maxDimension = Int(Int32.max) / (255 * 127)

    init(storage: MatrixStorage) {
        self.storage = storage
        dimension = storage.dimension
        let rows = storage.capacityRows
        codes = .allocate(capacity: rows * dimension)
        scales = .allocate(capacity: rows)
        norms = .allocate(capacity: rows)
        residuals = .allocate(capacity: rows)
    }

    deinit {
        codes.deallocate()
        scales.deallocate()
        norms.deallocate()
        residuals.deallocate()
    }

    /// Forgets the codes of rows `rows...` (they will be coded again).
    func truncate(to rows: Int) {
        count = min(count, rows)
        if let first = firstUncodable, first >= count { firstUncodable = nil }
    }

    /// Codes rows `count..<rows` of the storage.
    func extend(to rows: Int) {
        guard let storage else { preconditionFailure("extending codes whose matrix is gone") }
        precondition(rows <= storage.capacityRows)
        while count < rows {
            guard let coded = Self.code(storage.row(count), dimension: dimension, into: codes + count * dimension) else {
                if firstUncodable == nil { firstUncodable = count }
                scales[count] = 0
                norms[count] = .infinity
                residuals[count] = .infinity
                count += 1
                continue
            }
            scales[count] = coded.scale
            norms[count] = coded.norm
            residuals[count] = coded.residual
            count += 1
        }
    }

    /// Codes one vector: its scale, ‖v‖ and ‖v − s·q‖ (rounded up). Nil when its largest magnitude is outside
    /// `magnitudeRange` (and not zero) or a value is not finite.
    static func code(_ v: UnsafePointer<Float>, dimension: Int, into q: UnsafeMutablePointer<Int8>)
        -> (scale: Float, norm: Float, residual: Float)?
    {
        var largest: Float = 0
        for i in 0..<dimension {
            guard v[i].isFinite else { return nil }
            largest = max(largest, abs(v[i]))
        }
        if largest == 0 {
            q.update(repeating: 0, count: dimension)
            return (0, 0, 0)
        }
        guard magnitudeRange.contains(largest) else { return nil }
        let scale = largest / 127
        var norm2 = 0.0
        var residual2 = 0.0
        for i in 0..<dimension {
            let code = max(-127, min(127, (v[i] / scale).rounded()))
            q[i] = Int8(code)
            // Both products are exact in Double (24-bit by 8-bit significands), so is the difference.
            let e = Double(v[i]) - Double(scale) * Double(code)
            norm2 += Double(v[i]) * Double(v[i])
            residual2 += e * e
        }
        // Rounded up: the sums' own error is below 1e-12 relative at any dimension we accept.
        return (scale, roundedUp(norm2.squareRoot()), roundedUp(residual2.squareRoot()))
    }

    static func roundedUp(_ x: Double) -> Float {
        Float(x * (1 + 1e-9)).nextUp
    }

    /// Whether this CPU's `dnnl_gemm_u8s8s32` sums exactly. Without VNNI, oneDNN multiplies u8 by s8 with an
    /// instruction that saturates pairs of products at Int16 (a known limitation of its int8 GEMM), which would break
    /// the bound; this runs such products once and compares them with the exact integers.
    static let gemmIsExact: Bool = {
        let m = 3, n = 5, k = 301
        var a = [UInt8](repeating: 0, count: m * k)
        var b = [Int8](repeating: 0, count: n * k)
        for i in 0..<(m * k) { a[i] = i % 3 == 0 ? 255 : (i % 3 == 1 ? 1 : UInt8(truncatingIfNeeded: 128 + i % 97)) }
        for i in 0..<(n * k) { b[i] = i % 4 == 0 ? -127 : (i % 4 == 1 ? 127 : Int8(truncatingIfNeeded: i % 51 - 25)) }
        var c = [Int32](repeating: 0, count: m * n)
        var offset: Int32 = 0
        let status = dnnl_gemm_u8s8s32(
            CChar(UInt8(ascii: "N")), CChar(UInt8(ascii: "T")), CChar(UInt8(ascii: "F")), Int64(m), Int64(n),
            Int64(k), 1, a, Int64(k), 128, b, Int64(k), 0, 0, &c, Int64(n), &offset)
        guard status == dnnl_success else { return false }
        for i in 0..<m {
            for j in 0..<n {
                var exact = 0
                for t in 0..<k { exact += (Int(a[i * k + t]) - 128) * Int(b[j * k + t]) }
                if Int(c[i * n + j]) != exact { return false }
            }
        }
        return true
    }()
}

/// The codes of each space's current storage, kept between writes so that a write codes only the rows it appended.
final class RowCodesCache: @unchecked Sendable {
    private let lock = NSLock()
    private var bySpace: [String: RowCodes] = [:]

    /// Codes for every row of `after`, a write's snapshot built on the published `before`. Cached codes are kept only
    /// for rows below `before.rowCount` in the same storage: those rows never change, while rows above it may be
    /// rewritten (a write that rolled back appended rows that the next write overwrites). A new storage (the space
    /// was compacted, reloaded or mapped) is coded afresh.
    func codes(for after: SpaceIndex, before: SpaceIndex) -> RowCodes {
        lock.lock()
        defer { lock.unlock() }
        let codes: RowCodes
        if let cached = bySpace[after.space.name], cached.storage === after.storage {
            codes = cached
            // A write asks once for its old and once for its new vectors: the second time nothing changed.
            if cached.codedFor !== after { codes.truncate(to: before.storage === after.storage ? before.rowCount : 0) }
        } else {
            codes = RowCodes(storage: after.storage)
            bySpace[after.space.name] = codes
        }
        codes.extend(to: after.rowCount)
        codes.codedFor = after
        return codes
    }
}
