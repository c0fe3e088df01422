import Foundation
import Testing

// Issue 25: a `flows bench` case for every family people train at scale.

private let familyTasks = ["lrs-moons", "lrs-coupling-moons", "naf-moons", "unaf-moons", "sospf-moons", "bpf-moons", "ncsf-torus"]

@Test func benchListsTheFamilyTasks() throws {
    let help = try flows(["bench", "--help"])
    let flat = help.output.replacingOccurrences(of: "\n", with: " ")
    for task in familyTasks { #expect(flat.contains(task), "\(task) missing from: \(help.output)") }
}

@Test(arguments: familyTasks)
func aFamilyTaskTrainsScoresAndSamples(task: String) throws {
    let run = try flows(["bench", "--task", task, "--steps", "2", "--points", "300", "--json"])
    #expect(run.status == 0, "\(run.error)")
    let record = try #require(try JSONSerialization.jsonObject(with: Data(run.output.utf8)) as? [String: Any], "\(run.output)")
    #expect(record["task"] as? String == task)
    #expect(record["family"] as? String == String(task.split(separator: "-").dropLast().joined(separator: "-")))
    for field in ["steps_per_s", "wall_s", "test_nll", "logprob_points_per_s", "sample_points_per_s", "params"] {
        let value = record[field] as? Double
        #expect(value.map { $0.isFinite && ($0 > 0 || field == "test_nll") } ?? false, "\(field) = \(String(describing: record[field])) in \(run.output)")
    }
}

@Test func pointsAppliesToTheFamilyTasksOnly() throws {
    let refused = try flows(["bench", "--task", "maf-throughput", "--points", "10"])
    #expect(refused.status != 0 && refused.error.contains("--points applies to the family tasks only"), "\(refused.error)")
    let zero = try flows(["bench", "--task", "naf-moons", "--points", "0"])
    #expect(zero.status != 0 && zero.error.contains("--points must be at least 1"), "\(zero.error)")
}
