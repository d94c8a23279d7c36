// Under mpirun with 4 ranks: rank 2 runs an engine whose model turns NaN, the others wait in a
// collective that rank 2 never joins. run_or_abort must end the whole job with rank 2's message
// and a non-zero exit; the ctest script around it checks the status, the message and the time.

#include <vector>

#include <hsgd/hsgd.hpp>
#include <hsgd/mpi/mpi.hpp>

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  const int status = hsgd::mpi::run_or_abort(MPI_COMM_WORLD, [&] {
    if (rank == 2) {
      // Curvature 1e300 from 1e10: the first step overflows to Inf, a NumericalError at step 1.
      std::vector<hsgd::Quadratic<double>> shards(
          2, hsgd::Quadratic<double>(hsgd::Vector<double>::Constant(1, 1e300), hsgd::Vector<double>::Zero(1)));
      hsgd::Options options;
      options.steps = 10;
      options.threads = 1;
      options.learning_rate = 1.0;
      hsgd::Engine engine(hsgd::Topology::local_sgd(2, 1), shards, hsgd::FullBatchSampler(), options);
      engine.set_model(hsgd::Vector<double>::Constant(1, 1e10));
      engine.run();
    }
    MPI_Barrier(MPI_COMM_WORLD);  // the other ranks would wait here forever without the abort
    return 0;
  });
  MPI_Finalize();
  return status;
}
