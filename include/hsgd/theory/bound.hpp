#pragma once
/// @file
/// The paper-shaped convergence bound for local SGD, two-level and N-level H-SGD, as a
/// calculator: feed it the problem's constants and the divergence bounds, read the terms.

#include <cmath>
#include <cstddef>
#include <numeric>
#include <span>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "hsgd/core/error.hpp"
#include "hsgd/core/format.hpp"
#include "hsgd/core/types.hpp"
#include "hsgd/theory/closed_forms.hpp"
#include "hsgd/topology/topology.hpp"

namespace hsgd {

/// What the bound needs to know about the problem: measure or estimate them (the probes' running
/// maxima give the divergence bounds; see estimate_smoothness and estimate_gradient_noise).
struct ProblemConstants {
  double initial_gap = 1.0;     ///< f(x_0) - f*, >= 0
  double smoothness = 1.0;      ///< L, the smoothness constant of every F_j, > 0
  double noise_variance = 0.0;  ///< sigma^2, variance of one worker's minibatch gradient, >= 0

  void validate() const {
    detail::require(std::isfinite(initial_gap) && initial_gap >= 0, "'initial_gap' ({}) must be finite and non-negative",
                    initial_gap);
    detail::require(std::isfinite(smoothness) && smoothness > 0, "'smoothness' ({}) must be finite and positive",
                    smoothness);
    detail::require(std::isfinite(noise_variance) && noise_variance >= 0,
                    "'noise_variance' ({}) must be finite and non-negative", noise_variance);
  }
};

/// The numerical constants of the bound. The paper's exact constants could not be checked
/// against its full text, so they are parameters: what hsgd asserts is the SHAPE of the bound
/// (which quantity is paid at which period), and comparisons between schemes with the same
/// constants. The defaults are placeholders of the right order, not the paper's values.
struct BoundConstants {
  double optimization = 2.0;  ///< a in a (f(x_0) - f*) / (gamma T)
  double noise = 1.0;         ///< b in b gamma L sigma^2 / n
  double drift = 1.0;         ///< c in c gamma^2 L^2 [ ... ], the price of the models drifting apart
  /// The bound is stated for gamma L P_L <= step_limit (a learning rate of order 1/(G L)).
  double step_limit = 0.125;

  void validate() const {
    detail::require(std::isfinite(optimization) && optimization > 0, "'optimization' ({}) must be finite and positive",
                    optimization);
    detail::require(std::isfinite(noise) && noise >= 0, "'noise' ({}) must be finite and non-negative", noise);
    detail::require(std::isfinite(drift) && drift >= 0, "'drift' ({}) must be finite and non-negative", drift);
    detail::require(std::isfinite(step_limit) && step_limit > 0, "'step_limit' ({}) must be finite and positive",
                    step_limit);
  }
};

/// The bound on (1/T) sum_t E||grad f(xbar_t)||^2, term by term:
///
///   a (f(x_0) - f*)/(gamma T) + b gamma L sigma^2 / n
///     + c gamma^2 L^2 [ sigma^2 sum_l (P_l - 1) kappa_l + sum_l P_l^2 eps_l^2 ],
///
/// kappa_l = (N_{l-1} - N_l)/n (noise_spread_factors) and eps_l^2 a bound on level l's divergence
/// term (eps_1^2 = eps_down^2, eps_L^2 = eps_up^2 in two levels). In two levels the bracket is the
/// paper's sigma^2 ((I-1)(1 - N/n) + (G-1)(N-1)/n) + I^2 eps_down^2 + G^2 eps_up^2: downward
/// divergence is paid at the local period, upward divergence at the global one.
struct BoundTerms {
  double optimization = 0;              ///< a (f(x_0) - f*)/(gamma T)
  double noise = 0;                     ///< b gamma L sigma^2 / n
  std::vector<double> drift_noise;      ///< per level: c gamma^2 L^2 sigma^2 (P_l - 1) kappa_l
  std::vector<double> drift_divergence; ///< per level: c gamma^2 L^2 P_l^2 eps_l^2
  /// gamma L P_L <= step_limit: the regime the bound is stated for.
  bool step_condition_holds = false;

  [[nodiscard]] double total() const {
    return optimization + noise + std::accumulate(drift_noise.begin(), drift_noise.end(), 0.0) +
           std::accumulate(drift_divergence.begin(), drift_divergence.end(), 0.0);
  }

  /// The bound and its parts on one line (what formatting the terms with fmt gives).
  [[nodiscard]] std::string brief_report() const {
    const auto scientific = [](double term) { return fmt::format("{:.3e}", term); };
    return fmt::format(
        "bound {:.4e} = optimization {:.3e} + noise {:.3e} + drift from noise [{}] + drift from divergence [{}]{}",
        total(), optimization, noise, detail::joined(drift_noise, ", ", scientific),
        detail::joined(drift_divergence, ", ", scientific),
        step_condition_holds ? "" : " (learning rate above the bound's step condition)");
  }
};

/// The bound for an N-level H-SGD run over `topology` with learning rate gamma for T steps;
/// `divergence_bounds[l-1]` = eps_l^2 bounds level l's divergence term (one per level).
inline BoundTerms hsgd_bound(const Topology& topology, double learning_rate, Index steps, const ProblemConstants& problem,
                             std::span<const double> divergence_bounds, const BoundConstants& constants = {}) {
  problem.validate();
  constants.validate();
  detail::require(std::isfinite(learning_rate) && learning_rate > 0, "'learning_rate' ({}) must be finite and positive",
                  learning_rate);
  detail::require(steps > 0, "'steps' ({}) must be positive", steps);
  detail::require(static_cast<Index>(divergence_bounds.size()) == topology.levels(),
                  "'divergence_bounds' has {} entries but the topology has {} levels", divergence_bounds.size(),
                  topology.levels());
  const double gamma = learning_rate;
  const double smoothness = problem.smoothness;
  const double drift_scale = constants.drift * gamma * gamma * smoothness * smoothness;
  const std::vector<double> kappa = noise_spread_factors(topology);
  // A term whose problem-side factor (sigma^2, eps^2) is 0 is 0, even where the scale gamma L
  // or gamma^2 L^2 overflows: inf * 0 would be NaN.
  const auto scaled = [](double factor, double scale) { return factor == 0 ? 0.0 : factor * scale; };

  BoundTerms terms;
  terms.optimization = constants.optimization * problem.initial_gap / (gamma * static_cast<double>(steps));
  terms.noise = scaled(constants.noise * problem.noise_variance / static_cast<double>(topology.workers()),
                       gamma * smoothness);
  for (Index level = 1; level <= topology.levels(); ++level) {
    const auto l = static_cast<std::size_t>(level - 1);
    const double eps_squared = divergence_bounds[l];
    detail::require(std::isfinite(eps_squared) && eps_squared >= 0,
                    "'divergence_bounds'[{}] ({}) must be finite and non-negative", l, eps_squared);
    const auto period = static_cast<double>(topology.period(level));
    terms.drift_noise.push_back(scaled(problem.noise_variance * (period - 1) * kappa[l], drift_scale));
    terms.drift_divergence.push_back(scaled(period * period * eps_squared, drift_scale));
  }
  terms.step_condition_holds =
      gamma * smoothness * static_cast<double>(topology.period(topology.levels())) <= constants.step_limit;
  // Every input is finite, but their products need not be: a bound that overflows says nothing.
  detail::require(std::isfinite(terms.total()),
                  "the bound overflows (total {}): 'learning_rate' ({}), 'smoothness' ({}), 'initial_gap' ({}) or the "
                  "divergence bounds are too large for a double",
                  terms.total(), learning_rate, problem.smoothness, problem.initial_gap);
  return terms;
}

/// Local SGD with period P over n workers, the global divergence bounded by eps^2:
/// a (f(x_0) - f*)/(gamma T) + b gamma L sigma^2/n + c gamma^2 L^2 [sigma^2 (P-1)(1 - 1/n) + P^2 eps^2].
inline BoundTerms local_sgd_bound(Index workers, Index period, double learning_rate, Index steps,
                                  const ProblemConstants& problem, double global_divergence_bound,
                                  const BoundConstants& constants = {}) {
  detail::require(std::isfinite(global_divergence_bound) && global_divergence_bound >= 0,
                  "'global_divergence_bound' ({}) must be finite and non-negative", global_divergence_bound);
  const double bounds[] = {global_divergence_bound};
  return hsgd_bound(Topology::local_sgd(workers, period), learning_rate, steps, problem, bounds, constants);
}

/// Two-level H-SGD (n workers in N near-equal groups, periods I | G), D_down <= eps_down^2 and
/// D_up <= eps_up^2. With I == G there is one aggregation level, local SGD with period G, whose
/// divergence is bounded by eps_down^2 + eps_up^2.
inline BoundTerms two_level_bound(Index workers, Index groups, Index local_period, Index global_period,
                                  double learning_rate, Index steps, const ProblemConstants& problem,
                                  double downward_divergence_bound, double upward_divergence_bound,
                                  const BoundConstants& constants = {}) {
  detail::require(std::isfinite(downward_divergence_bound) && downward_divergence_bound >= 0,
                  "'downward_divergence_bound' ({}) must be finite and non-negative", downward_divergence_bound);
  detail::require(std::isfinite(upward_divergence_bound) && upward_divergence_bound >= 0,
                  "'upward_divergence_bound' ({}) must be finite and non-negative", upward_divergence_bound);
  const Topology topology = Topology::two_level(workers, groups, local_period, global_period);
  if (topology.levels() == 1) {
    return local_sgd_bound(workers, global_period, learning_rate, steps, problem,
                           downward_divergence_bound + upward_divergence_bound, constants);
  }
  const double bounds[] = {downward_divergence_bound, upward_divergence_bound};
  return hsgd_bound(topology, learning_rate, steps, problem, bounds, constants);
}

/// The bound in expectation over a random grouping, given only a bound eps^2 on the global
/// divergence: level l's term is bounded by its share (N_{l-1} - N_l)/(n - 1) eps^2
/// (random_grouping_shares). Both sums in the bracket are then weighted averages over the levels
/// (the noise weights kappa_l sum to 1 - 1/n, the shares to 1), so the result lies between local
/// SGD with period P_1 and with period P_L: the sandwich.
inline BoundTerms random_grouping_bound(const Topology& topology, double learning_rate, Index steps,
                                        const ProblemConstants& problem, double global_divergence_bound,
                                        const BoundConstants& constants = {}) {
  detail::require(std::isfinite(global_divergence_bound) && global_divergence_bound >= 0,
                  "'global_divergence_bound' ({}) must be finite and non-negative", global_divergence_bound);
  std::vector<double> bounds = random_grouping_shares(topology);
  for (double& bound : bounds) bound *= global_divergence_bound;
  return hsgd_bound(topology, learning_rate, steps, problem, bounds, constants);
}

}  // namespace hsgd

/// `fmt::print("{}\n", terms)`: the bound and its parts.
template <>
struct fmt::formatter<hsgd::BoundTerms> : hsgd::detail::BriefReportFormatter<hsgd::BoundTerms> {};
