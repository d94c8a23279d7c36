// fashion: H-SGD on real data. Fashion-MNIST (Debian's dataset-fashion-mnist) split the usual
// non-IID way, into label shards that give each worker two classes; 100 workers in 10 groups by
// default. It runs local SGD with the local period I, H-SGD(I, G) with random groups and with
// group-non-IID groups, and local SGD with the global period G, records the test accuracy of the
// global average on the 10 000 held-out images as it goes, and prints a table of the final test
// accuracy, the time-averaged ||grad f(xbar_t)||^2, D_up, D_down and the messages sent.
//
//   fashion && python3 examples/plot_fashion.py fashion.csv fashion.png

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/core.h>
#include <fmt/ranges.h>

#include <hsgd/hsgd.hpp>

#include "cli.hpp"
#include "fashion_data.hpp"
#include "problem.hpp"

namespace {

constexpr std::string_view description =
    "fashion: local SGD with period I, H-SGD(I, G) with random and group-non-IID groups, and local SGD with period G on "
    "Fashion-MNIST split into two-class label shards, with the held-out test accuracy";

struct Settings : example::RunFlags {
  std::string data_directory{}, objective{};
  hsgd::Index hidden = 32, test_every = 50, threads = 2;
  double lambda = 1e-4;
  std::vector<std::string> schemes{};  // the chosen ones, in the order of the table
  hsgd::StudyOptions study{};

  [[nodiscard]] std::string header() const {
    return fmt::format("fashion: Fashion-MNIST from {}, {} on two-class label shards; n = {} in {} groups, I = {}, G = {}, "
                       "gamma = {}, batch = {}, T = {}; schemes {}; {} seed(s); test accuracy every {} steps",
                       data_directory, objective == "softmax" ? "softmax regression" : fmt::format("a tanh network of {} hidden units", hidden),
                       workers, groups, local_period, global_period, learning_rate, batch, steps, fmt::join(schemes, ", "), seeds,
                       test_every);
  }
};

const std::vector<std::string> scheme_names{"local-sgd-I", "hsgd-random", "hsgd-group-noniid", "local-sgd-G"};
/// A run's results (example::probe_results, then the global average's after the last step).
enum Result : std::size_t { mean_gradient_norm_squared, mean_d_up, mean_d_down, messages, test_accuracy, test_loss };

/// The chosen schemes on one seed's shards, each the study's next run; false when a signal stopped it.
template <class Shards, class HeldOut>
bool run_seed(const Settings& s, hsgd::Study& study, std::uint64_t seed, const Shards& shards, const HeldOut& held_out,
              const hsgd::Vector<double>& start, const hsgd::Partition& partition, const hsgd::Dataset<double>& train) {
  const hsgd::Topology hierarchy = hsgd::Topology::two_level(s.workers, s.groups, s.local_period, s.global_period);
  const auto non_iid_groups = hsgd::group_non_iid_layout(partition, train.labels, train.classes, example::group_sizes(hierarchy));
  const auto run = [&](const std::string& scheme, const hsgd::Topology& topology, auto grouping) {
    if (std::find(s.schemes.begin(), s.schemes.end(), scheme) == s.schemes.end()) return true;
    const auto begin = std::chrono::steady_clock::now();
    if (!study.skip_finished()) {
      hsgd::Engine engine(topology, shards, hsgd::UniformSampler(s.batch), s.options(seed, s.threads), std::move(grouping));
      engine.set_model(start);
      study.set_tags({scheme, std::to_string(seed)});
      // Divergences from a subsample of 32 samples per worker (bias removed), so that a measurement
      // costs about a twentieth of an epoch; the held-out set is evaluated in full.
      auto probe = hsgd::make_probe(engine,
                                    {.gradient_every = s.probe_every, .model_every = s.probe_every, .subsample = 32,
                                     .subsample_seed = seed, .test_every = s.test_every},
                                    study, held_out);
      hsgd::ProgressBar progress(scheme, s.steps);
      if (!study.run(engine, probe, progress)) return false;
      const hsgd::Vector<double> average = engine.global_average();
      study.finish(example::probe_results(study.records(), {probe.held_out().accuracy(average), probe.held_out().value(average)}));
    }
    const std::chrono::duration<double> seconds = std::chrono::steady_clock::now() - begin;
    fmt::print("  seed {:>2}  {:<18} test accuracy {:.4f}  ({:.1f} s)\n", seed, scheme,
               study.result(study.next() - 1)[test_accuracy], seconds.count());
    std::fflush(stdout);
    return true;
  };
  return run(scheme_names[0], hsgd::Topology::local_sgd(s.workers, s.local_period), hsgd::ContiguousGrouping{}) &&
         run(scheme_names[1], hierarchy, hsgd::RandomGrouping{}) &&
         run(scheme_names[2], hierarchy, hsgd::ExplicitGrouping(non_iid_groups)) &&
         run(scheme_names[3], hsgd::Topology::local_sgd(s.workers, s.global_period), hsgd::ContiguousGrouping{});
}

/// Builds each seed's shards and held-out objective for the chosen model, then runs the seed.
bool run(const Settings& s, hsgd::Study& study) {
  const auto data = s.seeds > 0 ? example::read_fashion_mnist(s.data_directory) : example::FashionMnist{};
  for (hsgd::Index index = 1; index <= s.seeds; ++index) {
    const auto seed = static_cast<std::uint64_t>(index);
    const auto partition = hsgd::partition_shards(data.train, {.workers = s.workers, .shards_per_worker = 2, .seed = seed});
    if (s.objective == "softmax") {
      const auto shards = hsgd::make_softmax_shards(data.train, partition, s.lambda);
      const hsgd::Vector<double> start = hsgd::Vector<double>::Zero(shards.front().dimension());
      if (!run_seed(s, study, seed, shards, hsgd::SoftmaxRegression<double>(data.test, 0.0), start, partition, data.train))
        return false;
    } else {
      const auto shards = hsgd::make_tanh_network_shards(data.train, partition, s.hidden, s.lambda);
      hsgd::Rng rng = hsgd::make_stream(seed, hsgd::StreamKind::initial_model, 0);
      const hsgd::Vector<double> start = shards.front().initial_model(rng);
      if (!run_seed(s, study, seed, shards, hsgd::TanhNetwork<double>(data.test, s.hidden, 0.0), start, partition, data.train))
        return false;
    }
  }
  return true;
}

void print_table(const Settings& s, const hsgd::Study& study) {
  fmt::print("\n{:<18} {:>13} {:>10} {:>24} {:>10} {:>10} {:>10}\n", "scheme", "test accuracy", "test loss",
             "mean ||grad f(xbar)||^2", "D_up", "D_down", "messages");
  for (std::size_t k = 0; k < s.schemes.size(); ++k) {
    const auto mean = [&](Result field) { return hsgd::sample_mean(example::over_seeds(study, s.schemes.size(), k, field)).mean; };
    fmt::print("{:<18} {:>13.4f} {:>10.4f} {:>24.4e} {:>10.3e} {:>10.3e} {:>10}\n", s.schemes[k], mean(test_accuracy),
               mean(test_loss), mean(mean_gradient_norm_squared), mean(mean_d_up), mean(mean_d_down),
               static_cast<hsgd::Index>(study.result(static_cast<hsgd::Index>(k))[messages]));
  }
  fmt::print("(test figures of the global average after step {} on the 10 000 held-out images; means over {} seed(s); "
             "||grad f||^2, D_up and D_down time-averaged, estimated from 32 samples per worker)\n",
             s.steps, s.seeds);
}

Settings read_settings(example::Flags& flags) {
  example::RunFlags defaults = example::fashion_run_defaults("fashion.csv");
  defaults.seeds = 1;
  defaults.probe_every = 50;
  Settings s{example::RunFlags::read(flags, defaults)};
  s.data_directory = flags.text("data", example::fashion_mnist_directory, "directory of the four Fashion-MNIST IDX files");
  s.objective = flags.text("objective", "softmax", "softmax (softmax regression) or tanh (two-layer tanh network)");
  s.hidden = flags.integer("hidden", 32, "hidden units of the tanh network");
  s.lambda = flags.real("lambda", 1e-4,
                        "weight of the non-convex penalty lambda sum_i x_i^2 / (1 + x_i^2) in training (B1's is 1e-3)");
  s.test_every = flags.integer("test-every", 50, "steps between test-accuracy measurements");
  s.threads = flags.integer("threads", 2, "threads per run (results do not depend on it)");
  s.schemes = flags.subset("schemes", scheme_names, "comma-separated subset of the schemes, or all");
  s.study = example::study_options(flags, s.csv, {"scheme", "seed"}, 2);
  if (s.objective != "softmax" && s.objective != "tanh")
    throw std::invalid_argument(fmt::format("'--objective' ({}) must be softmax or tanh", s.objective));
  return s;
}

}  // namespace

int main(int argc, char** argv) { return example::main(argc, argv, description, read_settings, run, print_table); }
