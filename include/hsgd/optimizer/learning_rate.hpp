#pragma once
/// @file
/// Learning-rate schedules: the step size at local step t, from the base rate gamma.

#include <cmath>
#include <concepts>

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
  [[nodiscard]] double rate(double base, Index /*step*/) const { return base; }
  void validate() const {}
};

/// gamma_t = gamma * factor^floor((t - 1) / every): multiply by `factor` every `every` steps.
struct StepDecay {
  double factor = 0.1;  ///< in (0, 1]
  Index every = 1000;   ///< steps between decays, positive

  [[nodiscard]] double rate(double base, Index step) const {
    return base * std::pow(factor, static_cast<double>((step - 1) / every));
  }
  void validate() const {
    detail::require(std::isfinite(factor) && factor > 0 && factor <= 1, "'factor' ({}) must be in (0, 1]", factor);
    detail::require(every > 0, "'every' ({}) must be positive", every);
  }
};

/// gamma_t = gamma / sqrt(1 + (t - 1) / time_scale): gamma at the start, decaying like 1/sqrt(t).
struct InverseSqrtDecay {
  double time_scale = 1000.0;  ///< steps until the rate has dropped by sqrt(2), positive

  [[nodiscard]] double rate(double base, Index step) const {
    return base / std::sqrt(1.0 + static_cast<double>(step - 1) / time_scale);
  }
  void validate() const {
    detail::require(std::isfinite(time_scale) && time_scale > 0, "'time_scale' ({}) must be finite and positive",
                    time_scale);
  }
};

}  // namespace hsgd
