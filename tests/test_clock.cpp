// Simulated time: the closed form of a clock with constant costs (T c plus each level's rounds
// times their cost), stragglers, the split along the critical path, and that a clock never changes
// a bit of the run.

#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "support.hpp"

using namespace test;
using Catch::Matchers::Contains;

namespace {

constexpr double compute = 0.01;  // c, seconds per local step
constexpr Index dimension = 3;
constexpr double model_bytes = dimension * sizeof(double);

hsgd::ClockOptions edge_cloud() {
  hsgd::ClockOptions clock;
  clock.compute.per_step = compute;
  clock.levels = {{{1e-3, 1e6}, hsgd::RoundPattern::parameter_server}, {{0.05, 1e5}, hsgd::RoundPattern::parameter_server}};
  return clock;
}

/// |a - b| within a few roundings of the larger.
bool close(double a, double b) { return std::abs(a - b) <= 1e-12 * std::max(std::abs(a), std::abs(b)); }

template <class Engine>
void check_split(const Engine& engine) {
  const hsgd::ClockReading r = engine.clock().reading();
  double total = r.compute + r.wait - r.discarded;
  for (const double seconds : r.communication) total += seconds;
  CHECK(close(total, r.seconds));
}

}  // namespace

TEST_CASE("clock: two levels take T c + (T/I - T/G) t_1 + (T/G) t_2 (the closed form of constant costs)", "[clock]") {
  for (const Index steps : {24, 25, 31}) {  // T a multiple of G, and not
    CAPTURE(steps);
    const Index local = 2, global = 6;
    hsgd::Engine engine(hsgd::Topology::two_level(8, 2, local, global), noisy_quadratics(8, dimension, 1),
                        hsgd::UniformSampler(2), options(1, steps), hsgd::SimulatedClock(edge_cloud()));
    const hsgd::Summary summary = engine.run();
    const double t1 = 1e-3 + 2 * 4 * model_bytes / 1e6;   // a group of 4 over the parameter-server link
    const double t2 = 0.05 + 2 * 8 * model_bytes / 1e5;   // all 8 over the global link
    const auto local_rounds = static_cast<double>(steps / local - steps / global);
    const auto global_rounds = static_cast<double>(steps / global);
    const double expected = static_cast<double>(steps) * compute + local_rounds * t1 + global_rounds * t2;
    CHECK(close(summary.simulated_seconds, expected));
    const hsgd::ClockReading r = engine.clock().reading();
    CHECK(close(r.compute, static_cast<double>(steps) * compute));
    CHECK(r.wait == 0);
    CHECK(close(r.communication[0], local_rounds * t1));
    CHECK(close(r.communication[1], global_rounds * t2));
    for (Index j = 0; j < 8; ++j) CHECK(engine.clock().worker_seconds(j) == r.seconds);  // equal speeds: in step
  }
}

TEST_CASE("clock: N levels take T c + sum_l (T/P_l - T/P_{l+1}) t_l, ring all-reduce included", "[clock]") {
  hsgd::ClockOptions clock;
  clock.compute.per_sample = 1e-3;  // times the batch of 4
  clock.levels = {{{2e-4, 1e7}, hsgd::RoundPattern::ring_allreduce},
                  {{1e-3, 1e6}, hsgd::RoundPattern::ring_allreduce},
                  {{0.02, 1e5}, hsgd::RoundPattern::parameter_server}};
  const hsgd::Topology topology(12, {{2, {3, 3, 3, 3}}, {4, {6, 6}}, {8, {12}}});
  const Index steps = 30;
  hsgd::Engine engine(topology, noisy_quadratics(12, dimension, 2), hsgd::UniformSampler(4), options(2, steps),
                      hsgd::SimulatedClock(clock));
  engine.run();
  const auto ring = [&](double p, double latency, double bandwidth) {
    return 2 * (p - 1) * (latency + model_bytes / (p * bandwidth));
  };
  const std::vector<double> round{ring(3, 2e-4, 1e7), ring(6, 1e-3, 1e6), 0.02 + 2 * 12 * model_bytes / 1e5};
  const std::vector<Index> periods{2, 4, 8};
  double expected = static_cast<double>(steps) * 4 * 1e-3;
  for (std::size_t l = 0; l < 3; ++l) {
    const Index higher = l + 1 < periods.size() ? steps / periods[l + 1] : 0;
    expected += static_cast<double>(steps / periods[l] - higher) * round[l];
  }
  CHECK(close(engine.clock().seconds(), expected));
  check_split(engine);
  CHECK(hsgd::LevelCost{{1.0, 1.0}, hsgd::RoundPattern::ring_allreduce}.round_seconds(1, 1e9) == 0);  // alone: no ring
}

TEST_CASE("clock: a straggler delays only its own group until the next global round", "[clock]") {
  hsgd::ClockOptions clock = edge_cloud();
  std::vector<double> speeds(8, 1.0);
  speeds[1] = 3;  // worker 1, in group 0 (workers 0-3), is three times as slow
  clock.speeds = hsgd::WorkerSpeeds::trace(speeds);
  hsgd::Engine engine(hsgd::Topology::two_level(8, 2, 2, 8), noisy_quadratics(8, dimension, 3), hsgd::UniformSampler(2),
                      options(3, 16), hsgd::SimulatedClock(clock));
  const double t1 = 1e-3 + 2 * 4 * model_bytes / 1e6;
  const double t2 = 0.05 + 2 * 8 * model_bytes / 1e5;
  std::vector<std::vector<double>> clocks;  // after each step
  engine.run(hsgd::every(1, [&](const auto& run) {
    std::vector<double> now;
    for (Index j = 0; j < 8; ++j) now.push_back(run.clock().worker_seconds(j));
    clocks.push_back(now);
  }));
  // Steps 1..7: group 1 runs at the nominal pace, group 0 at its straggler's; each leaves its
  // level-1 rounds together.
  for (Index t = 2; t <= 6; t += 2) {
    const auto rounds = static_cast<double>(t / 2);
    const auto& now = clocks[static_cast<std::size_t>(t - 1)];
    for (Index j = 0; j < 4; ++j) CHECK(close(now[static_cast<std::size_t>(j)], static_cast<double>(t) * 3 * compute + rounds * t1));
    for (Index j = 4; j < 8; ++j) CHECK(close(now[static_cast<std::size_t>(j)], static_cast<double>(t) * compute + rounds * t1));
  }
  // Step 8: the global round waits for worker 1, and everyone leaves it together.
  const double after_global = 8 * 3 * compute + 3 * t1 + t2;
  for (const double seconds : clocks[7]) CHECK(close(seconds, after_global));
  const hsgd::ClockReading r = engine.clock().reading();
  CHECK(r.wait == 0);  // the critical path is the straggler's group, which never waits
  CHECK(engine.clock().worker_seconds(1) == r.seconds);
  // A fast worker of group 1 waited at each global round for what group 0 took longer.
  check_split(engine);
}

TEST_CASE("clock: a run with a clock has the bits of the run without", "[clock]") {
  hsgd::ClockOptions clock = edge_cloud();
  clock.speeds = hsgd::WorkerSpeeds::log_normal(0.5);
  auto opts = options(4, 40);
  opts.participation = 0.5;
  opts.threads = 2;
  hsgd::Engine plain(hsgd::Topology::two_level(8, 2, 2, 8), noisy_quadratics(8, dimension, 4), hsgd::UniformSampler(2), opts,
                     hsgd::RandomGrouping{});
  hsgd::Engine timed(hsgd::Topology::two_level(8, 2, 2, 8), noisy_quadratics(8, dimension, 4), hsgd::UniformSampler(2), opts,
                     hsgd::RandomGrouping{}, hsgd::SimulatedClock(clock));
  hsgd::MemoryRecorder plain_rows, timed_rows;
  auto plain_probe = hsgd::make_probe(plain, {.gradient_every = 4}, plain_rows);
  auto timed_probe = hsgd::make_probe(timed, {.gradient_every = 4}, timed_rows);
  const hsgd::Summary a = plain.run(plain_probe);
  const hsgd::Summary b = timed.run(timed_probe);
  CHECK(std::memcmp(plain.models().data(), timed.models().data(), sizeof(double) * 24) == 0);
  CHECK(std::memcmp(&a.loss, &b.loss, sizeof(double)) == 0);
  CHECK(std::isnan(a.simulated_seconds));
  CHECK(b.simulated_seconds > 40 * compute * 0.5);  // positive, and at least the median compute
  REQUIRE(plain_rows.rows.size() == timed_rows.rows.size());
  for (std::size_t k = 0; k < plain_rows.rows.size(); ++k) {
    CHECK(std::memcmp(&plain_rows.rows[k].d_glob, &timed_rows.rows[k].d_glob, sizeof(double)) == 0);
    CHECK_FALSE(hsgd::is_measured(plain_rows.rows[k].sim_seconds));
    CHECK(timed_rows.rows[k].sim_seconds > 0);
  }
  CHECK(timed_rows.rows.back().sim_seconds == b.simulated_seconds);
  // Partial participation: those who sat a round out waited; the split still adds up.
  check_split(timed);
}

TEST_CASE("clock: log-normal speeds have median 1 and spread sigma, from the seed alone", "[clock]") {
  const auto speeds = hsgd::WorkerSpeeds::log_normal(0.5).draw(20000, 7);
  double mean = 0, squares = 0;
  for (const double s : speeds) mean += std::log(s);
  mean /= 20000;
  for (const double s : speeds) squares += (std::log(s) - mean) * (std::log(s) - mean);
  const double sigma = std::sqrt(squares / 19999);
  // log s_j ~ N(0, 0.25): the mean's standard error is 0.5 / sqrt(20000) = 0.0035 and the
  // deviation's about 0.5 / sqrt(2 x 20000) = 0.0025; five of each.
  CHECK(std::abs(mean) < 5 * 0.0035);
  CHECK(std::abs(sigma - 0.5) < 5 * 0.0025);
  CHECK(hsgd::WorkerSpeeds::log_normal(0.5).draw(20000, 7) == speeds);
  CHECK(hsgd::WorkerSpeeds::log_normal(0.5).draw(20000, 8) != speeds);
}

TEST_CASE("clock: bad cost models are refused by name", "[clock][validation]") {
  const auto make = [](hsgd::ClockOptions clock, Index workers = 4) {
    return hsgd::Engine(hsgd::Topology::two_level(workers, 2, 2, 4), noisy_quadratics(workers, dimension, 1),
                        hsgd::UniformSampler(1), options(1, 4), hsgd::SimulatedClock(std::move(clock)));
  };
  hsgd::ClockOptions one_level;
  one_level.levels = {{}};
  CHECK_THROWS_WITH(make(one_level), Contains("the clock has round costs for 1 levels but the topology has 2"));
  hsgd::ClockOptions negative;
  negative.compute.per_step = -1;
  CHECK_THROWS_WITH(make(negative), Contains("'per_step' (-1) must be finite and non-negative"));
  hsgd::ClockOptions bad_link = edge_cloud();
  bad_link.levels[1].link.bandwidth = 0;
  CHECK_THROWS_WITH(make(bad_link), Contains("level 2: 'bandwidth' (0) must be positive"));
  hsgd::ClockOptions short_trace;
  short_trace.speeds = hsgd::WorkerSpeeds::trace({1, 2, 3});
  CHECK_THROWS_WITH(make(short_trace), Contains("'factors' holds 3 speed factors but the run has 4 workers"));
  hsgd::ClockOptions zero_speed;
  zero_speed.speeds = hsgd::WorkerSpeeds::trace({1, 0, 1, 1});
  CHECK_THROWS_WITH(make(zero_speed), Contains("'factors'[1] (0) must be finite and positive"));
}

TEST_CASE("clock: a resumed run reads the same clock, and another cost model is refused", "[clock][checkpoint]") {
  const TempDir dir;
  const auto make = [](double latency) {
    hsgd::ClockOptions clock = edge_cloud();
    clock.levels[1].link.latency = latency;
    clock.speeds = hsgd::WorkerSpeeds::log_normal(0.3);
    return hsgd::Engine(hsgd::Topology::two_level(8, 2, 2, 8), noisy_quadratics(8, dimension, 5), hsgd::UniformSampler(2),
                        options(5, 30), hsgd::RandomGrouping{}, hsgd::SimulatedClock(clock));
  };
  auto whole = make(0.05);
  const hsgd::Summary expected = whole.run();
  auto first = make(0.05);
  for (int t = 0; t < 13; ++t) first.step();
  hsgd::save_checkpoint(dir.file("clock.ckpt"), {}, first);
  auto resumed = make(0.05);
  hsgd::load_checkpoint(dir.file("clock.ckpt"), resumed);
  CHECK(resumed.clock().seconds() == first.clock().seconds());
  const hsgd::Summary summary = resumed.run();
  CHECK(std::memcmp(&summary.simulated_seconds, &expected.simulated_seconds, sizeof(double)) == 0);
  auto other = make(0.5);
  CHECK_THROWS_WITH(hsgd::load_checkpoint(dir.file("clock.ckpt"), other),
                    Contains("its engine clock is") && Contains("latency 0.05") && Contains("latency 0.5"));
  auto untimed = hsgd::Engine(hsgd::Topology::two_level(8, 2, 2, 8), noisy_quadratics(8, dimension, 5),
                              hsgd::UniformSampler(2), options(5, 30), hsgd::RandomGrouping{});
  CHECK_THROWS_WITH(hsgd::load_checkpoint(dir.file("clock.ckpt"), untimed), Contains("this run's is none"));
}

TEST_CASE("clock: the CSV has the simulated seconds and their split", "[clock][csv]") {
  const TempDir dir;
  {
    hsgd::Engine engine(hsgd::Topology::two_level(8, 2, 2, 6), noisy_quadratics(8, dimension, 1), hsgd::UniformSampler(2),
                        options(1, 6), hsgd::SimulatedClock(edge_cloud()));
    hsgd::CsvRecorder csv(dir.file("clock.csv"), {});
    auto probe = hsgd::make_probe(engine, {.gradient_every = 0, .model_every = 3}, csv);
    engine.run(probe);
  }
  const auto rows = read_csv_cells(dir.file("clock.csv"));
  REQUIRE(rows.size() == 3);  // header, steps 3 and 6
  CHECK(rows[0][17] == "sim_seconds");
  CHECK(rows[0][19] == "sim_wait_seconds");
  CHECK(rows[0].back() == "sim_comm_level_2");
  const double t1 = 1e-3 + 2 * 4 * model_bytes / 1e6;
  const double t2 = 0.05 + 2 * 8 * model_bytes / 1e5;
  CHECK(close(std::stod(rows[2][17]), 6 * compute + 2 * t1 + t2));  // step 6: rounds at 2 and 4, the global one at 6
  CHECK(close(std::stod(rows[2][18]), 6 * compute));
  CHECK(close(std::stod(rows[2].back()), t2));
}

namespace {

/// Two groups of 4; worker 1 (group 0) and worker 6 (group 1) are the slow ones of `speeds`.
template <class... Plugins>
auto deadline_engine(const hsgd::ClockOptions& clock, Index steps, Plugins... plugins) {
  return hsgd::Engine(hsgd::Topology::two_level(8, 2, 2, 8), noisy_quadratics(8, dimension, 6), hsgd::UniformSampler(2),
                      options(6, steps), hsgd::SimulatedClock(clock), plugins...);
}

hsgd::ClockOptions with_deadline(double level_1_deadline) {
  hsgd::ClockOptions clock = edge_cloud();
  clock.speeds = hsgd::WorkerSpeeds::trace({1, 3, 1, 1, 1, 1, 2.5, 1.2});
  clock.deadlines = {level_1_deadline, std::numeric_limits<double>::infinity()};
  return clock;
}

}  // namespace

TEST_CASE("clock: a deadline leaves out exactly the workers slower than it", "[clock][deadline]") {
  // A period of I = 2 steps takes 2 c s_j = 0.02 s_j; a level-1 deadline of 0.045 s leaves out
  // s_j > 2.25: workers 1 and 6, at each of the level-1 rounds (steps 2, 4, 6), never at the
  // global round (no deadline there).
  auto engine = deadline_engine(with_deadline(0.045), 8);
  auto twin = hsgd::Engine(hsgd::Topology::two_level(8, 2, 8, 8), noisy_quadratics(8, dimension, 6),
                           hsgd::UniformSampler(2), options(6, 8));  // the same local steps, no round before step 8
  engine.step();
  twin.step();
  engine.step();  // the first level-1 round, workers 1 and 6 left out
  twin.step();
  for (Index group = 0; group < 2; ++group) {
    Vec expected = Vec::Zero(dimension);
    Index count = 0;
    for (Index j = 4 * group; j < 4 * group + 4; ++j) {
      if (j == 1 || j == 6) continue;
      expected += twin.model(j);
      ++count;
    }
    expected /= static_cast<double>(count);
    CHECK((engine.server(1, group).model() - expected).norm() <= 1e-14 * expected.norm());
    for (Index j = 4 * group; j < 4 * group + 4; ++j) CHECK(engine.model(j) == engine.server(1, group).model());  // all receive it
  }
  CHECK(engine.last_round_participants() == 6);
  const hsgd::Summary summary = engine.run();
  CHECK(summary.dropped_by_deadlines == 2 * 3);
  CHECK(engine.clock().dropped() == 6);
  // Each level-1 round starts when its last participant is ready (group 0 after 0.02 s, group 1
  // after 0.024 s: worker 7, speed 1.2) and the left-out ones are interrupted there. After three such rounds the global round (no deadline) waits for worker 6's
  // two steps at speed 2.5, the latest, and everyone leaves it together.
  const double t1 = 1e-3 + 2 * 3 * model_bytes / 1e6;  // three participants per round
  const double t2 = 0.05 + 2 * 8 * model_bytes / 1e5;
  const double end = 3 * (0.024 + t1) + 0.05 + t2;
  for (Index j = 0; j < 8; ++j) CHECK(close(engine.clock().worker_seconds(j), end));
  const hsgd::ClockReading r = engine.clock().reading();  // worker 6's path: it never waited
  CHECK(close(r.compute, 4 * 0.05));                      // four periods of 2 steps at speed 2.5
  CHECK(close(r.discarded, 3 * (0.05 - 0.024)));          // three of them cut at the level-1 rounds' start
  CHECK(r.wait == 0);
  CHECK(close(r.communication[0], 3 * t1));
  check_split(engine);
}

TEST_CASE("clock: a global deadline that leaves a whole slow group out interrupts it at the round's start",
          "[clock][deadline]") {
  hsgd::ClockOptions clock = edge_cloud();
  clock.speeds = hsgd::WorkerSpeeds::trace({10, 10, 10, 10, 1, 1, 1, 1});  // group 0 is ten times as slow
  clock.deadlines = {std::numeric_limits<double>::infinity(), 0.1};         // the global round waits 0.1 s at most
  auto engine = deadline_engine(clock, 32);
  const hsgd::Summary summary = engine.run();
  CHECK(summary.dropped_by_deadlines == 4 * 4);  // group 0 misses every global round (steps 8, 16, 24, 32)
  // Group 1 alone sets the pace: per global period 8 steps of c, three level-1 rounds and the global
  // round of its 4 participants; group 0's work is discarded at each global round's start.
  const double t1 = 1e-3 + 2 * 4 * model_bytes / 1e6;
  const double t2 = 0.05 + 2 * 4 * model_bytes / 1e5;
  const double period = 8 * compute + 3 * t1 + t2;
  for (Index j = 0; j < 8; ++j) CHECK(close(engine.clock().worker_seconds(j), 4 * period));
  const hsgd::ClockReading r = engine.clock().reading();
  CHECK(r.discarded == 0);  // the critical path is group 1's, which lost nothing
  check_split(engine);
}

TEST_CASE("clock: a deadline nobody misses changes no bit; nobody ready waits for the first", "[clock][deadline]") {
  auto loose = deadline_engine(with_deadline(1.0), 24, hsgd::RandomGrouping{});
  auto untimed = hsgd::Engine(hsgd::Topology::two_level(8, 2, 2, 8), noisy_quadratics(8, dimension, 6),
                              hsgd::UniformSampler(2), options(6, 24), hsgd::RandomGrouping{});
  const hsgd::Summary a = loose.run();
  untimed.run();
  CHECK(a.dropped_by_deadlines == 0);
  CHECK(std::memcmp(loose.models().data(), untimed.models().data(), sizeof(double) * 8 * dimension) == 0);

  // A deadline shorter than any period: the round waits for the first ready member, and those
  // ready with it take part: workers 0, 2, 3 (speed 1) in group 0, 4 and 5 in group 1.
  auto tight = deadline_engine(with_deadline(1e-6), 2);
  tight.run();
  CHECK(tight.last_round_participants() == 5);
  CHECK(tight.clock().dropped() == 3);

  hsgd::ClockOptions partial = with_deadline(0.05);
  auto opts = options(6, 4);
  opts.participation = 0.5;
  CHECK_THROWS_WITH(hsgd::Engine(hsgd::Topology::two_level(8, 2, 2, 8), noisy_quadratics(8, dimension, 6),
                                 hsgd::UniformSampler(2), opts, hsgd::SimulatedClock(partial)),
                    Contains("deadlines cannot be combined with 'participation' (0.5) < 1"));
  hsgd::ClockOptions bad = edge_cloud();
  bad.deadlines = {0, 1};
  CHECK_THROWS_WITH(hsgd::SimulatedClock(bad), Contains("'deadlines'[0] (0) must be positive"));
}
