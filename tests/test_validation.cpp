// Bad input: every check throws hsgd::InvalidArgument whose message names the parameter, its value
// and the constraint, whether it is an option, a vector or index given to the Engine, a plug-in's
// parameter or an objective's data. Non-finite models stop a run with a NumericalError that says
// exactly where (step, worker, level) the model stopped being finite.

#include <cmath>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "support.hpp"

// The names taken from support.hpp (not all of namespace test: quadratics() here is this file's own).
using Catch::Matchers::Contains;
using Catch::Matchers::Message;
using hsgd::Index;
using test::inf_value;
using test::Mat;
using test::max_double;
using test::max_index;
using test::nan_value;
using test::options_with;
using test::quadratic_engine;
using test::Vec;

namespace {

hsgd::Options quiet_options(Index steps = 10) { return test::options(3, steps, 0.1); }

/// `workers` stochastic quadratics of dimension `dimension` with `samples` sample centres each.
std::vector<hsgd::Quadratic<double>> quadratics(Index workers, Index dimension, Index samples = 4) {
  std::vector<hsgd::Quadratic<double>> shards;
  for (Index j = 0; j < workers; ++j) {
    hsgd::Rng rng = hsgd::make_stream(11, hsgd::StreamKind::user, static_cast<std::uint64_t>(j));
    shards.push_back(hsgd::Quadratic<double>::isotropic_noisy(1.0, Vec::Constant(dimension, double(j)), samples, 0.5, rng));
  }
  return shards;
}

/// f(x) = (1/2)||x||^2 with one sample, except that the shard of worker `bad_worker` returns a NaN
/// gradient from its `bad_from`-th minibatch gradient on. The engine calls batch_gradient once
/// per local step, and each worker has its own copy of its shard, so the call count is the step.
struct PoisonedObjective {
  using Scalar = double;
  Index owner = 0;
  Index bad_worker = 0;
  Index bad_from = 0;
  mutable Index calls = 0;

  [[nodiscard]] Index dimension() const { return 3; }
  [[nodiscard]] Index sample_count() const { return 1; }
  [[nodiscard]] double value(hsgd::ConstVectorRef<double> x) const { return 0.5 * x.squaredNorm(); }
  void gradient(hsgd::ConstVectorRef<double> x, hsgd::VectorRef<double> g) const { g = x; }
  void batch_gradient(hsgd::ConstVectorRef<double> x, std::span<const Index>, hsgd::VectorRef<double> g) const {
    ++calls;
    g = x;
    if (owner == bad_worker && calls >= bad_from) g(1) = nan_value;
  }
};

std::vector<PoisonedObjective> poisoned_shards(Index workers, Index bad_worker, Index bad_from) {
  std::vector<PoisonedObjective> shards;
  for (Index j = 0; j < workers; ++j) shards.push_back(PoisonedObjective{j, bad_worker, bad_from});
  return shards;
}

/// Returns the base rate except at one step, where it returns `bad`.
struct BadRateAt {
  Index bad_step = 4;
  double bad = 0.0;
  [[nodiscard]] double rate(double base, Index step) const { return step == bad_step ? bad : base; }
  void validate() const {}
};

/// Three levels over 4 workers: level 1 = singletons every 2 steps, level 2 = pairs {0,1}, {2,3}
/// every 4 steps, level 3 = all every 8 steps.
hsgd::Topology three_levels() {
  using Level = hsgd::Topology::Level;
  return hsgd::Topology(4, {Level{2, {1, 1, 1, 1}}, Level{4, {2, 2}}, Level{8, {4}}});
}

/// Shards whose gradient is zero everywhere (curvature 0), 3 samples each (weight 3 under
/// Weighting::data_size): local steps never move a model, only aggregation does.
std::vector<hsgd::Quadratic<float>> still_float_shards(Index workers) {
  std::vector<hsgd::Quadratic<float>> shards;
  for (Index j = 0; j < workers; ++j)
    shards.push_back(hsgd::Quadratic<float>::from_samples(hsgd::Vector<float>::Zero(2), hsgd::Matrix<float>::Zero(2, 3)));
  return shards;
}

/// Records the level of every aggregation.
struct LevelRecorder {
  std::vector<Index>* levels;
  template <class Run>
  void after_aggregation(const Run& /*run*/, Index level) {
    levels->push_back(level);
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

/// Halves the rate every step: in float it underflows to 0 long before it does in double.
struct Halving {
  [[nodiscard]] double rate(double base, Index step) const { return base * std::ldexp(1.0, -static_cast<int>(step)); }
  void validate() const {}
};

}  // namespace

// ---- Options ----------------------------------------------------------------------------------

TEST_CASE("Options::validate rejects a non-finite or non-positive learning rate", "[validation][options]") {
  const auto with_rate = [](double rate) {
    hsgd::Options options;
    options.learning_rate = rate;
    return options;
  };
  CHECK_THROWS_MATCHES(with_rate(nan_value).validate(), hsgd::InvalidArgument,
                       Message("'learning_rate' (nan) must be finite and positive"));
  CHECK_THROWS_MATCHES(with_rate(inf_value).validate(), hsgd::InvalidArgument,
                       Message("'learning_rate' (inf) must be finite and positive"));
  CHECK_THROWS_MATCHES(with_rate(-inf_value).validate(), hsgd::InvalidArgument,
                       Message("'learning_rate' (-inf) must be finite and positive"));
  CHECK_THROWS_MATCHES(with_rate(0.0).validate(), hsgd::InvalidArgument,
                       Message("'learning_rate' (0) must be finite and positive"));
  CHECK_THROWS_MATCHES(with_rate(-0.25).validate(), hsgd::InvalidArgument,
                       Message("'learning_rate' (-0.25) must be finite and positive"));
  CHECK_NOTHROW(with_rate(1e-300).validate());
  CHECK_NOTHROW(hsgd::Options{}.validate());
}

TEST_CASE("Options::validate rejects negative steps and warm-up steps", "[validation][options]") {
  hsgd::Options options;
  options.steps = -1;
  CHECK_THROWS_MATCHES(options.validate(), hsgd::InvalidArgument, Message("'steps' (-1) must be non-negative"));
  options.steps = 0;
  CHECK_NOTHROW(options.validate());
  options.warmup_steps = -7;
  CHECK_THROWS_MATCHES(options.validate(), hsgd::InvalidArgument, Message("'warmup_steps' (-7) must be non-negative"));
  options.warmup_steps = 0;
  CHECK_NOTHROW(options.validate());
}

TEST_CASE("The engine validates its options before anything else", "[validation][options][engine]") {
  auto options = quiet_options();
  options.learning_rate = nan_value;
  CHECK_THROWS_MATCHES(hsgd::Engine(hsgd::Topology::local_sgd(2, 1), quadratics(2, 2), hsgd::UniformSampler(1), options),
                       hsgd::InvalidArgument, Message("'learning_rate' (nan) must be finite and positive"));
  options = quiet_options();
  options.warmup_steps = -2;
  CHECK_THROWS_MATCHES(hsgd::Engine(hsgd::Topology::local_sgd(2, 1), quadratics(2, 2), hsgd::UniformSampler(1), options),
                       hsgd::InvalidArgument, Message("'warmup_steps' (-2) must be non-negative"));
}

TEST_CASE("Options::validate refuses out-of-range enum values", "[hardening][numbers]") {
  hsgd::Options options;
  options.weighting = static_cast<hsgd::Weighting>(7);
  CHECK_THROWS_WITH(options.validate(), Contains("'weighting' (7) must be Weighting::uniform or Weighting::data_size"));
  options.weighting = hsgd::Weighting::data_size;
  options.warmup_mode = static_cast<hsgd::WarmupMode>(-1);
  CHECK_THROWS_WITH(options.validate(), Contains("'warmup_mode' (-1) must be"));
}


// ---- Engine: shards and models ----------------------------------------------------------------

TEST_CASE("Engine: the number of shards must equal the number of workers", "[validation][engine]") {
  CHECK_THROWS_MATCHES(hsgd::Engine(hsgd::Topology::two_level(4, 2, 1, 2), quadratics(3, 2), hsgd::UniformSampler(1),
                                    quiet_options()),
                       hsgd::InvalidArgument,
                       Message("'shards' holds 3 objectives but the topology has 4 workers: give one shard per worker"));
  CHECK_THROWS_MATCHES(hsgd::Engine(hsgd::Topology::local_sgd(2, 1), quadratics(5, 2), hsgd::UniformSampler(1),
                                    quiet_options()),
                       hsgd::InvalidArgument,
                       Message("'shards' holds 5 objectives but the topology has 2 workers: give one shard per worker"));
  CHECK_NOTHROW(hsgd::Engine(hsgd::Topology::local_sgd(2, 1), quadratics(2, 2), hsgd::UniformSampler(1), quiet_options()));
}

TEST_CASE("Engine: every shard must have the dimension of shard 0", "[validation][engine]") {
  auto shards = quadratics(4, 2);
  shards[2] = quadratics(1, 5).front();
  CHECK_THROWS_MATCHES(hsgd::Engine(hsgd::Topology::two_level(4, 2, 1, 2), shards, hsgd::UniformSampler(1), quiet_options()),
                       hsgd::InvalidArgument, Message("shard 2 has dimension 5 but shard 0 has dimension 2"));
}

TEST_CASE("Engine::set_model rejects a model whose dimension is not the objective's", "[validation][engine]") {
  hsgd::Engine engine(hsgd::Topology::local_sgd(3, 1), quadratics(3, 4), hsgd::UniformSampler(1), quiet_options());
  CHECK_THROWS_MATCHES(engine.set_model(Vec::Zero(3)), hsgd::InvalidArgument,
                       Message("'x0' has 3 coordinates but the model has 4"));
  CHECK_THROWS_MATCHES(engine.set_model(Vec::Zero(6)), hsgd::InvalidArgument,
                       Message("'x0' has 6 coordinates but the model has 4"));
  CHECK_THROWS_MATCHES(engine.set_model(1, Vec::Zero(2)), hsgd::InvalidArgument,
                       Message("'x' has 2 coordinates but the model has 4"));
  CHECK_THROWS_MATCHES(engine.set_model(3, Vec::Zero(4)), hsgd::InvalidArgument,
                       Message("'worker' (3) must be in [0, 3)"));
  // A rejected model leaves the models alone.
  CHECK(engine.models().isZero(0));
  CHECK_NOTHROW(engine.set_model(Vec::Ones(4)));
  CHECK(engine.models().isOnes(0));
}

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

TEST_CASE("set_model refuses non-finite values, naming the coordinate", "[hardening][numbers]") {
  auto engine = quadratic_engine();
  CHECK_THROWS_WITH(engine.set_model(Vec{{0.0, nan_value, 1.0}}), Contains("'x0' must be finite, but coordinate 1 is nan"));
  CHECK_THROWS_WITH(engine.set_model(2, Vec{{0.0, 1.0, -inf_value}}), Contains("'x' must be finite, but coordinate 2 is -inf"));
  CHECK(engine.models().allFinite());
}

TEST_CASE("A model matrix larger than memory can address is refused", "[hardening][overflow]") {
  std::vector<HugeObjective> shards(8);
  CHECK_THROWS_WITH(hsgd::Engine(hsgd::Topology::local_sgd(8, 2), std::move(shards), hsgd::UniformSampler(1),
                                 options_with()),
                    Contains("more than memory can address"));
}


// ---- policies -----------------------------------------------------------------------------------

TEST_CASE("Momentum: the momentum must be at least 0 and below 1", "[validation][policy]") {
  CHECK_THROWS_MATCHES(hsgd::Momentum{.momentum = 1.0}.validate(), hsgd::InvalidArgument,
                       Message("'momentum' (1) must be in [0, 1)"));
  CHECK_THROWS_MATCHES(hsgd::Momentum{.momentum = -0.1}.validate(), hsgd::InvalidArgument,
                       Message("'momentum' (-0.1) must be in [0, 1)"));
  CHECK_THROWS_MATCHES(hsgd::Momentum{.momentum = 1.5}.validate(), hsgd::InvalidArgument,
                       Message("'momentum' (1.5) must be in [0, 1)"));
  CHECK_THROWS_MATCHES(hsgd::Momentum{.momentum = nan_value}.validate(), hsgd::InvalidArgument,
                       Message("'momentum' (nan) must be in [0, 1)"));
  CHECK_NOTHROW(hsgd::Momentum{.momentum = 0.0}.validate());
  CHECK_NOTHROW(hsgd::Momentum{.momentum = 0.999}.validate());
  // The engine validates the update policy it is given.
  CHECK_THROWS_MATCHES(hsgd::Engine(hsgd::Topology::local_sgd(2, 1), quadratics(2, 2), hsgd::UniformSampler(1),
                                    quiet_options(), hsgd::Momentum{.momentum = 1.0}),
                       hsgd::InvalidArgument, Message("'momentum' (1) must be in [0, 1)"));
}

TEST_CASE("Momentum refuses an out-of-range state rule", "[hardening][numbers]") {
  hsgd::Momentum momentum;
  momentum.at_aggregation = static_cast<hsgd::StateAtAggregation>(5);
  CHECK_THROWS_WITH(momentum.validate(), Contains("'at_aggregation' (5) must be"));
}


TEST_CASE("StepDecay: factor above 0 and at most 1, every positive", "[validation][policy]") {
  CHECK_THROWS_MATCHES((hsgd::StepDecay{.factor = 0.0, .every = 10}.validate()), hsgd::InvalidArgument,
                       Message("'factor' (0) must be in (0, 1]"));
  CHECK_THROWS_MATCHES((hsgd::StepDecay{.factor = -0.5, .every = 10}.validate()), hsgd::InvalidArgument,
                       Message("'factor' (-0.5) must be in (0, 1]"));
  CHECK_THROWS_MATCHES((hsgd::StepDecay{.factor = 1.25, .every = 10}.validate()), hsgd::InvalidArgument,
                       Message("'factor' (1.25) must be in (0, 1]"));
  CHECK_THROWS_MATCHES((hsgd::StepDecay{.factor = nan_value, .every = 10}.validate()), hsgd::InvalidArgument,
                       Message("'factor' (nan) must be in (0, 1]"));
  CHECK_THROWS_MATCHES((hsgd::StepDecay{.factor = 0.5, .every = 0}.validate()), hsgd::InvalidArgument,
                       Message("'every' (0) must be positive"));
  CHECK_THROWS_MATCHES((hsgd::StepDecay{.factor = 0.5, .every = -3}.validate()), hsgd::InvalidArgument,
                       Message("'every' (-3) must be positive"));
  CHECK_NOTHROW((hsgd::StepDecay{.factor = 1.0, .every = 1}.validate()));
  // The engine validates the schedule it is given.
  CHECK_THROWS_MATCHES(hsgd::Engine(hsgd::Topology::local_sgd(2, 1), quadratics(2, 2), hsgd::UniformSampler(1),
                                    quiet_options(), hsgd::Sgd{}, hsgd::StepDecay{.factor = 2.0, .every = 5}),
                       hsgd::InvalidArgument, Message("'factor' (2) must be in (0, 1]"));
}

TEST_CASE("InverseSqrtDecay: time_scale finite and positive", "[validation][policy]") {
  CHECK_THROWS_MATCHES(hsgd::InverseSqrtDecay{.time_scale = 0.0}.validate(), hsgd::InvalidArgument,
                       Message("'time_scale' (0) must be finite and positive"));
  CHECK_THROWS_MATCHES(hsgd::InverseSqrtDecay{.time_scale = -10.0}.validate(), hsgd::InvalidArgument,
                       Message("'time_scale' (-10) must be finite and positive"));
  CHECK_THROWS_MATCHES(hsgd::InverseSqrtDecay{.time_scale = inf_value}.validate(), hsgd::InvalidArgument,
                       Message("'time_scale' (inf) must be finite and positive"));
  CHECK_THROWS_MATCHES(hsgd::InverseSqrtDecay{.time_scale = nan_value}.validate(), hsgd::InvalidArgument,
                       Message("'time_scale' (nan) must be finite and positive"));
  CHECK_NOTHROW(hsgd::InverseSqrtDecay{.time_scale = 0.5}.validate());
}

// ---- samplers -----------------------------------------------------------------------------------

TEST_CASE("Samplers reject a non-positive batch size", "[validation][sampler]") {
  CHECK_THROWS_MATCHES(hsgd::UniformSampler(0), hsgd::InvalidArgument, Message("'batch_size' (0) must be positive"));
  CHECK_THROWS_MATCHES(hsgd::UniformSampler(-2), hsgd::InvalidArgument, Message("'batch_size' (-2) must be positive"));
  CHECK_THROWS_MATCHES(hsgd::ShuffledSampler(0), hsgd::InvalidArgument, Message("'batch_size' (0) must be positive"));
  CHECK_THROWS_MATCHES(hsgd::ShuffledSampler(-5), hsgd::InvalidArgument, Message("'batch_size' (-5) must be positive"));
  CHECK_NOTHROW(hsgd::UniformSampler(1));
  CHECK_NOTHROW(hsgd::ShuffledSampler(1));
}

TEST_CASE("ShuffledSampler: a batch larger than a shard is rejected when the engine is built", "[validation][sampler]") {
  // Worker 0 holds 8 samples, worker 1 only 5: a batch of 6 fits the first shard, not the second.
  std::vector<hsgd::Quadratic<double>> shards{quadratics(1, 2, 8).front(), quadratics(1, 2, 5).front()};
  CHECK_THROWS_MATCHES(hsgd::Engine(hsgd::Topology::local_sgd(2, 1), shards, hsgd::ShuffledSampler(6), quiet_options()),
                       hsgd::InvalidArgument,
                       Message("'batch_size' (6) must not exceed the shard's sample count (5) when sampling without "
                               "replacement"));
  // The key parts, independently of the wording around them.
  CHECK_THROWS_WITH(hsgd::Engine(hsgd::Topology::local_sgd(2, 1), shards, hsgd::ShuffledSampler(6), quiet_options()),
                    Contains("'batch_size'") && Contains("(6)") && Contains("(5)") && Contains("without replacement"));
  // A batch equal to the smallest shard is fine, and so is any batch with replacement.
  CHECK_NOTHROW(hsgd::Engine(hsgd::Topology::local_sgd(2, 1), shards, hsgd::ShuffledSampler(5), quiet_options()));
  CHECK_NOTHROW(hsgd::Engine(hsgd::Topology::local_sgd(2, 1), shards, hsgd::UniformSampler(6), quiet_options()));
}

// ---- servers ----------------------------------------------------------------------------------

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
  models(0, 0) = 3.0;
  server.aggregate(models);
  CHECK(models(0, 2) == 2.0);
}

TEST_CASE("A round checks the fraction of a unit it draws", "[hardening][memory]") {
  hsgd::Server<double> server(1, 0, 2);
  const std::vector<double> weights{1.0, 1.0, 1.0};
  const std::vector<Index> members{0, 2};
  server.set_members(members, weights);
  hsgd::Round round;
  round.attach(hsgd::Topology::local_sgd(3, 1), 1.0, 0);
  hsgd::Rng stream;
  CHECK_THROWS_WITH(round.draw_participants(server, 1.5, stream), Contains("'fraction' (1.5) must be in (0, 1]"));
}


// ---- learning-rate schedule at run time ---------------------------------------------------------

TEST_CASE("A schedule that returns a non-finite or non-positive rate stops the run, naming the step",
          "[validation][schedule]") {
  struct Case {
    double bad;
    std::string shown;
  };
  for (const Case& c : {Case{nan_value, "nan"}, Case{inf_value, "inf"}, Case{0.0, "0"}, Case{-0.5, "-0.5"}}) {
    CAPTURE(c.shown);
    hsgd::Engine engine(hsgd::Topology::local_sgd(2, 2), quadratics(2, 2), hsgd::UniformSampler(2), quiet_options(10),
                        hsgd::Sgd{}, BadRateAt{4, c.bad});
    engine.set_model(Vec::Constant(2, 5.0));
    CHECK_THROWS_MATCHES(engine.run(), hsgd::InvalidArgument,
                         Message("the learning rate at step 4 (" + c.shown + ") must be finite and positive"));
    // The bad rate was never applied: the models are those after step 3 of the same run.
    hsgd::Engine reference(hsgd::Topology::local_sgd(2, 2), quadratics(2, 2), hsgd::UniformSampler(2), quiet_options(3),
                           hsgd::Sgd{}, BadRateAt{4, c.bad});
    reference.set_model(Vec::Constant(2, 5.0));
    reference.run();
    CHECK(engine.models() == reference.models());
  }
  // A bad rate at step 1 is caught before any step is taken.
  hsgd::Engine engine(hsgd::Topology::local_sgd(2, 2), quadratics(2, 2), hsgd::UniformSampler(2), quiet_options(10),
                      hsgd::Sgd{}, BadRateAt{1, 0.0});
  CHECK_THROWS_WITH(engine.run(), Contains("step 1") && Contains("(0)"));
  CHECK(engine.models().isZero(0));
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


// ---- objectives and data ------------------------------------------------------------------------

TEST_CASE("NonconvexLogistic: shape and lambda are checked", "[validation][objective]") {
  CHECK_THROWS_MATCHES(hsgd::NonconvexLogistic<double>(Mat::Ones(2, 3), Vec::Ones(2)), hsgd::InvalidArgument,
                       Message("'labels' has 2 entries but 'features' has 3 samples"));
  CHECK_THROWS_MATCHES(hsgd::NonconvexLogistic<double>(Mat::Ones(2, 3), Vec::Ones(4)), hsgd::InvalidArgument,
                       Message("'labels' has 4 entries but 'features' has 3 samples"));
  CHECK_THROWS_MATCHES(hsgd::NonconvexLogistic<double>(Mat::Ones(0, 3), Vec::Ones(3)), hsgd::InvalidArgument,
                       Message("'features' (0x3) must hold at least one sample of at least one coordinate"));
  CHECK_THROWS_MATCHES(hsgd::NonconvexLogistic<double>(Mat::Ones(4, 0), Vec::Ones(0)), hsgd::InvalidArgument,
                       Message("'features' (4x0) must hold at least one sample of at least one coordinate"));
  CHECK_THROWS_MATCHES(hsgd::NonconvexLogistic<double>(Mat::Ones(2, 2), Vec::Ones(2), -0.5), hsgd::InvalidArgument,
                       Message("'lambda' (-0.5) must be finite and non-negative"));
  CHECK_THROWS_MATCHES(hsgd::NonconvexLogistic<double>(Mat::Ones(2, 2), Vec::Ones(2), nan_value), hsgd::InvalidArgument,
                       Message("'lambda' (nan) must be finite and non-negative"));
  CHECK_THROWS_MATCHES(hsgd::NonconvexLogistic<double>(Mat::Ones(2, 2), Vec::Ones(2), inf_value), hsgd::InvalidArgument,
                       Message("'lambda' (inf) must be finite and non-negative"));
  CHECK_THROWS_MATCHES(hsgd::NonconvexLogistic<float>(hsgd::Matrix<float>::Ones(2, 2), hsgd::Vector<float>::Ones(2), -1.0f),
                       hsgd::InvalidArgument, Message("'lambda' (-1) must be finite and non-negative"));
  Vec labels(3);
  labels << 1, -1, 1;
  CHECK_NOTHROW(hsgd::NonconvexLogistic<double>(Mat::Ones(2, 3), labels, 0.0));
}

TEST_CASE("NonconvexLogistic: a label other than -1 or +1 is rejected, naming it", "[validation][objective]") {
  // The documented contract (core/error.hpp): the message names the parameter, its value and the
  // constraint. Here the offending value is the label 0.5 (or NaN, or 0).
  Vec labels(3);
  labels << 1, 0.5, -1;
  CHECK_THROWS_AS(hsgd::NonconvexLogistic<double>(Mat::Ones(2, 3), labels), hsgd::InvalidArgument);
  CHECK_THROWS_WITH(hsgd::NonconvexLogistic<double>(Mat::Ones(2, 3), labels),
                    Contains("'labels'") && Contains("-1 or +1") && Contains("0.5"));
  labels << 1, -1, nan_value;
  CHECK_THROWS_WITH(hsgd::NonconvexLogistic<double>(Mat::Ones(2, 3), labels),
                    Contains("'labels'") && Contains("-1 or +1") && Contains("nan"));
}

TEST_CASE("Quadratic: shapes must agree", "[validation][objective]") {
  CHECK_THROWS_MATCHES(hsgd::Quadratic<double>(Vec::Ones(3), Vec::Zero(2)), hsgd::InvalidArgument,
                       Message("'centre' has 2 coordinates but 'curvature' has 3"));
  CHECK_THROWS_MATCHES(hsgd::Quadratic<double>::from_samples(Vec::Ones(2), Mat::Zero(3, 4)), hsgd::InvalidArgument,
                       Message("'sample_centres' has 3 rows but 'curvature' has 2 coordinates"));
  CHECK_THROWS_MATCHES(hsgd::Quadratic<double>::from_samples(Vec::Ones(2), Mat::Zero(2, 0)), hsgd::InvalidArgument,
                       Message("'sample_centres' must hold at least one sample"));
  CHECK_THROWS_MATCHES(hsgd::heterogeneous_quadratics<double>(Mat::Ones(2, 3), Mat::Zero(2, 4)), hsgd::InvalidArgument,
                       Message("'curvatures' (2x3) and 'centres' (2x4) must have the same shape"));
  CHECK_THROWS_MATCHES(hsgd::heterogeneous_quadratics<double>(Mat::Ones(3, 2), Mat::Zero(2, 2)), hsgd::InvalidArgument,
                       Message("'curvatures' (3x2) and 'centres' (2x2) must have the same shape"));
  Vec curvature = Vec::Ones(2);
  curvature(1) = nan_value;
  CHECK_THROWS_WITH(hsgd::Quadratic<double>(curvature, Vec::Zero(2)), Contains("'curvature'") && Contains("finite"));
  hsgd::Rng rng(1);
  CHECK_THROWS_MATCHES(hsgd::Quadratic<double>::isotropic_noisy(1.0, Vec::Zero(2), 0, 1.0, rng), hsgd::InvalidArgument,
                       Message("'samples' (0) must be positive"));
  CHECK_THROWS_MATCHES(hsgd::Quadratic<double>::isotropic_noisy(1.0, Vec::Zero(2), 3, -0.5, rng), hsgd::InvalidArgument,
                       Message("'sigma' (-0.5) must be non-negative"));
}

TEST_CASE("Logistic and quadratic objectives refuse non-finite data, naming the sample or worker",
          "[hardening][data]") {
  Mat features = Mat::Ones(2, 3);
  const Vec labels = Vec::Ones(3);
  features(0, 2) = inf_value;
  REQUIRE_INVALID(hsgd::NonconvexLogistic<double>(features, labels), "'features' sample 2 is not finite: coordinate 0");
  hsgd::Matrix<float> float_features = hsgd::Matrix<float>::Ones(2, 3);
  float_features(1, 1) = std::numeric_limits<float>::quiet_NaN();
  REQUIRE_INVALID(hsgd::NonconvexLogistic<float>(float_features, hsgd::Vector<float>::Ones(3)),
                  "'features' sample 1 is not finite: coordinate 1 is nan");

  Mat centres = Mat::Zero(2, 4);
  centres(1, 3) = nan_value;
  REQUIRE_INVALID(hsgd::Quadratic<double>::from_samples(Vec::Ones(2), centres),
                  "the centres must be finite: sample 3 has nan at coordinate 1");
  Mat curvatures = Mat::Ones(2, 3);
  Mat worker_centres = Mat::Zero(2, 3);
  worker_centres(0, 2) = inf_value;
  REQUIRE_INVALID(hsgd::heterogeneous_quadratics(curvatures, worker_centres), "worker 2: 'centres'(0, 2) is inf");
  worker_centres(0, 2) = 0;
  curvatures(1, 1) = nan_value;
  REQUIRE_INVALID(hsgd::heterogeneous_quadratics(curvatures, worker_centres), "worker 1: 'curvatures'(1, 1) is nan");
  hsgd::Rng rng(4);
  REQUIRE_INVALID(hsgd::Quadratic<double>::isotropic_noisy(nan_value, Vec::Zero(2), 3, 1.0, rng),
                  "'curvature' (nan) must be finite");
  REQUIRE_INVALID(hsgd::Quadratic<double>::isotropic_noisy(1.0, Vec::Zero(2), 3, inf_value, rng),
                  "'sigma' (inf) must be finite");
  REQUIRE_INVALID(hsgd::Quadratic<double>::isotropic_noisy(1.0, Vec::Constant(2, max_double), 3, 1e308, rng),
                  "the centres must be finite");
}


TEST_CASE("B1Data::validate checks every field", "[validation][data]") {
  const auto with = [](auto change) {
    hsgd::B1Data data;
    change(data);
    return data;
  };
  CHECK_NOTHROW(hsgd::B1Data{}.validate());
  CHECK_THROWS_MATCHES(with([](auto& d) { d.workers = 0; }).validate(), hsgd::InvalidArgument,
                       Message("'workers' (0) must be positive"));
  CHECK_THROWS_MATCHES(with([](auto& d) { d.workers = -4; }).validate(), hsgd::InvalidArgument,
                       Message("'workers' (-4) must be positive"));
  CHECK_THROWS_MATCHES(with([](auto& d) { d.samples_per_worker = 0; }).validate(), hsgd::InvalidArgument,
                       Message("'samples_per_worker' (0) must be positive"));
  CHECK_THROWS_MATCHES(with([](auto& d) { d.dimension = -1; }).validate(), hsgd::InvalidArgument,
                       Message("'dimension' (-1) must be positive"));
  CHECK_THROWS_MATCHES(with([](auto& d) { d.lambda = -0.001; }).validate(), hsgd::InvalidArgument,
                       Message("'lambda' (-0.001) must be finite and non-negative"));
  CHECK_THROWS_MATCHES(with([](auto& d) { d.lambda = nan_value; }).validate(), hsgd::InvalidArgument,
                       Message("'lambda' (nan) must be finite and non-negative"));
  CHECK_THROWS_MATCHES(with([](auto& d) { d.signal = -2.0; }).validate(), hsgd::InvalidArgument,
                       Message("'signal' (-2) must be finite and non-negative"));
  CHECK_THROWS_MATCHES(with([](auto& d) { d.signal = inf_value; }).validate(), hsgd::InvalidArgument,
                       Message("'signal' (inf) must be finite and non-negative"));
  CHECK_THROWS_MATCHES(with([](auto& d) { d.heterogeneity = -0.5; }).validate(), hsgd::InvalidArgument,
                       Message("'heterogeneity' (-0.5) must be finite and non-negative"));
  CHECK_THROWS_MATCHES(with([](auto& d) { d.heterogeneity = nan_value; }).validate(), hsgd::InvalidArgument,
                       Message("'heterogeneity' (nan) must be finite and non-negative"));
  // make_b1_shards validates before generating anything.
  CHECK_THROWS_MATCHES(hsgd::make_b1_shards(with([](auto& d) { d.dimension = 0; })), hsgd::InvalidArgument,
                       Message("'dimension' (0) must be positive"));
}

// ---- non-finite models --------------------------------------------------------------------------

TEST_CASE("A NaN gradient of one worker stops the run at that step, that worker, level 0", "[validation][nan]") {
  // Worker 3 of 8 turns NaN from step 5. The local period is 1 and the global period 5, so an
  // aggregation follows every step, and a global one follows step 5 itself: the error must come
  // from the local step, before any aggregation could spread the NaN.
  for (const Index threads : {1, 3, 8}) {
    CAPTURE(threads);
    auto options = quiet_options(20);
    options.threads = threads;
    hsgd::Engine engine(hsgd::Topology::two_level(8, 4, 1, 5), poisoned_shards(8, 3, 5), hsgd::FullBatchSampler(),
                        options);
    engine.set_model(Vec::Ones(3));
    std::vector<Index> steps_seen;
    auto record = hsgd::every(1, [&](const auto& run) { steps_seen.push_back(run.step_count()); });
    try {
      engine.run(record);
      FAIL("the run finished without a NumericalError");
    } catch (const hsgd::NumericalError& error) {
      CHECK(error.step() == 5);
      CHECK(error.worker() == 3);
      CHECK(error.level() == 0);
      const std::string what = error.what();
      CHECK_THAT(what, Contains("step 5") && Contains("worker 3") && Contains("level 0"));
    }
    CHECK(steps_seen == std::vector<Index>{1, 2, 3, 4});
    // Only worker 3's model is non-finite: nothing was aggregated after its step.
    for (Index j = 0; j < 8; ++j) CHECK(engine.model(j).allFinite() == (j != 3));
  }
}

TEST_CASE("Two workers failing at the same step: the lowest index is reported, whatever the threads",
          "[validation][nan]") {
  for (const Index threads : {1, 2, 4}) {
    CAPTURE(threads);
    auto shards = poisoned_shards(8, 6, 5);
    shards[2].bad_worker = 2;  // worker 2 also fails from step 5
    shards[2].bad_from = 5;
    auto options = quiet_options(20);
    options.threads = threads;
    hsgd::Engine engine(hsgd::Topology::local_sgd(8, 3), shards, hsgd::FullBatchSampler(), options);
    engine.set_model(Vec::Ones(3));
    try {
      engine.run();
      FAIL("the run finished without a NumericalError");
    } catch (const hsgd::NumericalError& error) {
      CHECK(error.step() == 5);
      CHECK(error.worker() == 2);
      CHECK(error.level() == 0);
    }
  }
}

TEST_CASE("An aggregation that overflows stops the run at the aggregating level", "[validation][nan]") {
  // float models near max(): each model is finite and local steps leave them alone (zero
  // gradients), but a weighted sum inside an average exceeds max() and becomes +Inf. With uniform
  // weights v = 0.6 max (two of them sum to 1.2 max); with data-size weights (3 samples each) v =
  // 0.3 max (weight times model is 0.9 max, two of those sum to 1.8 max). Level 1 (singletons)
  // never overflows: a single weighted model stays below max(). The workers' models, each finite,
  // sum to +Inf, so this also checks that the engine's fast finiteness test (a finite sum) falls
  // back to the full one rather than stopping the run at level 0.
  constexpr float big = std::numeric_limits<float>::max();
  for (const hsgd::Weighting weighting : {hsgd::Weighting::uniform, hsgd::Weighting::data_size}) {
    CAPTURE(weighting == hsgd::Weighting::uniform);
    const float v = weighting == hsgd::Weighting::uniform ? 0.6f * big : 0.3f * big;
    auto options = quiet_options(16);
    options.weighting = weighting;

    SECTION("a level-2 unit overflows at its first aggregation (step 4)") {
      // Pairs {0, 1} and {2, 3}: only the second pair holds large models.
      hsgd::Engine engine(three_levels(), still_float_shards(4), hsgd::FullBatchSampler(), options);
      engine.set_model(2, hsgd::Vector<float>::Constant(2, v));
      engine.set_model(3, hsgd::Vector<float>::Constant(2, v));
      engine.set_model(0, hsgd::Vector<float>::Constant(2, 1.0f));
      engine.set_model(1, hsgd::Vector<float>::Constant(2, 2.0f));
      std::vector<Index> levels_seen;
      LevelRecorder record{&levels_seen};
      try {
        engine.run(record);
        FAIL("the run finished without a NumericalError");
      } catch (const hsgd::NumericalError& error) {
        CHECK(error.step() == 4);
        CHECK(error.level() == 2);
        CHECK(error.worker() == 2);  // the lowest worker of the unit {2, 3} that overflowed
        const std::string what = error.what();
        CHECK_THAT(what, Contains("step 4") && Contains("worker 2") && Contains("level 2"));
      }
      CHECK(levels_seen == std::vector<Index>{1});  // the level-1 aggregation after step 2 was fine
    }

    SECTION("only the global average overflows (step 8, level 3)") {
      // Workers 0 and 2 hold v, workers 1 and 3 hold 0: the pair averages halve v, the global sum
      // of the four halves is 2 v (uniform: 1.2 max; data size: 3 * 4 * v / 2 = 1.8 max).
      hsgd::Engine engine(three_levels(), still_float_shards(4), hsgd::FullBatchSampler(), options);
      engine.set_model(0, hsgd::Vector<float>::Constant(2, v));
      engine.set_model(2, hsgd::Vector<float>::Constant(2, v));
      try {
        engine.run();
        FAIL("the run finished without a NumericalError");
      } catch (const hsgd::NumericalError& error) {
        CHECK(error.step() == 8);
        CHECK(error.level() == 3);
        CHECK(error.worker() == 0);
        const std::string what = error.what();
        CHECK_THAT(what, Contains("step 8") && Contains("worker 0") && Contains("level 3"));
      }
      CHECK(engine.step_count() == 8);
    }
  }
}

TEST_CASE("check_finite = false lets a run with non-finite models go on to the end", "[validation][nan]") {
  SECTION("NaN gradients") {
    auto options = quiet_options(12);
    options.check_finite = false;
    hsgd::Engine engine(hsgd::Topology::two_level(8, 4, 1, 5), poisoned_shards(8, 3, 5), hsgd::FullBatchSampler(), options);
    engine.set_model(Vec::Ones(3));
    hsgd::Summary summary;
    REQUIRE_NOTHROW(summary = engine.run());
    CHECK(summary.steps == 12);
    CHECK(engine.step_count() == 12);
    CHECK_FALSE(engine.models().allFinite());
    CHECK(std::isnan(summary.loss));
  }
  SECTION("an overflowing aggregation") {
    auto options = quiet_options(16);
    options.check_finite = false;
    hsgd::Engine engine(three_levels(), still_float_shards(4), hsgd::FullBatchSampler(), options);
    engine.set_model(hsgd::Vector<float>::Constant(2, 0.6f * std::numeric_limits<float>::max()));
    hsgd::Summary summary;
    REQUIRE_NOTHROW(summary = engine.run());
    CHECK(summary.steps == 16);
    CHECK_FALSE(engine.models().allFinite());
  }
}
