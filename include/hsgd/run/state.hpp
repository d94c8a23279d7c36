#pragma once
/// @file
/// The run's state: every worker's column (model, last gradient, optimizer state), the workers
/// this process hosts with their streams and samplers, and the step and aggregation counters.

#include <atomic>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <vector>

#include "hsgd/checkpoint/archive.hpp"
#include "hsgd/core/error.hpp"
#include "hsgd/core/random.hpp"
#include "hsgd/core/types.hpp"
#include "hsgd/objective/concepts.hpp"
#include "hsgd/worker/worker.hpp"

namespace hsgd {

/// What decides the rest of a run on the workers' side, and what a checkpoint saves of it.
///
/// **A worker's column.** Worker j's model x^j, its last minibatch gradient and its update
/// policy's state (empty for a stateless policy) live in column j of three d x n matrices
/// (keeping every model in one block is what makes an aggregation one pass over memory). The state
/// is the one place that says where they are: a step finds a worker's column through `column(j)`,
/// and the servers, the probes and checkpoints reach the columns through the state. Under a
/// distributed backend the columns of workers hosted elsewhere are a cache, current after an
/// aggregation that involved them here or after a gather (hence mutable).
///
/// **Workers.** The workers this process hosts, in worker order, each with its stream (seed,
/// StreamKind::worker, j) and its copy of the sampler, bound to its shard.
///
/// **Counters.** t, the local steps taken, and the rounds each level has aggregated.
template <class Objective, class SamplerType>
class RunState {
 public:
  using Scalar = typename Objective::Scalar;
  using WorkerType = Worker<Objective, SamplerType>;

  /// Where worker j's model, gradient and optimizer state live.
  struct Column {
    VectorRef<Scalar> model;
    VectorRef<Scalar> gradient;
    VectorRef<Scalar> state;
  };

  /// Columns for n workers of dimension d (with optimizer state when `has_state`), and the hosted
  /// workers, one per shard of `shards` (worker `first` + k on shard k), binding each a copy of
  /// `sampler`. The shards must outlive the state.
  void attach(Index dimension, Index workers, Index levels, bool has_state, std::span<const Objective> shards,
              Index first, const SamplerType& sampler, std::uint64_t seed) {
    prototype_.emplace(sampler);
    first_ = first;
    aggregations_.assign(static_cast<std::size_t>(levels), 0);
    detail::require(dimension <= std::numeric_limits<Index>::max() / static_cast<Index>(sizeof(Scalar)) / workers,
                    "the models need {} x {} scalars, more than memory can address: lower the dimension or the "
                    "number of workers", dimension, workers);
    models_.setZero(dimension, workers);
    gradients_.setZero(dimension, workers);
    states_.setZero(has_state ? dimension : 0, has_state ? workers : 0);
    workers_.reserve(shards.size());
    for (std::size_t k = 0; k < shards.size(); ++k) {
      const Index j = first + static_cast<Index>(k);
      workers_.emplace_back(j, shards[k], sampler, make_stream(seed, StreamKind::worker, static_cast<std::uint64_t>(j)));
    }
  }

  /// Every model at the objective's own starting point, for an objective with `initial_model`
  /// (see Objective): shard 0's, drawn from (seed, StreamKind::initial_model, 0) in the process
  /// hosting worker 0 and sent to the others. Nothing for an objective without one (models start at 0).
  template <class Backend>
  void start_at_initial_model(const Backend& backend, std::uint64_t seed) {
    if constexpr (objective_requirements::has_initial_model<Objective>) {
      const Index d = models_.rows();
      Vector<Scalar> x0(d);
      if (backend.hosts(0)) {
        Rng rng = make_stream(seed, StreamKind::initial_model, 0);
        x0 = workers_.front().shard().initial_model(rng);
        detail::require(x0.size() == d, "shard 0's initial_model has {} coordinates but the model has {}", x0.size(), d);
        detail::require(x0.allFinite(), "shard 0's initial_model is not finite");
      }
      backend.broadcast(x0.data(), d, 0);
      models_.colwise() = x0;
    }
  }

  /// The workers that take part in the round (`round.steps(j)`) take a local step, in parallel
  /// on `pool`. With `check_finite`, a model that stops being finite throws NumericalError for the
  /// lowest such worker, so the error names the same worker whatever the thread count.
  template <class Pool, class Round, class Update>
  void local_steps(Pool& pool, const Round& round, const Update& update, Scalar learning_rate, bool check_finite) {
    const auto none = static_cast<Index>(models_.cols());
    std::atomic<Index> first_non_finite{none};
    auto chunk = [&](Index begin, Index end) {
      for (Index k = begin; k < end; ++k) {
        auto& worker = workers_[static_cast<std::size_t>(k)];
        const Index j = worker.id();
        if (!round.steps(j)) continue;
        const Column own = column(j);
        worker.step(update, learning_rate, own.model, own.gradient, own.state);
        if (check_finite && !detail::all_finite(own.model)) {
          Index seen = first_non_finite.load(std::memory_order_relaxed);
          while (j < seen && !first_non_finite.compare_exchange_weak(seen, j, std::memory_order_relaxed)) {
          }
          return;
        }
      }
    };
    pool.for_each_chunk(static_cast<Index>(workers_.size()), chunk);
    if (first_non_finite.load(std::memory_order_relaxed) < none)
      throw NumericalError(step_, first_non_finite.load(std::memory_order_relaxed), 0);
  }

  /// Worker j's column.
  [[nodiscard]] Column column(Index j) {
    const bool stateful = states_.size() > 0;
    return {models_.col(j), gradients_.col(j),
            stateful ? VectorRef<Scalar>(states_.col(j)) : VectorRef<Scalar>(no_state_)};
  }
  /// x^j.
  [[nodiscard]] auto model(Index j) const { return models_.col(j); }
  /// All models, worker j in column j; the last minibatch gradients; the optimizer states (empty
  /// for a stateless policy).
  [[nodiscard]] const Matrix<Scalar>& models() const { return models_; }
  [[nodiscard]] Matrix<Scalar>& models() { return models_; }
  [[nodiscard]] const Matrix<Scalar>& gradients() const { return gradients_; }
  [[nodiscard]] const Matrix<Scalar>& states() const { return states_; }
  [[nodiscard]] Matrix<Scalar>& states() { return states_; }
  /// Makes every column of the models current in this process (collective under a distributed
  /// backend): the columns of workers hosted elsewhere are a cache, which this refreshes.
  template <class Backend>
  void gather_models(const Backend& backend) const {
    backend.gather_columns(models_.data(), models_.rows());
  }

  /// The workers hosted here, in worker order.
  [[nodiscard]] std::span<WorkerType> workers() { return workers_; }
  [[nodiscard]] std::span<const WorkerType> workers() const { return workers_; }

  /// t, the local steps taken so far; the next step is t + 1.
  [[nodiscard]] Index step() const { return step_; }
  void advance() { ++step_; }
  /// aggregations()[l - 1]: rounds in which level l aggregated so far.
  [[nodiscard]] std::span<const Index> aggregations() const { return aggregations_; }
  void count_aggregation(Index level) { ++aggregations_[static_cast<std::size_t>(level - 1)]; }

  /// Its part of a checkpoint: the step, the aggregation counts, every model and optimizer state,
  /// and every worker's stream and sampler, in worker order. The last minibatch gradients are not
  /// saved: a step overwrites a worker's column before using it, so they never change the run.
  /// Under a distributed `backend` the columns are gathered and the workers' pieces assembled on
  /// the root (collective); on load every process reads every worker, keeping those it hosts and
  /// checking the others against a stand-in bound to `sample_counts[j]`. Returns the step as
  /// saved, or as loaded (staged until commit).
  template <class Archive, class Backend>
  Index checkpoint(Archive& archive, const Backend& backend, std::span<const Index> sample_counts) {
    constexpr Index largest = Index{1} << 62;  // room to keep stepping without overflow
    const Index step = archive.index("the step", step_, 0, largest);
    const auto levels = static_cast<Index>(aggregations_.size());
    const auto& counts = archive.indices("the aggregation counts", aggregations_, levels, 0, step);
    archive.check(static_cast<Index>(counts.size()) == levels, "has {} aggregation counts for {} levels", counts.size(),
                  levels);
    if constexpr (!Archive::loading) {
      gather_models(backend);
      backend.gather_columns(states_.data(), states_.rows());
    }
    archive.scalars("the models", models_.data(), static_cast<std::size_t>(models_.size()));
    archive.scalars("the optimizer states", states_.data(), static_cast<std::size_t>(states_.size()));
    backend.visit_workers(archive, [&](auto& part, Index j) {
      if (backend.hosts(j)) {
        workers_[static_cast<std::size_t>(j - first_)].checkpoint(part);
      } else if constexpr (std::remove_reference_t<decltype(part)>::loading) {
        part.stream("a worker's stream", part.hold(Rng()));
        SamplerType& stand_in = part.hold(SamplerType(*prototype_));
        stand_in.bind(sample_counts[static_cast<std::size_t>(j)]);
        detail::visit_plugin(part, stand_in);
      }
    });
    return step;
  }

 private:
  mutable Matrix<Scalar> models_;  // x^j in column j
  Matrix<Scalar> gradients_;       // last minibatch gradient of worker j in column j
  mutable Matrix<Scalar> states_;  // update-policy state of worker j in column j (or empty)
  Vector<Scalar> no_state_;        // the empty state of a stateless policy
  std::vector<WorkerType> workers_;
  std::optional<SamplerType> prototype_;  // the sampler as given: stand-ins for workers hosted elsewhere
  Index first_ = 0;                      // the first worker hosted here
  Index step_ = 0;
  std::vector<Index> aggregations_;
};

}  // namespace hsgd
