import PosterSimCore
import TestSupport
import CVectorScan
import Foundation
import TensorFiles
import Testing

@testable import Store

/// Store results against brute-force NumPy (float64) goldens from tools/reference/make_store_fixtures.py.
@Suite struct ReferenceTests {
    static let fixture: URL = {
        var url = URL(fileURLWithPath: #filePath)
        while url.lastPathComponent != "Tests" { url.deleteLastPathComponent() }
        return url.appendingPathComponent("Fixtures/store/store_reference.npz")
    }()

    struct Reference {
        let npz: NPZArchive
        let ids: [Int]
        let movies: [Movie]
        let filters: [SearchFilter]
        let k: Int

        init() throws {
            let npz = try NPZArchive(contentsOf: ReferenceTests.fixture)
            self.npz = npz
            let ids = try npz.array("ids").int64s().map { Int($0) }
            self.ids = ids
            let year = try npz.array("year").int64s()
            let genres = try npz.array("genres").int64s()
            let lang = try npz.array("lang").int64s()
            let adult = try npz.array("adult").uint8s()
            let votes = try npz.array("votes").int64s()
            let langCodes = try npz.array("langs").uint8s()
            let langs = stride(from: 0, to: langCodes.count, by: 2).map {
                String(decoding: langCodes[$0..<$0 + 2], as: UTF8.self)
            }
            let genresPerMovie = genres.count / ids.count
            movies = ids.indices.map { i in
                Movie(
                    id: ids[i], title: "m\(ids[i])", releaseDate: year[i] < 0 ? "" : "\(year[i])-01-31",
                    genreIDs: genres[(i * genresPerMovie)..<((i + 1) * genresPerMovie)].filter { $0 >= 0 }.map { Int($0) },
                    originalLanguage: langs[Int(lang[i])], voteCount: Int(votes[i]), adult: adult[i] != 0)
            }
            let f = try npz.array("filters").int64s().map { Int($0) }
            filters = stride(from: 0, to: f.count, by: 6).map { o in
                func opt(_ v: Int) -> Int? { v < 0 ? nil : v }
                return SearchFilter(
                    minYear: opt(f[o]), maxYear: opt(f[o + 1]), genreID: opt(f[o + 2]),
                    originalLanguage: opt(f[o + 3]).map { langs[$0] }, adult: opt(f[o + 4]).map { $0 != 0 },
                    minVoteCount: opt(f[o + 5]))
            }
            k = Int(try npz.array("k").int64s()[0])
        }
    }

    static func close(_ a: Float, _ b: Double) -> Bool {
        abs(Double(a) - b) <= 2e-5 * max(1, abs(b))
    }

    @Test(arguments: DistanceMetric.allCases)
    func matchesNumPy(metric: DistanceMetric) async throws {
        let ref = try Reference()
        let vectorsT = try ref.npz.array("\(metric.rawValue)_vectors")
        let dim = vectorsT.shape[1]
        let vectors = vectorsT.floats()
        let queries = try ref.npz.array("\(metric.rawValue)_queries").floats()
        let expIDs = try ref.npz.array("\(metric.rawValue)_expected_ids").int64s()
        let expScores = try ref.npz.array("\(metric.rawValue)_expected_scores").doubles()
        let byMovies = try ref.npz.array("\(metric.rawValue)_byid_movies").int64s()
        let byIDs = try ref.npz.array("\(metric.rawValue)_byid_ids").int64s()
        let byScores = try ref.npz.array("\(metric.rawValue)_byid_scores").doubles()

        let store = try SQLiteVectorStore(path: try TempStore.newPath())
        let space = VectorSpace(name: "ref", dimension: dim, metric: metric)
        let identity = ModelIdentity(repo: "reference/numpy", weightsSHA256: "00")
        try await store.registerSpace(space, identity: identity)
        try await store.upsertMovies(ref.movies)
        try await store.upsertEmbeddings(
            ref.ids.indices.map { EmbeddingInput(movieID: ref.ids[$0], vector: Array(vectors[($0 * dim)..<(($0 + 1) * dim)])) },
            space: "ref", identity: identity)

        let k = ref.k
        func check(_ got: [SearchMatch], ids: ArraySlice<Int64>, scores: ArraySlice<Double>, _ what: String) {
            let want = ids.filter { $0 >= 0 }.map { Int($0) }
            #expect(got.map(\.movieID) == want, "\(what)")
            for (m, s) in zip(got, scores) {
                #expect(Self.close(m.score, s), "\(what): movie \(m.movieID) score \(m.score) vs \(s)")
            }
        }
        let nq = queries.count / dim
        for q in 0..<nq {
            let query = Array(queries[(q * dim)..<((q + 1) * dim)])
            for (fi, filter) in ref.filters.enumerated() {
                let got = try await store.query(space: "ref", vector: query, k: k, filter: filter)
                let o = (q * ref.filters.count + fi) * k
                check(got, ids: expIDs[o..<(o + k)], scores: expScores[o..<(o + k)], "query \(q) filter \(fi)")
            }
        }
        for (bi, movie) in byMovies.enumerated() {
            for (fi, filter) in ref.filters.enumerated() {
                for exclude in [false, true] {
                    let got = try await store.query(
                        space: "ref", movieID: Int(movie), k: k, filter: filter, excludeSelf: exclude)
                    let o = ((bi * ref.filters.count + fi) * 2 + (exclude ? 1 : 0)) * k
                    check(got, ids: byIDs[o..<(o + k)], scores: byScores[o..<(o + k)],
                          "by id \(movie) filter \(fi) excludeSelf \(exclude)")
                }
            }
        }
    }

    /// The reference semantics of `SearchFilter.accepts` agree with the packed filter the index evaluates.
    @Test func packedFiltersAgreeWithReferenceSemantics() throws {
        let ref = try Reference()
        var interner = MetaInterner()
        let packed = ref.movies.map { interner.pack(MovieFilterFields($0)) }
        for filter in ref.filters + [SearchFilter(genreID: 10751), SearchFilter(originalLanguage: "de")] {
            let compiled = interner.compile(filter)
            for (i, m) in ref.movies.enumerated() {
                #expect(compiled.accepts(packed[i], id: Int64(m.id)) == filter.accepts(m))
            }
        }
    }
}

/// The scan kernels and the threaded top-k.
@Suite struct KernelTests {
    static let isas: [vs_isa] = [VS_ISA_SCALAR, VS_ISA_AVX2_FMA, VS_ISA_AVX512F].filter { vs_isa_supported($0) != 0 }

    @Test func kernelsMatchDoublePrecision() {
        var gen = SplitMix64(seed: 11)
        for dim in [1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, 48, 67, 100, 512, 515] {
            let rows = 9  // two groups of four plus a single row
            let m = (0..<(rows * dim)).map { _ in gen.nextFloat() }
            let q = (0..<dim).map { _ in gen.nextFloat() }
            for isa in Self.isas {
                var dot = [Float](repeating: 0, count: rows)
                var l2 = [Float](repeating: 0, count: rows)
                vs_dot_rows_isa(isa, m, rows, dim, q, &dot)
                vs_l2sq_rows_isa(isa, m, rows, dim, q, &l2)
                for r in 0..<rows {
                    var d = 0.0, e = 0.0
                    for i in 0..<dim {
                        d += Double(m[r * dim + i]) * Double(q[i])
                        e += (Double(m[r * dim + i]) - Double(q[i])) * (Double(m[r * dim + i]) - Double(q[i]))
                    }
                    #expect(abs(Double(dot[r]) - d) <= 1e-5 * Double(dim), "isa \(isa.rawValue) dim \(dim) row \(r)")
                    #expect(abs(Double(l2[r]) - e) <= 1e-5 * max(1, e), "isa \(isa.rawValue) dim \(dim) row \(r)")
                }
            }
        }
    }

    /// A row gives bit-identical results alone or inside a group of four (exact ties stay exact).
    @Test func sameRowSameBitsAnywhere() {
        var gen = SplitMix64(seed: 5)
        let dim = 37
        let row = (0..<dim).map { _ in gen.nextFloat() }
        let q = (0..<dim).map { _ in gen.nextFloat() }
        let m = Array([[Float]](repeating: row, count: 7).joined())
        for isa in Self.isas {
            var out = [Float](repeating: 0, count: 7)
            vs_dot_rows_isa(isa, m, 7, dim, q, &out)
            #expect(Set(out.map(\.bitPattern)).count == 1)
            vs_l2sq_rows_isa(isa, m, 7, dim, q, &out)
            #expect(Set(out.map(\.bitPattern)).count == 1)
        }
    }

    /// Matrix memory is 64-byte aligned, and 2 MiB aligned (huge-page sized) from 2 MiB up; all of it is usable.
    @Test func matrixMemoryAlignment() {
        for bytes in [4, 1000, 2 << 20, (2 << 20) + 4, 5 << 20] {
            guard let p = vs_matrix_alloc(bytes) else {
                Issue.record("no memory for \(bytes) bytes")
                continue
            }
            let align = bytes >= 2 << 20 ? 2 << 20 : 64
            #expect(Int(bitPattern: p) % align == 0, "\(bytes) bytes")
            p.initializeMemory(as: UInt8.self, repeating: 7, count: bytes)
            vs_matrix_free(p)
        }
    }

    /// Scoring only a selective filter's rows (`rowList`) gives what scanning every row and filtering gives, ties
    /// by id included.
    @Test(arguments: DistanceMetric.allCases)
    func rowListEqualsFilteredScan(metric: DistanceMetric) {
        var gen = SplitMix64(seed: 4)
        let rows = 2000, dim = 515
        var m = (0..<(rows * dim)).map { _ in gen.nextFloat() }
        for r in stride(from: 3, to: 400, by: 17) { for i in 0..<dim { m[(rows - 1 - r) * dim + i] = m[r * dim + i] } }
        let ids = (0..<rows).map { Int64(($0 * 7919) % 100_003) + 1 }
        let inv = (0..<rows).map { r in
            1 / (0..<dim).reduce(Float(0)) { $0 + m[r * dim + $1] * m[r * dim + $1] }.squareRoot()
        }
        let q = Array(m[(20 * dim)..<(21 * dim)])
        for modulus in [17, 5] {
            let accept: @Sendable (Int) -> Bool = { $0 % modulus == 3 || $0 % modulus == (rows - 1 - 3) % modulus }
            let list = (0..<rows).filter(accept)
            for k in [10, list.count + 5] {
                let scanned = ExactSearch.topK(
                    matrix: m, rows: rows, dimension: dim, metric: metric, inverseNorms: inv, ids: ids, query: q, k: k,
                    maxThreads: 2, accept: accept)
                let listed = ExactSearch.topK(
                    matrix: m, rows: rows, dimension: dim, metric: metric, inverseNorms: inv, ids: ids, query: q, k: k,
                    rowList: list)
                #expect(listed == scanned, "modulus \(modulus) k \(k)")
            }
        }
    }

    @Test(arguments: DistanceMetric.allCases)
    func threadedTopKEqualsSingleThreaded(metric: DistanceMetric) {
        var gen = SplitMix64(seed: 3)
        let rows = 3000, dim = 200  // 600k elements: two threads
        var m = (0..<(rows * dim)).map { _ in gen.nextFloat() }
        // Exact duplicates across the two halves, so the merge must order ties by id.
        for r in 0..<50 { for i in 0..<dim { m[(rows - 1 - r) * dim + i] = m[r * dim + i] } }
        let ids = (0..<rows).map { Int64(($0 * 7919) % 100_003) }.map { $0 == 0 ? 1 : $0 }
        let inv = (0..<rows).map { r in
            1 / (0..<dim).reduce(Float(0)) { $0 + m[r * dim + $1] * m[r * dim + $1] }.squareRoot()
        }
        let q = Array(m[(5 * dim)..<(6 * dim)])
        let accept: @Sendable (Int) -> Bool = { $0 % 3 != 1 }
        for filter in [nil, accept] {
            let one = ExactSearch.topK(
                matrix: m, rows: rows, dimension: dim, metric: metric, inverseNorms: inv, ids: ids, query: q, k: 25,
                maxThreads: 1, accept: filter)
            let two = ExactSearch.topK(
                matrix: m, rows: rows, dimension: dim, metric: metric, inverseNorms: inv, ids: ids, query: q, k: 25,
                maxThreads: 2, accept: filter)
            #expect(one == two)
            #expect(one.count == 25)
            // Brute force on the same scores.
            #expect(one.first?.movieID == Int(min(ids[5], ids[rows - 6])))
        }
    }
}
