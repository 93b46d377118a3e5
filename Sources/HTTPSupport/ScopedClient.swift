/// Runs `body` with `client`, then shuts the client down, also when `body` throws (`body`'s error is the one thrown).
/// Every HTTP client of ours owns connections that must be closed before it is dropped; this is the one place that
/// pairs the two.
public func withShutdown<Client, Result: Sendable>(
    _ client: Client, shutdown: (Client) async throws -> Void, _ body: (Client) async throws -> Result
) async throws -> Result {
    do {
        let result = try await body(client)
        try await shutdown(client)
        return result
    } catch {
        try? await shutdown(client)
        throw error
    }
}
