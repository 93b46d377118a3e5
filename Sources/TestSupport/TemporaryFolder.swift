import Foundation

/// A fresh empty folder under the system's temporary directory, named `{tag}-test-{UUID}`: one per test that needs
/// files, so parallel tests never share one.
public func temporaryFolder(_ tag: String = "postersim") throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("\(tag)-test-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}
