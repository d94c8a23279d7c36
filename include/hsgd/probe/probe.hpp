#pragma once
/// @file
/// Divergence probes: observers that measure upward and downward divergence while a run goes.

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <limits>
#include <numeric>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "hsgd/checkpoint/archive.hpp"
#include "hsgd/core/error.hpp"
#include "hsgd/core/random.hpp"
#include "hsgd/core/types.hpp"
#include "hsgd/objective/concepts.hpp"
#include "hsgd/probe/decomposition.hpp"
#include "hsgd/probe/record.hpp"
#include "hsgd/time/clock.hpp"
#include "hsgd/topology/topology.hpp"

namespace hsgd {

/// How often a probe measures. A cadence k measures after steps k, 2k, ...; 0 never.
struct ProbeOptions {
  /// Gradient-space divergences at the global average xbar_t (D_up, D_down, D_glob, per-level
  /// terms, per-group D_down,i) with f(xbar_t) and ||grad f(xbar_t)||^2. Costs one full gradient
  /// and one loss of every shard (1.5 epochs of sample work), or much less with a subsample.
  Index gradient_every = 32;
  /// Model-space spreads C_in, C_up, C (per-level terms). Costs one pass over the models.
  Index model_every = 1;
  /// k: 0 takes each worker's full local gradient; k >= 2 estimates it from a fixed subsample of
  /// k of its samples (drawn once, without replacement, from the stream (subsample_seed,
  /// StreamKind::probe, j)), and removes the bias the sampling noise adds to every divergence
  /// and to ||grad f||^2 (see DivergenceProbe). A shard with at most k samples is used in full.
  /// The loss f(xbar) is then estimated from the same samples if the objective has batch_value.
  /// Cost: a full measurement reads every sample (one epoch); a subsample about 3k/m of that.
  Index subsample = 0;
  /// Seeds the subsample draws.
  std::uint64_t subsample_seed = 0;
  /// Whether to subtract the estimated sampling-noise bias (only matters with a subsample).
  bool remove_sampling_bias = true;
  /// Also measure each group (level-1 unit) at its own average xbar^i: D_down,i(xbar^i),
  /// ||grad f_i(xbar^i)||^2, and their weighted sum. Costs a second gradient of every shard.
  bool at_group_averages = false;
  /// Held-out test loss and accuracy at xbar_t, for a probe given a held-out objective (see
  /// make_probe); ignored without one. Costs one value and one accuracy pass over the held-out set.
  Index test_every = 32;

  void validate() const {
    detail::require(gradient_every >= 0, "'gradient_every' ({}) must be non-negative (0: never)", gradient_every);
    detail::require(model_every >= 0, "'model_every' ({}) must be non-negative (0: never)", model_every);
    detail::require(test_every >= 0, "'test_every' ({}) must be non-negative (0: never)", test_every);
    detail::require(subsample == 0 || subsample >= 2,
                    "'subsample' ({}) must be 0 (full gradients) or at least 2 (to estimate the sampling noise)",
                    subsample);
  }
};

/// The held-out objective of a probe that has none.
struct NoHeldOut {};

/// What a probe accepts as its held-out objective: NoHeldOut, or an Objective over the held-out
/// samples whose models are the run's (same Scalar). Its `value(x)` is recorded as test_loss and,
/// if it has `accuracy(x)` (objective_requirements::has_accuracy), that as test_accuracy.
template <class H, class Scalar>
concept HeldOutObjective =
    std::same_as<H, NoHeldOut> || (Objective<H> && std::same_as<typename H::Scalar, Scalar>);

/// Observer that measures, at its cadences, the quantities of the paper's analysis and hands a
/// ProbeRecord to `recorder.record(record)` (MemoryRecorder, CsvRecorder or your own). It only
/// reads the run, so a run with probes follows the same trajectory, bit for bit, as one without.
///
/// With full local gradients g_j = grad F_j(xbar_t), group gradients h_i and the global gradient
/// h = grad f(xbar_t) (weights w_j):
///   D_down = sum_j w_j ||g_j - h_i(j)||^2,   D_up = sum_i W_i ||h_i - h||^2,   D_glob = D_up + D_down;
/// in N levels the record also holds one term per level (LevelDecomposition), D_down being the
/// lowest and D_up the sum of the others. In model space, C_in, C_up, C likewise with the models.
///
/// With a subsample S_j of k of worker j's m_j samples, g_j is estimated by the subsample mean
/// ghat_j, whose error over the draw of S_j has E||ghat_j - g_j||^2 = v_j = (s_j^2 / k)(1 - k / m_j), s_j^2
/// the variance of the per-sample gradients (sampling without replacement). Plugging ghat_j into
/// the quadratic divergences inflates them in expectation (LevelDecomposition::remove_noise gives
/// the amounts, e.g. D_down gains sum_j w_j v_j (1 - w_j / W_i(j))); the probe estimates v_j from
/// the same subsample with the unbiased s_j^2 = sum_{k in S_j} ||grad l_k - ghat_j||^2 / (k - 1),
/// and subtracts, so every reported divergence and ||grad f||^2 (which gains sum_j w_j^2 v_j) is
/// unbiased over the subsample draw. A single corrected value can be slightly negative.
/// Communication: an aggregation at level l moves every participating worker's model up to its
/// level-l server and back, 2 (n_p + sum_{k<l} units(k)) messages of d scalars, n_p the workers that
/// took part in the round (n without partial participation).
///
/// Storage is made at construction; measuring allocates nothing (the recorder may). A probe is
/// sized for one run's shape (workers, dimension, levels, units per level and, with a subsample,
/// each shard's sample count); its hooks check the run they are given against that shape, a few
/// integer compares, and throw InvalidArgument naming what differs, so attaching it to another
/// engine is an error and never a write out of bounds.
///
/// A field the probe did not measure at a step is ProbeRecord::not_measured; a measurement that
/// came out NaN (a NaN gradient, say) stays a genuine NaN, which `hsgd::is_measured` tells apart.
/// The running maxima of D_up and D_down become NaN from the first NaN measurement on.
///
/// **Held-out evaluation.** With a held-out objective F_test (the objective built on test samples
/// the workers never see, e.g. `SoftmaxRegression(test_data)`), every `test_every` steps the
/// record gets test_loss = F_test(xbar_t) and, for an objective with `accuracy`, test_accuracy, the
/// fraction of the held-out samples xbar_t classifies correctly. F_test is the objective as built:
/// hsgd's classifiers include the penalty lambda R(x); build it with lambda = 0 for the bare
/// cross-entropy. The probe owns it (pass it with std::move to avoid a copy) and evaluates it on
/// the calling thread, so its value and accuracy must not allocate. Under the MPI backend every
/// rank evaluates it in full on the same global average: the same bits on every rank, one
/// evaluation's time.
template <Real Scalar, class Recorder, class HeldOut = NoHeldOut>
class DivergenceProbe {
  static_assert(HeldOutObjective<HeldOut, Scalar>,
                "hsgd DivergenceProbe: the held-out objective must be an hsgd Objective whose Scalar is the run's "
                "(check_objective<T>() says what it lacks)");
  static constexpr bool evaluates_held_out = !std::same_as<HeldOut, NoHeldOut>;

 public:
  /// Sizes every buffer for `run` (and draws the subsamples), so measuring allocates nothing.
  /// Throws InvalidArgument when a held-out objective's dimension is not the run's.
  template <class Run>
  DivergenceProbe(const Run& run, ProbeOptions options, Recorder& recorder, HeldOut held_out = HeldOut{})
      : options_((options.validate(), options)),
        recorder_(&recorder),
        held_out_(std::move(held_out)),
        gradients_(run.dimension(), run.workers()),
        noise_(static_cast<std::size_t>(run.workers()), 0.0),
        all_workers_(static_cast<std::size_t>(run.workers())),
        gradient_split_(run.topology(), run.dimension()),
        model_split_(run.topology(), run.dimension()),
        average_(run.dimension()),
        sample_gradient_(run.dimension()),
        group_models_(run.dimension(), run.topology().units(1)),
        messages_per_round_(static_cast<std::size_t>(run.topology().levels()), 0),
        workers_(run.workers()),
        dimension_(run.dimension()) {
    const Topology& topology = run.topology();
    if constexpr (evaluates_held_out) {
      detail::require(held_out_.dimension() == run.dimension(),
                      "the held-out objective has dimension {} but the run's models have dimension {}: build it with "
                      "the training shards' classes, features and hidden units",
                      held_out_.dimension(), run.dimension());
    }
    for (Index level = 1; level <= topology.levels(); ++level) units_.push_back(topology.units(level));
    std::iota(all_workers_.begin(), all_workers_.end(), Index{0});
    draw_subsamples(run);
    Index hops = 0;  // models crossing one link up from servers below level l; the workers' are added per round
    for (Index level = 1; level <= topology.levels(); ++level) {
      messages_per_round_[static_cast<std::size_t>(level - 1)] = 2 * hops;
      hops += topology.units(level);
    }
    record_.gradient_terms.assign(static_cast<std::size_t>(topology.levels()), not_measured());
    record_.model_terms.assign(static_cast<std::size_t>(topology.levels()), not_measured());
    record_.group_d_down.assign(static_cast<std::size_t>(topology.units(1)), not_measured());
    record_.group_d_down_at_group_averages.assign(static_cast<std::size_t>(topology.units(1)), not_measured());
    record_.group_gradient_norm_squared.assign(static_cast<std::size_t>(topology.units(1)), not_measured());
    record_.aggregations.assign(static_cast<std::size_t>(topology.levels()), 0);
    record_.sim_communication_seconds.assign(static_cast<std::size_t>(topology.levels()), not_measured());
    clock_reading_.communication.assign(static_cast<std::size_t>(topology.levels()), 0.0);
    record_.level_messages.assign(static_cast<std::size_t>(topology.levels()), 0);
  }

  template <class Run>
  void after_aggregation(const Run& run, Index level) {
    check_run(run);
    detail::require(level >= 1 && level <= static_cast<Index>(units_.size()), "'level' ({}) must be in [1, {}]", level,
                    units_.size());
    record_.aggregations[static_cast<std::size_t>(level - 1)] += 1;
    const Index messages = messages_per_round_[static_cast<std::size_t>(level - 1)] + 2 * run.last_round_participants();
    record_.messages += messages;
    record_.level_messages[static_cast<std::size_t>(level - 1)] += messages;
    record_.scalars += static_cast<double>(messages) * static_cast<double>(run.dimension());
    last_level_ = level;
  }

  template <class Run>
  void after_step(const Run& run) {
    check_run(run);
    const Index step = run.step_count();
    const bool gradients_due = options_.gradient_every > 0 && step % options_.gradient_every == 0;
    const bool models_due = options_.model_every > 0 && step % options_.model_every == 0;
    const bool test_due = evaluates_held_out && options_.test_every > 0 && step % options_.test_every == 0;
    record_.step = step;
    record_.level = std::exchange(last_level_, 0);
    if (!gradients_due && !models_due && !test_due) return;
    if (test_due) {
      run.global_average(average_);
      measure_held_out();
    } else {
      record_.test_loss = record_.test_accuracy = not_measured();
    }
    if (gradients_due) measure_gradients(run, /*averaged=*/test_due);
    else clear_gradient_fields();
    if (models_due) measure_models(run);
    else clear_model_fields();
    read_clock(run);
    recorder_->record(record_);
  }

  /// The last record (also after steps that were not recorded: step, level and counters are current).
  [[nodiscard]] const ProbeRecord& last() const { return record_; }

  // ---- checkpoints (section "probe") ----

  [[nodiscard]] std::string_view checkpoint_name() const { return "probe"; }

  /// Its part of a checkpoint: the options and the run's shape (compared on resume), the last
  /// record (running maxima, counters, the fields of the last measurement) and the pending
  /// aggregation level. The subsamples are drawn again from their seed.
  template <class Archive>
  void checkpoint(Archive& archive) {
    archive.settings(checkpoint_settings());
    const auto levels = static_cast<Index>(units_.size());
    ProbeRecord& record = [&]() -> ProbeRecord& {
      if constexpr (Archive::loading) return archive.hold(ProbeRecord{});
      else return record_;
    }();
    detail::visit_record(archive, record, std::max(levels, units_.front()), &record_);
    if constexpr (Archive::loading) archive.after_load([this, &record] { record_ = std::move(record); });
    archive.index("the pending aggregation level", last_level_, 0, levels);
  }

  /// What a resume must match: the options and the shape of the run.
  [[nodiscard]] CheckpointSettings checkpoint_settings() const {
    CheckpointSettings settings{
        {"probe options", fmt::format("gradient_every {}, model_every {}, subsample {}, subsample_seed {}, "
                                      "remove_sampling_bias {}, at_group_averages {}",
                                      options_.gradient_every, options_.model_every, options_.subsample,
                                      options_.subsample_seed, options_.remove_sampling_bias,
                                      options_.at_group_averages)},
        {"probe shape", fmt::format("{} workers, dimension {}, units per level {}", workers_, dimension_,
                                    detail::setting_text(units_))},
        {"probe held-out set", "none"}};
    if constexpr (evaluates_held_out)
      settings.back().value = fmt::format("test_every {}, {} samples", options_.test_every, held_out_.sample_count());
    return settings;
  }

  /// The held-out objective (for a probe that has one).
  [[nodiscard]] const HeldOut& held_out() const
    requires evaluates_held_out
  {
    return held_out_;
  }

 private:
  // The marker ProbeRecord documents, never a NaN from arithmetic: is_measured tells the two apart.
  static constexpr double not_measured() { return ProbeRecord::not_measured; }

  /// The shape check of every hook: integer compares only, nothing formatted unless one fails.
  template <class Run>
  void check_run(const Run& run) const {
    detail::require(run.workers() == workers_, "the probe was made for a run of {} workers but this run has {}",
                    workers_, run.workers());
    detail::require(run.dimension() == dimension_,
                    "the probe was made for models of dimension {} but this run's models have dimension {}",
                    dimension_, run.dimension());
    const Topology& topology = run.topology();
    const auto levels = static_cast<Index>(units_.size());
    detail::require(topology.levels() == levels, "the probe was made for a run of {} levels but this run has {}",
                    levels, topology.levels());
    for (Index level = 1; level <= levels; ++level) {
      detail::require(topology.units(level) == units_[static_cast<std::size_t>(level - 1)],
                      "the probe was made for a run of {} units at level {} but this run has {}",
                      units_[static_cast<std::size_t>(level - 1)], level, topology.units(level));
    }
  }

  /// The subsample indices were drawn below each shard's sample count; a shard of another size
  /// would make them read past its samples.
  template <class Run>
  void check_sample_counts(const Run& run) const {
    for (std::size_t j = 0; j < sample_counts_.size(); ++j) {
      const Index samples = run.sample_count(static_cast<Index>(j));
      detail::require(samples == sample_counts_[j],
                      "the probe drew its subsample from worker {}'s {} samples but this run's worker {} has {}", j,
                      sample_counts_[j], j, samples);
    }
  }

  /// A running maximum that a NaN measurement turns NaN for good (std::max would drop it).
  static double running_max(double maximum, double value) {
    if (std::isnan(maximum)) return maximum;
    if (std::isnan(value)) return value;
    return std::max(maximum, value);
  }

  template <class Run>
  void draw_subsamples(const Run& run) {
    if (options_.subsample == 0) return;
    subsamples_.resize(static_cast<std::size_t>(run.workers()));
    for (Index j = 0; j < run.workers(); ++j) {
      const Index samples = run.sample_count(j);
      sample_counts_.push_back(samples);
      if (samples <= options_.subsample) continue;  // used in full
      auto& chosen = subsamples_[static_cast<std::size_t>(j)];
      chosen.resize(static_cast<std::size_t>(samples));
      std::iota(chosen.begin(), chosen.end(), Index{0});
      Rng rng = make_stream(options_.subsample_seed, StreamKind::probe, static_cast<std::uint64_t>(j));
      for (Index k = 0; k < options_.subsample; ++k)
        std::swap(chosen[static_cast<std::size_t>(k)], chosen[static_cast<std::size_t>(k + rng.below(samples - k))]);
      chosen.resize(static_cast<std::size_t>(options_.subsample));
      std::sort(chosen.begin(), chosen.end());  // the order of a sum should not depend on the draw
    }
  }

  /// Column j of gradients_ = worker j's (estimated) gradient at x; noise_[j] = its estimated error
  /// variance (0 for a full gradient). Worker j must be hosted here (see Engine::hosts).
  template <class Run>
  void worker_gradient(const Run& run, Index j, ConstVectorRef<Scalar> x) {
    const auto& shard = run.shard(j);
    auto mean = gradients_.col(j);
    const auto& chosen = subsamples_.empty() ? no_subsample_ : subsamples_[static_cast<std::size_t>(j)];
    if (chosen.empty()) {
      shard.gradient(x, mean);
      noise_[static_cast<std::size_t>(j)] = 0;
      return;
    }
    // Welford's update, one sample at a time (no stored per-sample gradients, no cancellation), in
    // two passes over the sample's gradient s: with delta = s - mean before the update, the sum of
    // squares grows by ||delta||^2 k / (k + 1) and the mean by delta / (k + 1).
    mean.setZero();
    double sum_of_squares = 0;
    for (std::size_t k = 0; k < chosen.size(); ++k) {
      shard.batch_gradient(x, std::span<const Index>(&chosen[k], 1), sample_gradient_);
      const double seen = static_cast<double>(k);
      sum_of_squares += static_cast<double>((sample_gradient_ - mean).squaredNorm()) * seen / (seen + 1);
      mean += (sample_gradient_ - mean) / static_cast<Scalar>(k + 1);
    }
    const double count = static_cast<double>(chosen.size());
    const double samples = static_cast<double>(shard.sample_count());
    noise_[static_cast<std::size_t>(j)] =
        options_.remove_sampling_bias ? sum_of_squares / (count - 1) / count * (1 - count / samples) : 0.0;
  }

  /// f(x), or with a subsample and an objective that has batch_value, its unbiased estimate
  /// sum_j w_j Fhat_j(x) from the same samples as the gradients (a full f(x) costs half an epoch).
  /// Each rank evaluates its workers; the sum runs over all of them in worker order.
  template <class Run>
  double loss(const Run& run, ConstVectorRef<Scalar> x) {
    if constexpr (objective_requirements::has_batch_value<typename Run::Objective>) {
      if (!subsamples_.empty()) {
        double total = 0;
        run.template reduce_values<double>(
            [&](Index j) {
              const auto& shard = run.shard(j);
              const auto& chosen = subsamples_[static_cast<std::size_t>(j)];
              return static_cast<double>(chosen.empty() ? shard.value(x) : shard.batch_value(x, chosen));
            },
            [&](Index j, double value) { total += static_cast<double>(run.weights()(j)) * value; });
        return total;
      }
    }
    return static_cast<double>(run.loss(x));
  }

  /// sum_j w_j^2 noise_j over `workers`, each weight divided by `scale`: the bias of ||weighted mean||^2.
  template <class Run, class Workers>
  double mean_noise(const Run& run, const Workers& workers, double scale) const {
    double bias = 0;
    for (const Index j : workers) {
      const double w = static_cast<double>(run.weights()(j)) / scale;
      bias += w * w * noise_[static_cast<std::size_t>(j)];
    }
    return bias;
  }

  /// The simulated time, for a run with a SimulatedClock (Engine::clock()).
  template <class Run>
  void read_clock(const Run& run) {
    if constexpr (requires { run.clock().read_into(clock_reading_); }) {
      run.clock().read_into(clock_reading_);
      record_.sim_seconds = clock_reading_.seconds;
      record_.sim_compute_seconds = clock_reading_.compute;
      record_.sim_wait_seconds = clock_reading_.wait;
      record_.sim_dropped = static_cast<double>(clock_reading_.dropped);
      std::copy(clock_reading_.communication.begin(), clock_reading_.communication.end(),
                record_.sim_communication_seconds.begin());
    }
  }

  /// F_test and its accuracy at average_ (= xbar_t).
  void measure_held_out() {
    if constexpr (evaluates_held_out) {
      record_.test_loss = static_cast<double>(held_out_.value(average_));
      if constexpr (objective_requirements::has_accuracy<HeldOut>) record_.test_accuracy = held_out_.accuracy(average_);
    }
  }

  /// `averaged`: average_ already holds xbar_t.
  template <class Run>
  void measure_gradients(const Run& run, bool averaged) {
    check_sample_counts(run);
    if (!averaged) run.global_average(average_);
    run.each_worker([&](Index j) { worker_gradient(run, j, average_); }, gradients_, noise_);
    gradient_split_.compute(run, gradients_);
    gradient_split_.remove_noise(run, noise_);
    const auto terms = gradient_split_.terms();
    std::copy(terms.begin(), terms.end(), record_.gradient_terms.begin());
    const auto groups = gradient_split_.unit_spreads();
    std::copy(groups.begin(), groups.end(), record_.group_d_down.begin());
    record_.d_down = terms[0];
    record_.d_up = gradient_split_.total() - terms[0];
    record_.d_glob = gradient_split_.total();
    record_.loss = loss(run, average_);
    record_.gradient_norm_squared =
        static_cast<double>(gradient_split_.mean(run.topology().levels(), 0).squaredNorm()) -
        mean_noise(run, all_workers_, 1.0);
    record_.max_d_up = running_max(record_.max_d_up, record_.d_up);
    record_.max_d_down = running_max(record_.max_d_down, record_.d_down);
    if (options_.at_group_averages) measure_at_group_averages(run);
  }

  /// Each group i at its own average xbar^i: D_down,i(xbar^i) and ||grad f_i(xbar^i)||^2, where
  /// f_i is the group's weighted objective.
  template <class Run>
  void measure_at_group_averages(const Run& run) {
    const Index groups = run.topology().units(1);
    // First every group's model, then every worker's gradient at its group's, then the spreads.
    for (Index i = 0; i < groups; ++i) {
      auto model = group_models_.col(i);
      model.setZero();
      for (const Index j : run.server(1, i).members()) model.noalias() += run.weights()(j) * run.models().col(j);
      model /= static_cast<Scalar>(group_weight(run, i));
    }
    run.each_worker([&](Index j) { worker_gradient(run, j, group_models_.col(run.unit_of(j, 1))); }, gradients_, noise_);
    for (Index i = 0; i < groups; ++i) {
      const auto members = run.server(1, i).members();
      const double weight = group_weight(run, i);
      average_.setZero();  // h_i(xbar^i)
      for (const Index j : members) average_.noalias() += (run.weights()(j) / static_cast<Scalar>(weight)) * gradients_.col(j);
      double spread = 0;
      for (const Index j : members) {
        const double w = static_cast<double>(run.weights()(j)) / weight;
        spread += w * (static_cast<double>((gradients_.col(j) - average_).squaredNorm()) -
                       noise_[static_cast<std::size_t>(j)] * (1 - w));
      }
      record_.group_d_down_at_group_averages[static_cast<std::size_t>(i)] = spread;
      record_.group_gradient_norm_squared[static_cast<std::size_t>(i)] =
          static_cast<double>(average_.squaredNorm()) - mean_noise(run, members, weight);
    }
    record_.d_down_at_group_averages = 0;
    for (Index i = 0; i < groups; ++i)
      record_.d_down_at_group_averages += group_weight(run, i) * record_.group_d_down_at_group_averages[static_cast<std::size_t>(i)];
  }

  template <class Run>
  static double group_weight(const Run& run, Index group) {
    double weight = 0;
    for (const Index j : run.server(1, group).members()) weight += static_cast<double>(run.weights()(j));
    return weight;
  }

  void clear_gradient_fields() {
    std::fill(record_.gradient_terms.begin(), record_.gradient_terms.end(), not_measured());
    std::fill(record_.group_d_down.begin(), record_.group_d_down.end(), not_measured());
    std::fill(record_.group_d_down_at_group_averages.begin(), record_.group_d_down_at_group_averages.end(),
              not_measured());
    std::fill(record_.group_gradient_norm_squared.begin(), record_.group_gradient_norm_squared.end(), not_measured());
    record_.d_down = record_.d_up = record_.d_glob = record_.loss = record_.gradient_norm_squared = not_measured();
    record_.d_down_at_group_averages = not_measured();
  }

  template <class Run>
  void measure_models(const Run& run) {
    run.gather_models();
    model_split_.compute(run, run.models());
    const auto terms = model_split_.terms();
    std::copy(terms.begin(), terms.end(), record_.model_terms.begin());
    record_.c_in = terms[0];
    record_.c_up = model_split_.total() - terms[0];
    record_.c = model_split_.total();
  }

  void clear_model_fields() {
    std::fill(record_.model_terms.begin(), record_.model_terms.end(), not_measured());
    record_.c_in = record_.c_up = record_.c = not_measured();
  }

  ProbeOptions options_;
  Recorder* recorder_;
  [[no_unique_address]] HeldOut held_out_;
  ClockReading clock_reading_;  // sized at construction: reading the clock allocates nothing
  Matrix<Scalar> gradients_;   // (estimated) g_j in column j
  std::vector<double> noise_;  // estimated E||ghat_j - g_j||^2 (0 for full gradients)
  std::vector<Index> all_workers_;  // 0..n-1
  std::vector<std::vector<Index>> subsamples_;  // S_j, sorted; empty: the whole shard
  std::vector<Index> no_subsample_;
  LevelDecomposition<Scalar> gradient_split_;
  LevelDecomposition<Scalar> model_split_;
  Vector<Scalar> average_;
  Vector<Scalar> sample_gradient_;
  Matrix<Scalar> group_models_;  // xbar^i in column i
  std::vector<Index> messages_per_round_;
  Index last_level_ = 0;
  ProbeRecord record_;
  // The shape of the run the buffers were sized for (check_run).
  Index workers_;
  Index dimension_;
  std::vector<Index> units_;          // units_[l - 1]: units at level l; its size is the level count
  std::vector<Index> sample_counts_;  // with a subsample: each shard's sample count at the draw
};

/// `auto probe = hsgd::make_probe(engine, {.gradient_every = 32}, recorder);` then `engine.run(probe)`.
template <class Run, class Recorder>
DivergenceProbe<typename Run::Scalar, Recorder> make_probe(const Run& run, ProbeOptions options, Recorder& recorder) {
  return DivergenceProbe<typename Run::Scalar, Recorder>(run, options, recorder);
}

/// With held-out evaluation: `hsgd::make_probe(engine, {.test_every = 50}, recorder,
/// hsgd::SoftmaxRegression(std::move(test_data)))` records test_loss and test_accuracy at xbar_t.
template <class Run, class Recorder, class HeldOut>
DivergenceProbe<typename Run::Scalar, Recorder, HeldOut> make_probe(const Run& run, ProbeOptions options,
                                                                    Recorder& recorder, HeldOut held_out) {
  return DivergenceProbe<typename Run::Scalar, Recorder, HeldOut>(run, options, recorder, std::move(held_out));
}

}  // namespace hsgd
