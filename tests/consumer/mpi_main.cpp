// A consumer of hsgd::mpi: the Engine over MPI, one line away from a run in process.
#include <hsgd/hsgd.hpp>
#include <hsgd/mpi/mpi.hpp>

int main(int argc, char** argv) {
  const hsgd::mpi::Session mpi(argc, argv);
  return hsgd::mpi::run_or_abort(MPI_COMM_WORLD, [] {
    hsgd::B1Data data;
    data.workers = 4;
    data.dimension = 3;
    hsgd::Options options;
    options.steps = 8;
    hsgd::Engine engine(hsgd::Topology::two_level(4, 2, 2, 4), [&](hsgd::Index j) { return hsgd::make_b1_shard(data, j); },
                        hsgd::UniformSampler(2), options, hsgd::mpi::Cluster(MPI_COMM_WORLD));
    return engine.run().steps == 8 ? 0 : 1;
  });
}
