// Checkpoints across process counts: a run saved in process or under MPI on any number of ranks
// resumes in process or under MPI on any other number, and ends with the same bits (models, the
// optimizer states, probe records) as the in-process run that never stopped, which every
// invocation computes as the reference. tests/tools/mpi_checkpoint.sh runs the pairs:
//
//   test_mpi_checkpoint save FILE      (under mpirun -np R, or without mpirun: in process)
//   test_mpi_checkpoint resume FILE    (likewise; exits non-zero on any difference)
//   test_mpi_checkpoint signal FILE    (under mpirun: the last rank alone gets a SIGTERM during
//                                       the stop step; every rank's Checkpointer must save and
//                                       stop at that step; then the same job resumes from it)
//
// The run: unequal groups, data-size weights, random groups re-drawn at every global round,
// partial participation, momentum whose state is averaged, a ShuffledSampler (its epoch order
// is part of each worker's state), a probe and its in-memory records.

#include <csignal>
#include <cstring>
#include <string>
#include <vector>

#include <fmt/core.h>

#include <hsgd/hsgd.hpp>
#include <hsgd/mpi/mpi.hpp>

#include "../support.hpp"

namespace {

using hsgd::Index;
using test::state_bytes;
using test::step_to;

constexpr Index total_steps = 40;
constexpr Index stop_step = 19;  // inside a local period, after a global round that re-drew the groups
constexpr hsgd::ProbeOptions probe_options{.gradient_every = 3, .model_every = 1, .subsample = 4};

const hsgd::Topology topology = hsgd::Topology::two_level(std::vector<Index>{3, 5, 4}, 3, 12);

hsgd::Quadratic<double> make_shard(Index j) {
  return test::noisy_quadratics(1, 5, 700 + static_cast<std::uint64_t>(j), 20 + j).front();
}

hsgd::Options run_options() {
  hsgd::Options options = test::options(9, total_steps, 0.05);
  options.weighting = hsgd::Weighting::data_size;
  options.participation = 0.6;
  options.threads = 2;
  return options;
}

const hsgd::RandomGrouping grouping{hsgd::RandomGrouping::Redraw::every_global_aggregation};
const hsgd::Momentum momentum{.momentum = 0.7, .nesterov = false, .at_aggregation = hsgd::StateAtAggregation::average};

template <class... Backend>
auto make_engine(Backend&&... backend) {
  return hsgd::Engine(topology, make_shard, hsgd::ShuffledSampler(3), run_options(), grouping, momentum,
                      std::forward<Backend>(backend)...);
}

/// The save half: run to the stop and save engine, probe and records.
template <class Engine>
void save(Engine engine, const std::string& path) {
  hsgd::MemoryRecorder records;
  auto probe = hsgd::make_probe(engine, probe_options, records);
  step_to(engine, probe, stop_step);
  hsgd::save_checkpoint(path, {}, engine, probe, records);
}

/// Raises SIGTERM in this process after step `step` (on one rank only: the others must learn it).
struct RaiseAt {
  Index step;
  bool here;
  template <class Run>
  bool after_step(const Run& run) const {
    if (here && run.step_count() == step) std::raise(SIGTERM);
    return false;
  }
};

/// The save half, stopped by a signal that reaches one rank.
template <class Engine>
int stop_by_signal(Engine engine, const std::string& path, bool signalled_here) {
  const hsgd::StopSignals signals;
  hsgd::MemoryRecorder records;
  auto probe = hsgd::make_probe(engine, probe_options, records);
  hsgd::Checkpointer checkpointer(path, {}, probe, records);
  const hsgd::Summary summary = engine.run(probe, RaiseAt{stop_step, signalled_here}, checkpointer);
  if (!summary.stopped_by_observer || engine.step_count() != stop_step || checkpointer.last_saved_step() != stop_step) {
    fmt::print(stderr, "stopped at step {} (saved at {}), the signal came at {}\n", engine.step_count(),
               checkpointer.last_saved_step(), stop_step);
    return 1;
  }
  return 0;
}

/// The resume half: load, run to the end, compare with the run that never stopped.
template <class Engine>
int resume(Engine engine, const std::string& path, const std::string& where) {
  auto reference = make_engine();
  hsgd::MemoryRecorder reference_records;
  auto reference_probe = hsgd::make_probe(reference, probe_options, reference_records);
  step_to(reference, reference_probe, total_steps);

  hsgd::MemoryRecorder records;
  auto probe = hsgd::make_probe(engine, probe_options, records);
  hsgd::load_checkpoint(path, engine, probe, records);
  if (engine.step_count() != stop_step) {
    fmt::print(stderr, "{}: resumed at step {}, saved at {}\n", where, engine.step_count(), stop_step);
    return 1;
  }
  step_to(engine, probe, total_steps);
  engine.gather_models();
  int failures = 0;
  const auto size = static_cast<std::size_t>(reference.models().size()) * sizeof(double);
  if (std::memcmp(engine.models().data(), reference.models().data(), size) != 0) {
    fmt::print(stderr, "{}: the models differ from the uninterrupted run\n", where);
    ++failures;
  }
  for (Index j = 0; j < engine.workers(); ++j) {
    if (engine.hosts(j) &&
        std::memcmp(engine.states().col(j).data(), reference.states().col(j).data(),
                    static_cast<std::size_t>(engine.dimension()) * sizeof(double)) != 0) {
      fmt::print(stderr, "{}: worker {}'s momentum differs from the uninterrupted run\n", where, j);
      ++failures;
    }
  }
  if (state_bytes(records) != state_bytes(reference_records)) {
    fmt::print(stderr, "{}: the probe records differ from the uninterrupted run\n", where);
    ++failures;
  }
  return failures;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  const bool under_mpi = std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr || std::getenv("PMI_SIZE") != nullptr;
  if (args.size() != 2 || (args[0] != "save" && args[0] != "resume" && args[0] != "signal") ||
      (args[0] == "signal" && !under_mpi)) {
    fmt::print(stderr, "usage: test_mpi_checkpoint save|resume FILE, or under mpirun also signal FILE\n");
    return 2;
  }
  const std::string& path = args[1];
  if (!under_mpi) {
    try {
      if (args[0] == "save") {
        save(make_engine(), path);
        return 0;
      }
      const int failures = resume(make_engine(), path, "in process");
      fmt::print("resumed in process: {}\n", failures == 0 ? "the same bits as the run that never stopped" : "DIFFERENT");
      return failures == 0 ? 0 : 1;
    } catch (const std::exception& error) {
      fmt::print(stderr, "in process: {}\n", error.what());
      return 1;
    }
  }
  const hsgd::mpi::Session mpi(argc, argv);
  int rank = 0;
  int ranks = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &ranks);
  const int failures = hsgd::mpi::run_or_abort(MPI_COMM_WORLD, [&] {
    if (args[0] == "save") {
      save(make_engine(hsgd::mpi::Cluster(MPI_COMM_WORLD)), path);
      return 0;
    }
    if (args[0] == "signal") {  // and resume in the same job: every rank sees the file rank 0 wrote
      if (stop_by_signal(make_engine(hsgd::mpi::Cluster(MPI_COMM_WORLD)), path, rank == ranks - 1) != 0) return 1;
      return resume(make_engine(hsgd::mpi::Cluster(MPI_COMM_WORLD)), path, fmt::format("rank {} of {}", rank, ranks));
    }
    return resume(make_engine(hsgd::mpi::Cluster(MPI_COMM_WORLD)), path, fmt::format("rank {} of {}", rank, ranks));
  });
  int total = 0;
  MPI_Allreduce(&failures, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  if (rank == 0 && args[0] != "save")
    fmt::print("resumed on {} ranks: {}\n", ranks, total == 0 ? "the same bits as the run that never stopped" : "DIFFERENT");
  return total == 0 ? 0 : 1;
}
