#pragma once
/// @file
/// What a run reports when it ends.

#include <cmath>
#include <iterator>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include <fmt/format.h>

#include "hsgd/core/types.hpp"

namespace hsgd {

/// The outcome of `Engine::run()`. `brief_report()` (or formatting the summary with fmt) gives
/// a two-line account.
struct Summary {
  Index workers = 0;                  ///< n
  std::vector<Index> periods;         ///< P_1..P_L
  Index steps = 0;                    ///< local steps each worker has taken, in all
  std::vector<Index> aggregations;    ///< aggregations[l - 1]: rounds in which level l aggregated
  Index regroupings = 0;              ///< grouping draws after the first
  double loss = std::numeric_limits<double>::quiet_NaN();  ///< f(xbar) at the end
  double gradient_norm_squared = std::numeric_limits<double>::quiet_NaN();  ///< ||grad f(xbar)||^2 at the end
  double seconds = 0;                 ///< wall time of run()
  double simulated_seconds = std::numeric_limits<double>::quiet_NaN();  ///< a SimulatedClock's time after the run (NaN: no clock)
  Index dropped_by_deadlines = 0;     ///< round members a SimulatedClock's deadlines left out
  bool stopped_by_observer = false;   ///< an observer returned true

  [[nodiscard]] std::string brief_report() const {
    std::string out = fmt::format("hsgd: {} workers, {} steps, periods [{}]; aggregations per level [{}]",
                                  workers, steps, fmt::join(periods, ", "), fmt::join(aggregations, ", "));
    if (regroupings > 0) fmt::format_to(std::back_inserter(out), "; {} regroupings", regroupings);
    if (stopped_by_observer) out += "; stopped by an observer";
    fmt::format_to(std::back_inserter(out), "\n      f(xbar) = {:.6g}, ||grad f(xbar)||^2 = {:.6g}, {:.3f} s", loss,
                   gradient_norm_squared, seconds);
    if (!std::isnan(simulated_seconds))
      fmt::format_to(std::back_inserter(out), ", {:.6g} s simulated", simulated_seconds);
    if (dropped_by_deadlines > 0)
      fmt::format_to(std::back_inserter(out), ", {} left out by deadlines", dropped_by_deadlines);
    return out;
  }
};

/// The Summary of `run` (an Engine) after a run() of `seconds` that an observer stopped or not.
/// Collective under a distributed backend (it evaluates f and grad f at the global average).
template <class Run>
Summary summarize(const Run& run, double seconds, bool stopped) {
  Summary result;
  result.workers = run.workers();
  result.periods = run.topology().periods();
  result.steps = run.step_count();
  result.aggregations.assign(run.aggregation_counts().begin(), run.aggregation_counts().end());
  result.regroupings = run.regroupings();
  const auto average = run.global_average();
  result.loss = static_cast<double>(run.loss(average));
  result.gradient_norm_squared = static_cast<double>(run.gradient(average).squaredNorm());
  result.seconds = seconds;
  if constexpr (std::remove_cvref_t<decltype(run.clock())>::simulates) {
    result.simulated_seconds = run.clock().seconds();
    result.dropped_by_deadlines = run.clock().dropped();
  }
  result.stopped_by_observer = stopped;
  return result;
}

}  // namespace hsgd

/// `fmt::print("{}\n", summary)` prints the brief report.
template <>
struct fmt::formatter<hsgd::Summary> : fmt::formatter<std::string> {
  template <class FormatContext>
  auto format(const hsgd::Summary& summary, FormatContext& context) const {
    return fmt::formatter<std::string>::format(summary.brief_report(), context);
  }
};
