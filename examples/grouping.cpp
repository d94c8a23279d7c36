// grouping: one non-IID problem, four ways to put its workers into groups: contiguous (worker ids
// in blocks, as PyTorch and the paper's code do), random, group-IID (every group's label mix close
// to the global one) and group-non-IID (workers with alike labels together). First, at the same
// points (the global average of a local-SGD run, so no grouping shapes them), it splits the global
// divergence D_glob = D_up + D_down under each grouping: D_glob does not depend on the grouping,
// only how it splits does. Group-IID drives D_up towards 0, group-non-IID drives D_down towards 0,
// random grouping gives D_up about (N - 1)/(n - 1) of D_glob. Then it runs H-SGD(I, G) under each
// grouping: upward divergence is paid at G, downward at I, so the grouping with small D_up does best.

#include <cstdint>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include <fmt/core.h>

#include <hsgd/hsgd.hpp>

#include "cli.hpp"
#include "problem.hpp"

namespace {

constexpr std::string_view description =
    "grouping: how contiguous, random, group-IID and group-non-IID grouping split D_glob into D_up and D_down, and "
    "what that does to H-SGD";

struct Settings : example::RunFlags {
  example::ProblemFlags problem{};
  hsgd::StudyOptions study{};

  [[nodiscard]] std::string header() const {
    return fmt::format("grouping: n = {}, N = {}, I = {}, G = {}; {} on {} classes, partition {}", workers, groups,
                       local_period, global_period, problem.objective, problem.classes, problem.partition);
  }
};

const std::vector<std::string> grouping_names{"contiguous", "random", "group-iid", "group-noniid"};
constexpr std::size_t runs_per_seed = 5;  // the shared points, then each grouping's own run

/// D_up, D_down and D_glob of each grouping summed over the shared points of one seed, then the
/// number of points: the state of the reference run, saved with it, and its results.
struct SharedPoints {
  std::vector<double> sums = std::vector<double>(3 * grouping_names.size() + 1, 0.0);

  [[nodiscard]] std::string_view checkpoint_name() const { return "shared points"; }
  template <class Archive>
  void checkpoint(Archive& archive) {
    const auto expected = sums.size();
    const auto& loaded = archive.reals("the sums", sums, static_cast<hsgd::Index>(expected));
    archive.check(loaded.size() == expected, "holds {} sums where {} were expected", loaded.size(), expected);
  }
};

/// The reference run (local SGD with period G): at its probe points, the divergences of every
/// grouping at the same xbar_t. False when a signal stopped it.
template <class Engines, class Shards>
bool split_at_shared_points(const Settings& s, hsgd::Study& study, Engines& engines, const Shards& shards,
                            const hsgd::Vector<double>& start, std::uint64_t seed) {
  hsgd::Engine reference(hsgd::Topology::local_sgd(s.workers, s.global_period), shards, hsgd::UniformSampler(s.batch),
                         s.options(seed));
  reference.set_model(start);
  hsgd::Vector<double> average(reference.dimension());
  hsgd::Matrix<double> gradients(reference.dimension(), s.workers);
  hsgd::LevelDecomposition<double> decomposition(std::get<0>(engines).topology(), reference.dimension());
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
    shared.sums.back() += 1;
  });
  if (!study.run(reference, shared, measure)) return false;
  study.finish(shared.sums);
  return true;
}

/// Each seed: the reference run, then each grouping's own H-SGD run. False when a signal stopped the study.
bool run(const Settings& s, hsgd::Study& study) {
  for (hsgd::Index index = 1; index <= s.seeds; ++index) {
    const auto seed = static_cast<std::uint64_t>(index);
    bool going = true;
    if (study.finished(runs_per_seed)) {
      for (std::size_t k = 0; k < runs_per_seed; ++k) study.skip_finished();
    } else {
      const hsgd::Topology topology = hsgd::Topology::two_level(s.workers, s.groups, s.local_period, s.global_period);
      const std::vector<hsgd::Index> sizes = example::group_sizes(topology);
      const auto data = example::make_split(s.problem, sizes, s.workers, seed);
      const auto iid_groups = hsgd::group_iid_layout(data.partition, data.data.labels, s.problem.classes, sizes);
      const auto non_iid_groups = hsgd::group_non_iid_layout(data.partition, data.data.labels, s.problem.classes, sizes);
      example::with_objective(s.problem, data, seed, [&](const auto& shards, const hsgd::Vector<double>& start) {
        const auto make = [&](auto grouping) {
          return hsgd::Engine(topology, shards, hsgd::UniformSampler(s.batch), s.options(seed), std::move(grouping));
        };
        auto engines = std::make_tuple(make(hsgd::ContiguousGrouping{}), make(hsgd::RandomGrouping{}),
                                       make(hsgd::ExplicitGrouping(iid_groups)), make(hsgd::ExplicitGrouping(non_iid_groups)));
        going = study.skip_finished() || split_at_shared_points(s, study, engines, shards, start, seed);
        const auto own_run = [&](const std::string& name, auto& engine) {
          if (!going || study.skip_finished()) return;
          engine.set_model(start);
          study.set_tags({name, std::to_string(seed)});
          auto probe = hsgd::make_probe(engine, {.gradient_every = s.probe_every, .model_every = s.probe_every}, study);
          going = study.run(engine, probe).has_value();
          if (going) study.finish(example::probe_results(study.records()));
        };
        std::size_t k = 0;
        std::apply([&](auto&... engine) { (own_run(grouping_names[k++], engine), ...); }, engines);
      });
    }
    if (!going) return false;
    fmt::print("  seed {} done\n", seed);
  }
  return true;
}

void print_table(const Settings& s, const hsgd::Study& study) {
  const auto total = [&](std::size_t run, std::size_t field) { return example::sum_over_seeds(study, runs_per_seed, run, field); };
  fmt::print("\nat the same points xbar_t (of local SGD with period G), means over {} seeds:\n", s.seeds);
  fmt::print("{:<14} {:>11} {:>11} {:>11} {:>13}   | H-SGD run: {:>12} {:>11} {:>11}\n", "grouping", "D_up", "D_down",
             "D_glob", "D_up / D_glob", "||grad f||^2", "D_up", "D_down");
  const double points = total(0, 3 * grouping_names.size()), seeds = static_cast<double>(s.seeds);
  for (std::size_t k = 0; k < grouping_names.size(); ++k) {
    const double d_up = total(0, 3 * k), d_down = total(0, 3 * k + 1), d_glob = total(0, 3 * k + 2);
    fmt::print("{:<14} {:>11.4e} {:>11.4e} {:>11.4e} {:>13.3f}   | {:>22.4e} {:>11.4e} {:>11.4e}\n", grouping_names[k],
               d_up / points, d_down / points, d_glob / points, d_up / d_glob, total(k + 1, 0) / seeds,
               total(k + 1, 1) / seeds, total(k + 1, 2) / seeds);
  }
  fmt::print("random grouping: E[D_up] / D_glob = (N - 1)/(n - 1) = {:.3f}\n", double(s.groups - 1) / double(s.workers - 1));
}

Settings read_settings(example::Flags& flags) {
  Settings s{example::RunFlags::read(flags, {})};
  s.problem = example::ProblemFlags::read(flags);
  s.study = example::study_options(flags, s.csv, {"grouping", "seed"}, 2);
  return s;
}

}  // namespace

int main(int argc, char** argv) { return example::main(argc, argv, description, read_settings, run, print_table); }
