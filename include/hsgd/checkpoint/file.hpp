#pragma once
/// @file
/// Checkpoint files on disk: written atomically (a temporary file, fsync, rename, keep-last-k
/// rotation), read through a read-only mapping and verified (framing, CRC-32, version) before any
/// section is read.

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "hsgd/checkpoint/format.hpp"

namespace hsgd {

namespace detail {

[[noreturn]] inline void throw_system_error(int error, const std::string& what) {
  throw std::system_error(error, std::generic_category(), what);
}

/// Writes all of `bytes` to `descriptor`, through EINTR and short writes.
inline void write_all(int descriptor, std::span<const char> bytes, const std::string& path) {
  while (!bytes.empty()) {
    const ::ssize_t written = ::write(descriptor, bytes.data(), bytes.size());
    if (written < 0 && errno == EINTR) continue;
    if (written <= 0) {
      const int error = written < 0 ? errno : EIO;
      throw_system_error(error, fmt::format("cannot write '{}'", path));
    }
    bytes = bytes.subspan(static_cast<std::size_t>(written));
  }
}

inline void sync_descriptor(int descriptor, const std::string& path) {
  int result = 0;
  do {
    result = ::fsync(descriptor);
  } while (result != 0 && errno == EINTR);
  const int error = errno;
  if (result != 0) throw_system_error(error, fmt::format("cannot fsync '{}'", path));
}

inline std::string directory_of(const std::string& path) {
  const auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

/// Makes a rename in `directory` durable.
inline void sync_directory(const std::string& directory) {
  const int descriptor = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (descriptor < 0) {
    const int error = errno;
    throw_system_error(error, fmt::format("cannot open the directory '{}' to fsync it", directory));
  }
  int result = 0;
  do {
    result = ::fsync(descriptor);
  } while (result != 0 && errno == EINTR);
  const int error = errno;
  ::close(descriptor);
  if (result != 0 && error != EINVAL) throw_system_error(error, fmt::format("cannot fsync the directory '{}'", directory));
}

/// `path.k`: the k-th older checkpoint kept by the rotation.
inline std::string rotated_name(const std::string& path, int age) { return fmt::format("{}.{}", path, age); }

/// Keeps `keep` checkpoints: path (newest), path.1, ..., path.(keep-1). `path` stays in place
/// (path.1 becomes a second name for it), so a crash at any moment leaves a complete newest file;
/// on a file system without hard links path.1 is made by renaming, and path is briefly absent.
inline void rotate(const std::string& path, int keep) {
  if (keep <= 1 || ::access(path.c_str(), F_OK) != 0) return;
  for (int age = keep - 1; age >= 2; --age) {
    const std::string older = rotated_name(path, age - 1);
    if (::rename(older.c_str(), rotated_name(path, age).c_str()) != 0 && errno != ENOENT) {
      const int error = errno;
      throw_system_error(error, fmt::format("cannot rotate '{}'", older));
    }
  }
  const std::string first = rotated_name(path, 1);
  ::unlink(first.c_str());
  if (::link(path.c_str(), first.c_str()) != 0 && ::rename(path.c_str(), first.c_str()) != 0) {
    const int error = errno;
    throw_system_error(error, fmt::format("cannot keep '{}' as '{}'", path, first));
  }
}

/// The process's umask, read without changing it (umask(2) would, racing other threads).
inline ::mode_t current_umask() {
  const int descriptor = ::open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  ::mode_t mask = 022;
  if (descriptor < 0) return mask;
  char text[4096];
  const ::ssize_t got = ::read(descriptor, text, sizeof text - 1);
  ::close(descriptor);
  if (got <= 0) return mask;
  text[got] = '\0';
  if (const char* line = std::strstr(text, "Umask:")) mask = static_cast<::mode_t>(std::strtoul(line + 6, nullptr, 8));
  return mask;
}

/// Writes a file atomically: a temporary file in the same directory, filled by
/// `write_content(descriptor, temporary_path)`, fsync'ed (when `durable`), renamed over `path`
/// (after the keep-last-k rotation), and the directory fsync'ed. Readers of `path` see the old
/// file or the new one, never a part.
template <class WriteContent>
void write_file_atomically(const std::string& path, WriteContent&& write_content, bool durable, int keep) {
  std::string temporary = path + ".tmp.XXXXXX";
  const int descriptor = ::mkostemp(temporary.data(), O_CLOEXEC);
  if (descriptor < 0) {
    const int error = errno;
    throw_system_error(error, fmt::format("cannot create a temporary file next to '{}'", path));
  }
  try {
    // mkostemp makes the file 0600; give it the permissions any new file of this process gets.
    if (::fchmod(descriptor, 0666 & ~current_umask()) != 0) {
      const int error = errno;
      throw_system_error(error, fmt::format("cannot set the permissions of '{}'", temporary));
    }
    write_content(descriptor, temporary);
    if (durable) sync_descriptor(descriptor, temporary);
  } catch (...) {
    ::close(descriptor);
    ::unlink(temporary.c_str());
    throw;
  }
  if (::close(descriptor) != 0) {  // closed even when it fails: never close it twice
    const int error = errno;
    ::unlink(temporary.c_str());
    throw_system_error(error, fmt::format("cannot close '{}'", temporary));
  }
  try {
    rotate(path, keep);
    if (::rename(temporary.c_str(), path.c_str()) != 0) {
      const int error = errno;
      throw_system_error(error, fmt::format("cannot rename '{}' to '{}'", temporary, path));
    }
  } catch (...) {
    ::unlink(temporary.c_str());
    throw;
  }
  if (durable) sync_directory(directory_of(path));
}

/// Writes the whole checkpoint held by `out` to `descriptor` (named `path` in errors).
inline void write_checkpoint(int descriptor, const CheckpointWriter& out, const std::string& path) {
  out.emit([&](const char* data, std::size_t size) { write_all(descriptor, {data, size}, path); });
}

/// A file's bytes, mapped read-only and paged in at once (cheaper than reading into a fresh
/// buffer, whose every page the kernel would have to zero and fault in).
class MappedFile {
 public:
  explicit MappedFile(const std::string& path) {
    const int descriptor = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (descriptor < 0) {
      const int error = errno;
      throw_system_error(error, fmt::format("cannot open the checkpoint '{}'", path));
    }
    struct ::stat status {};
    if (::fstat(descriptor, &status) != 0) {
      const int error = errno;
      ::close(descriptor);
      throw_system_error(error, fmt::format("cannot read the checkpoint '{}'", path));
    }
    size_ = static_cast<std::size_t>(status.st_size);
    if (size_ > 0) {
      void* address = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE | MAP_POPULATE, descriptor, 0);
      if (address == MAP_FAILED) {
        const int error = errno;
        ::close(descriptor);
        throw_system_error(error, fmt::format("cannot read the checkpoint '{}'", path));
      }
      data_ = static_cast<const char*>(address);
    }
    ::close(descriptor);
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  MappedFile(MappedFile&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}
  MappedFile& operator=(MappedFile&&) = delete;
  ~MappedFile() {
    if (data_ != nullptr) ::munmap(const_cast<char*>(data_), size_);
  }
  [[nodiscard]] std::span<const char> bytes() const { return {data_, size_}; }

 private:
  const char* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace detail

/// A checkpoint read into memory and verified (framing, CRC, version); its sections are then
/// read by name.
class CheckpointFile {
 public:
  /// Reads and verifies `path`. Throws CheckpointError for a file that is not a checkpoint, is
  /// truncated or damaged, or was written by a newer hsgd, and std::system_error when it
  /// cannot be read.
  static CheckpointFile read(const std::string& path) { return CheckpointFile(path, detail::MappedFile(path)); }

  /// A checkpoint held in memory (CheckpointWriter::finish), named `path` in messages.
  CheckpointFile(std::string path, std::vector<char> bytes)
      : path_(std::move(path)), owned_(std::move(bytes)), bytes_(owned_) {
    verify();
    index_sections();
  }
  CheckpointFile(std::string path, detail::MappedFile mapped)
      : path_(std::move(path)), mapped_(std::move(mapped)), bytes_(mapped_->bytes()) {
    verify();
    index_sections();
  }
  CheckpointFile(const CheckpointFile&) = delete;
  CheckpointFile& operator=(const CheckpointFile&) = delete;

  [[nodiscard]] bool has_section(std::string_view name) const {
    return std::any_of(sections_.begin(), sections_.end(), [&](const auto& section) { return section.name == name; });
  }
  /// A reader over section `name`.
  [[nodiscard]] CheckpointReader section(std::string_view name) const {
    for (const auto& section : sections_) {
      if (section.name == name)
        return CheckpointReader(section.name, bytes_.subspan(section.offset, section.size));
    }
    std::string names;
    for (const auto& section : sections_) names += (names.empty() ? "" : ", ") + section.name;
    throw CheckpointError(fmt::format("the checkpoint '{}' has no section '{}' (it has: {})", path_, name, names));
  }
  /// The scalar type code of the header (CheckpointFormat::scalar_code).
  [[nodiscard]] std::uint32_t scalar_code() const { return scalar_code_; }
  [[nodiscard]] std::uint32_t version() const { return version_; }
  [[nodiscard]] const std::string& path() const { return path_; }
  [[nodiscard]] std::size_t size() const { return bytes_.size(); }

 private:
  struct Section {
    std::string name;
    std::size_t offset;
    std::size_t size;
  };

  template <class... Args>
  [[noreturn]] void fail(fmt::format_string<Args...> message, Args&&... args) const {
    throw CheckpointError(fmt::format("'{}' {}", path_, fmt::format(message, std::forward<Args>(args)...)));
  }

  template <class T>
  T header_field(std::size_t offset) const {
    T value;
    std::memcpy(&value, bytes_.data() + offset, sizeof(T));
    return value;
  }

  void verify() {
    const std::size_t minimum = CheckpointFormat::header_size + CheckpointFormat::trailer_size;
    if (bytes_.size() < CheckpointFormat::magic.size() ||
        std::string_view(bytes_.data(), CheckpointFormat::magic.size()) != CheckpointFormat::magic)
      fail("is not an hsgd checkpoint (it does not start with \"HSGDCKPT\")");
    if (bytes_.size() < minimum) fail("is truncated: {} bytes, fewer than the {}-byte header and checksum", bytes_.size(), minimum);
    const auto mark = header_field<std::uint32_t>(8);
    if (mark != CheckpointFormat::byte_order_mark) {
      if (mark == __builtin_bswap32(CheckpointFormat::byte_order_mark))
        fail("was written on a machine of the other byte order; hsgd reads checkpoints of its own byte order only");
      fail("is damaged: its byte-order mark is {:#010x}", mark);
    }
    const auto payload = header_field<std::uint64_t>(24);
    if (payload > bytes_.size() - minimum)
      fail("is truncated: it has {} bytes but its header announces {} bytes of content after its {}-byte header",
           bytes_.size(), payload, CheckpointFormat::header_size);
    const std::size_t expected = minimum + payload;
    if (bytes_.size() > expected) fail("has {} bytes after its end: it is damaged", bytes_.size() - expected);
    const std::size_t checked = bytes_.size() - CheckpointFormat::trailer_size;
    const auto stored = header_field<std::uint32_t>(checked);
    const std::uint32_t computed = detail::crc32_of(0, bytes_.data(), checked);
    if (stored != computed)
      fail("is damaged: its CRC-32 is {:#010x} but its content gives {:#010x}", stored, computed);
    version_ = header_field<std::uint32_t>(12);
    if (version_ > CheckpointFormat::version)
      fail("has format version {}, newer than this hsgd reads ({}): resume it with the hsgd that wrote it", version_,
           CheckpointFormat::version);
    if (version_ == 0) fail("has format version 0, which no hsgd writes");
    if (version_ < CheckpointFormat::version)
      fail("has format version {}, older than this hsgd reads ({}): its sections have another layout; resume it "
           "with the hsgd that wrote it",
           version_, CheckpointFormat::version);
    scalar_code_ = header_field<std::uint32_t>(16);
  }

  void index_sections() {
    const std::size_t end = bytes_.size() - CheckpointFormat::trailer_size;
    std::size_t position = CheckpointFormat::header_size;
    while (position < end) {
      if (end - position < 4) fail("is damaged: a section name is cut off");
      const auto name_size = header_field<std::uint32_t>(position);
      position += 4;
      if (end - position < name_size + std::size_t{8}) fail("is damaged: a section header is cut off");
      std::string name(bytes_.data() + position, name_size);
      position += name_size;
      const auto size = header_field<std::uint64_t>(position);
      position += 8;
      if (size > end - position) fail("is damaged: section '{}' runs past the end", name);
      sections_.push_back({std::move(name), position, static_cast<std::size_t>(size)});
      position += static_cast<std::size_t>(size);
    }
  }

  std::string path_;
  std::vector<char> owned_;
  std::optional<detail::MappedFile> mapped_;
  std::span<const char> bytes_;  // owned_ or mapped_
  std::vector<Section> sections_;
  std::uint32_t version_ = 0;
  std::uint32_t scalar_code_ = 0;
};

}  // namespace hsgd