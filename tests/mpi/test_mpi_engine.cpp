// Under mpirun with any number of ranks: the Engine over hsgd::mpi::Cluster, each rank building
// only its own shards, ends every run with the same bits as the in-process Engine (which every
// rank also runs, as the reference): all models, the optimizer states of the workers each rank
// hosts, every DivergenceProbe record, and the Summary's loss and gradient norm. The runs cover
// two and three levels, unequal groups, data-size weights, random groups re-drawn at global
// rounds, partial participation, momentum under each state policy, a warm-up, float models and
// an objective with its own initial model. The communication counters are checked against the
// messages the layout implies. Exits non-zero on any difference; rank 0 reports.

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include <fmt/core.h>

#include <hsgd/hsgd.hpp>
#include <hsgd/mpi/mpi.hpp>

#include "../support.hpp"

namespace {

using hsgd::Index;
using test::same_bits;
using test::state_bytes;  // a recorder's rows as bytes: equal exactly when every record is the same bits

int rank_here() {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

/// What a level's round sends in all, summed over the ranks, when every member takes part: for a
/// unit on k > 1 ranks, one message per member hosted off the root and one per other rank.
struct RoundTraffic {
  Index units_crossing_ranks = 0;
  Index messages = 0;
};
RoundTraffic traffic_per_round(const hsgd::Topology& topology, Index level, std::span<const Index> slot_to_worker,
                               const hsgd::mpi::Cluster& cluster) {
  RoundTraffic traffic;
  const auto offsets = topology.unit_offsets(level);
  for (std::size_t unit = 0; unit + 1 < offsets.size(); ++unit) {
    std::vector<int> ranks;
    for (Index slot = offsets[unit]; slot < offsets[unit + 1]; ++slot)
      ranks.push_back(cluster.owner(slot_to_worker[static_cast<std::size_t>(slot)]));
    const int root = *std::min_element(ranks.begin(), ranks.end());
    std::vector<int> distinct = ranks;
    std::sort(distinct.begin(), distinct.end());
    distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
    if (distinct.size() == 1) continue;
    ++traffic.units_crossing_ranks;
    traffic.messages += static_cast<Index>(std::count_if(ranks.begin(), ranks.end(), [&](int r) { return r != root; }));
    traffic.messages += static_cast<Index>(distinct.size()) - 1;
  }
  return traffic;
}

struct Check {
  std::string name;
  hsgd::Topology topology;
  hsgd::Options options;
  hsgd::ProbeOptions probe;
  bool check_traffic = false;  // contiguous groups, everyone takes part: the count is predictable
  Index exchanges = 1;         // per round: the models, and the optimizer states when they are averaged
};

/// Runs the case in process and over the Cluster; returns the number of differences seen here.
template <class MakeShard, class Sampler, class... Plugins>
int compare(const Check& check, const MakeShard& make_shard, const Sampler& sampler, const Plugins&... plugins) {
  using Objective = std::invoke_result_t<const MakeShard&, Index>;
  std::vector<Objective> all;
  for (Index j = 0; j < check.topology.workers(); ++j) all.push_back(make_shard(j));
  hsgd::Engine reference(check.topology, std::move(all), sampler, check.options, plugins...);
  // The held-out set: the last worker's shard, which every rank can build.
  hsgd::MemoryRecorder reference_records;
  auto reference_probe = hsgd::make_probe(reference, check.probe, reference_records, make_shard(check.topology.workers() - 1));
  const hsgd::Summary expected = reference.run(reference_probe);

  hsgd::Engine distributed(check.topology, make_shard, sampler, check.options, plugins...,
                           hsgd::mpi::Cluster(MPI_COMM_WORLD));
  hsgd::MemoryRecorder records;
  auto probe = hsgd::make_probe(distributed, check.probe, records, make_shard(check.topology.workers() - 1));
  const hsgd::Summary summary = distributed.run(probe);
  distributed.gather_models();

  int failures = 0;
  const auto fail = [&](const std::string& what) {
    ++failures;
    fmt::print(stderr, "rank {} of {}, {}: {}\n", distributed.backend().rank(), distributed.backend().ranks(),
               check.name, what);
  };
  if (!same_bits(distributed.models(), reference.models()))
    fail(fmt::format("models differ (max |diff| {})",
                     static_cast<double>((distributed.models() - reference.models()).cwiseAbs().maxCoeff())));
  for (Index j = 0; j < distributed.workers(); ++j)
    if (distributed.hosts(j) && distributed.states().cols() > 0 &&
        !same_bits(distributed.states().col(j).eval(), reference.states().col(j).eval()))
      fail(fmt::format("worker {}'s optimizer state differs", j));
  if (records.rows.size() != reference_records.rows.size() || state_bytes(records) != state_bytes(reference_records))
    fail(fmt::format("probe records differ ({} rows, {} in process)", records.rows.size(), reference_records.rows.size()));
  if (std::none_of(records.rows.begin(), records.rows.end(), [](const auto& row) { return hsgd::is_measured(row.test_loss); }))
    fail("no record holds a held-out test loss");
  if (std::memcmp(&summary.simulated_seconds, &expected.simulated_seconds, sizeof(double)) != 0)
    fail(fmt::format("simulated time differs: {} s, {} s in process", summary.simulated_seconds, expected.simulated_seconds));
  if (std::memcmp(&summary.loss, &expected.loss, sizeof(double)) != 0 ||
      std::memcmp(&summary.gradient_norm_squared, &expected.gradient_norm_squared, sizeof(double)) != 0)
    fail(fmt::format("summary differs: loss {} vs {}", summary.loss, expected.loss));
  if (summary.steps != expected.steps || summary.aggregations != expected.aggregations) fail("step or round counts differ");

  const auto traffic = distributed.backend().traffic_over_ranks();
  if (check.check_traffic) {
    const Index d = distributed.dimension();
    for (Index level = 1; level <= check.topology.levels(); ++level) {
      const Index rounds = distributed.aggregation_counts()[static_cast<std::size_t>(level - 1)];
      const RoundTraffic per_round =
          traffic_per_round(check.topology, level, distributed.slot_to_worker(), distributed.backend());
      const Index expected_rounds = check.exchanges * rounds * per_round.units_crossing_ranks;
      const Index expected_messages = check.exchanges * rounds * per_round.messages;
      const auto& seen = traffic[static_cast<std::size_t>(level - 1)];
      const double expected_bytes = static_cast<double>(expected_messages * d) * sizeof(typename Objective::Scalar);
      if (seen.rounds != expected_rounds || seen.messages != expected_messages || seen.bytes != expected_bytes)
        fail(fmt::format("level {}: {} rounds, {} messages and {} bytes counted, {}, {} and {} expected", level,
                         seen.rounds, seen.messages, seen.bytes, expected_rounds, expected_messages, expected_bytes));
    }
  }
  return failures;
}

hsgd::Options run_options(Index steps, std::uint64_t seed) {
  hsgd::Options result = test::options(seed, steps, 0.05);
  result.threads = 2;
  return result;
}

/// The block layout: contiguous, in rank order, sizes n / ranks or one more, owner() consistent.
int check_layout(Index workers, int ranks) {
  const hsgd::mpi::BlockLayout layout(workers, ranks);
  Index next = 0;
  int failures = 0;
  for (int r = 0; r < ranks; ++r) {
    failures += layout.first(r) != next;
    for (Index j = layout.first(r); j < layout.first(r) + layout.count(r); ++j) failures += layout.owner(j) != r;
    next += layout.count(r);
    failures += layout.count(r) < workers / ranks || layout.count(r) > workers / ranks + 1;
  }
  failures += next != workers;
  if (failures > 0) fmt::print(stderr, "the block layout of {} workers over {} ranks is wrong\n", workers, ranks);
  return failures;
}

int run_checks() {
  int failures = 0;
  for (const Index workers : {8, 10, 64, 67})
    for (const int ranks : {1, 2, 3, 4, 8}) failures += check_layout(workers, ranks);
  const hsgd::ProbeOptions every_step{.gradient_every = 4, .model_every = 1, .at_group_averages = true, .test_every = 5};
  const hsgd::ProbeOptions subsampled{.gradient_every = 3, .model_every = 2, .subsample = 4, .test_every = 7};
  const auto quadratic = [](std::uint64_t seed, Index dimension) {
    return [=](Index j) { return test::noisy_quadratics(1, dimension, seed + static_cast<std::uint64_t>(j), 16 + j).front(); };
  };

  {  // B1's logistic objective, contiguous groups of unequal size
    hsgd::B1Data data = test::small_b1(9);
    const Check check{"two levels, contiguous unequal groups, B1", hsgd::Topology::two_level(std::vector<Index>{3, 5, 4}, 2, 8),
                      run_options(40, 1), every_step, true};
    failures += compare(check, [&](Index j) { return hsgd::make_b1_shard(data, j); }, hsgd::UniformSampler(4));
  }
  {  // data-size weights, random groups re-drawn at every global round, subsampled probe
    Check check{"data-size weights, random groups re-drawn", hsgd::Topology::two_level(std::vector<Index>{3, 5, 4}, 3, 12),
                run_options(48, 2), subsampled};
    check.options.weighting = hsgd::Weighting::data_size;
    failures += compare(check, quadratic(100, 5), hsgd::UniformSampler(2),
                        hsgd::RandomGrouping{hsgd::RandomGrouping::Redraw::every_global_aggregation});
  }
  {  // three levels with a step-decay rate
    Check check{"three levels", hsgd::Topology(12, {{2, {2, 3, 3, 4}}, {4, {5, 7}}, {8, {12}}}), run_options(40, 3),
                every_step, true};
    failures += compare(check, quadratic(200, 4), hsgd::ShuffledSampler(3), hsgd::StepDecay{.factor = 0.5, .every = 9});
  }
  {  // partial participation with random groups
    Check check{"partial participation", hsgd::Topology::two_level(std::vector<Index>{4, 4, 4}, 3, 12), run_options(48, 4),
                subsampled};
    check.options.participation = 0.5;
    hsgd::ClockOptions clock;  // the participants' clocks: identical on every rank
    clock.compute.per_sample = 1e-3;
    clock.speeds = hsgd::WorkerSpeeds::log_normal(0.5);
    clock.levels = {{{1e-3, 1e6}, hsgd::RoundPattern::ring_allreduce}, {{0.05, 1e5}}};
    failures += compare(check, quadratic(300, 3), hsgd::UniformSampler(2), hsgd::RandomGrouping{}, hsgd::SimulatedClock(clock));
  }
  {  // a deadline at both levels leaves slow workers out of rounds: participants on several ranks
    const Check check{"deadlines", hsgd::Topology::two_level(std::vector<Index>{4, 4, 4}, 2, 8), run_options(40, 10), subsampled};
    hsgd::ClockOptions clock;
    clock.compute.per_step = 0.01;
    clock.speeds = hsgd::WorkerSpeeds::log_normal(0.6);
    clock.levels = {{{1e-3, 1e6}}, {{0.05, 1e5}}};
    clock.deadlines = {0.025, 0.11};
    failures += compare(check, quadratic(800, 3), hsgd::UniformSampler(2), hsgd::RandomGrouping{}, hsgd::SimulatedClock(clock));
  }
  for (const auto policy :
       {hsgd::StateAtAggregation::keep, hsgd::StateAtAggregation::average, hsgd::StateAtAggregation::reset}) {
    const Check check{fmt::format("momentum, state policy {}", static_cast<int>(policy)),
                      hsgd::Topology::two_level(std::vector<Index>{6, 6}, 2, 8), run_options(32, 5), every_step, true,
                      policy == hsgd::StateAtAggregation::average ? 2 : 1};
    failures += compare(check, quadratic(400, 6), hsgd::UniformSampler(2),
                        hsgd::Momentum{.momentum = 0.8, .nesterov = false, .at_aggregation = policy});
  }
  {  // momentum whose state is averaged, with partial participation and random groups
    Check check{"momentum averaged, partial participation", hsgd::Topology::two_level(std::vector<Index>{5, 4, 3}, 3, 12),
                run_options(36, 9), subsampled};
    check.options.participation = 0.6;
    failures += compare(check, quadratic(700, 4), hsgd::UniformSampler(2), hsgd::RandomGrouping{},
                        hsgd::Momentum{.momentum = 0.7, .nesterov = true, .at_aggregation = hsgd::StateAtAggregation::average});
  }
  {  // a warm-up that averages every step
    Check check{"warm-up", hsgd::Topology::two_level(std::vector<Index>{4, 4}, 2, 8), run_options(30, 6), every_step, true};
    check.options.warmup_steps = 5;
    failures += compare(check, quadratic(500, 3), hsgd::UniformSampler(2));
  }
  {  // float models
    hsgd::B1Data data = test::small_b1(7);
    data.workers = 8;
    const Check check{"float", hsgd::Topology::two_level(std::vector<Index>{4, 4}, 2, 8), run_options(24, 7), every_step,
                      true};
    failures += compare(check, [&](Index j) { return hsgd::make_b1_shard<float>(data, j); }, hsgd::UniformSampler(4));
  }
  {  // an objective that draws its own initial model (on the rank of worker 0, sent to the others)
    const Check check{"initial model", hsgd::Topology::two_level(std::vector<Index>{4, 4}, 2, 4), run_options(16, 8),
                      every_step, true};
    const auto network = [](Index j) {
      hsgd::GaussianMixtureOptions mixture;
      mixture.classes = 3;
      mixture.dimension = 4;
      mixture.samples = 20;
      mixture.seed = 600 + static_cast<std::uint64_t>(j);
      return hsgd::TanhNetwork<double>(hsgd::make_gaussian_mixture<double>(mixture), 3);
    };
    failures += compare(check, network, hsgd::UniformSampler(3));
  }
  return failures;
}

}  // namespace

int main(int argc, char** argv) {
  const hsgd::mpi::Session mpi(argc, argv);
  const int failures = hsgd::mpi::run_or_abort(MPI_COMM_WORLD, run_checks);
  int total = 0;
  MPI_Allreduce(&failures, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  int ranks = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &ranks);
  if (rank_here() == 0)
    fmt::print("{} ranks: {}\n", ranks,
               total == 0 ? "every run has the in-process engine's bits" : fmt::format("{} differences", total));
  return total == 0 ? 0 : 1;
}
