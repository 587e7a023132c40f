public import ArgumentParser
import Jobwire

extension JobStatus: ExpressibleByArgument {}
extension JobMode: ExpressibleByArgument {}
extension JobTrigger: ExpressibleByArgument {}

/// `jobwire jobs …`: every `jobs.*` command of the broker, one subcommand each.
struct JobsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jobs",
        abstract: "Create, read and move jobs through their life (the broker's jobs.* commands).",
        subcommands: [
            Create.self, Get.self, List.self, Execute.self, Ack.self, Update.self, Complete.self, Fail.self,
            Release.self, Cancel.self, Retry.self, AckOutcome.self, Split.self, Delete.self,
        ])

    /// `--json` and the connection options, shared by every jobs subcommand.
    struct Common: ParsableArguments {
        @OptionGroup var client: ClientOptions

        @Flag(help: "Print the broker's reply as one JSON object, for scripts.")
        var json = false

        /// Prints a job as JSON or as one readable line.
        func show(_ job: Job, detailed: Bool = false) {
            if json {
                CLI.printJSON(.object(job.json))
            } else if detailed {
                CLI.emit(JobText.details(job))
            } else {
                CLI.emit(JobText.summary(job))
            }
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a job (jobs.create).",
            discussion: "Example: jobwire jobs create workbook:export --source us_wb_1 --input '{\"format\":\"xlsx\"}'")

        @OptionGroup var common: Common

        @Argument(help: "The job name, type:operation (split at the first ':'), e.g. workbook:export.")
        var name: String

        @Option(help: "The resource the job works on (required).")
        var source: String

        @Option(help: "The resource the job writes to.")
        var destination: String?

        @Option(help: "manual (waits for `jobs execute`) or immediate.")
        var trigger: JobTrigger?

        @Option(help: "foreground, background, toolbarBlocking or hidden.")
        var mode: JobMode?

        @Option(help: ArgumentHelp("The job's input, a JSON value.", valueName: "json"))
        var input: String?

        @Option(help: ArgumentHelp("The job's config, a JSON value.", valueName: "json"))
        var config: String?

        @Option(help: ArgumentHelp("The job's subject, a JSON value.", valueName: "json"))
        var subject: String?

        @Option(help: ArgumentHelp("The job's metadata, a JSON value.", valueName: "json"))
        var metadata: String?

        @Option(
            help: ArgumentHelp(
                "Context ids for the job's events, a JSON object: {\"spaceId\":\"us_sp_1\",\"workbookId\":\"us_wb_1\"}.",
                valueName: "json"))
        var context: String?

        @Option(help: "A line of text about the job.")
        var info: String?

        @Option(name: .customLong("predecessor"), help: "A job id that must complete first (repeatable).")
        var predecessors: [String] = []

        @Option(name: .customLong("run-at"), help: "Not ready before this time: ISO 8601, or +SECONDS from now.")
        var runAt: String?

        @Option(name: .customLong("lease-seconds"), help: "This job's lease, in seconds.")
        var leaseSeconds: Int?

        @Option(
            name: .customLong("max-attempts"),
            help: "How many attempts (lost leases, timeouts, retryable failures) fail this job.")
        var maxAttempts: Int?

        // Unconditional: a negative priority is a value, not an option.
        @Option(parsing: .unconditional, help: "From -100 to 100 (default 0): claims take the highest first.")
        var priority: Int?

        @Option(
            help: ArgumentHelp(
                "The delay before each next attempt: exponential or fixed, then optionally :DELAY (default 1) and :MAX (default 3600) seconds, e.g. exponential:2:600.",
                valueName: "type[:delay[:max]]"))
        var backoff: String?

        // Not `--timeout`: every command's client options use that name for the wait for a reply.
        @Option(
            name: .customLong("attempt-timeout"),
            help: ArgumentHelp("How long one attempt may execute, in seconds (timeoutSeconds).", valueName: "seconds"))
        var attemptTimeout: Int?

        @Option(name: .customLong("idempotency-key"), help: "The same key returns the same job and creates nothing.")
        var idempotencyKey: String?

        func run() async throws {
            let (type, operation) = try CLI.jobName(name)
            let request = JobCreateRequest(
                type: type, operation: operation, source: source, destination: destination, trigger: trigger,
                mode: mode,
                input: try CLI.json(input, option: "--input"), config: try CLI.json(config, option: "--config"),
                subject: try CLI.json(subject, option: "--subject"),
                metadata: try CLI.json(metadata, option: "--metadata"), info: info,
                predecessorIds: predecessors.isEmpty ? nil : predecessors,
                runAt: try CLI.timestamp(runAt, option: "--run-at"), leaseSeconds: leaseSeconds,
                maxAttempts: maxAttempts, priority: priority, backoff: try CLI.backoff(backoff),
                timeoutSeconds: attemptTimeout, context: try CLI.jsonObject(context, option: "--context") ?? [:],
                idempotencyKey: idempotencyKey)
            let job = try await common.client.withClient { try await $0.create(request) }
            common.show(job)
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a job (jobs.get).")
        @OptionGroup var common: Common
        @Argument(help: "The job's id.") var id: String

        func run() async throws {
            let job = try await common.client.withClient { try await $0.get(jobId: id) }
            common.show(job, detailed: true)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List jobs (jobs.list), oldest first.",
            discussion: "Example: jobwire jobs list --status ready --type workbook")
        @OptionGroup var common: Common
        @Option(help: "Only jobs in this status.") var status: JobStatus?
        @Option(help: "Only jobs of this type (domain).") var type: String?
        @Option(help: "Only jobs with this operation.") var operation: String?
        @Option(help: "Only jobs on this source.") var source: String?
        @Option(name: .customLong("parent"), help: "Only the parts of this job.") var parentId: String?
        @Flag(name: .customLong("exclude-parts"), help: "Leave out the parts of split jobs.") var excludeParts = false
        @Option(help: "The page, from 1.") var page: Int?
        @Option(name: .customLong("page-size"), help: "Jobs per page (the broker's default is 20).") var pageSize: Int?
        @Option(parsing: .unconditional, help: "Only jobs of this priority.") var priority: Int?
        @Option(help: "createdAt (default) or priority (then createdAt).") var sort: String?
        @Flag(help: "Newest (or highest priority) first.") var desc = false
        @Flag(help: "Every page, not just one.") var all = false

        func run() async throws {
            var query = JobQuery(
                status: status, type: type, operation: operation, source: source, parentId: parentId,
                excludeChildJobs: excludeParts ? true : nil, pageSize: pageSize, pageNumber: page,
                sortDirection: desc ? "desc" : nil)
            query.priority = priority
            query.sortField = sort
            let (jobs, pagination): ([Job], JSONObject) = try await common.client.withClient { client in
                if all {
                    query.pageNumber = nil
                    let jobs = try await client.listAll(query)
                    return (jobs, ["currentPage": 1, "pageCount": 1, "totalCount": .int(Int64(jobs.count))])
                }
                let page = try await client.list(query)
                return (
                    page.data,
                    [
                        "currentPage": .int(Int64(page.currentPage)), "pageCount": .int(Int64(page.pageCount)),
                        "totalCount": .int(Int64(page.totalCount)),
                    ]
                )
            }
            if common.json {
                CLI.printJSON(["data": .array(jobs.map { .object($0.json) }), "pagination": .object(pagination)])
                return
            }
            for job in jobs { CLI.emit(JobText.summary(job)) }
            let total = pagination["totalCount"]?.intValue ?? 0
            if !all, let pages = pagination["pageCount"]?.intValue, pages > 1 {
                CLI.note("page \(pagination["currentPage"]?.intValue ?? 1) of \(pages), \(total) jobs (--page, --all)")
            } else if jobs.isEmpty {
                CLI.note("no jobs")
            }
        }
    }

    struct Execute: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Run a manual job (jobs.execute).")
        @OptionGroup var common: Common
        @Argument(help: "The job's id.") var id: String

        func run() async throws {
            common.show(try await common.client.withClient { try await $0.execute(jobId: id) })
        }
    }

    struct Ack: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Take a ready job, or renew the lease of one you hold (jobs.ack).")
        @OptionGroup var common: Common
        @Argument(help: "The job's id.") var id: String
        @Option(help: "The listenerId to act as (none: an operator; the lease goes to `anonymous`).")
        var listener: String?
        @Option(help: "Progress, 0 to 100.") var progress: Double?
        @Option(help: "A line of text about the job.") var info: String?
        @Option(help: "The estimated completion: ISO 8601, or +SECONDS from now.") var eta: String?

        func validate() throws { try validateProgress(progress) }

        func run() async throws {
            let eta = try CLI.timestamp(eta, option: "--eta")
            common.show(
                try await common.client.withClient(listenerId: listener) {
                    try await $0.ack(jobId: id, progress: progress, info: info, estimatedCompletionAt: eta)
                })
        }
    }

    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Change a job's progress, info, ETA or metadata, or move it to planning (jobs.update).")
        @OptionGroup var common: Common
        @Argument(help: "The job's id.") var id: String
        @Option(help: "The listenerId to act as (the lease owner), or none as an operator.") var listener: String?
        @Option(help: "Progress, 0 to 100 (only while executing).") var progress: Double?
        @Option(help: "A line of text about the job.") var info: String?
        @Option(help: "The estimated completion: ISO 8601, or +SECONDS from now.") var eta: String?
        @Option(help: ArgumentHelp("The job's metadata, a JSON value.", valueName: "json")) var metadata: String?
        @Flag(help: "Move a created job to planning.") var planning = false

        func validate() throws {
            try validateProgress(progress)
            if progress == nil && info == nil && eta == nil && metadata == nil && !planning {
                throw ValidationError("give at least one of --progress, --info, --eta, --metadata, --planning")
            }
        }

        func run() async throws {
            let eta = try CLI.timestamp(eta, option: "--eta")
            let metadata = try CLI.json(metadata, option: "--metadata")
            common.show(
                try await common.client.withClient(listenerId: listener) {
                    try await $0.update(
                        jobId: id, progress: progress, info: info, estimatedCompletionAt: eta, metadata: metadata,
                        status: planning ? .planning : nil)
                })
        }
    }

    /// The options of `complete` and `fail`: an outcome from JSON, or from its common fields.
    struct OutcomeOptions: ParsableArguments {
        @Option(
            help: ArgumentHelp(
                "The whole outcome, a JSON object: {\"message\":\"Done\",\"next\":{\"type\":\"url\",\"url\":\"…\"}}.",
                valueName: "json"))
        var outcome: String?
        @Option(help: "The outcome's message (with no --outcome).") var message: String?
        @Option(help: "The outcome's heading (with no --outcome).") var heading: String?
        @Flag(help: "The user must acknowledge the outcome (with no --outcome).") var acknowledge = false

        func validate() throws {
            if outcome != nil && (message != nil || heading != nil || acknowledge) {
                throw ValidationError(
                    "--outcome replaces --message, --heading and --acknowledge: give one or the other")
            }
        }

        func make() throws -> Outcome? {
            if let value = try CLI.json(outcome, option: "--outcome") {
                do {
                    return try Outcome(json: value, path: "--outcome")
                } catch {
                    throw UsageError(error.message)
                }
            }
            if message == nil && heading == nil && !acknowledge { return nil }
            return Outcome(message: message, heading: heading, acknowledge: acknowledge ? true : nil)
        }
    }

    /// What `complete` and `fail` take: the job, who acts, and the outcome.
    struct FinishOptions: ParsableArguments {
        @Argument(help: "The job's id.") var id: String
        @Option(help: "The listenerId to act as (the lease owner), or none as an operator.") var listener: String?
        @OptionGroup var outcome: OutcomeOptions
        @Option(help: "A line of text about the job.") var info: String?

        func finish(
            _ common: Common, _ verb: @escaping @Sendable (JobsClient, String, Outcome?, String?) async throws -> Job
        ) async throws {
            let outcome = try outcome.make()
            let (id, info) = (id, info)
            common.show(
                try await common.client.withClient(listenerId: listener) { try await verb($0, id, outcome, info) })
        }
    }

    struct Complete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "End an executing job as complete (jobs.complete).",
            discussion: "Example: jobwire jobs complete us_jb_x --message 'Exported 1,204 records'")
        @OptionGroup var common: Common
        @OptionGroup var options: FinishOptions

        func run() async throws {
            try await options.finish(common) { try await $0.complete(jobId: $1, outcome: $2, info: $3) }
        }
    }

    struct Fail: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "End an executing job as failed (jobs.fail).",
            discussion: "Example: jobwire jobs fail us_jb_x --message 'The sheet has no rows'")
        @OptionGroup var common: Common
        @OptionGroup var options: FinishOptions
        @Flag(help: "Below maxAttempts, run the job again after its backoff instead of failing it.")
        var retry = false

        func run() async throws {
            let retry = retry
            try await options.finish(common) { try await $0.fail(jobId: $1, outcome: $2, info: $3, retry: retry) }
        }
    }

    struct Release: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Give an executing job back unfinished: ready again, attempt + 1 (jobs.release).")
        @OptionGroup var common: Common
        @Argument(help: "The job's id.") var id: String
        @Option(help: "The listenerId to act as (the lease owner), or none as an operator.") var listener: String?
        @Option(help: "A line of text about the job.") var info: String?
        @Option(help: "Hold the job back this many seconds before it is ready again.") var delay: Int?

        func run() async throws {
            common.show(
                try await common.client.withClient(listenerId: listener) {
                    try await $0.release(jobId: id, info: info, delaySeconds: delay)
                })
        }
    }

    struct Cancel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Cancel a job that has not ended (jobs.cancel).")
        @OptionGroup var common: Common
        @Argument(help: "The job's id.") var id: String
        @Option(help: "A line of text about the job.") var info: String?

        func run() async throws {
            common.show(try await common.client.withClient { try await $0.cancel(jobId: id, info: info) })
        }
    }

    struct Retry: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Run a failed or canceled job again (jobs.retry).")
        @OptionGroup var common: Common
        @Argument(help: "The job's id.") var id: String

        func run() async throws {
            common.show(try await common.client.withClient { try await $0.retry(jobId: id) })
        }
    }

    struct AckOutcome: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "ack-outcome", abstract: "Record that the user saw a job's outcome (jobs.ackOutcome).")
        @OptionGroup var common: Common
        @Argument(help: "The job's id.") var id: String

        func run() async throws {
            common.show(try await common.client.withClient { try await $0.ackOutcome(jobId: id) })
        }
    }

    struct Split: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Split an executing job into parts (jobs.split).",
            discussion:
                "Example: jobwire jobs split us_jb_x --parts 4, or --part-data '[{\"sheet\":\"a\"},{\"sheet\":\"b\"}]'")
        @OptionGroup var common: Common
        @Argument(help: "The job's id.") var id: String
        @Option(help: "The listenerId to act as (the lease owner), or none as an operator.") var listener: String?
        @Option(help: "How many parts.") var parts: Int?
        @Option(
            name: .customLong("part-data"),
            help: ArgumentHelp("One part per element of this JSON array.", valueName: "json"))
        var partData: String?
        @Flag(help: "Run the parts one after another instead of in parallel.") var sequential = false

        func validate() throws {
            guard (parts == nil) != (partData == nil) else {
                throw ValidationError("give either --parts or --part-data")
            }
            if let parts, parts < 1 { throw ValidationError("--parts must be at least 1") }
        }

        func run() async throws {
            let data = try CLI.json(partData, option: "--part-data")
            if let data, data.arrayValue == nil { throw UsageError("--part-data must be a JSON array") }
            let jobs = try await common.client.withClient(listenerId: listener) { client in
                if let parts { return try await client.split(jobId: id, parts: parts, runInParallel: !sequential) }
                return try await client.split(jobId: id, partData: data?.arrayValue ?? [], runInParallel: !sequential)
            }
            if common.json {
                CLI.printJSON(["parts": .array(jobs.map { .object($0.json) })])
            } else {
                for job in jobs { CLI.emit(JobText.summary(job)) }
            }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a job that is not executing (jobs.delete).")
        @OptionGroup var common: Common
        @Argument(help: "The job's id.") var id: String

        func run() async throws {
            try await common.client.withClient { try await $0.delete(jobId: id) }
            if common.json { CLI.printJSON(["success": true]) } else { CLI.emit("deleted \(id)") }
        }
    }
}

private func validateProgress(_ progress: Double?) throws {
    if let progress, !(0...100).contains(progress) { throw ValidationError("--progress must be from 0 to 100") }
}
