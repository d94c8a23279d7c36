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
#include <stdexcept>
#include <string_view>
#include <utility>
#include <string>
#include <tuple>
#include <vector>

#include <fmt/core.h>

#include <hsgd/hsgd.hpp>

#include "checkpointing.hpp"
#include "cli.hpp"
#include "problem.hpp"

namespace {

struct Settings : example::RunFlags {
  example::ProblemFlags problem;
  example::CheckpointFlags checkpoints;
};

const std::vector<std::string> grouping_names{"contiguous", "random", "group-iid", "group-noniid"};

/// Sums over probe points and seeds, one per grouping.
struct Split {
  double d_up = 0, d_down = 0, d_glob = 0;  // at the shared points
  double run_gradient = 0, run_d_up = 0, run_d_down = 0;  // the grouping's own H-SGD run
  int points = 0;
};

/// Each grouping's D_up, D_down and D_glob summed over the shared points of one seed: the state
/// of the reference run, saved with it in checkpoints.
struct SharedPoints {
  std::vector<double> sums = std::vector<double>(3 * grouping_names.size(), 0.0);  // D_up, D_down, D_glob per grouping
  double points = 0;

  [[nodiscard]] std::string_view checkpoint_name() const { return "shared points"; }
  template <class Archive>
  void checkpoint(Archive& archive) {
    const auto expected = sums.size();
    const auto& loaded = archive.reals("the sums", sums, static_cast<hsgd::Index>(expected));
    archive.check(loaded.size() == expected, "holds {} sums where {} were expected", loaded.size(), expected);
    archive.real("the points", points);
  }
};

/// The reference run (local SGD with period G): at its probe points, the divergences of every
/// grouping at the same xbar_t. Run 0 of the seed; false when a signal stopped it.
template <class Engines, class Shards>
bool split_at_shared_points(const Settings& s, example::Study& study, hsgd::Index run, Engines& engines,
                            const Shards& shards, const hsgd::Vector<double>& start, std::uint64_t seed) {
  hsgd::Engine reference(hsgd::Topology::local_sgd(s.workers, s.global_period), shards, hsgd::UniformSampler(s.batch),
                         s.options(seed));
  reference.set_model(start);
  const hsgd::Index dimension = reference.dimension();
  hsgd::Vector<double> average(dimension);
  hsgd::Matrix<double> gradients(dimension, s.workers);
  hsgd::LevelDecomposition<double> decomposition(std::get<0>(engines).topology(), dimension);
  SharedPoints shared;
  auto measure = hsgd::every(s.probe_every, [&](const auto& at) {
    at.global_average(average);
    for (hsgd::Index j = 0; j < s.workers; ++j) shards[static_cast<std::size_t>(j)].gradient(average, gradients.col(j));
    std::size_t k = 0;
    std::apply(
        [&](auto&... engine) {
          ((decomposition.compute(engine, gradients), shared.sums[3 * k] += decomposition.terms()[1],
            shared.sums[3 * k + 1] += decomposition.terms()[0], shared.sums[3 * k + 2] += decomposition.total(), ++k),
           ...);
        },
        engines);
    shared.points += 1;
  });
  if (!study.run(run, reference, std::tie(shared), measure)) return false;
  std::vector<double> numbers = shared.sums;
  numbers.push_back(shared.points);
  study.finish(run, std::move(numbers), reference, std::tie(shared));
  return true;
}

/// One grouping's own H-SGD run, as run `run` of the study; false when a signal stopped it.
template <class Engine>
bool run_grouping(const Settings& s, example::Study& study, hsgd::Index run, const std::string& name, Engine& engine,
                  const hsgd::Vector<double>& start, std::uint64_t seed) {
  engine.set_model(start);
  if (study.csv() != nullptr) study.csv()->set_tags({name, std::to_string(seed)});
  example::RunRecorder recorder{study.csv(), {}};
  auto probe = hsgd::make_probe(engine, {.gradient_every = s.probe_every, .model_every = s.probe_every}, recorder);
  if (!study.run(run, engine, std::tie(probe, recorder.memory), probe)) return false;
  study.finish(run,
               {hsgd::time_average(recorder.memory.rows, &hsgd::ProbeRecord::gradient_norm_squared),
                hsgd::time_average(recorder.memory.rows, &hsgd::ProbeRecord::d_up),
                hsgd::time_average(recorder.memory.rows, &hsgd::ProbeRecord::d_down)},
               engine, std::tie(probe, recorder.memory));
  return true;
}

/// Adds one seed's results (runs first_run ... first_run + 4) to the splits.
void accumulate(const example::Study& study, hsgd::Index first_run, std::vector<Split>& splits) {
  const auto& shared = study.result(first_run);
  if (shared.size() != 3 * splits.size() + 1) throw std::invalid_argument("the checkpoint's results are not grouping's");
  for (std::size_t k = 0; k < splits.size(); ++k) {
    const auto& own = study.result(first_run + 1 + static_cast<hsgd::Index>(k));
    if (own.size() != 3) throw std::invalid_argument("the checkpoint's results are not grouping's");
    splits[k].d_up += shared[3 * k];
    splits[k].d_down += shared[3 * k + 1];
    splits[k].d_glob += shared[3 * k + 2];
    splits[k].points += static_cast<int>(example::whole(shared.back(), 0, 1 << 30));
    splits[k].run_gradient += own[0];
    splits[k].run_d_up += own[1];
    splits[k].run_d_down += own[2];
  }
}

/// One seed: the reference run, then each grouping's run. False when a signal stopped the study.
bool run_seed(const Settings& s, example::Study& study, std::uint64_t seed, std::vector<Split>& splits) {
  const auto first_run = static_cast<hsgd::Index>((seed - 1) * (grouping_names.size() + 1));
  const auto runs = static_cast<hsgd::Index>(grouping_names.size() + 1);
  bool going = true;
  if (!study.finished(first_run + runs - 1)) {
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
      if (!study.finished(first_run)) going = split_at_shared_points(s, study, first_run, engines, shards, start, seed);
      hsgd::Index run = first_run + 1;
      std::apply(
          [&](auto&... engine) {
            ((going = going && (study.finished(run) ||
                                run_grouping(s, study, run, grouping_names[static_cast<std::size_t>(run - first_run - 1)],
                                             engine, start, seed)),
              ++run),
             ...);
          },
          engines);
    });
  }
  if (!going) return false;
  accumulate(study, first_run, splits);
  fmt::print("  seed {} done\n", seed);
  return true;
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
  s.checkpoints = example::CheckpointFlags::read(flags);
  if (flags.help_requested()) return 0;

  fmt::print("grouping: n = {}, N = {}, I = {}, G = {}; {} on {} classes, partition {}\n", s.workers, s.groups,
             s.local_period, s.global_period, s.problem.objective, s.problem.classes, s.problem.partition);
  example::Study study(flags, s.checkpoints, s.csv, {"grouping", "seed"}, 2);
  std::vector<Split> splits(grouping_names.size());
  for (hsgd::Index seed = 1; seed <= s.seeds; ++seed) {
    if (!run_seed(s, study, static_cast<std::uint64_t>(seed), splits)) return study.exit_code();
  }
  print_table(s, splits);
  if (study.csv() != nullptr) fmt::print("wrote {}\n", s.csv);
  return 0;
} catch (const std::exception& error) {
  fmt::print(stderr, "grouping: {}\n", error.what());
  return 1;
}
