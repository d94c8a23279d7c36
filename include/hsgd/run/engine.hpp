#pragma once
/// @file
/// The N-level H-SGD loop.

#include <chrono>
#include <memory>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "hsgd/aggregation/servers.hpp"
#include "hsgd/checkpoint/archive.hpp"
#include "hsgd/core/error.hpp"
#include "hsgd/core/random.hpp"
#include "hsgd/core/types.hpp"
#include "hsgd/objective/concepts.hpp"
#include "hsgd/round/round.hpp"
#include "hsgd/run/backend.hpp"
#include "hsgd/run/checks.hpp"
#include "hsgd/run/observer.hpp"
#include "hsgd/run/options.hpp"
#include "hsgd/run/plugins.hpp"
#include "hsgd/run/state.hpp"
#include "hsgd/run/summary.hpp"
#include "hsgd/run/thread_pool.hpp"
#include "hsgd/sampler/samplers.hpp"
#include "hsgd/topology/assignment.hpp"
#include "hsgd/topology/schedule.hpp"

namespace hsgd {

/// Hierarchical SGD (Wang, Wang, Chen, Ji, AAAI 2022) over an N-level Topology: the loop.
///
/// Each step t = 1, 2, ...: every worker j that takes part in the round takes one local step on
/// its own shard F_j (see Worker); then, if the Schedule says level l aggregates after step t,
/// every level-l Server replaces its members' models by the weighted average of its participants'.
/// With everyone taking part this preserves the weighted global mean whatever the schedule,
/// grouping or depth: xbar_{t+1} = xbar_t - gamma_t sum_j (w_j / sum w) g_j(x^j_t) (plain SGD), and
/// the global objective is f(x) = sum_j (w_j / sum w) F_j(x) (`loss()`, `gradient()`).
///
/// Template parameters; all but the first two are plug-ins given after the options, in any
/// order, each defaulted when left out and deduced from the arguments:
/// - ObjectiveType: one worker's shard F_j (concept Objective); its Scalar is the models' type;
/// - SamplerType: a worker's minibatches (concept Sampler); every worker owns a copy;
/// - UpdateType: a minibatch gradient into a step (concept UpdatePolicy): Sgd, Momentum;
/// - RateType: gamma_t (concept LearningRateSchedule): ConstantRate, StepDecay, InverseSqrtDecay;
/// - GroupingType: who sits in which unit (concept GroupingPolicy): ContiguousGrouping, ExplicitGrouping, RandomGrouping;
/// - BackendType: where the workers live (concept Backend): InProcess, hsgd::mpi::Cluster;
/// - ClockType: simulated time (concept Clock): NoClock, SimulatedClock.
///
/// Its parts each own one idea: the RunState (every worker's column, the workers' streams and
/// samplers, the counters), the Assignment (the grouping in force), the Servers (aggregation),
/// the Round (who takes part), the backend (where workers live, how processes meet), the clock.
///
/// Random streams: worker j draws from (seed, StreamKind::worker, j), the grouping policy from
/// (seed, StreamKind::grouping, 0), the round's draws for server s (numbered level by level) from
/// (seed, StreamKind::server, s), an initial_model from (seed, StreamKind::initial_model, 0), a
/// SimulatedClock's speeds from (seed, StreamKind::clock, j): equal seeds give equal bits, whatever
/// the thread or process count.
///
/// Failure: an exception that leaves `step()` after the step has started changing models (a
/// NumericalError, a throwing objective, sampler, update policy or re-draw), or that an observer
/// throws inside `run()`, leaves the engine *failed*: it keeps the models and counters of that
/// moment for inspection, and every later `step()` or `run()` throws InvalidState naming the step
/// and the error. A learning rate the schedule refuses is found before anything changes.
///
/// Processes: under a distributed backend each process builds and steps only its own block of
/// workers, and a unit whose members live on several processes averages through messages in the
/// in-process Server's order, so every model is the same bits as in process (see Backend).
/// Construction and the members that read all workers (global_average, loss, gradient,
/// gather_models, any_process, the reductions, run(), probes, checkpoints) are then collective:
/// every process calls them, in the same order. An error one process finds alone throws there
/// only: wrap each process's work in hsgd::mpi::run_or_abort.
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
  static_assert(check_backend<BackendType>());
  static_assert(check_clock<ClockType>());
  using Roles = detail::PluginRoles<UpdateType, RateType, GroupingType, BackendType, ClockType>;

 public:
  using Objective = ObjectiveType;
  using Scalar = typename Objective::Scalar;
  using WorkerType = Worker<Objective, SamplerType>;
  using ServerType = Server<Scalar>;

  /// Sets up the run: worker j on shard j; every model at zero, or at the objective's own
  /// `initial_model` (see Objective). Throws InvalidArgument when the options, a policy or the
  /// shards do not fit the topology, ResourceError when the system refuses a thread. Plug-ins:
  /// e.g. `Engine engine(topology, shards, sampler, options, RandomGrouping{})`.
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

  /// The same with the shards made by `make_shard(j)` for the workers this process hosts (under a
  /// distributed backend, its own block only, so memory for the data scales as 1 / processes).
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
  /// The parts point into heap buffers that a move leaves in place, so the member-wise move is right.
  Engine(Engine&&) noexcept = default;
  /// Safe for `a = std::move(a)`, which member-wise assignment is not (the shards would dangle).
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
    static_assert(detail::check_observers<Engine, Observers...>());
    require_steppable();
    const auto start = std::chrono::steady_clock::now();
    bool stop = false;
    while (!stop && state_.step() < options_.steps) {
      const Index level = step();
      failure_.guard([this] { return state_.step(); }, [&] { stop = detail::notify(*this, level, observers...); });
    }
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
    return summarize(*this, elapsed.count(), stop);
  }

  /// One step: the round's workers take a local step, then the scheduled level (if any)
  /// aggregates. Returns that level, or 0. On an exception the engine is failed (see the notes).
  Index step() {
    require_steppable();
    const auto rate = detail::rate_in<Scalar>(learning_rate_at(state_.step() + 1), state_.step() + 1);  // may throw: nothing changed yet
    Index level = 0;
    failure_.guard([this] { return state_.step(); }, [&] {
      state_.advance();
      state_.local_steps(*pool_, round_, update_, rate, options_.check_finite);
      clock_.after_local_steps(round_.stepping());
      level = schedule_.level_after(state_.step());
      if (level > 0) aggregate(level);
    });
    return level;
  }

  /// Empty while the engine can step; after a failed step, what failed and where.
  [[nodiscard]] const std::string& failure() const { return failure_.what(); }

  // ---- models --------------------------------------------------------------------------------

  /// Sets every worker's model to x0, e.g. before the first step. x0 must be finite. Under a
  /// distributed backend, call it in every process with the same x0.
  void set_model(ConstVectorRef<Scalar> x0) {
    detail::check_model<Scalar>(x0, dimension(), "x0");
    state_.models().colwise() = x0;
  }
  /// Sets worker j's model (under a distributed backend this process's copy: call it at least in
  /// the process hosting j). x must be finite.
  void set_model(Index worker, ConstVectorRef<Scalar> x) {
    detail::check_index(worker, workers(), "worker");
    detail::check_model<Scalar>(x, dimension(), "x");
    state_.models().col(worker) = x;
  }
  /// x^j (under a distributed backend, current for a worker hosted elsewhere only after gather_models()).
  [[nodiscard]] auto model(Index worker) const {
    detail::check_index(worker, workers(), "worker");
    return state_.model(worker);
  }
  /// All models, worker j in column j (under a distributed backend the columns of workers hosted
  /// elsewhere are current only after gather_models()).
  [[nodiscard]] const Matrix<Scalar>& models() const { return state_.models(); }
  /// Makes every column of models() current in every process: collective under a distributed
  /// backend (an all-gather of d x n scalars), nothing in process.
  void gather_models() const {
    detail::require_live(live_.live());
    state_.gather_models(backend_);
  }
  /// The last minibatch gradient of every worker, worker j in column j (of those hosted here).
  [[nodiscard]] const Matrix<Scalar>& gradients() const { return state_.gradients(); }
  /// The update policy's state, worker j in column j (empty for stateless policies; of those hosted here).
  [[nodiscard]] const Matrix<Scalar>& states() const { return state_.states(); }

  /// xbar = sum_j w_j x^j / sum_j w_j, the (virtual) global average. Collective (it gathers first).
  [[nodiscard]] Vector<Scalar> global_average() const {
    Vector<Scalar> average(dimension());
    global_average(average);
    return average;
  }
  void global_average(VectorRef<Scalar> out) const {
    detail::check_size(out.size(), dimension(), "out");
    gather_models();
    out.noalias() = state_.models() * weights();
  }

  /// f(x) = sum_j (w_j / sum w) F_j(x), summed in worker order. Collective: each process evaluates
  /// its shards, and every process sums all values in the same order.
  [[nodiscard]] Scalar loss(ConstVectorRef<Scalar> x) const {
    detail::check_size(x.size(), dimension(), "x");
    Scalar total = 0;
    reduce_values<Scalar>([&](Index j) { return shard(j).value(x); },
                          [&](Index j, Scalar value) { total += weights()(j) * value; });
    return total;
  }
  /// grad f(x), through `scratch` (size d) so repeated calls allocate nothing. Collective, like loss().
  void gradient(ConstVectorRef<Scalar> x, VectorRef<Scalar> out, VectorRef<Scalar> scratch) const {
    detail::check_size(x.size(), dimension(), "x");
    detail::check_size(out.size(), dimension(), "out");
    detail::check_size(scratch.size(), dimension(), "scratch");
    out.setZero();
    backend_.reduce_columns(
        scratch, [&](Index j, VectorRef<Scalar> column) { shard(j).gradient(x, column); },
        [&](Index j, ConstVectorRef<Scalar> column) { out.noalias() += weights()(j) * column; });
  }
  [[nodiscard]] Vector<Scalar> gradient(ConstVectorRef<Scalar> x) const {
    detail::check_size(x.size(), dimension(), "x");
    Vector<Scalar> out(dimension());
    Vector<Scalar> scratch(dimension());
    gradient(x, out, scratch);
    return out;
  }

  // ---- measuring over all workers (see DivergenceProbe) ---------------------------------------

  /// `value_of(j)` for every worker j where it is hosted, then `take(j, value)` everywhere in worker order.
  template <class Value, class ValueOf, class Take>
  void reduce_values(ValueOf&& value_of, Take&& take) const {
    backend_.template reduce_values<Value>(workers(), std::forward<ValueOf>(value_of), std::forward<Take>(take));
  }
  /// `measure(j)` for every worker j where it is hosted, filling column j of `columns` (d x n) and
  /// `values[j]`; afterwards every process has them all.
  template <class Measure>
  void each_worker(Measure&& measure, Matrix<Scalar>& columns, std::span<double> values) const {
    detail::require(columns.rows() == dimension() && columns.cols() == workers() && static_cast<Index>(values.size()) == workers(),
                    "'columns' is {} x {} and 'values' holds {}, but the run has {} workers of dimension {}",
                    columns.rows(), columns.cols(), values.size(), workers(), dimension());
    for (Index j = backend_.first_worker(); j < backend_.first_worker() + backend_.local_workers(); ++j) measure(j);
    backend_.gather_columns(columns.data(), dimension());
    backend_.gather_values(values.data());
  }
  /// Whether `flag` is true in any process of the run: collective (how the processes agree to
  /// stop at the same step), `flag` itself in process.
  [[nodiscard]] bool any_process(bool flag) const {
    detail::require_live(live_.live());
    return backend_.any(flag);
  }

  // ---- structure -----------------------------------------------------------------------------

  [[nodiscard]] Index dimension() const {
    detail::require_live(live_.live());
    return dimension_;
  }
  [[nodiscard]] Index workers() const {
    detail::require_live(live_.live());
    return topology_.workers();
  }
  /// The threads that run a step: Options::threads resolved and clamped to the workers.
  [[nodiscard]] Index threads() const {
    detail::require_live(live_.live());
    return pool_->threads();
  }
  /// Local steps taken so far (t of the last completed step).
  [[nodiscard]] Index step_count() const { return state_.step(); }
  [[nodiscard]] const Options& options() const { return options_; }
  [[nodiscard]] const Topology& topology() const { return topology_; }
  [[nodiscard]] const Schedule& schedule() const { return schedule_; }
  /// The shards of the workers this process hosts (all of them in process), in worker order.
  [[nodiscard]] const std::vector<Objective>& shards() const { return shards_; }
  /// Worker j's shard; j must be hosted here.
  [[nodiscard]] const Objective& shard(Index j) const { return worker(j).shard(); }
  /// m_j, the samples of worker j's shard (known in every process).
  [[nodiscard]] Index sample_count(Index j) const {
    detail::check_index(j, workers(), "worker");
    return sample_counts_[static_cast<std::size_t>(j)];
  }
  /// Worker j; j must be hosted here.
  [[nodiscard]] const WorkerType& worker(Index j) const {
    detail::require(hosts(j), "worker {} is hosted by another rank; this one hosts workers [{}, {})", j,
                    backend_.first_worker(), backend_.first_worker() + backend_.local_workers());
    return state_.workers()[static_cast<std::size_t>(j - backend_.first_worker())];
  }
  /// Whether this process hosts worker j (always, in process).
  [[nodiscard]] bool hosts(Index j) const {
    detail::check_index(j, workers(), "worker");
    return backend_.hosts(j);
  }
  /// The backend (for a distributed one: its rank, layout and communication counters).
  [[nodiscard]] const BackendType& backend() const { return backend_; }
  [[nodiscard]] const ServerType& server(Index level, Index unit) const {
    detail::check_level(level, topology_.levels());
    detail::check_index(unit, topology_.units(level), "unit");
    return servers_.server(level, unit);
  }
  /// w_j / sum w: worker j's weight in the global average and in f.
  [[nodiscard]] const Vector<Scalar>& weights() const { return servers_.weights(); }
  /// The grouping in force: the worker in each slot of the topology.
  [[nodiscard]] std::span<const Index> slot_to_worker() const { return assignment_.slot_to_worker(); }
  /// The unit of level l that holds `worker` now.
  [[nodiscard]] Index unit_of(Index worker, Index level) const {
    detail::check_index(worker, workers(), "worker");
    return topology_.unit_of_slot(level, assignment_.slot_of(worker));
  }
  /// The workers of every unit of level l now (allocates: for reports, not hot loops).
  [[nodiscard]] std::vector<std::vector<Index>> units(Index level) const {
    detail::check_level(level, topology_.levels());
    std::vector<std::vector<Index>> result;
    for (const auto& server : servers_.level(level)) result.emplace_back(server.members().begin(), server.members().end());
    return result;
  }
  /// aggregation_counts()[l - 1]: rounds in which level l aggregated so far.
  [[nodiscard]] std::span<const Index> aggregation_counts() const { return state_.aggregations(); }
  /// Grouping draws after the first.
  [[nodiscard]] Index regroupings() const { return assignment_.regroupings(); }
  /// Whether worker j takes part in the current round (always, without partial participation).
  [[nodiscard]] bool participates(Index worker) const {
    detail::check_index(worker, workers(), "worker");
    return round_.steps(worker);
  }
  /// Workers that took part in the round the last aggregation closed (n without partial
  /// participation or deadlines): what the probes count as messages sent up.
  [[nodiscard]] Index last_round_participants() const { return round_.last_participants(); }
  /// gamma_t, the learning rate the schedule gives at step t.
  [[nodiscard]] double learning_rate_at(Index step) const { return rate_.rate(options_.learning_rate, step); }
  /// The simulated clock (NoClock unless one was given): `engine.clock().seconds()`.
  [[nodiscard]] const ClockType& clock() const { return clock_; }

  // ---- checkpoints ---------------------------------------------------------------------------

  /// The name of the engine's section in a checkpoint (see save_checkpoint).
  [[nodiscard]] std::string_view checkpoint_name() const { return "engine"; }

  /// The engine's part of a checkpoint, one visit for save and load: the settings a resume must
  /// match, then each part's state (RunState, Assignment, Servers, Round) and the plug-ins'. A
  /// failed engine is not saved (InvalidState); a load replaces its state, failure included.
  /// `options().steps` and `threads` may differ on resume: results depend on neither. The engine
  /// must not step until the file is written (the models are written from where they are).
  template <class Archive>
  void checkpoint(Archive& archive) {
    if constexpr (Archive::loading) detail::require_live(live_.live());
    else require_steppable();
    archive.scalar_code(CheckpointFormat::scalar_code<Scalar>());
    archive.settings(checkpoint_settings());
    const Index steps = state_.checkpoint(archive, backend_, sample_counts_);
    const std::span<const Index> slots = assignment_.checkpoint(archive, steps);
    if constexpr (Archive::loading) archive.after_load([this] { servers_.apply(topology_, assignment_.slot_to_worker()); });
    servers_.checkpoint(archive, topology_, slots, round_, backend_);
    round_.checkpoint(archive, servers_);
    detail::visit_plugin(archive, update_);
    detail::visit_plugin(archive, rate_);
    detail::visit_plugin(archive, clock_);
    if constexpr (Archive::loading) archive.after_load([this] { failure_.clear(); });
  }
  /// Whether this process writes the checkpoint file: rank 0 under a distributed backend.
  [[nodiscard]] bool checkpoint_writes_file() const { return backend_.is_root(); }

  /// What a resume must match: scalar type, dimension, workers, topology, the options that change
  /// results, the plug-in types, every shard's sample count and the clock's cost model.
  [[nodiscard]] CheckpointSettings checkpoint_settings() const {
    return {{"scalar type", CheckpointFormat::scalar_name(CheckpointFormat::scalar_code<Scalar>())},
            {"dimension", dimension()},
            {"workers", workers()},
            {"topology", topology_.describe()},
            {"seed", options_.seed},
            {"learning rate", options_.learning_rate},
            {"weighting", options_.weighting},
            {"warm-up steps", options_.warmup_steps},
            {"warm-up mode", options_.warmup_mode},
            {"participation", options_.participation},
            {"objective", type_name<Objective>()},
            {"sampler", type_name<SamplerType>()},
            {"update policy", type_name<UpdateType>()},
            {"rate schedule", type_name<RateType>()},
            {"grouping policy", type_name<GroupingType>()},
            {"shard sample counts", sample_counts_},
            {"clock", clock_.describe()}};
  }

 private:
  struct Setup {};

  /// Everything that does not depend on the shards: options, topology, plug-ins, backend.
  template <class... Plugins>
  Engine(Setup, Topology topology, const Options& options, Plugins&&... plugins)
      : options_((options.validate(), options)),
        topology_(detail::nonempty(std::move(topology))),
        schedule_(topology_, options_.warmup_steps, options_.warmup_mode),
        update_(detail::take_plugin<UpdateType>(std::forward<Plugins>(plugins)...)),
        rate_(detail::take_plugin<RateType>(std::forward<Plugins>(plugins)...)),
        assignment_(detail::take_plugin<GroupingType>(std::forward<Plugins>(plugins)...)),
        backend_(detail::take_plugin<BackendType>(std::forward<Plugins>(plugins)...)),
        clock_(detail::take_plugin<ClockType>(std::forward<Plugins>(plugins)...)) {
    static_assert(Roles::template check<Plugins...>());
    update_.validate();
    rate_.validate();
    detail::check_base_rate<Scalar>(options_.learning_rate);
    backend_.attach(topology_.workers(), topology_.levels());
  }

  /// The rest of construction, once this process's shards are in shards_.
  void build(const SamplerType& sampler) {
    dimension_ = detail::shard_shape(backend_, std::span<const Objective>(shards_), topology_.workers(), sample_counts_);
    state_.attach(dimension_, topology_.workers(), topology_.levels(), UpdateType::has_state,
                  std::span<const Objective>(shards_), backend_.first_worker(), sampler, options_.seed);
    servers_.attach(topology_, dimension_, sample_counts_, options_.weighting);
    clock_.attach(topology_, static_cast<double>(dimension_) * static_cast<double>(sizeof(Scalar)),
                  detail::batch_size_of(sampler), options_.seed);
    assignment_.attach(topology_, options_.seed);
    servers_.apply(topology_, assignment_.slot_to_worker());
    round_.attach(topology_, options_.participation, options_.seed, clock_.has_deadlines());
    round_.draw(servers_);
    state_.start_at_initial_model(backend_, options_.seed);
    pool_ = std::make_unique<detail::ThreadPool>(options_.resolved_threads(backend_.local_workers()));  // last: the costliest to undo
  }

  /// Level `level` aggregates: the round says who takes part, the servers average, the clock
  /// advances, and after a global round the grouping may be drawn again.
  void aggregate(Index level) {
    round_.open(level, servers_, clock_);
    if (round_.closes_groups_first(level)) average(1);
    average(level);
    clock_.after_round(level, servers_.level(level));  // before a regrouping changes the units
    round_.close(level, servers_, clock_);
    state_.count_aggregation(level);
    if (level == topology_.levels() && assignment_.regroup_after_global_round(topology_))
      servers_.apply(topology_, assignment_.slot_to_worker());
    round_.draw(servers_);
  }

  void require_steppable() const {
    detail::require_live(live_.live());
    failure_.require_none();
  }

  void average(Index level) {
    const StateAtAggregation rule = UpdateType::has_state ? update_.state_at_aggregation() : StateAtAggregation::keep;
    servers_.average(level, state_, rule, backend_, options_.check_finite);
  }

  Options options_;
  Topology topology_;
  Schedule schedule_;
  UpdateType update_;
  RateType rate_;
  Assignment<GroupingType> assignment_;
  BackendType backend_;
  ClockType clock_;
  Index dimension_ = 0;
  std::vector<Index> sample_counts_;  // m_j of every worker, hosted here or not
  std::vector<Objective> shards_;     // the shards of the workers hosted here, in worker order
  RunState<Objective, SamplerType> state_;
  Servers<Scalar> servers_;
  Round round_;
  std::unique_ptr<detail::ThreadPool> pool_;  // behind a pointer: its threads hold its address
  detail::Failure failure_;
  detail::Liveness live_;
};

/// Deduces the Engine from its arguments: the update policy, rate schedule, grouping policy,
/// backend and clock are found among the plug-ins by the interface each has, and default when absent.
template <class Objective, class SamplerType, class... Plugins>
Engine(Topology, std::vector<Objective>, SamplerType, Options, Plugins&&...)
    -> Engine<Objective, SamplerType, detail::update_among<typename Objective::Scalar, Plugins...>,
              detail::rate_among<Plugins...>, detail::grouping_among<Plugins...>, detail::backend_among<Plugins...>,
              detail::clock_among<Plugins...>>;

/// The same with a shard factory: the objective is what `make_shard(j)` returns.
template <class ShardFactory, class SamplerType, class... Plugins,
          class Objective = std::remove_cvref_t<std::invoke_result_t<ShardFactory&, Index>>>
Engine(Topology, ShardFactory&&, SamplerType, Options, Plugins&&...)
    -> Engine<Objective, SamplerType, detail::update_among<typename Objective::Scalar, Plugins...>,
              detail::rate_among<Plugins...>, detail::grouping_among<Plugins...>, detail::backend_among<Plugins...>,
              detail::clock_among<Plugins...>>;

}  // namespace hsgd
