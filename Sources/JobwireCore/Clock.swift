package import JobwireProtocol

/// Where the broker's core reads the time.
///
/// The core reads it once at the start of each round (``BrokerCore/readClock()``, and ``BrokerCore/tick()``),
/// so that every change of a round carries the same time.
package protocol BrokerClock {
    func now() -> Timestamp
}

/// The system's wall clock.
package struct SystemClock: BrokerClock, Sendable {
    package init() {}

    package func now() -> Timestamp { .now() }
}

/// A clock that moves only when it is told to: for tests of rules that involve time.
///
/// Not for sharing between threads: the thread that drives the core sets it.
package final class ManualClock: BrokerClock {
    private var current: Timestamp

    package init(_ start: Timestamp) { current = start }

    package func now() -> Timestamp { current }

    package func set(_ time: Timestamp) { current = time }

    package func advance(by duration: Duration) { current = current + duration }
}
