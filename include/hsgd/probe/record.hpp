#pragma once
/// @file
/// What a probe measures: the record, its fields declared once, and a recorder that keeps
/// records in memory (csv.hpp writes them to a file).

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "hsgd/checkpoint/archive.hpp"
#include "hsgd/core/error.hpp"
#include "hsgd/core/types.hpp"

namespace hsgd {

/// One probe measurement, taken after step `step`. See DivergenceProbe for the maths.
///
/// **Not measured vs measured NaN.** Gradient-space fields are `not_measured` on steps where only
/// the model space was measured, and the other way round. `not_measured` is itself a quiet NaN, so
/// `std::isnan` is true for it and code that treats every NaN as "no value" keeps working, but it
/// carries a payload of its own (bits `0x7FF84E4D00000000`) that no arithmetic produces: a NaN that
/// a measurement actually yielded (a diverged run, a 0/0) has the platform's default payload. Use
/// `hsgd::is_measured(value)` to tell the two apart; it compares bits (ignoring the sign), so it
/// holds for a copied or negated `not_measured` too. `time_average` skips only `not_measured`
/// values, and CsvRecorder writes `not_measured` as an empty cell and a measured NaN as `nan`.
/// Arithmetic with `not_measured` propagates its payload (on x86-64 and AArch64), so a sum of
/// a not-measured field stays not measured rather than posing as a measured NaN.
struct ProbeRecord {
  /// The "no measurement at this step" marker: a quiet NaN with a distinctive payload.
  static constexpr double not_measured = std::bit_cast<double>(std::uint64_t{0x7FF8'4E4D'0000'0000});

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
  double test_loss = not_measured;              ///< F_test(xbar_t), the held-out objective at the global average
  double test_accuracy = not_measured;          ///< its accuracy on the held-out samples (objectives with accuracy())
  double sim_seconds = not_measured;            ///< simulated time after step t (a run with a SimulatedClock)
  double sim_compute_seconds = not_measured;    ///< its part spent in local steps, along the critical path (ClockReading)
  double sim_wait_seconds = not_measured;       ///< its part spent waiting for rounds' slowest participants
  double sim_dropped = not_measured;            ///< members a deadline left out of rounds so far (a count)
  std::vector<double> sim_communication_seconds;  ///< its part spent in level-l rounds, l = 1..L
};

/// False exactly for ProbeRecord::not_measured (whatever its sign); true for every number,
/// infinity and any other NaN, in particular a NaN that a measurement produced.
[[nodiscard]] constexpr bool is_measured(double value) noexcept {
  constexpr std::uint64_t magnitude = ~(std::uint64_t{1} << 63);  // the sign bit does not matter
  return (std::bit_cast<std::uint64_t>(value) & magnitude) != std::bit_cast<std::uint64_t>(ProbeRecord::not_measured);
}


/// One field of a ProbeRecord, as the field list declares it (see for_each_field).
struct RecordField {
  /// Its name: the CSV column (a per-level list's columns are the name followed by the level).
  std::string_view name;
  /// For a per-level list: the number of its first column (0 for d_level_0, 1 for
  /// messages_level_1); -1 for a single value.
  int first_level = -1;
  /// Whether the CSV shows it.
  bool in_csv = true;
  /// Whether its value is at most the record's level count (the level of a record).
  bool a_level = false;
};

/// Every field of a ProbeRecord, declared once: `visit(field, value)` for each in turn, the single
/// values first (in the order of the CSV's columns), then the per-level lists, then what the CSV
/// does not show. The CSV's header and rows and a record's part of a checkpoint all come from
/// this list, so a field added here is written, saved and loaded everywhere.
template <class Record, class Visit>
void for_each_field(Record& r, Visit&& visit) {
  visit(RecordField{"step"}, r.step);
  visit(RecordField{"level", -1, true, true}, r.level);
  visit(RecordField{"loss"}, r.loss);
  visit(RecordField{"grad_norm_sq"}, r.gradient_norm_squared);
  visit(RecordField{"d_up"}, r.d_up);
  visit(RecordField{"d_down"}, r.d_down);
  visit(RecordField{"d_glob"}, r.d_glob);
  visit(RecordField{"c_in"}, r.c_in);
  visit(RecordField{"c_up"}, r.c_up);
  visit(RecordField{"c"}, r.c);
  visit(RecordField{"max_d_up"}, r.max_d_up);
  visit(RecordField{"max_d_down"}, r.max_d_down);
  visit(RecordField{"messages"}, r.messages);
  visit(RecordField{"scalars"}, r.scalars);
  visit(RecordField{"d_down_at_groups"}, r.d_down_at_group_averages);
  visit(RecordField{"test_loss"}, r.test_loss);
  visit(RecordField{"test_accuracy"}, r.test_accuracy);
  visit(RecordField{"sim_seconds"}, r.sim_seconds);
  visit(RecordField{"sim_compute_seconds"}, r.sim_compute_seconds);
  visit(RecordField{"sim_wait_seconds"}, r.sim_wait_seconds);
  visit(RecordField{"sim_dropped"}, r.sim_dropped);
  visit(RecordField{"d_level_", 0}, r.gradient_terms);
  visit(RecordField{"c_level_", 0}, r.model_terms);
  visit(RecordField{"messages_level_", 1}, r.level_messages);
  visit(RecordField{"sim_comm_level_", 1}, r.sim_communication_seconds);
  visit(RecordField{"group_d_down", 0, false}, r.group_d_down);
  visit(RecordField{"group_d_down_at_groups", 0, false}, r.group_d_down_at_group_averages);
  visit(RecordField{"group_grad_norm_sq", 0, false}, r.group_gradient_norm_squared);
  visit(RecordField{"aggregations", 1, false}, r.aggregations);
}

namespace detail {

/// A record's part of a checkpoint, every field bit for bit; `limit` bounds its level and the
/// length of its lists (a damaged count cannot make it allocate without bound). With `shape`, a
/// loaded list must have the length of the same list of `shape` (a probe's own record).
template <class Archive>
void visit_record(Archive& archive, ProbeRecord& record, Index limit, const ProbeRecord* shape = nullptr) {
  constexpr Index largest = Index{1} << 62;  // room to keep counting without overflow
  std::vector<std::size_t> lengths;
  if (shape != nullptr) {
    for_each_field(*shape, [&](const RecordField&, const auto& value) {
      if constexpr (!std::is_arithmetic_v<std::remove_cvref_t<decltype(value)>>) lengths.push_back(value.size());
    });
  }
  std::size_t list = 0;
  const auto check_length = [&](std::size_t length) {
    if (shape == nullptr) return;
    archive.check(length == lengths[list], "a probe record has {} entries where this probe has {}", length,
                  lengths[list]);
    ++list;
  };
  for_each_field(record, [&](const RecordField& field, auto& value) {
    using Value = std::remove_cvref_t<decltype(value)>;
    if constexpr (std::is_same_v<Value, Index>) archive.index(field.name, value, 0, field.a_level ? limit : largest);
    else if constexpr (std::is_same_v<Value, double>) archive.real(field.name, value);
    else if constexpr (std::is_same_v<Value, std::vector<double>>) check_length(archive.reals(field.name, value, limit).size());
    else check_length(archive.indices(field.name, value, limit, 0, largest).size());
  });
}

}  // namespace detail

/// Keeps every record in memory: for tests and for analysis in the same program.
struct MemoryRecorder {
  std::vector<ProbeRecord> rows;
  void record(const ProbeRecord& row) { rows.push_back(row); }

  /// Its part of a checkpoint (section "memory"): the rows recorded so far.
  [[nodiscard]] std::string_view checkpoint_name() const { return "memory"; }
  template <class Archive>
  void checkpoint(Archive& archive) {
    const Index count = archive.count("the row count", static_cast<Index>(rows.size()), 0, Index{1} << 40);
    if constexpr (Archive::loading) {
      auto& loaded = archive.hold(std::vector<ProbeRecord>(static_cast<std::size_t>(count)));
      for (auto& row : loaded) detail::visit_record(archive, row, std::numeric_limits<std::int32_t>::max());
      archive.after_load([this, &loaded] { rows = std::move(loaded); });
    } else {
      for (auto& row : rows) detail::visit_record(archive, row, std::numeric_limits<std::int32_t>::max());
    }
  }
};

/// The mean of `field` over the records that measured it (ProbeRecord::not_measured is skipped),
/// e.g. `time_average(memory.rows, &ProbeRecord::gradient_norm_squared)`, the time-averaged
/// ||grad f(xbar_t)||^2 the paper's bounds are about. A measured NaN is not skipped: it makes the
/// average NaN, since a run that produced one has no meaningful mean. `not_measured` when no
/// record measured the field.
inline double time_average(const std::vector<ProbeRecord>& rows, double ProbeRecord::*field) {
  double sum = 0;
  Index count = 0;
  for (const ProbeRecord& row : rows) {
    if (!is_measured(row.*field)) continue;
    sum += row.*field;
    ++count;
  }
  return count > 0 ? sum / static_cast<double>(count) : ProbeRecord::not_measured;
}

}  // namespace hsgd

/// `fmt::print("{}\n", record)`: a one-line account of a probe record.
template <>
struct fmt::formatter<hsgd::ProbeRecord> : fmt::formatter<std::string_view> {
  template <class FormatContext>
  auto format(const hsgd::ProbeRecord& r, FormatContext& context) const {
    auto out = fmt::format_to(context.out(),
                              "step {}: f = {:.6g}, ||grad f||^2 = {:.4g}, D_up = {:.4g}, D_down = {:.4g}, "
                              "D_glob = {:.4g}, C_in = {:.4g}, C_up = {:.4g}",
                              r.step, r.loss, r.gradient_norm_squared, r.d_up, r.d_down, r.d_glob, r.c_in, r.c_up);
    if (hsgd::is_measured(r.test_loss)) out = fmt::format_to(out, ", test loss = {:.6g}", r.test_loss);
    if (hsgd::is_measured(r.test_accuracy)) out = fmt::format_to(out, ", test accuracy = {:.4f}", r.test_accuracy);
    return out;
  }
};
