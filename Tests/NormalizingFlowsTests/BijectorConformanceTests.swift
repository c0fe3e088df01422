import Foundation
import Testing
@testable import NormalizingFlows

/// A bijector plan with the event shape and context it is checked at.
struct ConformanceCase: Sendable, CustomStringConvertible {
    let name: String
    let plan: any BijectorPlan
    var eventShape: [Int] = [3]
    var contextSize = 0
    var description: String { name }
}

private let rotation = Tensor([0.6, -0.8, 0.8, 0.6], shape: [2, 2], dtype: .float64)

/// Every bijector: a new one is one line here.
let conformanceCases: [ConformanceCase] = [
    ConformanceCase(name: "Affine", plan: Affine()),
    ConformanceCase(name: "Affine sigmoid scale", plan: Affine(scale: .sigmoid(bias: 2))),
    ConformanceCase(name: "AffineFixed", plan: AffineFixed(loc: 1.5, scale: -0.7)),
    ConformanceCase(name: "Exp", plan: Exp()),
    ConformanceCase(name: "Sigmoid", plan: Sigmoid()),
    ConformanceCase(name: "Softplus", plan: Softplus()),
    ConformanceCase(name: "Tanh", plan: Tanh()),
    ConformanceCase(name: "ELU", plan: ELU()),
    ConformanceCase(name: "ELU α = 0.5", plan: ELU(alpha: 0.5)),
    ConformanceCase(name: "LeakyReLU", plan: LeakyReLU(negativeSlope: 0.2)),
    ConformanceCase(name: "Power", plan: Power(exponent: 1.7)),
    ConformanceCase(name: "Permute random", plan: Permute(), eventShape: [5]),
    ConformanceCase(name: "Permute reversed", plan: Permute(.reversed)),
    ConformanceCase(name: "Permute given", plan: Permute(.given([2, 0, 1]))),
    ConformanceCase(name: "VolumePreserving rotation", plan: VolumePreserving(
        name: "rotation", forward: { matmul($0, rotation, transposeB: true) }, inverse: { matmul($0, rotation) }),
        eventShape: [2]),
    ConformanceCase(name: "AffineAutoregressive", plan: AffineAutoregressive(hiddenSizes: [16, 16])),
    ConformanceCase(name: "AffineAutoregressive D = 1", plan: AffineAutoregressive(hiddenSizes: [8]), eventShape: [1]),
    ConformanceCase(name: "AffineAutoregressive matrix event", plan: AffineAutoregressive(hiddenSizes: [12]), eventShape: [2, 3]),
    ConformanceCase(name: "AffineAutoregressive random order, skip, tanh", plan: AffineAutoregressive(
        conditioner: DenseAutoregressive(hiddenSizes: [16], activation: .tanh, skipConnections: true, order: .random)), eventShape: [4]),
    ConformanceCase(name: "AffineAutoregressive mean-field weights", plan: AffineAutoregressive(
        conditioner: DenseAutoregressive(hiddenSizes: [16], parameterization: .meanField))),
    ConformanceCase(name: "AffineAutoregressive soft-bounded scale", plan: AffineAutoregressive(hiddenSizes: [16], scale: .softBounded(5))),
    ConformanceCase(name: "AffineAutoregressive clamped scale", plan: AffineAutoregressive(hiddenSizes: [16], scale: .clamped(min: -5, max: 3))),
    ConformanceCase(name: "AffineAutoregressive soft-clipped scale", plan: AffineAutoregressive(hiddenSizes: [16], scale: .softClipped(bound: 2))),
    ConformanceCase(name: "AffineAutoregressive sigmoid scale", plan: AffineAutoregressive(hiddenSizes: [16], scale: .sigmoid(bias: 2))),
    ConformanceCase(name: "AffineAutoregressive softplus scale with a floor (nflows)", plan: AffineAutoregressive(hiddenSizes: [16], scale: .softplus(floor: 1e-3))),
    ConformanceCase(name: "AffineAutoregressive sigmoid scale with a floor (nflows coupling)", plan: AffineAutoregressive(
        hiddenSizes: [16], scale: .sigmoidWithFloor(bias: 2, floor: 1e-3))),
    ConformanceCase(name: "Affine softplus scale with a floor", plan: Affine(scale: .softplus(floor: 0.05))),
    ConformanceCase(name: "AffineCoupling sigmoid scale with a floor", plan: AffineCoupling(
        conditioner: .init(hiddenSizes: [8]), scale: .sigmoidWithFloor(bias: 2, floor: 1e-3))),
    ConformanceCase(name: "AffineAutoregressive with context", plan: AffineAutoregressive(hiddenSizes: [16]), contextSize: 2),
    ConformanceCase(name: "AffineAutoregressive three layers, context, skip, ELU, random order", plan: AffineAutoregressive(
        conditioner: DenseAutoregressive(hiddenSizes: [12, 7, 9], activation: .elu, skipConnections: true, order: .random)),
        eventShape: [5], contextSize: 2),
    ConformanceCase(name: "Affine with context", plan: Affine(), contextSize: 2),
    ConformanceCase(name: "Invert AffineAutoregressive", plan: Invert(AffineAutoregressive(hiddenSizes: [16]))),
    ConformanceCase(name: "Invert Exp", plan: Invert(Exp())),
    ConformanceCase(name: "Compose autoregressive + elementwise", plan: Compose([
        AffineAutoregressive(hiddenSizes: [16]), Tanh(), Permute(.reversed), Affine(),
    ])),
    ConformanceCase(name: "Spline", plan: Spline(bins: 5, bound: 2)),
    ConformanceCase(name: "Spline two bins", plan: Spline(bins: 2, bound: 1)),
    ConformanceCase(name: "Spline soft-clipped (zuko)", plan: Spline(bins: 5, bound: 2, parameterization: .softClipped(slope: 0.05))),
    ConformanceCase(name: "SplineAutoregressive", plan: SplineAutoregressive(bins: 4, bound: 2, conditioner: DenseAutoregressive(hiddenSizes: [16]))),
    ConformanceCase(name: "SplineAutoregressive with context", plan: SplineAutoregressive(bins: 4, bound: 2, conditioner: DenseAutoregressive(hiddenSizes: [16])), contextSize: 3),
    ConformanceCase(name: "SplineAutoregressive soft-clipped (zuko) with context", plan: SplineAutoregressive(
        bins: 4, bound: 2, conditioner: DenseAutoregressive(hiddenSizes: [16]), parameterization: .softClipped(slope: 1e-3)), contextSize: 2),
    ConformanceCase(name: "LinearRationalSpline", plan: LinearRationalSpline(bins: 5, bound: 2)),
    ConformanceCase(name: "LinearRationalSplineAutoregressive", plan: LinearRationalSplineAutoregressive(bins: 4, bound: 2, conditioner: DenseAutoregressive(hiddenSizes: [16]))),
    ConformanceCase(name: "LinearRationalSplineAutoregressive with context", plan: LinearRationalSplineAutoregressive(bins: 4, bound: 2, conditioner: DenseAutoregressive(hiddenSizes: [16])), contextSize: 3),
    ConformanceCase(name: "Planar", plan: Planar()),
    ConformanceCase(name: "Planar matrix event", plan: Planar(), eventShape: [2, 2]),
    ConformanceCase(name: "Radial", plan: Radial()),
    ConformanceCase(name: "MAF", plan: MAF(layers: 2, conditioner: DenseAutoregressive(hiddenSizes: [8]))),
    ConformanceCase(name: "IAF", plan: IAF(layers: 2, conditioner: DenseAutoregressive(hiddenSizes: [8]))),
    ConformanceCase(name: "NSF", plan: NSF(layers: 2, bins: 4, bound: 3, conditioner: DenseAutoregressive(hiddenSizes: [8]))),
    ConformanceCase(name: "MAF residual MADE (nflows)", plan: MAF(layers: 2, conditioner: DenseAutoregressive(hiddenSizes: [8], residualBlocks: 2))),
    ConformanceCase(name: "IAF residual MADE, context", plan: IAF(layers: 2, conditioner: DenseAutoregressive(hiddenSizes: [6], activation: .tanh, residualBlocks: 1)),
                    eventShape: [4], contextSize: 2),
    ConformanceCase(name: "MAF context layers (nflows), context", plan: MAF(layers: 2, conditioner: DenseAutoregressive(hiddenSizes: [8], contextLayers: true)),
                    eventShape: [4], contextSize: 2),
    ConformanceCase(name: "IAF residual MADE, context layers (nflows)", plan: IAF(layers: 2, conditioner: DenseAutoregressive(
        hiddenSizes: [6], activation: .tanh, residualBlocks: 2, contextLayers: true)), eventShape: [3], contextSize: 3),
    ConformanceCase(name: "NSF residual MADE, skip", plan: NSF(layers: 1, bins: 4, bound: 3, conditioner: DenseAutoregressive(hiddenSizes: [8], skipConnections: true, residualBlocks: 3))),
    ConformanceCase(name: "PlanarFlow", plan: PlanarFlow(layers: 4)),
    ConformanceCase(name: "RadialFlow", plan: RadialFlow(layers: 3)),
    ConformanceCase(name: "AffineCoupling", plan: AffineCoupling(conditioner: .init(hiddenSizes: [8]))),
    ConformanceCase(name: "AffineCoupling given mask, context", plan: AffineCoupling(mask: .given([true, false, false, true]), conditioner: .init(hiddenSizes: [8])),
                    eventShape: [4], contextSize: 2),
    ConformanceCase(name: "AdditiveCoupling", plan: AdditiveCoupling(mask: .alternating(parity: 1), conditioner: .init(hiddenSizes: [8]))),
    ConformanceCase(name: "SplineCoupling", plan: SplineCoupling(bins: 4, bound: 2, conditioner: .init(hiddenSizes: [8])), eventShape: [2, 2]),
    ConformanceCase(name: "SplineCoupling soft-clipped (zuko)", plan: SplineCoupling(
        bins: 4, bound: 2, conditioner: .init(hiddenSizes: [8]), parameterization: .softClipped(slope: 1e-2)), eventShape: [2, 2]),
    ConformanceCase(name: "AffineCoupling residual net (nflows)", plan: AffineCoupling(conditioner: .init(hiddenSizes: [6], residualBlocks: 2))),
    ConformanceCase(name: "SplineCoupling residual net, context", plan: SplineCoupling(bins: 4, bound: 2, conditioner: .init(hiddenSizes: [6], activation: .tanh, residualBlocks: 1)),
                    eventShape: [4], contextSize: 2),
    ConformanceCase(name: "LinearRationalSplineCoupling", plan: LinearRationalSplineCoupling(bins: 4, bound: 2, conditioner: .init(hiddenSizes: [8])), eventShape: [2, 2]),
    ConformanceCase(name: "LinearRationalSplineCoupling with context", plan: LinearRationalSplineCoupling(bins: 4, bound: 2, conditioner: .init(hiddenSizes: [6])),
                    eventShape: [4], contextSize: 2),
    ConformanceCase(name: "LRS", plan: LRS(layers: 2, bins: 4, bound: 3, conditioner: DenseAutoregressive(hiddenSizes: [8]))),
    ConformanceCase(name: "LRSCoupling", plan: LRSCoupling(layers: 2, bins: 4, bound: 3, conditioner: .init(hiddenSizes: [8]))),
    ConformanceCase(name: "RealNVP", plan: RealNVP(layers: 3, conditioner: .init(hiddenSizes: [8]))),
    ConformanceCase(name: "NSFCoupling", plan: NSFCoupling(layers: 2, bins: 4, bound: 3, conditioner: .init(hiddenSizes: [8]))),
    ConformanceCase(name: "Sylvester orthogonal", plan: Sylvester(variant: .orthogonal), eventShape: [4]),
    ConformanceCase(name: "Sylvester orthogonal, 2 columns", plan: Sylvester(variant: .orthogonal, columns: 2), eventShape: [4]),
    ConformanceCase(name: "Sylvester Householder", plan: Sylvester(variant: .householder, reflections: 3)),
    ConformanceCase(name: "Sylvester triangular", plan: Sylvester(variant: .triangular)),
    ConformanceCase(name: "SylvesterFlow", plan: SylvesterFlow(layers: 3, variant: .triangular)),
    ConformanceCase(name: "ActNorm", plan: ActNorm(), eventShape: [2, 3]),
    ConformanceCase(name: "BatchNorm", plan: BatchNorm()),
    ConformanceCase(name: "LULinear", plan: LULinear(), eventShape: [4]),
    ConformanceCase(name: "Householder", plan: Householder(reflections: 2)),
    ConformanceCase(name: "Planar with context", plan: Planar(contextNetwork: CouplingNetwork(hiddenSizes: [8])), contextSize: 2),
    ConformanceCase(name: "PlanarFlow with context (unfused)", plan: PlanarFlow(layers: 3), eventShape: [2], contextSize: 1),
    ConformanceCase(name: "Radial with context", plan: Radial(), contextSize: 2),
    ConformanceCase(name: "Householder with context", plan: Householder(reflections: 2, contextNetwork: CouplingNetwork(hiddenSizes: [6], activation: .tanh)),
                    contextSize: 3),
    ConformanceCase(name: "Sylvester orthogonal, 2 columns, context", plan: Sylvester(variant: .orthogonal, columns: 2), eventShape: [4], contextSize: 2),
    ConformanceCase(name: "Sylvester Householder with context", plan: Sylvester(variant: .householder, reflections: 2), contextSize: 2),
    ConformanceCase(name: "ContextEmbedding around MAF", plan: ContextEmbedding(
        MAF(layers: 2, conditioner: DenseAutoregressive(hiddenSizes: [8])), features: 2, network: CouplingNetwork(hiddenSizes: [6], activation: .tanh)),
        contextSize: 5),
    ConformanceCase(name: "ContextEmbedding around a planar layer", plan: ContextEmbedding(Planar(), features: 1), contextSize: 3),
    ConformanceCase(name: "SylvesterFlow triangular with context", plan: SylvesterFlow(layers: 2, variant: .triangular), contextSize: 1),
    ConformanceCase(name: "Sinh", plan: Sinh()),
    ConformanceCase(name: "Compose Exp, Power", plan: Compose([Exp(), Power(exponent: 0.5)])),
    ConformanceCase(name: "Spline circular", plan: Spline(bins: 5, bound: .pi, boundary: .circular)),
    ConformanceCase(name: "SplineAutoregressive circular, soft-clipped, context", plan: SplineAutoregressive(
        bins: 4, bound: .pi, conditioner: DenseAutoregressive(hiddenSizes: [16]), parameterization: .softClipped(slope: 1e-2), boundary: .circular),
                    contextSize: 2),
    ConformanceCase(name: "SplineCoupling circular", plan: SplineCoupling(bins: 4, bound: .pi, conditioner: .init(hiddenSizes: [8]), boundary: .circular),
                    eventShape: [4]),
    ConformanceCase(name: "CircularShift learned, context", plan: CircularShift(), contextSize: 2),
    ConformanceCase(name: "CircularShift fixed", plan: CircularShift(.fixed(2.5))),
    ConformanceCase(name: "NCSF", plan: NCSF(layers: 3, bins: 4, conditioner: DenseAutoregressive(hiddenSizes: [8]))),
    ConformanceCase(name: "NCSF with context", plan: NCSF(layers: 2, bins: 4, conditioner: DenseAutoregressive(hiddenSizes: [8])), contextSize: 2),
    ConformanceCase(name: "DeepSigmoidal", plan: DeepSigmoidal(units: 4)),
    ConformanceCase(name: "DeepSigmoidalAutoregressive with context", plan: DeepSigmoidalAutoregressive(
        units: 4, conditioner: DenseAutoregressive(hiddenSizes: [16])), contextSize: 2),
    ConformanceCase(name: "NAF", plan: NAF(layers: 2, units: 4, conditioner: DenseAutoregressive(hiddenSizes: [8]))),
    ConformanceCase(name: "UnconstrainedMonotonic", plan: UnconstrainedMonotonic(hiddenUnits: 3)),
    ConformanceCase(name: "UnconstrainedMonotonicAutoregressive with context", plan: UnconstrainedMonotonicAutoregressive(
        hiddenUnits: 3, conditioner: DenseAutoregressive(hiddenSizes: [16])), contextSize: 2),
    // UNAF's log-determinant is that of the exact integral; its map is the Gauss–Legendre rule.
    // With the weights moved by 0.3 they differed by 2.1e-6 at 32 nodes (the rule's error), so
    // this case takes 64 (the elementwise cases above pass at the default 32).
    ConformanceCase(name: "UNAF", plan: UNAF(layers: 2, hiddenUnits: 4, nodes: 64, conditioner: DenseAutoregressive(hiddenSizes: [8]))),
    ConformanceCase(name: "SumOfSquaresPolynomial", plan: SumOfSquaresPolynomial(polynomials: 2, degree: 3)),
    ConformanceCase(name: "SumOfSquaresPolynomialAutoregressive with context", plan: SumOfSquaresPolynomialAutoregressive(
        polynomials: 2, degree: 2, conditioner: DenseAutoregressive(hiddenSizes: [16])), contextSize: 2),
    ConformanceCase(name: "SOSPF", plan: SOSPF(layers: 2, polynomials: 2, degree: 2, conditioner: DenseAutoregressive(hiddenSizes: [8]))),
    ConformanceCase(name: "BernsteinPolynomial", plan: BernsteinPolynomial(degree: 6, bound: 2)),
    ConformanceCase(name: "BernsteinPolynomialAutoregressive with context", plan: BernsteinPolynomialAutoregressive(
        degree: 5, bound: 3, conditioner: DenseAutoregressive(hiddenSizes: [16])), contextSize: 2),
    ConformanceCase(name: "BPF", plan: BPF(layers: 2, degree: 5, bound: 3, conditioner: DenseAutoregressive(hiddenSizes: [8]))),
    ConformanceCase(name: "Bounds", plan: Bounds(lower: [-1, 0.5, -.infinity, -.infinity], upper: [2, .infinity, 3, .infinity]), eventShape: [2, 2]),
]

/// Makes `testCase` concrete in Float64 and moves every parameter away from the identity.
private func concrete(_ testCase: ConformanceCase, seed: UInt64 = 1) throws -> any Bijector {
    var generator = RandomGenerator(seed: seed)
    let bijector = try testCase.plan.makeBijector(
        for: BijectorSpec(eventShape: testCase.eventShape, contextSize: testCase.contextSize, dtype: .float64),
        generator: &generator)
    for p in bijector.parameters {
        p.value = p.value + Tensor.randn(p.shape, generator: &generator, dtype: .float64) * 0.3
    }
    return bijector
}

private func context(_ testCase: ConformanceCase, leading: [Int], generator: inout RandomGenerator) -> Tensor? {
    testCase.contextSize > 0 ? Tensor.randn(leading + [testCase.contextSize], generator: &generator, dtype: .float64) : nil
}

@Test("inverse(forward(x)) = x and the log-dets are negatives", arguments: conformanceCases)
func bijectorInverts(_ testCase: ConformanceCase) throws {
    let bijector = try concrete(testCase)
    var generator = RandomGenerator(seed: 2)
    for leading in [[1], [7], [2, 3]] {
        let x = sample(in: bijector.domain, shape: leading + testCase.eventShape, generator: &generator)
        let c = context(testCase, leading: leading, generator: &generator)
        let (y, forwardLogDet) = try bijector.forward(x, context: c)
        let (back, inverseLogDet) = try bijector.inverse(y, context: c)
        #expect(y.shape == x.shape && back.shape == x.shape)
        #expect(forwardLogDet.shape == leading && inverseLogDet.shape == leading)
        #expect(maxAbsDifference(back.doubles, x.doubles) < 1e-6, "\(testCase.name): round trip")
        #expect(maxAbsDifference(forwardLogDet.doubles, inverseLogDet.negated().doubles) < 1e-6, "\(testCase.name): log-dets")
        #expect(y.doubles.enumerated().allSatisfy { bijector.codomain.contains($1, atElement: $0) }, "\(testCase.name): output outside the codomain")
    }
}

@Test("the inverse without gradients equals the recorded one", arguments: conformanceCases)
func bijectorInverseWithoutGradientsMatches(_ testCase: ConformanceCase) throws {
    // Autoregressive bijectors take a different route without gradients (one network pass in all).
    let bijector = try concrete(testCase)
    var generator = RandomGenerator(seed: 5)
    let x = sample(in: bijector.domain, shape: [2, 3] + testCase.eventShape, generator: &generator)
    let c = context(testCase, leading: [2, 3], generator: &generator)
    let y = try bijector.forward(x, context: c).y.detached()
    let recorded = try bijector.inverse(y, context: c)
    let plain = try withoutGradients { try bijector.inverse(y, context: c) }
    #expect(plain.x.shape == recorded.x.shape && plain.logAbsDetJacobian.shape == recorded.logAbsDetJacobian.shape)
    #expect(maxAbsDifference(plain.x.doubles, recorded.x.doubles) < 1e-10, "\(testCase.name): x")
    #expect(maxAbsDifference(plain.logAbsDetJacobian.doubles, recorded.logAbsDetJacobian.doubles) < 1e-10, "\(testCase.name): log-det")
}

@Test("the forward pass without gradients equals the recorded one", arguments: conformanceCases)
func bijectorForwardWithoutGradientsMatches(_ testCase: ConformanceCase) throws {
    // A MADE takes its inference pass without gradients (chunks of rows, degree-sorted weights).
    // The parameters move off their initial values, where the last layer is nearly zero.
    let bijector = try concrete(testCase)
    var generator = RandomGenerator(seed: 7)
    for p in bijector.parameters { p.value = p.value + Tensor.randn(p.shape, generator: &generator, dtype: p.value.dtype) * 0.3 }
    let x = sample(in: bijector.domain, shape: [2, 3] + testCase.eventShape, generator: &generator)
    let c = context(testCase, leading: [2, 3], generator: &generator)
    let recorded = try bijector.forward(x, context: c)
    let plain = try withoutGradients { try bijector.forward(x, context: c) }
    #expect(plain.y.shape == recorded.y.shape && plain.logAbsDetJacobian.shape == recorded.logAbsDetJacobian.shape)
    #expect(maxAbsDifference(plain.y.doubles, recorded.y.doubles) < 1e-10, "\(testCase.name): y")
    #expect(maxAbsDifference(plain.logAbsDetJacobian.doubles, recorded.logAbsDetJacobian.doubles) < 1e-10, "\(testCase.name): log-det")
}

@Test func sequentialInversionSpansChunksInFloat32() throws {
    // More rows than one chunk of the sequential inverse and of the inference pass, in the dtype
    // flows train in.
    var generator = RandomGenerator(seed: 6)
    let bijector = try AffineAutoregressive(hiddenSizes: [32, 32]).makeBijector(for: BijectorSpec(eventShape: [6]), generator: &generator)
    for p in bijector.parameters { p.value = p.value + Tensor.randn(p.shape, generator: &generator) * 0.1 }
    let y = Tensor.randn([5000, 6], generator: &generator)
    let recorded = try bijector.inverse(y, context: nil)
    let plain = try withoutGradients { try bijector.inverse(y, context: nil) }
    #expect(maxAbsDifference(plain.x.doubles, recorded.x.doubles) < 1e-4)
    #expect(maxAbsDifference(plain.logAbsDetJacobian.doubles, recorded.logAbsDetJacobian.doubles) < 1e-4)
    let back = try withoutGradients { try bijector.forward(plain.x, context: nil) }
    #expect(maxAbsDifference(back.y.doubles, y.doubles) < 1e-4)
    // The forward pass without gradients (in chunks of rows) against the recorded one.
    let recordedForward = try bijector.forward(plain.x, context: nil)
    #expect(maxAbsDifference(back.y.doubles, recordedForward.y.doubles) < 1e-5)
    #expect(maxAbsDifference(back.logAbsDetJacobian.doubles, recordedForward.logAbsDetJacobian.doubles) < 1e-5)
}

@Test("the inference pass skips the mask's zeros without losing weights", arguments: [(Activation.relu, false), (.tanh, true)])
func inferencePassSkipsMaskedZerosWithoutLosingWeights(_ activation: Activation, _ skip: Bool) throws {
    // Wide layers with a context: each panel of 16 units of every layer (first, hidden, output,
    // skip) is multiplied only as deep as its units read, and the ReLU is applied as the
    // product is stored. A panel read too shallow would drop weights the recorded pass uses.
    var generator = RandomGenerator(seed: 8)
    let plan = AffineAutoregressive(conditioner: DenseAutoregressive(
        hiddenSizes: [260, 260], activation: activation, skipConnections: skip, order: .reversed))
    let bijector = try plan.makeBijector(for: BijectorSpec(eventShape: [260], contextSize: 3), generator: &generator)
    for p in bijector.parameters { p.value = p.value + Tensor.randn(p.shape, generator: &generator) * 0.05 }
    let x = Tensor.randn([300, 260], generator: &generator)
    let c = Tensor.randn([300, 3], generator: &generator)
    let recorded = try bijector.forward(x, context: c)
    let plain = try withoutGradients { try bijector.forward(x, context: c) }
    #expect(maxAbsDifference(plain.y.doubles, recorded.y.doubles) < 1e-4)
    #expect(maxAbsDifference(plain.logAbsDetJacobian.doubles, recorded.logAbsDetJacobian.doubles) < 1e-3)
}

@Test("log |det J| equals the log-determinant of the autograd Jacobian", arguments: conformanceCases)
func bijectorLogDetMatchesJacobian(_ testCase: ConformanceCase) throws {
    let bijector = try concrete(testCase)
    var generator = RandomGenerator(seed: 3)
    for _ in 0..<3 {
        let x = sample(in: bijector.domain, shape: [1] + testCase.eventShape, generator: &generator)
        let c = context(testCase, leading: [1], generator: &generator)
        let n = x.count
        let j = try jacobian(of: { try bijector.forward($0, context: c).y }, at: x)
        let (y, logDet) = try bijector.forward(x, context: c)
        #expect(abs(logDet.item - logAbsDeterminant(j, n: n)) < 1e-6, "\(testCase.name): forward log-det")
        let jInverse = try jacobian(of: { try bijector.inverse($0, context: c).x }, at: y.detached())
        let inverseLogDet = try bijector.inverse(y.detached(), context: c).logAbsDetJacobian
        #expect(abs(inverseLogDet.item - logAbsDeterminant(jInverse, n: n)) < 1e-6, "\(testCase.name): inverse log-det")
    }
}

@Test("gradients reach every parameter", arguments: conformanceCases)
func bijectorGradientsReachEveryParameter(_ testCase: ConformanceCase) throws {
    let bijector = try concrete(testCase)
    var generator = RandomGenerator(seed: 4)
    let x = sample(in: bijector.domain, shape: [16] + testCase.eventShape, generator: &generator)
    let c = context(testCase, leading: [16], generator: &generator)
    let (y, logDet) = try bijector.forward(x, context: c)
    guard !bijector.parameters.isEmpty else { return }
    (y.square().sum() + logDet.sum()).backward()
    for (name, p) in bijector.namedParameters {
        #expect(p.grad?.doubles.contains { $0 != 0 } == true, "\(testCase.name): no gradient reached \(name)")
    }
}

@Test("inputs outside the domain are refused with a clear error", arguments: conformanceCases)
func bijectorRefusesOutOfDomainInput(_ testCase: ConformanceCase) throws {
    let bijector = try concrete(testCase)
    let shape = [2] + testCase.eventShape
    var generator = RandomGenerator(seed: 5)
    let c = context(testCase, leading: [2], generator: &generator)
    // Values are checked once, where a user passes them to a flow; bijectors check shapes and
    // domains (so that an overflow deep inside a trained flow scores −∞ instead of failing).
    let nan = Tensor.full(shape, .nan, dtype: .float64)
    let flow = try Flow(base: Normal.standard(testCase.eventShape, dtype: .float64), plan: testCase.plan,
                        contextSize: testCase.contextSize)
    #expect(throws: FlowError.self) { try flow.logProb(nan, context: c) }
    #expect(throws: FlowError.self) { try bijector.forward(Tensor.zeros([2, 99], dtype: .float64), context: c) }
    #expect(throws: FlowError.self) { try bijector.inverse(Tensor.zeros([2, 99], dtype: .float64), context: c) }
    let directions: [(Domain, (Tensor) throws -> Void)] = [
        (bijector.domain, { _ = try bijector.forward($0, context: c) }),
        (bijector.codomain, { _ = try bijector.inverse($0, context: c) }),
    ]
    for (domain, run) in directions where domain != .real {
        let (lower, upper) = domain.bounds(ofElement: 0)
        let outside = Tensor.full(shape, lower.isFinite ? lower - 0.5 : upper + 0.5, dtype: .float64)
        do {
            try run(outside)
            Issue.record("\(testCase.name): accepted \(outside.doubles[0]) outside \(domain)")
        } catch let error as FlowError {
            guard case .outsideDomain(let message) = error else {
                Issue.record("\(testCase.name): wrong error \(error)")
                continue
            }
            // A box names the interval of the element that is outside (the first one).
            #expect(message.contains(domain.description) || message.contains(Domain.interval(lower, upper)))
        }
    }
}

@Test func wrongEventShapesAreRefused() throws {
    var generator = RandomGenerator(seed: 0)
    let bijector = try AffineAutoregressive(hiddenSizes: [8]).makeBijector(for: BijectorSpec(eventShape: [3]), generator: &generator)
    #expect(throws: FlowError.self) { try bijector.forward(.zeros([4, 2]), context: nil) }
    #expect(throws: FlowError.self) { try bijector.inverse(.zeros([3, 4]), context: nil) }
    #expect(throws: FlowError.self) { try bijector.forward(.zeros([4, 3]), context: .zeros([4, 2])) }
}

@Test func invalidSettingsAreRefusedWhenMadeConcrete() {
    var generator = RandomGenerator(seed: 0)
    let spec = BijectorSpec(eventShape: [3])
    let invalid: [any BijectorPlan] = [
        AffineFixed(scale: 0), Power(exponent: 0), LeakyReLU(negativeSlope: 0), ELU(alpha: -1),
        Permute(.given([0, 0, 1])), Compose([]), AffineAutoregressive(hiddenSizes: []),
        AffineAutoregressive(hiddenSizes: [8], scale: .clamped(min: 1, max: 2)),
        AffineAutoregressive(hiddenSizes: [8], scale: .softplus(floor: 1)), Affine(scale: .sigmoidWithFloor(bias: 2, floor: -0.1)),
        Affine(scale: .sigmoidWithFloor(bias: .nan, floor: 1e-3)),
        Spline(bins: 1), Spline(bins: 4, bound: 0), SplineAutoregressive(bins: 8, bound: .infinity),
        LinearRationalSpline(bins: 1), LinearRationalSplineAutoregressive(bins: 4, bound: .nan), LinearRationalSplineCoupling(bins: 3, bound: -1),
        AffineCoupling(mask: .given([true, true, true])), AffineCoupling(mask: .given([true, false])),
    ]
    for plan in invalid {
        #expect(throws: FlowError.self, "\(plan)") { try plan.makeBijector(for: spec, generator: &generator) }
    }
}
