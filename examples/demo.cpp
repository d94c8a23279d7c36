// hsgd demo: H-SGD on benchmark B1's non-convex logistic problem, next to local SGD with the
// local period I and with the global period G. With a global period G, averaging locally every
// I steps is expected to land between the two (the paper's "sandwich").

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/core.h>

#include <hsgd/hsgd.hpp>

#include "cli.hpp"

namespace {

constexpr std::string_view description = "hsgd demo: H-SGD against local SGD on benchmark B1 (non-convex logistic regression)";

/// Prints progress a few times per run and keeps the time-average of ||grad f(xbar_t)||^2.
class Progress {
 public:
  Progress(hsgd::Index every, hsgd::Index dimension)
      : every_(every), average_(dimension), gradient_(dimension), scratch_(dimension) {}

  template <class Run>
  void after_step(const Run& run) {
    if (run.step_count() % every_ != 0) return;
    run.global_average(average_);
    run.gradient(average_, gradient_, scratch_);
    sum_ += gradient_.squaredNorm();
    ++samples_;
    if (run.step_count() % (every_ * 16) == 0) {
      fmt::print("    step {:>6}  f(xbar) = {:.5f}  ||grad f(xbar)||^2 = {:.3e}\n", run.step_count(), run.loss(average_),
                 gradient_.squaredNorm());
    }
  }

  /// Mean of ||grad f(xbar_t)||^2 over the sampled steps.
  [[nodiscard]] double mean() const { return samples_ > 0 ? sum_ / static_cast<double>(samples_) : 0.0; }

  // Checkpoint part "progress": the running sum, so a resumed run reports the same mean.
  [[nodiscard]] std::string_view checkpoint_name() const { return "progress"; }
  template <class Archive>
  void checkpoint(Archive& archive) {
    archive.real("the sum", sum_);
    archive.index("the sample count", samples_, 0, std::numeric_limits<hsgd::Index>::max());
  }

 private:
  hsgd::Index every_;
  double sum_ = 0;
  hsgd::Index samples_ = 0;
  hsgd::Vector<double> average_, gradient_, scratch_;
};

struct Settings {
  hsgd::Index workers, groups, local_period, global_period, steps, batch, dimension, samples, threads;
  double learning_rate, heterogeneity;
  std::uint64_t seed;
  hsgd::StudyOptions study;

  [[nodiscard]] std::string header() const {
    return fmt::format("B1: n = {}, N = {}, d = {}, m = {}, batch = {}, gamma = {}, T = {}", workers, groups, dimension,
                       samples, batch, learning_rate, steps);
  }
  [[nodiscard]] std::vector<std::pair<std::string, hsgd::Topology>> schemes() const {
    return {{fmt::format("local SGD, P = I = {}", local_period), hsgd::Topology::local_sgd(workers, local_period)},
            {fmt::format("H-SGD, I = {}, G = {}", local_period, global_period),
             hsgd::Topology::two_level(workers, groups, local_period, global_period)},
            {fmt::format("local SGD, P = G = {}", global_period), hsgd::Topology::local_sgd(workers, global_period)}};
  }
};

/// Each scheme on the same shards, as the study's runs; false when a signal stopped the study.
bool run(const Settings& s, hsgd::Study& study) {
  const auto shards = hsgd::make_b1_shards({.workers = s.workers, .samples_per_worker = s.samples, .dimension = s.dimension,
                                            .heterogeneity = s.heterogeneity, .seed = s.seed});
  const hsgd::Options options{.learning_rate = s.learning_rate, .steps = s.steps, .seed = s.seed, .threads = s.threads};
  for (const auto& [name, topology] : s.schemes()) {
    fmt::print("  {}\n", name);
    if (study.skip_finished()) continue;
    hsgd::Engine engine(topology, shards, hsgd::UniformSampler(s.batch), options, hsgd::RandomGrouping{});
    Progress progress(std::max<hsgd::Index>(1, s.steps / 64), s.dimension);
    study.set_tags({name});
    auto probe = hsgd::make_probe(engine, {.gradient_every = 16, .model_every = 16, .subsample = 32}, study);
    const auto summary = study.run(engine, progress, probe);
    if (!summary) return false;
    fmt::print("    f(xbar_T) = {:.6f}, ||grad f(xbar_T)||^2 = {:.4e}\n", summary->loss, summary->gradient_norm_squared);
    study.finish({summary->loss, summary->gradient_norm_squared, progress.mean()});
  }
  return true;
}

void print_table(const Settings& s, const hsgd::Study& study) {
  fmt::print("\n{:<28} {:>12} {:>20} {:>22}\n", "scheme", "f(xbar_T)", "||grad f(xbar_T)||^2", "mean ||grad f(xbar)||^2");
  const auto schemes = s.schemes();
  for (std::size_t k = 0; k < schemes.size(); ++k) {
    const auto& result = study.result(static_cast<hsgd::Index>(k));
    fmt::print("{:<28} {:>12.6f} {:>20.4e} {:>22.4e}\n", schemes[k].first, result.at(0), result.at(1), result.at(2));
  }
}

Settings read_settings(example::Flags& flags) {
  Settings s{};
  s.workers = flags.integer("workers", 64, "n, number of workers");
  s.groups = flags.integer("groups", 8, "N, number of local servers");
  s.local_period = flags.integer("local-period", 4, "I, local aggregation period");
  s.global_period = flags.integer("global-period", 32, "G, global aggregation period");
  s.steps = flags.integer("steps", 1024, "T, local steps per worker");
  s.batch = flags.integer("batch", 16, "minibatch size (uniform, with replacement)");
  s.dimension = flags.integer("dimension", 100, "d, model size");
  s.samples = flags.integer("samples", 512, "m, samples per worker");
  s.learning_rate = flags.real("lr", 0.05, "gamma, learning rate");
  s.heterogeneity = flags.real("heterogeneity", 1.0, "how non-IID the workers' labels are");
  s.seed = static_cast<std::uint64_t>(flags.integer("seed", 1, "seed for data and sampling"));
  const auto csv = flags.text("csv", "", "write a probe record every 16 steps to this CSV file");
  s.threads = flags.integer("threads", 1, "threads per run (results do not depend on it)");
  s.study = example::study_options(flags, csv, {"scheme"}, 2);
  return s;
}

}  // namespace

int main(int argc, char** argv) { return example::main(argc, argv, description, read_settings, run, print_table); }
