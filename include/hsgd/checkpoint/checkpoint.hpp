#pragma once
/// @file
/// Saving and resuming runs: save_checkpoint / load_checkpoint over any set of parts (the
/// Engine, probes, recorders, your own), a Checkpointer observer that saves every K steps and on
/// SIGINT/SIGTERM, and StopSignals, which turns those signals into a stop at the next step.
///
/// A run stopped after step t and resumed from its checkpoint produces the same bits (models,
/// probe records, CSV bytes) as the run that was never stopped, with any thread count on either
/// side. See the README's "Checkpoints" section for the format and the guarantees.

#include <atomic>
#include <csignal>
#include <concepts>
#include <exception>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "hsgd/checkpoint/archive.hpp"
#include "hsgd/checkpoint/file.hpp"
#include "hsgd/checkpoint/format.hpp"
#include "hsgd/core/error.hpp"
#include "hsgd/core/types.hpp"

namespace hsgd {

namespace checkpoint_requirements {

template <class P>
concept has_name = requires(const P& p) {
  { p.checkpoint_name() } -> std::convertible_to<std::string_view>;
};
template <class P>
concept has_writes_file = requires(const P& p) {
  { p.checkpoint_writes_file() } -> std::convertible_to<bool>;
};

}  // namespace checkpoint_requirements

/// One part of a checkpoint: the Engine, a DivergenceProbe, a MemoryRecorder, a CsvRecorder, a
/// Study, or your own object (say, the results of the earlier runs of an experiment).
///
/// - `std::string_view checkpoint_name() const`: the name of its section, unique in a checkpoint;
/// - `template <class Archive> void checkpoint(Archive& archive)`: one visit of its state that
///   serves saving and loading (see SaveArchive, LoadArchive). On load every part reads and
///   checks its whole section before any part changes, so a checkpoint that one part refuses
///   changes none;
/// - optional `bool checkpoint_writes_file() const`: false in the processes of a distributed
///   run that contribute to a checkpoint but do not write it (the Engine over hsgd::mpi::Cluster
///   answers true on rank 0 alone); save_checkpoint then visits every part and writes nothing.
template <class P>
concept CheckpointPart = checkpoint_requirements::has_name<P> && checkpoint_requirements::has_visit<P>;

/// How checkpoints are written.
struct CheckpointOptions {
  /// Checkpointer: save after every `every` steps (0: only when a stop signal arrives or
  /// `save` is called).
  Index every = 0;
  /// How many checkpoints to keep: the newest at the path, older ones at path.1, path.2, ...
  /// (path.1 the most recent of them). 1 keeps only the newest.
  Index keep = 1;
  /// fsync the file and its directory, so a checkpoint survives a power cut once saved. Off:
  /// still atomic against a crash of the program, not of the machine.
  bool durable = true;

  void validate() const {
    detail::require(every >= 0, "'every' ({}) must be non-negative (0: only on a signal or on request)", every);
    detail::require(keep >= 1 && keep <= 1000, "'keep' ({}) must be in [1, 1000]", keep);
  }
};

namespace detail {

template <class P>
consteval bool check_checkpoint_part() {
  using namespace checkpoint_requirements;
  static_assert(has_name<P>, "hsgd CheckpointPart: missing `std::string_view checkpoint_name() const`");
  static_assert(has_visit<P>, "hsgd CheckpointPart: missing `template <class Archive> void checkpoint(Archive&)`, "
                              "the one visit of its state that serves save and load");
  return true;
}

template <class Part>
bool writes_file(const Part& part) {
  if constexpr (checkpoint_requirements::has_writes_file<Part>) return part.checkpoint_writes_file();
  else return true;
}

/// Whether any process of the run has `flag` set, asked of a part that can tell (the Engine's
/// any_process); `flag` itself in process. A run over several processes must stop, save and fail
/// at the same step everywhere, though a signal or an error may reach them at different steps.
template <class Part>
bool on_any_process(const Part& part, bool flag) {
  if constexpr (requires { part.any_process(flag); }) return part.any_process(flag);
  else return flag;
}

/// Part `part`'s section of `out`.
template <class Part>
void write_part(CheckpointWriter& out, const Part& part) {
  out.begin_section(part.checkpoint_name());
  SaveArchive archive(out);
  const_cast<Part&>(part).checkpoint(archive);  // a SaveArchive only reads what it visits
  out.end_section();
}

/// Part `part` read from its section of `file` and checked, staged in the returned archive.
template <class Part>
LoadArchive read_part(const CheckpointFile& file, Part& part) {
  LoadArchive archive(file.section(part.checkpoint_name()));
  part.checkpoint(archive);
  archive.expect_end();
  return archive;
}

}  // namespace detail

/// Writes one checkpoint file holding every part, atomically (see write_file_atomically in
/// file.hpp): `path` is either the previous checkpoint or the new one, never a mix. Under a
/// distributed backend every process calls it (the Engine's save_state is collective), rank 0
/// writes the file, and every process returns once the file is written, or throws if rank 0
/// could not write it (rank 0 with the system's reason, the others with CheckpointError).
template <class... Parts>
void save_checkpoint(const std::string& path, const CheckpointOptions& options, const Parts&... parts) {
  static_assert((detail::check_checkpoint_part<Parts>() && ...));
  options.validate();
  CheckpointWriter out;
  (detail::write_part(out, parts), ...);
  std::exception_ptr error;
  if ((detail::writes_file(parts) && ...)) {
    try {
      detail::write_file_atomically(
          path, [&](int descriptor, const std::string& temporary) { detail::write_checkpoint(descriptor, out, temporary); },
          options.durable, static_cast<int>(options.keep));
    } catch (...) {
      error = std::current_exception();
    }
  }
  bool failed = error != nullptr;
  ((failed = detail::on_any_process(parts, failed)), ...);
  if (error) std::rethrow_exception(error);
  if (failed) throw CheckpointError(fmt::format("checkpoint '{}': the process that writes it failed", path));
}

/// Loads every part from the checkpoint at `path`, each from the section of its name. The file
/// is read and verified first, then every part reads and checks its section, and only then do the
/// parts change: a damaged file, or one that any part refuses (another configuration, say),
/// changes no part. Throws CheckpointError naming the problem. Only a system error while
/// committing (a CSV file that cannot be cut back) can leave the parts committed before it
/// changed, so list such parts first.
template <class... Parts>
void load_checkpoint(const std::string& path, Parts&... parts) {
  static_assert(sizeof...(Parts) > 0, "hsgd load_checkpoint: name the parts to load");
  static_assert((detail::check_checkpoint_part<Parts>() && ...));
  const CheckpointFile file = CheckpointFile::read(path);
  LoadArchive staged[] = {detail::read_part(file, parts)...};
  for (auto& archive : staged) archive.commit();
}

/// The checks of load_checkpoint alone: throws as it would, and changes nothing.
template <class... Parts>
void check_checkpoint(const std::string& path, Parts&... parts) {
  static_assert((detail::check_checkpoint_part<Parts>() && ...));
  const CheckpointFile file = CheckpointFile::read(path);
  ((void)detail::read_part(file, parts), ...);
}

/// The section `part` would write, as bytes (for comparing the states of two runs, say).
template <class Part>
std::vector<char> checkpoint_bytes(const Part& part) {
  CheckpointWriter out;
  detail::write_part(out, part);
  return out.payload();
}

namespace detail {
/// The stop signal received, or 0. Lock-free, so the handler may set it.
inline std::atomic<int> stop_signal{0};
inline std::atomic<bool> stop_signals_installed{false};
static_assert(std::atomic<int>::is_always_lock_free);

extern "C" inline void hsgd_record_stop_signal(int number) { stop_signal.store(number, std::memory_order_relaxed); }

}  // namespace detail

/// While alive, SIGINT and SIGTERM (or the signals given) no longer kill the process: they ask
/// the run to stop at the next step boundary. An observer itself (`engine.run(probe, stop)`) and
/// what a Checkpointer consults. A second identical signal kills the process as usual (the
/// handler is one-shot), so a run that does not stop can still be interrupted. The handlers in
/// place before are restored on destruction. One instance at a time.
class StopSignals {
 public:
  explicit StopSignals(std::vector<int> signals = {SIGINT, SIGTERM}) : signals_(std::move(signals)) {
    if (detail::stop_signals_installed.exchange(true))
      throw InvalidState("hsgd::StopSignals: another instance is alive; make one for the program");
    detail::stop_signal.store(0);
    previous_.resize(signals_.size());
    for (std::size_t k = 0; k < signals_.size(); ++k) {
      struct ::sigaction action {};
      action.sa_handler = &detail::hsgd_record_stop_signal;
      sigemptyset(&action.sa_mask);
      action.sa_flags = SA_RESTART | SA_RESETHAND;
      if (::sigaction(signals_[k], &action, &previous_[k]) != 0) {
        restore(k);
        detail::stop_signals_installed.store(false);
        detail::fail("'signals': cannot handle signal {}", signals_[k]);
      }
    }
  }
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;
  /// Restores the previous handlers and forgets the request: it belonged to this guard.
  ~StopSignals() {
    restore(signals_.size());
    detail::stop_signal.store(0);
    detail::stop_signals_installed.store(false);
  }

  /// The signal that asked to stop (e.g. SIGTERM), or 0.
  [[nodiscard]] static int received() noexcept { return detail::stop_signal.load(std::memory_order_relaxed); }
  /// Observer hook: stops the run once a signal has arrived (under a distributed backend: at
  /// any rank, so that all stop at the same step).
  template <class Run>
  bool after_step(const Run& run) const {
    return detail::on_any_process(run, received() != 0);
  }

 private:
  void restore(std::size_t count) noexcept {
    for (std::size_t k = 0; k < count; ++k) ::sigaction(signals_[k], &previous_[k], nullptr);
  }

  std::vector<int> signals_;
  std::vector<struct ::sigaction> previous_;
};

/// An observer that saves a checkpoint of the run and of `parts` every `options.every` steps and
/// when a stop signal has arrived (see StopSignals), in which case it also stops the run. Pass it
/// after the observers it saves (`engine.run(probe, checkpointer)`), so their state includes the
/// step. The file at `path` then always holds a recent, complete checkpoint. A signal that arrives
/// after the last step's check lets `run()` end normally: call `finish(engine)` after the run,
/// which saves that step and tells whether to exit.
/// Under a distributed backend every rank runs a Checkpointer with the same options: the ranks
/// agree each step on whether a signal arrived anywhere (one small all-reduce), and rank 0 writes.
template <class... Parts>
class Checkpointer {
 public:
  Checkpointer(std::string path, CheckpointOptions options, Parts&... parts)
      : path_(std::move(path)), options_((options.validate(), options)), parts_(parts...) {
    detail::require(!path_.empty(), "'path' must name the checkpoint file");
  }

  template <class Run>
  bool after_step(const Run& run) {
    const bool stopping = detail::on_any_process(run, StopSignals::received() != 0);
    if (stopping || (options_.every > 0 && run.step_count() % options_.every == 0)) save(run);
    return stopping;
  }

  /// Call after `run()` returns: if a stop signal arrived (at any rank of a distributed run) and
  /// the run's last step is not yet saved (the signal came after the last step's check), saves
  /// it. Returns whether a signal asked to stop. Collective under a distributed backend.
  template <class Run>
  bool finish(const Run& run) {
    const bool stopping = detail::on_any_process(run, StopSignals::received() != 0);
    if (stopping && last_saved_step_ != run.step_count()) save(run);
    return stopping;
  }

  /// Saves now (e.g. at the end of a run).
  template <class Run>
  void save(const Run& run) {
    std::apply([&](const auto&... parts) { save_checkpoint(path_, options_, run, parts...); }, parts_);
    last_saved_step_ = run.step_count();
    ++saves_;
  }

  [[nodiscard]] const std::string& path() const { return path_; }
  /// The step of the last checkpoint written, and how many were written.
  [[nodiscard]] Index last_saved_step() const { return last_saved_step_; }
  [[nodiscard]] Index saves() const { return saves_; }

 private:
  std::string path_;
  CheckpointOptions options_;
  std::tuple<Parts&...> parts_;
  Index last_saved_step_ = -1;
  Index saves_ = 0;
};

}  // namespace hsgd
