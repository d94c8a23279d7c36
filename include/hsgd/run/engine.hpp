#pragma once
/// @file
/// The N-level H-SGD loop.

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <exception>
#include <limits>
#include <memory>
#include <numeric>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/ranges.h>

#include "hsgd/aggregation/server.hpp"
#include "hsgd/checkpoint/format.hpp"
#include "hsgd/checkpoint/plugin.hpp"
#include "hsgd/core/error.hpp"
#include "hsgd/core/random.hpp"
#include "hsgd/core/types.hpp"
#include "hsgd/objective/concepts.hpp"
#include "hsgd/optimizer/learning_rate.hpp"
#include "hsgd/optimizer/update.hpp"
#include "hsgd/run/backend.hpp"
#include "hsgd/run/observer.hpp"
#include "hsgd/run/options.hpp"
#include "hsgd/run/summary.hpp"
#include "hsgd/run/thread_pool.hpp"
#include "hsgd/sampler/samplers.hpp"
#include "hsgd/time/clock.hpp"
#include "hsgd/topology/grouping.hpp"
#include "hsgd/topology/schedule.hpp"
#include "hsgd/topology/topology.hpp"
#include "hsgd/worker/worker.hpp"

namespace hsgd {

namespace detail {

/// The first of Candidates that plays Role, or Default: how the Engine's deduction guide finds
/// the update policy, rate schedule and grouping policy among the plug-ins it is given.
template <template <class> class Role, class Default, class... Candidates>
struct first_of {
  using type = Default;
};
template <template <class> class Role, class Default, class First, class... Rest>
struct first_of<Role, Default, First, Rest...> {
  using type = std::conditional_t<Role<First>::value, First, typename first_of<Role, Default, Rest...>::type>;
};

// A plug-in's role is recognised by any one piece of its interface, not by the whole concept, so
// that a policy missing a piece is deduced into its place and the Engine's check names the piece.
template <class Scalar>
struct is_update_policy_for {
  template <class U>
  struct role : std::bool_constant<UpdatePolicy<U, Scalar> || update_requirements::declares_state<U> ||
                                   update_requirements::has_state_at_aggregation<U>> {};
};
template <class R>
struct is_rate_schedule : std::bool_constant<learning_rate_requirements::has_rate<R>> {};
template <class B>
struct is_backend : std::bool_constant<requires { B::distributed; }> {};
template <class C>
struct is_clock : std::bool_constant<requires { C::simulates; }> {};
template <class G>
struct is_grouping_policy
    : std::bool_constant<grouping_requirements::has_assign<G> || grouping_requirements::has_regroups<G>> {};

/// The argument of type T among `arguments`, or T{} when there is none.
template <class T>
T take_plugin() {
  return T{};
}
template <class T, class First, class... Rest>
T take_plugin(First&& first, Rest&&... rest) {
  if constexpr (std::is_same_v<std::remove_cvref_t<First>, T>) {
    return T(std::forward<First>(first));
  } else {
    return take_plugin<T>(std::forward<Rest>(rest)...);
  }
}

/// True on the object that is live, false on one that was moved from: a member that lets the
/// Engine keep its defaulted move constructor and still know when it is an empty shell.
class Liveness {
 public:
  Liveness() = default;
  Liveness(const Liveness&) = delete;
  Liveness& operator=(const Liveness&) = delete;
  Liveness(Liveness&& other) noexcept : live_(std::exchange(other.live_, false)) {}
  Liveness& operator=(Liveness&& other) noexcept {
    if (this != &other) live_ = std::exchange(other.live_, false);
    return *this;
  }
  ~Liveness() = default;
  [[nodiscard]] bool live() const noexcept { return live_; }

 private:
  bool live_ = true;
};

}  // namespace detail

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
/// (seed, StreamKind::server, s); an objective's initial_model from (seed,
/// StreamKind::initial_model, 0); a SimulatedClock's speed factors from (seed, StreamKind::clock,
/// j). Nothing else is random, so equal seeds give equal bits.
///
/// Time: a SimulatedClock plug-in keeps a simulated clock per worker alongside the run (see
/// SimulatedClock); its deadlines can leave late workers out of a round's average.
///
/// Failure: an exception that leaves `step()` after the step has started changing models (a
/// NumericalError, an objective, sampler or update policy that throws, a grouping policy that
/// fails at a re-draw), or that an observer throws inside `run()`, leaves the engine *failed*: it
/// keeps the models and counters as they were when the exception was thrown, so they can be
/// inspected, and every later `step()` or `run()` throws InvalidState naming the step and the
/// original error. A learning rate refused by the schedule's check is found before anything
/// changes and leaves the engine exactly as before the step.
///
/// Processes: with the default backend, InProcess, every worker lives here. With a distributed
/// backend (hsgd::mpi::Cluster) each rank builds and steps only its own block of workers, and
/// units whose members live on several ranks average through messages, in the in-process
/// Server's order, so every model is the same bits as in process (see Backend). Under such a
/// backend construction and the members that read all workers (global_average, loss, gradient,
/// gather_models, any_process, run() and its Summary, the probes, checkpoints) are collective:
/// every rank calls them, in the same order. An error found by one rank alone (a NaN in its
/// workers, a file it cannot write) throws there only, so wrap each rank's work in
/// hsgd::mpi::run_or_abort, which ends the whole job instead of leaving the others waiting.
/// loss() and gradient() then write scratch space of the engine: do not call them from two
/// threads at once.
///
/// Moving: a moved-from Engine throws InvalidState from every member that needs its state.
template <class ObjectiveType, class SamplerType, class UpdateType = Sgd, class RateType = ConstantRate,
          class GroupingType = ContiguousGrouping, class BackendType = InProcess, class ClockType = NoClock>
class Engine {
  static_assert(check_objective<ObjectiveType>());
  static_assert(check_sampler<SamplerType>());
  static_assert(check_update_policy<UpdateType, typename ObjectiveType::Scalar>());
  static_assert(check_learning_rate_schedule<RateType>());
  static_assert(check_grouping_policy<GroupingType>());
  static_assert(Backend<BackendType>, "hsgd Engine: the backend must be hsgd::InProcess, hsgd::mpi::Cluster or a type "
                                      "with their interface (see hsgd::Backend)");
  static_assert(Clock<ClockType>, "hsgd Engine: the clock must be hsgd::SimulatedClock, hsgd::NoClock or a type with "
                                  "their interface (see hsgd::Clock)");

 public:
  using Objective = ObjectiveType;
  using Scalar = typename Objective::Scalar;
  using WorkerType = Worker<Objective, SamplerType>;
  using ServerType = Server<Scalar>;

  /// Sets up the run: one worker per shard (shard j belongs to worker j). Every model starts at
  /// zero, or at the objective's own `initial_model` when it has one (see Objective). Throws
  /// InvalidArgument when the options, a policy, or the shards do not fit the topology, and
  /// ResourceError when the system refuses a thread of the pool.
  ///
  /// `plugins` are the update policy, the learning-rate schedule, the grouping policy, the
  /// backend and the clock, each optional and in any order; the ones left out are Sgd, ConstantRate,
  /// ContiguousGrouping, InProcess and NoClock (with class template argument deduction, e.g. `Engine
  /// engine(topology, shards, sampler, options, RandomGrouping{})`). Under a distributed backend
  /// each rank keeps only the shards of the workers it hosts.
  template <class... Plugins>
  Engine(Topology topology, std::vector<Objective> shards, SamplerType sampler, Options options, Plugins&&... plugins)
      : Engine(Setup{}, std::move(topology), options, std::forward<Plugins>(plugins)...) {
    detail::require(static_cast<Index>(shards.size()) == topology_.workers(),
                    "'shards' holds {} objectives but the topology has {} workers: give one shard per worker",
                    shards.size(), topology_.workers());
    const auto first = shards.begin() + backend_.first_worker();
    shards_.assign(std::make_move_iterator(first), std::make_move_iterator(first + backend_.local_workers()));
    build(sampler);
  }

  /// The same, with the shards made by `make_shard(j)` for each worker j this process hosts (all
  /// of them in process; a rank's own block under a distributed backend, so that memory for the
  /// data scales as 1 / ranks).
  template <class ShardFactory, class... Plugins>
    requires std::is_invocable_r_v<ObjectiveType, ShardFactory&, Index>
  Engine(Topology topology, ShardFactory&& make_shard, SamplerType sampler, Options options, Plugins&&... plugins)
      : Engine(Setup{}, std::move(topology), options, std::forward<Plugins>(plugins)...) {
    shards_.reserve(static_cast<std::size_t>(backend_.local_workers()));
    for (Index j = backend_.first_worker(); j < backend_.first_worker() + backend_.local_workers(); ++j)
      shards_.push_back(make_shard(j));
    build(sampler);
  }

  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;
  /// Workers view heap buffers that a move leaves in place, so the member-wise move is right.
  Engine(Engine&&) noexcept = default;
  /// Safe for `a = std::move(a)`. Member-wise move assignment would not be: a std::vector moved
  /// onto itself may come out empty, and the workers' views of the models would dangle.
  Engine& operator=(Engine&& other) noexcept {
    if (this != &other) {
      std::destroy_at(this);
      std::construct_at(this, std::move(other));
    }
    return *this;
  }
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
    require_steppable();
    const auto start = std::chrono::steady_clock::now();
    bool stop = false;
    while (!stop && step_ < options_.steps) {
      const Index level = step();
      // Comma folds: observers are told in the order given, each exactly once, so a recorder
      // passed after a probe sees the probe's measurement of this step.
      failing_on_exception([&] {
        if (level > 0) ((stop = detail::notify_aggregation(observers, *this, level) || stop), ...);
        ((stop = detail::notify_step(observers, *this) || stop), ...);
      });
    }
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
    return summary(elapsed.count(), stop);
  }

  /// One step: every worker takes a local step, then the scheduled level (if any) aggregates.
  /// Returns that level, or 0. On an exception the engine is failed (see the class notes).
  Index step() {
    require_steppable();
    const Scalar learning_rate = learning_rate_for(step_ + 1);  // may throw: nothing changed yet
    Index level = 0;
    failing_on_exception([&] {
      ++step_;
      local_steps(learning_rate);
      clock_.after_local_steps(active_);
      level = schedule_.level_after(step_);
      if (level > 0) aggregate(level);
    });
    return level;
  }

  /// Empty while the engine can step; after a failed step, what failed and where.
  [[nodiscard]] const std::string& failure() const { return failure_; }

  // ---- models --------------------------------------------------------------------------------

  /// Sets every worker's model to x0, e.g. before the first step. x0 must be finite. Under a
  /// distributed backend, call it on every rank with the same x0.
  void set_model(ConstVectorRef<Scalar> x0) {
    check_model(x0, "x0");
    models_.colwise() = x0;
  }

  /// Sets worker j's model. x must be finite. Under a distributed backend it sets this rank's
  /// copy: call it on every rank (at least on the rank hosting j).
  void set_model(Index worker, ConstVectorRef<Scalar> x) {
    check_worker(worker);
    check_model(x, "x");
    models_.col(worker) = x;
  }

  /// x^j (under a distributed backend, current for a worker hosted elsewhere only after
  /// gather_models()).
  [[nodiscard]] auto model(Index worker) const {
    check_worker(worker);
    return models_.col(worker);
  }
  /// All models, worker j in column j. Under a distributed backend the columns of workers hosted
  /// on other ranks are current only after gather_models().
  [[nodiscard]] const Matrix<Scalar>& models() const { return models_; }
  /// Makes every column of models() current on every rank: collective under a distributed
  /// backend (an all-gather of d x n scalars), nothing in process.
  void gather_models() const {
    require_live();
    backend_.gather_columns(models_.data(), dimension_);
  }
  /// The last minibatch gradient of every worker, worker j in column j (under a distributed
  /// backend: of the workers hosted here).
  [[nodiscard]] const Matrix<Scalar>& gradients() const { return gradients_; }
  /// The update policy's state, worker j in column j (empty for stateless policies). Under a
  /// distributed backend only the columns of the workers hosted here are current.
  [[nodiscard]] const Matrix<Scalar>& states() const { return states_; }

  /// xbar = sum_j w_j x^j / sum_j w_j, the (virtual) global average. Collective under a
  /// distributed backend (it gathers the models first).
  [[nodiscard]] Vector<Scalar> global_average() const {
    Vector<Scalar> average(dimension());
    global_average(average);
    return average;
  }
  void global_average(VectorRef<Scalar> out) const {
    check_dimension(out.size(), "out");
    gather_models();
    out.noalias() = models_ * normalised_weights_;
  }

  /// f(x) = sum_j (w_j / sum w) F_j(x), summed in worker order. Collective under a distributed
  /// backend: each rank evaluates its shards, and every rank sums all values in the same order.
  [[nodiscard]] Scalar loss(ConstVectorRef<Scalar> x) const {
    check_dimension(x.size(), "x");
    Scalar total = 0;
    if constexpr (BackendType::distributed) {
      for (std::size_t k = 0; k < shards_.size(); ++k)
        value_scratch_[static_cast<std::size_t>(backend_.first_worker()) + k] = shards_[k].value(x);
      backend_.gather_values(value_scratch_.data());
      for (std::size_t j = 0; j < value_scratch_.size(); ++j)
        total += normalised_weights_(static_cast<Index>(j)) * value_scratch_[j];
    } else {
      for (std::size_t j = 0; j < shards_.size(); ++j)
        total += normalised_weights_(static_cast<Index>(j)) * shards_[j].value(x);
    }
    return total;
  }
  /// grad f(x), through `scratch` (size d) so repeated calls allocate nothing. Collective under
  /// a distributed backend, like loss().
  void gradient(ConstVectorRef<Scalar> x, VectorRef<Scalar> out, VectorRef<Scalar> scratch) const {
    check_dimension(x.size(), "x");
    check_dimension(out.size(), "out");
    check_dimension(scratch.size(), "scratch");
    out.setZero();
    if constexpr (BackendType::distributed) {
      for (std::size_t k = 0; k < shards_.size(); ++k)
        shards_[k].gradient(x, column_scratch_.col(backend_.first_worker() + static_cast<Index>(k)));
      backend_.gather_columns(column_scratch_.data(), dimension_);
      for (Index j = 0; j < workers(); ++j) out.noalias() += normalised_weights_(j) * column_scratch_.col(j);
    } else {
      for (std::size_t j = 0; j < shards_.size(); ++j) {
        shards_[j].gradient(x, scratch);
        out.noalias() += normalised_weights_(static_cast<Index>(j)) * scratch;
      }
    }
  }
  [[nodiscard]] Vector<Scalar> gradient(ConstVectorRef<Scalar> x) const {
    check_dimension(x.size(), "x");
    Vector<Scalar> out(dimension());
    Vector<Scalar> scratch(dimension());
    gradient(x, out, scratch);
    return out;
  }

  // ---- structure -----------------------------------------------------------------------------

  [[nodiscard]] Index dimension() const {
    require_live();
    return dimension_;
  }
  [[nodiscard]] Index workers() const {
    require_live();
    return topology_.workers();
  }
  /// The threads that run a step: Options::threads resolved and clamped to the workers.
  [[nodiscard]] Index threads() const {
    require_live();
    return pool_->threads();
  }
  /// Local steps taken so far (t of the last completed step).
  [[nodiscard]] Index step_count() const { return step_; }
  [[nodiscard]] const Options& options() const { return options_; }
  [[nodiscard]] const Topology& topology() const { return topology_; }
  [[nodiscard]] const Schedule& schedule() const { return schedule_; }
  /// The shards of the workers this process hosts (all of them in process), in worker order.
  [[nodiscard]] const std::vector<Objective>& shards() const { return shards_; }
  /// Worker j's shard; j must be hosted here.
  [[nodiscard]] const Objective& shard(Index j) const {
    check_hosted(j);
    return shards_[static_cast<std::size_t>(j - backend_.first_worker())];
  }
  /// m_j, the samples of worker j's shard (known on every rank).
  [[nodiscard]] Index sample_count(Index j) const {
    check_worker(j);
    return sample_counts_[static_cast<std::size_t>(j)];
  }
  /// Worker j; j must be hosted here.
  [[nodiscard]] const WorkerType& worker(Index j) const {
    check_hosted(j);
    return workers_[static_cast<std::size_t>(j - backend_.first_worker())];
  }
  /// Whether this process hosts worker j (always, in process).
  [[nodiscard]] bool hosts(Index j) const {
    check_worker(j);
    return backend_.hosts(j);
  }
  /// The backend (for a distributed one: its rank, layout and communication counters).
  [[nodiscard]] const BackendType& backend() const { return backend_; }
  /// Whether `flag` is true in any process of the run: collective under a distributed backend
  /// (how the ranks agree to stop at the same step), `flag` itself in process.
  [[nodiscard]] bool any_process(bool flag) const {
    require_live();
    return backend_.any(flag);
  }
  /// For a measurement over all workers (see DivergenceProbe): every rank fills the columns of
  /// the workers it hosts, and afterwards every rank has all n columns (d rows). Collective under
  /// a distributed backend, nothing in process.
  void gather_worker_columns(Matrix<Scalar>& columns) const {
    detail::require(columns.rows() == dimension_ && columns.cols() == workers(),
                    "'columns' is {} x {} but must be {} x {} (dimension x workers)", columns.rows(), columns.cols(),
                    dimension_, workers());
    backend_.gather_columns(columns.data(), dimension_);
  }
  /// The same for one value per worker.
  void gather_worker_values(std::span<double> values) const {
    detail::require(static_cast<Index>(values.size()) == workers(), "'values' holds {} values for {} workers",
                    values.size(), workers());
    backend_.gather_values(values.data());
  }
  [[nodiscard]] const ServerType& server(Index level, Index unit) const {
    check_level(level);
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
    check_level(level);
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

  /// The simulated clock (NoClock unless one was given): `engine.clock().seconds()`.
  [[nodiscard]] const ClockType& clock() const { return clock_; }

  // ---- checkpoints ---------------------------------------------------------------------------

  /// The name of the engine's section in a checkpoint (see save_checkpoint).
  [[nodiscard]] std::string_view checkpoint_name() const { return "engine"; }

  /// Writes everything that decides the rest of the run: the step, every model and optimizer
  /// state, every worker's stream and sampler, each server's stream, round participants and last
  /// average, the grouping in force and the grouping stream, the counters, and the plug-ins'
  /// hooks (see CheckpointablePlugin); first, the configuration a resume must match
  /// (`checkpoint_settings()`). The last minibatch gradients are not saved: a step overwrites a
  /// worker's column before using it, so they never change the run; `gradients()` keeps what it
  /// held before a load. A failed engine is not saved (InvalidState). The models are written
  /// from where they are: the engine must not step until the writer has written the file.
  ///
  /// Under a distributed backend this is collective: every rank calls it (through
  /// save_checkpoint), the models, states and server averages are gathered, and rank 0 writes a
  /// file that is the same bits as the in-process engine's at that step.
  void save_state(CheckpointWriter& out) const {
    require_steppable();
    if constexpr (BackendType::distributed) {
      gather_models();
      if constexpr (UpdateType::has_state) backend_.gather_columns(states_.data(), dimension_);
    }
    out.set_scalar_code(CheckpointFormat::scalar_code<Scalar>());
    for (const auto& [name, value] : checkpoint_settings()) out.put_setting(name, value);
    out.put_index(step_);
    out.put_indices(aggregations_);
    out.put_index(regroupings_);
    out.put_index(last_round_participants_);
    out.put_rng(grouping_rng_);
    out.put_indices(slot_to_worker_);
    out.put_scalars(models_.data(), static_cast<std::size_t>(models_.size()));
    out.put_scalars(states_.data(), static_cast<std::size_t>(states_.size()));
    save_workers(out);
    save_servers(out);
    detail::save_plugin(out, update_);
    detail::save_plugin(out, rate_);
    detail::save_plugin(out, grouping_);
    clock_.save_state(out);
  }

  /// Whether this process writes the checkpoint file (see save_checkpoint): rank 0 under a
  /// distributed backend, always in process.
  [[nodiscard]] bool checkpoint_writes_file() const { return backend_.is_root(); }

  /// Reads a section written by save_state and checks it against this engine, changing nothing.
  /// Throws CheckpointError naming the first setting that differs (topology, seed, dimension,
  /// scalar type, a plug-in's type or parameters, ...) or the value that is impossible.
  void check_state(CheckpointReader& in) const { (void)staged_from(in); }

  /// Continues the run saved in the section: afterwards the engine steps exactly as the saved
  /// one would have. The whole section is read and checked first, so on any error the engine is
  /// left exactly as it was. `options().steps` and `threads` may differ from the saved run's
  /// (to extend a run, or resume on another machine); results do not depend on either. Loading
  /// into a failed engine replaces its state, failure included.
  void load_state(CheckpointReader& in) {
    Staged staged = staged_from(in);
    commit(std::move(staged));
  }

  /// The configuration a checkpoint records and a resume must match, as (name, value) pairs:
  /// scalar type, dimension, workers, topology, the options that change results, the plug-in
  /// types, and every shard's sample count.
  [[nodiscard]] std::vector<std::pair<std::string, std::string>> checkpoint_settings() const {
    require_live();
    std::string topology;
    for (Index level = 1; level <= topology_.levels(); ++level) {
      topology += fmt::format("{}level {}: period {}, units {}", level > 1 ? "; " : "", level, topology_.period(level),
                              topology_.units(level));
      const auto offsets = topology_.unit_offsets(level);
      std::vector<Index> sizes;
      for (std::size_t unit = 0; unit + 1 < offsets.size(); ++unit) sizes.push_back(offsets[unit + 1] - offsets[unit]);
      topology += fmt::format(" of sizes {}", sizes);
    }
    return {{"scalar type", std::string(CheckpointFormat::scalar_name(CheckpointFormat::scalar_code<Scalar>()))},
            {"dimension", fmt::format("{}", dimension())},
            {"workers", fmt::format("{}", workers())},
            {"topology", topology},
            {"seed", fmt::format("{}", options_.seed)},
            {"learning rate", fmt::format("{}", options_.learning_rate)},
            {"weighting", fmt::format("{}", static_cast<int>(options_.weighting))},
            {"warm-up steps", fmt::format("{}", options_.warmup_steps)},
            {"warm-up mode", fmt::format("{}", static_cast<int>(options_.warmup_mode))},
            {"participation", fmt::format("{}", options_.participation)},
            {"objective", type_name<Objective>()},
            {"sampler", type_name<SamplerType>()},
            {"update policy", type_name<UpdateType>()},
            {"rate schedule", type_name<RateType>()},
            {"grouping policy", type_name<GroupingType>()},
            {"shard sample counts", fmt::format("{}", sample_counts_)},
            {"clock", clock_.describe()}};
  }

 private:
  struct Setup {};

  /// Everything that does not depend on the shards: options, topology, plug-ins, backend.
  template <class... Plugins>
  Engine(Setup, Topology topology, const Options& options, Plugins&&... plugins)
      : options_(validated(options)),
        topology_(validated(std::move(topology))),
        schedule_(topology_, options_.warmup_steps, options_.warmup_mode),
        update_(detail::take_plugin<UpdateType>(std::forward<Plugins>(plugins)...)),
        rate_(detail::take_plugin<RateType>(std::forward<Plugins>(plugins)...)),
        grouping_(detail::take_plugin<GroupingType>(std::forward<Plugins>(plugins)...)),
        backend_(detail::take_plugin<BackendType>(std::forward<Plugins>(plugins)...)),
        clock_(detail::take_plugin<ClockType>(std::forward<Plugins>(plugins)...)),
        grouping_rng_(make_stream(options_.seed, StreamKind::grouping, 0)),
        aggregations_(static_cast<std::size_t>(topology_.levels()), 0) {
    static_assert(((std::is_same_v<std::remove_cvref_t<Plugins>, UpdateType> ||
                    std::is_same_v<std::remove_cvref_t<Plugins>, RateType> ||
                    std::is_same_v<std::remove_cvref_t<Plugins>, GroupingType> ||
                    std::is_same_v<std::remove_cvref_t<Plugins>, BackendType> ||
                    std::is_same_v<std::remove_cvref_t<Plugins>, ClockType>) && ...),
                  "hsgd Engine: every argument after the options must be this Engine's update policy, "
                  "learning-rate schedule, grouping policy, backend or clock");
    static_assert((std::is_same_v<std::remove_cvref_t<Plugins>, UpdateType> + ... + 0) <= 1 &&
                      (std::is_same_v<std::remove_cvref_t<Plugins>, RateType> + ... + 0) <= 1 &&
                      (std::is_same_v<std::remove_cvref_t<Plugins>, GroupingType> + ... + 0) <= 1 &&
                      (std::is_same_v<std::remove_cvref_t<Plugins>, BackendType> + ... + 0) <= 1 &&
                      (std::is_same_v<std::remove_cvref_t<Plugins>, ClockType> + ... + 0) <= 1,
                  "hsgd Engine: give the update policy, the learning-rate schedule, the grouping policy, the "
                  "backend and the clock at most once each");
    update_.validate();
    rate_.validate();
    check_learning_rate_type();
    backend_.attach(topology_.workers(), topology_.levels());
  }

  /// The rest of construction, once this process's shards are in shards_.
  void build(const SamplerType& sampler) {
    sampler_prototype_.emplace(sampler);
    check_shards();
    const Index d = dimension_;
    const Index n = topology_.workers();
    detail::require(d <= std::numeric_limits<Index>::max() / static_cast<Index>(sizeof(Scalar)) / n,
                    "the models need {} x {} scalars, more than memory can address: lower the dimension or the "
                    "number of workers", d, n);
    models_.setZero(d, n);
    gradients_.setZero(d, n);
    states_.setZero(UpdateType::has_state ? d : 0, UpdateType::has_state ? n : 0);
    state_scratch_.setZero(UpdateType::has_state ? d : 0);
    if constexpr (BackendType::distributed) {
      unit_buffer_.setZero(d);
      column_scratch_.setZero(d, n);
      value_scratch_.assign(static_cast<std::size_t>(n), Scalar(0));
    }
    make_workers(sampler);
    make_servers();
    clock_.attach(topology_, static_cast<double>(d) * static_cast<double>(sizeof(Scalar)), batch_size_of(sampler),
                  options_.seed);
    detail::require(!(clock_.has_deadlines() && partial_participation()),
                    "the clock's deadlines cannot be combined with 'participation' ({}) < 1: a round has either drawn "
                    "participants or the ready ones",
                    options_.participation);
    slot_scratch_.resize(static_cast<std::size_t>(n));
    assign_groups();
    draw_participants();
    set_initial_models();
    pool_ = std::make_unique<detail::ThreadPool>(options_.resolved_threads(backend_.local_workers()));  // last: the costliest to undo
  }

  /// A checkpoint's state, read and checked, not yet in force. The large arrays stay in the
  /// checkpoint's bytes until commit copies them into place.
  struct Staged {
    Staged(UpdateType update_policy, RateType rate_schedule, GroupingType grouping_policy, ClockType simulated_clock)
        : update(std::move(update_policy)),
          rate(std::move(rate_schedule)),
          grouping(std::move(grouping_policy)),
          clock(std::move(simulated_clock)) {}
    Index step = 0;
    std::vector<Index> aggregations;
    Index regroupings = 0;
    Index last_round_participants = 0;
    Rng grouping_rng;
    std::vector<Index> slot_to_worker;
    std::span<const char> models, states;
    std::vector<Rng> worker_rngs;
    std::vector<SamplerType> samplers;
    std::vector<std::vector<typename ServerType::SavedState>> servers;
    UpdateType update;
    RateType rate;
    GroupingType grouping;
    ClockType clock;
  };

  Staged staged_from(CheckpointReader& in) const {
    require_live();
    for (const auto& [name, value] : checkpoint_settings()) in.expect(name, value);
    const Index n = workers();
    const auto levels = static_cast<std::size_t>(topology_.levels());
    Staged staged(update_, rate_, grouping_, clock_);
    staged.step = in.get_index("the step", 0, Index{1} << 62);  // room to keep stepping without overflow
    staged.aggregations = in.get_indices("the aggregation counts", topology_.levels(), 0, staged.step);
    if (staged.aggregations.size() != levels) in.fail("has {} aggregation counts for {} levels", staged.aggregations.size(), levels);
    staged.regroupings = in.get_index("the regrouping count", 0, staged.step);
    staged.last_round_participants = in.get_index("the last round's participants", 0, n);
    staged.grouping_rng = in.get_rng("the grouping stream");
    staged.slot_to_worker = in.get_indices("the grouping", n, 0, n - 1);
    if (static_cast<Index>(staged.slot_to_worker.size()) != n) in.fail("its grouping has {} slots for {} workers", staged.slot_to_worker.size(), n);
    std::vector<char> seen(static_cast<std::size_t>(n), 0);
    for (const Index worker : staged.slot_to_worker) {
      if (seen[static_cast<std::size_t>(worker)] != 0) in.fail("its grouping puts worker {} in two slots", worker);
      seen[static_cast<std::size_t>(worker)] = 1;
    }
    staged.models = in.view_scalars<Scalar>(static_cast<std::size_t>(models_.size()), "the models");
    staged.states = in.view_scalars<Scalar>(static_cast<std::size_t>(states_.size()), "the optimizer states");
    staged.worker_rngs.reserve(workers_.size());
    staged.samplers.reserve(workers_.size());
    for (Index j = 0; j < n; ++j) {  // every worker's; a process keeps those it hosts
      const Rng rng = in.get_rng("a worker's stream");
      if (backend_.hosts(j)) {
        staged.worker_rngs.push_back(rng);
        detail::load_plugin(in, staged.samplers.emplace_back(workers_[static_cast<std::size_t>(j - backend_.first_worker())].sampler()));
      } else {
        SamplerType elsewhere = *sampler_prototype_;
        elsewhere.bind(sample_counts_[static_cast<std::size_t>(j)]);
        detail::load_plugin(in, elsewhere);
      }
    }
    for (Index level = 1; level <= topology_.levels(); ++level) {
      const auto offsets = topology_.unit_offsets(level);
      auto& row = staged.servers.emplace_back();
      for (std::size_t unit = 0; unit + 1 < offsets.size(); ++unit) {
        const std::span<const Index> members(staged.slot_to_worker.data() + offsets[unit],
                                             static_cast<std::size_t>(offsets[unit + 1] - offsets[unit]));
        const auto& saved = row.emplace_back(servers_[static_cast<std::size_t>(level - 1)][unit].read_state(in, members));
        const auto expected = level == 1 && partial_participation()
                                  ? std::max<std::size_t>(1, static_cast<std::size_t>(options_.participation *
                                                                                      static_cast<double>(members.size())))
                                  : members.size();
        if (saved.participants.size() != expected)
          in.fail("unit {} of level {} has {} participants where this run draws {}", unit, level,
                  saved.participants.size(), expected);
      }
    }
    detail::load_plugin(in, staged.update);
    detail::load_plugin(in, staged.rate);
    detail::load_plugin(in, staged.grouping);
    staged.clock.load_state(in);
    return staged;
  }

  /// Puts a checked checkpoint in force. The model and state matrices are copied into their
  /// storage (the workers view it).
  void commit(Staged&& staged) {
    step_ = staged.step;
    aggregations_ = std::move(staged.aggregations);
    regroupings_ = staged.regroupings;
    last_round_participants_ = staged.last_round_participants;
    grouping_rng_ = staged.grouping_rng;
    slot_to_worker_ = std::move(staged.slot_to_worker);
    index_slots(slot_to_worker_);
    apply_grouping(servers_, slot_to_worker_);
    std::memcpy(models_.data(), staged.models.data(), staged.models.size());  // never empty: d, n >= 1
    if (!staged.states.empty()) std::memcpy(states_.data(), staged.states.data(), staged.states.size());
    for (std::size_t j = 0; j < workers_.size(); ++j)
      workers_[j].restore(staged.worker_rngs[j], std::move(staged.samplers[j]));
    for (std::size_t level = 0; level < servers_.size(); ++level)
      for (std::size_t unit = 0; unit < servers_[level].size(); ++unit) servers_[level][unit].restore(staged.servers[level][unit]);
    std::fill(server_current_.begin(), server_current_.end(), char{1});
    std::fill(active_.begin(), active_.end(), static_cast<char>(partial_participation() ? 0 : 1));
    if (partial_participation())
      for (const auto& server : servers_.front())
        for (const Index j : server.participants()) active_[static_cast<std::size_t>(j)] = 1;
    update_ = std::move(staged.update);
    rate_ = std::move(staged.rate);
    grouping_ = std::move(staged.grouping);
    clock_ = std::move(staged.clock);
    failure_.clear();
  }

  /// Every worker's stream and sampler, in worker order; under a distributed backend each rank
  /// writes its own and rank 0 receives the others'.
  void save_workers(CheckpointWriter& out) const {
    if constexpr (BackendType::distributed) {
      CheckpointWriter local;
      for (const auto& worker : workers_) {
        local.put_rng(worker.rng());
        detail::save_plugin(local, worker.sampler());
      }
      std::vector<char> bytes = local.payload();
      backend_.gather_bytes(bytes);
      out.put_bytes(bytes);
    } else {
      for (const auto& worker : workers_) {
        out.put_rng(worker.rng());
        detail::save_plugin(out, worker.sampler());
      }
    }
  }

  /// Every server's state; under a distributed backend the last averages come from ranks that
  /// took part in each server's last round (the others' copies are out of date).
  void save_servers(CheckpointWriter& out) const {
    if constexpr (BackendType::distributed) {
      saved_averages_.resize(dimension_, static_cast<Index>(server_current_.size()));
      Index k = 0;
      for (const auto& row : servers_)
        for (const auto& server : row) saved_averages_.col(k++) = server.model();
      backend_.collect_at_root(saved_averages_.data(), dimension_, server_current_);
      k = 0;
      for (const auto& row : servers_)
        for (const auto& server : row) server.save_state(out, saved_averages_.col(k++).data());
    } else {
      for (const auto& row : servers_)
        for (const auto& server : row) server.save_state(out);
    }
  }

  static const Options& validated(const Options& options) {
    options.validate();
    return options;
  }

  static Topology validated(Topology topology) {
    detail::require(topology.levels() >= 1 && topology.workers() >= 1,
                    "'topology' has {} workers and {} levels: it is empty (was it moved from?)", topology.workers(),
                    topology.levels());
    return topology;
  }

  /// A rate that is fine as a double can underflow to 0 or overflow to inf as a float.
  void check_learning_rate_type() const {
    const auto rate = static_cast<Scalar>(options_.learning_rate);
    detail::require(std::isfinite(rate) && rate > 0,
                    "'learning_rate' ({}) must be finite and positive in the model's scalar type, where it is {}",
                    options_.learning_rate, rate);
  }

  void require_live() const {
    if (!live_.live()) [[unlikely]]
      throw InvalidState("hsgd::Engine: this engine was moved from; use the engine it was moved to");
  }

  void require_steppable() const {
    require_live();
    if (!failure_.empty()) [[unlikely]]
      throw InvalidState(fmt::format("hsgd::Engine: {}; it cannot step again (make a new Engine)", failure_));
  }

  /// Runs `body`; if it throws, records the failure (the engine then refuses to step) and rethrows.
  template <class Body>
  void failing_on_exception(Body&& body) {
    try {
      body();
    } catch (const std::exception& error) {
      record_failure(error.what());
      throw;
    } catch (...) {
      record_failure("an exception of unknown type");
      throw;
    }
  }

  void record_failure(const char* what) noexcept {
    try {
      failure_ = fmt::format("failed at step {}: {}", step_, what);
    } catch (...) {
      failure_ = "failed";  // short enough for the small-string buffer: cannot throw
    }
  }

  /// Shard 0 draws the initial model (under a distributed backend, on its rank, which sends it).
  void set_initial_models() {
    if constexpr (objective_requirements::has_initial_model<Objective>) {
      Vector<Scalar> x0(dimension_);
      if (backend_.hosts(0)) {
        Rng rng = make_stream(options_.seed, StreamKind::initial_model, 0);
        x0 = shards_.front().initial_model(rng);
        detail::require(x0.size() == dimension_, "shard 0's initial_model has {} coordinates but the model has {}",
                        x0.size(), dimension_);
        detail::require(x0.allFinite(), "shard 0's initial_model is not finite");
      }
      backend_.broadcast(x0.data(), dimension_, 0);
      models_.colwise() = x0;
    }
  }

  /// Every shard's dimension and sample count, gathered from the ranks that hold them, checked the
  /// same way on every rank.
  void check_shards() {
    const auto n = static_cast<std::size_t>(topology_.workers());
    std::vector<Index> dimensions(n, 0);
    sample_counts_.assign(n, 0);
    for (std::size_t k = 0; k < shards_.size(); ++k) {
      const auto j = static_cast<std::size_t>(backend_.first_worker()) + k;
      dimensions[j] = shards_[k].dimension();
      sample_counts_[j] = shards_[k].sample_count();
    }
    backend_.gather_values(dimensions.data());
    backend_.gather_values(sample_counts_.data());
    dimension_ = dimensions.front();
    detail::require(dimension_ > 0, "shard 0 has dimension {}: the model needs at least one coordinate", dimension_);
    for (std::size_t j = 0; j < n; ++j) {
      detail::require(dimensions[j] == dimension_, "shard {} has dimension {} but shard 0 has dimension {}", j,
                      dimensions[j], dimension_);
      detail::require(sample_counts_[j] > 0, "shard {} has no samples", j);
    }
  }

  void check_worker(Index worker) const {
    detail::require(worker >= 0 && worker < workers(), "'worker' ({}) must be in [0, {})", worker, workers());
  }

  void check_hosted(Index worker) const {
    check_worker(worker);
    detail::require(backend_.hosts(worker), "worker {} is hosted by another rank; this one hosts workers [{}, {})",
                    worker, backend_.first_worker(), backend_.first_worker() + backend_.local_workers());
  }

  void check_level(Index level) const {
    detail::require(level >= 1 && level <= topology_.levels(), "'level' ({}) must be in [1, {}]", level,
                    topology_.levels());
  }

  void check_dimension(Index size, const char* name) const {
    detail::require(size == dimension(), "'{}' has {} coordinates but the model has {}", name, size, dimension());
  }

  void check_model(ConstVectorRef<Scalar> x, const char* name) const {
    check_dimension(x.size(), name);
    for (Index i = 0; i < x.size(); ++i)
      detail::require(std::isfinite(x(i)), "'{}' must be finite, but coordinate {} is {}", name, i, x(i));
  }

  /// gamma_t in the model's scalar type, checked there: a double rate can round to 0 or inf.
  Scalar learning_rate_for(Index step) const {
    const double rate = rate_.rate(options_.learning_rate, step);
    const auto converted = static_cast<Scalar>(rate);
    if (std::isfinite(converted) && converted > 0) [[likely]]
      return converted;
    if (!(std::isfinite(rate) && rate > 0) || std::is_same_v<Scalar, double>)
      detail::fail("the learning rate at step {} ({}) must be finite and positive", step, rate);
    detail::fail("the learning rate at step {} ({}) must be finite and positive in the model's scalar type, where it is {}",
                 step, rate, converted);
  }

  /// x.allFinite() with a fast path: a sum is finite only if every term is (NaN and Inf
  /// propagate), and a sum vectorises, so checking every model on every step costs next to nothing.
  static bool all_finite(const auto& x) { return std::isfinite(x.sum()) || x.allFinite(); }

  /// Every worker's local step, in parallel. A non-finite model is reported for the lowest
  /// worker index, so the error names the same worker whatever the thread count.
  void local_steps(Scalar learning_rate) {
    std::atomic<Index> first_non_finite{workers()};
    const Index first = backend_.first_worker();
    auto chunk = [&](Index begin, Index end) {
      for (Index j = first + begin; j < first + end; ++j) {
        if (active_[static_cast<std::size_t>(j)] == 0) continue;
        auto& worker = workers_[static_cast<std::size_t>(j - first)];
        worker.step(update_, learning_rate);
        if (options_.check_finite && !all_finite(worker.model())) {
          Index seen = first_non_finite.load(std::memory_order_relaxed);
          while (j < seen && !first_non_finite.compare_exchange_weak(seen, j, std::memory_order_relaxed)) {
          }
          return;
        }
      }
    };
    pool_->for_each_chunk(backend_.local_workers(), chunk);
    if (first_non_finite.load(std::memory_order_relaxed) < workers())
      throw NumericalError(step_, first_non_finite.load(std::memory_order_relaxed), 0);
  }

  /// The workers this process hosts, each viewing its columns; the weights of all workers.
  void make_workers(const SamplerType& sampler) {
    const Index d = dimension_;
    const Index state_size = UpdateType::has_state ? d : 0;
    workers_.reserve(shards_.size());
    for (std::size_t k = 0; k < shards_.size(); ++k) {
      const Index j = backend_.first_worker() + static_cast<Index>(k);
      workers_.emplace_back(j, shards_[k], sampler, make_stream(options_.seed, StreamKind::worker, static_cast<std::uint64_t>(j)),
                            Eigen::Map<Vector<Scalar>>(models_.col(j).data(), d),
                            Eigen::Map<Vector<Scalar>>(gradients_.col(j).data(), d),
                            Eigen::Map<Vector<Scalar>>(state_size > 0 ? states_.col(j).data() : nullptr, state_size));
    }
    raw_weights_.resize(sample_counts_.size());
    for (std::size_t j = 0; j < sample_counts_.size(); ++j)
      raw_weights_[j] = options_.weighting == Weighting::uniform ? Scalar(1) : static_cast<Scalar>(sample_counts_[j]);
    const Eigen::Map<const Vector<Scalar>> raw(raw_weights_.data(), topology_.workers());
    normalised_weights_ = raw / raw.sum();
  }

  void make_servers() {
    std::uint64_t id = 0;
    for (Index level = 1; level <= topology_.levels(); ++level) {
      server_offsets_.push_back(static_cast<std::size_t>(id));
      auto& row = servers_.emplace_back();
      for (Index unit = 0; unit < topology_.units(level); ++unit)
        row.emplace_back(level, unit, dimension(), make_stream(options_.seed, StreamKind::server, id++));
    }
    server_current_.assign(static_cast<std::size_t>(id), char{1});
    const auto n = static_cast<std::size_t>(topology_.workers());
    slot_to_worker_.resize(n);
    std::iota(slot_to_worker_.begin(), slot_to_worker_.end(), Index{0});  // a valid grouping until the first
    worker_to_slot_.resize(n);
    active_.assign(n, char{1});
    ready_.assign(n, char{1});
    last_round_participants_ = workers();
  }

  bool partial_participation() const { return options_.participation < 1.0; }

  /// The sampler's minibatch size, for a clock's per-sample cost; 0 when the sampler has none.
  static Index batch_size_of(const SamplerType& sampler) {
    if constexpr (requires { { sampler.batch_size() } -> std::convertible_to<Index>; }) return sampler.batch_size();
    else return 0;
  }

  /// Each level-1 server draws who takes part in the next round.
  void draw_participants() {
    if (!partial_participation()) return;
    std::fill(active_.begin(), active_.end(), char{0});
    for (auto& server : servers_.front()) {
      server.draw_participants(options_.participation);
      for (const Index j : server.participants()) active_[static_cast<std::size_t>(j)] = 1;
    }
  }

  Index participant_count(Index level) const {
    Index count = 0;
    for (const auto& server : servers_[static_cast<std::size_t>(level - 1)])
      count += static_cast<Index>(server.participants().size());
    return count;
  }

  /// A round with a deadline: the clock says who is ready; the others are left out of the average.
  void leave_out_late_workers(Index level) {
    for (auto& server : servers_[static_cast<std::size_t>(level - 1)]) {
      clock_.mark_ready(level, server.members(), ready_);
      server.participate_only(ready_);
    }
  }

  /// Asks the grouping policy who sits where, checks the answer and tells the servers. The
  /// answer goes to a scratch array first, so a policy that throws or answers wrong leaves the
  /// grouping in force untouched.
  void assign_groups() {
    std::fill(slot_scratch_.begin(), slot_scratch_.end(), Index{-1});
    grouping_.assign(topology_, std::span<Index>(slot_scratch_), grouping_rng_);
    try {
      index_slots(slot_scratch_);
    } catch (...) {
      index_slots(slot_to_worker_);  // the grouping in force, already checked
      throw;
    }
    slot_to_worker_.swap(slot_scratch_);
    apply_grouping(servers_, slot_to_worker_);
  }

  /// Tells every server who its members are under the grouping `slot_to_worker`.
  void apply_grouping(std::vector<std::vector<ServerType>>& servers, std::span<const Index> slot_to_worker) const {
    for (Index level = 1; level <= topology_.levels(); ++level) {
      const auto offsets = topology_.unit_offsets(level);
      auto& row = servers[static_cast<std::size_t>(level - 1)];
      for (std::size_t unit = 0; unit < row.size(); ++unit) {
        const std::span<const Index> members(slot_to_worker.data() + offsets[unit],
                                             static_cast<std::size_t>(offsets[unit + 1] - offsets[unit]));
        row[unit].set_members(members, raw_weights_);
      }
    }
  }

  /// worker_to_slot_ from a slot -> worker table, checking that it is a permutation of the workers.
  void index_slots(std::span<const Index> slot_to_worker) {
    std::fill(worker_to_slot_.begin(), worker_to_slot_.end(), Index{-1});
    for (std::size_t slot = 0; slot < slot_to_worker.size(); ++slot) {
      const Index worker = slot_to_worker[slot];
      detail::require(worker >= 0 && worker < workers(), "the grouping put worker {} in slot {}: no such worker",
                      worker, slot);
      detail::require(worker_to_slot_[static_cast<std::size_t>(worker)] < 0,
                      "the grouping put worker {} in two slots ({} and {})", worker,
                      worker_to_slot_[static_cast<std::size_t>(worker)], slot);
      worker_to_slot_[static_cast<std::size_t>(worker)] = static_cast<Index>(slot);
    }
  }

  /// Level `level` averages. With partial participation every round closes at level 1 first
  /// (the level-1 servers average their participants and send that to all their workers), so a
  /// higher level then averages the groups' models.
  void aggregate(Index level) {
    auto& servers = servers_[static_cast<std::size_t>(level - 1)];
    const bool deadline = clock_.has_deadline(level);
    if (deadline) leave_out_late_workers(level);
    last_round_participants_ = partial_participation() ? participant_count(1) : deadline ? participant_count(level) : workers();
    if (partial_participation() && level > 1) aggregate_servers(1);
    aggregate_servers(level);
    clock_.after_round(level, servers);  // before a regrouping changes the units
    if (deadline)
      for (auto& server : servers) server.everyone_participates();
    ++aggregations_[static_cast<std::size_t>(level - 1)];
    if (level == topology_.levels() && grouping_.regroups_at_global_aggregation()) {
      assign_groups();
      ++regroupings_;
    }
    draw_participants();
  }

  /// Every unit of the level averages (through the backend: in process, the Server alone). A rank
  /// that takes no part in a unit's round leaves its cached columns of the unit as they were.
  void aggregate_servers(Index level) {
    std::size_t index = server_offsets_[static_cast<std::size_t>(level - 1)];
    for (auto& server : servers_[static_cast<std::size_t>(level - 1)]) {
      const bool here = backend_.average_unit(
          level, server.participants(), server.members(), models_, unit_buffer_,
          [&]() -> const Vector<Scalar>& {
            server.aggregate(models_);
            return server.model();
          },
          [&] { server.adopt(unit_buffer_, models_); });
      server_current_[index++] = here ? 1 : 0;
      if (!here) continue;
      if (options_.check_finite && !all_finite(server.model())) throw NumericalError(step_, server.members()[0], level);
      if constexpr (UpdateType::has_state) {
        switch (update_.state_at_aggregation()) {
          case StateAtAggregation::keep: break;
          case StateAtAggregation::average:
            backend_.average_unit(
                level, server.participants(), server.members(), states_, state_scratch_,
                [&]() -> const Vector<Scalar>& {
                  server.aggregate_state(states_, state_scratch_);
                  return state_scratch_;
                },
                [&] { server.write_to_members(state_scratch_, states_); });
            break;
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
    if constexpr (ClockType::simulates) {
      result.simulated_seconds = clock_.seconds();
      result.dropped_by_deadlines = clock_.dropped();
    }
    result.stopped_by_observer = stopped;
    return result;
  }

  Options options_;
  Topology topology_;
  Schedule schedule_;
  std::vector<Objective> shards_;  // the shards of the workers hosted here, in worker order
  UpdateType update_;
  RateType rate_;
  GroupingType grouping_;
  BackendType backend_;
  ClockType clock_;
  Rng grouping_rng_;  // the grouping policy's stream
  Index dimension_ = 0;
  std::vector<Index> sample_counts_;  // m_j of every worker, hosted here or not

  // x^j in column j. Under a distributed backend the columns of workers hosted elsewhere are a
  // cache that gather_models() refreshes, hence mutable.
  mutable Matrix<Scalar> models_;
  Matrix<Scalar> gradients_;  // last minibatch gradient of worker j in column j
  mutable Matrix<Scalar> states_;  // update-policy state of worker j in column j (or empty); a cache like models_
  Vector<Scalar> state_scratch_;
  std::vector<Scalar> raw_weights_;    // w_j: 1, or m_j
  Vector<Scalar> normalised_weights_;  // w_j / sum w
  // Distributed backends only: where a unit's average arrives, and the gathers of loss and gradient.
  Vector<Scalar> unit_buffer_;
  mutable Matrix<Scalar> column_scratch_;
  mutable std::vector<Scalar> value_scratch_;

  std::vector<WorkerType> workers_;  // the workers hosted here, in worker order
  std::vector<std::vector<ServerType>> servers_;  // servers_[l - 1][unit]
  std::vector<std::size_t> server_offsets_;       // servers of the levels below l: index of server (l, 0)
  std::vector<char> server_current_;              // whether this process took part in the server's last round
  mutable Matrix<Scalar> saved_averages_;         // distributed save: the servers' last averages, until written
  std::optional<SamplerType> sampler_prototype_;  // the sampler as given: read other ranks' samplers from a checkpoint
  std::vector<Index> slot_to_worker_;
  std::vector<Index> slot_scratch_;  // the grouping policy's answer, before it is checked
  std::vector<Index> worker_to_slot_;
  std::vector<char> active_;  // active_[j]: worker j takes part in the current round
  std::vector<char> ready_;   // ready_[j]: worker j beat a deadline (a clock with deadlines)
  Index last_round_participants_ = 0;

  std::unique_ptr<detail::ThreadPool> pool_;  // behind a pointer: its threads hold its address
  Index step_ = 0;
  std::vector<Index> aggregations_;
  Index regroupings_ = 0;
  std::string failure_;  // empty while the engine can step
  detail::Liveness live_;
};

/// Deduces the Engine from its arguments: the update policy, rate schedule, grouping policy and
/// backend are found among the plug-ins by the concept each satisfies, and default when absent.
template <class Objective, class SamplerType, class... Plugins>
Engine(Topology, std::vector<Objective>, SamplerType, Options, Plugins&&...)
    -> Engine<Objective, SamplerType,
              typename detail::first_of<detail::is_update_policy_for<typename Objective::Scalar>::template role, Sgd,
                                        std::remove_cvref_t<Plugins>...>::type,
              typename detail::first_of<detail::is_rate_schedule, ConstantRate, std::remove_cvref_t<Plugins>...>::type,
              typename detail::first_of<detail::is_grouping_policy, ContiguousGrouping,
                                        std::remove_cvref_t<Plugins>...>::type,
              typename detail::first_of<detail::is_backend, InProcess, std::remove_cvref_t<Plugins>...>::type,
              typename detail::first_of<detail::is_clock, NoClock, std::remove_cvref_t<Plugins>...>::type>;

/// The same with a shard factory: the objective is what `make_shard(j)` returns.
template <class ShardFactory, class SamplerType, class... Plugins>
  requires std::is_invocable_v<ShardFactory&, Index>
Engine(Topology, ShardFactory&&, SamplerType, Options, Plugins&&...)
    -> Engine<std::remove_cvref_t<std::invoke_result_t<ShardFactory&, Index>>, SamplerType,
              typename detail::first_of<
                  detail::is_update_policy_for<
                      typename std::remove_cvref_t<std::invoke_result_t<ShardFactory&, Index>>::Scalar>::template role,
                  Sgd, std::remove_cvref_t<Plugins>...>::type,
              typename detail::first_of<detail::is_rate_schedule, ConstantRate, std::remove_cvref_t<Plugins>...>::type,
              typename detail::first_of<detail::is_grouping_policy, ContiguousGrouping,
                                        std::remove_cvref_t<Plugins>...>::type,
              typename detail::first_of<detail::is_backend, InProcess, std::remove_cvref_t<Plugins>...>::type,
              typename detail::first_of<detail::is_clock, NoClock, std::remove_cvref_t<Plugins>...>::type>;

}  // namespace hsgd
