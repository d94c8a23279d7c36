#pragma once
/// @file
/// Divergence probes: observers that measure upward and downward divergence while a run goes.

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "hsgd/core/error.hpp"
#include "hsgd/core/types.hpp"
#include "hsgd/probe/decomposition.hpp"
#include "hsgd/probe/record.hpp"
#include "hsgd/topology/topology.hpp"

namespace hsgd {

/// How often a probe measures. A cadence k measures after steps k, 2k, ...; 0 never.
struct ProbeOptions {
  /// Gradient-space divergences at the global average xbar_t (D_up, D_down, D_glob, per-level
  /// terms, per-group D_down,i) with f(xbar_t) and ||grad f(xbar_t)||^2. Costs one full gradient
  /// of every shard.
  Index gradient_every = 32;
  /// Model-space spreads C_in, C_up, C (per-level terms). Costs one pass over the models.
  Index model_every = 1;

  void validate() const {
    detail::require(gradient_every >= 0, "'gradient_every' ({}) must be non-negative (0: never)", gradient_every);
    detail::require(model_every >= 0, "'model_every' ({}) must be non-negative (0: never)", model_every);
  }
};

/// Observer that measures, at its cadences, the quantities of the paper's analysis and hands a
/// ProbeRecord to `recorder.record(record)` (MemoryRecorder, CsvRecorder or your own). It only
/// reads the run, so a run with probes follows the same trajectory, bit for bit, as one without.
///
/// With full local gradients g_j = grad F_j(xbar_t), group gradients h_i and the global gradient
/// h = grad f(xbar_t) (weights w_j):
///   D_down = sum_j w_j ||g_j - h_i(j)||^2,   D_up = sum_i W_i ||h_i - h||^2,   D_glob = D_up + D_down;
/// in N levels the record also holds one term per level (LevelDecomposition), D_down being the
/// lowest and D_up the sum of the others. In model space, C_in, C_up, C likewise with the models.
/// Communication: an aggregation at level l moves every participating worker's model up to its
/// level-l server and back, 2 (n_p + sum_{k<l} units(k)) messages of d scalars, n_p the workers that
/// took part in the round (n without partial participation).
///
/// Storage is made at construction; measuring allocates nothing (the recorder may).
template <Real Scalar, class Recorder>
class DivergenceProbe {
 public:
  DivergenceProbe(const Topology& topology, Index dimension, ProbeOptions options, Recorder& recorder)
      : options_((options.validate(), options)),
        recorder_(&recorder),
        gradients_(dimension, topology.workers()),
        gradient_split_(topology, dimension),
        model_split_(topology, dimension),
        average_(dimension),
        messages_per_round_(static_cast<std::size_t>(topology.levels()), 0) {
    Index hops = 0;  // models crossing one link up from servers below level l; the workers' are added per round
    for (Index level = 1; level <= topology.levels(); ++level) {
      messages_per_round_[static_cast<std::size_t>(level - 1)] = 2 * hops;
      hops += topology.units(level);
    }
    record_.gradient_terms.assign(static_cast<std::size_t>(topology.levels()), nan());
    record_.model_terms.assign(static_cast<std::size_t>(topology.levels()), nan());
    record_.group_d_down.assign(static_cast<std::size_t>(topology.units(1)), nan());
    record_.aggregations.assign(static_cast<std::size_t>(topology.levels()), 0);
  }

  template <class Run>
  void after_aggregation(const Run& run, Index level) {
    record_.aggregations[static_cast<std::size_t>(level - 1)] += 1;
    const Index messages = messages_per_round_[static_cast<std::size_t>(level - 1)] + 2 * run.last_round_participants();
    record_.messages += messages;
    record_.scalars += static_cast<double>(messages) * static_cast<double>(run.dimension());
    last_level_ = level;
  }

  template <class Run>
  void after_step(const Run& run) {
    const Index step = run.step_count();
    const bool gradients_due = options_.gradient_every > 0 && step % options_.gradient_every == 0;
    const bool models_due = options_.model_every > 0 && step % options_.model_every == 0;
    record_.step = step;
    record_.level = std::exchange(last_level_, 0);
    if (!gradients_due && !models_due) return;
    if (gradients_due) measure_gradients(run);
    else clear_gradient_fields();
    if (models_due) measure_models(run);
    else clear_model_fields();
    recorder_->record(record_);
  }

  /// The last record (also after steps that were not recorded: step, level and counters are current).
  [[nodiscard]] const ProbeRecord& last() const { return record_; }

 private:
  static constexpr double nan() { return std::numeric_limits<double>::quiet_NaN(); }

  template <class Run>
  void measure_gradients(const Run& run) {
    run.global_average(average_);
    for (Index j = 0; j < run.workers(); ++j) run.shards()[static_cast<std::size_t>(j)].gradient(average_, gradients_.col(j));
    gradient_split_.compute(run, gradients_);
    const auto terms = gradient_split_.terms();
    std::copy(terms.begin(), terms.end(), record_.gradient_terms.begin());
    const auto groups = gradient_split_.unit_spreads();
    std::copy(groups.begin(), groups.end(), record_.group_d_down.begin());
    record_.d_down = terms[0];
    record_.d_up = gradient_split_.total() - terms[0];
    record_.d_glob = gradient_split_.total();
    record_.loss = static_cast<double>(run.loss(average_));
    record_.gradient_norm_squared = static_cast<double>(gradient_split_.mean(run.topology().levels(), 0).squaredNorm());
    record_.max_d_up = std::max(record_.max_d_up, record_.d_up);
    record_.max_d_down = std::max(record_.max_d_down, record_.d_down);
  }

  void clear_gradient_fields() {
    std::fill(record_.gradient_terms.begin(), record_.gradient_terms.end(), nan());
    std::fill(record_.group_d_down.begin(), record_.group_d_down.end(), nan());
    record_.d_down = record_.d_up = record_.d_glob = record_.loss = record_.gradient_norm_squared = nan();
  }

  template <class Run>
  void measure_models(const Run& run) {
    model_split_.compute(run, run.models());
    const auto terms = model_split_.terms();
    std::copy(terms.begin(), terms.end(), record_.model_terms.begin());
    record_.c_in = terms[0];
    record_.c_up = model_split_.total() - terms[0];
    record_.c = model_split_.total();
  }

  void clear_model_fields() {
    std::fill(record_.model_terms.begin(), record_.model_terms.end(), nan());
    record_.c_in = record_.c_up = record_.c = nan();
  }

  ProbeOptions options_;
  Recorder* recorder_;
  Matrix<Scalar> gradients_;
  LevelDecomposition<Scalar> gradient_split_;
  LevelDecomposition<Scalar> model_split_;
  Vector<Scalar> average_;
  std::vector<Index> messages_per_round_;
  Index last_level_ = 0;
  ProbeRecord record_;
};

/// `auto probe = hsgd::make_probe(engine, {.gradient_every = 32}, recorder);` then `engine.run(probe)`.
template <class Run, class Recorder>
DivergenceProbe<typename Run::Scalar, Recorder> make_probe(const Run& run, ProbeOptions options, Recorder& recorder) {
  return DivergenceProbe<typename Run::Scalar, Recorder>(run.topology(), run.dimension(), options, recorder);
}

}  // namespace hsgd
