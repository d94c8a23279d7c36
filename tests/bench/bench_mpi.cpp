// Benchmark B1 over MPI (README, "MPI"): n = 64 workers, N = 8 groups of 8, I = 4, G = 32,
// minibatch 16, m = 512, d = 1000 by default. Figure: worker-steps per second. The baseline is
// the in-process Engine with 2 threads, run by rank 0 of the same job while the other ranks wait
// without spinning; then every rank runs its block of workers on one thread, over the Cluster.
// Each figure is the median of --repetitions timings of --steps steps (after one global period
// of warm-up). Run it under mpirun:
//
//   mpirun -np 2 hsgd_bench_mpi        mpirun -np 8 --oversubscribe hsgd_bench_mpi

#include <time.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include <fmt/core.h>

#include <hsgd/hsgd.hpp>
#include <hsgd/mpi/mpi.hpp>

#include "../../examples/cli.hpp"

namespace {

using hsgd::Index;

/// PyTorch's HierarchicalModelAverager on 8 gloo processes, B1 at d = 1000, measured on this
/// machine earlier: the figure the README sets hsgd beside.
constexpr double pytorch_worker_steps_per_second = 2.36e3;

struct Settings {
  Index workers = 64;
  Index dimension = 1000;
  Index steps = 320;
  Index repetitions = 3;
  Index baseline_threads = 2;
};

hsgd::B1Data b1(const Settings& s) {
  hsgd::B1Data data;
  data.workers = s.workers;
  data.dimension = s.dimension;
  return data;
}

hsgd::Options options(Index threads) {
  hsgd::Options result;
  result.learning_rate = 0.05;
  result.threads = threads;
  result.steps = std::numeric_limits<Index>::max() / 2;
  return result;
}

hsgd::Topology topology(const Settings& s) { return hsgd::Topology::two_level(s.workers, 8, 4, 32); }

/// Median worker-steps per second of `engine` over the repetitions; `ready` runs before each
/// timing (a barrier under MPI, so every rank starts together).
template <class Engine, class Ready>
double measure(Engine& engine, const Settings& s, Ready&& ready) {
  for (Index t = 0; t < 32; ++t) engine.step();  // warm-up: one global period
  std::vector<double> rates;
  for (Index r = 0; r < s.repetitions; ++r) {
    ready();
    const auto begin = std::chrono::steady_clock::now();
    for (Index t = 0; t < s.steps; ++t) engine.step();
    ready();
    const std::chrono::duration<double> seconds = std::chrono::steady_clock::now() - begin;
    rates.push_back(static_cast<double>(s.workers * s.steps) / seconds.count());
  }
  std::sort(rates.begin(), rates.end());
  return rates[rates.size() / 2];
}

/// Waits for every rank without spinning: a blocked MPI_Barrier polls and would take a core from
/// the rank that is measuring.
void wait_quietly(MPI_Comm comm) {
  MPI_Request request = MPI_REQUEST_NULL;
  MPI_Ibarrier(comm, &request);
  int done = 0;
  while (MPI_Test(&request, &done, MPI_STATUS_IGNORE) == MPI_SUCCESS && done == 0) {
    const timespec pause{0, 1000000};
    nanosleep(&pause, nullptr);
  }
}

int run(int argc, char** argv) {
  int rank = 0;
  int ranks = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &ranks);
  example::Flags flags(argc, argv, "hsgd_bench_mpi: B1 over MPI against the in-process engine (run under mpirun)");
  Settings s;
  s.workers = flags.integer("workers", s.workers, "n (8 groups)");
  s.dimension = flags.integer("dimension", s.dimension, "d");
  s.steps = flags.integer("steps", s.steps, "steps per timing");
  s.repetitions = flags.integer("repetitions", s.repetitions, "timings per figure (the median is reported)");
  s.baseline_threads = flags.integer("baseline-threads", s.baseline_threads, "threads of the in-process baseline");
  if (flags.help_requested()) return 0;
  if (rank == 0)
    fmt::print(stderr, "hsgd_bench_mpi: B1, n = {}, d = {}; in process on {} threads (rank 0), then {} ranks x 1 thread; "
               "{} x {} steps each\n", s.workers, s.dimension, s.baseline_threads, ranks, s.repetitions, s.steps);

  double baseline = 0;
  if (rank == 0) {
    hsgd::Engine engine(topology(s), [&](Index j) { return hsgd::make_b1_shard(b1(s), j); }, hsgd::UniformSampler(16),
                        options(s.baseline_threads));
    baseline = measure(engine, s, [] {});
  }
  wait_quietly(MPI_COMM_WORLD);

  hsgd::Engine engine(topology(s), [&](Index j) { return hsgd::make_b1_shard(b1(s), j); }, hsgd::UniformSampler(16),
                      options(1), hsgd::mpi::Cluster(MPI_COMM_WORLD));
  const double distributed = measure(engine, s, [] { MPI_Barrier(MPI_COMM_WORLD); });
  const auto traffic = engine.backend().traffic_over_ranks();
  if (rank == 0) {
    fmt::print("{:<36} {:>14}\n", "B1, d = " + std::to_string(s.dimension), "worker-steps/s");
    fmt::print("{:<36} {:>14.4g}\n", fmt::format("in process, {} threads", s.baseline_threads), baseline);
    fmt::print("{:<36} {:>14.4g}   {:.2f}x in process, {:.1f}x PyTorch 8 gloo processes ({:.3g})\n",
               fmt::format("MPI, {} ranks x 1 thread", ranks), distributed, distributed / baseline,
               distributed / pytorch_worker_steps_per_second, pytorch_worker_steps_per_second);
    for (std::size_t level = 0; level < traffic.size(); ++level)
      fmt::print("  level {}: {} messages, {:.2f} MB, {:.3f} s communicating (slowest rank)\n", level + 1,
                 traffic[level].messages, traffic[level].bytes / 1e6, traffic[level].seconds);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const hsgd::mpi::Session mpi(argc, argv);
  return hsgd::mpi::run_or_abort(MPI_COMM_WORLD, [&] { return run(argc, argv); });
}
