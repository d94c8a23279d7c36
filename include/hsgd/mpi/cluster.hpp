#pragma once
/// @file
/// The MPI backend of the Engine: each rank hosts a block of workers, and a unit whose members
/// live on several ranks averages through messages, in the in-process Server's order, so the
/// models are the same bits at any number of ranks.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "hsgd/checkpoint/archive.hpp"
#include "hsgd/core/error.hpp"
#include "hsgd/core/types.hpp"
#include "hsgd/mpi/layout.hpp"

namespace hsgd::mpi {

/// Communication of one kind as one rank saw it (or, from Cluster::traffic_over_ranks, summed
/// over the ranks, with the slowest rank's seconds).
struct Traffic {
  /// Unit rounds that sent messages (a unit that lives on one rank sends none) and that this
  /// rank took part in; over the ranks, each such round counted once.
  Index rounds = 0;
  /// Messages sent and their payload, in bytes.
  Index messages = 0;
  double bytes = 0;
  /// Wall-clock seconds from posting the first message of a round to its completion.
  double seconds = 0;
};

/// Runs an Engine over MPI: pass `hsgd::mpi::Cluster(MPI_COMM_WORLD)` among the Engine's
/// plug-ins, build the shards with a factory `worker -> Objective` (each rank then builds only
/// its own), and run the same program under `mpirun`.
///
/// Layout: rank r hosts a contiguous block of workers (BlockLayout: n / ranks each, the first
/// n mod ranks ranks one more), so with contiguous grouping a level-1 unit lives on one rank
/// whenever the block sizes allow, and its rounds send no message.
///
/// A unit's round: the lowest rank hosting a participant (the root) receives every other
/// participant's model, one message of d scalars per model, into its own copy of the models;
/// averages them exactly as the in-process Server does (same weights, same order, one division);
/// and sends the average, one message per rank, to every other rank hosting a member. Only the
/// unit's ranks take part, so units of one level on disjoint ranks proceed independently. The
/// messages are point to point rather than on a communicator per unit because random grouping
/// changes which ranks a unit spans at every global round; all ranks walk the units in the same
/// order, so the rounds never deadlock.
///
/// Collectives (gather_columns, gather_values, broadcast) serve the measurements that read every
/// worker: the Engine's global_average, loss and gradient, and the probes.
///
/// The Cluster duplicates the communicator it is given, so its messages never meet the
/// program's own; making one is collective. Every rank must host at least one worker (ranks <=
/// workers). Only the thread that calls the Engine calls MPI (the Engine's worker threads never
/// do): initialise MPI with MPI_Init_thread(..., MPI_THREAD_FUNNELED, ...). An error that one
/// rank alone finds throws there only; run each rank's work in run_or_abort.
class Cluster {
 public:
  explicit Cluster(MPI_Comm comm) {
    detail::check(MPI_Comm_dup(comm, &comm_), "MPI_Comm_dup");
    rank_ = detail::rank_in(comm_);
    ranks_ = detail::size_of(comm_);
  }
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;
  Cluster(Cluster&& other) noexcept
      : comm_(std::exchange(other.comm_, MPI_COMM_NULL)),
        rank_(other.rank_),
        ranks_(other.ranks_),
        first_(other.first_),
        count_(other.count_),
        owner_(std::move(other.owner_)),
        counts_(std::move(other.counts_)),
        offsets_(std::move(other.offsets_)),
        requests_(std::move(other.requests_)),
        told_(std::move(other.told_)),
        traffic_(std::move(other.traffic_)),
        led_(std::move(other.led_)),
        measurement_(other.measurement_),
        scratch_(std::move(other.scratch_)) {}
  Cluster& operator=(Cluster&&) = delete;
  ~Cluster() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (comm_ != MPI_COMM_NULL && finalized == 0) MPI_Comm_free(&comm_);
  }

  // ---- the Backend interface (see hsgd::Backend) ---------------------------------------------

  void attach(Index workers, Index levels) {
    hsgd::detail::require(comm_ != MPI_COMM_NULL, "this Cluster was moved from: give each Engine a Cluster of its own");
    hsgd::detail::require(workers >= ranks_,
                          "the run has {} workers but the communicator has {} ranks: every rank must host at least "
                          "one worker (run on at most {} ranks)", workers, ranks_, workers);
    detail::as_count(workers, "the number of workers");
    const BlockLayout layout(workers, ranks_);
    first_ = layout.first(rank_);
    count_ = layout.count(rank_);
    owner_.resize(static_cast<std::size_t>(workers));
    for (Index j = 0; j < workers; ++j) owner_[static_cast<std::size_t>(j)] = layout.owner(j);
    counts_.resize(static_cast<std::size_t>(ranks_));
    offsets_.resize(static_cast<std::size_t>(ranks_));
    for (int r = 0; r < ranks_; ++r) {
      counts_[static_cast<std::size_t>(r)] = static_cast<int>(layout.count(r));
      offsets_[static_cast<std::size_t>(r)] = static_cast<int>(layout.first(r));
    }
    requests_.assign(static_cast<std::size_t>(workers + ranks_), MPI_REQUEST_NULL);
    told_.assign(static_cast<std::size_t>(ranks_), 0);
    traffic_.assign(static_cast<std::size_t>(levels), Traffic{});
    led_.assign(static_cast<std::size_t>(levels), 0);
  }

  [[nodiscard]] Index first_worker() const { return first_; }
  [[nodiscard]] Index local_workers() const { return count_; }
  [[nodiscard]] bool hosts(Index worker) const { return owner(worker) == rank_; }
  /// Rank 0 reports: it prints tables and writes files.
  [[nodiscard]] bool is_root() const { return rank_ == 0; }

  /// Every rank's block of columns (`rows` scalars per worker, worker j in column j) to every rank.
  template <class Scalar>
  void gather_columns(Scalar* data, Index rows) const {
    const double start = MPI_Wtime();
    MPI_Datatype column = MPI_DATATYPE_NULL;
    detail::check(MPI_Type_contiguous(detail::as_count(rows, "the dimension"), detail::datatype<Scalar>(), &column),
                  "MPI_Type_contiguous");
    detail::check(MPI_Type_commit(&column), "MPI_Type_commit");
    const int code = MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, data, counts_.data(), offsets_.data(), column, comm_);
    MPI_Type_free(&column);
    detail::check(code, "MPI_Allgatherv");
    count_measurement(static_cast<double>(count_ * rows) * static_cast<double>(sizeof(Scalar)), start);
  }

  /// Every rank's block of per-worker values to every rank.
  template <class Value>
  void gather_values(Value* data) const {
    const double start = MPI_Wtime();
    detail::check(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, data, counts_.data(), offsets_.data(),
                                 detail::datatype<Value>(), comm_),
                  "MPI_Allgatherv");
    count_measurement(static_cast<double>(count_) * static_cast<double>(sizeof(Value)), start);
  }

  /// `size` scalars from the rank hosting `from_worker` to every rank.
  template <class Scalar>
  void broadcast(Scalar* data, Index size, Index from_worker) const {
    detail::check(MPI_Bcast(data, detail::as_count(size, "the broadcast's size"), detail::datatype<Scalar>(),
                            owner(from_worker), comm_),
                  "MPI_Bcast");
  }

  /// Whether `flag` is true on any rank (every rank gets the answer).
  [[nodiscard]] bool any(bool flag) const {
    int value = flag ? 1 : 0;
    detail::check(MPI_Allreduce(MPI_IN_PLACE, &value, 1, MPI_INT, MPI_LOR, comm_), "MPI_Allreduce");
    return value != 0;
  }

  /// `value_of(j)` for the workers hosted here, gathered, then `take(j, value)` for every worker
  /// in worker order, on every rank: the same sums as in process.
  template <class Value, class ValueOf, class Take>
  void reduce_values(Index workers, ValueOf&& value_of, Take&& take) const {
    Value* values = scratch<Value>(static_cast<std::size_t>(workers));
    for (Index j = first_; j < first_ + count_; ++j) values[j] = static_cast<Value>(value_of(j));
    gather_values(values);
    for (Index j = 0; j < workers; ++j) take(j, values[j]);
  }
  /// The same for columns of `scratch.size()` scalars, through a d x n block of the Cluster's own.
  template <class Scalar, class ColumnOf, class Take>
  void reduce_columns(Eigen::Ref<Vector<Scalar>> scratch_column, ColumnOf&& column_of, Take&& take) const {
    const Index rows = scratch_column.size();
    const auto workers = static_cast<Index>(owner_.size());
    Scalar* block = scratch<Scalar>(static_cast<std::size_t>(rows * workers));
    Eigen::Map<Matrix<Scalar>> columns(block, rows, workers);
    for (Index j = first_; j < first_ + count_; ++j) column_of(j, VectorRef<Scalar>(columns.col(j)));
    gather_columns(block, rows);
    for (Index j = 0; j < workers; ++j) take(j, ConstVectorRef<Scalar>(columns.col(j)));
  }

  /// A checkpoint's workers: on save each rank visits those it hosts into bytes of its own and
  /// rank 0 appends every rank's, in rank order (= worker order); on load every rank reads them all.
  template <class Archive, class Visit>
  void visit_workers(Archive& archive, Visit&& visit) const {
    if constexpr (Archive::loading) {
      for (Index j = 0; j < static_cast<Index>(owner_.size()); ++j) visit(archive, j);
    } else {
      CheckpointWriter local;
      SaveArchive mine(local);
      for (Index j = first_; j < first_ + count_; ++j) visit(mine, j);
      std::vector<char> bytes = local.payload();
      gather_bytes(bytes);
      archive.writer().put_bytes(bytes);
    }
  }

  /// For each column k (`rows` scalars at columns[k]), the lowest rank whose current[k] is set
  /// sends its column to rank 0: how a checkpoint collects each server's last average from a
  /// rank that took part in the server's last round.
  template <class Scalar>
  void collect_at_root(std::span<Scalar* const> columns, Index rows, std::span<const char> current) const {
    std::vector<int> holder(current.size());
    for (std::size_t k = 0; k < current.size(); ++k) holder[k] = current[k] != 0 ? rank_ : ranks_;
    detail::check(MPI_Allreduce(MPI_IN_PLACE, holder.data(), detail::as_count(static_cast<Index>(holder.size()), "servers"),
                                MPI_INT, MPI_MIN, comm_),
                  "MPI_Allreduce");
    const int size = detail::as_count(rows, "the dimension");
    for (std::size_t k = 0; k < holder.size(); ++k) {
      hsgd::detail::require(holder[k] < ranks_, "no rank holds the last average of server {}", k);
      Scalar* column = columns[k];
      if (holder[k] == 0) continue;
      if (rank_ == holder[k])
        detail::check(MPI_Send(column, size, detail::datatype<Scalar>(), 0, collect_tag, comm_), "MPI_Send");
      else if (is_root())
        detail::check(MPI_Recv(column, size, detail::datatype<Scalar>(), holder[k], collect_tag, comm_, MPI_STATUS_IGNORE),
                      "MPI_Recv");
    }
  }

  /// One unit's round (see the class notes). `columns` is d x n, worker j in column j.
  template <class Scalar, class AtRoot, class Elsewhere>
  bool average_unit(Index level, std::span<const Index> participants, std::span<const Index> members,
                    Matrix<Scalar>& columns, AtRoot&& at_root, Elsewhere&& elsewhere) {
    int root = ranks_;
    for (const Index j : participants) root = std::min(root, owner(j));
    bool here = false;
    bool one_rank = true;
    for (const Index j : members) {
      here = here || owner(j) == rank_;
      one_rank = one_rank && owner(j) == root;
    }
    if (!here) return false;
    if (one_rank) {
      at_root();
      return true;
    }
    const int size = detail::as_count(columns.rows(), "the dimension");
    const MPI_Datatype type = detail::datatype<Scalar>();
    const double start = MPI_Wtime();
    int pending = 0;
    Index sent = 0;
    if (rank_ == root) {
      for (const Index j : participants)
        if (owner(j) != rank_)
          detail::check(MPI_Irecv(columns.col(j).data(), size, type, owner(j), gather_tag, comm_, &requests_[pending++]),
                        "MPI_Irecv");
      wait(pending);
      const Vector<Scalar>& average = at_root();
      std::fill(told_.begin(), told_.end(), char{0});
      told_[static_cast<std::size_t>(rank_)] = 1;
      pending = 0;
      for (const Index j : members) {
        const int to = owner(j);
        if (told_[static_cast<std::size_t>(to)] != 0) continue;
        told_[static_cast<std::size_t>(to)] = 1;
        detail::check(MPI_Isend(average.data(), size, type, to, result_tag, comm_, &requests_[pending++]), "MPI_Isend");
        ++sent;
      }
      wait(pending);
    } else {
      for (const Index j : participants)
        if (owner(j) == rank_) {
          detail::check(MPI_Isend(columns.col(j).data(), size, type, root, gather_tag, comm_, &requests_[pending++]),
                        "MPI_Isend");
          ++sent;
        }
      Scalar* receive = scratch<Scalar>(static_cast<std::size_t>(size));
      detail::check(MPI_Irecv(receive, size, type, root, result_tag, comm_, &requests_[pending++]), "MPI_Irecv");
      wait(pending);
      elsewhere(ConstVectorRef<Scalar>(Eigen::Map<const Vector<Scalar>>(receive, size)));
    }
    Traffic& traffic = traffic_[static_cast<std::size_t>(level - 1)];
    ++traffic.rounds;
    if (rank_ == root) ++led_[static_cast<std::size_t>(level - 1)];
    traffic.messages += sent;
    traffic.bytes += static_cast<double>(sent) * size * static_cast<double>(sizeof(Scalar));
    traffic.seconds += MPI_Wtime() - start;
    return true;
  }

  // ---- the layout and the counters -----------------------------------------------------------

  [[nodiscard]] int rank() const { return rank_; }
  [[nodiscard]] int ranks() const { return ranks_; }
  /// The rank hosting `worker`.
  [[nodiscard]] int owner(Index worker) const {
    hsgd::detail::require(worker >= 0 && static_cast<std::size_t>(worker) < owner_.size(),
                          "'worker' ({}) must be in [0, {})", worker, owner_.size());
    return owner_[static_cast<std::size_t>(worker)];
  }
  /// The communicator the Cluster uses (a duplicate of the one it was given).
  [[nodiscard]] MPI_Comm communicator() const { return comm_; }

  /// traffic()[l - 1]: this rank's share of the level-l rounds.
  [[nodiscard]] std::span<const Traffic> traffic() const { return traffic_; }
  /// The gathers of the measurements (global average, loss, gradient, probes), this rank's share.
  [[nodiscard]] const Traffic& measurement_traffic() const { return measurement_; }

  /// Collective: per level, the rounds that sent messages (each once), the messages and bytes
  /// summed over the ranks, and the seconds of the rank that spent the longest communicating.
  [[nodiscard]] std::vector<Traffic> traffic_over_ranks() const {
    std::vector<Traffic> total(traffic_.size());
    for (std::size_t level = 0; level < traffic_.size(); ++level) {
      Index counts[2] = {led_[level], traffic_[level].messages};  // a round's root leads it once
      detail::check(MPI_Allreduce(MPI_IN_PLACE, counts, 2, MPI_INT64_T, MPI_SUM, comm_), "MPI_Allreduce");
      double bytes = traffic_[level].bytes;
      double seconds = traffic_[level].seconds;
      detail::check(MPI_Allreduce(MPI_IN_PLACE, &bytes, 1, MPI_DOUBLE, MPI_SUM, comm_), "MPI_Allreduce");
      detail::check(MPI_Allreduce(MPI_IN_PLACE, &seconds, 1, MPI_DOUBLE, MPI_MAX, comm_), "MPI_Allreduce");
      total[level] = Traffic{counts[0], counts[1], bytes, seconds};
    }
    return total;
  }

 private:
  static constexpr int gather_tag = 1;

  /// Every rank's bytes, concatenated in rank order, on rank 0 (the others keep theirs).
  void gather_bytes(std::vector<char>& bytes) const {
    const int mine = detail::as_count(static_cast<Index>(bytes.size()), "a rank's checkpoint bytes");
    std::vector<int> sizes(static_cast<std::size_t>(is_root() ? ranks_ : 0));
    detail::check(MPI_Gather(&mine, 1, MPI_INT, sizes.data(), 1, MPI_INT, 0, comm_), "MPI_Gather");
    std::vector<int> offsets(sizes.size(), 0);
    Index total = 0;
    for (std::size_t r = 0; r < sizes.size(); ++r) {
      offsets[r] = detail::as_count(total, "the checkpoint bytes of all ranks");
      total += sizes[r];
    }
    std::vector<char> all(static_cast<std::size_t>(total));
    detail::check(MPI_Gatherv(bytes.data(), mine, MPI_BYTE, all.data(), sizes.data(), offsets.data(), MPI_BYTE, 0, comm_),
                  "MPI_Gatherv");
    if (is_root()) bytes = std::move(all);
  }

  /// `count` values of the Cluster's scratch: grown on first use, then reused, so the reductions
  /// and unit rounds of a run's steady state allocate nothing.
  template <class Value>
  Value* scratch(std::size_t count) const {
    if (scratch_.size() < count * sizeof(Value)) scratch_.resize(count * sizeof(Value));
    return reinterpret_cast<Value*>(scratch_.data());  // bytes from operator new: aligned for any scalar
  }
  static constexpr int result_tag = 2;
  static constexpr int collect_tag = 3;

  void wait(int pending) {
    detail::check(MPI_Waitall(pending, requests_.data(), MPI_STATUSES_IGNORE), "MPI_Waitall");
  }

  void count_measurement(double bytes, double start) const {
    ++measurement_.rounds;
    measurement_.messages += ranks_ - 1;
    measurement_.bytes += bytes * (ranks_ - 1);
    measurement_.seconds += MPI_Wtime() - start;
  }

  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0;
  int ranks_ = 1;
  Index first_ = 0;
  Index count_ = 0;
  std::vector<int> owner_;    // owner_[j]: the rank hosting worker j
  std::vector<int> counts_;   // workers per rank, for the gathers
  std::vector<int> offsets_;  // first worker of each rank
  std::vector<MPI_Request> requests_;
  std::vector<char> told_;  // the ranks a root has sent the average to, this round
  std::vector<Traffic> traffic_;
  std::vector<Index> led_;  // per level: rounds with messages this rank was the root of
  mutable Traffic measurement_;
  mutable std::vector<std::byte> scratch_;  // the gathers of reductions, a unit round's received average
};

}  // namespace hsgd::mpi
