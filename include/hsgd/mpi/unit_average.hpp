#pragma once
/// @file
/// The pieces of H-SGD over MPI that decide its bits: which rank hosts which worker, and the
/// average of a unit whose members live on several ranks, computed in exactly the order of the
/// in-process Server so that the result is the same bits at any number of ranks.
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

template <class Scalar>
MPI_Datatype datatype() {
  if constexpr (std::is_same_v<Scalar, float>) return MPI_FLOAT;
  else if constexpr (std::is_same_v<Scalar, double>) return MPI_DOUBLE;
  else return MPI_LONG_DOUBLE;
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

/// The weighted average of one unit's models, its members spread over ranks by a BlockLayout:
///
///   xbar_U = (w_1 x_1 + w_2 x_2 + ... + w_k x_k) / (w_1 + ... + w_k),   members in the given order,
///
/// accumulated left to right and divided once, exactly as Server does, so the bits are those of
/// the in-process run whatever the rank count. The unit's ranks (those hosting a member) send
/// their members' models to the lowest of them, which sums in member order and broadcasts the
/// average: one gather and one broadcast of d scalars per member (none when the unit lives on one
/// rank). Made once per unit (it splits off the unit's communicator, collectively over `world`'s
/// ranks of the unit); `average` is collective over the unit's ranks and allocates nothing.
template <Real Scalar>
class UnitAverager {
 public:
  /// `unit_id` tells this unit's communicator apart from the others being made (a number unique
  /// to the unit, at most 32767): every rank must make its averagers in the same order.
  UnitAverager(MPI_Comm world, const BlockLayout& layout, int unit_id, std::span<const Index> members,
               std::span<const Scalar> member_weights, Index dimension)
      : members_(members.begin(), members.end()), weights_(member_weights.begin(), member_weights.end()),
        dimension_(dimension) {
    hsgd::detail::require(!members.empty(), "'members' must name at least one worker");
    hsgd::detail::require(member_weights.size() == members.size(), "'member_weights' has {} weights for {} members",
                          member_weights.size(), members.size());
    hsgd::detail::require(dimension > 0, "'dimension' ({}) must be positive", dimension);
    hsgd::detail::require(unit_id >= 0 && unit_id <= 32767, "'unit_id' ({}) must be in [0, 32767]", unit_id);
    hsgd::detail::require(detail::size_of(world) == layout.ranks(), "the layout is for {} ranks but the communicator has {}",
                          layout.ranks(), detail::size_of(world));
    for (const Scalar w : member_weights) total_weight_ += w;
    const int me = detail::rank_in(world);
    // The unit's ranks, in rank order, and where each member's model lands in the root's buffer.
    std::vector<int> ranks;
    for (const Index worker : members_) ranks.push_back(layout.owner(worker));
    std::sort(ranks.begin(), ranks.end());
    ranks.erase(std::unique(ranks.begin(), ranks.end()), ranks.end());
    unit_ranks_ = static_cast<int>(ranks.size());
    member_counts_.assign(ranks.size(), 0);
    for (const Index worker : members_) {
      const auto position = std::lower_bound(ranks.begin(), ranks.end(), layout.owner(worker)) - ranks.begin();
      ++member_counts_[static_cast<std::size_t>(position)];
    }
    displacements_.assign(ranks.size(), 0);
    for (std::size_t r = 1; r < ranks.size(); ++r) displacements_[r] = displacements_[r - 1] + member_counts_[r - 1];
    std::vector<int> next = displacements_;
    for (const Index worker : members_) {
      const auto position = std::lower_bound(ranks.begin(), ranks.end(), layout.owner(worker)) - ranks.begin();
      slot_of_member_.push_back(next[static_cast<std::size_t>(position)]++);
      if (layout.owner(worker) == me) local_members_.push_back(worker);
    }
    for (auto& count : member_counts_) count *= static_cast<int>(dimension);
    for (auto& displacement : displacements_) displacement *= static_cast<int>(dimension);
    hosts_ = !local_members_.empty();
    if (hosts_) {
      position_ = static_cast<int>(std::lower_bound(ranks.begin(), ranks.end(), me) - ranks.begin());
      send_.resize(static_cast<std::size_t>(local_members_.size() * static_cast<std::size_t>(dimension)));
      if (position_ == 0) gathered_.resize(static_cast<std::size_t>(members_.size() * static_cast<std::size_t>(dimension)));
    }
    make_communicator(world, ranks, unit_id);
  }

  UnitAverager(const UnitAverager&) = delete;
  UnitAverager& operator=(const UnitAverager&) = delete;
  ~UnitAverager() {
    if (comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
  }

  /// Whether this rank hosts a member (only those take part in `average`).
  [[nodiscard]] bool hosts_members() const { return hosts_; }
  /// The members this rank hosts, in member order.
  [[nodiscard]] std::span<const Index> local_members() const { return local_members_; }
  /// How many ranks the unit spans.
  [[nodiscard]] int ranks() const { return unit_ranks_; }

  /// Computes the average into `out` on every rank of the unit; `local_model(j)` gives the model
  /// of each member j this rank hosts (anything Eigen can read as a vector of d scalars).
  template <class LocalModel>
  void average(LocalModel&& local_model, VectorRef<Scalar> out) {
    hsgd::detail::require(hosts_, "this rank hosts no member of the unit: it takes no part in its average");
    hsgd::detail::require(out.size() == dimension_, "'out' has {} coordinates but the model has {}", out.size(), dimension_);
    for (std::size_t k = 0; k < local_members_.size(); ++k)
      Eigen::Map<Vector<Scalar>>(send_.data() + k * static_cast<std::size_t>(dimension_), dimension_) =
          local_model(local_members_[k]);
    if (unit_ranks_ == 1) {
      sum(send_.data(), out);  // the whole unit is here: no message
      return;
    }
    detail::check(MPI_Gatherv(send_.data(), static_cast<int>(send_.size()), detail::datatype<Scalar>(),
                              position_ == 0 ? gathered_.data() : nullptr, member_counts_.data(), displacements_.data(),
                              detail::datatype<Scalar>(), 0, comm_),
                  "MPI_Gatherv");
    if (position_ == 0) sum(gathered_.data(), out);
    detail::check(MPI_Bcast(out.data(), static_cast<int>(dimension_), detail::datatype<Scalar>(), 0, comm_), "MPI_Bcast");
  }

 private:
  /// The Server's arithmetic: first term, then the others added in member order, divided once.
  void sum(const Scalar* models, VectorRef<Scalar> out) const {
    const auto column = [&](std::size_t k) {
      return Eigen::Map<const Vector<Scalar>>(models + static_cast<std::size_t>(slot_of_member_[k]) * static_cast<std::size_t>(dimension_),
                                              dimension_);
    };
    out.noalias() = weights_[0] * column(0);
    for (std::size_t k = 1; k < members_.size(); ++k) out.noalias() += weights_[k] * column(k);
    out /= total_weight_;
  }

  /// A communicator of the unit's ranks (rank order), made by those ranks alone.
  void make_communicator(MPI_Comm world, const std::vector<int>& ranks, int tag) {
    if (!hosts_ || ranks.size() == 1) return;
    MPI_Group world_group = MPI_GROUP_NULL;
    MPI_Group unit_group = MPI_GROUP_NULL;
    detail::check(MPI_Comm_group(world, &world_group), "MPI_Comm_group");
    detail::check(MPI_Group_incl(world_group, static_cast<int>(ranks.size()), ranks.data(), &unit_group), "MPI_Group_incl");
    // The tag keeps apart the creations of units that share ranks.
    const int code = MPI_Comm_create_group(world, unit_group, tag, &comm_);
    MPI_Group_free(&unit_group);
    MPI_Group_free(&world_group);
    detail::check(code, "MPI_Comm_create_group");
  }

  std::vector<Index> members_;
  std::vector<Scalar> weights_;
  Scalar total_weight_ = 0;
  Index dimension_;
  std::vector<Index> local_members_;
  std::vector<int> slot_of_member_;  // member k's column in the gathered buffer
  std::vector<int> member_counts_;   // scalars sent by each of the unit's ranks
  std::vector<int> displacements_;   // where each of them lands
  std::vector<Scalar> send_;
  std::vector<Scalar> gathered_;
  int unit_ranks_ = 0;
  int position_ = -1;  // this rank's place among the unit's ranks (0: the root)
  bool hosts_ = false;
  MPI_Comm comm_ = MPI_COMM_NULL;
};

}  // namespace hsgd::mpi
