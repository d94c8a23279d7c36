// multilevel: H-SGD on three levels (edge servers every I steps, regional servers every M steps,
// the global server every G steps) under random grouping, next to two-level H-SGD(I, G) and local
// SGD with period G. Per level it reports the periods, units, aggregations and messages, and the
// share of the global divergence each level's term takes, against the random-grouping
// expectation (N_{l-1} - N_l)/(n - 1).

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/core.h>

#include <hsgd/hsgd.hpp>

#include "cli.hpp"
#include "problem.hpp"

namespace {

constexpr std::string_view description =
    "multilevel: three-level H-SGD with per-level divergences and communication, next to two-level H-SGD and local SGD";

struct Settings : example::RunFlags {
  hsgd::Index regions = 2, middle_period = 8;
  example::ProblemFlags problem{};
  hsgd::StudyOptions study{};

  [[nodiscard]] std::string header() const {
    return fmt::format("multilevel: n = {}, {} edge servers every {} steps, {} regional servers every {}, global every {}; "
                       "{} on {} classes, partition {}",
                       workers, groups, local_period, regions, middle_period, global_period, problem.objective,
                       problem.classes, problem.partition);
  }

  /// The schemes: three-level H-SGD, whose level-1 units are near-equal and each region a run of
  /// groups / regions of them, two-level H-SGD with the same groups, and local SGD with period G.
  [[nodiscard]] std::vector<std::pair<std::string, hsgd::Topology>> schemes() const {
    const hsgd::Topology two_level = hsgd::Topology::two_level(workers, groups, local_period, global_period);
    const std::vector<hsgd::Index> group_sizes = example::group_sizes(two_level);
    std::vector<hsgd::Index> region_sizes(static_cast<std::size_t>(regions), 0);
    for (std::size_t g = 0; g < group_sizes.size(); ++g) region_sizes[g / static_cast<std::size_t>(groups / regions)] += group_sizes[g];
    const hsgd::Topology three_level(workers, {{local_period, group_sizes}, {middle_period, region_sizes}, {global_period, {workers}}});
    return {{"hsgd-3-level", three_level}, {"hsgd-2-level", two_level}, {"local-sgd-G", hsgd::Topology::local_sgd(workers, global_period)}};
  }
};

/// A run's results: mean ||grad f||^2, mean D_glob, the messages and the model dimension, then per
/// level l: the time-averaged divergence term, model term, aggregations and messages.
enum Result : std::size_t { mean_gradient, mean_global_divergence, messages, dimension, per_level };
enum LevelResult : std::size_t { divergence_term, model_term, aggregations, level_messages, level_fields };

template <class Engine>
std::vector<double> results(const Engine& engine, const std::vector<hsgd::ProbeRecord>& rows) {
  std::vector<double> numbers{hsgd::time_average(rows, &hsgd::ProbeRecord::gradient_norm_squared),
                              hsgd::time_average(rows, &hsgd::ProbeRecord::d_glob),
                              static_cast<double>(rows.back().messages), static_cast<double>(engine.dimension())};
  for (std::size_t l = 0; l < static_cast<std::size_t>(engine.topology().levels()); ++l) {
    double divergence = 0, model = 0, measured = 0;
    for (const auto& row : rows) {
      model += row.model_terms[l] / static_cast<double>(rows.size());
      if (!hsgd::is_measured(row.gradient_terms[l])) continue;
      divergence += row.gradient_terms[l];
      measured += 1;
    }
    numbers.insert(numbers.end(), {divergence / measured, model, static_cast<double>(rows.back().aggregations[l]),
                                   static_cast<double>(rows.back().level_messages[l])});
  }
  return numbers;
}

/// The sum over the seeds of field `field` of scheme k's results.
double total(const hsgd::Study& study, std::size_t k, std::size_t field) { return example::sum_over_seeds(study, 3, k, field); }

void print_levels(const Settings& s, const hsgd::Topology& topology, const hsgd::Study& study) {
  const auto expected = hsgd::random_grouping_shares(topology);
  const double seeds = static_cast<double>(s.seeds);
  const auto& last = study.result(3 * (s.seeds - 1));  // counts: the last seed's, as with every seed
  fmt::print("\nthree-level H-SGD, per level (time averages, means over {} seeds):\n", s.seeds);
  fmt::print("{:<7} {:>7} {:>6} {:>13} {:>10} {:>14} {:>15} {:>18} {:>12}\n", "level", "period", "units", "aggregations",
             "messages", "scalars", "divergence term", "share of D_glob", "model term");
  for (hsgd::Index level = 1; level <= topology.levels(); ++level) {
    const auto at = [&](LevelResult field) { return per_level + level_fields * static_cast<std::size_t>(level - 1) + field; };
    const double term = total(study, 0, at(divergence_term)) / seeds;
    fmt::print("{:<7} {:>7} {:>6} {:>13} {:>10} {:>14.4g} {:>15.4e} {:>8.3f} (exp {:.3f}) {:>12.4e}\n", level,
               topology.period(level), topology.units(level), static_cast<hsgd::Index>(last[at(aggregations)]),
               static_cast<hsgd::Index>(last[at(level_messages)]), last[at(level_messages)] * last[dimension], term,
               term / (total(study, 0, mean_global_divergence) / seeds), expected[static_cast<std::size_t>(level - 1)],
               total(study, 0, at(model_term)) / seeds);
  }
  fmt::print("(share: the level's divergence term over D_glob at xbar_t; exp: (N_(l-1) - N_l)/(n - 1), its "
             "expectation under random grouping; model term: C for that level)\n");
}

/// Each seed's problem under each scheme; false when a signal stopped the study.
bool run(const Settings& s, hsgd::Study& study) {
  const auto schemes = s.schemes();
  const std::vector<hsgd::Index> group_sizes = example::group_sizes(schemes[1].second);
  for (hsgd::Index seed = 1; seed <= s.seeds; ++seed) {
    const auto u = static_cast<std::uint64_t>(seed);
    bool going = true;
    if (study.finished(3)) {
      for (int k = 0; k < 3; ++k) study.skip_finished();
    } else {
      const auto split = example::make_split(s.problem, group_sizes, s.workers, u);
      example::with_objective(s.problem, split, u, [&](const auto& shards, const auto& start) {
        for (const auto& [scheme, topology] : schemes) {
          if (!going || study.skip_finished()) continue;
          hsgd::Engine engine(topology, shards, hsgd::UniformSampler(s.batch), s.options(u), hsgd::RandomGrouping{});
          engine.set_model(start);
          study.set_tags({scheme, std::to_string(seed)});
          auto probe = hsgd::make_probe(engine, {.gradient_every = s.probe_every, .model_every = 1}, study);
          going = study.run(engine, probe).has_value();
          if (going) study.finish(results(engine, study.records()));
        }
      });
    }
    if (!going) return false;
    fmt::print("  seed {} done\n", seed);
  }
  return true;
}

void print_tables(const Settings& s, const hsgd::Study& study) {
  const auto schemes = s.schemes();
  fmt::print("\n{:<14} {:>24} {:>10} {:>16}\n", "scheme", "mean ||grad f(xbar)||^2", "messages", "scalars moved");
  for (std::size_t k = 0; k < schemes.size(); ++k) {
    const auto& last = study.result(3 * (s.seeds - 1) + static_cast<hsgd::Index>(k));
    fmt::print("{:<14} {:>24.4e} {:>10} {:>16.4g}\n", schemes[k].first, total(study, k, mean_gradient) / static_cast<double>(s.seeds),
               static_cast<hsgd::Index>(last[messages]), last[messages] * last[dimension]);
  }
  print_levels(s, schemes[0].second, study);
}

Settings read_settings(example::Flags& flags) {
  Settings s{example::RunFlags::read(flags, {.groups = 8, .local_period = 2, .probe_every = 16})};
  s.regions = flags.integer("regions", 2, "level-2 units (regional servers), dividing N");
  s.middle_period = flags.integer("middle-period", 8, "M, level-2 period");
  s.problem = example::ProblemFlags::read(flags);
  s.study = example::study_options(flags, s.csv, {"scheme", "seed"}, 3);
  if (s.regions <= 0 || s.groups % s.regions != 0)
    throw std::invalid_argument(fmt::format("'--regions' ({}) must divide '--groups' ({})", s.regions, s.groups));
  return s;
}

}  // namespace

int main(int argc, char** argv) { return example::main(argc, argv, description, read_settings, run, print_tables); }
