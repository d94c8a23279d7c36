// multilevel: H-SGD on three levels (edge servers every I steps, regional servers every M steps,
// the global server every G steps) under random grouping, next to two-level H-SGD(I, G) and local
// SGD with period G. Per level it reports the periods, units, aggregations and messages, and the
// share of the global divergence each level's term takes, against the random-grouping
// expectation (N_{l-1} - N_l)/(n - 1).

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <utility>
#include <exception>
#include <limits>
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
  hsgd::Index regions = 2;
  hsgd::Index middle_period = 8;
  example::ProblemFlags problem;
  example::CheckpointFlags checkpoints;
};

/// What the table needs from one run, summed over seeds.
struct Totals {
  double gradient_norm_squared = 0;  // time-averaged ||grad f(xbar_t)||^2
  std::vector<double> divergence_terms, model_terms;
  double global_divergence = 0;
  std::vector<hsgd::Index> aggregations, level_messages;
  hsgd::Index messages = 0;
  hsgd::Index model_dimension = 0;
};

/// One run's contribution to the totals, as the numbers a checkpoint keeps: mean ||grad f||^2,
/// mean D_glob, the level count L, L divergence terms, L model terms, L aggregation counts, L
/// message counts, the messages and the model dimension.
template <class Engine>
std::vector<double> run_numbers(const Engine& engine, const std::vector<hsgd::ProbeRecord>& rows) {
  const auto levels = static_cast<std::size_t>(engine.topology().levels());
  std::vector<double> numbers{hsgd::time_average(rows, &hsgd::ProbeRecord::gradient_norm_squared),
                              hsgd::time_average(rows, &hsgd::ProbeRecord::d_glob), static_cast<double>(levels)};
  std::vector<double> model_terms;
  for (std::size_t l = 0; l < levels; ++l) {
    double divergence = 0, model = 0;
    int measured = 0;
    for (const auto& row : rows) {
      model += row.model_terms[l] / static_cast<double>(rows.size());
      if (!hsgd::is_measured(row.gradient_terms[l])) continue;
      divergence += row.gradient_terms[l];
      ++measured;
    }
    numbers.push_back(divergence / measured);
    model_terms.push_back(model);
  }
  numbers.insert(numbers.end(), model_terms.begin(), model_terms.end());
  for (const auto count : rows.back().aggregations) numbers.push_back(static_cast<double>(count));
  for (const auto count : rows.back().level_messages) numbers.push_back(static_cast<double>(count));
  numbers.push_back(static_cast<double>(rows.back().messages));
  numbers.push_back(static_cast<double>(engine.dimension()));
  return numbers;
}

/// Adds a run's numbers (run_numbers) to the scheme's totals.
void accumulate(const std::vector<double>& numbers, Totals& totals) {
  const auto levels = static_cast<std::size_t>(example::whole(numbers.at(2), 1, 64));
  if (numbers.size() != 5 + 4 * levels) throw std::invalid_argument("the checkpoint's results are not multilevel's");
  const auto at = [&](std::size_t block, std::size_t l) { return numbers[3 + block * levels + l]; };
  totals.divergence_terms.resize(levels, 0.0);
  totals.model_terms.resize(levels, 0.0);
  totals.aggregations.assign(levels, 0);
  totals.level_messages.assign(levels, 0);
  totals.gradient_norm_squared += numbers[0];
  totals.global_divergence += numbers[1];
  for (std::size_t l = 0; l < levels; ++l) {
    totals.divergence_terms[l] += at(0, l);
    totals.model_terms[l] += at(1, l);
    totals.aggregations[l] = example::whole(at(2, l), 0, std::numeric_limits<hsgd::Index>::max() / 2);
    totals.level_messages[l] = example::whole(at(3, l), 0, std::numeric_limits<hsgd::Index>::max() / 2);
  }
  totals.messages = example::whole(numbers[numbers.size() - 2], 0, std::numeric_limits<hsgd::Index>::max() / 2);
  totals.model_dimension = example::whole(numbers.back(), 1, std::numeric_limits<hsgd::Index>::max() / 2);
}

/// Runs one scheme as run `run` of the study; false when a signal stopped it.
template <class Shards>
bool run_one(const Settings& s, example::Study& study, hsgd::Index run, const std::string& scheme,
             const hsgd::Topology& topology, const Shards& shards, const hsgd::Vector<double>& start, std::uint64_t seed) {
  hsgd::Engine engine(topology, shards, hsgd::UniformSampler(s.batch), s.options(seed), hsgd::Sgd{}, hsgd::ConstantRate{},
                      hsgd::RandomGrouping{});
  engine.set_model(start);
  if (study.csv() != nullptr) study.csv()->set_tags({scheme, std::to_string(seed)});
  example::RunRecorder recorder{study.csv(), {}};
  auto probe = hsgd::make_probe(engine, {.gradient_every = s.probe_every, .model_every = 1}, recorder);
  if (!study.run(run, engine, std::tie(probe, recorder.memory), probe)) return false;
  study.finish(run, run_numbers(engine, recorder.memory.rows), engine, std::tie(probe, recorder.memory));
  return true;
}

void print_levels(const Settings& s, const hsgd::Topology& topology, const Totals& totals) {
  const auto expected = hsgd::random_grouping_shares(topology);
  const double seeds = static_cast<double>(s.seeds);
  fmt::print("\nthree-level H-SGD, per level (time averages, means over {} seeds):\n", s.seeds);
  fmt::print("{:<7} {:>7} {:>6} {:>13} {:>10} {:>14} {:>15} {:>18} {:>12}\n", "level", "period", "units", "aggregations",
             "messages", "scalars", "divergence term", "share of D_glob", "model term");
  for (hsgd::Index level = 1; level <= topology.levels(); ++level) {
    const auto l = static_cast<std::size_t>(level - 1);
    const double term = totals.divergence_terms[l] / seeds;
    fmt::print("{:<7} {:>7} {:>6} {:>13} {:>10} {:>14.4g} {:>15.4e} {:>8.3f} (exp {:.3f}) {:>12.4e}\n", level,
               topology.period(level), topology.units(level), totals.aggregations[l], totals.level_messages[l],
               static_cast<double>(totals.level_messages[l]) * static_cast<double>(totals.model_dimension), term,
               term / (totals.global_divergence / seeds), expected[l], totals.model_terms[l] / seeds);
  }
  fmt::print("(share: the level's divergence term over D_glob at xbar_t; exp: (N_(l-1) - N_l)/(n - 1), its "
             "expectation under random grouping; model term: C for that level)\n");
}

}  // namespace

int main(int argc, char** argv) try {
  example::Flags flags(argc, argv,
                       "multilevel: three-level H-SGD with per-level divergences and communication, next to "
                       "two-level H-SGD and local SGD");
  Settings s{};
  example::RunFlags defaults;
  defaults.groups = 8;
  defaults.local_period = 2;
  defaults.probe_every = 16;
  static_cast<example::RunFlags&>(s) = example::RunFlags::read(flags, defaults);
  s.regions = flags.integer("regions", 2, "level-2 units (regional servers), dividing N");
  s.middle_period = flags.integer("middle-period", 8, "M, level-2 period");
  s.problem = example::ProblemFlags::read(flags);
  s.checkpoints = example::CheckpointFlags::read(flags);
  if (flags.help_requested()) return 0;
  if (s.regions <= 0 || s.groups % s.regions != 0) {
    throw std::invalid_argument(fmt::format("'--regions' ({}) must divide '--groups' ({})", s.regions, s.groups));
  }

  // Level-1 units of near-equal size, each region a run of groups / regions of them.
  const hsgd::Topology two_level = hsgd::Topology::two_level(s.workers, s.groups, s.local_period, s.global_period);
  const std::vector<hsgd::Index> group_sizes = example::group_sizes(two_level);
  std::vector<hsgd::Index> region_sizes(static_cast<std::size_t>(s.regions), 0);
  for (std::size_t g = 0; g < group_sizes.size(); ++g) {
    region_sizes[g / static_cast<std::size_t>(s.groups / s.regions)] += group_sizes[g];
  }
  const hsgd::Topology three_level(s.workers, {{s.local_period, group_sizes},
                                               {s.middle_period, region_sizes},
                                               {s.global_period, {s.workers}}});

  fmt::print("multilevel: n = {}, {} edge servers every {} steps, {} regional servers every {}, global every {}; "
             "{} on {} classes, partition {}\n",
             s.workers, s.groups, s.local_period, s.regions, s.middle_period, s.global_period, s.problem.objective,
             s.problem.classes, s.problem.partition);
  example::Study study(flags, s.checkpoints, s.csv, {"scheme", "seed"}, 3);
  const std::vector<std::pair<std::string, hsgd::Topology>> schemes{
      {"hsgd-3-level", three_level},
      {"hsgd-2-level", two_level},
      {"local-sgd-G", hsgd::Topology::local_sgd(s.workers, s.global_period)}};
  std::vector<Totals> totals(schemes.size());
  for (hsgd::Index seed = 1; seed <= s.seeds; ++seed) {
    const auto first_run = (seed - 1) * static_cast<hsgd::Index>(schemes.size());
    bool going = true;
    if (!study.finished(first_run + static_cast<hsgd::Index>(schemes.size()) - 1)) {
      const auto split = example::make_split(s.problem, group_sizes, s.workers, static_cast<std::uint64_t>(seed));
      example::with_objective(s.problem, split, static_cast<std::uint64_t>(seed), [&](const auto& shards, const auto& start) {
        for (std::size_t k = 0; k < schemes.size() && going; ++k) {
          const hsgd::Index run = first_run + static_cast<hsgd::Index>(k);
          if (!study.finished(run))
            going = run_one(s, study, run, schemes[k].first, schemes[k].second, shards, start, static_cast<std::uint64_t>(seed));
        }
      });
    }
    if (!going) return study.exit_code();
    for (std::size_t k = 0; k < schemes.size(); ++k) accumulate(study.result(first_run + static_cast<hsgd::Index>(k)), totals[k]);
    fmt::print("  seed {} done\n", seed);
  }

  fmt::print("\n{:<14} {:>24} {:>10} {:>16}\n", "scheme", "mean ||grad f(xbar)||^2", "messages", "scalars moved");
  for (std::size_t k = 0; k < schemes.size(); ++k) {
    fmt::print("{:<14} {:>24.4e} {:>10} {:>16.4g}\n", schemes[k].first,
               totals[k].gradient_norm_squared / static_cast<double>(s.seeds), totals[k].messages,
               static_cast<double>(totals[k].messages) * static_cast<double>(totals[k].model_dimension));
  }
  print_levels(s, three_level, totals[0]);
  if (study.csv() != nullptr) fmt::print("wrote {}\n", s.csv);
  return 0;
} catch (const std::exception& error) {
  fmt::print(stderr, "multilevel: {}\n", error.what());
  return 1;
}
