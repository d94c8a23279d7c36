#pragma once
/// @file
/// Which rank hosts which worker, and the small MPI helpers the rest of hsgd::mpi uses.
///
/// Not part of hsgd/hsgd.hpp: include hsgd/mpi/mpi.hpp and link hsgd::mpi (present when CMake
/// found MPI).

// hsgd uses MPI's C interface; the deprecated C++ bindings that mpi.h would pull in do not build
// with warnings as errors.
#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1
#endif
#ifndef MPICH_SKIP_MPICXX
#define MPICH_SKIP_MPICXX 1
#endif
#include <mpi.h>

#include <algorithm>
#include <limits>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <fmt/format.h>

#include "hsgd/core/error.hpp"
#include "hsgd/core/types.hpp"

namespace hsgd::mpi {

/// An MPI call that failed (with an error handler that returns, such as MPI_ERRORS_RETURN).
class MpiError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {

inline void check(int code, std::string_view call) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  throw MpiError(fmt::format("{} failed: {}", call, std::string_view(text, static_cast<std::size_t>(length))));
}

/// The MPI type of the scalars, counters and values hsgd sends.
template <class Value>
MPI_Datatype datatype() {
  if constexpr (std::is_same_v<Value, float>) return MPI_FLOAT;
  else if constexpr (std::is_same_v<Value, double>) return MPI_DOUBLE;
  else if constexpr (std::is_same_v<Value, long double>) return MPI_LONG_DOUBLE;
  else {
    static_assert(std::is_integral_v<Value> && std::is_signed_v<Value> && sizeof(Value) == 8,
                  "hsgd::mpi sends float, double, long double and 64-bit signed integers");
    return MPI_INT64_T;
  }
}

/// A count MPI takes as an int.
inline int as_count(Index count, std::string_view what) {
  hsgd::detail::require(count >= 0 && count <= std::numeric_limits<int>::max(),
                        "{} ({}) must be at most {} to be sent in one MPI message", what, count,
                        std::numeric_limits<int>::max());
  return static_cast<int>(count);
}

inline int size_of(MPI_Comm comm) {
  int size = 0;
  check(MPI_Comm_size(comm, &size), "MPI_Comm_size");
  return size;
}

inline int rank_in(MPI_Comm comm) {
  int rank = 0;
  check(MPI_Comm_rank(comm, &rank), "MPI_Comm_rank");
  return rank;
}

}  // namespace detail

/// Which rank hosts which worker: contiguous blocks in worker order, the first (n mod ranks)
/// ranks one worker more than the others (n = 10 on 4 ranks: 3, 3, 2, 2).
class BlockLayout {
 public:
  BlockLayout(Index workers, int ranks) : workers_(workers), ranks_(ranks) {
    hsgd::detail::require(workers >= 1, "'workers' ({}) must be positive", workers);
    hsgd::detail::require(ranks >= 1, "'ranks' ({}) must be positive", ranks);
  }

  /// The first worker of `rank` and how many it hosts (possibly 0 when ranks > workers).
  [[nodiscard]] Index first(int rank) const {
    check_rank(rank);
    const Index base = workers_ / ranks_;
    const Index extra = workers_ % ranks_;
    return rank * base + std::min<Index>(rank, extra);
  }
  [[nodiscard]] Index count(int rank) const {
    check_rank(rank);
    return workers_ / ranks_ + (rank < workers_ % ranks_ ? 1 : 0);
  }
  /// The rank that hosts `worker`.
  [[nodiscard]] int owner(Index worker) const {
    hsgd::detail::require(worker >= 0 && worker < workers_, "'worker' ({}) must be in [0, {})", worker, workers_);
    const Index base = workers_ / ranks_;
    const Index extra = workers_ % ranks_;
    const Index in_big_blocks = extra * (base + 1);
    if (worker < in_big_blocks) return static_cast<int>(worker / (base + 1));
    return static_cast<int>(extra + (worker - in_big_blocks) / base);
  }
  [[nodiscard]] Index workers() const { return workers_; }
  [[nodiscard]] int ranks() const { return ranks_; }

 private:
  void check_rank(int rank) const {
    hsgd::detail::require(rank >= 0 && rank < ranks_, "'rank' ({}) must be in [0, {})", rank, ranks_);
  }

  Index workers_;
  int ranks_;
};

}  // namespace hsgd::mpi
