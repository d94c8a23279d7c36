#pragma once
/// @file
/// Backends: where a run's workers live and how the processes of a run meet. The Engine is one
/// loop; a backend is the seam through which it runs in one process (InProcess, the default) or
/// over several (hsgd::mpi::Cluster, in hsgd/mpi/mpi.hpp), calling the same primitives either way.

#include <concepts>
#include <span>
#include <string_view>

#include "hsgd/checkpoint/archive.hpp"
#include "hsgd/core/types.hpp"

namespace hsgd {

namespace backend_requirements {

// Stand-ins for the callables the Engine passes, to check a backend's templates with.
struct ValueOf {
  double operator()(Index worker) const;
};
struct TakeValue {
  void operator()(Index worker, double value) const;
};
struct ColumnOf {
  void operator()(Index worker, VectorRef<double> column) const;
};
struct TakeColumn {
  void operator()(Index worker, ConstVectorRef<double> column) const;
};
struct UnitAverage {
  const Vector<double>& operator()() const;
};
struct TakeAverage {
  void operator()(ConstVectorRef<double> average) const;
};
struct VisitWorker {
  void operator()(SaveArchive& archive, Index worker) const;
  void operator()(LoadArchive& archive, Index worker) const;
};

template <class B>
concept has_attach = requires(B& b, Index n) { b.attach(n, n); };
template <class B>
concept has_layout = requires(const B& b, Index j) {
  { b.first_worker() } -> std::convertible_to<Index>;
  { b.local_workers() } -> std::convertible_to<Index>;
  { b.hosts(j) } -> std::convertible_to<bool>;
  { b.is_root() } -> std::convertible_to<bool>;
};
template <class B>
concept has_gathers = requires(const B& b, double* data, Index* counts, Index n) {
  b.gather_columns(data, n);
  b.gather_values(data);
  b.gather_values(counts);
  b.broadcast(data, n, n);
};
template <class B>
concept has_any = requires(const B& b, bool flag) {
  { b.any(flag) } -> std::convertible_to<bool>;
};
template <class B>
concept has_reductions = requires(const B& b, Index n, VectorRef<double> scratch) {
  b.template reduce_values<double>(n, ValueOf{}, TakeValue{});
  b.reduce_columns(scratch, ColumnOf{}, TakeColumn{});
};
template <class B>
concept has_average_unit = requires(B& b, Index level, std::span<const Index> workers, Matrix<double>& columns) {
  { b.average_unit(level, workers, workers, columns, UnitAverage{}, TakeAverage{}) } -> std::convertible_to<bool>;
};
template <class B>
concept has_checkpoint_collection = requires(const B& b, std::span<double* const> columns, Index rows,
                                             std::span<const char> current, SaveArchive& save, LoadArchive& load) {
  b.collect_at_root(columns, rows, current);
  b.visit_workers(save, VisitWorker{});
  b.visit_workers(load, VisitWorker{});
};

}  // namespace backend_requirements

/// What the Engine asks of a backend. Each process ("rank") hosts the contiguous block of
/// workers [first_worker(), first_worker() + local_workers()): it builds their shards and steps
/// them. Every process keeps the grouping, the servers, the round and the schedule (drawn from the
/// same seeds, so the processes agree without messages) and a d x n matrix of models in which the
/// columns of workers hosted elsewhere are a cache. The collective members are called by every
/// process in the same order; all sums run in worker order, so the bits never depend on the
/// number of processes.
///
///   attach(workers, levels)              once, before anything else
///   first_worker(), local_workers()      the block hosted here
///   hosts(j), is_root()                  worker j is hosted here; this process reports (writes files)
///   gather_columns(data, rows)           collective: the hosted columns of a d x n block to every process
///   gather_values(data)                  collective: one value per worker, likewise
///   broadcast(data, size, from_worker)   collective: from the process hosting `from_worker` to all
///   any(flag)                            collective: whether flag is true in any process
///   reduce_values<V>(n, value_of, take)  collective: value_of(j) where j is hosted, then take(j, value)
///                                        everywhere, in worker order (a weighted sum of losses)
///   reduce_columns(scratch, column_of, take)
///                                        the same for columns of d scalars (a weighted sum of gradients);
///                                        in process it streams through `scratch`, one worker at a time
///   average_unit(level, participants, members, columns, at_root, elsewhere)
///       one unit's round, its processes only: the lowest process hosting a participant receives
///       the other participants' columns into `columns`, calls `at_root()` (which averages, writes
///       the members' columns and returns the average) and sends the average to the other
///       processes hosting members, which call `elsewhere(average)`. Returns whether this process
///       took part; others return false at once
///   collect_at_root(columns, rows, current)
///                                        collective: each column (`rows` scalars at columns[k]) on the
///                                        root becomes that of the lowest process with current[k]
///   visit_workers(archive, visit)        collective, for a checkpoint: `visit(archive, j)` for every
///                                        worker j in worker order, each saved where it is hosted and
///                                        assembled on the root; on load every process reads them all
///                                        (keeping those it hosts, see Engine)
template <class B>
concept Backend = backend_requirements::has_attach<B> && backend_requirements::has_layout<B> &&
                  backend_requirements::has_gathers<B> && backend_requirements::has_any<B> &&
                  backend_requirements::has_reductions<B> && backend_requirements::has_average_unit<B> &&
                  backend_requirements::has_checkpoint_collection<B>;

/// Compile-time check with readable messages.
template <class B>
consteval bool check_backend() {
  using namespace backend_requirements;
  static_assert(has_attach<B>, "hsgd Backend: missing `void attach(hsgd::Index workers, hsgd::Index levels)`");
  static_assert(has_layout<B>, "hsgd Backend: missing `first_worker()`, `local_workers()`, `hosts(j)` or "
                               "`is_root()` (const, the block of workers this process hosts)");
  static_assert(has_gathers<B>, "hsgd Backend: missing `gather_columns(Scalar*, rows)`, `gather_values(Value*)` or "
                                "`broadcast(Scalar*, size, from_worker)` (const collectives)");
  static_assert(has_any<B>, "hsgd Backend: missing `bool any(bool flag) const`");
  static_assert(has_reductions<B>, "hsgd Backend: missing `reduce_values<Value>(workers, value_of, take)` or "
                                   "`reduce_columns(scratch, column_of, take)` (const)");
  static_assert(has_average_unit<B>, "hsgd Backend: missing `bool average_unit(level, participants, members, columns, "
                                     "at_root, elsewhere)`");
  static_assert(has_checkpoint_collection<B>, "hsgd Backend: missing `collect_at_root(columns, rows, current)` or "
                                              "`visit_workers(archive, visit)` (const, for checkpoints)");
  return Backend<B>;
}

/// Every worker in this process: the reference backend. Its collectives do nothing, its
/// reductions stream over the workers in order, and a unit's round is the Server alone.
class InProcess {
 public:
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

  template <class Value, class ValueOf, class Take>
  void reduce_values(Index workers, ValueOf&& value_of, Take&& take) const {
    for (Index j = 0; j < workers; ++j) take(j, static_cast<Value>(value_of(j)));
  }
  template <class Scalar, class ColumnOf, class Take>
  void reduce_columns(Eigen::Ref<Vector<Scalar>> scratch, ColumnOf&& column_of, Take&& take) const {
    for (Index j = 0; j < workers_; ++j) {
      column_of(j, scratch);
      take(j, scratch);
    }
  }

  template <class Scalar, class AtRoot, class Elsewhere>
  bool average_unit(Index /*level*/, std::span<const Index> /*participants*/, std::span<const Index> /*members*/,
                    Matrix<Scalar>& /*columns*/, AtRoot&& at_root, Elsewhere&& /*elsewhere*/) {
    at_root();
    return true;
  }

  template <class Scalar>
  void collect_at_root(std::span<Scalar* const> /*columns*/, Index /*rows*/, std::span<const char> /*current*/) const {}
  template <class Archive, class Visit>
  void visit_workers(Archive& archive, Visit&& visit) const {
    for (Index j = 0; j < workers_; ++j) visit(archive, j);
  }

 private:
  Index workers_ = 0;
};

}  // namespace hsgd
