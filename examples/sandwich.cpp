// sandwich: the paper's "sandwich" on a non-IID classification problem. Over several seeds it
// runs local SGD with the local period I, H-SGD(I, G) with random groups, local SGD with the
// global period G, and H-SGD with group-IID and group-non-IID groups, probing ||grad f(xbar_t)||^2,
// D_up and D_down as it goes. With random grouping the time-averaged ||grad f(xbar_t)||^2 of
// H-SGD is expected between the two local SGDs; with group-IID groups (D_up ~ 0) H-SGD pays only
// the downward divergence at I and comes close to local SGD with period I, with group-non-IID
// groups (D_down ~ 0) it pays the upward divergence at G and comes close to local SGD with G.
//
//   sandwich --csv sandwich.csv && python3 examples/plot_sandwich.py sandwich.csv sandwich.png

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/core.h>

#include <hsgd/hsgd.hpp>

#include "cli.hpp"
#include "problem.hpp"

namespace {

constexpr std::string_view description =
    "sandwich: local SGD with period I, H-SGD(I, G) under random, group-IID and group-non-IID grouping, and local SGD "
    "with period G, on a non-IID classification problem over several seeds";

struct Settings : example::RunFlags {
  hsgd::Index threads = 1;
  example::ProblemFlags problem{};
  hsgd::StudyOptions study{};

  [[nodiscard]] std::string header() const {
    return fmt::format("sandwich: n = {}, N = {}, I = {}, G = {}, gamma = {}, T = {}, batch = {}; {} on {} classes, d = {}, "
                       "partition {}",
                       workers, groups, local_period, global_period, learning_rate, steps, batch, problem.objective,
                       problem.classes, problem.dimension, problem.partition);
  }
};

/// The schemes, in the order of the table (the first three are the sandwich's).
const std::vector<std::string> schemes{"local-sgd-I", "hsgd-random", "local-sgd-G", "hsgd-group-iid", "hsgd-group-noniid"};
/// A run's results (example::probe_results, then the end of the run).
enum Result : std::size_t { mean_gradient_norm_squared, mean_d_up, mean_d_down, messages, final_loss, final_accuracy };

template <class Shards>
double accuracy(const Shards& shards, const hsgd::Vector<double>& x) {
  double correct = 0;
  double total = 0;
  for (const auto& shard : shards) {
    correct += shard.accuracy(x) * static_cast<double>(shard.sample_count());
    total += static_cast<double>(shard.sample_count());
  }
  return correct / total;
}

/// Scheme k of one seed, the study's next run (skipped if it finished before the resume); false
/// when a signal stopped it.
template <class Shards, class Grouping>
bool run_scheme(const Settings& s, hsgd::Study& study, std::size_t k, const hsgd::Topology& topology,
                const Shards& shards, const hsgd::Vector<double>& start, Grouping grouping, std::uint64_t seed) {
  const auto begin = std::chrono::steady_clock::now();
  if (!study.skip_finished()) {
    hsgd::Engine engine(topology, shards, hsgd::UniformSampler(s.batch), s.options(seed, s.threads), std::move(grouping));
    engine.set_model(start);
    study.set_tags({schemes[k], std::to_string(seed)});
    auto probe = hsgd::make_probe(engine, {.gradient_every = s.probe_every, .model_every = s.probe_every}, study);
    const auto summary = study.run(engine, probe);
    if (!summary) return false;
    study.finish(example::probe_results(study.records(), {summary->loss, accuracy(shards, engine.global_average())}));
  }
  const std::chrono::duration<double> seconds = std::chrono::steady_clock::now() - begin;
  fmt::print("  seed {:>3}  {:<18} mean ||grad f(xbar)||^2 = {:.4e}  ({:.1f} s)\n", seed, schemes[k],
             study.result(study.next() - 1)[mean_gradient_norm_squared], seconds.count());
  return true;
}

/// The five schemes on each seed's problem; false when a signal stopped the study.
bool run(const Settings& s, hsgd::Study& study) {
  for (hsgd::Index index = 1; index <= s.seeds; ++index) {
    const auto seed = static_cast<std::uint64_t>(index);
    if (study.finished(static_cast<hsgd::Index>(schemes.size()))) {  // all five: no data needed
      for (std::size_t k = 0; k < schemes.size(); ++k) study.skip_finished();
      fmt::print("  seed {:>3}  finished before the checkpoint\n", seed);
      continue;
    }
    const hsgd::Topology hierarchy = hsgd::Topology::two_level(s.workers, s.groups, s.local_period, s.global_period);
    const std::vector<hsgd::Index> sizes = example::group_sizes(hierarchy);
    const example::SplitData split = example::make_split(s.problem, sizes, s.workers, seed);
    const auto iid_groups = hsgd::group_iid_layout(split.partition, split.data.labels, s.problem.classes, sizes);
    const auto non_iid_groups = hsgd::group_non_iid_layout(split.partition, split.data.labels, s.problem.classes, sizes);
    bool going = true;
    example::with_objective(s.problem, split, seed, [&](const auto& shards, const hsgd::Vector<double>& start) {
      const auto scheme = [&](std::size_t k, const hsgd::Topology& topology, auto grouping) {
        going = going && run_scheme(s, study, k, topology, shards, start, grouping, seed);
      };
      scheme(0, hsgd::Topology::local_sgd(s.workers, s.local_period), hsgd::ContiguousGrouping{});
      scheme(1, hierarchy, hsgd::RandomGrouping{});
      scheme(2, hsgd::Topology::local_sgd(s.workers, s.global_period), hsgd::ContiguousGrouping{});
      scheme(3, hierarchy, hsgd::ExplicitGrouping(iid_groups));
      scheme(4, hierarchy, hsgd::ExplicitGrouping(non_iid_groups));
    });
    if (!going) return false;
  }
  return true;
}

void print_table(const Settings& s, const hsgd::Study& study) {
  const auto values = [&](std::size_t k, Result field) { return example::over_seeds(study, schemes.size(), k, field); };
  const auto mean = [&](std::size_t k, Result field) { return hsgd::sample_mean(values(k, field)).mean; };
  fmt::print("\n{:<18} {:>24} {:>11} {:>11} {:>10} {:>9} {:>9}\n", "scheme", "mean ||grad f(xbar)||^2", "D_up",
             "D_down", "f(xbar_T)", "accuracy", "messages");
  for (std::size_t k = 0; k < schemes.size(); ++k) {
    const auto gradient = hsgd::sample_mean(values(k, mean_gradient_norm_squared));
    fmt::print("{:<18} {:>14.4e} +- {:<7.1e} {:>11.3e} {:>11.3e} {:>10.4f} {:>9.4f} {:>9}\n", schemes[k], gradient.mean,
               gradient.standard_error, mean(k, mean_d_up), mean(k, mean_d_down), mean(k, final_loss),
               mean(k, final_accuracy), static_cast<hsgd::Index>(study.results()[k][messages]));
  }
  fmt::print("(means over {} seeds, +- one standard error; D_up, D_down time-averaged at xbar_t)\n\n", s.seeds);
  const auto check = hsgd::check_sandwich(values(0, mean_gradient_norm_squared), values(1, mean_gradient_norm_squared),
                                          values(2, mean_gradient_norm_squared));
  fmt::print("local-sgd-I <= hsgd-random <= local-sgd-G: {}\n", check);
}

Settings read_settings(example::Flags& flags) {
  Settings s{example::RunFlags::read(flags, {.seeds = 5, .probe_every = 16})};
  s.threads = flags.integer("threads", 1, "threads per run (results do not depend on it)");
  s.problem = example::ProblemFlags::read(flags);
  s.study = example::study_options(flags, s.csv, {"scheme", "seed"}, 2);
  return s;
}

}  // namespace

int main(int argc, char** argv) { return example::main(argc, argv, description, read_settings, run, print_table); }
