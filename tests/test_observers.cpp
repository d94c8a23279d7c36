// Observers (their hooks and the order they run in) and the run summary.

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "support.hpp"

using namespace test;

namespace {

struct Event {
  Index step;
  Index level;  // 0 for after_step
  bool operator==(const Event&) const = default;
};

struct Recorder {
  std::vector<Event> events;
  template <class Run>
  void after_step(const Run& run) { events.push_back({run.step_count(), 0}); }
  template <class Run>
  void after_aggregation(const Run& run, Index level) { events.push_back({run.step_count(), level}); }
};

struct StepsOnly {
  Index calls = 0;
  template <class Run>
  void after_step(const Run&) { ++calls; }
};

struct AggregationsOnly {
  std::vector<Index> levels;
  template <class Run>
  void after_aggregation(const Run&, Index level) { levels.push_back(level); }
};

struct StopAt {
  Index step;
  template <class Run>
  bool after_step(const Run& run) const { return run.step_count() == step; }
};

/// Logs (id, step) after every step and (10 id + level, step) after every aggregation.
struct Logger {
  int id;
  std::vector<std::pair<int, Index>>* log;
  template <class Run>
  void after_step(const Run& run) {
    log->emplace_back(id, run.step_count());
  }
  template <class Run>
  void after_aggregation(const Run& run, Index level) {
    log->emplace_back(10 * id + static_cast<int>(level), run.step_count());
  }
};

auto small_engine(Index steps) {
  return hsgd::Engine(hsgd::Topology(6, {{2, {2, 4}}, {4, {6}}}), noisy_quadratics(6, 2, 1), hsgd::UniformSampler(2),
                      options(1, steps));
}

}  // namespace

TEST_CASE("Observers see every step and every aggregation, aggregation first", "[observer]") {
  auto engine = small_engine(12);
  Recorder recorder;
  engine.run(recorder);
  std::vector<Event> expected;
  for (Index t = 1; t <= 12; ++t) {
    if (const Index level = expected_level({2, 4}, t); level > 0) expected.push_back({t, level});
    expected.push_back({t, 0});
  }
  CHECK(recorder.events == expected);
}

TEST_CASE("Observers with one hook, several observers at once", "[observer]") {
  auto engine = small_engine(8);
  StepsOnly steps;
  AggregationsOnly aggregations;
  Recorder recorder;
  engine.run(steps, aggregations, recorder);
  CHECK(steps.calls == 8);
  CHECK(aggregations.levels == std::vector<Index>{1, 2, 1, 2});
  CHECK(recorder.events.size() == 12);
}

TEST_CASE("An observer returning true stops the run after that step", "[observer]") {
  auto engine = small_engine(100);
  StepsOnly steps;
  const StopAt stop{7};  // const, with a const hook: allowed
  const hsgd::Summary summary = engine.run(steps, stop);
  CHECK(engine.step_count() == 7);
  CHECK(summary.steps == 7);
  CHECK(summary.stopped_by_observer);
  CHECK(steps.calls == 7);  // the other observer still saw step 7
  // run() continues from where it stopped.
  const hsgd::Summary rest = engine.run();
  CHECK(rest.steps == 100);
  CHECK_FALSE(rest.stopped_by_observer);
}

TEST_CASE("hsgd::every calls back on multiples of its period and can stop the run", "[observer]") {
  auto engine = small_engine(50);
  std::vector<Index> seen;
  auto every_ten = hsgd::every(10, [&seen](const auto& run) { seen.push_back(run.step_count()); });
  auto stop_at_30 = hsgd::every(15, [](const auto& run) { return run.step_count() == 30; });
  engine.run(every_ten, stop_at_30);
  CHECK(seen == std::vector<Index>{10, 20, 30});
}

TEST_CASE("The summary reports the run and formats through fmt", "[observer][summary]") {
  auto engine = small_engine(12);
  const hsgd::Summary summary = engine.run();
  CHECK(summary.workers == 6);
  CHECK(summary.steps == 12);
  CHECK(summary.periods == std::vector<Index>{2, 4});
  CHECK(summary.aggregations == std::vector<Index>{3, 3});  // level 1 after 2, 6, 10; level 2 after 4, 8, 12
  CHECK(summary.regroupings == 0);
  const Vec average = engine.global_average();
  CHECK(summary.loss == engine.loss(average));
  CHECK(summary.gradient_norm_squared == engine.gradient(average).squaredNorm());
  CHECK(summary.seconds >= 0);
  const std::string report = fmt::format("{}", summary);
  CHECK(report == summary.brief_report());
  CHECK_THAT(report, Catch::Matchers::Contains("12 steps") && Catch::Matchers::Contains("[3, 3]") &&
                         Catch::Matchers::Contains("periods [2, 4]"));
}

TEST_CASE("The engine's global objective is the weighted mean of the shards", "[observer][summary]") {
  auto engine = small_engine(1);
  const Vec x = Vec::LinSpaced(2, -1, 1);
  double loss = 0;
  Vec gradient = Vec::Zero(2);
  for (const auto& shard : engine.shards()) {
    Vec g(2);
    shard.gradient(x, g);
    loss += shard.value(x) / 6.0;
    gradient += g / 6.0;
  }
  CHECK(engine.loss(x) == Approx(loss).epsilon(1e-14));
  CHECK(relative_difference(engine.gradient(x), gradient) < 1e-14);
}

TEST_CASE("Observers run in the order given, every step and every aggregation", "[hardening][observers]") {
  std::vector<std::pair<int, Index>> log;
  auto engine = quadratic_engine(8);
  engine.run(Logger{3, &log}, Logger{1, &log}, Logger{2, &log});
  std::vector<std::pair<int, Index>> expected;
  for (Index t = 1; t <= 8; ++t) {
    const auto level = static_cast<int>(engine.schedule().level_after(t));
    if (level > 0)
      for (const int id : {3, 1, 2}) expected.emplace_back(10 * id + level, t);
    for (const int id : {3, 1, 2}) expected.emplace_back(id, t);
  }
  CHECK(log == expected);
}

TEST_CASE("A recorder after a probe sees the probe's measurement of the same step", "[hardening][observers]") {
  auto engine = quadratic_engine(12);
  hsgd::MemoryRecorder memory;
  hsgd::ProbeOptions probe_options;
  probe_options.gradient_every = 3;
  auto probe = hsgd::make_probe(engine, probe_options, memory);
  std::vector<Index> seen;
  auto reader = hsgd::every(3, [&](const auto& run) {
    REQUIRE_FALSE(memory.rows.empty());
    if (memory.rows.back().step == run.step_count()) seen.push_back(run.step_count());
  });
  engine.run(probe, reader);
  CHECK(seen == std::vector<Index>{3, 6, 9, 12});
}
