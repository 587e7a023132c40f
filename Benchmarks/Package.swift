// swift-tools-version: 6.2
import PackageDescription

// The benchmarks: their own package so that CI never builds or runs them.
let package = Package(
    name: "jobwire-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "jobwire", path: "../"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
    ],
    targets: [
        .executableTarget(
            name: "jobwire-bench",
            dependencies: [
                .product(name: "ZeroMQ", package: "jobwire"),
                .product(name: "JobwireProtocol", package: "jobwire"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        )
    ]
)
