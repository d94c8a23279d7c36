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

#include <chrono>
#include <cstdint>
#include <exception>
#include <optional>
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

const std::vector<std::string> scheme_names{"local-sgd-I", "hsgd-random", "local-sgd-G"};

struct Outcome {
  double mean_gradient_norm_squared, mean_d_up, mean_d_down, final_loss;
  hsgd::Index messages;
  std::vector<hsgd::Index> periods;
  std::vector<hsgd::mpi::Traffic> traffic;  // per level, over all ranks
  double seconds;
};

/// Runs one scheme; every rank returns the same outcome.
template <class Grouping>
Outcome run_scheme(const Settings& s, const hsgd::Topology& topology, Grouping grouping, std::uint64_t seed,
                   const std::string& scheme, hsgd::CsvRecorder* csv) {
  hsgd::B1Data data;
  data.workers = s.workers;
  data.dimension = s.dimension;
  data.heterogeneity = s.heterogeneity;
  data.seed = seed;
  const auto make_shard = [&](hsgd::Index j) { return hsgd::make_b1_shard(data, j); };  // this rank's workers only
  hsgd::Engine engine(topology, make_shard, hsgd::UniformSampler(s.batch), s.options(seed, s.threads), std::move(grouping),
                      hsgd::mpi::Cluster(MPI_COMM_WORLD));
  if (csv != nullptr) csv->set_tags({scheme, std::to_string(seed)});
  example::RunRecorder recorder{csv, {}};
  auto probe = hsgd::make_probe(engine, {.gradient_every = s.probe_every, .model_every = s.probe_every}, recorder);
  const auto begin = std::chrono::steady_clock::now();
  const hsgd::Summary summary = engine.run(probe);
  const std::chrono::duration<double> seconds = std::chrono::steady_clock::now() - begin;
  const auto& rows = recorder.memory.rows;
  return {hsgd::time_average(rows, &hsgd::ProbeRecord::gradient_norm_squared),
          hsgd::time_average(rows, &hsgd::ProbeRecord::d_up),
          hsgd::time_average(rows, &hsgd::ProbeRecord::d_down),
          summary.loss,
          rows.empty() ? 0 : rows.back().messages,
          summary.periods,
          engine.backend().traffic_over_ranks(),
          seconds.count()};
}

std::vector<double> field(const std::vector<Outcome>& outcomes, double Outcome::*member) {
  std::vector<double> values;
  for (const auto& outcome : outcomes) values.push_back(outcome.*member);
  return values;
}

void print_tables(const Settings& s, const std::vector<std::vector<Outcome>>& outcomes, int ranks) {
  fmt::print("\n{:<12} {:>24} {:>11} {:>11} {:>10} {:>9}\n", "scheme", "mean ||grad f(xbar)||^2", "D_up", "D_down",
             "f(xbar_T)", "messages");
  for (std::size_t k = 0; k < scheme_names.size(); ++k) {
    const auto gradient = hsgd::sample_mean(field(outcomes[k], &Outcome::mean_gradient_norm_squared));
    fmt::print("{:<12} {:>14.6e} +- {:<7.1e} {:>11.4e} {:>11.4e} {:>10.6f} {:>9}\n", scheme_names[k], gradient.mean,
               gradient.standard_error, hsgd::sample_mean(field(outcomes[k], &Outcome::mean_d_up)).mean,
               hsgd::sample_mean(field(outcomes[k], &Outcome::mean_d_down)).mean,
               hsgd::sample_mean(field(outcomes[k], &Outcome::final_loss)).mean, outcomes[k].front().messages);
  }
  const auto check = hsgd::check_sandwich(field(outcomes[0], &Outcome::mean_gradient_norm_squared),
                                          field(outcomes[1], &Outcome::mean_gradient_norm_squared),
                                          field(outcomes[2], &Outcome::mean_gradient_norm_squared));
  fmt::print("(means over {} seeds, +- one standard error; D_up, D_down time-averaged at xbar_t)\n", s.seeds);
  fmt::print("local-sgd-I <= hsgd-random <= local-sgd-G: {}\n", check);

  fmt::print("\ncommunication on {} ranks (seed 1; x-rounds: unit rounds that crossed ranks; messages and MB summed "
             "over the ranks; seconds of the slowest rank)\n", ranks);
  fmt::print("{:<12} {:>6} {:>8} {:>10} {:>10} {:>10} {:>10}\n", "scheme", "level", "period", "x-rounds", "messages", "MB",
             "comm s");
  for (std::size_t k = 0; k < scheme_names.size(); ++k) {
    const Outcome& first = outcomes[k].front();
    for (std::size_t level = 0; level < first.traffic.size(); ++level) {
      const auto& t = first.traffic[level];
      fmt::print("{:<12} {:>6} {:>8} {:>10} {:>10} {:>10.3f} {:>10.4f}\n", scheme_names[k], level + 1,
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
  Settings s{};
  example::RunFlags defaults;
  defaults.workers = 64;
  defaults.groups = 8;
  defaults.steps = 256;
  defaults.seeds = 4;
  defaults.probe_every = 16;
  defaults.learning_rate = 0.5;
  static_cast<example::RunFlags&>(s) = example::RunFlags::read(flags, defaults);
  s.threads = flags.integer("threads", 1, "threads per rank (results do not depend on it)");
  s.dimension = flags.integer("dimension", 100, "d, B1's feature dimension");
  s.heterogeneity = flags.real("heterogeneity", 8.0, "how non-IID the workers' labelling models are (B1's h)");
  if (flags.help_requested()) return 0;

  if (rank == 0)
    fmt::print("mpi_sandwich: {} ranks, n = {}, N = {}, I = {}, G = {}, gamma = {}, T = {}, batch = {}; B1 with d = {}, "
               "h = {}; {} seeds x 3 schemes\n",
               ranks, s.workers, s.groups, s.local_period, s.global_period, s.learning_rate, s.steps, s.batch,
               s.dimension, s.heterogeneity, s.seeds);
  std::optional<hsgd::CsvRecorder> csv;  // written by rank 0 alone
  if (rank == 0 && !s.csv.empty()) csv.emplace(s.csv, std::vector<std::string>{"scheme", "seed"}, 2);
  hsgd::CsvRecorder* csv_pointer = csv ? &*csv : nullptr;

  const hsgd::Topology hierarchy = hsgd::Topology::two_level(s.workers, s.groups, s.local_period, s.global_period);
  std::vector<std::vector<Outcome>> outcomes(scheme_names.size());
  for (hsgd::Index seed = 1; seed <= s.seeds; ++seed) {
    const auto u = static_cast<std::uint64_t>(seed);
    outcomes[0].push_back(run_scheme(s, hsgd::Topology::local_sgd(s.workers, s.local_period), hsgd::ContiguousGrouping{}, u,
                                     scheme_names[0], csv_pointer));
    outcomes[1].push_back(run_scheme(s, hierarchy, hsgd::RandomGrouping{}, u, scheme_names[1], csv_pointer));
    outcomes[2].push_back(run_scheme(s, hsgd::Topology::local_sgd(s.workers, s.global_period), hsgd::ContiguousGrouping{}, u,
                                     scheme_names[2], csv_pointer));
    if (rank == 0)
      fmt::print(stderr, "  seed {:>3} done: {:.1f} s, {:.1f} s, {:.1f} s\n", seed, outcomes[0].back().seconds,
                 outcomes[1].back().seconds, outcomes[2].back().seconds);
  }
  if (rank == 0) {
    print_tables(s, outcomes, ranks);
    if (csv) {
      csv->close();
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
