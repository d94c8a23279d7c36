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
#include <exception>
#include <limits>
#include <stdexcept>
#include <tuple>
#include <string>
#include <vector>

#include <fmt/core.h>

#include <hsgd/hsgd.hpp>

#include "checkpointing.hpp"
#include "cli.hpp"
#include "problem.hpp"

namespace {

struct Settings : example::RunFlags {
  hsgd::Index threads = 1;
  example::ProblemFlags problem;
  example::CheckpointFlags checkpoints;
};

/// One run's outcome.
struct Outcome {
  double mean_gradient_norm_squared;  // time average over the probed steps
  double mean_d_up, mean_d_down;
  double final_loss, final_accuracy;
  hsgd::Index messages;
};

/// The schemes, in the order of the table: name, and whether it is one of the sandwich's three.
const std::vector<std::string> scheme_names{"local-sgd-I", "hsgd-random", "local-sgd-G", "hsgd-group-iid",
                                            "hsgd-group-noniid"};

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

/// The outcome as the numbers a checkpoint keeps, and back.
std::vector<double> numbers(const Outcome& o) {
  return {o.mean_gradient_norm_squared, o.mean_d_up, o.mean_d_down, o.final_loss, o.final_accuracy,
          static_cast<double>(o.messages)};
}
Outcome outcome_from(const std::vector<double>& v) {
  if (v.size() != 6) throw std::invalid_argument("the checkpoint's results are not the sandwich's");
  return {v[0], v[1], v[2], v[3], v[4], example::whole(v[5], 0, std::numeric_limits<hsgd::Index>::max() / 2)};
}

/// Runs scheme `scheme` of one seed as run `run` of the study; false when a signal stopped it.
template <class Shards, class Grouping>
bool run_scheme(const Settings& s, example::Study& study, hsgd::Index run, const std::string& scheme,
                const hsgd::Topology& topology, const Shards& shards, const hsgd::Vector<double>& start,
                Grouping grouping, std::uint64_t seed) {
  hsgd::Engine engine(topology, shards, hsgd::UniformSampler(s.batch), s.options(seed, s.threads), hsgd::Sgd{}, hsgd::ConstantRate{},
                      std::move(grouping));
  engine.set_model(start);
  if (study.csv() != nullptr) study.csv()->set_tags({scheme, std::to_string(seed)});
  example::RunRecorder recorder{study.csv(), {}};
  auto probe = hsgd::make_probe(engine, {.gradient_every = s.probe_every, .model_every = s.probe_every}, recorder);
  if (!study.run(run, engine, std::tie(probe, recorder.memory), probe)) return false;

  const auto& rows = recorder.memory.rows;
  const hsgd::Vector<double> average = engine.global_average();
  const Outcome outcome{hsgd::time_average(rows, &hsgd::ProbeRecord::gradient_norm_squared),
                        hsgd::time_average(rows, &hsgd::ProbeRecord::d_up),
                        hsgd::time_average(rows, &hsgd::ProbeRecord::d_down),
                        engine.loss(average),
                        accuracy(shards, average),
                        rows.empty() ? 0 : rows.back().messages};
  study.finish(run, numbers(outcome), engine, std::tie(probe, recorder.memory));
  return true;
}

/// Runs the five schemes on one seed's problem; outcomes[scheme] gains this seed's outcome.
/// False when a signal stopped the study.
bool run_seed(const Settings& s, example::Study& study, std::uint64_t seed, std::vector<std::vector<Outcome>>& outcomes) {
  const auto first_run = static_cast<hsgd::Index>((seed - 1) * scheme_names.size());
  if (study.finished(first_run + static_cast<hsgd::Index>(scheme_names.size()) - 1)) {  // all five: no data needed
    for (std::size_t k = 0; k < scheme_names.size(); ++k)
      outcomes[k].push_back(outcome_from(study.result(first_run + static_cast<hsgd::Index>(k))));
    fmt::print("  seed {:>3}  finished before the checkpoint\n", seed);
    return true;
  }
  const hsgd::Topology hierarchy = hsgd::Topology::two_level(s.workers, s.groups, s.local_period, s.global_period);
  const std::vector<hsgd::Index> group_sizes = example::group_sizes(hierarchy);
  const example::SplitData split = example::make_split(s.problem, group_sizes, s.workers, seed);
  const auto iid_groups = hsgd::group_iid_layout(split.partition, split.data.labels, s.problem.classes, group_sizes);
  const auto non_iid_groups = hsgd::group_non_iid_layout(split.partition, split.data.labels, s.problem.classes, group_sizes);

  bool going = true;
  example::with_objective(s.problem, split, seed, [&](const auto& shards, const hsgd::Vector<double>& start) {
    const auto run = [&](std::size_t k, const hsgd::Topology& topology, auto grouping) {
      const hsgd::Index index = first_run + static_cast<hsgd::Index>(k);
      if (!going) return;
      const auto begin = std::chrono::steady_clock::now();
      if (!study.finished(index)) going = run_scheme(s, study, index, scheme_names[k], topology, shards, start, grouping, seed);
      if (!going) return;
      outcomes[k].push_back(outcome_from(study.result(index)));
      const std::chrono::duration<double> seconds = std::chrono::steady_clock::now() - begin;
      fmt::print("  seed {:>3}  {:<18} mean ||grad f(xbar)||^2 = {:.4e}  ({:.1f} s)\n", seed, scheme_names[k],
                 outcomes[k].back().mean_gradient_norm_squared, seconds.count());
    };
    run(0, hsgd::Topology::local_sgd(s.workers, s.local_period), hsgd::ContiguousGrouping{});
    run(1, hierarchy, hsgd::RandomGrouping{});
    run(2, hsgd::Topology::local_sgd(s.workers, s.global_period), hsgd::ContiguousGrouping{});
    run(3, hierarchy, hsgd::ExplicitGrouping(iid_groups));
    run(4, hierarchy, hsgd::ExplicitGrouping(non_iid_groups));
  });
  return going;
}

std::vector<double> field(const std::vector<Outcome>& outcomes, double Outcome::*member) {
  std::vector<double> values;
  for (const auto& outcome : outcomes) values.push_back(outcome.*member);
  return values;
}

void print_table(const Settings& s, const std::vector<std::vector<Outcome>>& outcomes) {
  fmt::print("\n{:<18} {:>24} {:>11} {:>11} {:>10} {:>9} {:>9}\n", "scheme", "mean ||grad f(xbar)||^2", "D_up",
             "D_down", "f(xbar_T)", "accuracy", "messages");
  for (std::size_t k = 0; k < scheme_names.size(); ++k) {
    const auto gradient = hsgd::sample_mean(field(outcomes[k], &Outcome::mean_gradient_norm_squared));
    fmt::print("{:<18} {:>14.4e} +- {:<7.1e} {:>11.3e} {:>11.3e} {:>10.4f} {:>9.4f} {:>9}\n", scheme_names[k],
               gradient.mean, gradient.standard_error, hsgd::sample_mean(field(outcomes[k], &Outcome::mean_d_up)).mean,
               hsgd::sample_mean(field(outcomes[k], &Outcome::mean_d_down)).mean,
               hsgd::sample_mean(field(outcomes[k], &Outcome::final_loss)).mean,
               hsgd::sample_mean(field(outcomes[k], &Outcome::final_accuracy)).mean, outcomes[k].front().messages);
  }
  fmt::print("(means over {} seeds, +- one standard error; D_up, D_down time-averaged at xbar_t)\n\n", s.seeds);
  const auto check = hsgd::check_sandwich(field(outcomes[0], &Outcome::mean_gradient_norm_squared),
                                          field(outcomes[1], &Outcome::mean_gradient_norm_squared),
                                          field(outcomes[2], &Outcome::mean_gradient_norm_squared));
  fmt::print("local-sgd-I <= hsgd-random <= local-sgd-G: {}\n", check);
}

}  // namespace

int main(int argc, char** argv) try {
  example::Flags flags(argc, argv,
                       "sandwich: local SGD with period I, H-SGD(I, G) under random, group-IID and group-non-IID "
                       "grouping, and local SGD with period G, on a non-IID classification problem over several seeds");
  Settings s{};
  example::RunFlags defaults;
  defaults.seeds = 5;
  defaults.probe_every = 16;
  static_cast<example::RunFlags&>(s) = example::RunFlags::read(flags, defaults);
  s.threads = flags.integer("threads", 1, "threads per run (results do not depend on it)");
  s.problem = example::ProblemFlags::read(flags);
  s.checkpoints = example::CheckpointFlags::read(flags);
  if (flags.help_requested()) return 0;

  fmt::print("sandwich: n = {}, N = {}, I = {}, G = {}, gamma = {}, T = {}, batch = {}; {} on {} classes, d = {}, "
             "partition {}\n",
             s.workers, s.groups, s.local_period, s.global_period, s.learning_rate, s.steps, s.batch,
             s.problem.objective, s.problem.classes, s.problem.dimension, s.problem.partition);
  example::Study study(flags, s.checkpoints, s.csv, {"scheme", "seed"}, 2);
  std::vector<std::vector<Outcome>> outcomes(scheme_names.size());
  for (hsgd::Index seed = 1; seed <= s.seeds; ++seed) {
    if (!run_seed(s, study, static_cast<std::uint64_t>(seed), outcomes)) return study.exit_code();
  }
  print_table(s, outcomes);
  if (study.csv() != nullptr) fmt::print("wrote {}\n", s.csv);
  return 0;
} catch (const std::exception& error) {
  fmt::print(stderr, "sandwich: {}\n", error.what());
  return 1;
}
