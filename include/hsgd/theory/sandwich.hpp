#pragma once
/// @file
/// Does a set of runs show the sandwich? Local SGD with period I <= H-SGD(I, G) <= local SGD with
/// period G, in the time-averaged ||grad f(xbar_t)||^2, over seeds.

#include <cmath>
#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "hsgd/core/error.hpp"
#include "hsgd/core/format.hpp"

namespace hsgd {

/// Mean and standard error of a sample, and of the paired differences between two.
struct SampleMean {
  double mean = 0;
  double standard_error = 0;  ///< s / sqrt(k), s the sample standard deviation (0 for one value)
};

/// Mean and standard error of `values` (at least one, each finite).
inline SampleMean sample_mean(std::span<const double> values) {
  detail::require(!values.empty(), "'values' must not be empty");
  for (std::size_t k = 0; k < values.size(); ++k) {
    detail::require(std::isfinite(values[k]), "'values'[{}] ({}) must be finite", k, values[k]);
  }
  SampleMean result;
  for (const double v : values) result.mean += v / static_cast<double>(values.size());
  if (values.size() < 2) return result;
  double spread = 0;
  for (const double v : values) spread += (v - result.mean) * (v - result.mean);
  result.standard_error = std::sqrt(spread / static_cast<double>(values.size() - 1) / static_cast<double>(values.size()));
  return result;
}

/// The sandwich check on three schemes run over the same seeds: `lower` (local SGD with period
/// I), `middle` (H-SGD with I and G) and `upper` (local SGD with period G), one value per seed,
/// each the run's time-average of ||grad f(xbar_t)||^2. Seeds pair the runs (same data, same
/// sampling), so each gap is judged by the mean and standard error of its per-seed differences.
struct SandwichCheck {
  SampleMean lower, middle, upper;
  SampleMean lower_gap;  ///< middle - lower, per seed
  SampleMean upper_gap;  ///< upper - middle, per seed

  /// The means are ordered: lower <= middle <= upper.
  [[nodiscard]] bool holds() const { return lower.mean <= middle.mean && middle.mean <= upper.mean; }
  /// The ordering holds by at least `z` standard errors of each paired gap.
  [[nodiscard]] bool holds_by(double z) const {
    return lower_gap.mean >= z * lower_gap.standard_error && upper_gap.mean >= z * upper_gap.standard_error;
  }

  /// The three means, the two gaps and whether the means are ordered, on one line (what
  /// formatting the check with fmt gives).
  [[nodiscard]] std::string brief_report() const {
    return fmt::format(
        "sandwich {}: lower {:.4e} (+-{:.1e}) <= middle {:.4e} (+-{:.1e}) <= upper {:.4e} (+-{:.1e}); "
        "gaps {:.3e} (+-{:.1e}) and {:.3e} (+-{:.1e})",
        holds() ? "holds" : "FAILS", lower.mean, lower.standard_error, middle.mean, middle.standard_error, upper.mean,
        upper.standard_error, lower_gap.mean, lower_gap.standard_error, upper_gap.mean, upper_gap.standard_error);
  }
};

/// Builds the check from per-seed values (the same number for each scheme, seed k at index k).
inline SandwichCheck check_sandwich(std::span<const double> lower, std::span<const double> middle,
                                    std::span<const double> upper) {
  detail::require(!lower.empty(), "'lower' must hold at least one seed's value");
  detail::require(middle.size() == lower.size() && upper.size() == lower.size(),
                  "'lower', 'middle' and 'upper' must hold one value per seed each (got {}, {} and {})", lower.size(),
                  middle.size(), upper.size());
  const auto require_finite = [](std::span<const double> values, const char* name) {
    for (std::size_t k = 0; k < values.size(); ++k) {
      detail::require(std::isfinite(values[k]), "'{}'[{}] ({}) must be finite", name, k, values[k]);
    }
  };
  require_finite(lower, "lower");
  require_finite(middle, "middle");
  require_finite(upper, "upper");
  std::vector<double> lower_gap(lower.size());
  std::vector<double> upper_gap(lower.size());
  for (std::size_t k = 0; k < lower.size(); ++k) {
    lower_gap[k] = middle[k] - lower[k];
    upper_gap[k] = upper[k] - middle[k];
  }
  return {sample_mean(lower), sample_mean(middle), sample_mean(upper), sample_mean(lower_gap), sample_mean(upper_gap)};
}

}  // namespace hsgd

/// `fmt::print("{}\n", check)`: the three means and whether they are ordered.
template <>
struct fmt::formatter<hsgd::SandwichCheck> : hsgd::detail::BriefReportFormatter<hsgd::SandwichCheck> {};
