#pragma once
/// @file
/// Data files into Datasets: IDX (MNIST, Fashion-MNIST; gzip-compressed as shipped, or plain),
/// LIBSVM / SVMlight text, and numeric CSV. A file that is not what it should be is a
/// DataFileError naming the file, where (line, or byte offset) and what was expected; nothing is
/// returned half-read.

#include <zlib.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "hsgd/core/error.hpp"
#include "hsgd/core/types.hpp"
#include "hsgd/data/dataset.hpp"

namespace hsgd {

/// A data file that cannot be read as what it should be.
class DataFileError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {

template <class... Args>
[[noreturn]] void file_error(const std::string& path, fmt::format_string<Args...> format, Args&&... args) {
  throw DataFileError(fmt::format("'{}': {}", path, fmt::format(format, std::forward<Args>(args)...)));
}

/// The whole file, decompressed if it is gzip (zlib reads plain files as they are).
inline std::vector<unsigned char> read_file_bytes(const std::string& path) {
  gzFile file = gzopen(path.c_str(), "rb");
  if (file == nullptr) file_error(path, "cannot open it");
  std::vector<unsigned char> bytes;
  unsigned char buffer[1 << 16];
  for (;;) {
    const int got = gzread(file, buffer, sizeof buffer);
    if (got < 0) {
      int code = 0;
      const std::string why = gzerror(file, &code);
      gzclose(file);
      file_error(path, "cannot read it after byte {}: {}", bytes.size(), why);
    }
    if (got == 0) break;
    bytes.insert(bytes.end(), buffer, buffer + got);
  }
  // A gzip stream cut short reads as a short file without an error from gzread; gzclose reports it.
  if (gzclose(file) != Z_OK) file_error(path, "the compressed data end early after {} bytes (truncated?)", bytes.size());
  return bytes;
}

inline std::uint32_t big_endian_u32(const std::vector<unsigned char>& bytes, std::size_t offset) {
  return (std::uint32_t{bytes[offset]} << 24) | (std::uint32_t{bytes[offset + 1]} << 16) |
         (std::uint32_t{bytes[offset + 2]} << 8) | std::uint32_t{bytes[offset + 3]};
}

/// An IDX file of unsigned bytes with `dimensions` sizes: returns the sizes; checks the magic
/// number and that the data are all there (and no more).
inline std::vector<Index> idx_header(const std::vector<unsigned char>& bytes, const std::string& path, int dimensions) {
  const std::uint32_t expected_magic = 0x0800u + static_cast<std::uint32_t>(dimensions);
  if (bytes.size() < 4) file_error(path, "{} bytes: too short for an IDX header (magic number 0x{:08x})", bytes.size(), expected_magic);
  const std::uint32_t magic = big_endian_u32(bytes, 0);
  if (magic != expected_magic)
    file_error(path, "byte 0: magic number 0x{:08x}, expected 0x{:08x} (IDX, unsigned bytes, {} dimension{})", magic,
               expected_magic, dimensions, dimensions == 1 ? "" : "s");
  const std::size_t header = 4 + 4 * static_cast<std::size_t>(dimensions);
  if (bytes.size() < header) file_error(path, "{} bytes: the IDX header needs {}", bytes.size(), header);
  std::vector<Index> sizes;
  Index total = 1;
  for (int k = 0; k < dimensions; ++k) {
    sizes.push_back(static_cast<Index>(big_endian_u32(bytes, 4 + 4 * static_cast<std::size_t>(k))));
    if (!product_fits(total, sizes.back())) file_error(path, "byte {}: the sizes overflow", 4 + 4 * k);
    total *= sizes.back();
  }
  const auto expected = static_cast<Index>(header) + total;
  if (static_cast<Index>(bytes.size()) < expected)
    file_error(path, "truncated: {} bytes, but its header promises {} ({} data bytes from byte {})", bytes.size(), expected,
               total, header);
  if (static_cast<Index>(bytes.size()) > expected)
    file_error(path, "{} bytes, but its header promises {}: extra data after byte {}", bytes.size(), expected, expected);
  return sizes;
}

/// A number in `token` (the whole of it), or a DataFileError naming the place.
inline double parse_number(std::string_view token, const std::string& path, Index line, std::string_view what) {
  const std::string text(token);  // strtod needs the terminating zero
  char* end = nullptr;
  const double value = text.empty() ? 0.0 : std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size())
    file_error(path, "line {}: '{}' is not a number ({} expected)", line, token, what);
  if (!std::isfinite(value)) file_error(path, "line {}: {} '{}' is not finite", line, what, token);
  return value;
}

/// Class indices 0..C-1 for the distinct label values, in ascending order of value.
inline std::vector<Index> class_indices(const std::vector<double>& values, std::vector<double>& distinct) {
  distinct = values;
  std::sort(distinct.begin(), distinct.end());
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  std::vector<Index> classes;
  classes.reserve(values.size());
  for (const double value : values)
    classes.push_back(static_cast<Index>(std::lower_bound(distinct.begin(), distinct.end(), value) - distinct.begin()));
  return classes;
}

/// The lines of a text file, each without its end of line (and without a trailing '\r').
inline std::vector<std::string_view> lines_of(const std::vector<unsigned char>& bytes) {
  std::vector<std::string_view> lines;
  const std::string_view text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    start = end + 1;
  }
  return lines;
}

}  // namespace detail

/// A data set read from a file, with the label values of the file: class c of `data` is the
/// c-th smallest distinct label of the file (so LIBSVM's -1 / +1 become classes 0 / 1).
template <Real S = double>
struct LabelledFile {
  Dataset<S> data;
  std::vector<double> label_values;  ///< label_values[c]: the file's label of class c
};

/// Reads an IDX pair (images: 0x00000803, n x rows x columns unsigned bytes; labels: 0x00000801,
/// n unsigned bytes), gzip-compressed as MNIST-like sets ship or plain. Sample k is column k,
/// its pixels row by row as numbers 0..255 (see scale_features to bring them to [0, 1]); classes
/// = the largest label + 1. Throws DataFileError on a wrong magic number, a truncated file, or
/// image and label files that disagree on the number of samples.
template <Real S = double>
Dataset<S> read_idx(const std::string& images_path, const std::string& labels_path) {
  const std::vector<unsigned char> images = detail::read_file_bytes(images_path);
  const std::vector<Index> image_sizes = detail::idx_header(images, images_path, 3);
  const std::vector<unsigned char> labels = detail::read_file_bytes(labels_path);
  const std::vector<Index> label_sizes = detail::idx_header(labels, labels_path, 1);
  if (image_sizes[0] != label_sizes[0])
    detail::file_error(labels_path, "{} labels, but '{}' holds {} images", label_sizes[0], images_path, image_sizes[0]);
  const Index samples = image_sizes[0];
  const Index pixels = image_sizes[1] * image_sizes[2];
  if (!detail::matrix_fits<S>(pixels, samples)) detail::file_error(images_path, "{} x {} pixels do not fit in memory", samples, pixels);
  Dataset<S> data;
  data.features.resize(pixels, samples);
  const unsigned char* pixel = images.data() + 16;
  for (Index k = 0; k < samples; ++k)
    for (Index i = 0; i < pixels; ++i) data.features(i, k) = static_cast<S>(*pixel++);
  data.labels.reserve(static_cast<std::size_t>(samples));
  Index largest = 0;
  for (Index k = 0; k < samples; ++k) {
    data.labels.push_back(labels[8 + static_cast<std::size_t>(k)]);
    largest = std::max(largest, data.labels.back());
  }
  data.classes = samples > 0 ? largest + 1 : 1;
  return data;
}

/// How read_libsvm reads.
struct LibsvmOptions {
  /// d: 0 infers it from the largest index in the file; otherwise an index beyond it is an error
  /// (a test file read with the training file's dimension).
  Index dimension = 0;

  void validate() const { detail::require(dimension >= 0, "'dimension' ({}) must be 0 (infer) or positive", dimension); }
};

/// Reads LIBSVM / SVMlight text: one sample per line, `label index:value index:value ...` with
/// 1-based, strictly increasing indices (absent ones are 0); `#` starts a comment; blank lines are
/// skipped. Labels are numbers; class c is the c-th smallest distinct label (LabelledFile).
/// Throws DataFileError naming the line for a token that is not a number, a pair that is not
/// `index:value`, an index of 0, out of order, or beyond `options.dimension`.
template <Real S = double>
LabelledFile<S> read_libsvm(const std::string& path, const LibsvmOptions& options = {}) {
  options.validate();
  const std::vector<unsigned char> bytes = detail::read_file_bytes(path);
  std::vector<double> labels;
  std::vector<std::vector<std::pair<Index, double>>> rows;
  Index largest = 0;
  Index line_number = 0;
  for (std::string_view line : detail::lines_of(bytes)) {
    ++line_number;
    if (const auto comment = line.find('#'); comment != std::string_view::npos) line = line.substr(0, comment);
    std::vector<std::string_view> tokens;
    for (std::size_t start = 0; start < line.size();) {
      const std::size_t begin = line.find_first_not_of(" \t", start);
      if (begin == std::string_view::npos) break;
      const std::size_t end = std::min(line.find_first_of(" \t", begin), line.size());
      tokens.push_back(line.substr(begin, end - begin));
      start = end;
    }
    if (tokens.empty()) continue;
    labels.push_back(detail::parse_number(tokens[0], path, line_number, "a label"));
    auto& row = rows.emplace_back();
    for (std::size_t t = 1; t < tokens.size(); ++t) {
      const auto colon = tokens[t].find(':');
      if (colon == std::string_view::npos)
        detail::file_error(path, "line {}: '{}' is not 'index:value'", line_number, tokens[t]);
      const std::string_view index_text = tokens[t].substr(0, colon);
      Index index = 0;
      const auto [end, error] = std::from_chars(index_text.data(), index_text.data() + index_text.size(), index);
      if (error != std::errc{} || end != index_text.data() + index_text.size())
        detail::file_error(path, "line {}: '{}' in '{}' is not an index", line_number, index_text, tokens[t]);
      if (index < 1) detail::file_error(path, "line {}: index {} in '{}': indices start at 1", line_number, index, tokens[t]);
      if (!row.empty() && index <= row.back().first)
        detail::file_error(path, "line {}: index {} after index {}: indices must increase", line_number, index, row.back().first);
      if (options.dimension > 0 && index > options.dimension)
        detail::file_error(path, "line {}: index {} is beyond the dimension {}", line_number, index, options.dimension);
      row.emplace_back(index, detail::parse_number(tokens[t].substr(colon + 1), path, line_number, "a value"));
      largest = std::max(largest, index);
    }
  }
  if (rows.empty()) detail::file_error(path, "no samples");
  LabelledFile<S> result;
  const Index d = options.dimension > 0 ? options.dimension : std::max<Index>(largest, 1);
  if (!detail::matrix_fits<S>(d, static_cast<Index>(rows.size())))
    detail::file_error(path, "{} samples of dimension {} do not fit in memory", rows.size(), d);
  result.data.features.setZero(d, static_cast<Index>(rows.size()));
  for (std::size_t k = 0; k < rows.size(); ++k)
    for (const auto& [index, value] : rows[k]) result.data.features(index - 1, static_cast<Index>(k)) = static_cast<S>(value);
  result.data.labels = detail::class_indices(labels, result.label_values);
  result.data.classes = static_cast<Index>(result.label_values.size());
  return result;
}

/// How read_csv reads.
struct CsvOptions {
  /// The column of the label, from 0; -1 is the last column.
  Index label_column = 0;
  /// Skip the first line (column names).
  bool header = false;
  char delimiter = ',';

  void validate() const { detail::require(label_column >= -1, "'label_column' ({}) must be -1 (last) or a column", label_column); }
};

/// Reads numeric CSV: one sample per line, every line the same number of columns, the label in
/// `options.label_column` (class c is the c-th smallest distinct label, see LabelledFile), the
/// other columns the features in order. Blank lines are skipped. Throws DataFileError naming
/// the line and column of a token that is not a number or a line with another column count.
template <Real S = double>
LabelledFile<S> read_csv(const std::string& path, const CsvOptions& options = {}) {
  options.validate();
  const std::vector<unsigned char> bytes = detail::read_file_bytes(path);
  std::vector<double> labels;
  std::vector<double> values;
  Index columns = -1;
  Index line_number = 0;
  for (const std::string_view line : detail::lines_of(bytes)) {
    ++line_number;
    if (options.header && line_number == 1) continue;
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
    std::vector<std::string_view> cells;
    for (std::size_t start = 0;;) {
      const std::size_t end = std::min(line.find(options.delimiter, start), line.size());
      std::string_view cell = line.substr(start, end - start);
      while (!cell.empty() && (cell.front() == ' ' || cell.front() == '\t')) cell.remove_prefix(1);
      while (!cell.empty() && (cell.back() == ' ' || cell.back() == '\t')) cell.remove_suffix(1);
      cells.push_back(cell);
      if (end == line.size()) break;
      start = end + 1;
    }
    const auto count = static_cast<Index>(cells.size());
    if (columns < 0) {
      columns = count;
      if (columns < 2) detail::file_error(path, "line {}: {} column: a label and at least one feature expected", line_number, columns);
      if (options.label_column >= columns)
        detail::file_error(path, "line {}: {} columns, but the label is in column {}", line_number, columns, options.label_column);
    } else if (count != columns) {
      detail::file_error(path, "line {}: {} columns, but the lines before have {}", line_number, count, columns);
    }
    const Index label_column = options.label_column < 0 ? columns - 1 : options.label_column;
    for (Index c = 0; c < columns; ++c) {
      const double value = detail::parse_number(cells[static_cast<std::size_t>(c)], path, line_number,
                                                c == label_column ? "a label" : fmt::format("column {}", c + 1));
      if (c == label_column) labels.push_back(value);
      else values.push_back(value);
    }
  }
  if (labels.empty()) detail::file_error(path, "no samples");
  LabelledFile<S> result;
  const Index d = columns - 1;
  const auto m = static_cast<Index>(labels.size());
  result.data.features.resize(d, m);
  for (Index k = 0; k < m; ++k)
    for (Index i = 0; i < d; ++i) result.data.features(i, k) = static_cast<S>(values[static_cast<std::size_t>(k * d + i)]);
  result.data.labels = detail::class_indices(labels, result.label_values);
  result.data.classes = static_cast<Index>(result.label_values.size());
  return result;
}

}  // namespace hsgd
