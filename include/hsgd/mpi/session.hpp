#pragma once
/// @file
/// MPI for the length of a program's main().

#include "hsgd/mpi/layout.hpp"

namespace hsgd::mpi {

/// Initialises MPI on construction and finalises it on destruction:
///
///   int main(int argc, char** argv) {
///     hsgd::mpi::Session mpi(argc, argv);
///     return hsgd::mpi::run_or_abort(MPI_COMM_WORLD, [&] { ...; return 0; });
///   }
///
/// It asks for MPI_THREAD_FUNNELED: an Engine's worker threads never call MPI, only the thread
/// that calls the Engine does. A library that provides less still runs hsgd correctly with
/// Options::threads = 1; `funneled()` tells.
class Session {
 public:
  Session(int& argc, char**& argv) {
    detail::check(MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided_), "MPI_Init_thread");
  }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  ~Session() { MPI_Finalize(); }

  /// Whether the library allows the Engine's worker threads beside MPI.
  [[nodiscard]] bool funneled() const { return provided_ >= MPI_THREAD_FUNNELED; }

 private:
  int provided_ = MPI_THREAD_SINGLE;
};

}  // namespace hsgd::mpi
