import Foundation
import NIOSSL
import PostgresNIO

/// The TLS settings of a store's connections, made once from `PostgresStoreConfiguration.tls` for both kinds of
/// connection postgres-nio has (the pool's and a single one's).
struct TransportSecurity: Sendable {
    let client: PostgresClient.Configuration.TLS
    let connection: PostgresConnection.Configuration.TLS
}

extension PostgresStoreConfiguration {
    /// libpq's `sslmode` in postgres-nio's terms. `prefer` and `require` encrypt without checking the certificate
    /// (as libpq does: they guard against eavesdropping, not impersonation), unless `require` is given a root
    /// certificate, which makes it `verify-ca`. Throws `invalidURL` for an unreadable `sslrootcert`.
    func transportSecurity() throws -> TransportSecurity {
        var mode = tls
        if mode == .require, rootCertificatePath != nil { mode = .verifyCA }
        var config = TLSConfiguration.makeClientConfiguration()
        switch mode {
        case .disable: return TransportSecurity(client: .disable, connection: .disable)
        case .prefer, .require: config.certificateVerification = .none
        case .verifyCA: config.certificateVerification = .noHostnameVerification
        case .verifyFull: config.certificateVerification = .fullVerification
        }
        if let path = rootCertificatePath, mode == .verifyCA || mode == .verifyFull {
            guard FileManager.default.isReadableFile(atPath: path) else {
                throw PostgresStoreError.invalidURL("sslrootcert '\(path)' cannot be read")
            }
            config.trustRoots = .file(path)
        }
        let context: NIOSSLContext
        do {
            context = try NIOSSLContext(configuration: config)
        } catch {
            throw PostgresStoreError.invalidURL("TLS settings rejected: \(error)")
        }
        return mode == .prefer
            ? TransportSecurity(client: .prefer(config), connection: .prefer(context))
            : TransportSecurity(client: .require(config), connection: .require(context))
    }
}
