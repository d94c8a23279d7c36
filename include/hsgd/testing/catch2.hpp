#pragma once
/// @file
/// Catch2 matchers for unit-testing convergence properties in research code. Optional: include
/// it only where Catch2 is available (CMake: link `hsgd::testing`, defined when Catch2 is found).
/// Works with Catch2 v2 (`<catch2/catch.hpp>`) and v3.
///
///   hsgd::MemoryRecorder memory;
///   auto probe = hsgd::make_probe(engine, {.gradient_every = 8}, memory);
///   engine.run(probe);
///   CHECK_THAT(memory.rows, hsgd::testing::MeanGradientNormBelow(1e-3));
///   CHECK_THAT(memory.rows.back(), hsgd::testing::SatisfiesDivergenceIdentity());
///   CHECK_THAT(hsgd::check_sandwich(local_i, hsgd_runs, local_g), hsgd::testing::ShowsSandwich(2.0));

#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include <fmt/format.h>

#if __has_include(<catch2/catch.hpp>)
#include <catch2/catch.hpp>
#else
#include <catch2/matchers/catch_matchers.hpp>
#endif

#include "hsgd/probe/record.hpp"
#include "hsgd/theory/sandwich.hpp"

namespace hsgd::testing {

namespace detail {
#if __has_include(<catch2/catch.hpp>)
template <class T>
using MatcherBase = Catch::MatcherBase<T>;
#else
template <class T>
using MatcherBase = Catch::Matchers::MatcherBase<T>;
#endif

/// |a - b| <= relative max(|a|, |b|) + absolute.
inline bool close(double a, double b, double relative, double absolute) {
  return std::abs(a - b) <= relative * std::max(std::abs(a), std::abs(b)) + absolute;
}

inline double sum(const std::vector<double>& values) { return std::accumulate(values.begin(), values.end(), 0.0); }
}  // namespace detail

/// Matches probe records whose time-averaged ||grad f(xbar_t)||^2 (over the records that
/// measured it) is at most `bound`, e.g. a BoundTerms::total() or a tolerance from theory.
class MeanGradientNormBelow : public detail::MatcherBase<std::vector<ProbeRecord>> {
 public:
  explicit MeanGradientNormBelow(double bound) : bound_(bound) {}

  bool match(const std::vector<ProbeRecord>& rows) const override {
    mean_ = time_average(rows, &ProbeRecord::gradient_norm_squared);
    return !std::isnan(mean_) && mean_ <= bound_;
  }

  std::string describe() const override {
    return std::isnan(mean_) ? fmt::format("has a mean ||grad f(xbar_t)||^2 <= {:.4e} (no record measured it)", bound_)
                             : fmt::format("has a mean ||grad f(xbar_t)||^2 <= {:.4e} (it is {:.4e})", bound_, mean_);
  }

 private:
  double bound_;
  mutable double mean_ = ProbeRecord::not_measured;
};

/// Matches a SandwichCheck whose means are ordered lower <= middle <= upper and, with z > 0,
/// whose paired gaps are each at least z standard errors (a margin against seed noise).
class ShowsSandwich : public detail::MatcherBase<SandwichCheck> {
 public:
  explicit ShowsSandwich(double z = 0) : z_(z) {}

  bool match(const SandwichCheck& check) const override { return check.holds() && check.holds_by(z_); }

  std::string describe() const override {
    return fmt::format("shows the sandwich lower <= middle <= upper{}",
                       z_ > 0 ? fmt::format(" by {} standard errors of each paired gap", z_) : "");
  }

 private:
  double z_;
};

/// Matches a probe record whose divergences add up: D_up + D_down = D_glob, the per-level terms
/// sum to D_glob, C_in + C_up = C and the model terms sum to C, each to `relative` plus
/// `absolute` (fields not measured in the record are skipped). The absolute floor is for the
/// steps right after an aggregation, where the spreads are round-off (about 1e-32 ||x||^2) and
/// no relative tolerance can hold.
class SatisfiesDivergenceIdentity : public detail::MatcherBase<ProbeRecord> {
 public:
  explicit SatisfiesDivergenceIdentity(double relative = 1e-12, double absolute = 1e-20)
      : relative_(relative), absolute_(absolute) {}

  bool match(const ProbeRecord& r) const override {
    const auto close = [this](double a, double b) { return detail::close(a, b, relative_, absolute_); };
    const bool gradients = std::isnan(r.d_glob) || (close(r.d_up + r.d_down, r.d_glob) &&
                                                     close(detail::sum(r.gradient_terms), r.d_glob));
    const bool models =
        std::isnan(r.c) || (close(r.c_in + r.c_up, r.c) && close(detail::sum(r.model_terms), r.c));
    return gradients && models;
  }

  std::string describe() const override {
    return fmt::format("satisfies D_up + D_down = D_glob and C_in + C_up = C (and per level) to {:g} relative + {:g}",
                       relative_, absolute_);
  }

 private:
  double relative_;
  double absolute_;
};

}  // namespace hsgd::testing

/// How Catch prints the matched values in a failure report: through hsgd's fmt formatters, and a
/// table of records by its size rather than element by element.
template <>
struct Catch::StringMaker<hsgd::ProbeRecord> {
  static std::string convert(const hsgd::ProbeRecord& record) { return fmt::format("{}", record); }
};
template <>
struct Catch::StringMaker<std::vector<hsgd::ProbeRecord>> {
  static std::string convert(const std::vector<hsgd::ProbeRecord>& rows) {
    return fmt::format("{} probe records", rows.size());
  }
};
template <>
struct Catch::StringMaker<hsgd::SandwichCheck> {
  static std::string convert(const hsgd::SandwichCheck& check) { return fmt::format("{}", check); }
};
