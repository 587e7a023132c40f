/// The limits and defaults of the broker's core: what its rules need of the broker's configuration.
package struct CoreConfiguration: Sendable {
    /// The default lease of an acked or claimed job, when the job names none.
    package var leaseSeconds: Int
    /// The default number of attempts before a lease expiry fails a job, when the job names none.
    package var maxAttempts: Int
    /// How many events the log keeps for replay; older `events.list` asks get `gone`.
    package var eventRetention: Int

    package init(leaseSeconds: Int = 30, maxAttempts: Int = 3, eventRetention: Int = 1_000_000) {
        self.leaseSeconds = leaseSeconds
        self.maxAttempts = maxAttempts
        self.eventRetention = eventRetention
    }
}
