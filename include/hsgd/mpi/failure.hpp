#pragma once
/// @file
/// Failure under MPI: a rank that throws must end the whole job promptly with its message, never
/// leave the other ranks waiting forever in a collective.

#include <cstdio>
#include <exception>
#include <utility>

#include <fmt/format.h>

#include "hsgd/mpi/layout.hpp"

namespace hsgd::mpi {

/// Runs `body()` on this rank and returns its result; if it throws, prints "hsgd rank r of R: <what>"
/// to stderr and calls MPI_Abort(comm, exit_code), which ends every rank of the job (Open MPI: within
/// about two seconds) with a non-zero exit status. Wrap each rank's whole run in it:
///
///   return hsgd::mpi::run_or_abort(MPI_COMM_WORLD, [&] { engine.run(probe); return 0; });
template <class Body>
auto run_or_abort(MPI_Comm comm, Body&& body, int exit_code = 1) -> decltype(body()) {
  try {
    return std::forward<Body>(body)();
  } catch (const std::exception& error) {
    int rank = -1;
    int ranks = 0;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &ranks);
    fmt::print(stderr, "hsgd rank {} of {}: {}\n", rank, ranks, error.what());
    std::fflush(stderr);
    MPI_Abort(comm, exit_code);
  } catch (...) {
    std::fputs("hsgd: an exception of unknown type; aborting the MPI job\n", stderr);
    std::fflush(stderr);
    MPI_Abort(comm, exit_code);
  }
  std::terminate();  // MPI_Abort does not return
}

}  // namespace hsgd::mpi
