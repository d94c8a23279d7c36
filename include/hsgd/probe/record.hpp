#pragma once
/// @file
/// What a probe measures, and where it goes: an in-memory table or a CSV file.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <limits>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "hsgd/checkpoint/format.hpp"
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

namespace detail {
/// A CSV value: the shortest text that reads back as the same double; empty when not measured,
/// `nan` for a measured NaN (without the sign fmt would print for x86's negative default NaN).
struct CsvCell {
  double value;
};
}  // namespace detail

}  // namespace hsgd

template <>
struct fmt::formatter<hsgd::detail::CsvCell> : fmt::formatter<std::string_view> {
  template <class FormatContext>
  auto format(const hsgd::detail::CsvCell& cell, FormatContext& context) const {
    if (!hsgd::is_measured(cell.value)) return context.out();
    if (std::isnan(cell.value)) return fmt::format_to(context.out(), "nan");
    return fmt::format_to(context.out(), "{}", cell.value);
  }
};

namespace hsgd {

namespace detail {

/// A probe record in a checkpoint, every field bit for bit.
template <class Writer>
void save_record(Writer& out, const ProbeRecord& r) {
  out.put_index(r.step);
  out.put_index(r.level);
  for (const double value : {r.loss, r.gradient_norm_squared, r.d_up, r.d_down, r.d_glob, r.d_down_at_group_averages,
                             r.c_in, r.c_up, r.c, r.max_d_up, r.max_d_down, r.scalars, r.test_loss, r.test_accuracy,
                             r.sim_seconds, r.sim_compute_seconds, r.sim_wait_seconds, r.sim_dropped})
    out.put_double(value);
  for (const auto* terms : {&r.gradient_terms, &r.group_d_down, &r.group_d_down_at_group_averages,
                            &r.group_gradient_norm_squared, &r.model_terms, &r.sim_communication_seconds})
    out.put_doubles(*terms);
  out.put_indices(r.aggregations);
  out.put_index(r.messages);
  out.put_indices(r.level_messages);
}

/// Reads a record written by save_record; `limit` bounds every list (a damaged count cannot make
/// it allocate without bound).
template <class Reader>
ProbeRecord load_record(Reader& in, Index limit) {
  ProbeRecord r;
  constexpr Index largest = Index{1} << 62;  // room to keep counting without overflow
  r.step = in.get_index("a record's step", 0, largest);
  r.level = in.get_index("a record's level", 0, limit);
  for (double* value : {&r.loss, &r.gradient_norm_squared, &r.d_up, &r.d_down, &r.d_glob, &r.d_down_at_group_averages,
                        &r.c_in, &r.c_up, &r.c, &r.max_d_up, &r.max_d_down, &r.scalars, &r.test_loss,
                        &r.test_accuracy, &r.sim_seconds, &r.sim_compute_seconds, &r.sim_wait_seconds,
                        &r.sim_dropped})
    *value = in.get_double("a record's value");
  for (auto* terms : {&r.gradient_terms, &r.group_d_down, &r.group_d_down_at_group_averages,
                      &r.group_gradient_norm_squared, &r.model_terms, &r.sim_communication_seconds})
    *terms = in.get_doubles("a record's list", limit);
  r.aggregations = in.get_indices("a record's aggregation counts", limit, 0, largest);
  r.messages = in.get_index("a record's message count", 0, largest);
  r.level_messages = in.get_indices("a record's message counts", limit, 0, largest);
  return r;
}

}  // namespace detail

/// Keeps every record in memory: for tests and for analysis in the same program.
struct MemoryRecorder {
  std::vector<ProbeRecord> rows;
  void record(const ProbeRecord& row) { rows.push_back(row); }

  /// Checkpoint hooks: the rows recorded so far (section "memory").
  [[nodiscard]] std::string_view checkpoint_name() const { return "memory"; }
  template <class Writer>
  void save_state(Writer& out) const {
    out.put_index(static_cast<Index>(rows.size()));
    for (const auto& row : rows) detail::save_record(out, row);
  }
  template <class Reader>
  void load_state(Reader& in) {
    rows = staged_from(in);
  }
  template <class Reader>
  void check_state(Reader& in) const {
    (void)staged_from(in);
  }

 private:
  template <class Reader>
  static std::vector<ProbeRecord> staged_from(Reader& in) {
    const Index count = in.get_index("the row count", 0, Index{1} << 40);
    std::vector<ProbeRecord> loaded;
    for (Index k = 0; k < count; ++k) loaded.push_back(detail::load_record(in, std::numeric_limits<std::int32_t>::max()));
    return loaded;
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

namespace detail {

/// Owns a POSIX file descriptor: closed exactly once, on every way out of its owner (a throwing
/// constructor included, so a rejected recorder leaks nothing), and handed over on move.
class FileDescriptor {
 public:
  FileDescriptor() = default;
  explicit FileDescriptor(int descriptor) noexcept : descriptor_(descriptor) {}
  FileDescriptor(FileDescriptor&& other) noexcept : descriptor_(std::exchange(other.descriptor_, -1)) {}
  FileDescriptor& operator=(FileDescriptor&& other) noexcept {
    if (this != &other) {
      (void)close();
      descriptor_ = std::exchange(other.descriptor_, -1);
    }
    return *this;
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  ~FileDescriptor() { (void)close(); }

  [[nodiscard]] int get() const noexcept { return descriptor_; }
  [[nodiscard]] bool valid() const noexcept { return descriptor_ >= 0; }

  /// Closes now: 0, or the errno of a failed close(2). Never retried: after EINTR the descriptor
  /// is already gone on Linux and a retry could close one another thread just opened.
  int close() noexcept {
    if (descriptor_ < 0) return 0;
    return ::close(std::exchange(descriptor_, -1)) == 0 ? 0 : errno;
  }

 private:
  int descriptor_ = -1;
};

/// Appends `text` to `out` as one CSV field (RFC 4180): as it is, or, when it holds a comma, a
/// quote or a line break, in double quotes with its quotes doubled.
template <class Buffer>
void append_csv_field(Buffer& out, std::string_view text) {
  const bool quoted = text.find_first_of(",\"\r\n") != std::string_view::npos;
  if (quoted) out.push_back('"');
  for (const char c : text) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  if (quoted) out.push_back('"');
}

}  // namespace detail

/// Writes one CSV line per record, each as it comes, so a long run can be watched and a crash
/// loses nothing. Leading `tags` columns (e.g. scheme and seed) let several runs share a file.
/// The columns, in order: the tags, then
/// `step,level,loss,grad_norm_sq,d_up,d_down,d_glob,c_in,c_up,c,max_d_up,max_d_down,messages,scalars,
/// d_down_at_groups,test_loss,test_accuracy,sim_seconds,sim_compute_seconds,sim_wait_seconds,sim_dropped`, then
/// `d_level_0..d_level_{L-1}` and `c_level_0..c_level_{L-1}` (per-level terms),
/// `messages_level_1..messages_level_L` (messages per aggregation level) and
/// `sim_comm_level_1..sim_comm_level_L` (simulated seconds in each level's rounds). Values not
/// measured at a step (ProbeRecord::not_measured) are empty; a measured NaN is `nan`. L is `levels`
/// if given, else the first record's level count; runs with fewer levels (local SGD next to H-SGD
/// in one file) leave the extra cells empty. Tag names and values holding a comma, a quote or a
/// line break are quoted as RFC 4180 says (quotes doubled).
///
/// No row is torn or dropped silently: each row (and the header) is formatted into a reused buffer
/// and handed to the kernel in a single write(2), with no stdio buffer that could split it, so a
/// run that stops between rows, or exits from a signal handler (which runs only once the write has
/// returned), leaves only whole rows; only SIGKILL landing inside that one call can still cut a
/// long row short, since Linux abandons a write between pages for it. A failed write (a full disk)
/// throws std::system_error naming the path; the recorder then cuts the file back to its last whole
/// row, or, where it cannot (a pipe), refuses further rows. Once the buffer has grown to a row's
/// size, recording allocates nothing.
///
/// Movable, not copyable. A moved-from recorder refuses to record, so a probe still pointing at it
/// fails loudly instead of writing nowhere.
class CsvRecorder {
 public:
  /// Checks the arguments, then opens `path` for writing (truncating it), names the tag columns,
  /// and fixes the per-level columns to `levels` levels (0: as many as the first record has). Bad
  /// arguments throw InvalidArgument before the file is touched, so an existing file survives them.
  CsvRecorder(const std::string& path, std::vector<std::string> tag_names, Index levels = 0)
      : CsvRecorder(path, std::move(tag_names), levels, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC) {}

  /// Opens `path` to continue a run from a checkpoint: the file is kept as it is until
  /// `load_state` (through load_checkpoint) cuts it back to what the checkpointed run had written,
  /// dropping the rows a killed run wrote after its checkpoint and any partial last line. Rows are
  /// refused until then.
  static CsvRecorder reopen(const std::string& path, std::vector<std::string> tag_names, Index levels = 0) {
    return CsvRecorder(path, std::move(tag_names), levels, O_RDWR | O_CREAT | O_CLOEXEC);
  }

  CsvRecorder(const CsvRecorder&) = delete;
  CsvRecorder& operator=(const CsvRecorder&) = delete;
  CsvRecorder(CsvRecorder&& other) noexcept = default;
  CsvRecorder& operator=(CsvRecorder&& other) noexcept {
    if (this == &other) return *this;  // fmt's memory_buffer asserts against moving into itself
    path_ = std::move(other.path_);
    tag_names_ = std::move(other.tag_names_);
    tag_prefix_ = std::move(other.tag_prefix_);
    levels_ = other.levels_;
    header_written_ = other.header_written_;
    torn_ = other.torn_;
    committed_ = other.committed_;
    crc_ = other.crc_;
    awaiting_checkpoint_ = other.awaiting_checkpoint_;
    buffer_ = std::move(other.buffer_);
    file_ = std::move(other.file_);  // closes this recorder's own file first
    return *this;
  }
  /// Closes the file; a failure to close cannot be reported from here (call close() to see it).
  ~CsvRecorder() = default;

  /// Sets the tag values written on the following rows.
  void set_tags(std::vector<std::string> values) {
    detail::require(values.size() == tag_names_.size(), "{} tag values given for {} tag columns", values.size(),
                    tag_names_.size());
    tag_prefix_.clear();
    for (const auto& value : values) {
      detail::append_csv_field(tag_prefix_, value);
      tag_prefix_.push_back(',');
    }
  }

  /// Appends one row (the header first, before the first row). Throws std::system_error naming the
  /// path when the write fails, InvalidArgument when the record has more levels than the file has
  /// columns for or the recorder was moved from or closed.
  void record(const ProbeRecord& row) {
    detail::require(file_.valid(), "the CsvRecorder was moved from or closed: it has no file to write to");
    if (awaiting_checkpoint_) [[unlikely]]
      throw InvalidState(fmt::format("the CSV file '{}' was reopened for a resumed run: load the checkpoint before "
                                     "recording rows",
                                     path_));
    if (torn_) {
      throw std::system_error(std::make_error_code(std::errc::io_error),
                              fmt::format("the CSV file '{}' ends with a partial row from an earlier failed write "
                                          "that could not be cut off: no further rows are written to it",
                                          path_));
    }
    const std::size_t row_levels =
        std::max({row.gradient_terms.size(), row.model_terms.size(), row.level_messages.size()});
    if (!header_written_) write_header(row_levels);
    detail::require(row_levels <= levels_,
                    "a record with {} levels does not fit the CSV's {} per-level columns: give CsvRecorder the "
                    "largest level count as 'levels'",
                    row_levels, levels_);
    buffer_.clear();
    buffer_.append(tag_prefix_.data(), tag_prefix_.data() + tag_prefix_.size());
    fmt::format_to(std::back_inserter(buffer_), "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}", row.step,
                   row.level, cell(row.loss), cell(row.gradient_norm_squared), cell(row.d_up), cell(row.d_down),
                   cell(row.d_glob), cell(row.c_in), cell(row.c_up), cell(row.c), cell(row.max_d_up),
                   cell(row.max_d_down), row.messages, cell(row.scalars), cell(row.d_down_at_group_averages),
                   cell(row.test_loss), cell(row.test_accuracy), cell(row.sim_seconds), cell(row.sim_compute_seconds),
                   cell(row.sim_wait_seconds), cell(row.sim_dropped));
    append_levels(row.gradient_terms);
    append_levels(row.model_terms);
    for (std::size_t l = 0; l < levels_; ++l) {
      if (l < row.level_messages.size()) fmt::format_to(std::back_inserter(buffer_), ",{}", row.level_messages[l]);
      else buffer_.push_back(',');
    }
    append_levels(row.sim_communication_seconds);
    buffer_.push_back('\n');
    write_buffer();
  }

  /// Closes the file now and reports what the destructor cannot: a failed close(2) (some network
  /// file systems report a failed write only then) throws std::system_error naming the path.
  /// Rows already recorded are in the kernel's hands either way; this does not fsync.
  void close() {
    const int error = file_.close();
    if (error != 0)
      throw std::system_error(error, std::generic_category(), fmt::format("cannot close the CSV file '{}'", path_));
  }

  /// The file being written.
  [[nodiscard]] const std::string& path() const noexcept { return path_; }

  // ---- checkpoints (section "csv") ----

  [[nodiscard]] std::string_view checkpoint_name() const { return "csv"; }

  /// Makes the rows written so far durable (fdatasync) and records how many bytes they are, their
  /// CRC-32, the tag names and values and the per-level column count.
  void save_state(CheckpointWriter& out) const {
    detail::require(file_.valid(), "the CsvRecorder was moved from or closed: it cannot be checkpointed");
    if (awaiting_checkpoint_) throw InvalidState(fmt::format("the CSV file '{}' awaits its checkpoint", path_));
    int result = 0;
    do {
      result = ::fdatasync(file_.get());
    } while (result != 0 && errno == EINTR);
    const int error = errno;
    if (result != 0 && error != EINVAL)  // EINVAL: a pipe or a special file, nothing to sync
      throw std::system_error(error, std::generic_category(), fmt::format("cannot sync the CSV file '{}'", path_));
    out.put_setting("tag columns", fmt::format("{}", tag_names_));
    out.put_index(static_cast<Index>(levels_));
    out.put_bool(header_written_);
    out.put_index(static_cast<Index>(committed_));
    out.put_u64(crc_);
    out.put_string(tag_prefix_);
  }

  /// Checks that the file holds what the checkpointed run had written (its first bytes have the
  /// saved length and CRC-32), changing nothing.
  void check_state(CheckpointReader& in) const { (void)staged_from(in); }

  /// Cuts the file back to what the checkpointed run had written and continues from there.
  void load_state(CheckpointReader& in) {
    const Staged staged = staged_from(in);
    if (::ftruncate(file_.get(), staged.committed) != 0 || ::lseek(file_.get(), staged.committed, SEEK_SET) != staged.committed) {
      const int error = errno != 0 ? errno : EIO;
      throw std::system_error(error, std::generic_category(), fmt::format("cannot cut the CSV file '{}' back", path_));
    }
    levels_ = staged.levels;
    header_written_ = staged.header_written;
    committed_ = staged.committed;
    crc_ = staged.crc;
    tag_prefix_ = staged.tag_prefix;
    torn_ = false;
    awaiting_checkpoint_ = false;
  }

 private:
  static constexpr Index max_levels = 1 << 16;

  struct Staged {
    std::size_t levels;
    bool header_written;
    ::off_t committed;
    std::uint32_t crc;
    std::string tag_prefix;
  };

  Staged staged_from(CheckpointReader& in) const {
    detail::require(file_.valid(), "the CsvRecorder was moved from or closed: it cannot resume");
    in.expect("tag columns", fmt::format("{}", tag_names_));
    Staged staged{};
    staged.levels = static_cast<std::size_t>(in.get_index("the per-level column count", 0, max_levels));
    if (levels_ != 0 && staged.levels != levels_)
      in.fail("the CSV had {} per-level columns, this recorder has {}", staged.levels, levels_);
    staged.header_written = in.get_bool("whether the header was written");
    staged.committed = static_cast<::off_t>(in.get_index("the CSV's length", 0, std::numeric_limits<::off_t>::max()));
    staged.crc = static_cast<std::uint32_t>(in.get_u64("the CSV's CRC-32"));
    staged.tag_prefix = in.get_string("the tag values");
    check_prefix(in, staged);
    return staged;
  }

  /// The file's first `committed` bytes must be the ones the checkpointed run wrote.
  void check_prefix(CheckpointReader& in, const Staged& staged) const {
    struct ::stat status {};
    if (::fstat(file_.get(), &status) != 0 || status.st_size < staged.committed)
      in.fail("the CSV file '{}' has {} bytes, fewer than the {} the checkpointed run had written: it is not that "
              "run's file",
              path_, status.st_size, staged.committed);
    std::uint32_t crc = 0;
    char chunk[1 << 16];
    for (::off_t offset = 0; offset < staged.committed;) {
      const auto wanted = static_cast<std::size_t>(std::min<::off_t>(sizeof chunk, staged.committed - offset));
      const ::ssize_t got = ::pread(file_.get(), chunk, wanted, offset);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) in.fail("the CSV file '{}' cannot be read back (resume into a CsvRecorder::reopen)", path_);
      crc = detail::crc32_of(crc, chunk, static_cast<std::size_t>(got));
      offset += got;
    }
    if (crc != staged.crc)
      in.fail("the first {} bytes of the CSV file '{}' differ from what the checkpointed run wrote: it is not that "
              "run's file",
              staged.committed, path_);
  }

  CsvRecorder(const std::string& path, std::vector<std::string> tag_names, Index levels, int open_flags)
      : path_(path),
        tag_names_(std::move(tag_names)),
        levels_(checked_levels(levels)),
        awaiting_checkpoint_((open_flags & O_TRUNC) == 0) {
    tag_prefix_.assign(tag_names_.size(), ',');  // empty tag values until set_tags
    int descriptor = -1;
    do {
      descriptor = ::open(path.c_str(), open_flags, 0666);
    } while (descriptor < 0 && errno == EINTR);
    const int error = errno;
    file_ = detail::FileDescriptor(descriptor);
    if (!file_.valid())
      detail::fail("'path' ({}) cannot be opened for writing: {}", path, std::generic_category().message(error));
  }

  static detail::CsvCell cell(double value) { return detail::CsvCell{value}; }

  static std::size_t checked_levels(Index levels) {
    detail::require(levels >= 0, "'levels' ({}) must be non-negative (0: from the first record)", levels);
    return static_cast<std::size_t>(levels);
  }

  /// One cell per level column; levels the record does not have are empty.
  void append_levels(const std::vector<double>& terms) {
    for (std::size_t l = 0; l < levels_; ++l)
      fmt::format_to(std::back_inserter(buffer_), ",{}", cell(l < terms.size() ? terms[l] : ProbeRecord::not_measured));
  }

  void write_header(std::size_t row_levels) {
    if (levels_ == 0) levels_ = row_levels;
    buffer_.clear();
    for (const auto& name : tag_names_) {
      detail::append_csv_field(buffer_, name);
      buffer_.push_back(',');
    }
    fmt::format_to(std::back_inserter(buffer_),
                   "step,level,loss,grad_norm_sq,d_up,d_down,d_glob,c_in,c_up,c,max_d_up,max_d_down,messages,scalars,"
                   "d_down_at_groups,test_loss,test_accuracy,sim_seconds,sim_compute_seconds,sim_wait_seconds,"
                   "sim_dropped");
    for (std::size_t l = 0; l < levels_; ++l) fmt::format_to(std::back_inserter(buffer_), ",d_level_{}", l);
    for (std::size_t l = 0; l < levels_; ++l) fmt::format_to(std::back_inserter(buffer_), ",c_level_{}", l);
    for (std::size_t l = 0; l < levels_; ++l) fmt::format_to(std::back_inserter(buffer_), ",messages_level_{}", l + 1);
    for (std::size_t l = 0; l < levels_; ++l) fmt::format_to(std::back_inserter(buffer_), ",sim_comm_level_{}", l + 1);
    buffer_.push_back('\n');
    write_buffer();
    header_written_ = true;
  }

  /// Writes the whole buffer with one write(2); more calls only if the kernel takes part of it
  /// (it does not for a regular file unless the disk fills) or a signal interrupts it.
  void write_buffer() {
    const char* data = buffer_.data();
    std::size_t left = buffer_.size();
    while (left > 0) {
      const ::ssize_t written = ::write(file_.get(), data, left);
      if (written < 0 && errno == EINTR) continue;
      if (written <= 0) {  // 0 for a non-empty write is no progress: report it rather than spin
        const int error = written < 0 ? errno : EIO;
        cut_back(buffer_.size() - left);
        throw std::system_error(error, std::generic_category(),
                                fmt::format("cannot write to the CSV file '{}'{}", path_,
                                            torn_ ? " (it now ends with a partial row)" : ""));
      }
      data += written;
      left -= static_cast<std::size_t>(written);
    }
    committed_ += static_cast<::off_t>(buffer_.size());
    crc_ = detail::crc32_of(crc_, buffer_.data(), buffer_.size());
  }

  /// After a failed write of which `partial` bytes went out: cut the file back to its last whole
  /// row, so later rows do not follow a fragment. Where that is impossible (a pipe), remember it.
  void cut_back(std::size_t partial) {
    if (partial == 0) return;
    const bool cut =
        ::ftruncate(file_.get(), committed_) == 0 && ::lseek(file_.get(), committed_, SEEK_SET) == committed_;
    if (!cut) torn_ = true;
  }

  std::string path_;
  std::vector<std::string> tag_names_;
  std::string tag_prefix_;  // the quoted tag values, each followed by a comma
  std::size_t levels_;
  bool header_written_ = false;
  bool torn_ = false;         // a partial row could not be cut off
  bool awaiting_checkpoint_;  // reopened for a resume: no rows until load_state
  ::off_t committed_ = 0;     // bytes of whole lines written so far
  std::uint32_t crc_ = 0;     // CRC-32 of those bytes: tells a resume that the file is this run's
  fmt::memory_buffer buffer_;  // the line being written, reused so rows do not allocate
  detail::FileDescriptor file_;
};

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
