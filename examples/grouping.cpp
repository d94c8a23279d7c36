// grouping: one non-IID problem, four ways to put its workers into groups: contiguous (worker ids
// in blocks, as PyTorch and the paper's code do), random, group-IID (every group's label mix close
// to the global one) and group-non-IID (workers with alike labels together).
//
// First, at the same points (the global average of a local-SGD run, so no grouping shapes them),
// it splits the global divergence D_glob = D_up + D_down under each grouping: D_glob does not
// depend on the grouping, only how it splits does. Group-IID drives D_up towards 0, group-non-IID
// drives D_down towards 0, random grouping gives D_up about (N - 1)/(n - 1) of D_glob. Then it
// runs H-SGD(I, G) under each grouping: upward divergence is paid at G, downward at I, so the
// grouping with the small D_up converges best.

#include <cstdint>
#include <exception>
#include <string>
#include <tuple>
#include <vector>

#include <fmt/core.h>

#include <hsgd/hsgd.hpp>

#include "cli.hpp"
#include "problem.hpp"

namespace {

struct Settings : example::RunFlags {
  example::ProblemFlags problem;
};

const std::vector<std::string> grouping_names{"contiguous", "random", "group-iid", "group-noniid"};

/// Sums over probe points and seeds, one per grouping.
struct Split {
  double d_up = 0, d_down = 0, d_glob = 0;  // at the shared points
  double run_gradient = 0, run_d_up = 0, run_d_down = 0;  // the grouping's own H-SGD run
  int points = 0;
};

template <class Engines, class Shards>
void split_at_shared_points(const Settings& s, Engines& engines, const Shards& shards, const hsgd::Vector<double>& start,
                            std::uint64_t seed, std::vector<Split>& splits) {
  hsgd::Engine reference(hsgd::Topology::local_sgd(s.workers, s.global_period), shards, hsgd::UniformSampler(s.batch),
                         s.options(seed));
  reference.set_model(start);
  const hsgd::Index dimension = reference.dimension();
  hsgd::Vector<double> average(dimension);
  hsgd::Matrix<double> gradients(dimension, s.workers);
  hsgd::LevelDecomposition<double> decomposition(std::get<0>(engines).topology(), dimension);
  reference.run(hsgd::every(s.probe_every, [&](const auto& run) {
    run.global_average(average);
    for (hsgd::Index j = 0; j < s.workers; ++j) shards[static_cast<std::size_t>(j)].gradient(average, gradients.col(j));
    std::size_t k = 0;
    std::apply(
        [&](auto&... engine) {
          ((decomposition.compute(engine, gradients), splits[k].d_down += decomposition.terms()[0],
            splits[k].d_up += decomposition.terms()[1], splits[k].d_glob += decomposition.total(), ++splits[k].points,
            ++k),
           ...);
        },
        engines);
  }));
}

template <class Engine>
void run_grouping(const Settings& s, const std::string& name, Engine& engine, const hsgd::Vector<double>& start,
                  std::uint64_t seed, hsgd::CsvRecorder* csv, Split& split) {
  engine.set_model(start);
  if (csv != nullptr) csv->set_tags({name, std::to_string(seed)});
  example::RunRecorder recorder{csv, {}};
  auto probe = hsgd::make_probe(engine, {.gradient_every = s.probe_every, .model_every = s.probe_every}, recorder);
  engine.run(probe);
  split.run_gradient += hsgd::time_average(recorder.memory.rows, &hsgd::ProbeRecord::gradient_norm_squared);
  split.run_d_up += hsgd::time_average(recorder.memory.rows, &hsgd::ProbeRecord::d_up);
  split.run_d_down += hsgd::time_average(recorder.memory.rows, &hsgd::ProbeRecord::d_down);
}

void run_seed(const Settings& s, std::uint64_t seed, hsgd::CsvRecorder* csv, std::vector<Split>& splits) {
  const hsgd::Topology topology = hsgd::Topology::two_level(s.workers, s.groups, s.local_period, s.global_period);
  const std::vector<hsgd::Index> group_sizes = example::group_sizes(topology);
  const auto data = example::make_split(s.problem, group_sizes, s.workers, seed);
  const auto iid_groups = hsgd::group_iid_layout(data.partition, data.data.labels, s.problem.classes, group_sizes);
  const auto non_iid_groups = hsgd::group_non_iid_layout(data.partition, data.data.labels, s.problem.classes, group_sizes);

  example::with_objective(s.problem, data, seed, [&](const auto& shards, const hsgd::Vector<double>& start) {
    const auto make = [&](auto grouping) {
      return hsgd::Engine(topology, shards, hsgd::UniformSampler(s.batch), s.options(seed), hsgd::Sgd{}, hsgd::ConstantRate{},
                          std::move(grouping));
    };
    auto engines = std::make_tuple(make(hsgd::ContiguousGrouping{}), make(hsgd::RandomGrouping{}),
                                   make(hsgd::ExplicitGrouping(iid_groups)), make(hsgd::ExplicitGrouping(non_iid_groups)));
    split_at_shared_points(s, engines, shards, start, seed, splits);
    std::size_t k = 0;
    std::apply([&](auto&... engine) { ((run_grouping(s, grouping_names[k], engine, start, seed, csv, splits[k]), ++k), ...); },
               engines);
  });
  fmt::print("  seed {} done\n", seed);
}

void print_table(const Settings& s, const std::vector<Split>& splits) {
  fmt::print("\nat the same points xbar_t (of local SGD with period G), means over {} seeds:\n", s.seeds);
  fmt::print("{:<14} {:>11} {:>11} {:>11} {:>13}   | H-SGD run: {:>12} {:>11} {:>11}\n", "grouping", "D_up", "D_down",
             "D_glob", "D_up / D_glob", "||grad f||^2", "D_up", "D_down");
  for (std::size_t k = 0; k < splits.size(); ++k) {
    const Split& t = splits[k];
    const double points = t.points, seeds = static_cast<double>(s.seeds);
    fmt::print("{:<14} {:>11.4e} {:>11.4e} {:>11.4e} {:>13.3f}   | {:>22.4e} {:>11.4e} {:>11.4e}\n", grouping_names[k],
               t.d_up / points, t.d_down / points, t.d_glob / points, t.d_up / t.d_glob, t.run_gradient / seeds,
               t.run_d_up / seeds, t.run_d_down / seeds);
  }
  fmt::print("random grouping: E[D_up] / D_glob = (N - 1)/(n - 1) = {:.3f}\n",
             double(s.groups - 1) / double(s.workers - 1));
}

}  // namespace

int main(int argc, char** argv) try {
  example::Flags flags(argc, argv,
                       "grouping: how contiguous, random, group-IID and group-non-IID grouping split D_glob into "
                       "D_up and D_down, and what that does to H-SGD");
  Settings s{};
  static_cast<example::RunFlags&>(s) = example::RunFlags::read(flags, example::RunFlags{});
  s.problem = example::ProblemFlags::read(flags);
  if (flags.help_requested()) return 0;

  fmt::print("grouping: n = {}, N = {}, I = {}, G = {}; {} on {} classes, partition {}\n", s.workers, s.groups,
             s.local_period, s.global_period, s.problem.objective, s.problem.classes, s.problem.partition);
  const auto csv = example::open_csv(s.csv, {"grouping", "seed"}, 2);
  std::vector<Split> splits(grouping_names.size());
  for (hsgd::Index seed = 1; seed <= s.seeds; ++seed) run_seed(s, static_cast<std::uint64_t>(seed), csv.get(), splits);
  print_table(s, splits);
  if (csv) fmt::print("wrote {}\n", s.csv);
  return 0;
} catch (const std::exception& error) {
  fmt::print(stderr, "grouping: {}\n", error.what());
  return 1;
}
