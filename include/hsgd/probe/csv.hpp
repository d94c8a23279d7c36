#pragma once
/// @file
/// Probe records to a CSV file, one whole line per record, resumable from a checkpoint.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <iterator>
#include <type_traits>
#include <limits>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "hsgd/checkpoint/archive.hpp"
#include "hsgd/core/error.hpp"
#include "hsgd/core/types.hpp"
#include "hsgd/probe/record.hpp"

namespace hsgd {

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
    position_ = std::move(other.position_);
    torn_ = other.torn_;
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
    position_.tag_prefix.clear();
    for (const auto& value : values) {
      detail::append_csv_field(position_.tag_prefix, value);
      position_.tag_prefix.push_back(',');
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
    if (!position_.header_written) write_header(row_levels);
    detail::require(row_levels <= position_.levels,
                    "a record with {} levels does not fit the CSV's {} per-level columns: give CsvRecorder the "
                    "largest level count as 'levels'",
                    row_levels, position_.levels);
    buffer_.clear();
    buffer_.append(position_.tag_prefix.data(), position_.tag_prefix.data() + position_.tag_prefix.size());
    bool first = true;
    for_each_field(row, [&](const RecordField& field, const auto& value) {
      if (!field.in_csv) return;
      if (!std::exchange(first, false)) buffer_.push_back(',');
      append_value(value);
    });
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

  /// Its part of a checkpoint: how many bytes the rows written so far are and their CRC-32 (saved
  /// after making them durable with fdatasync), the tag names (compared) and values, the per-level
  /// column count. A load checks that the file holds what the checkpointed run had written (its
  /// first bytes have the saved length and CRC-32), then cuts it back to them and continues.
  template <class Archive>
  void checkpoint(Archive& archive) {
    detail::require(file_.valid(), "the CsvRecorder was moved from or closed: it cannot be checkpointed or resume");
    if constexpr (!Archive::loading) {
      if (awaiting_checkpoint_) throw InvalidState(fmt::format("the CSV file '{}' awaits its checkpoint", path_));
      sync();
    }
    archive.setting("tag columns", fmt::format("{}", tag_names_));
    // On load the saved position is staged apart and put in force only once the file is cut back,
    // so a file that cannot be cut leaves the recorder as it was.
    Position& position = [&]() -> Position& {
      if constexpr (Archive::loading) return archive.hold(Position{});
      else return position_;
    }();
    const auto levels = archive.index("the per-level column count", position.levels, 0, max_levels);
    archive.check(!Archive::loading || position_.levels == 0 || levels == position_.levels,
                  "the CSV had {} per-level columns, this recorder has {}", levels, position_.levels);
    archive.flag("whether the header was written", position.header_written);
    const ::off_t committed =
        archive.index("the CSV's length", position.committed, 0, std::numeric_limits<::off_t>::max());
    const std::uint32_t crc = archive.u64("the CSV's CRC-32", position.crc);
    archive.text("the tag values", position.tag_prefix);
    if constexpr (Archive::loading) {
      check_prefix(archive, committed, crc);
      archive.after_load([this, &position] {
        if (::ftruncate(file_.get(), position.committed) != 0 ||
            ::lseek(file_.get(), position.committed, SEEK_SET) != position.committed) {
          const int error = errno != 0 ? errno : EIO;
          throw std::system_error(error, std::generic_category(), fmt::format("cannot cut the CSV file '{}' back", path_));
        }
        position_ = std::move(position);
        torn_ = false;
        awaiting_checkpoint_ = false;
      });
    }
  }

 private:
  static constexpr Index max_levels = 1 << 16;

  /// Where the file stands: what a checkpoint records of it.
  struct Position {
    std::size_t levels = 0;       // per-level columns (0: from the first record)
    bool header_written = false;
    ::off_t committed = 0;        // bytes of whole lines written so far
    std::uint32_t crc = 0;        // CRC-32 of those bytes: tells a resume that the file is this run's
    std::string tag_prefix;       // the quoted tag values, each followed by a comma
  };

  void sync() const {
    int result = 0;
    do {
      result = ::fdatasync(file_.get());
    } while (result != 0 && errno == EINTR);
    const int error = errno;
    if (result != 0 && error != EINVAL)  // EINVAL: a pipe or a special file, nothing to sync
      throw std::system_error(error, std::generic_category(), fmt::format("cannot sync the CSV file '{}'", path_));
  }

  /// The file's first `committed` bytes must be the ones the checkpointed run wrote.
  void check_prefix(LoadArchive& in, ::off_t committed, std::uint32_t saved_crc) const {
    struct ::stat status {};
    if (::fstat(file_.get(), &status) != 0 || status.st_size < committed)
      in.fail("the CSV file '{}' has {} bytes, fewer than the {} the checkpointed run had written: it is not that "
              "run's file",
              path_, status.st_size, committed);
    std::uint32_t crc = 0;
    char chunk[1 << 16];
    for (::off_t offset = 0; offset < committed;) {
      const auto wanted = static_cast<std::size_t>(std::min<::off_t>(sizeof chunk, committed - offset));
      const ::ssize_t got = ::pread(file_.get(), chunk, wanted, offset);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) in.fail("the CSV file '{}' cannot be read back (resume into a CsvRecorder::reopen)", path_);
      crc = detail::crc32_of(crc, chunk, static_cast<std::size_t>(got));
      offset += got;
    }
    if (crc != saved_crc)
      in.fail("the first {} bytes of the CSV file '{}' differ from what the checkpointed run wrote: it is not that "
              "run's file",
              committed, path_);
  }

  CsvRecorder(const std::string& path, std::vector<std::string> tag_names, Index levels, int open_flags)
      : path_(path),
        tag_names_(std::move(tag_names)),
        awaiting_checkpoint_((open_flags & O_TRUNC) == 0) {
    position_.levels = checked_levels(levels);
    position_.tag_prefix.assign(tag_names_.size(), ',');  // empty tag values until set_tags
    int descriptor = -1;
    do {
      descriptor = ::open(path.c_str(), open_flags, 0666);
    } while (descriptor < 0 && errno == EINTR);
    const int error = errno;
    file_ = detail::FileDescriptor(descriptor);
    if (!file_.valid())
      detail::fail("'path' ({}) cannot be opened for writing: {}", path, std::generic_category().message(error));
  }

  static std::size_t checked_levels(Index levels) {
    detail::require(levels >= 0, "'levels' ({}) must be non-negative (0: from the first record)", levels);
    return static_cast<std::size_t>(levels);
  }

  /// A value's cell: an integer as it is, a double as detail::CsvCell says, a per-level list as
  /// one cell per level column (empty where the record has fewer levels).
  template <class Value>
  void append_value(const Value& value) {
    if constexpr (std::is_same_v<Value, Index>) {
      fmt::format_to(std::back_inserter(buffer_), "{}", value);
    } else if constexpr (std::is_same_v<Value, double>) {
      fmt::format_to(std::back_inserter(buffer_), "{}", detail::CsvCell{value});
    } else {
      for (std::size_t l = 0; l < position_.levels; ++l) {
        if (l > 0) buffer_.push_back(',');
        if (l < value.size()) append_value(value[l]);
        else if constexpr (std::is_same_v<typename Value::value_type, double>) append_value(ProbeRecord::not_measured);
      }
    }
  }

  void write_header(std::size_t row_levels) {
    if (position_.levels == 0) position_.levels = row_levels;
    buffer_.clear();
    for (const auto& name : tag_names_) {
      detail::append_csv_field(buffer_, name);
      buffer_.push_back(',');
    }
    bool first = true;
    const ProbeRecord names_only;
    for_each_field(names_only, [&](const RecordField& field, const auto& /*value*/) {
      if (!field.in_csv) return;
      const std::size_t columns = field.first_level < 0 ? 1 : position_.levels;
      for (std::size_t l = 0; l < columns; ++l) {
        if (!std::exchange(first, false)) buffer_.push_back(',');
        buffer_.append(field.name.data(), field.name.data() + field.name.size());
        if (field.first_level >= 0) fmt::format_to(std::back_inserter(buffer_), "{}", l + static_cast<std::size_t>(field.first_level));
      }
    });
    buffer_.push_back('\n');
    write_buffer();
    position_.header_written = true;
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
    position_.committed += static_cast<::off_t>(buffer_.size());
    position_.crc = detail::crc32_of(position_.crc, buffer_.data(), buffer_.size());
  }

  /// After a failed write of which `partial` bytes went out: cut the file back to its last whole
  /// row, so later rows do not follow a fragment. Where that is impossible (a pipe), remember it.
  void cut_back(std::size_t partial) {
    if (partial == 0) return;
    const bool cut =
        ::ftruncate(file_.get(), position_.committed) == 0 &&
        ::lseek(file_.get(), position_.committed, SEEK_SET) == position_.committed;
    if (!cut) torn_ = true;
  }

  std::string path_;
  std::vector<std::string> tag_names_;
  Position position_;
  bool torn_ = false;         // a partial row could not be cut off
  bool awaiting_checkpoint_;  // reopened for a resume: no rows until a checkpoint is loaded
  fmt::memory_buffer buffer_;  // the line being written, reused so rows do not allocate
  detail::FileDescriptor file_;
};

}  // namespace hsgd
