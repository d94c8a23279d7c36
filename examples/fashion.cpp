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
#include <exception>
#include <limits>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include <fmt/core.h>
#include <fmt/ranges.h>

#include <hsgd/hsgd.hpp>

#include "checkpointing.hpp"
#include "cli.hpp"
#include "fashion_data.hpp"
#include "problem.hpp"
#include "progress.hpp"

namespace {

struct Settings : example::RunFlags {
  std::string data_directory;
  std::string objective;
  hsgd::Index hidden = 32;
  double lambda = 1e-4;
  hsgd::Index test_every = 50;
  hsgd::Index threads = 2;
  std::set<std::string> schemes;
  example::CheckpointFlags checkpoints;
};

/// The schemes, in the order of the table.
const std::vector<std::string> scheme_names{"local-sgd-I", "hsgd-random", "hsgd-group-noniid", "local-sgd-G"};

/// One run's outcome, as the table shows it.
struct Outcome {
  double test_accuracy, test_loss;     // of the global average after the last step
  double mean_gradient_norm_squared;   // time averages over the probed steps
  double mean_d_up, mean_d_down;
  hsgd::Index messages;
};

std::vector<double> numbers(const Outcome& o) {
  return {o.test_accuracy, o.test_loss, o.mean_gradient_norm_squared, o.mean_d_up, o.mean_d_down,
          static_cast<double>(o.messages)};
}
Outcome outcome_from(const std::vector<double>& v) {
  if (v.size() != 6) throw std::invalid_argument("the checkpoint's results are not the fashion example's");
  return {v[0], v[1], v[2], v[3], v[4], example::whole(v[5], 0, std::numeric_limits<hsgd::Index>::max() / 2)};
}

/// Runs one scheme as run `run` of the study; false when a signal stopped it.
template <class Shards, class HeldOut, class Grouping>
bool run_scheme(const Settings& s, example::Study& study, hsgd::Index run, const std::string& scheme,
                const hsgd::Topology& topology, const Shards& shards, const HeldOut& held_out,
                const hsgd::Vector<double>& start, Grouping grouping, std::uint64_t seed) {
  hsgd::Engine engine(topology, shards, hsgd::UniformSampler(s.batch), s.options(seed, s.threads), hsgd::Sgd{},
                      hsgd::ConstantRate{}, std::move(grouping));
  engine.set_model(start);
  if (study.csv() != nullptr) study.csv()->set_tags({scheme, std::to_string(seed)});
  example::RunRecorder recorder{study.csv(), {}};
  // Divergences from a subsample of 32 samples per worker (bias removed), so that a measurement
  // costs about a twentieth of an epoch; the held-out set is evaluated in full.
  auto probe = hsgd::make_probe(engine,
                                {.gradient_every = s.probe_every, .model_every = s.probe_every, .subsample = 32,
                                 .subsample_seed = seed, .test_every = s.test_every},
                                recorder, held_out);
  example::ProgressBar progress(scheme, s.steps);
  if (!study.run(run, engine, std::tie(probe, recorder.memory), probe, progress)) return false;

  const auto& rows = recorder.memory.rows;
  const hsgd::Vector<double> average = engine.global_average();
  const Outcome outcome{probe.held_out().accuracy(average),
                        probe.held_out().value(average),
                        hsgd::time_average(rows, &hsgd::ProbeRecord::gradient_norm_squared),
                        hsgd::time_average(rows, &hsgd::ProbeRecord::d_up),
                        hsgd::time_average(rows, &hsgd::ProbeRecord::d_down),
                        rows.empty() ? 0 : rows.back().messages};
  study.finish(run, numbers(outcome), engine, std::tie(probe, recorder.memory));
  return true;
}

/// Runs the chosen schemes on one seed's split; outcomes[k] gains this seed's outcome of scheme k.
template <class Shards, class HeldOut>
bool run_seed(const Settings& s, example::Study& study, std::uint64_t seed, const Shards& shards, const HeldOut& held_out,
              const hsgd::Vector<double>& start, const hsgd::Partition& partition, const hsgd::Dataset<double>& train,
              std::vector<std::vector<Outcome>>& outcomes) {
  const hsgd::Topology hierarchy = hsgd::Topology::two_level(s.workers, s.groups, s.local_period, s.global_period);
  const auto non_iid_groups = hsgd::group_non_iid_layout(partition, train.labels, train.classes, example::group_sizes(hierarchy));
  const auto run = [&](std::size_t k, const hsgd::Topology& topology, auto grouping) {
    if (!s.schemes.contains(scheme_names[k])) return true;
    const auto index = static_cast<hsgd::Index>((seed - 1) * scheme_names.size() + k);
    const auto begin = std::chrono::steady_clock::now();
    if (!study.finished(index) &&
        !run_scheme(s, study, index, scheme_names[k], topology, shards, held_out, start, grouping, seed))
      return false;
    outcomes[k].push_back(outcome_from(study.result(index)));
    const std::chrono::duration<double> seconds = std::chrono::steady_clock::now() - begin;
    fmt::print("  seed {:>2}  {:<18} test accuracy {:.4f}  ({:.1f} s)\n", seed, scheme_names[k],
               outcomes[k].back().test_accuracy, seconds.count());
    std::fflush(stdout);
    return true;
  };
  return run(0, hsgd::Topology::local_sgd(s.workers, s.local_period), hsgd::ContiguousGrouping{}) &&
         run(1, hierarchy, hsgd::RandomGrouping{}) && run(2, hierarchy, hsgd::ExplicitGrouping(non_iid_groups)) &&
         run(3, hsgd::Topology::local_sgd(s.workers, s.global_period), hsgd::ContiguousGrouping{});
}

/// Builds the seed's shards and held-out objective for the chosen model, then runs the seed.
bool run_seed(const Settings& s, example::Study& study, std::uint64_t seed, const example::FashionMnist& data,
              std::vector<std::vector<Outcome>>& outcomes) {
  const hsgd::Partition partition =
      hsgd::partition_shards(data.train, {.workers = s.workers, .shards_per_worker = 2, .seed = seed});
  if (s.objective == "softmax") {
    const auto shards = hsgd::make_softmax_shards(data.train, partition, s.lambda);
    const hsgd::Vector<double> start = hsgd::Vector<double>::Zero(shards.front().dimension());
    return run_seed(s, study, seed, shards, hsgd::SoftmaxRegression<double>(data.test, 0.0), start, partition,
                    data.train, outcomes);
  }
  const auto shards = hsgd::make_tanh_network_shards(data.train, partition, s.hidden, s.lambda);
  hsgd::Rng rng = hsgd::make_stream(seed, hsgd::StreamKind::initial_model, 0);
  const hsgd::Vector<double> start = shards.front().initial_model(rng);
  return run_seed(s, study, seed, shards, hsgd::TanhNetwork<double>(data.test, s.hidden, 0.0), start, partition,
                  data.train, outcomes);
}

std::vector<double> field(const std::vector<Outcome>& outcomes, double Outcome::*member) {
  std::vector<double> values;
  for (const auto& outcome : outcomes) values.push_back(outcome.*member);
  return values;
}

void print_table(const Settings& s, const std::vector<std::vector<Outcome>>& outcomes) {
  fmt::print("\n{:<18} {:>13} {:>10} {:>24} {:>10} {:>10} {:>10}\n", "scheme", "test accuracy", "test loss",
             "mean ||grad f(xbar)||^2", "D_up", "D_down", "messages");
  for (std::size_t k = 0; k < scheme_names.size(); ++k) {
    if (outcomes[k].empty()) continue;
    const auto mean = [&](double Outcome::*member) { return hsgd::sample_mean(field(outcomes[k], member)).mean; };
    fmt::print("{:<18} {:>13.4f} {:>10.4f} {:>24.4e} {:>10.3e} {:>10.3e} {:>10}\n", scheme_names[k],
               mean(&Outcome::test_accuracy), mean(&Outcome::test_loss), mean(&Outcome::mean_gradient_norm_squared),
               mean(&Outcome::mean_d_up), mean(&Outcome::mean_d_down), outcomes[k].front().messages);
  }
  fmt::print("(test figures of the global average after step {} on the 10 000 held-out images; means over {} seed(s); "
             "||grad f||^2, D_up and D_down time-averaged, estimated from 32 samples per worker)\n",
             s.steps, s.seeds);
}

/// The chosen schemes in the table's order.
std::vector<std::string> chosen_schemes(const Settings& s) {
  std::vector<std::string> chosen;
  for (const auto& name : scheme_names)
    if (s.schemes.contains(name)) chosen.push_back(name);
  return chosen;
}

Settings read_settings(example::Flags& flags) {
  Settings s{};
  example::RunFlags defaults = example::fashion_run_defaults();
  defaults.seeds = 1;
  defaults.probe_every = 50;
  defaults.csv = "fashion.csv";
  static_cast<example::RunFlags&>(s) = example::RunFlags::read(flags, defaults);
  s.data_directory = flags.text("data", example::fashion_mnist_directory, "directory of the four Fashion-MNIST IDX files");
  s.objective = flags.text("objective", "softmax", "softmax (softmax regression) or tanh (two-layer tanh network)");
  s.hidden = flags.integer("hidden", 32, "hidden units of the tanh network");
  s.lambda = flags.real("lambda", 1e-4,
                        "weight of the non-convex penalty lambda sum_i x_i^2 / (1 + x_i^2) in training (B1's is 1e-3)");
  s.test_every = flags.integer("test-every", 50, "steps between test-accuracy measurements");
  s.threads = flags.integer("threads", 2, "threads per run (results do not depend on it)");
  const std::string schemes = flags.text("schemes", "all", "comma-separated subset of the schemes, or all");
  s.checkpoints = example::CheckpointFlags::read(flags);
  if (schemes == "all") {
    s.schemes.insert(scheme_names.begin(), scheme_names.end());
  } else {
    for (std::size_t start = 0; start <= schemes.size();) {
      const std::size_t end = std::min(schemes.find(',', start), schemes.size());
      const std::string name = schemes.substr(start, end - start);
      if (std::find(scheme_names.begin(), scheme_names.end(), name) == scheme_names.end())
        throw std::invalid_argument(fmt::format("'--schemes' names '{}', which is none of {}", name, fmt::join(scheme_names, ", ")));
      s.schemes.insert(name);
      start = end + 1;
    }
  }
  if (s.objective != "softmax" && s.objective != "tanh")
    throw std::invalid_argument(fmt::format("'--objective' ({}) must be softmax or tanh", s.objective));
  return s;
}

}  // namespace

int main(int argc, char** argv) try {
  example::Flags flags(argc, argv,
                       "fashion: local SGD with period I, H-SGD(I, G) with random and group-non-IID groups, and local SGD "
                       "with period G on Fashion-MNIST split into two-class label shards, with the held-out test accuracy");
  const Settings s = read_settings(flags);
  if (flags.help_requested()) return 0;

  fmt::print("fashion: Fashion-MNIST from {}, {} on two-class label shards; n = {} in {} groups, I = {}, G = {}, "
             "gamma = {}, batch = {}, T = {}; schemes {}; {} seed(s); test accuracy every {} steps\n",
             s.data_directory, s.objective == "softmax" ? "softmax regression" : fmt::format("a tanh network of {} hidden units", s.hidden),
             s.workers, s.groups, s.local_period, s.global_period, s.learning_rate, s.batch, s.steps,
             fmt::join(chosen_schemes(s), ", "), s.seeds, s.test_every);
  std::fflush(stdout);
  example::Study study(flags, s.checkpoints, s.csv, {"scheme", "seed"}, 2);
  std::vector<std::vector<Outcome>> outcomes(scheme_names.size());
  std::optional<example::FashionMnist> data;
  for (hsgd::Index seed = 1; seed <= s.seeds; ++seed) {
    if (!data) {
      fmt::print(stderr, "reading Fashion-MNIST...\n");
      data = example::read_fashion_mnist(s.data_directory);
    }
    if (!run_seed(s, study, static_cast<std::uint64_t>(seed), *data, outcomes)) return study.exit_code();
  }
  print_table(s, outcomes);
  if (study.csv() != nullptr) fmt::print("wrote {}\n", s.csv);
  return 0;
} catch (const std::exception& error) {
  fmt::print(stderr, "fashion: {}\n", error.what());
  return 1;
}
