import Foundation
import PosterSimCore
import Testing

/// The stored form of a model identity (`repo@sha256:HEX[;precision=NAME]`), which the stores compare to tell
/// current vectors from stale ones.
@Suite("Model identity") struct ModelIdentityTests {
    static let hex = String(repeating: "0123456789abcdef", count: 4)

    /// fp32 keeps the form stored before precisions existed, so existing stores do not go stale.
    @Test func fp32KeepsTheOldStoredForm() throws {
        let identity = ModelIdentity(repo: "openai/clip-vit-base-patch32", weightsSHA256: Self.hex.uppercased())
        #expect(identity.precision == .fp32)
        #expect(identity.storedForm == "openai/clip-vit-base-patch32@sha256:\(Self.hex)")
        let parsed = try #require(ModelIdentity(storedForm: "openai/clip-vit-base-patch32@sha256:\(Self.hex)"))
        #expect(parsed == identity && parsed.precision == .fp32)
    }

    /// Every precision survives a round trip, and differs from the same checkpoint at another precision.
    @Test(arguments: Precision.allCases) func roundTrip(_ precision: Precision) throws {
        let identity = ModelIdentity(repo: "microsoft/resnet-50", weightsSHA256: Self.hex, precision: precision)
        #expect(ModelIdentity(storedForm: identity.storedForm) == identity)
        for other in Precision.allCases where other != precision { #expect(identity != identity.at(other)) }
        #expect(identity.at(.fp32).storedForm == "microsoft/resnet-50@sha256:\(Self.hex)")
    }

    @Test func bf16StoredForm() {
        let identity = ModelIdentity(repo: "timm/vgg16.tv_in1k", weightsSHA256: Self.hex, precision: .bf16)
        #expect(identity.storedForm == "timm/vgg16.tv_in1k@sha256:\(Self.hex);precision=bf16")
        #expect(identity.at(.int8).storedForm == "timm/vgg16.tv_in1k@sha256:\(Self.hex);precision=int8")
    }

    /// Unknown precisions and a spelled-out fp32 (which has one form only, without suffix) do not parse.
    @Test(arguments: [";precision=int4", ";precision=", ";precision=fp32", ";precision=BF16"])
    func badSuffixesDoNotParse(_ suffix: String) {
        #expect(ModelIdentity(storedForm: "r@sha256:\(Self.hex)\(suffix)") == nil)
        #expect(ModelIdentity(storedForm: "r@sha256:\(suffix)") == nil)
    }

    /// JSON written before precisions existed decodes as fp32, and fp32 encodes exactly as before.
    @Test func json() throws {
        let old = Data(#"{"repo":"r","weightsSHA256":"ab"}"#.utf8)
        let decoded = try JSONDecoder().decode(ModelIdentity.self, from: old)
        #expect(decoded == ModelIdentity(repo: "r", weightsSHA256: "ab"))
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        #expect(String(decoding: try encoder.encode(decoded), as: UTF8.self) == #"{"repo":"r","weightsSHA256":"ab"}"#)
        let bf16 = decoded.at(.bf16)
        #expect(try JSONDecoder().decode(ModelIdentity.self, from: encoder.encode(bf16)) == bf16)
    }
}
