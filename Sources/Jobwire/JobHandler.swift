/// What a `jobHandler` returns to complete its job (Flatfile's `JobCompleteDetails`).
public struct JobCompletion: Sendable {
    /// The outcome; `Job complete` when nil.
    public var outcome: Outcome?
    /// The job's last `info`.
    public var info: String?

    public init(outcome: Outcome? = nil, info: String? = nil) {
        self.outcome = outcome
        self.info = info
    }
}

/// Reports a running job's progress (Flatfile's `tick(progress, info)`); every tick also renews the lease.
public struct Tick: Sendable {
    let report: @Sendable (Double, String?, Timestamp?) async throws -> Void

    /// Sets the job's progress (0 to 100) and, when given, its info and estimated completion time.
    public func callAsFunction(_ progress: Double, _ info: String? = nil, estimatedCompletionAt: Timestamp? = nil)
        async throws
    {
        try await report(progress, info, estimatedCompletionAt)
    }
}

/// The body of a `jobHandler`.
public typealias JobHandlerBody = @Sendable (ListenerEvent, Tick) async throws -> JobCompletion?

/// A `jobHandler` as registered.
struct JobHandlerSpec: Sendable {
    enum Selector: Sendable {
        case job(String)
        case filter(JSONObject)
    }

    var selector: Selector
    var concurrency: Int
    var body: JobHandlerBody
}

/// Runs jobs named `job` (a glob: `sheet:validate`, `sheet:*`) one listener at a time, as Flatfile's
/// `@flatfile/plugin-job-handler` does.
///
/// The listener takes each job with `jobs.claim` (the broker hands it to exactly one waiting listener),
/// renews its lease while `body` runs, completes it with what `body` returns (`Job complete` by default)
/// or fails it with `{acknowledge: true, message: <the error>}` when `body` throws. An error marked
/// ``RetryableError`` (``Retryable`` marks any) fails the attempt with `retry: true`: the job runs again
/// after its backoff until its `maxAttempts`. When the job is canceled, or its attempt outlives the job's
/// `timeoutSeconds`, `body`'s task is cancelled. On shutdown, jobs still running at the deadline are
/// released.
/// - Parameters:
///   - job: the job-name glob.
///   - concurrency: how many of these jobs this listener runs at once.
///   - body: the work; `tick(progress, info)` reports progress.
public func jobHandler(_ job: String, concurrency: Int = 1, _ body: @escaping JobHandlerBody) -> ListenerComponent {
    ListenerComponent(
        kind: .jobHandler(JobHandlerSpec(selector: .job(job), concurrency: max(1, concurrency), body: body)))
}

/// A `jobHandler` whose body returns nothing: the job completes with `Job complete`.
public func jobHandler(
    _ job: String, concurrency: Int = 1, _ body: @escaping @Sendable (ListenerEvent, Tick) async throws -> Void
) -> ListenerComponent {
    jobHandler(job, concurrency: concurrency) { event, tick -> JobCompletion? in
        try await body(event, tick)
        return nil
    }
}

/// A `jobHandler` for the jobs whose `job:ready` event matches a Flatfile filter object.
///
/// A filter of only `job` (`["job": "sheet:*"]`) claims with `jobs.claim`; any other filter takes jobs
/// from their `job:ready` events with `jobs.ack` (a `conflict` means another listener has the job, and
/// the event is skipped quietly).
public func jobHandler(filter: JSONObject, concurrency: Int = 1, _ body: @escaping JobHandlerBody)
    -> ListenerComponent
{
    ListenerComponent(
        kind: .jobHandler(JobHandlerSpec(selector: .filter(filter), concurrency: max(1, concurrency), body: body)))
}

/// An error that fails a `jobHandler`'s attempt with `retry: true`: the broker runs the job again after its
/// `backoff`, until its `maxAttempts`. Conform an error type to it, or wrap any error in ``Retryable``.
public protocol RetryableError: Error {}

/// Marks an error, or a message, as retryable: `throw Retryable("downstream answered 503")`.
public struct Retryable: RetryableError, CustomStringConvertible {
    /// The error that made the attempt fail, when one is wrapped.
    public var underlying: (any Error)?
    /// What the job's outcome and info say.
    public var message: String

    /// Marks `error` as retryable; the job's outcome says what `error` says.
    public init(_ error: any Error) {
        underlying = error
        message = String(describing: error)
    }

    /// A retryable failure that says `message`.
    public init(_ message: String) {
        underlying = nil
        self.message = message
    }

    public var description: String { message }
}
