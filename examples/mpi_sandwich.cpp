// mpi_sandwich: the sandwich over MPI. Each rank hosts a block of the workers and builds only
// their shards of benchmark B1's non-IID logistic problem; the schemes are local SGD with the
// local period I, H-SGD(I, G) with random groups and local SGD with the global period G. The
// results table is the same, digit for digit, at any number of ranks (the models are the same
// bits as in one process); the second table gives each level's communication: unit rounds that
// crossed ranks, messages and megabytes sent (summed over the ranks) and the seconds of the rank
// that spent the longest communicating.
//
//   mpirun -np 4 mpi_sandwich                       (as root: add --allow-run-as-root)
//   mpirun -np 8 --oversubscribe mpi_sandwich --csv mpi_sandwich.csv

#include <cstdint>
#include <string>
#include <vector>

#include <fmt/core.h>

#include <hsgd/hsgd.hpp>
#include <hsgd/mpi/mpi.hpp>

#include "cli.hpp"
#include "problem.hpp"

namespace {

struct Settings : example::RunFlags {
  hsgd::Index threads = 1;
  hsgd::Index dimension = 100;
  double heterogeneity = 8.0;
};

const std::vector<std::string> schemes{"local-sgd-I", "hsgd-random", "local-sgd-G"};
/// A run's results (example::probe_results, then f(xbar_T)).
enum Result : std::size_t { mean_gradient_norm_squared, mean_d_up, mean_d_down, messages, final_loss };

/// A run's communication: per level, its period and traffic over all ranks; and its seconds.
struct Communication {
  std::vector<hsgd::Index> periods;
  std::vector<hsgd::mpi::Traffic> traffic;
  double seconds;
};

/// Runs one scheme as the study's next run; every rank returns the same.
template <class Grouping>
Communication run_scheme(const Settings& s, hsgd::Study& study, const hsgd::Topology& topology, Grouping grouping,
                         std::uint64_t seed, const std::string& scheme) {
  const hsgd::B1Data data{.workers = s.workers, .dimension = s.dimension, .heterogeneity = s.heterogeneity, .seed = seed};
  const auto make_shard = [&](hsgd::Index j) { return hsgd::make_b1_shard(data, j); };  // this rank's workers only
  hsgd::Engine engine(topology, make_shard, hsgd::UniformSampler(s.batch), s.options(seed, s.threads), std::move(grouping),
                      hsgd::mpi::Cluster(MPI_COMM_WORLD));
  study.set_tags({scheme, std::to_string(seed)});
  auto probe = hsgd::make_probe(engine, {.gradient_every = s.probe_every, .model_every = s.probe_every}, study);
  const hsgd::Summary summary = study.run(engine, probe).value();  // no checkpoints: never stopped
  study.finish(example::probe_results(study.records(), {summary.loss}));
  return {summary.periods, engine.backend().traffic_over_ranks(), summary.seconds};
}

void print_tables(const Settings& s, const hsgd::Study& study, const std::vector<Communication>& first_seed, int ranks) {
  const auto values = [&](std::size_t k, Result field) { return example::over_seeds(study, schemes.size(), k, field); };
  fmt::print("\n{:<12} {:>24} {:>11} {:>11} {:>10} {:>9}\n", "scheme", "mean ||grad f(xbar)||^2", "D_up", "D_down",
             "f(xbar_T)", "messages");
  for (std::size_t k = 0; k < schemes.size(); ++k) {
    const auto gradient = hsgd::sample_mean(values(k, mean_gradient_norm_squared));
    fmt::print("{:<12} {:>14.6e} +- {:<7.1e} {:>11.4e} {:>11.4e} {:>10.6f} {:>9}\n", schemes[k], gradient.mean,
               gradient.standard_error, hsgd::sample_mean(values(k, mean_d_up)).mean,
               hsgd::sample_mean(values(k, mean_d_down)).mean, hsgd::sample_mean(values(k, final_loss)).mean,
               static_cast<hsgd::Index>(study.result(static_cast<hsgd::Index>(k))[messages]));
  }
  const auto check = hsgd::check_sandwich(values(0, mean_gradient_norm_squared), values(1, mean_gradient_norm_squared),
                                          values(2, mean_gradient_norm_squared));
  fmt::print("(means over {} seeds, +- one standard error; D_up, D_down time-averaged at xbar_t)\n", s.seeds);
  fmt::print("local-sgd-I <= hsgd-random <= local-sgd-G: {}\n", check);

  fmt::print("\ncommunication on {} ranks (seed 1; x-rounds: unit rounds that crossed ranks; messages and MB summed "
             "over the ranks; seconds of the slowest rank)\n", ranks);
  fmt::print("{:<12} {:>6} {:>8} {:>10} {:>10} {:>10} {:>10}\n", "scheme", "level", "period", "x-rounds", "messages", "MB",
             "comm s");
  for (std::size_t k = 0; k < schemes.size(); ++k) {
    const Communication& first = first_seed[k];
    for (std::size_t level = 0; level < first.traffic.size(); ++level) {
      const auto& t = first.traffic[level];
      fmt::print("{:<12} {:>6} {:>8} {:>10} {:>10} {:>10.3f} {:>10.4f}\n", schemes[k], level + 1,
                 first.periods[level], t.rounds, t.messages, t.bytes / 1e6, t.seconds);
    }
    fmt::print("{:<12} {:>6} {:>8} {:>10} {:>10} {:>10} {:>10.4f}\n", "", "run", "", "", "", "", first.seconds);
  }
}

int run(int argc, char** argv) {
  int rank = 0;
  int ranks = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &ranks);
  example::Flags flags(argc, argv,
                       "mpi_sandwich: local SGD with period I, H-SGD(I, G) with random groups and local SGD with period "
                       "G over MPI, on B1's non-IID logistic problem; the same results at any number of ranks");
  Settings s{example::RunFlags::read(
      flags, {.workers = 64, .groups = 8, .learning_rate = 0.5, .steps = 256, .seeds = 4, .probe_every = 16})};
  s.threads = flags.integer("threads", 1, "threads per rank (results do not depend on it)");
  s.dimension = flags.integer("dimension", 100, "d, B1's feature dimension");
  s.heterogeneity = flags.real("heterogeneity", 8.0, "how non-IID the workers' labelling models are (B1's h)");
  if (flags.help_requested()) return 0;

  if (rank == 0)
    fmt::print("mpi_sandwich: {} ranks, n = {}, N = {}, I = {}, G = {}, gamma = {}, T = {}, batch = {}; B1 with d = {}, "
               "h = {}; {} seeds x 3 schemes\n",
               ranks, s.workers, s.groups, s.local_period, s.global_period, s.learning_rate, s.steps, s.batch,
               s.dimension, s.heterogeneity, s.seeds);
  // The CSV file is written by rank 0 alone; a study over MPI runs without checkpoints.
  hsgd::Study study({.csv = rank == 0 ? s.csv : "", .tags = {"scheme", "seed"}, .levels = 2});
  const hsgd::Topology hierarchy = hsgd::Topology::two_level(s.workers, s.groups, s.local_period, s.global_period);
  std::vector<Communication> first_seed;
  for (hsgd::Index seed = 1; seed <= s.seeds; ++seed) {
    const auto u = static_cast<std::uint64_t>(seed);
    const std::vector<Communication> these{
        run_scheme(s, study, hsgd::Topology::local_sgd(s.workers, s.local_period), hsgd::ContiguousGrouping{}, u, schemes[0]),
        run_scheme(s, study, hierarchy, hsgd::RandomGrouping{}, u, schemes[1]),
        run_scheme(s, study, hsgd::Topology::local_sgd(s.workers, s.global_period), hsgd::ContiguousGrouping{}, u, schemes[2])};
    if (seed == 1) first_seed = these;
    if (rank == 0)
      fmt::print(stderr, "  seed {:>3} done: {:.1f} s, {:.1f} s, {:.1f} s\n", seed, these[0].seconds, these[1].seconds,
                 these[2].seconds);
  }
  if (rank == 0) {
    print_tables(s, study, first_seed, ranks);
    if (study.csv() != nullptr) {
      study.csv()->close();
      fmt::print("wrote {}\n", s.csv);
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const hsgd::mpi::Session mpi(argc, argv);
  return hsgd::mpi::run_or_abort(MPI_COMM_WORLD, [&] { return run(argc, argv); });
}
