#pragma once
// Checkpoints for the examples: --checkpoint FILE --checkpoint-every K --keep K --resume FILE.
//
// An example is a study: a fixed sequence of runs (schemes x seeds), numbered in the order the
// example makes them. Its checkpoint holds the run under way (engine, probe, records), the results
// of the runs before it, and the state of the CSV file, so an example resumed from it skips the
// finished runs, continues the current one from its step, and ends with the same table, CSV file
// and final checkpoint as the example that never stopped. With --checkpoint, SIGINT and SIGTERM
// stop the example at the next step with a checkpoint written; it exits with 128 + the signal.

#include <cmath>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <fmt/core.h>

#include <hsgd/hsgd.hpp>

#include "cli.hpp"

namespace example {

struct CheckpointFlags {
  std::string checkpoint;
  hsgd::Index every = 0;
  hsgd::Index keep = 1;
  std::string resume;

  static CheckpointFlags read(Flags& flags) {
    CheckpointFlags c;
    c.checkpoint = flags.text("checkpoint", "", "write checkpoints to this file (at the end of every run, and on SIGINT/SIGTERM)");
    c.every = flags.integer("checkpoint-every", 0, "also write the checkpoint every K steps of a run (0: never)");
    c.keep = flags.integer("keep", 1, "checkpoints to keep: FILE, FILE.1, ... (newest first)");
    c.resume = flags.text("resume", "", "continue the example from this checkpoint (same flags otherwise)");
    return c;
  }
};

/// A whole number in [low, high] that a checkpoint kept as a double (a count), checked.
inline hsgd::Index whole(double value, hsgd::Index low, hsgd::Index high) {
  if (!(value >= static_cast<double>(low) && value <= static_cast<double>(high)) || value != std::floor(value))
    throw std::invalid_argument(fmt::format("the checkpoint holds {} where a whole number in [{}, {}] belongs", value, low, high));
  return static_cast<hsgd::Index>(value);
}

/// The study's progress, and its CSV file: the part of a checkpoint named "study".
class Study {
 public:
  /// Opens the CSV file (when `csv_path` is set) for a new study or, with --resume, reads the
  /// checkpoint's progress and cuts the CSV file back to what the checkpointed study had written.
  /// `flags` are the example's flags: a resume with other values than the checkpointed study's
  /// (other than the checkpoint flags, --csv and --threads) is refused.
  Study(const Flags& flags, CheckpointFlags checkpoint_flags, const std::string& csv_path, std::vector<std::string> tags,
        hsgd::Index levels)
      : flags_(std::move(checkpoint_flags)),
        configuration_(flags.configuration({"checkpoint", "checkpoint-every", "keep", "resume", "threads", "csv"})) {
    if (flags_.every < 0) throw std::invalid_argument(fmt::format("'--checkpoint-every' ({}) must be non-negative", flags_.every));
    if (!flags_.checkpoint.empty()) signals_.emplace();
    if (flags_.resume.empty()) {
      if (!csv_path.empty()) csv_ = std::make_unique<hsgd::CsvRecorder>(csv_path, std::move(tags), levels);
      return;
    }
    if (!csv_path.empty()) csv_ = std::make_unique<hsgd::CsvRecorder>(hsgd::CsvRecorder::reopen(csv_path, std::move(tags), levels));
    hsgd::load_checkpoint(flags_.resume, *this);
    resume_pending_ = in_progress_;
    fmt::print("resuming from {}: {} run(s) finished{}\n", flags_.resume, next_run_,
               in_progress_ ? fmt::format(", run {} under way", next_run_ + 1) : "");
  }

  /// The CSV recorder, or nullptr without --csv.
  [[nodiscard]] hsgd::CsvRecorder* csv() const { return csv_.get(); }

  /// Whether run `run` finished before the checkpoint resumed from (then skip it: result(run)).
  [[nodiscard]] bool finished(hsgd::Index run) const { return run < next_run_; }
  [[nodiscard]] const std::vector<double>& result(hsgd::Index run) const { return results_.at(static_cast<std::size_t>(run)); }

  /// Runs run `run` of the study: first continues it from the checkpoint if it was under way
  /// there, then runs `engine` with `observers` and saves checkpoints of the engine and `parts`
  /// (the observers' state: probe, recorders) as asked. False when a stop signal ended it, with
  /// the checkpoint written: the example should then exit (exit_code()).
  template <class Engine, class... Parts, class... Observers>
  bool run(hsgd::Index run, Engine& engine, std::tuple<Parts&...> parts, Observers&... observers) {
    if (resume_pending_ && run == next_run_) {
      std::apply([&](auto&... part) { hsgd::load_checkpoint(flags_.resume, engine, part...); }, parts);
      resume_pending_ = false;
      fmt::print("  run {}: continues from step {}\n", run + 1, engine.step_count());
    }
    next_run_ = run;
    in_progress_ = true;
    if (flags_.checkpoint.empty()) {
      engine.run(observers...);
      return true;
    }
    std::apply(
        [&](auto&... part) {
          hsgd::Checkpointer checkpointer(flags_.checkpoint, options(), part..., *this);
          engine.run(observers..., checkpointer);
          checkpointer.finish(engine);  // a signal after the last step's check: save that step too
        },
        parts);
    if (hsgd::StopSignals::received() == 0) return true;
    fmt::print(stderr, "stopped by signal {} after step {} of run {}; checkpoint written to {}; continue with --resume {}\n",
               hsgd::StopSignals::received(), engine.step_count(), run + 1, flags_.checkpoint, flags_.checkpoint);
    exit_code_ = 128 + hsgd::StopSignals::received();
    return false;
  }

  /// Records the result of run `run` and saves the checkpoint of the finished run.
  template <class Engine, class... Parts>
  void finish(hsgd::Index run, std::vector<double> result, const Engine& engine, std::tuple<Parts&...> parts) {
    results_.push_back(std::move(result));
    next_run_ = run + 1;
    in_progress_ = false;
    if (flags_.checkpoint.empty()) return;
    std::apply([&](const auto&... part) { hsgd::save_checkpoint(flags_.checkpoint, options(), engine, part..., *this); },
               parts);
  }

  /// 0, or 128 + the signal that stopped the study.
  [[nodiscard]] int exit_code() const { return exit_code_; }

  // ---- the checkpoint part "study": progress, results, and the CSV file's state ----

  [[nodiscard]] std::string_view checkpoint_name() const { return "study"; }
  template <class Archive>
  void checkpoint(Archive& archive) {
    archive.setting("example flags", configuration_);
    const hsgd::Index next = archive.index("the next run", next_run_, 0, 1 << 20);
    archive.flag("whether a run is under way", in_progress_);
    const hsgd::Index finished = archive.count("the finished runs", static_cast<hsgd::Index>(results_.size()), 0, next);
    if constexpr (Archive::loading) {
      auto& loaded = archive.hold(std::vector<std::vector<double>>(static_cast<std::size_t>(finished)));
      for (auto& result : loaded) archive.reals("a run's results", result, 1 << 20);
      archive.after_load([this, &loaded] { results_ = std::move(loaded); });
    } else {
      for (auto& result : results_) archive.reals("a run's results", result, 1 << 20);
    }
    archive.check(archive.fact("whether the study wrote a CSV file", csv_ != nullptr) == (csv_ != nullptr),
                  "the checkpointed study {} a CSV file and this one {}: give --csv as before",
                  csv_ ? "did not write" : "wrote", csv_ ? "does" : "does not");
    if (csv_) csv_->checkpoint(archive);
  }

 private:
  hsgd::CheckpointOptions options() const { return {.every = flags_.every, .keep = flags_.keep}; }

  CheckpointFlags flags_;
  std::string configuration_;  // the example's flags, compared on resume
  std::unique_ptr<hsgd::CsvRecorder> csv_;
  std::optional<hsgd::StopSignals> signals_;
  hsgd::Index next_run_ = 0;   // the first run not finished
  bool in_progress_ = false;   // run next_run_ has begun
  bool resume_pending_ = false;  // its engine is still to be loaded from the checkpoint
  std::vector<std::vector<double>> results_;
  int exit_code_ = 0;
};

}  // namespace example
