#pragma once
/// @file
/// Backends: where a run's workers live and how the members of a unit meet. The Engine is one
/// loop; a backend is the seam through which it runs in one process (InProcess, the default) or
/// over several (hsgd::mpi::Cluster, in hsgd/mpi/mpi.hpp).

#include <concepts>
#include <span>
#include <vector>

#include "hsgd/core/error.hpp"
#include "hsgd/core/types.hpp"

namespace hsgd {

/// What the Engine asks of a backend. Each process ("rank") hosts the contiguous block of
/// workers [first_worker(), first_worker() + local_workers()): it builds their shards and steps
/// them. Every rank keeps the grouping, the servers' streams and the schedule (they are drawn
/// from the same seeds, so ranks agree without messages) and a d x n matrix of models in which
/// the columns of workers hosted elsewhere are a cache: current after an aggregation that
/// involved them on this rank, or after `gather_columns`. The collective members are called by
/// every rank in the same order.
///
///   attach(workers, levels)              once, before anything else
///   first_worker(), local_workers()      the block hosted here
///   hosts(j), is_root()                  worker j is hosted here; this rank reports (writes files)
///   gather_columns(data, rows)           collective: column block of each rank to every rank
///   gather_values(data)                  collective: one value per worker, likewise
///   broadcast(data, size, from_worker)   collective: from the rank hosting `from_worker` to all
///   any(flag)                            collective: whether flag is true on any rank
///   gather_bytes(bytes)                  collective: every rank's bytes, in rank order, to rank 0
///   collect_at_root(data, rows, current) collective: column k (of `rows` scalars) of `data` on
///                                        rank 0 becomes that of the lowest rank with current[k]
///   average_unit(level, participants, members, columns, receive, at_root, elsewhere)
///       the unit's ranks only: the lowest rank hosting a participant receives the other
///       participants' columns into `columns`, calls `at_root()` (which averages, writes the
///       members' columns and returns the average), and sends it to the other ranks hosting
///       members, which receive it into `receive` and call `elsewhere()`. Returns whether this
///       rank took part. Other ranks return false at once.
template <class B>
concept Backend = requires(B backend, const B const_backend, Index index) {
  { B::distributed } -> std::convertible_to<bool>;
  backend.attach(index, index);
  { const_backend.first_worker() } -> std::convertible_to<Index>;
  { const_backend.local_workers() } -> std::convertible_to<Index>;
  { const_backend.hosts(index) } -> std::convertible_to<bool>;
  { const_backend.is_root() } -> std::convertible_to<bool>;
};

/// Every worker in this process: the reference backend, whose collectives do nothing.
struct InProcess {
  static constexpr bool distributed = false;

  void attach(Index workers, Index /*levels*/) { workers_ = workers; }
  [[nodiscard]] Index first_worker() const { return 0; }
  [[nodiscard]] Index local_workers() const { return workers_; }
  [[nodiscard]] bool hosts(Index /*worker*/) const { return true; }
  [[nodiscard]] bool is_root() const { return true; }

  template <class Scalar>
  void gather_columns(Scalar* /*data*/, Index /*rows*/) const {}
  template <class Value>
  void gather_values(Value* /*data*/) const {}
  template <class Scalar>
  void broadcast(Scalar* /*data*/, Index /*size*/, Index /*from_worker*/) const {}
  [[nodiscard]] bool any(bool flag) const { return flag; }
  void gather_bytes(std::vector<char>& /*bytes*/) const {}
  template <class Scalar>
  void collect_at_root(Scalar* /*data*/, Index /*rows*/, std::span<const char> /*current*/) const {}

  template <class Scalar, class AtRoot, class Elsewhere>
  bool average_unit(Index /*level*/, std::span<const Index> /*participants*/, std::span<const Index> /*members*/,
                    Matrix<Scalar>& /*columns*/, Vector<Scalar>& /*receive*/, AtRoot&& at_root,
                    Elsewhere&& /*elsewhere*/) const {
    at_root();
    return true;
  }

 private:
  Index workers_ = 0;
};

}  // namespace hsgd
