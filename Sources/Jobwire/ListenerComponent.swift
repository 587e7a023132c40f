/// What an `on` handler runs for each matching event.
public typealias EventHandler = @Sendable (ListenerEvent) async throws -> Void

/// A plugin: a function of the listener that registers handlers on it (Flatfile's `listener.use(fn)`).
public typealias ListenerPlugin = (ListenerRoutes) -> Void

/// One piece of a listener: a handler, a `filter`/`namespace` group, a plugin's handlers or a `jobHandler`.
public struct ListenerComponent: Sendable {
    enum Kind: Sendable {
        case handler(topics: [String], job: String?, filter: EventFilter, run: EventHandler)
        case group(filter: EventFilter, children: [ListenerComponent])
        case jobHandler(JobHandlerSpec)
    }

    let kind: Kind
}

/// Builds a listener's components from a block of `on`, `filter`, `namespace`, `use` and `jobHandler`,
/// with `if`, `if let`, `switch` and `for`.
@resultBuilder
public enum ListenerBuilder {
    public static func buildExpression(_ component: ListenerComponent) -> [ListenerComponent] { [component] }
    public static func buildExpression(_ components: [ListenerComponent]) -> [ListenerComponent] { components }
    public static func buildBlock(_ parts: [ListenerComponent]...) -> [ListenerComponent] { parts.flatMap { $0 } }
    public static func buildOptional(_ part: [ListenerComponent]?) -> [ListenerComponent] { part ?? [] }
    public static func buildEither(first part: [ListenerComponent]) -> [ListenerComponent] { part }
    public static func buildEither(second part: [ListenerComponent]) -> [ListenerComponent] { part }
    public static func buildArray(_ parts: [[ListenerComponent]]) -> [ListenerComponent] { parts.flatMap { $0 } }
    public static func buildLimitedAvailability(_ part: [ListenerComponent]) -> [ListenerComponent] { part }
}

/// Runs `handler` for every event whose topic matches `topic` (a Flatfile glob: `job:ready`, `job:*`,
/// `*:ready`, `**`).
/// - Parameters:
///   - topic: the topic glob.
///   - job: a glob over the job name (`workbook:export`, `workbook:*`); it narrows the subscription.
///   - filter: a Flatfile filter object (`["job": "sheet:*", "isPart": false]`), ANDed with `job`.
///   - handler: runs once per event, after the handlers registered before it.
public func on(
    _ topic: String, job: String? = nil, filter: JSONObject? = nil, _ handler: @escaping EventHandler
) -> ListenerComponent {
    on([topic], job: job, filter: filter, handler)
}

/// Runs `handler` for every event whose topic matches any of `topics`; see ``on(_:job:filter:_:)-(String,_,_,_)``.
public func on(
    _ topics: [String], job: String? = nil, filter: JSONObject? = nil, _ handler: @escaping EventHandler
) -> ListenerComponent {
    ListenerComponent(kind: .handler(topics: topics, job: job, filter: EventFilter(filter ?? [:]), run: handler))
}

/// A group whose filter is ANDed with its children's (Flatfile's `listener.filter(obj, cb)`).
public func filter(_ filter: JSONObject, @ListenerBuilder _ content: () -> [ListenerComponent]) -> ListenerComponent {
    ListenerComponent(kind: .group(filter: EventFilter(filter), children: content()))
}

/// A group for events of one namespace or more: `filter(["namespaces": …])`, as Flatfile's `namespace`.
public func namespace(_ namespace: String, @ListenerBuilder _ content: () -> [ListenerComponent])
    -> ListenerComponent
{
    filter(["namespaces": .string(namespace)], content)
}

/// A group for events of any of several namespaces.
public func namespace(_ namespaces: [String], @ListenerBuilder _ content: () -> [ListenerComponent])
    -> ListenerComponent
{
    let value: JSONValue = namespaces.count == 1 ? .string(namespaces[0]) : .array(namespaces.map(JSONValue.string))
    return filter(["namespaces": value], content)
}

/// Adds a plugin's handlers at this place (Flatfile's `listener.use(plugin)`).
public func use(_ plugin: ListenerPlugin) -> ListenerComponent {
    let routes = ListenerRoutes()
    plugin(routes)
    return ListenerComponent(kind: .group(filter: .all, children: routes.components))
}

/// Adds a component made elsewhere, e.g. `use(jobHandler("sheet:validate") { … })`.
public func use(_ component: ListenerComponent) -> ListenerComponent { component }

/// Adds the components of a block, e.g. a plugin written as `@ListenerBuilder func plugin() -> […]`.
public func use(@ListenerBuilder _ content: () -> [ListenerComponent]) -> ListenerComponent {
    ListenerComponent(kind: .group(filter: .all, children: content()))
}

/// The listener as a plugin sees it: Flatfile's fluent registration API.
/// ```swift
/// func auditPlugin(_ listener: ListenerRoutes) {
///     listener.on("job:*") { event in … }
/// }
/// ```
public final class ListenerRoutes {
    /// What was registered, in order.
    public private(set) var components: [ListenerComponent] = []

    public init() {}

    /// Registers a handler; see ``on(_:job:filter:_:)-(String,_,_,_)``.
    @discardableResult
    public func on(
        _ topic: String, job: String? = nil, filter: JSONObject? = nil, _ handler: @escaping EventHandler
    ) -> ListenerRoutes {
        add(Jobwire.on([topic], job: job, filter: filter, handler))
    }

    /// Registers a handler for several topics.
    @discardableResult
    public func on(
        _ topics: [String], job: String? = nil, filter: JSONObject? = nil, _ handler: @escaping EventHandler
    ) -> ListenerRoutes {
        add(Jobwire.on(topics, job: job, filter: filter, handler))
    }

    /// A filtered group; `body` registers its children.
    @discardableResult
    public func filter(_ filter: JSONObject, _ body: (ListenerRoutes) -> Void) -> ListenerRoutes {
        let child = ListenerRoutes()
        body(child)
        return add(ListenerComponent(kind: .group(filter: EventFilter(filter), children: child.components)))
    }

    /// A namespace group; `body` registers its children.
    @discardableResult
    public func namespace(_ namespace: String, _ body: (ListenerRoutes) -> Void) -> ListenerRoutes {
        filter(["namespaces": .string(namespace)], body)
    }

    /// Runs another plugin here.
    @discardableResult
    public func use(_ plugin: ListenerPlugin) -> ListenerRoutes {
        plugin(self)
        return self
    }

    /// Adds any component, e.g. a `jobHandler`.
    @discardableResult
    public func add(_ component: ListenerComponent) -> ListenerRoutes {
        components.append(component)
        return self
    }
}

/// A handler and what it matches, with every enclosing group's filter ANDed in.
struct Route: Sendable {
    var topics: [String]
    var topicGlobs: GlobSet
    var job: Glob?
    var jobPattern: String?
    var filter: EventFilter
    var run: EventHandler
    /// How many events this route runs at once, when it is bounded.
    var limit: HandlerLimit? = nil

    func matches(_ event: Event) -> Bool {
        guard topicGlobs.matches(event.topic) else { return false }
        if let job, !job.matches(event.subject) { return false }
        return filter.matches(event)
    }

    var prefixes: [String] { Subscription.prefixes(topics: topics, jobName: jobPattern) }
}

/// A `jobHandler` and the filter of its enclosing groups.
struct Worker: Sendable {
    var spec: JobHandlerSpec
    var groupFilter: EventFilter

    /// Job-name globs for `jobs.claim`, or nil when the filter needs more than the job name: then the
    /// worker takes its jobs from `job:ready` events with `jobs.ack`, as Flatfile's plugin does.
    var claimGlobs: [String]? {
        guard groupFilter.isEmpty else { return nil }
        switch spec.selector {
        case .job(let name): return [name]
        case .filter(let object):
            guard object.count == 1, let value = object["job"] else { return nil }
            if let name = value.stringValue { return [name] }
            if let names = value.arrayValue?.compactMap(\.stringValue), names.count == value.arrayValue?.count {
                return names
            }
            return nil
        }
    }

    /// The filter an event-driven worker matches `job:ready` events with.
    var eventFilter: EventFilter {
        switch spec.selector {
        case .job(let name): groupFilter.combined(with: EventFilter(["job": .string(name)]))
        case .filter(let object): groupFilter.combined(with: EventFilter(object))
        }
    }
}

/// Flattens components into routes and workers, in the order they are written.
func flatten(_ components: [ListenerComponent], filter: EventFilter = .all) -> (routes: [Route], workers: [Worker]) {
    var routes: [Route] = []
    var workers: [Worker] = []
    for component in components {
        switch component.kind {
        case .handler(let topics, let job, let own, let run):
            routes.append(
                Route(
                    topics: topics, topicGlobs: GlobSet(topics), job: job.map { Glob($0) }, jobPattern: job,
                    filter: filter.combined(with: own), run: run))
        case .group(let own, let children):
            let nested = flatten(children, filter: filter.combined(with: own))
            routes += nested.routes
            workers += nested.workers
        case .jobHandler(let spec):
            workers.append(Worker(spec: spec, groupFilter: filter))
        }
    }
    return (routes, workers)
}
