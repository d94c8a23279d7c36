// Under mpirun with 4 ranks: an Engine over hsgd::mpi::Cluster whose worker 5 (on rank 2) has a
// curvature that overflows at the first step. Rank 2 throws a NumericalError while the other
// ranks go on to the first global round (step 4) and wait there for rank 2's models. run_or_abort must end
// the whole job with rank 2's message and a non-zero exit; the ctest script around it checks the
// status, the message and the time.

#include <hsgd/hsgd.hpp>
#include <hsgd/mpi/mpi.hpp>

int main(int argc, char** argv) {
  const hsgd::mpi::Session mpi(argc, argv);
  return hsgd::mpi::run_or_abort(MPI_COMM_WORLD, [&] {
    const auto make_shard = [](hsgd::Index j) {
      const double curvature = j == 5 ? 1e300 : 1.0;  // from a model of 1e10, one step overflows to Inf
      return hsgd::Quadratic<double>(hsgd::Vector<double>::Constant(1, curvature), hsgd::Vector<double>::Zero(1));
    };
    hsgd::Options options;
    options.steps = 10;
    options.threads = 1;
    options.learning_rate = 1.0;
    hsgd::Engine engine(hsgd::Topology::two_level(8, 4, 2, 4), make_shard, hsgd::FullBatchSampler(), options,
                        hsgd::mpi::Cluster(MPI_COMM_WORLD));
    engine.set_model(hsgd::Vector<double>::Constant(1, 1e10));
    engine.run();
    return 0;
  });
}
