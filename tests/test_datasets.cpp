// Data sets: the checks of hsgd::Dataset (labels in range, subsets, finite features) and the
// per-worker data sets that worker_datasets cuts from one along a partition.

#include <cstddef>
#include <vector>

#include <catch2/catch.hpp>

#include "data_support.hpp"

using namespace test;
using Catch::Matchers::Contains;

namespace {

/// Three samples in two dimensions, classes 0, 1, 1 of two.
hsgd::Dataset<double> small_dataset() {
  hsgd::Dataset<double> data;
  data.features = Mat(2, 3);
  data.features << 1, 2, 3, 4, 5, 6;
  data.labels = {0, 1, 1};
  data.classes = 2;
  return data;
}

}  // namespace

TEST_CASE("Dataset: class_counts refuses a label outside the classes instead of writing past the counts",
          "[hardening][data]") {
  hsgd::Dataset<double> data = small_dataset();
  CHECK(data.class_counts() == std::vector<Index>{1, 2});
  data.labels[1] = 5;
  REQUIRE_INVALID(data.class_counts(), "'labels'[1] (5) must be in [0, 2)");
  data.labels[1] = -1;
  REQUIRE_INVALID(data.class_counts(), "'labels'[1] (-1) must be in [0, 2)");
  data.labels[1] = 1;
  data.classes = 0;
  REQUIRE_INVALID(data.class_counts(), "'classes' (0) must be positive");
}

TEST_CASE("Dataset: subset checks the shapes, the indices and the labels it copies", "[hardening][data]") {
  hsgd::Dataset<double> data = small_dataset();
  const std::vector<Index> last{2};
  const hsgd::Dataset<double> picked = data.subset(last);
  CHECK(picked.labels == std::vector<Index>{1});
  CHECK(picked.features(1, 0) == 6);
  REQUIRE_INVALID(data.subset(std::vector<Index>{0, 3}), "'indices'[1] (3) must be in [0, 3)");
  REQUIRE_INVALID(data.subset(std::vector<Index>{-1}), "'indices'[0] (-1) must be in [0, 3)");

  // Labels shorter than the features: sample 2 has no label to read.
  data.labels.pop_back();
  REQUIRE_INVALID(data.subset(last), "'labels' has 2 entries but 'features' has 3 samples");
  REQUIRE_INVALID(data.class_counts(), "'labels' has 2 entries but 'features' has 3 samples");

  data = small_dataset();
  data.labels[2] = 9;
  REQUIRE_INVALID(data.subset(last), "'labels'[2] (9) must be in [0, 2)");
}

TEST_CASE("worker_datasets validates the data set and names a partition entry out of range", "[hardening][data]") {
  hsgd::Dataset<double> data = small_dataset();
  const auto parts = hsgd::worker_datasets(data, {{0, 2}, {1}});
  REQUIRE(parts.size() == 2);
  CHECK(parts[0].labels == std::vector<Index>{0, 1});
  CHECK(parts[1].features(0, 0) == 2);
  REQUIRE_INVALID(hsgd::worker_datasets(data, {{0}, {7}}), "'partition'[1][0] (7) must be in [0, 3)");

  data.labels = {0, 1};  // one label short
  REQUIRE_INVALID(hsgd::worker_datasets(data, {{0, 1, 2}}), "'labels' has 2 entries but 'features' has 3 samples");
  data = small_dataset();
  data.features(0, 1) = nan_value;
  REQUIRE_INVALID(hsgd::worker_datasets(data, {{0, 1, 2}}), "'features' sample 1 is not finite");
}

TEST_CASE("Dataset::validate refuses non-finite features, naming the sample and the coordinate",
          "[hardening][data]") {
  hsgd::Dataset<double> data = small_dataset();
  REQUIRE_NOTHROW(data.validate());
  data.features(1, 2) = inf_value;
  REQUIRE_INVALID(data.validate(), "'features' sample 2 is not finite: coordinate 1 is inf");
  data.features(1, 2) = 0;
  data.features(0, 0) = nan_value;
  REQUIRE_INVALID(data.validate(), "'features' sample 0 is not finite: coordinate 0 is nan");
  // Labels alone are still checked without a pass over the features.
  REQUIRE_NOTHROW(data.validate_labels());
}

TEST_CASE("Worker data sets hold the partition's samples", "[data]") {
  const auto data = hsgd::make_gaussian_mixture(mixture_options(3, 2, 60));
  const auto partition = hsgd::partition_iid(data, {.workers = 4});
  const auto shards = hsgd::worker_datasets(data, partition);
  REQUIRE(shards.size() == 4);
  for (std::size_t j = 0; j < 4; ++j) {
    REQUIRE(shards[j].size() == static_cast<Index>(partition[j].size()));
    CHECK(shards[j].classes == 3);
    for (std::size_t k = 0; k < partition[j].size(); ++k) {
      CHECK(shards[j].labels[k] == data.labels[static_cast<std::size_t>(partition[j][k])]);
      CHECK(shards[j].features.col(Index(k)) == data.features.col(partition[j][k]));
    }
  }
}
