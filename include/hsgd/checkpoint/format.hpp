#pragma once
/// @file
/// The checkpoint file format: a fixed header, named sections, a CRC-32 over everything. The
/// parts of a run write and read their sections through a visit (archive.hpp); CheckpointWriter
/// and CheckpointReader are the byte layer under it, and file.hpp reads and writes the files.
///
/// Layout (all integers in the writer's byte order, which the header records):
///
///   offset  size  field
///        0     8  magic "HSGDCKPT"
///        8     4  byte-order mark 0x01020304 as written (reads 0x04030201 on the other order)
///       12     4  format version (CheckpointFormat::version)
///       16     4  scalar type of the models: 0 none, 1 float, 2 double, 3 long double
///       20     4  reserved, 0
///       24     8  payload size P in bytes
///       32     P  payload: sections, each a name (u32 length + bytes), a u64 size and that many bytes
///     32+P     4  CRC-32 (zlib's) of bytes [0, 32 + P)
///
/// This framing (magic, mark, version, size, trailing CRC) is the same in every version, so any
/// reader can tell a damaged file from one written by a newer hsgd.

#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "hsgd/core/error.hpp"
#include "hsgd/core/random.hpp"
#include "hsgd/core/types.hpp"

namespace hsgd {

/// A checkpoint that cannot be used: unreadable, damaged, truncated, of a newer format, or of a
/// run that differs from the one loading it. The message says which and names what differs.
class CheckpointError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Constants of the file format.
struct CheckpointFormat {
  static constexpr std::string_view magic{"HSGDCKPT", 8};
  static constexpr std::uint32_t byte_order_mark = 0x01020304;
  /// Bumped whenever a section's layout changes; a reader refuses files of another version.
  static constexpr std::uint32_t version = 3;
  static constexpr std::size_t header_size = 32;
  static constexpr std::size_t trailer_size = 4;

  /// The header's code for a scalar type (0 for none).
  template <class Scalar>
  static constexpr std::uint32_t scalar_code() {
    if constexpr (std::is_same_v<Scalar, float>) return 1;
    else if constexpr (std::is_same_v<Scalar, double>) return 2;
    else if constexpr (std::is_same_v<Scalar, long double>) return 3;
    else return 0;
  }
  static constexpr std::string_view scalar_name(std::uint32_t code) {
    constexpr std::string_view names[] = {"none", "float", "double", "long double"};
    return code < 4 ? names[code] : std::string_view("unknown");
  }
};

namespace detail {

inline std::uint32_t crc32_of(std::uint32_t crc, const void* data, std::size_t size) {
  const auto* bytes = static_cast<const Bytef*>(data);
  while (size > 0) {  // zlib takes a uInt length
    const auto chunk = static_cast<uInt>(std::min<std::size_t>(size, std::numeric_limits<uInt>::max()));
    crc = static_cast<std::uint32_t>(::crc32(crc, bytes, chunk));
    bytes += chunk;
    size -= chunk;
  }
  return crc;
}

template <class T>
void append_raw(std::vector<char>& out, const T& value) {
  static_assert(std::is_trivially_copyable_v<T>);
  const auto* bytes = reinterpret_cast<const char*>(&value);
  out.insert(out.end(), bytes, bytes + sizeof(T));
}

}  // namespace detail

/// Writes the sections of a checkpoint. A part writes its section with the `put` calls, in an
/// order its `load_state` reads back. Values are written as they are in memory (the header records
/// the byte order). Large arrays (`put_scalars` of 64 KiB or more) are not copied: the writer
/// keeps a view of them, so they must stay unchanged until the writer has written the file (as
/// in save_checkpoint), and a checkpoint costs little more than writing the models.
class CheckpointWriter {
 public:
  /// Starts section `name`; sections do not nest.
  void begin_section(std::string_view name) {
    if (in_section_) throw InvalidState(fmt::format("checkpoint section '{}' begun inside another", name));
    for (const auto& existing : names_) {
      detail::require(existing != name, "two parts of the checkpoint are named '{}': give each part its own name", name);
    }
    names_.emplace_back(name);
    put_string(name);
    in_section_ = true;
    size_field_ = owned_.size();
    put_u64(0);  // the size, filled in by end_section
    section_start_ = size_;
  }
  void end_section() {
    const std::uint64_t size = size_ - section_start_;
    std::memcpy(owned_.data() + size_field_, &size, sizeof size);
    in_section_ = false;
  }

  void put_u64(std::uint64_t value) { append(&value, sizeof value); }
  void put_index(Index value) {
    const auto wide = static_cast<std::int64_t>(value);
    append(&wide, sizeof wide);
  }
  void put_double(double value) { append(&value, sizeof value); }
  void put_bool(bool value) {
    const char byte = value ? 1 : 0;
    append(&byte, 1);
  }
  void put_string(std::string_view text) {
    const auto length = static_cast<std::uint32_t>(text.size());
    append(&length, sizeof length);
    append(text.data(), text.size());
  }
  void put_rng(const Rng& rng) {
    const Rng::State state = rng.state();
    for (const auto word : state.words) put_u64(word);
    put_double(state.spare);
    put_bool(state.has_spare);
  }
  /// A count, then the values.
  void put_indices(std::span<const Index> values) {
    put_index(static_cast<Index>(values.size()));
    for (const Index value : values) put_index(value);
  }
  void put_doubles(std::span<const double> values) {
    put_index(static_cast<Index>(values.size()));
    for (const double value : values) put_double(value);
  }
  /// `count` scalars, raw (the count is the reader's to know). Kept as a view when large.
  template <Real Scalar>
  void put_scalars(const Scalar* data, std::size_t count) {
    const auto* bytes = reinterpret_cast<const char*>(data);
    const std::size_t size = count * sizeof(Scalar);
    if (size < view_threshold) {
      append(bytes, size);
      return;
    }
    cut_owned();
    segments_.push_back({bytes, size});
    size_ += size;
  }
  /// Bytes as they are: what another writer's payload() returned (the pieces of a section that
  /// other processes wrote, say).
  void put_bytes(std::span<const char> bytes) { append(bytes.data(), bytes.size()); }
  /// The bytes put so far, views included, without the file's header and trailer.
  [[nodiscard]] std::vector<char> payload() const {
    std::vector<char> bytes;
    bytes.reserve(size_);
    std::size_t owned_offset = 0;
    for (const auto& segment : segments_) {
      if (segment.view != nullptr) {
        bytes.insert(bytes.end(), segment.view, segment.view + segment.size);
      } else {
        bytes.insert(bytes.end(), owned_.data() + owned_offset, owned_.data() + owned_offset + segment.size);
        owned_offset += segment.size;
      }
    }
    bytes.insert(bytes.end(), owned_.data() + owned_offset, owned_.data() + owned_.size());
    return bytes;
  }
  /// A configuration entry that the reader compares with its own (CheckpointReader::expect).
  void put_setting(std::string_view name, std::string_view value) {
    put_string(name);
    put_string(value);
  }

  /// The scalar type of the models, recorded in the header (CheckpointFormat::scalar_code).
  void set_scalar_code(std::uint32_t code) { scalar_code_ = code; }

  /// Hands the whole file, in order, to `sink(const char* data, std::size_t size)`: the header,
  /// the sections, and the CRC-32 of everything before it.
  template <class Sink>
  void emit(Sink&& sink) const {
    if (in_section_) throw InvalidState("a checkpoint section was not ended");
    std::vector<char> header;
    header.insert(header.end(), CheckpointFormat::magic.begin(), CheckpointFormat::magic.end());
    detail::append_raw(header, CheckpointFormat::byte_order_mark);
    detail::append_raw(header, CheckpointFormat::version);
    detail::append_raw(header, scalar_code_);
    detail::append_raw(header, std::uint32_t{0});
    detail::append_raw(header, static_cast<std::uint64_t>(size_));
    std::uint32_t crc = detail::crc32_of(0, header.data(), header.size());
    sink(header.data(), header.size());
    const auto piece = [&](const char* data, std::size_t size) {
      crc = detail::crc32_of(crc, data, size);
      sink(data, size);
    };
    std::size_t owned_offset = 0;
    for (const auto& segment : segments_) {
      if (segment.view != nullptr) {
        piece(segment.view, segment.size);
      } else {
        piece(owned_.data() + owned_offset, segment.size);
        owned_offset += segment.size;
      }
    }
    piece(owned_.data() + owned_offset, owned_.size() - owned_offset);
    sink(reinterpret_cast<const char*>(&crc), sizeof crc);
  }

  /// The whole file in memory.
  [[nodiscard]] std::vector<char> finish() const {
    std::vector<char> file;
    file.reserve(CheckpointFormat::header_size + size_ + CheckpointFormat::trailer_size);
    emit([&](const char* data, std::size_t size) { file.insert(file.end(), data, data + size); });
    return file;
  }

 private:
  static constexpr std::size_t view_threshold = std::size_t{64} << 10;

  /// A piece of the file: a view of a caller's array, or (view == nullptr) the next `size`
  /// bytes of owned_.
  struct Segment {
    const char* view;
    std::size_t size;
  };

  void append(const void* data, std::size_t size) {
    const auto* bytes = static_cast<const char*>(data);
    owned_.insert(owned_.end(), bytes, bytes + size);
    size_ += size;
  }
  /// Ends the owned piece before a view.
  void cut_owned() {
    segments_.push_back({nullptr, owned_.size() - owned_cut_});
    owned_cut_ = owned_.size();
  }

  std::vector<char> owned_;
  std::vector<Segment> segments_;
  std::size_t owned_cut_ = 0;  // owned_ bytes already in segments_
  std::size_t size_ = 0;  // bytes of payload so far, owned and viewed
  std::vector<std::string> names_;
  bool in_section_ = false;
  std::size_t size_field_ = 0;     // where in owned_ the open section's size goes
  std::size_t section_start_ = 0;  // payload offset where the open section's content starts
  std::uint32_t scalar_code_ = 0;
};

/// Reads one section of a checkpoint. Every read is bounds-checked: a section that ends early or
/// holds an impossible value throws CheckpointError naming the section and the value.
class CheckpointReader {
 public:
  CheckpointReader(std::string section, std::span<const char> bytes) : section_(std::move(section)), bytes_(bytes) {}

  std::uint64_t get_u64(std::string_view what) { return get_raw<std::uint64_t>(what); }
  Index get_index(std::string_view what) { return static_cast<Index>(get_raw<std::int64_t>(what)); }
  /// An index in [low, high].
  Index get_index(std::string_view what, Index low, Index high) {
    const Index value = get_index(what);
    if (value < low || value > high) fail("{} is {}, outside [{}, {}]", what, value, low, high);
    return value;
  }
  double get_double(std::string_view what) { return get_raw<double>(what); }
  bool get_bool(std::string_view what) {
    const auto value = get_raw<char>(what);
    if (value != 0 && value != 1) fail("{} is not a boolean", what);
    return value == 1;
  }
  std::string get_string(std::string_view what) {
    const auto size = get_raw<std::uint32_t>(what);
    const auto bytes = take(size, what);
    return {bytes.data(), bytes.size()};
  }
  Rng get_rng(std::string_view what) {
    Rng::State state{};
    for (auto& word : state.words) word = get_u64(what);
    state.spare = get_double(what);
    state.has_spare = get_bool(what);
    if (state.words[0] == 0 && state.words[1] == 0 && state.words[2] == 0 && state.words[3] == 0)
      fail("{} has the all-zero state, which no stream can reach", what);
    return Rng::from_state(state);
  }
  /// A count (at most `max_count`), then the indices, each in [low, high].
  std::vector<Index> get_indices(std::string_view what, Index max_count, Index low, Index high) {
    const Index count = get_count(what, max_count, sizeof(std::int64_t));
    std::vector<Index> values(static_cast<std::size_t>(count));
    for (auto& value : values) value = get_index(what, low, high);
    return values;
  }
  std::vector<double> get_doubles(std::string_view what, Index max_count) {
    const Index count = get_count(what, max_count, sizeof(double));
    std::vector<double> values(static_cast<std::size_t>(count));
    for (auto& value : values) value = get_double(what);
    return values;
  }
  template <Real Scalar>
  void get_scalars(Scalar* out, std::size_t count, std::string_view what) {
    const auto bytes = view_scalars<Scalar>(count, what);
    if (!bytes.empty()) std::memcpy(out, bytes.data(), bytes.size());
  }
  /// The bytes of `count` scalars, in place in the checkpoint (valid while its CheckpointFile
  /// lives): how a large model is checked first and copied once, at commit.
  template <Real Scalar>
  std::span<const char> view_scalars(std::size_t count, std::string_view what) {
    if (count > std::numeric_limits<std::size_t>::max() / sizeof(Scalar)) fail("{} is too large", what);
    return take(count * sizeof(Scalar), what);
  }

  /// Reads a configuration entry and compares it with this run's: a checkpoint of another run
  /// is refused here, naming the setting and both values.
  void expect(std::string_view name, std::string_view ours) {
    const std::string stored_name = get_string("a setting's name");
    if (stored_name != name) fail("holds the setting '{}' where '{}' was expected", shortened(stored_name), name);
    const std::string theirs = get_string(name);
    if (theirs != ours) {
      throw CheckpointError(fmt::format("the checkpoint is of another run: its {} {} is {}, this run's is {}", section_,
                                        name, shortened(theirs), shortened(ours)));
    }
  }

  /// Every byte read: a section with bytes left over was written by other code.
  void expect_end() {
    if (position_ != bytes_.size())
      fail("has {} bytes left after its last value: it was written by other code", bytes_.size() - position_);
  }

  [[nodiscard]] const std::string& section() const { return section_; }

  template <class... Args>
  [[noreturn]] void fail(fmt::format_string<Args...> message, Args&&... args) const {
    throw CheckpointError(
        fmt::format("checkpoint section '{}': {}", section_, fmt::format(message, std::forward<Args>(args)...)));
  }

 private:
  /// A long value (the sample counts of 4096 shards, say) cut short for a message.
  static std::string shortened(std::string_view value) {
    constexpr std::size_t limit = 240;
    return value.size() <= limit ? std::string(value)
                                 : fmt::format("{}... ({} characters)", value.substr(0, limit), value.size());
  }

  /// A list's length, at most `max_count` and at most what the rest of the section can hold, so a
  /// damaged count fails here instead of allocating without bound.
  Index get_count(std::string_view what, Index max_count, std::size_t item_size) {
    const Index count = get_index(what, 0, max_count);
    if (static_cast<std::size_t>(count) > (bytes_.size() - position_) / item_size)
      fail("{} has {} entries, more than the section holds", what, count);
    return count;
  }

  std::span<const char> take(std::size_t size, std::string_view what) {
    if (size > bytes_.size() - position_) fail("ends before {} ({} bytes needed, {} left)", what, size, bytes_.size() - position_);
    const auto bytes = bytes_.subspan(position_, size);
    position_ += size;
    return bytes;
  }
  template <class T>
  T get_raw(std::string_view what) {
    const auto bytes = take(sizeof(T), what);
    T value;
    std::memcpy(&value, bytes.data(), sizeof(T));
    return value;
  }

  std::string section_;
  std::span<const char> bytes_;
  std::size_t position_ = 0;
};

}  // namespace hsgd
