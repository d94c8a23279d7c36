#pragma once
/// @file
/// What a probe measures, and where it goes: an in-memory table or a CSV file.

#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "hsgd/core/error.hpp"
#include "hsgd/core/types.hpp"

namespace hsgd {

/// One probe measurement, taken after step `step`. Gradient-space fields are NaN on steps where
/// only the model space was measured, and the other way round. See DivergenceProbe for the maths.
struct ProbeRecord {
  static constexpr double not_measured = std::numeric_limits<double>::quiet_NaN();

  Index step = 0;   ///< t, the local step just completed
  Index level = 0;  ///< the level that aggregated after this step (0: none)
  double loss = not_measured;                   ///< f(xbar_t) (estimated from the probe's subsample, if any)
  double gradient_norm_squared = not_measured;  ///< ||grad f(xbar_t)||^2
  double d_up = not_measured;                   ///< upward divergence at xbar_t
  double d_down = not_measured;                 ///< downward divergence at xbar_t
  double d_glob = not_measured;                 ///< global divergence, = d_up + d_down
  std::vector<double> gradient_terms;           ///< per-level terms (N levels), summing to d_glob
  std::vector<double> group_d_down;             ///< D_down,i for each level-1 unit
  double d_down_at_group_averages = not_measured;         ///< sum_i W_i D_down,i(xbar^i) (ProbeOptions::at_group_averages)
  std::vector<double> group_d_down_at_group_averages;     ///< D_down,i(xbar^i), group i at its own average
  std::vector<double> group_gradient_norm_squared;        ///< ||grad f_i(xbar^i)||^2
  double c_in = not_measured;                   ///< models vs their level-1 server's average
  double c_up = not_measured;                   ///< level-1 averages vs the global average
  double c = not_measured;                      ///< models vs the global average, = c_in + c_up
  std::vector<double> model_terms;              ///< per-level terms, summing to c
  double max_d_up = 0;                          ///< running maximum of d_up over measurements
  double max_d_down = 0;                        ///< running maximum of d_down over measurements
  std::vector<Index> aggregations;              ///< aggregation rounds per level so far
  Index messages = 0;                           ///< model messages sent so far (up and down)
  std::vector<Index> level_messages;            ///< messages per level so far, summing to messages
  double scalars = 0;                           ///< scalars moved so far (messages x d)
};

namespace detail {
/// A CSV value: the shortest text that reads back as the same double; empty when not measured.
struct CsvCell {
  double value;
};
}  // namespace detail

}  // namespace hsgd

template <>
struct fmt::formatter<hsgd::detail::CsvCell> : fmt::formatter<std::string_view> {
  template <class FormatContext>
  auto format(const hsgd::detail::CsvCell& cell, FormatContext& context) const {
    if (cell.value != cell.value) return context.out();  // NaN: not measured
    return fmt::format_to(context.out(), "{}", cell.value);
  }
};

namespace hsgd {

/// Keeps every record in memory: for tests and for analysis in the same program.
struct MemoryRecorder {
  std::vector<ProbeRecord> rows;
  void record(const ProbeRecord& row) { rows.push_back(row); }
};

/// The mean of `field` over the records that measured it (NaN, not measured, is skipped), e.g.
/// `time_average(memory.rows, &ProbeRecord::gradient_norm_squared)`, the time-averaged
/// ||grad f(xbar_t)||^2 the paper's bounds are about. NaN when no record measured it.
inline double time_average(const std::vector<ProbeRecord>& rows, double ProbeRecord::*field) {
  double sum = 0;
  Index count = 0;
  for (const ProbeRecord& row : rows) {
    if (std::isnan(row.*field)) continue;
    sum += row.*field;
    ++count;
  }
  return count > 0 ? sum / static_cast<double>(count) : ProbeRecord::not_measured;
}

/// Writes one CSV line per record, flushed as it goes, so a long run can be watched and a crash
/// loses nothing. Leading `tags` columns (e.g. scheme and seed) let several runs share a file.
/// The columns, in order: the tags, then
/// `step,level,loss,grad_norm_sq,d_up,d_down,d_glob,c_in,c_up,c,max_d_up,max_d_down,messages,scalars,
/// d_down_at_groups`, then `d_level_0..d_level_{L-1}` and `c_level_0..c_level_{L-1}` (per-level
/// terms) and `messages_level_1..messages_level_L` (messages per aggregation level). Values not
/// measured at a step are empty. L is `levels` if given, else the first record's level count;
/// runs with fewer levels (local SGD next to H-SGD in one file) leave the extra cells empty.
class CsvRecorder {
 public:
  /// Opens `path` for writing (truncating it), names the tag columns, and fixes the per-level
  /// columns to `levels` levels (0: as many as the first record has).
  CsvRecorder(const std::string& path, std::vector<std::string> tag_names, Index levels = 0)
      : file_(std::fopen(path.c_str(), "w")),
        tag_names_(std::move(tag_names)),
        tag_values_(tag_names_.size()),
        levels_(static_cast<std::size_t>(levels)) {
    detail::require(file_ != nullptr, "'path' ({}) cannot be opened for writing", path);
    detail::require(levels >= 0, "'levels' ({}) must be non-negative (0: from the first record)", levels);
  }
  CsvRecorder(const CsvRecorder&) = delete;
  CsvRecorder& operator=(const CsvRecorder&) = delete;
  ~CsvRecorder() {
    if (file_ != nullptr) std::fclose(file_);
  }

  /// Sets the tag values written on the following rows.
  void set_tags(std::vector<std::string> values) {
    detail::require(values.size() == tag_names_.size(), "{} tag values given for {} tag columns", values.size(),
                    tag_names_.size());
    tag_values_ = std::move(values);
  }

  void record(const ProbeRecord& row) {
    if (!header_written_) write_header(row);
    detail::require(row.model_terms.size() <= levels_,
                    "a record with {} levels does not fit the CSV's {} per-level columns: give CsvRecorder the "
                    "largest level count as 'levels'",
                    row.model_terms.size(), levels_);
    for (const auto& tag : tag_values_) fmt::print(file_, "{},", tag);
    fmt::print(file_, "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}", row.step, row.level, cell(row.loss),
               cell(row.gradient_norm_squared), cell(row.d_up), cell(row.d_down), cell(row.d_glob), cell(row.c_in),
               cell(row.c_up), cell(row.c), cell(row.max_d_up), cell(row.max_d_down), row.messages, cell(row.scalars),
               cell(row.d_down_at_group_averages));
    write_levels(row.gradient_terms);
    write_levels(row.model_terms);
    for (std::size_t l = 0; l < levels_; ++l) {
      if (l < row.level_messages.size()) fmt::print(file_, ",{}", row.level_messages[l]);
      else std::fputc(',', file_);
    }
    std::fputc('\n', file_);
    std::fflush(file_);
  }

 private:
  static detail::CsvCell cell(double value) { return detail::CsvCell{value}; }

  /// One cell per level column; levels the record does not have are empty.
  void write_levels(const std::vector<double>& terms) {
    for (std::size_t l = 0; l < levels_; ++l) fmt::print(file_, ",{}", cell(l < terms.size() ? terms[l] : ProbeRecord::not_measured));
  }

  void write_header(const ProbeRecord& row) {
    if (levels_ == 0) levels_ = row.model_terms.size();
    for (const auto& name : tag_names_) fmt::print(file_, "{},", name);
    fmt::print(file_,
               "step,level,loss,grad_norm_sq,d_up,d_down,d_glob,c_in,c_up,c,max_d_up,max_d_down,messages,scalars,"
               "d_down_at_groups");
    for (std::size_t l = 0; l < levels_; ++l) fmt::print(file_, ",d_level_{}", l);
    for (std::size_t l = 0; l < levels_; ++l) fmt::print(file_, ",c_level_{}", l);
    for (std::size_t l = 0; l < levels_; ++l) fmt::print(file_, ",messages_level_{}", l + 1);
    std::fputc('\n', file_);
    header_written_ = true;
  }

  std::FILE* file_;
  std::vector<std::string> tag_names_;
  std::vector<std::string> tag_values_;
  std::size_t levels_;
  bool header_written_ = false;
};

}  // namespace hsgd

/// `fmt::print("{}\n", record)`: a one-line account of a probe record.
template <>
struct fmt::formatter<hsgd::ProbeRecord> : fmt::formatter<std::string_view> {
  template <class FormatContext>
  auto format(const hsgd::ProbeRecord& r, FormatContext& context) const {
    return fmt::format_to(context.out(),
                          "step {}: f = {:.6g}, ||grad f||^2 = {:.4g}, D_up = {:.4g}, D_down = {:.4g}, D_glob = {:.4g}, "
                          "C_in = {:.4g}, C_up = {:.4g}",
                          r.step, r.loss, r.gradient_norm_squared, r.d_up, r.d_down, r.d_glob, r.c_in, r.c_up);
  }
};
