#pragma once
/// @file
/// A resumable study: a fixed sequence of runs (schemes x seeds, say), numbered in the order the
/// program makes them, with one CSV file of probe records and one checkpoint for all of them.
///
/// ```cpp
/// hsgd::Study study({.csv = "study.csv", .tags = {"scheme", "seed"}, .checkpoint = "study.ckpt"});
/// for (int seed = 1; seed <= 5; ++seed)
///   for (const auto& scheme : schemes) {
///     if (study.skip_finished()) continue;  // done before the resume
///     hsgd::Engine engine(...);
///     study.set_tags({scheme, std::to_string(seed)});
///     auto probe = hsgd::make_probe(engine, {.gradient_every = 16}, study);
///     if (!study.run(engine, probe)) return study.exit_code();  // stopped by SIGINT or SIGTERM
///     study.finish({hsgd::time_average(study.records(), &hsgd::ProbeRecord::gradient_norm_squared)});
///   }
/// ```

#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/core.h>

#include "hsgd/checkpoint/archive.hpp"
#include "hsgd/checkpoint/checkpoint.hpp"
#include "hsgd/core/error.hpp"
#include "hsgd/core/types.hpp"
#include "hsgd/probe/csv.hpp"
#include "hsgd/probe/record.hpp"
#include "hsgd/run/observer.hpp"
#include "hsgd/run/summary.hpp"

namespace hsgd {

/// How a Study writes its files and what a resume must match.
struct StudyOptions {
  /// The CSV file of every run's probe records ("": none), written as the runs go (CsvRecorder).
  std::string csv{};
  /// Its tag columns, e.g. {"scheme", "seed"}; each run sets their values with Study::set_tags.
  std::vector<std::string> tags{};
  /// Per-level columns of the CSV (CsvRecorder's `levels`; 0: as many as the first record has).
  Index levels = 0;
  /// The checkpoint file ("": none, and SIGINT/SIGTERM kill the program as usual). With one, the
  /// study saves at the end of every run, every `checkpoint_every` steps and when SIGINT or
  /// SIGTERM arrives (it holds an hsgd::StopSignals, so the program must hold none).
  std::string checkpoint{};
  /// Also save every K steps of a run (0: only at the end of each run and on a signal).
  Index checkpoint_every = 0;
  /// Checkpoints kept: the newest at `checkpoint`, older ones at checkpoint.1, ... (CheckpointOptions::keep).
  Index keep = 1;
  /// fsync each checkpoint and its directory (CheckpointOptions::durable).
  bool durable = true;
  /// Resume from this checkpoint ("": start afresh): finished runs are skipped, the run under way
  /// continues from its step, and the CSV file is cut back to what the checkpointed study wrote.
  std::string resume{};
  /// What a resume must match, e.g. {{"flags", "--lr 0.05 --seeds 5"}}: a checkpoint of a study
  /// with other values is refused, naming the setting. Leave out what may differ (threads, paths).
  CheckpointSettings settings{};
  /// Keep the probe records of the run under way in memory (Study::records) until Study::finish.
  bool keep_records = true;
  /// Where the study says that it resumes (nullptr: nowhere).
  std::FILE* out = stdout;
  /// Where it says that a signal stopped it, and where the checkpoint is (nullptr: nowhere).
  std::FILE* err = stderr;

  /// Throws InvalidArgument naming the field and the constraint.
  void validate() const {
    detail::require(levels >= 0, "'levels' ({}) must be non-negative (0: from the first record)", levels);
    detail::require(checkpoint_every >= 0, "'checkpoint_every' ({}) must be non-negative (0: at the end of runs only)",
                    checkpoint_every);
    detail::require(keep >= 1 && keep <= 1000, "'keep' ({}) must be in [1, 1000]", keep);
    detail::require(checkpoint.empty() || checkpoint != csv, "'checkpoint' and 'csv' ({}) must name different files",
                    csv);
    for (const auto& setting : settings) detail::require(!setting.name.empty(), "'settings' must have names");
  }
};

namespace detail {

/// A member of a study's run as the Engine sees it: the member's hooks if it has them (a probe, a
/// ProgressBar), none if it is only state to checkpoint (a MemoryRecorder).
template <class Member>
struct StudyObserver {
  Member* member;
  template <class Run>
  bool after_step(const Run& run) {
    return notify_step(*member, run);
  }
  template <class Run>
  bool after_aggregation(const Run& run, Index level) {
    return notify_aggregation(*member, run, level);
  }
};

/// `std::tie(member)` if it is a checkpoint part, else an empty tuple.
template <class Member>
auto checkpoint_part_of(Member& member) {
  if constexpr (CheckpointPart<Member>) return std::tie(member);
  else return std::tuple<>{};
}

}  // namespace detail

/// A resumable study of several runs, numbered 0, 1, ... in the order the program makes them (its
/// messages count them from 1): for each run, either `skip_finished()` (it finished before the
/// checkpoint resumed from) or `run(engine, members...)` then `finish(results)`. The study owns the
/// CSV file of probe records (give the study to the probe as its recorder), the results of the
/// finished runs (a list of numbers per run, from `finish`), the checkpoint and the stop signals.
///
/// A checkpoint holds the study's settings, the finished runs' results, the CSV file's state and
/// the records in memory; during a run also the engine and the members that are checkpoint parts.
/// A study resumed from it skips the finished runs, continues the run under way from its step, and
/// ends with the same results, CSV bytes and final checkpoint as the study that never stopped.
/// Checkpoints are for studies in one process (under MPI, run the study without `checkpoint`).
class Study {
 public:
  /// Opens the CSV file (truncating it) or, with `resume`, reads the checkpoint's progress and cuts
  /// the CSV file back to what the checkpointed study had written. Throws CheckpointError naming
  /// the setting when the checkpoint's settings differ from `options.settings`.
  explicit Study(StudyOptions options) : options_((options.validate(), std::move(options))) {
    if (!options_.checkpoint.empty()) signals_.emplace();
    if (!options_.csv.empty()) {
      csv_ = std::make_unique<CsvRecorder>(options_.resume.empty()
                                               ? CsvRecorder(options_.csv, options_.tags, options_.levels)
                                               : CsvRecorder::reopen(options_.csv, options_.tags, options_.levels));
    }
    if (options_.resume.empty()) return;
    load_checkpoint(options_.resume, *this);
    resume_pending_ = in_progress_;
    const auto finished = results_.size();
    note("resuming from {}: {} run(s) finished{}\n", options_.resume, finished,
         in_progress_ ? fmt::format(", run {} under way", finished + 1) : "");
  }
  Study(const Study&) = delete;
  Study& operator=(const Study&) = delete;
  Study(Study&&) = delete;
  Study& operator=(Study&&) = delete;
  ~Study() = default;

  /// The number of the next run (0 for the first).
  [[nodiscard]] Index next() const noexcept { return cursor_; }
  /// Whether the next `runs` runs all finished before the checkpoint this study resumed from: skip
  /// them (and, say, the data they alone need).
  [[nodiscard]] bool finished(Index runs = 1) const noexcept {
    return cursor_ + runs <= static_cast<Index>(results_.size());
  }
  /// If the next run finished before the checkpoint this study resumed from, passes over it and
  /// returns true (its results: `result(next() - 1)`); otherwise changes nothing and returns false.
  bool skip_finished() {
    if (!finished()) return false;
    ++cursor_;
    return true;
  }

  /// Sets the CSV tag values of the rows that follow (nothing without a CSV file).
  void set_tags(std::vector<std::string> values) {
    if (csv_) csv_->set_tags(std::move(values));
  }

  /// Runs the next run: `engine.run(members...)`, each member an observer, a checkpoint part, or
  /// both (a DivergenceProbe). Observers are told of each step in the order given; the parts are
  /// saved with the engine and the study every `checkpoint_every` steps and on a stop signal, and
  /// loaded first when this run was under way in the checkpoint resumed from. Returns the run's
  /// Summary, or nothing when a signal stopped it (the checkpoint is written; the program should
  /// exit with exit_code()). The members must outlive the call; call `finish` next.
  template <class Engine, class... Members>
  std::optional<Summary> run(Engine& engine, Members&... members) {
    static_assert(((Observer<Members, Engine> || CheckpointPart<Members>) && ...),
                  "hsgd::Study::run: each member must be an observer of the run, a checkpoint part, or both");
    static_assert((!std::is_same_v<std::remove_cv_t<Members>, Study> && ...),
                  "hsgd::Study::run: the study takes part in its checkpoints itself; do not pass it");
    begin_run();
    auto parts = std::tuple_cat(detail::checkpoint_part_of(members)...);
    if (resume_pending_) {
      std::apply([&](auto&... part) { load_checkpoint(options_.resume, engine, part...); }, parts);
      resume_pending_ = false;
      note("  run {}: continues from step {}\n", cursor_ + 1, engine.step_count());
    }
    if (options_.checkpoint.empty()) return engine.run(detail::StudyObserver<Members>{&members}...);
    Summary summary;
    bool stopped = false;
    std::apply(
        [&](auto&... part) {
          Checkpointer checkpointer(options_.checkpoint, checkpoint_options(), part..., *this);
          summary = engine.run(detail::StudyObserver<Members>{&members}..., checkpointer);
          stopped = checkpointer.finish(engine);  // a signal after the last step's check saves that step too
        },
        parts);
    if (!stopped) return summary;
    stop_signal_ = StopSignals::received();
    if (options_.err != nullptr)
      fmt::print(options_.err, "stopped by signal {} after step {} of run {}; checkpoint written to {}\n", stop_signal_,
                 engine.step_count(), cursor_ + 1, options_.checkpoint);
    return std::nullopt;
  }

  /// Ends the run under way with its results (kept in checkpoints, and in `results()` after a
  /// resume), forgets its records and saves the checkpoint of the finished run.
  const std::vector<double>& finish(std::vector<double> results) {
    if (!in_progress_ || resume_pending_ || stop_signal_ != 0)
      throw InvalidState(fmt::format("hsgd::Study: run {} {}", cursor_ + 1,
                                     stop_signal_ != 0 ? "was stopped by a signal: exit with exit_code()"
                                                       : "has not been run: call run() before finish()"));
    results_.push_back(std::move(results));
    in_progress_ = false;
    ++cursor_;
    memory_.rows.clear();
    if (!options_.checkpoint.empty()) save_checkpoint(options_.checkpoint, checkpoint_options(), *this);
    return results_.back();
  }

  /// The probe's recorder: writes `row` to the CSV file and keeps it in records().
  void record(const ProbeRecord& row) {
    if (csv_) csv_->record(row);
    if (options_.keep_records) memory_.rows.push_back(row);
  }
  /// The probe records of the run under way (with `keep_records`), a resumed run's included.
  [[nodiscard]] const std::vector<ProbeRecord>& records() const noexcept { return memory_.rows; }
  /// The results of the finished runs, in run order (those of a resume included).
  [[nodiscard]] const std::vector<std::vector<double>>& results() const noexcept { return results_; }
  /// The results of run `run`, e.g. `result(next() - 1)`: those of the run just finished or skipped.
  [[nodiscard]] const std::vector<double>& result(Index run) const {
    detail::require(run >= 0 && run < static_cast<Index>(results_.size()), "'run' ({}) must be a finished run, in [0, {})",
                    run, results_.size());
    return results_[static_cast<std::size_t>(run)];
  }
  /// The CSV recorder, or nullptr without `csv`.
  [[nodiscard]] CsvRecorder* csv() const noexcept { return csv_.get(); }
  /// The signal that stopped the study (e.g. SIGTERM), or 0.
  [[nodiscard]] int stop_signal() const noexcept { return stop_signal_; }
  /// 0, or 128 + the signal that stopped the study: the exit status of a program killed by it.
  [[nodiscard]] int exit_code() const noexcept { return stop_signal_ == 0 ? 0 : 128 + stop_signal_; }

  // ---- checkpoints (section "study") ----

  [[nodiscard]] std::string_view checkpoint_name() const { return "study"; }
  /// Its part of a checkpoint: the settings (compared), the finished runs' results, whether a run
  /// is under way, the CSV file's state and the records in memory.
  template <class Archive>
  void checkpoint(Archive& archive) {
    const auto settings = static_cast<Index>(options_.settings.size());
    archive.check(archive.count("the setting count", settings, 0, 1 << 16) == settings,
                  "the checkpointed study has another number of settings than this one ({})", settings);
    archive.settings(options_.settings);
    const Index finished = archive.count("the finished runs", static_cast<Index>(results_.size()), 0, 1 << 24);
    auto& results = [&]() -> std::vector<std::vector<double>>& {
      if constexpr (Archive::loading) return archive.hold(std::vector<std::vector<double>>(static_cast<std::size_t>(finished)));
      else return results_;
    }();
    for (auto& result : results) archive.reals("a run's results", result, 1 << 24);
    if constexpr (Archive::loading) archive.after_load([this, &results] { results_ = std::move(results); });
    archive.flag("whether a run is under way", in_progress_);
    archive.check(archive.fact("whether the study writes a CSV file", csv_ != nullptr) == (csv_ != nullptr),
                  "the checkpointed study {} a CSV file and this one {}: give the CSV file as before",
                  csv_ ? "did not write" : "wrote", csv_ ? "does" : "does not");
    if (csv_) csv_->checkpoint(archive);
    memory_.checkpoint(archive);
  }

 private:
  void begin_run() {
    if (finished())
      throw InvalidState(fmt::format("hsgd::Study: run {} finished before the resume: skip_finished() passes over it", cursor_ + 1));
    if (in_progress_ && !resume_pending_)
      throw InvalidState(fmt::format("hsgd::Study: run {} is under way: finish() it first", cursor_ + 1));
    if (!resume_pending_) memory_.rows.clear();
    in_progress_ = true;
  }

  [[nodiscard]] CheckpointOptions checkpoint_options() const {
    return {.every = options_.checkpoint_every, .keep = options_.keep, .durable = options_.durable};
  }

  template <class... Args>
  void note(fmt::format_string<Args...> format, Args&&... args) const {
    if (options_.out != nullptr) fmt::print(options_.out, format, std::forward<Args>(args)...);
  }

  StudyOptions options_;
  std::optional<StopSignals> signals_;
  std::unique_ptr<CsvRecorder> csv_;
  MemoryRecorder memory_;                      // the records of the run under way
  std::vector<std::vector<double>> results_;   // of the finished runs
  Index cursor_ = 0;             // the next run the program makes
  bool in_progress_ = false;     // run results_.size() has begun
  bool resume_pending_ = false;  // and its engine is still to be loaded from the checkpoint
  int stop_signal_ = 0;
};

}  // namespace hsgd
