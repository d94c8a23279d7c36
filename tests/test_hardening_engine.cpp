// Hardening of the Engine and the Topology: the thread pool, sizes of everything passed in,
// moved-from objects, arithmetic at the edges, numbers, the state after a failed step, the order
// observers run in, objectives with their own starting point, and plug-ins given by role.

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <limits>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include <hsgd/hsgd.hpp>

using Catch::Matchers::Contains;
using hsgd::Index;

namespace {

using Vec = hsgd::Vector<double>;
using Mat = hsgd::Matrix<double>;

constexpr double nan_value = std::numeric_limits<double>::quiet_NaN();
constexpr double inf_value = std::numeric_limits<double>::infinity();
constexpr Index max_index = std::numeric_limits<Index>::max();

hsgd::Options options_with(Index steps = 20, Index threads = 1) {
  hsgd::Options options;
  options.steps = steps;
  options.learning_rate = 0.1;
  options.seed = 5;
  options.threads = threads;
  return options;
}

std::vector<hsgd::Quadratic<double>> quadratics(Index workers, Index dimension = 3) {
  std::vector<hsgd::Quadratic<double>> shards;
  for (Index j = 0; j < workers; ++j) {
    hsgd::Rng rng = hsgd::make_stream(17, hsgd::StreamKind::user, static_cast<std::uint64_t>(j));
    shards.push_back(
        hsgd::Quadratic<double>::isotropic_noisy(1.0, Vec::Constant(dimension, double(j)), 8, 0.5, rng));
  }
  return shards;
}

auto quadratic_engine(Index steps = 20, Index threads = 1) {
  return hsgd::Engine(hsgd::Topology::two_level(8, 2, 2, 4), quadratics(8), hsgd::UniformSampler(2),
                      options_with(steps, threads), hsgd::RandomGrouping{hsgd::RandomGrouping::Redraw::every_global_aggregation});
}

/// (1/2)||x||^2 that throws from its `throw_at`-th minibatch gradient on, counted over all
/// workers through a shared counter (the engine runs on one thread here).
struct ThrowingObjective {
  using Scalar = double;
  Index* calls = nullptr;
  Index throw_at = 0;

  [[nodiscard]] Index dimension() const { return 2; }
  [[nodiscard]] Index sample_count() const { return 1; }
  [[nodiscard]] double value(hsgd::ConstVectorRef<double> x) const { return 0.5 * x.squaredNorm(); }
  void gradient(hsgd::ConstVectorRef<double> x, hsgd::VectorRef<double> g) const { g = x; }
  void batch_gradient(hsgd::ConstVectorRef<double> x, std::span<const Index>, hsgd::VectorRef<double> g) const {
    if (++*calls >= throw_at) throw std::runtime_error("the objective's data went away");
    g = x;
  }
};

/// An objective that claims a huge dimension but never touches its model: enough to reach the
/// Engine's size arithmetic without allocating anything.
struct HugeObjective {
  using Scalar = double;
  Index claimed_dimension = max_index / 4;
  [[nodiscard]] Index dimension() const { return claimed_dimension; }
  [[nodiscard]] Index sample_count() const { return 1; }
  [[nodiscard]] double value(hsgd::ConstVectorRef<double>) const { return 0; }
  void gradient(hsgd::ConstVectorRef<double>, hsgd::VectorRef<double> g) const { g.setZero(); }
  void batch_gradient(hsgd::ConstVectorRef<double>, std::span<const Index>, hsgd::VectorRef<double> g) const {
    g.setZero();
  }
};

/// Random grouping that throws at its `throw_at`-th call (the first is the engine's set-up).
struct FailingRegrouping {
  int* calls = nullptr;
  int throw_at = 2;
  void assign(const hsgd::Topology& topology, std::span<Index> slot_to_worker, hsgd::Rng& rng) const {
    if (++*calls >= throw_at) throw std::runtime_error("the grouping service is down");
    hsgd::RandomGrouping{}.assign(topology, slot_to_worker, rng);
  }
  [[nodiscard]] bool regroups_at_global_aggregation() const { return true; }
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

/// Returns NaN at one step and the base rate otherwise.
struct NanRateAt {
  Index bad_step = 3;
  [[nodiscard]] double rate(double base, Index step) const { return step == bad_step ? nan_value : base; }
  void validate() const {}
};

/// Halves the rate every step: in float it underflows to 0 long before it does in double.
struct Halving {
  [[nodiscard]] double rate(double base, Index step) const { return base * std::ldexp(1.0, -static_cast<int>(step)); }
  void validate() const {}
};

}  // namespace

// ---- threads ----------------------------------------------------------------------------------

TEST_CASE("Options refuses absurd thread counts, naming 'threads'", "[hardening][threads]") {
  hsgd::Options options;
  for (const Index threads : {Index{10'000}, Index{1'000'000}, Index{-1}, max_index}) {
    options.threads = threads;
    CHECK_THROWS_WITH(options.validate(), Contains("'threads' (" + std::to_string(threads) + ") must be in [0, 1024]"));
  }
  options.threads = hsgd::Options::max_threads;
  CHECK_NOTHROW(options.validate());
}

TEST_CASE("More threads than workers are clamped to the workers", "[hardening][threads]") {
  auto shards = quadratics(3);
  hsgd::Engine engine(hsgd::Topology::local_sgd(3, 2), std::move(shards), hsgd::UniformSampler(2), options_with(6, 64));
  CHECK(engine.threads() == 3);
  engine.run();
  CHECK(engine.step_count() == 6);

  auto zero = options_with(6, 0);  // one per hardware thread, at most one per worker
  hsgd::Engine automatic(hsgd::Topology::local_sgd(3, 2), quadratics(3), hsgd::UniformSampler(2), zero);
  const auto hardware = std::max<Index>(1, static_cast<Index>(std::thread::hardware_concurrency()));
  CHECK(automatic.threads() == std::min<Index>(3, hardware));
}

TEST_CASE("A pool whose threads the system refuses throws ResourceError instead of hanging", "[hardening][threads]") {
  // A child process lowers its own process limit (RLIMIT_NPROC counts threads too) so that no
  // new thread can start, then builds an engine that wants 4. Root ignores the limit, so a root
  // child first becomes 'nobody'. The parent waits at most 60 s: the old pool hung forever here.
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) _exit(3);
    const rlimit none{1, 1};
    if (setrlimit(RLIMIT_NPROC, &none) != 0) _exit(4);
    int code = 1;
    try {
      hsgd::Engine engine(hsgd::Topology::local_sgd(8, 2), quadratics(8), hsgd::UniformSampler(2), options_with(4, 4));
      code = 5;  // started: the limit did not bite
    } catch (const hsgd::ResourceError& error) {
      const std::string message = error.what();
      code = message.find("could not start thread 2 of the 4 that 'threads' asks for") != std::string::npos ? 0 : 6;
    } catch (...) {
      code = 7;
    }
    _exit(code);
  }
  int status = 0;
  pid_t done = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while ((done = waitpid(child, &status, WNOHANG)) == 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  if (done == 0) {
    kill(child, SIGKILL);
    waitpid(child, &status, 0);
    FAIL("the engine hung when its pool could not start a thread");
  }
  REQUIRE(WIFEXITED(status));
  INFO("child exit code (0: ResourceError with the expected message; 5: the limit did not bite)");
  CHECK(WEXITSTATUS(status) == 0);
}

// ---- memory safety ----------------------------------------------------------------------------

TEST_CASE("Engine entry points check the size of every vector they take", "[hardening][memory]") {
  auto engine = quadratic_engine();
  const Vec wrong = Vec::Zero(5);
  Vec right = Vec::Zero(3);
  Vec scratch = Vec::Zero(3);
  Vec small = Vec::Zero(2);
  CHECK_THROWS_WITH(engine.loss(wrong), Contains("'x' has 5 coordinates but the model has 3"));
  CHECK_THROWS_WITH(engine.gradient(wrong), Contains("'x' has 5 coordinates but the model has 3"));
  CHECK_THROWS_WITH(engine.gradient(wrong, right, scratch), Contains("'x' has 5 coordinates"));
  CHECK_THROWS_WITH(engine.gradient(right, small, scratch), Contains("'out' has 2 coordinates"));
  CHECK_THROWS_WITH(engine.gradient(right, scratch, small), Contains("'scratch' has 2 coordinates"));
  CHECK_THROWS_WITH(engine.global_average(small), Contains("'out' has 2 coordinates"));
  CHECK_THROWS_WITH(engine.set_model(wrong), Contains("'x0' has 5 coordinates"));
  CHECK_THROWS_WITH(engine.set_model(1, wrong), Contains("'x' has 5 coordinates"));
  CHECK_NOTHROW(engine.global_average(right));
}

TEST_CASE("Engine entry points check every index they take", "[hardening][memory]") {
  auto engine = quadratic_engine();
  CHECK_THROWS_WITH(engine.model(8), Contains("'worker' (8) must be in [0, 8)"));
  CHECK_THROWS_WITH(engine.model(-1), Contains("'worker' (-1) must be in [0, 8)"));
  CHECK_THROWS_WITH(engine.worker(9), Contains("'worker' (9)"));
  CHECK_THROWS_WITH(engine.participates(8), Contains("'worker' (8)"));
  CHECK_THROWS_WITH(engine.unit_of(0, 3), Contains("'level' (3) must be in [1, 2]"));
  CHECK_THROWS_WITH(engine.unit_of(12, 1), Contains("'worker' (12)"));
  CHECK_THROWS_WITH(engine.server(0, 0), Contains("'level' (0) must be in [1, 2]"));
  CHECK_THROWS_WITH(engine.server(3, 0), Contains("'level' (3) must be in [1, 2]"));
  CHECK_THROWS_WITH(engine.server(1, 2), Contains("'unit' (2) must be in [0, 2)"));
  CHECK_THROWS_WITH(engine.units(0), Contains("'level' (0)"));
  CHECK(engine.server(2, 0).members().size() == 8);
}

// ---- moved-from and self-moved objects ----------------------------------------------------------

TEST_CASE("A moved-from Topology is empty and the Engine refuses it", "[hardening][moved]") {
  auto topology = hsgd::Topology::two_level(8, 2, 2, 4);
  const hsgd::Topology taken = std::move(topology);
  CHECK(taken.levels() == 2);
  CHECK(topology.levels() == 0);  // NOLINT(bugprone-use-after-move): the state under test
  CHECK(topology.workers() == 0);
  CHECK_THROWS_WITH(hsgd::Engine(topology, quadratics(8), hsgd::UniformSampler(2), options_with()),
                    Contains("'topology' has 0 workers and 0 levels: it is empty (was it moved from?)"));
}

TEST_CASE("Topology survives being moved onto itself", "[hardening][moved]") {
  auto topology = hsgd::Topology::two_level(std::vector<Index>{3, 5}, 2, 6);
  auto& same = topology;
  topology = std::move(same);
  CHECK(topology.workers() == 8);
  CHECK(topology.levels() == 2);
  CHECK(topology.unit_size(1, 1) == 5);
}

TEST_CASE("A moved-from Engine throws InvalidState on use", "[hardening][moved]") {
  auto engine = quadratic_engine();
  auto taken = std::move(engine);
  CHECK(taken.step() >= 0);
  const Vec x = Vec::Zero(3);
  // NOLINTBEGIN(bugprone-use-after-move): the state under test
  CHECK_THROWS_AS(engine.step(), hsgd::InvalidState);
  CHECK_THROWS_WITH(engine.run(), Contains("this engine was moved from"));
  CHECK_THROWS_AS(engine.dimension(), hsgd::InvalidState);
  CHECK_THROWS_AS(engine.workers(), hsgd::InvalidState);
  CHECK_THROWS_AS(engine.loss(x), hsgd::InvalidState);
  CHECK_THROWS_AS(engine.gradient(x), hsgd::InvalidState);
  CHECK_THROWS_AS(engine.global_average(), hsgd::InvalidState);
  CHECK_THROWS_AS(engine.model(0), hsgd::InvalidState);
  CHECK_THROWS_AS(engine.set_model(x), hsgd::InvalidState);
  // NOLINTEND(bugprone-use-after-move)
}

TEST_CASE("An Engine moved onto itself, or onto another, goes on with the same bits", "[hardening][moved]") {
  auto reference = quadratic_engine(40);
  auto engine = quadratic_engine(40);
  for (int t = 0; t < 7; ++t) {
    reference.step();
    engine.step();
  }
  auto& same = engine;
  engine = std::move(same);
  auto other = quadratic_engine(3);
  other = std::move(engine);
  reference.run();
  other.run();
  CHECK(other.step_count() == 40);
  CHECK(other.models() == reference.models());
  CHECK(std::vector<Index>(other.slot_to_worker().begin(), other.slot_to_worker().end()) ==
        std::vector<Index>(reference.slot_to_worker().begin(), reference.slot_to_worker().end()));
}

// ---- arithmetic at the edges ------------------------------------------------------------------

TEST_CASE("Group sizes whose sum overflows are refused before they overflow", "[hardening][overflow]") {
  CHECK_THROWS_WITH(hsgd::Topology::two_level(std::vector<Index>{max_index, 1}, 2, 4),
                    Contains("'group_sizes' add up to more than"));
  using Level = hsgd::Topology::Level;
  CHECK_THROWS_WITH(hsgd::Topology(4, {Level{2, {2, max_index}}, Level{4, {4}}}),
                    Contains("the units of level 1 hold more than 9223372036854775807 workers in all, not 'workers' (4)"));
  CHECK_THROWS_WITH(hsgd::Topology(4, {Level{2, {max_index, max_index}}, Level{4, {4}}}),
                    Contains("hold more than 9223372036854775807 workers in all"));
  CHECK_THROWS_WITH(hsgd::Topology(4, {Level{2, {2, 3}}, Level{4, {4}}}),
                    Contains("the units of level 1 hold 5 workers in all, not 'workers' (4)"));
}

TEST_CASE("A model matrix larger than memory can address is refused", "[hardening][overflow]") {
  std::vector<HugeObjective> shards(8);
  CHECK_THROWS_WITH(hsgd::Engine(hsgd::Topology::local_sgd(8, 2), std::move(shards), hsgd::UniformSampler(1),
                                 options_with()),
                    Contains("more than memory can address"));
}

// ---- numbers ----------------------------------------------------------------------------------

TEST_CASE("set_model refuses non-finite values, naming the coordinate", "[hardening][numbers]") {
  auto engine = quadratic_engine();
  CHECK_THROWS_WITH(engine.set_model(Vec{{0.0, nan_value, 1.0}}), Contains("'x0' must be finite, but coordinate 1 is nan"));
  CHECK_THROWS_WITH(engine.set_model(2, Vec{{0.0, 1.0, -inf_value}}), Contains("'x' must be finite, but coordinate 2 is -inf"));
  CHECK(engine.models().allFinite());
}

TEST_CASE("A float engine checks the learning rate after converting it to float", "[hardening][numbers]") {
  const auto float_shards = [] {
    std::vector<hsgd::Quadratic<float>> shards;
    for (int j = 0; j < 4; ++j)
      shards.push_back(hsgd::Quadratic<float>::from_samples(hsgd::Vector<float>::Ones(2), hsgd::Matrix<float>::Zero(2, 3)));
    return shards;
  };
  for (const double rate : {1e-50, 1e39}) {
    auto options = options_with();
    options.learning_rate = rate;
    CHECK_NOTHROW(options.validate());  // fine as a double
    CHECK_THROWS_WITH(hsgd::Engine(hsgd::Topology::local_sgd(4, 2), float_shards(), hsgd::UniformSampler(1), options),
                      Contains("'learning_rate' (" + fmt::format("{}", rate) + ") must be finite and positive in the model's scalar type"));
  }
  // A schedule that decays below float's range is caught at the step where it rounds to 0.
  auto options = options_with(400);
  hsgd::Engine engine(hsgd::Topology::local_sgd(4, 2), float_shards(), hsgd::UniformSampler(1), options, Halving{});
  CHECK_THROWS_WITH(engine.run(), Contains("the learning rate at step 147"));
  CHECK(engine.step_count() == 146);
}

TEST_CASE("Options::validate refuses out-of-range enum values", "[hardening][numbers]") {
  hsgd::Options options;
  options.weighting = static_cast<hsgd::Weighting>(7);
  CHECK_THROWS_WITH(options.validate(), Contains("'weighting' (7) must be Weighting::uniform or Weighting::data_size"));
  options.weighting = hsgd::Weighting::data_size;
  options.warmup_mode = static_cast<hsgd::WarmupMode>(-1);
  CHECK_THROWS_WITH(options.validate(), Contains("'warmup_mode' (-1) must be"));
}

// ---- the state after a failure ----------------------------------------------------------------

TEST_CASE("After a NaN the engine keeps its models and refuses to step, saying where it failed", "[hardening][failure]") {
  // With gamma = 1e10, worker 3's model of 1e300 steps to about -1e310: inf. The others stay finite.
  auto options = options_with(50);
  options.learning_rate = 1e10;
  hsgd::Engine engine(hsgd::Topology::two_level(8, 2, 2, 4), quadratics(8), hsgd::UniformSampler(2), options);
  engine.set_model(3, Vec::Constant(3, 1e300));
  CHECK(engine.failure().empty());
  CHECK_THROWS_AS(engine.step(), hsgd::NumericalError);
  CHECK(engine.step_count() == 1);
  CHECK_THAT(engine.failure(), Contains("failed at step 1: non-finite model at step 1, worker 3, level 0"));
  CHECK_THROWS_WITH(engine.step(), Contains("failed at step 1: non-finite model") && Contains("cannot step again"));
  CHECK_THROWS_AS(engine.run(), hsgd::InvalidState);
  CHECK(engine.step_count() == 1);
  CHECK_FALSE(engine.model(3).allFinite());  // kept for inspection
  CHECK(engine.model(2).allFinite());
}

TEST_CASE("A throwing objective leaves the engine failed at that step", "[hardening][failure]") {
  Index calls = 0;
  std::vector<ThrowingObjective> shards(4, ThrowingObjective{&calls, 4 * 5 + 2});  // worker 1 at step 6
  hsgd::Engine engine(hsgd::Topology::local_sgd(4, 2), std::move(shards), hsgd::UniformSampler(1), options_with(10));
  CHECK_THROWS_WITH(engine.run(), Contains("the objective's data went away"));
  CHECK(engine.step_count() == 6);
  CHECK_THROWS_WITH(engine.step(), Contains("failed at step 6: the objective's data went away"));
}

TEST_CASE("A throwing observer leaves the engine failed after its step", "[hardening][failure]") {
  auto engine = quadratic_engine(30);
  auto fussy = hsgd::every(5, [](const auto& run) {
    if (run.step_count() == 10) throw std::runtime_error("the disk is full");
  });
  CHECK_THROWS_WITH(engine.run(fussy), Contains("the disk is full"));
  CHECK(engine.step_count() == 10);
  CHECK_THROWS_WITH(engine.run(), Contains("failed at step 10: the disk is full"));
}

TEST_CASE("A failed re-draw leaves the grouping in force untouched and the engine failed", "[hardening][failure]") {
  int calls = 0;
  hsgd::Engine engine(hsgd::Topology::two_level(8, 2, 2, 4), quadratics(8), hsgd::UniformSampler(2), options_with(),
                      FailingRegrouping{&calls, 3});
  for (int t = 0; t < 4; ++t) engine.step();  // the global round at step 4 re-draws (call 2)
  const std::vector<Index> before(engine.slot_to_worker().begin(), engine.slot_to_worker().end());
  std::vector<Index> units_before;
  for (Index j = 0; j < 8; ++j) units_before.push_back(engine.unit_of(j, 1));
  for (int t = 0; t < 3; ++t) engine.step();
  CHECK_THROWS_WITH(engine.step(), Contains("the grouping service is down"));
  CHECK(std::vector<Index>(engine.slot_to_worker().begin(), engine.slot_to_worker().end()) == before);
  for (Index j = 0; j < 8; ++j) CHECK(engine.unit_of(j, 1) == units_before[static_cast<std::size_t>(j)]);
  CHECK_THROWS_WITH(engine.step(), Contains("failed at step 8: the grouping service is down"));
}

TEST_CASE("A refused learning rate leaves the engine exactly as before the step", "[hardening][failure]") {
  hsgd::Engine engine(hsgd::Topology::two_level(8, 2, 2, 4), quadratics(8), hsgd::UniformSampler(2), options_with(),
                      NanRateAt{3});
  engine.step();
  engine.step();
  const Mat models = engine.models();
  CHECK_THROWS_WITH(engine.step(), Contains("the learning rate at step 3 (nan"));
  CHECK(engine.step_count() == 2);
  CHECK(engine.models() == models);
  CHECK(engine.failure().empty());
}

// ---- observers --------------------------------------------------------------------------------

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

// ---- objectives with their own starting point ----------------------------------------------------

TEST_CASE("The engine starts from the objective's own initial model when it has one", "[hardening][initial]") {
  hsgd::GaussianMixtureOptions mixture;
  mixture.samples = 64;
  mixture.dimension = 3;
  mixture.classes = 2;
  mixture.seed = 2;
  const auto data = hsgd::make_gaussian_mixture(mixture);
  const auto partition = hsgd::partition_iid(data, hsgd::IidPartitionOptions{.workers = 4});
  auto shards = hsgd::make_tanh_network_shards(data, partition, 4);
  auto options = options_with(4);
  hsgd::Rng rng = hsgd::make_stream(options.seed, hsgd::StreamKind::initial_model, 0);
  const auto expected = shards.front().initial_model(rng);
  hsgd::Engine engine(hsgd::Topology::local_sgd(4, 2), std::move(shards), hsgd::UniformSampler(4), options);
  for (Index j = 0; j < 4; ++j) CHECK(engine.model(j) == expected);
  CHECK(expected.squaredNorm() > 0);
  CHECK(engine.gradient(engine.global_average()).squaredNorm() > 0);  // not the saddle at 0

  hsgd::Engine plain(hsgd::Topology::local_sgd(4, 2), quadratics(4), hsgd::UniformSampler(2), options);
  CHECK(plain.models().isZero(0));  // objectives without the hook still start at 0
}

// ---- plug-ins by role -------------------------------------------------------------------------

TEST_CASE("Plug-ins can be given alone and in any order", "[hardening][plugins]") {
  const auto topology = hsgd::Topology::two_level(8, 2, 2, 4);
  const hsgd::RandomGrouping grouping{hsgd::RandomGrouping::Redraw::every_global_aggregation};
  hsgd::Engine only_grouping(topology, quadratics(8), hsgd::UniformSampler(2), options_with(), grouping);
  static_assert(std::is_same_v<decltype(only_grouping),
                               hsgd::Engine<hsgd::Quadratic<double>, hsgd::UniformSampler, hsgd::Sgd, hsgd::ConstantRate,
                                            hsgd::RandomGrouping>>);
  hsgd::Engine spelled(topology, quadratics(8), hsgd::UniformSampler(2), options_with(), hsgd::Sgd{},
                       hsgd::ConstantRate{}, grouping);
  only_grouping.run();
  spelled.run();
  CHECK(only_grouping.models() == spelled.models());

  const hsgd::Momentum momentum{.momentum = 0.5};
  hsgd::Engine shuffled(topology, quadratics(8), hsgd::UniformSampler(2), options_with(), grouping, hsgd::StepDecay{},
                        momentum);
  static_assert(std::is_same_v<decltype(shuffled), hsgd::Engine<hsgd::Quadratic<double>, hsgd::UniformSampler,
                                                                hsgd::Momentum, hsgd::StepDecay, hsgd::RandomGrouping>>);
  hsgd::Engine ordered(topology, quadratics(8), hsgd::UniformSampler(2), options_with(), momentum, hsgd::StepDecay{},
                       grouping);
  shuffled.run();
  ordered.run();
  CHECK(shuffled.models() == ordered.models());
  CHECK_FALSE(shuffled.models() == spelled.models());
}

// ---- the parts an Engine is made of, used on their own ------------------------------------------

TEST_CASE("Samplers used before bind throw instead of reading nothing", "[hardening][memory]") {
  hsgd::Rng rng = hsgd::make_stream(1, hsgd::StreamKind::user, 0);
  hsgd::UniformSampler uniform(4);
  CHECK_THROWS_WITH(uniform.next(rng), Contains("call bind(sample_count) before next()"));
  hsgd::ShuffledSampler shuffled(4);
  CHECK_THROWS_WITH(shuffled.next(rng), Contains("call bind(sample_count) before next()"));
  const hsgd::FullBatchSampler full;
  CHECK_THROWS_WITH(full.next(rng), Contains("call bind(sample_count) before next()"));
  uniform.bind(10);
  CHECK(uniform.next(rng).size() == 4);
}

TEST_CASE("A Server checks its members and the matrices it averages", "[hardening][memory]") {
  CHECK_THROWS_WITH(hsgd::Server<double>(1, 0, 0), Contains("'dimension' (0) must be positive"));
  hsgd::Server<double> server(1, 0, 2);
  const std::vector<double> weights{1.0, 1.0, 1.0};
  const std::vector<Index> strangers{0, 3};
  CHECK_THROWS_WITH(server.set_members(strangers, weights), Contains("worker 3 must be in [0, 3)"));
  Mat models = Mat::Ones(2, 3);
  CHECK_THROWS_WITH(server.aggregate(models), Contains("'models' is 2 x 3 but the server needs 2 x 0"));
  const std::vector<Index> members{0, 2};
  server.set_members(members, weights);
  Mat narrow = Mat::Ones(2, 2);
  CHECK_THROWS_WITH(server.aggregate(narrow), Contains("'models' is 2 x 2 but the server needs 2 x 3"));
  CHECK_THROWS_WITH(server.draw_participants(1.5), Contains("'fraction' (1.5) must be in (0, 1]"));
  models(0, 0) = 3.0;
  server.aggregate(models);
  CHECK(models(0, 2) == 2.0);
}

TEST_CASE("The schedule is 1-indexed and checks its step and mode", "[hardening][memory]") {
  const hsgd::Schedule schedule(hsgd::Topology::two_level(4, 2, 2, 4));
  CHECK_THROWS_WITH(schedule.level_after(0), Contains("'step' (0) must be at least 1"));
  CHECK(schedule.level_after(4) == 2);
  CHECK_THROWS_WITH(hsgd::Schedule(hsgd::Topology::local_sgd(4, 2), 0, static_cast<hsgd::WarmupMode>(9)),
                    Contains("'warmup_mode' (9) must be"));
}

TEST_CASE("Momentum refuses an out-of-range state rule", "[hardening][numbers]") {
  hsgd::Momentum momentum;
  momentum.at_aggregation = static_cast<hsgd::StateAtAggregation>(5);
  CHECK_THROWS_WITH(momentum.validate(), Contains("'at_aggregation' (5) must be"));
}
