// Data files: IDX (plain and gzip), LIBSVM and CSV read into Datasets exactly, and every
// malformed file the tests write is refused with a DataFileError naming the file, the place and
// what was expected. Also the preprocessing: scalings fitted on a training set, and the split.

#include <zlib.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include <hsgd/data/preprocess.hpp>
#include <hsgd/data/readers.hpp>

#include "support.hpp"

using namespace test;
using Catch::Matchers::Contains;

namespace {

/// A temporary directory that writes the files the tests read.
class Files {
 public:
  /// Writes `bytes` to `name` (gzip-compressed when `compressed`) and returns its path.
  std::string write(const std::string& name, const std::string& bytes, bool compressed = false) const {
    const std::string path = directory_.file(name);
    if (compressed) {
      gzFile file = gzopen(path.c_str(), "wb");
      REQUIRE(file != nullptr);
      REQUIRE(gzwrite(file, bytes.data(), static_cast<unsigned>(bytes.size())) == static_cast<int>(bytes.size()));
      REQUIRE(gzclose(file) == Z_OK);
    } else {
      std::ofstream out(path, std::ios::binary);
      out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    }
    return path;
  }

 private:
  TempDir directory_;
};

std::string big_endian(std::uint32_t value) {
  return {static_cast<char>(value >> 24), static_cast<char>(value >> 16), static_cast<char>(value >> 8),
          static_cast<char>(value)};
}

/// An IDX image file of `count` images of rows x columns, pixel p of image k = 10 k + p.
std::string idx_images(std::uint32_t count, std::uint32_t rows, std::uint32_t columns) {
  std::string bytes = big_endian(0x803) + big_endian(count) + big_endian(rows) + big_endian(columns);
  for (std::uint32_t k = 0; k < count; ++k)
    for (std::uint32_t p = 0; p < rows * columns; ++p) bytes += static_cast<char>(10 * k + p);
  return bytes;
}

std::string idx_labels(const std::vector<int>& labels) {
  std::string bytes = big_endian(0x801) + big_endian(static_cast<std::uint32_t>(labels.size()));
  for (const int label : labels) bytes += static_cast<char>(label);
  return bytes;
}

/// What read_* throws for the file, or "" if it reads.
template <class Read>
std::string error_of(Read&& read) {
  return message_of<hsgd::DataFileError>(std::forward<Read>(read));
}

}  // namespace

TEST_CASE("readers: IDX images and labels, plain and gzip-compressed", "[readers]") {
  const Files files;
  for (const bool compressed : {false, true}) {
    CAPTURE(compressed);
    const auto images = files.write(compressed ? "images.gz" : "images", idx_images(3, 2, 2), compressed);
    const auto labels = files.write(compressed ? "labels.gz" : "labels", idx_labels({4, 0, 2}), compressed);
    const hsgd::Dataset<double> data = hsgd::read_idx(images, labels);
    REQUIRE(data.size() == 3);
    REQUIRE(data.dimension() == 4);
    CHECK(data.classes == 5);
    CHECK(data.labels == std::vector<Index>{4, 0, 2});
    for (Index k = 0; k < 3; ++k)
      for (Index p = 0; p < 4; ++p) CHECK(data.features(p, k) == static_cast<double>(10 * k + p));
  }
}

TEST_CASE("readers: a malformed IDX file is refused with its name, the place and what was expected", "[readers]") {
  const Files files;
  const auto labels = files.write("labels", idx_labels({1, 2, 3}));
  const auto images = files.write("images", idx_images(3, 2, 2));
  const auto read = [&](const std::string& image_path, const std::string& label_path) {
    return error_of([&] { (void)hsgd::read_idx(image_path, label_path); });
  };
  // The label file's magic where the images' should be.
  const auto swapped = read(labels, images);
  CHECK_THAT(swapped, Contains("'" + labels + "'") && Contains("byte 0: magic number 0x00000801, expected 0x00000803"));
  // Cut inside the pixels, plain and compressed.
  const std::string whole = idx_images(3, 2, 2);
  CHECK_THAT(read(files.write("cut", whole.substr(0, whole.size() - 3)), labels),
             Contains("truncated: 25 bytes, but its header promises 28"));
  CHECK_THAT(read(files.write("cut.gz", whole.substr(0, whole.size() - 3), true), labels), Contains("truncated"));
  // A gzip stream cut short.
  {
    const auto gz = files.write("whole.gz", whole, true);
    std::ifstream in(gz, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    CHECK_THAT(read(files.write("torn.gz", bytes.substr(0, bytes.size() / 2)), labels),
               Contains("torn.gz") && (Contains("end early") || Contains("truncated") || Contains("cannot read")));
  }
  // Cut inside the header; extra bytes at the end.
  CHECK_THAT(read(files.write("short", whole.substr(0, 10)), labels), Contains("10 bytes: the IDX header needs 16"));
  CHECK_THAT(read(files.write("long", whole + "xy"), labels), Contains("extra data after byte 28"));
  // Images and labels that disagree on the sample count.
  CHECK_THAT(read(images, files.write("two", idx_labels({1, 2}))), Contains("2 labels, but '" + images + "' holds 3 images"));
  CHECK_THAT(read(files.write("missing/none", ""), labels), Contains("cannot open it") || Contains("no samples") || Contains("IDX header"));
}

TEST_CASE("readers: LIBSVM with comments, blank lines, +-1 and multi-class labels", "[readers]") {
  const Files files;
  const auto path = files.write("data.svm",
                                "# a comment line\n"
                                "+1 1:0.5 3:-2   # trailing comment\n"
                                "\n"
                                "-1 2:1e-1\r\n"
                                "+1\n"
                                "-1 1:1 2:2 3:3\n");
  const auto read = hsgd::read_libsvm(path);
  REQUIRE(read.data.size() == 4);
  REQUIRE(read.data.dimension() == 3);
  CHECK(read.data.classes == 2);
  CHECK(read.label_values == std::vector<double>{-1, 1});
  CHECK(read.data.labels == std::vector<Index>{1, 0, 1, 0});
  Mat expected(3, 4);
  expected << 0.5, 0, 0, 1,  //
      0, 0.1, 0, 2,          //
      -2, 0, 0, 3;
  CHECK(read.data.features == expected);

  const auto wider = hsgd::read_libsvm(path, {.dimension = 5});
  CHECK(wider.data.dimension() == 5);
  CHECK(wider.data.features.bottomRows(2).isZero());

  const auto classes = hsgd::read_libsvm(files.write("multi.svm", "3 1:1\n1 1:2\n2 1:3\n3 1:4\n"));
  CHECK(classes.label_values == std::vector<double>{1, 2, 3});
  CHECK(classes.data.labels == std::vector<Index>{2, 0, 1, 2});
  CHECK(classes.data.classes == 3);
}

TEST_CASE("readers: a malformed LIBSVM line is refused with the file, the line and what was expected", "[readers]") {
  const Files files;
  const auto error = [&](const std::string& text, hsgd::LibsvmOptions options = {}) {
    const auto path = files.write("bad.svm", text);
    const std::string message = error_of([&] { (void)hsgd::read_libsvm(path, options); });
    CHECK_THAT(message, Contains("'" + path + "'"));
    return message;
  };
  CHECK_THAT(error("+1 1:1\nyes 1:1\n"), Contains("line 2: 'yes' is not a number (a label expected)"));
  CHECK_THAT(error("+1 1:1 2:abc\n"), Contains("line 1: 'abc' is not a number (a value expected)"));
  CHECK_THAT(error("+1 1:1 2 3:1\n"), Contains("line 1: '2' is not 'index:value'"));
  CHECK_THAT(error("+1 x:1\n"), Contains("line 1: 'x' in 'x:1' is not an index"));
  CHECK_THAT(error("+1 0:1\n"), Contains("line 1: index 0 in '0:1': indices start at 1"));
  CHECK_THAT(error("+1 1:1\n-1 3:1 2:1\n"), Contains("line 2: index 2 after index 3: indices must increase"));
  CHECK_THAT(error("+1 1:1 7:1\n", {.dimension = 5}), Contains("line 1: index 7 is beyond the dimension 5"));
  CHECK_THAT(error("+1 1:inf\n"), Contains("line 1: a value 'inf' is not finite"));
  CHECK_THAT(error("# only a comment\n\n"), Contains("no samples"));
}

TEST_CASE("readers: CSV with a header and the label in any column, and malformed lines refused", "[readers]") {
  const Files files;
  const auto path = files.write("data.csv", "f1,f2,label\n1.5, 2,7\n-1,0.25,5\n\n3,4,7\n");
  const auto read = hsgd::read_csv(path, {.label_column = -1, .header = true});
  REQUIRE(read.data.size() == 3);
  REQUIRE(read.data.dimension() == 2);
  CHECK(read.label_values == std::vector<double>{5, 7});
  CHECK(read.data.labels == std::vector<Index>{1, 0, 1});
  Mat expected(2, 3);
  expected << 1.5, -1, 3,  //
      2, 0.25, 4;
  CHECK(read.data.features == expected);
  const auto first = hsgd::read_csv(files.write("first.csv", "0;1;2\n1;3;4\n"), {.label_column = 0, .delimiter = ';'});
  CHECK(first.data.labels == std::vector<Index>{0, 1});
  CHECK(first.data.features(1, 1) == 4);

  const auto error = [&](const std::string& text, hsgd::CsvOptions options = {}) {
    const auto bad = files.write("bad.csv", text);
    return error_of([&] { (void)hsgd::read_csv(bad, options); });
  };
  CHECK_THAT(error("1,2,3\n1,x,3\n"), Contains("line 2: 'x' is not a number (column 2 expected)"));
  CHECK_THAT(error("1,2,3\n1,2\n"), Contains("line 2: 2 columns, but the lines before have 3"));
  CHECK_THAT(error("1,2\n", {.label_column = 4}), Contains("line 1: 2 columns, but the label is in column 4"));
  CHECK_THAT(error("a,b\n1,2\n"), Contains("line 1: 'a' is not a number (a label expected)"));
  CHECK_THAT(error("\n\n"), Contains("no samples"));
}

TEST_CASE("readers: scalings are fitted on the training set and applied to the test set", "[readers]") {
  hsgd::Dataset<double> train;
  train.features.resize(2, 4);
  train.features << 0, 2, 4, 6,  //
      5, 5, 5, 5;                // a constant feature: shifted, not scaled
  train.labels = {0, 1, 0, 1};
  train.classes = 2;
  hsgd::Dataset<double> test = train.subset(std::vector<Index>{0, 1});
  test.features << 8, -2,  //
      6, 5;

  const auto standard = hsgd::FeatureScaling<double>::standardize(train);
  hsgd::Dataset<double> scaled = train;
  standard.apply(scaled);
  CHECK(scaled.features.row(0).mean() == Approx(0).margin(1e-15));
  CHECK(std::sqrt(scaled.features.row(0).squaredNorm() / 4) == Approx(1));
  CHECK(scaled.features.row(1).isZero());
  standard.apply(test);  // the training mean 3 and deviation sqrt(5)
  CHECK(test.features(0, 0) == Approx((8 - 3) / std::sqrt(5.0)));
  CHECK(test.features(1, 0) == Approx(1));

  const auto range = hsgd::FeatureScaling<double>::min_max(train);
  hsgd::Dataset<double> unit = train;
  range.apply(unit);
  CHECK(unit.features.row(0).minCoeff() == 0);
  CHECK(unit.features.row(0).maxCoeff() == 1);
  hsgd::Dataset<double> other{Mat::Zero(3, 1), {0}, 1};
  CHECK_THROWS_WITH(range.apply(other), Contains("the data have dimension 3 but the scaling was fitted on 2"));
}

TEST_CASE("readers: a train/test split keeps every sample once and follows its seed", "[readers]") {
  hsgd::Dataset<double> data;
  data.features.resize(1, 50);
  for (Index k = 0; k < 50; ++k) data.features(0, k) = static_cast<double>(k);
  data.labels.assign(50, 0);
  data.classes = 1;
  const auto [train, test] = hsgd::train_test_split(data, 0.2, 7);
  REQUIRE(test.size() == 10);
  REQUIRE(train.size() == 40);
  std::vector<double> seen;
  for (Index k = 0; k < 40; ++k) seen.push_back(train.features(0, k));
  for (Index k = 0; k < 10; ++k) seen.push_back(test.features(0, k));
  std::sort(seen.begin(), seen.end());
  for (Index k = 0; k < 50; ++k) CHECK(seen[static_cast<std::size_t>(k)] == static_cast<double>(k));
  const auto [train_again, test_again] = hsgd::train_test_split(data, 0.2, 7);
  CHECK(test_again.features == test.features);
  const auto [train_other, test_other] = hsgd::train_test_split(data, 0.2, 8);
  CHECK(test_other.features != test.features);
  CHECK_THROWS_WITH(hsgd::train_test_split(data, 1.0, 7), Contains("'test_fraction' (1) must be in (0, 1)"));
}

TEST_CASE("readers: a LIBSVM file's -1 / +1 labels build NonconvexLogistic shards from a Dataset and a Partition",
          "[readers]") {
  const Files files;
  const auto read = hsgd::read_libsvm(files.write("two.svm", "+1 1:1 2:2\n-1 1:-1\n+1 2:0.5\n-1 1:3 2:-1\n"));
  const hsgd::Partition partition{{0, 1}, {2, 3}};
  const auto shards = hsgd::make_logistic_shards(read.data, partition, 0.01);
  REQUIRE(shards.size() == 2);
  // The same as building each shard from its features and explicit +-1 labels.
  Mat first(2, 2);
  first << 1, -1,  //
      2, 0;
  const hsgd::NonconvexLogistic<double> expected(first, Vec{{1.0, -1.0}}, 0.01);
  const Vec x{{0.3, -0.7}};
  CHECK(shards[0].value(x) == expected.value(x));
  CHECK(shards[1].sample_count() == 2);
  hsgd::Dataset<double> three = read.data;
  three.classes = 3;
  CHECK_THROWS_WITH(hsgd::NonconvexLogistic<double>(three), Contains("'classes' (3) must be 2 for logistic regression"));
}
