#pragma once
/// @file
/// Observers: optional hooks a run calls as it goes.

#include <concepts>
#include <type_traits>
#include <utility>

#include "hsgd/core/error.hpp"
#include "hsgd/core/types.hpp"

namespace hsgd {

namespace observer_requirements {

template <class O, class Run>
concept has_after_step = requires(O& o, const Run& run) { o.after_step(run); };

template <class O, class Run>
concept has_after_aggregation = requires(O& o, const Run& run, Index level) { o.after_aggregation(run, level); };

template <class Result>
concept void_or_bool = std::is_void_v<Result> || std::same_as<Result, bool>;

}  // namespace observer_requirements

/// Something that watches a run. It has one or both of
///
/// - `after_step(const Engine& run)`: after every step t, once the step and any aggregation in it
///   are done (run.step_count() == t);
/// - `after_aggregation(const Engine& run, Index level)`: right after the level-`level` servers
///   have averaged, before the same step's `after_step`;
///
/// each returning void, or bool where true stops the run after the current step (like
/// ensmallen's callbacks). Observers only read: they cannot change the trajectory.
template <class O, class Run>
concept Observer = observer_requirements::has_after_step<O, Run> || observer_requirements::has_after_aggregation<O, Run>;

namespace detail {

/// Calls the hook if present; true when it asked to stop.
template <class O, class Run>
bool notify_step(O& observer, const Run& run) {
  if constexpr (observer_requirements::has_after_step<O, Run>) {
    using Result = decltype(observer.after_step(run));
    static_assert(observer_requirements::void_or_bool<Result>, "hsgd Observer: `after_step` must return void or bool");
    if constexpr (std::is_void_v<Result>) {
      observer.after_step(run);
    } else {
      return observer.after_step(run);
    }
  }
  return false;
}

template <class O, class Run>
bool notify_aggregation(O& observer, const Run& run, Index level) {
  if constexpr (observer_requirements::has_after_aggregation<O, Run>) {
    using Result = decltype(observer.after_aggregation(run, level));
    static_assert(observer_requirements::void_or_bool<Result>,
                  "hsgd Observer: `after_aggregation` must return void or bool");
    if constexpr (std::is_void_v<Result>) {
      observer.after_aggregation(run, level);
    } else {
      return observer.after_aggregation(run, level);
    }
  }
  return false;
}

/// Checked on the types as passed, so a const observer whose hooks are not const is an error
/// rather than silently never called.
template <class Run, class... Observers>
consteval bool check_observers() {
  static_assert((Observer<std::remove_reference_t<Observers>, Run> && ...),
                "hsgd Observer: each observer needs `after_step(const Engine&)` and/or "
                "`after_aggregation(const Engine&, hsgd::Index level)`, returning void or bool (true stops), "
                "callable on the observer as passed (a const observer needs const hooks)");
  return true;
}

/// Tells every observer, in the order given and each exactly once (so a recorder passed after a
/// probe sees the probe's measurement), that a step ended after an aggregation at `level` (0:
/// none). True when any asked to stop.
template <class Run, class... Observers>
bool notify(const Run& run, Index level, Observers&... observers) {
  bool stop = false;
  if (level > 0) ((stop = notify_aggregation(observers, run, level) || stop), ...);
  ((stop = notify_step(observers, run) || stop), ...);
  return stop;
}

}  // namespace detail

/// Observer that calls `callback(run)` after every `period`-th step (steps period, 2 period, ...).
/// The callback returns void, or bool where true stops the run. Made by `every()`.
template <class Callback>
class Every {
 public:
  Every(Index period, Callback callback) : period_(period), callback_(std::move(callback)) {
    detail::require(period > 0, "'period' ({}) must be positive", period);
  }

  template <class Run>
  bool after_step(const Run& run) {
    if (run.step_count() % period_ != 0) return false;
    if constexpr (std::is_void_v<std::invoke_result_t<Callback&, const Run&>>) {
      callback_(run);
      return false;
    } else {
      return static_cast<bool>(callback_(run));
    }
  }

 private:
  Index period_;
  Callback callback_;
};

/// `engine.run(hsgd::every(100, [](const auto& run) { ... }))`: a callback every 100 steps.
template <class Callback>
Every<std::decay_t<Callback>> every(Index period, Callback&& callback) {
  return Every<std::decay_t<Callback>>(period, std::forward<Callback>(callback));
}

}  // namespace hsgd
