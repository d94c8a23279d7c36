// hsgd::Study: a sequence of runs stopped at any step (by a real SIGTERM, or killed after a periodic
// checkpoint) and resumed ends with the same results, CSV bytes and final checkpoint as the study that
// never stopped; finished runs are skipped; a resume with other settings is refused by name.

#include <csignal>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include <catch2/catch.hpp>

#include "support.hpp"

using namespace test;
using Catch::Matchers::Contains;

namespace {

constexpr Index runs_per_study = 4;  // two schemes x two seeds
constexpr Index steps_per_run = 24;

/// An observer that also takes part in checkpoints: the sum of the step numbers it has seen.
struct StepSum {
  double sum = 0;
  template <class Run>
  void after_step(const Run& run) {
    sum += static_cast<double>(run.step_count());
  }
  [[nodiscard]] std::string_view checkpoint_name() const { return "step sum"; }
  template <class Archive>
  void checkpoint(Archive& archive) {
    archive.real("the sum", sum);
  }
};

/// A checkpoint part that is no observer: a count that an observer of its own keeps.
struct Tally {
  Index ticks = 0;
  [[nodiscard]] std::string_view checkpoint_name() const { return "tally"; }
  template <class Archive>
  void checkpoint(Archive& archive) {
    archive.index("the ticks", ticks, 0, 1 << 20);
  }
};

/// Where a study is interrupted: run `run` (0-based), after step `step`, by a SIGTERM the process
/// raises (the study saves and stops) or by a kill (the program ends there; the last checkpoint on
/// disk is an earlier one). run = -1: never.
struct Stop {
  Index run = -1;
  Index step = 0;
  bool signal = true;
};

/// What a study leaves behind.
struct StudyOutcome {
  int exit_code = 0;
  bool completed = false;
  Index engines_made = 0;
  std::vector<std::vector<double>> results;
};

/// The test study: local SGD with period 2 and H-SGD(2, 6) on noisy quadratics, seeds 1 and 2, a
/// probe whose records go to the study's CSV file, and the two members above. Each run's results:
/// its mean ||grad f||^2 from the records, f(xbar_T), the step sum, the ticks.
StudyOutcome run_study(hsgd::StudyOptions options, Stop stop = {}) {
  StudyOutcome outcome;
  hsgd::Study study(std::move(options));
  for (std::uint64_t seed = 1; seed <= 2; ++seed) {
    for (const std::string scheme : {"local-sgd", "hsgd"}) {
      const Index run = study.next();
      if (study.skip_finished()) continue;
      const auto topology = scheme == "hsgd" ? hsgd::Topology::two_level(6, 2, 2, 6) : hsgd::Topology::local_sgd(6, 2);
      hsgd::Engine engine(topology, noisy_quadratics(6, 3, seed), hsgd::UniformSampler(2),
                          options_with(steps_per_run), hsgd::RandomGrouping{});
      ++outcome.engines_made;
      study.set_tags({scheme, std::to_string(seed)});
      auto probe = hsgd::make_probe(engine, {.gradient_every = 3, .model_every = 2}, study);
      StepSum step_sum;
      Tally tally;
      auto count = hsgd::every(3, [&](const auto&) { tally.ticks += 1; });
      const bool stop_here = run == stop.run;
      auto interrupt = hsgd::every(1, [&](const auto& at) {
        if (!stop_here || at.step_count() != stop.step) return false;
        if (stop.signal) std::raise(SIGTERM);  // StopSignals (the study's) turns it into a stop
        return !stop.signal;                   // a kill: the run ends here, nothing more is saved
      });
      const auto summary = study.run(engine, probe, step_sum, tally, count, interrupt);
      if (!summary) {
        CHECK_THROWS_AS(study.finish({}), hsgd::InvalidState);  // a stopped run has no results to record
        outcome.exit_code = study.exit_code();
        return outcome;
      }
      if (stop_here && !stop.signal) return outcome;  // killed: no finish, no later run
      study.finish({hsgd::time_average(study.records(), &hsgd::ProbeRecord::gradient_norm_squared), summary->loss,
                    step_sum.sum, static_cast<double>(tally.ticks)});
    }
  }
  outcome.completed = true;
  outcome.results = study.results();
  return outcome;
}

hsgd::StudyOptions study_options(const TempDir& dir, const std::string& name) {
  return {.csv = dir.file(name + ".csv"),
          .tags = {"scheme", "seed"},
          .levels = 2,
          .checkpoint = dir.file(name + ".ckpt"),
          .checkpoint_every = 5,
          .durable = false,
          .settings = {{"steps", steps_per_run}, {"schemes", "local-sgd,hsgd"}},
          .out = nullptr,
          .err = nullptr};
}

hsgd::StudyOptions resumed(hsgd::StudyOptions options) {
  options.resume = options.checkpoint;
  return options;
}

}  // namespace

TEST_CASE("study: stopped at any step and resumed, it ends as the study that never stopped", "[study]") {
  TempDir dir;
  const StudyOutcome reference = run_study(study_options(dir, "reference"));
  REQUIRE(reference.completed);
  REQUIRE(reference.results.size() == runs_per_study);
  CHECK(reference.engines_made == runs_per_study);
  const std::string reference_csv = read_bytes(dir.file("reference.csv"));
  const std::string reference_checkpoint = read_bytes(dir.file("reference.ckpt"));
  // Every run's results differ, so a run skipped or repeated would show.
  CHECK(reference.results[0] != reference.results[1]);
  CHECK(reference.results[0] != reference.results[2]);

  // SIGTERM in the first, middle and last run, inside a period, on a periodic checkpoint's step, at
  // the first and at the last step; kills after a periodic checkpoint and before the first one.
  const std::vector<Stop> stops{{0, 7, true},  {1, 10, true}, {2, 1, true},  {3, steps_per_run, true},
                                {1, 13, false}, {2, 3, false}, {3, 22, false}};
  for (const Stop& stop : stops) {
    CAPTURE(stop.run, stop.step, stop.signal);
    const auto options = study_options(dir, "stopped");
    const StudyOutcome stopped = run_study(options, stop);
    REQUIRE_FALSE(stopped.completed);
    CHECK(stopped.exit_code == (stop.signal ? 128 + SIGTERM : 0));
    CHECK(stopped.engines_made == stop.run + 1);

    const StudyOutcome resumed_outcome = run_study(resumed(options));
    REQUIRE(resumed_outcome.completed);
    CHECK(resumed_outcome.exit_code == 0);
    CHECK(resumed_outcome.results == reference.results);
    // The finished runs were not run again: only the one under way and those after it.
    CHECK(resumed_outcome.engines_made == runs_per_study - stop.run);
    CHECK(read_bytes(dir.file("stopped.csv")) == reference_csv);
    CHECK(read_bytes(dir.file("stopped.ckpt")) == reference_checkpoint);
  }
}

TEST_CASE("study: a killed run's CSV rows after its checkpoint are dropped on resume", "[study]") {
  TempDir dir;
  const StudyOutcome reference = run_study(study_options(dir, "reference"));
  const auto options = study_options(dir, "killed");
  run_study(options, {1, 13, false});  // the last checkpoint is from step 10 of run 1
  const std::string killed_csv = read_bytes(dir.file("killed.csv"));
  const std::string reference_csv = read_bytes(dir.file("reference.csv"));
  REQUIRE(killed_csv.size() < reference_csv.size());
  REQUIRE(reference_csv.compare(0, killed_csv.size(), killed_csv) == 0);
  // Rows of steps 11 to 13 are in the file but not in the checkpoint.
  CHECK(killed_csv.find("hsgd,1,12,") != std::string::npos);

  hsgd::StudyOptions resume = resumed(options);
  resume.checkpoint.clear();  // a resume need not write checkpoints itself
  std::FILE* notes = std::tmpfile();
  REQUIRE(notes != nullptr);
  resume.out = notes;
  hsgd::Study study(resume);
  std::rewind(notes);
  char text[256] = {};
  CHECK(std::string(std::fgets(text, sizeof text, notes)) ==
        "resuming from " + options.checkpoint + ": 1 run(s) finished, run 2 under way\n");
  std::fclose(notes);
  CHECK(study.next() == 0);
  CHECK(study.finished(1));
  CHECK_FALSE(study.finished(2));
  CHECK(study.results() == std::vector<std::vector<double>>{reference.results[0]});
  // The CSV file is already cut back to what the checkpoint covers.
  const std::string cut = read_bytes(dir.file("killed.csv"));
  CHECK(cut.find("hsgd,1,12,") == std::string::npos);
  CHECK(reference_csv.compare(0, cut.size(), cut) == 0);
}

TEST_CASE("study: a resume of a finished study skips every run and leaves the files alone", "[study]") {
  TempDir dir;
  const auto options = study_options(dir, "done");
  const StudyOutcome first = run_study(options);
  REQUIRE(first.completed);
  const std::string csv = read_bytes(dir.file("done.csv"));
  const std::string checkpoint = read_bytes(dir.file("done.ckpt"));

  const StudyOutcome again = run_study(resumed(options));
  CHECK(again.completed);
  CHECK(again.engines_made == 0);
  CHECK(again.results == first.results);
  CHECK(read_bytes(dir.file("done.csv")) == csv);
  CHECK(read_bytes(dir.file("done.ckpt")) == checkpoint);

  // Runs that finished must be skipped: running one again is refused.
  hsgd::Study study(resumed(options));
  hsgd::Engine engine(hsgd::Topology::local_sgd(6, 2), noisy_quadratics(6, 3, 1), hsgd::UniformSampler(2),
                      options_with(steps_per_run));
  CHECK_THROWS_AS(study.run(engine), hsgd::InvalidState);
  CHECK(study.skip_finished());
  CHECK(study.next() == 1);
  CHECK(study.result(0) == first.results[0]);
}

TEST_CASE("study: a resume with other settings is refused, naming the setting, and changes no file", "[study]") {
  TempDir dir;
  auto options = study_options(dir, "settings");
  run_study(options, {2, 4, true});
  const std::string csv = read_bytes(dir.file("settings.csv"));
  const std::string checkpoint = read_bytes(dir.file("settings.ckpt"));

  auto other = resumed(options);
  other.settings = {{"steps", steps_per_run + 1}, {"schemes", "local-sgd,hsgd"}};
  CHECK_THROWS_AS(hsgd::Study(other), hsgd::CheckpointError);
  CHECK_THROWS_WITH(hsgd::Study(other), Contains("study steps is 24, this run's is 25"));
  other.settings = {{"steps", steps_per_run}};
  CHECK_THROWS_WITH(hsgd::Study(other), Contains("another number of settings"));
  other = resumed(options);
  other.csv.clear();
  CHECK_THROWS_WITH(hsgd::Study(other), Contains("a CSV file"));
  other = resumed(options);
  other.tags = {"scheme", "replicate"};
  CHECK_THROWS_WITH(hsgd::Study(other), Contains("tag columns"));
  CHECK(read_bytes(dir.file("settings.csv")) == csv);
  CHECK(read_bytes(dir.file("settings.ckpt")) == checkpoint);

  // The checkpoint cadence and the number kept may differ.
  other = resumed(options);
  other.checkpoint_every = 3;
  other.keep = 2;
  const StudyOutcome continued = run_study(other);
  CHECK(continued.completed);
  CHECK(continued.results == run_study(study_options(dir, "reference")).results);
}

TEST_CASE("study: without a checkpoint it runs, writes its CSV file and handles no signal", "[study]") {
  TempDir dir;
  auto options = study_options(dir, "plain");
  options.checkpoint.clear();
  const StudyOutcome outcome = run_study(options);
  CHECK(outcome.completed);
  CHECK_FALSE(std::filesystem::exists(dir.file("plain.ckpt")));
  CHECK(outcome.results == run_study(study_options(dir, "reference")).results);
  CHECK(read_bytes(dir.file("plain.csv")) == read_bytes(dir.file("reference.csv")));
}

TEST_CASE("study: records, results and misuse", "[study]") {
  TempDir dir;
  hsgd::Study study({.out = nullptr, .err = nullptr});
  CHECK(study.csv() == nullptr);
  CHECK(study.next() == 0);
  CHECK_FALSE(study.finished());
  CHECK_FALSE(study.skip_finished());
  CHECK_THROWS_AS(study.finish({1.0}), hsgd::InvalidState);
  hsgd::Engine engine(hsgd::Topology::local_sgd(6, 2), noisy_quadratics(6, 3, 1), hsgd::UniformSampler(2),
                      options_with(8));
  auto probe = hsgd::make_probe(engine, {.gradient_every = 4, .model_every = 0}, study);
  const auto summary = study.run(engine, probe);
  REQUIRE(summary.has_value());
  CHECK(summary->steps == 8);
  REQUIRE(study.records().size() == 2);
  CHECK(study.records().back().step == 8);
  CHECK_THROWS_AS(study.run(engine, probe), hsgd::InvalidState);  // run 0 is under way: finish it first
  CHECK(study.finish({2.5}) == std::vector<double>{2.5});
  CHECK(study.records().empty());
  CHECK(study.next() == 1);
  CHECK(study.result(0) == std::vector<double>{2.5});
  CHECK_INVALID(study.result(1), "'run' (1) must be a finished run");
  CHECK(study.exit_code() == 0);

  hsgd::Study forgetful({.keep_records = false, .out = nullptr});
  hsgd::Engine other(hsgd::Topology::local_sgd(6, 2), noisy_quadratics(6, 3, 1), hsgd::UniformSampler(2), options_with(8));
  auto other_probe = hsgd::make_probe(other, {.gradient_every = 4}, forgetful);
  REQUIRE(forgetful.run(other, other_probe).has_value());
  CHECK(forgetful.records().empty());
}

TEST_CASE("study: options are checked, naming the field", "[study]") {
  CHECK_INVALID(hsgd::Study({.levels = -1}), "'levels' (-1) must be non-negative");
  CHECK_INVALID(hsgd::Study({.checkpoint_every = -2}), "'checkpoint_every' (-2) must be non-negative");
  CHECK_INVALID(hsgd::Study({.keep = 0}), "'keep' (0) must be in [1, 1000]");
  CHECK_INVALID((hsgd::Study({.csv = "same", .checkpoint = "same"})),
                "'checkpoint' and 'csv' (same) must name different files");
  CHECK_INVALID((hsgd::Study({.settings = {{"", 1}}})), "'settings' must have names");
  CHECK_NOTHROW(hsgd::StudyOptions{}.validate());
}
