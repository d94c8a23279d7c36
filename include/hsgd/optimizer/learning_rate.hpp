#pragma once
/// @file
/// Learning-rate schedules: the step size at local step t, from the base rate gamma.

#include <cmath>
#include <concepts>

#include "hsgd/checkpoint/archive.hpp"
#include "hsgd/core/error.hpp"
#include "hsgd/core/types.hpp"

namespace hsgd {

namespace learning_rate_requirements {

template <class R>
concept has_rate = requires(const R& r, double base, Index step) {
  { r.rate(base, step) } -> std::convertible_to<double>;
};

template <class R>
concept has_validate = requires(const R& r) { r.validate(); };

}  // namespace learning_rate_requirements

namespace detail {

/// Steps are 1-indexed; below 1, t - 1 is negative (and for the least Index it overflows).
inline void require_step(Index step) { require(step >= 1, "'step' ({}) must be at least 1", step); }

}  // namespace detail

/// A schedule maps the base learning rate gamma (Options::learning_rate) and the 1-indexed local
/// step t to the rate used at step t.
///
/// - `double rate(double base, Index step) const`;
/// - `void validate() const`: throws InvalidArgument naming a bad parameter.
template <class R>
concept LearningRateSchedule = learning_rate_requirements::has_rate<R> && learning_rate_requirements::has_validate<R>;

/// Compile-time check with readable messages.
template <class R>
consteval bool check_learning_rate_schedule() {
  using namespace learning_rate_requirements;
  static_assert(has_rate<R>, "hsgd LearningRateSchedule: missing `double rate(double base, hsgd::Index step) const`");
  static_assert(has_validate<R>, "hsgd LearningRateSchedule: missing `void validate() const`");
  return LearningRateSchedule<R>;
}

/// gamma_t = gamma: the setting of the paper's analysis.
struct ConstantRate {
  /// gamma; throws InvalidArgument unless step >= 1.
  [[nodiscard]] double rate(double base, Index step) const {
    detail::require_step(step);
    return base;
  }
  void validate() const {}
};

/// gamma_t = gamma * factor^floor((t - 1) / every): multiply by `factor` every `every` steps.
struct StepDecay {
  double factor = 0.1;  ///< in (0, 1]
  Index every = 1000;   ///< steps between decays, positive

  /// gamma_t for t = step >= 1. Checks the parameters itself (a few comparisons, once per step):
  /// it is callable without validate(), and every = 0 would divide by zero. The power is taken in
  /// double, where factor^k for any k up to 2^63 is defined: it underflows to 0 at worst.
  [[nodiscard]] double rate(double base, Index step) const {
    detail::require_step(step);
    validate();
    return base * std::pow(factor, static_cast<double>((step - 1) / every));
  }
  void validate() const {
    detail::require(std::isfinite(factor) && factor > 0 && factor <= 1, "'factor' ({}) must be in (0, 1]", factor);
    detail::require(every > 0, "'every' ({}) must be positive", every);
  }

  /// The rate depends on the step alone (which the run's state saves); a checkpoint compares
  /// the parameters.
  [[nodiscard]] CheckpointSettings checkpoint_settings() const { return {{"decay factor", factor}, {"decay every", every}}; }
};

/// gamma_t = gamma / sqrt(1 + (t - 1) / time_scale): gamma at the start, decaying like 1/sqrt(t).
struct InverseSqrtDecay {
  double time_scale = 1000.0;  ///< steps until the rate has dropped by sqrt(2), positive

  /// gamma_t for t = step >= 1; checks the parameters itself, as StepDecay::rate.
  [[nodiscard]] double rate(double base, Index step) const {
    detail::require_step(step);
    validate();
    return base / std::sqrt(1.0 + static_cast<double>(step - 1) / time_scale);
  }
  void validate() const {
    detail::require(std::isfinite(time_scale) && time_scale > 0, "'time_scale' ({}) must be finite and positive",
                    time_scale);
  }

  /// A checkpoint compares the time scale, as StepDecay's parameters.
  [[nodiscard]] CheckpointSettings checkpoint_settings() const { return {{"decay time scale", time_scale}}; }
};

}  // namespace hsgd
