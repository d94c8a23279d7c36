#pragma once
/// @file
/// The N-level H-SGD loop.

#include <atomic>
#include <chrono>
#include <cmath>
#include <memory>
#include <span>
#include <utility>
#include <vector>

#include "hsgd/aggregation/server.hpp"
#include "hsgd/core/error.hpp"
#include "hsgd/core/random.hpp"
#include "hsgd/core/types.hpp"
#include "hsgd/objective/concepts.hpp"
#include "hsgd/optimizer/learning_rate.hpp"
#include "hsgd/optimizer/update.hpp"
#include "hsgd/run/observer.hpp"
#include "hsgd/run/options.hpp"
#include "hsgd/run/summary.hpp"
#include "hsgd/run/thread_pool.hpp"
#include "hsgd/sampler/samplers.hpp"
#include "hsgd/topology/grouping.hpp"
#include "hsgd/topology/schedule.hpp"
#include "hsgd/topology/topology.hpp"
#include "hsgd/worker/worker.hpp"

namespace hsgd {

/// Hierarchical SGD (Wang, Wang, Chen, Ji, AAAI 2022) over an N-level Topology.
///
/// Each step t = 1, 2, ...: every worker j takes one local step on its own shard F_j (see
/// Worker); then, if the Schedule says level l aggregates after step t, every level-l Server
/// replaces its workers' models by their weighted average. With weights w_j this preserves the
/// weighted global mean, so whatever the schedule, grouping or number of levels
///
///   xbar_{t+1} = xbar_t - gamma_t sum_j (w_j / sum w) g_j(x^j_t)       (plain SGD).
///
/// The global objective is f(x) = sum_j (w_j / sum w) F_j(x); `loss()` and `gradient()` evaluate
/// it. Pluggable parts: the Objective (one shard per worker), the Sampler, the UpdatePolicy, the
/// LearningRateSchedule and the GroupingPolicy; Observers watch a run.
///
/// With partial participation (Options::participation < 1) only the workers each level-1 server
/// drew for the round step, and the global mean is no longer preserved exactly: the round's
/// average is over a random subset.
///
/// Random streams: worker j draws from (seed, StreamKind::worker, j); the grouping policy from
/// (seed, StreamKind::grouping, 0); server s (numbered level by level, level 1 first) from
/// (seed, StreamKind::server, s). Nothing else is random, so equal seeds give equal bits.
template <class ObjectiveType, class SamplerType, class UpdateType = Sgd, class RateType = ConstantRate,
          class GroupingType = ContiguousGrouping>
class Engine {
  static_assert(check_objective<ObjectiveType>());
  static_assert(check_sampler<SamplerType>());
  static_assert(check_update_policy<UpdateType, typename ObjectiveType::Scalar>());
  static_assert(check_learning_rate_schedule<RateType>());
  static_assert(check_grouping_policy<GroupingType>());

 public:
  using Objective = ObjectiveType;
  using Scalar = typename Objective::Scalar;
  using WorkerType = Worker<Objective, SamplerType>;
  using ServerType = Server<Scalar>;

  /// Sets up the run: one worker per shard (shard j belongs to worker j), all models zero. Throws
  /// InvalidArgument when the options, a policy, or the shards do not fit the topology.
  Engine(Topology topology, std::vector<Objective> shards, SamplerType sampler, Options options,
         UpdateType update = {}, RateType rate = {}, GroupingType grouping = {})
      : options_(validated(options)),
        topology_(std::move(topology)),
        schedule_(topology_, options_.warmup_steps, options_.warmup_mode),
        shards_(std::move(shards)),
        update_(std::move(update)),
        rate_(std::move(rate)),
        grouping_(std::move(grouping)),
        grouping_rng_(make_stream(options_.seed, StreamKind::grouping, 0)),
        pool_(std::make_unique<detail::ThreadPool>(options_.resolved_threads())),
        aggregations_(static_cast<std::size_t>(topology_.levels()), 0) {
    update_.validate();
    rate_.validate();
    check_shards();
    const Index d = dimension();
    const Index n = topology_.workers();
    models_.setZero(d, n);
    gradients_.setZero(d, n);
    states_.setZero(UpdateType::has_state ? d : 0, UpdateType::has_state ? n : 0);
    state_scratch_.setZero(UpdateType::has_state ? d : 0);
    make_workers(sampler);
    make_servers();
    assign_groups();
    draw_participants();
  }

  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;
  Engine(Engine&&) noexcept = default;  // workers view heap buffers that a move leaves in place
  Engine& operator=(Engine&&) noexcept = default;
  ~Engine() = default;

  // ---- running -------------------------------------------------------------------------------

  /// Runs until `options().steps` steps have been taken in all, or an observer asks to stop.
  template <class... Observers>
  Summary run(Observers&&... observers) {
    // Checked on the type as passed, so a const observer whose hooks are not const is an error
    // rather than silently never called.
    static_assert((Observer<std::remove_reference_t<Observers>, Engine> && ...),
                  "hsgd Observer: each observer needs `after_step(const Engine&)` and/or "
                  "`after_aggregation(const Engine&, hsgd::Index level)`, returning void or bool (true stops), "
                  "callable on the observer as passed (a const observer needs const hooks)");
    const auto start = std::chrono::steady_clock::now();
    bool stop = false;
    while (!stop && step_ < options_.steps) {
      const Index level = step();
      if (level > 0) stop = (detail::notify_aggregation(observers, *this, level) | ... | stop);
      stop = (detail::notify_step(observers, *this) | ... | stop);
    }
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
    return summary(elapsed.count(), stop);
  }

  /// One step: every worker takes a local step, then the scheduled level (if any) aggregates.
  /// Returns that level, or 0.
  Index step() {
    ++step_;
    local_steps(current_learning_rate());
    const Index level = schedule_.level_after(step_);
    if (level > 0) aggregate(level);
    return level;
  }

  // ---- models --------------------------------------------------------------------------------

  /// Sets every worker's model to x0, e.g. before the first step.
  void set_model(ConstVectorRef<Scalar> x0) {
    check_dimension(x0.size(), "x0");
    models_.colwise() = x0;
  }

  /// Sets worker j's model.
  void set_model(Index worker, ConstVectorRef<Scalar> x) {
    check_worker(worker);
    check_dimension(x.size(), "x");
    models_.col(worker) = x;
  }

  /// x^j.
  [[nodiscard]] auto model(Index worker) const {
    check_worker(worker);
    return models_.col(worker);
  }
  /// All models, worker j in column j.
  [[nodiscard]] const Matrix<Scalar>& models() const { return models_; }
  /// The last minibatch gradient of every worker, worker j in column j.
  [[nodiscard]] const Matrix<Scalar>& gradients() const { return gradients_; }
  /// The update policy's state, worker j in column j (empty for stateless policies).
  [[nodiscard]] const Matrix<Scalar>& states() const { return states_; }

  /// xbar = sum_j w_j x^j / sum_j w_j, the (virtual) global average.
  [[nodiscard]] Vector<Scalar> global_average() const {
    Vector<Scalar> average(dimension());
    global_average(average);
    return average;
  }
  void global_average(VectorRef<Scalar> out) const {
    out.noalias() = models_ * normalised_weights_;
  }

  /// f(x) = sum_j (w_j / sum w) F_j(x).
  [[nodiscard]] Scalar loss(ConstVectorRef<Scalar> x) const {
    Scalar total = 0;
    for (std::size_t j = 0; j < shards_.size(); ++j) total += normalised_weights_(static_cast<Index>(j)) * shards_[j].value(x);
    return total;
  }
  /// grad f(x), through `scratch` (size d) so repeated calls allocate nothing.
  void gradient(ConstVectorRef<Scalar> x, VectorRef<Scalar> out, VectorRef<Scalar> scratch) const {
    out.setZero();
    for (std::size_t j = 0; j < shards_.size(); ++j) {
      shards_[j].gradient(x, scratch);
      out.noalias() += normalised_weights_(static_cast<Index>(j)) * scratch;
    }
  }
  [[nodiscard]] Vector<Scalar> gradient(ConstVectorRef<Scalar> x) const {
    Vector<Scalar> out(dimension());
    Vector<Scalar> scratch(dimension());
    gradient(x, out, scratch);
    return out;
  }

  // ---- structure -----------------------------------------------------------------------------

  [[nodiscard]] Index dimension() const { return shards_.front().dimension(); }
  [[nodiscard]] Index workers() const { return topology_.workers(); }
  /// Local steps taken so far (t of the last completed step).
  [[nodiscard]] Index step_count() const { return step_; }
  [[nodiscard]] const Options& options() const { return options_; }
  [[nodiscard]] const Topology& topology() const { return topology_; }
  [[nodiscard]] const Schedule& schedule() const { return schedule_; }
  [[nodiscard]] const std::vector<Objective>& shards() const { return shards_; }
  [[nodiscard]] const WorkerType& worker(Index j) const {
    check_worker(j);
    return workers_[static_cast<std::size_t>(j)];
  }
  [[nodiscard]] const ServerType& server(Index level, Index unit) const {
    detail::require(unit >= 0 && unit < topology_.units(level), "'unit' ({}) must be in [0, {})", unit,
                    topology_.units(level));
    return servers_[static_cast<std::size_t>(level - 1)][static_cast<std::size_t>(unit)];
  }
  /// w_j / sum w: worker j's weight in the global average and in f.
  [[nodiscard]] const Vector<Scalar>& weights() const { return normalised_weights_; }

  /// The grouping in force: the worker in each slot of the topology.
  [[nodiscard]] std::span<const Index> slot_to_worker() const { return slot_to_worker_; }
  /// The unit of level l that holds `worker` now.
  [[nodiscard]] Index unit_of(Index worker, Index level) const {
    check_worker(worker);
    return topology_.unit_of_slot(level, worker_to_slot_[static_cast<std::size_t>(worker)]);
  }
  /// The workers of every unit of level l now (allocates: for reports, not hot loops).
  [[nodiscard]] std::vector<std::vector<Index>> units(Index level) const {
    detail::require(level >= 1 && level <= topology_.levels(), "'level' ({}) must be in [1, {}]", level,
                    topology_.levels());
    std::vector<std::vector<Index>> result;
    for (const auto& server : servers_[static_cast<std::size_t>(level - 1)])
      result.emplace_back(server.members().begin(), server.members().end());
    return result;
  }
  /// aggregation_counts()[l - 1]: rounds in which level l aggregated so far.
  [[nodiscard]] std::span<const Index> aggregation_counts() const { return aggregations_; }
  /// Grouping draws after the first.
  [[nodiscard]] Index regroupings() const { return regroupings_; }
  /// Whether worker j takes part in the current round (always, without partial participation).
  [[nodiscard]] bool participates(Index worker) const {
    check_worker(worker);
    return active_[static_cast<std::size_t>(worker)] != 0;
  }
  /// Workers that took part in the round that the last aggregation closed (n without partial
  /// participation): what the probes count as messages sent up.
  [[nodiscard]] Index last_round_participants() const { return last_round_participants_; }
  /// gamma_t, the learning rate the schedule gives at step t.
  [[nodiscard]] double learning_rate_at(Index step) const { return rate_.rate(options_.learning_rate, step); }

 private:
  static const Options& validated(const Options& options) {
    options.validate();
    return options;
  }

  void check_shards() const {
    detail::require(static_cast<Index>(shards_.size()) == topology_.workers(),
                    "'shards' holds {} objectives but the topology has {} workers: give one shard per worker",
                    shards_.size(), topology_.workers());
    const Index d = shards_.front().dimension();
    detail::require(d > 0, "shard 0 has dimension {}: the model needs at least one coordinate", d);
    for (std::size_t j = 0; j < shards_.size(); ++j) {
      detail::require(shards_[j].dimension() == d, "shard {} has dimension {} but shard 0 has dimension {}", j,
                      shards_[j].dimension(), d);
      detail::require(shards_[j].sample_count() > 0, "shard {} has no samples", j);
    }
  }

  void check_worker(Index worker) const {
    detail::require(worker >= 0 && worker < workers(), "'worker' ({}) must be in [0, {})", worker, workers());
  }

  void check_dimension(Index size, const char* name) const {
    detail::require(size == dimension(), "'{}' has {} coordinates but the model has {}", name, size, dimension());
  }

  Scalar current_learning_rate() const {
    const double rate = rate_.rate(options_.learning_rate, step_);
    detail::require(std::isfinite(rate) && rate > 0, "the learning rate at step {} ({}) must be finite and positive",
                    step_, rate);
    return static_cast<Scalar>(rate);
  }

  /// x.allFinite() with a fast path: a sum is finite only if every term is (NaN and Inf
  /// propagate), and a sum vectorises, so checking every model on every step costs next to nothing.
  static bool all_finite(const auto& x) { return std::isfinite(x.sum()) || x.allFinite(); }

  /// Every worker's local step, in parallel. A non-finite model is reported for the lowest
  /// worker index, so the error names the same worker whatever the thread count.
  void local_steps(Scalar learning_rate) {
    std::atomic<Index> first_non_finite{workers()};
    auto chunk = [&](Index begin, Index end) {
      for (Index j = begin; j < end; ++j) {
        if (active_[static_cast<std::size_t>(j)] == 0) continue;
        auto& worker = workers_[static_cast<std::size_t>(j)];
        worker.step(update_, learning_rate);
        if (options_.check_finite && !all_finite(worker.model())) {
          Index seen = first_non_finite.load(std::memory_order_relaxed);
          while (j < seen && !first_non_finite.compare_exchange_weak(seen, j, std::memory_order_relaxed)) {
          }
          return;
        }
      }
    };
    pool_->for_each_chunk(workers(), chunk);
    if (first_non_finite.load(std::memory_order_relaxed) < workers())
      throw NumericalError(step_, first_non_finite.load(std::memory_order_relaxed), 0);
  }

  void make_workers(const SamplerType& sampler) {
    const Index d = dimension();
    const Index state_size = UpdateType::has_state ? d : 0;
    workers_.reserve(shards_.size());
    raw_weights_.resize(shards_.size());
    for (Index j = 0; j < topology_.workers(); ++j) {
      const auto& shard = shards_[static_cast<std::size_t>(j)];
      workers_.emplace_back(j, shard, sampler, make_stream(options_.seed, StreamKind::worker, static_cast<std::uint64_t>(j)),
                            Eigen::Map<Vector<Scalar>>(models_.col(j).data(), d),
                            Eigen::Map<Vector<Scalar>>(gradients_.col(j).data(), d),
                            Eigen::Map<Vector<Scalar>>(state_size > 0 ? states_.col(j).data() : nullptr, state_size));
      raw_weights_[static_cast<std::size_t>(j)] =
          options_.weighting == Weighting::uniform ? Scalar(1) : static_cast<Scalar>(shard.sample_count());
    }
    const Eigen::Map<const Vector<Scalar>> raw(raw_weights_.data(), topology_.workers());
    normalised_weights_ = raw / raw.sum();
  }

  void make_servers() {
    std::uint64_t id = 0;
    for (Index level = 1; level <= topology_.levels(); ++level) {
      auto& row = servers_.emplace_back();
      for (Index unit = 0; unit < topology_.units(level); ++unit)
        row.emplace_back(level, unit, dimension(), make_stream(options_.seed, StreamKind::server, id++));
    }
    slot_to_worker_.resize(shards_.size());
    worker_to_slot_.resize(shards_.size());
    active_.assign(shards_.size(), char{1});
    last_round_participants_ = workers();
  }

  bool partial_participation() const { return options_.participation < 1.0; }

  /// Each level-1 server draws who takes part in the next round.
  void draw_participants() {
    if (!partial_participation()) return;
    std::fill(active_.begin(), active_.end(), char{0});
    for (auto& server : servers_.front()) {
      server.draw_participants(options_.participation);
      for (const Index j : server.participants()) active_[static_cast<std::size_t>(j)] = 1;
    }
  }

  Index participant_count() const {
    Index count = 0;
    for (const auto& server : servers_.front()) count += static_cast<Index>(server.participants().size());
    return count;
  }

  /// Asks the grouping policy who sits where, checks the answer and tells the servers.
  void assign_groups() {
    grouping_.assign(topology_, std::span<Index>(slot_to_worker_), grouping_rng_);
    std::fill(worker_to_slot_.begin(), worker_to_slot_.end(), Index{-1});
    for (std::size_t slot = 0; slot < slot_to_worker_.size(); ++slot) {
      const Index worker = slot_to_worker_[slot];
      detail::require(worker >= 0 && worker < workers(), "the grouping put worker {} in slot {}: no such worker",
                      worker, slot);
      detail::require(worker_to_slot_[static_cast<std::size_t>(worker)] < 0,
                      "the grouping put worker {} in two slots ({} and {})", worker,
                      worker_to_slot_[static_cast<std::size_t>(worker)], slot);
      worker_to_slot_[static_cast<std::size_t>(worker)] = static_cast<Index>(slot);
    }
    for (Index level = 1; level <= topology_.levels(); ++level) {
      const auto offsets = topology_.unit_offsets(level);
      auto& row = servers_[static_cast<std::size_t>(level - 1)];
      for (std::size_t unit = 0; unit < row.size(); ++unit) {
        const std::span<const Index> members(slot_to_worker_.data() + offsets[unit],
                                             static_cast<std::size_t>(offsets[unit + 1] - offsets[unit]));
        row[unit].set_members(members, raw_weights_);
      }
    }
  }

  /// Level `level` averages. With partial participation every round closes at level 1 first
  /// (the level-1 servers average their participants and send that to all their workers), so a
  /// higher level then averages the groups' models.
  void aggregate(Index level) {
    last_round_participants_ = partial_participation() ? participant_count() : workers();
    if (partial_participation() && level > 1) aggregate_servers(1);
    aggregate_servers(level);
    ++aggregations_[static_cast<std::size_t>(level - 1)];
    if (level == topology_.levels() && grouping_.regroups_at_global_aggregation()) {
      assign_groups();
      ++regroupings_;
    }
    draw_participants();
  }

  void aggregate_servers(Index level) {
    for (auto& server : servers_[static_cast<std::size_t>(level - 1)]) {
      server.aggregate(models_);
      if (options_.check_finite && !all_finite(server.model())) throw NumericalError(step_, server.members()[0], level);
      if constexpr (UpdateType::has_state) {
        switch (update_.state_at_aggregation()) {
          case StateAtAggregation::keep: break;
          case StateAtAggregation::average: server.aggregate_state(states_, state_scratch_); break;
          case StateAtAggregation::reset: server.reset_state(states_); break;
        }
      }
    }
  }

  Summary summary(double seconds, bool stopped) const {
    Summary result;
    result.workers = workers();
    result.periods = topology_.periods();
    result.steps = step_;
    result.aggregations = aggregations_;
    result.regroupings = regroupings_;
    const Vector<Scalar> average = global_average();
    result.loss = static_cast<double>(loss(average));
    result.gradient_norm_squared = static_cast<double>(gradient(average).squaredNorm());
    result.seconds = seconds;
    result.stopped_by_observer = stopped;
    return result;
  }

  Options options_;
  Topology topology_;
  Schedule schedule_;
  std::vector<Objective> shards_;
  UpdateType update_;
  RateType rate_;
  GroupingType grouping_;
  Rng grouping_rng_;  // the grouping policy's stream

  Matrix<Scalar> models_;     // x^j in column j
  Matrix<Scalar> gradients_;  // last minibatch gradient of worker j in column j
  Matrix<Scalar> states_;     // update-policy state of worker j in column j (or empty)
  Vector<Scalar> state_scratch_;
  std::vector<Scalar> raw_weights_;    // w_j: 1, or m_j
  Vector<Scalar> normalised_weights_;  // w_j / sum w

  std::vector<WorkerType> workers_;
  std::vector<std::vector<ServerType>> servers_;  // servers_[l - 1][unit]
  std::vector<Index> slot_to_worker_;
  std::vector<Index> worker_to_slot_;
  std::vector<char> active_;  // active_[j]: worker j takes part in the current round
  Index last_round_participants_ = 0;

  std::unique_ptr<detail::ThreadPool> pool_;  // behind a pointer: its threads hold its address
  Index step_ = 0;
  std::vector<Index> aggregations_;
  Index regroupings_ = 0;
};

}  // namespace hsgd
