// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "NormalizingFlows",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "Tensors", targets: ["Tensors"]),
        .library(name: "NormalizingFlows", targets: ["NormalizingFlows"]),
        .executable(name: "flows", targets: ["flows"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-numerics", from: "1.1.1"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.4.0"),
    ],
    targets: [
        // Hot loops that need AVX2+FMA code in a default build: compiled with per-function
        // target attributes and chosen at run time, so no unsafe build flags are needed.
        .target(name: "CKernels"),
        // The same, for the flows' own hot loops (the float32 spline).
        .target(name: "FlowKernels"),
        .target(
            name: "Tensors",
            dependencies: [
                "CKernels",
                .product(name: "RealModule", package: "swift-numerics"),
            ]
        ),
        .target(name: "NormalizingFlows", dependencies: ["Tensors", "FlowKernels"]),
        .executableTarget(
            name: "flows",
            dependencies: [
                "NormalizingFlows",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "TensorsTests", dependencies: ["Tensors"]),
        // Fixtures: model files the tests read by path.
        .testTarget(name: "NormalizingFlowsTests", dependencies: ["NormalizingFlows"], exclude: ["Fixtures"]),
        // Runs the built `flows` executable in separate processes.
        .testTarget(name: "flowsTests", dependencies: ["flows", "NormalizingFlows"]),
    ]
)
