// swift-tools-version: 6.2
import PackageDescription

// The benchmarks: their own package so that CI never builds or runs them.
let package = Package(
    name: "jobwire-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "jobwire", path: "../"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
    ],
    targets: [
        .executableTarget(
            name: "jobwire-bench",
            dependencies: [
                .product(name: "ZeroMQ", package: "jobwire"),
                .product(name: "JobwireProtocol", package: "jobwire"),
                // The product rows: a Swift SDK listener process (`listen-sdk`) and a `JobsClient` producer.
                .product(name: "Jobwire", package: "jobwire"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        )
    ]
)
