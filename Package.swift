// swift-tools-version: 6.2
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

/// An example listener: an executable of this package, so that `swift build` keeps it honest.
func example(_ name: String) -> Target {
    .executableTarget(
        name: name,
        dependencies: ["Jobwire", "ExampleSupport", .product(name: "Logging", package: "swift-log")],
        path: "Examples/\(name)",
        exclude: ["README.md"],
        swiftSettings: strict
    )
}

let package = Package(
    name: "jobwire",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "ZeroMQ", targets: ["ZeroMQ"]),
        .library(name: "JobwireProtocol", targets: ["JobwireProtocol"]),
        .library(name: "JobwireCore", targets: ["JobwireCore"]),
        .library(name: "JobwireBroker", targets: ["JobwireBroker"]),
        .library(name: "Jobwire", targets: ["Jobwire"]),
        .executable(name: "jobwire", targets: ["jobwire"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
    ],
    targets: [
        .systemLibrary(name: "CZeroMQ", providers: [.apt(["libzmq3-dev"])]),
        .target(name: "ZeroMQ", dependencies: ["CZeroMQ"], swiftSettings: strict),
        .target(name: "JobwireProtocol", swiftSettings: strict),
        .target(name: "CJobwireSpawn"),
        .target(name: "JobwireChildProcess", dependencies: ["CJobwireSpawn"], swiftSettings: strict),
        .target(name: "CJobwireSupport", linkerSettings: [.linkedLibrary("sqlite3")]),
        // The broker's state machine: its rules, its clock and the interface of its store; no sockets, no SQLite.
        .target(
            name: "JobwireCore",
            dependencies: ["JobwireProtocol", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict
        ),
        // The PostgreSQL store and the active/standby role it fences; no sockets.
        .target(
            name: "JobwirePostgres",
            dependencies: [
                "JobwireCore", "JobwireProtocol", .product(name: "Logging", package: "swift-log"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "JobwireBroker",
            dependencies: [
                "JobwireCore", "JobwirePostgres", "ZeroMQ", "JobwireProtocol", "CJobwireSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "Jobwire",
            dependencies: [
                "ZeroMQ", "JobwireProtocol",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "jobwire",
            dependencies: [
                "JobwireBroker", "JobwirePostgres", "Jobwire", "JobwireProtocol", "ZeroMQ", "JobwireChildProcess",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict,
            // jemalloc, as Redis ships it: glibc's malloc locked its arenas between the broker's thread and
            // ZeroMQ's I/O thread (which frees the message buffers the other allocates). Measured: broker CPU
            // per job lifecycle 59.5-66.5 -> 53-53.5 us (docs/benchmarks.md).
            linkerSettings: [.linkedLibrary("jemalloc", .when(platforms: [.linux]))]
        ),
        .target(
            name: "ExampleSupport",
            dependencies: [
                "Jobwire",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            path: "Examples/ExampleSupport",
            swiftSettings: strict
        ),
        example("workbook-export"),
        example("job-handler"),
        example("custom-job"),
        example("actions"),
        example("multi-part"),
        .target(
            name: "JobwireTestSupport",
            dependencies: ["ZeroMQ", "JobwireProtocol", "JobwireChildProcess"],
            path: "Tests/JobwireTestSupport",
            swiftSettings: strict
        ),
        .testTarget(name: "ZeroMQTests", dependencies: ["ZeroMQ"], swiftSettings: strict),
        .testTarget(name: "JobwireProtocolTests", dependencies: ["JobwireProtocol"], swiftSettings: strict),
        .testTarget(
            name: "JobwireBrokerTests",
            dependencies: [
                "JobwireBroker", "JobwireCore", "JobwireProtocol", "ZeroMQ", "JobwireTestSupport",
                "JobwireChildProcess", .product(name: "Logging", package: "swift-log"),
                .product(name: "GRDB", package: "GRDB.swift"), "CJobwireSupport",
            ],
            swiftSettings: strict
        ),
        // The broker's rules, in-process on a ManualClock, on each store: no sockets, no processes, no waiting.
        .testTarget(
            name: "JobwireCoreTests",
            dependencies: [
                "JobwireCore", "JobwireBroker", "JobwirePostgres", "JobwireProtocol", .product(name: "Logging", package: "swift-log"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "JobwireCLITests",
            dependencies: ["jobwire", "Jobwire", "JobwireProtocol", "JobwireTestSupport", "JobwireChildProcess"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "JobwireTests",
            dependencies: ["Jobwire", "JobwireBroker", "JobwireProtocol", "JobwireTestSupport", "JobwireChildProcess"],
            swiftSettings: strict
        ),
    ]
)
