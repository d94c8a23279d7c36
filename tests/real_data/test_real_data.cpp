// The real files Debian ships, read whole: Fashion-MNIST (dataset-fashion-mnist) and heart_scale
// (liblinear-tools). Exits 77, which ctest reports as skipped, when the package is not installed
// (`bash .ci/install-deps --data` installs both).
//
//   test_real_data fashion DIRECTORY      test_real_data heart FILE

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include <fmt/core.h>

#include <hsgd/data/readers.hpp>

namespace {

int failures = 0;

void check(bool condition, const std::string& what) {
  if (!condition) {
    ++failures;
    fmt::print(stderr, "FAILED: {}\n", what);
  }
}

void check_fashion(const std::string& directory) {
  const auto train = hsgd::read_idx<double>(directory + "/train-images-idx3-ubyte.gz", directory + "/train-labels-idx1-ubyte.gz");
  const auto test = hsgd::read_idx<double>(directory + "/t10k-images-idx3-ubyte.gz", directory + "/t10k-labels-idx1-ubyte.gz");
  check(train.size() == 60000 && train.dimension() == 784, fmt::format("training set 60000 x 784, read {} x {}", train.size(), train.dimension()));
  check(test.size() == 10000 && test.dimension() == 784, fmt::format("test set 10000 x 784, read {} x {}", test.size(), test.dimension()));
  check(train.classes == 10 && test.classes == 10, "10 classes");
  const std::vector<hsgd::Index> counts = train.class_counts();
  for (std::size_t c = 0; c < counts.size(); ++c) check(counts[c] == 6000, fmt::format("class {}: {} training images, 6000 expected", c, counts[c]));
  // The known mean pixel of the training set, 72.94 of 255.
  const double mean = train.features.mean() / 255.0;
  check(std::abs(mean - 72.94 / 255.0) < 1e-3, fmt::format("mean training pixel / 255 = {:.5f}, expected {:.5f} to 1e-3", mean, 72.94 / 255.0));
  check(train.features.minCoeff() == 0 && train.features.maxCoeff() == 255, "pixels span 0..255");
  fmt::print("Fashion-MNIST: {} + {} images of {} pixels, 10 classes of 6000, mean pixel / 255 = {:.4f}\n", train.size(),
             test.size(), train.dimension(), mean);
}

void check_heart(const std::string& path) {
  const auto heart = hsgd::read_libsvm<double>(path);
  check(heart.data.size() == 270 && heart.data.dimension() == 13,
        fmt::format("heart_scale 270 x 13, read {} x {}", heart.data.size(), heart.data.dimension()));
  check(heart.label_values == std::vector<double>{-1, 1}, "labels -1 and +1");
  check(heart.data.features.minCoeff() >= -1 && heart.data.features.maxCoeff() <= 1, "features scaled to [-1, 1]");
  fmt::print("heart_scale: {} samples of {} features, labels -1 / +1\n", heart.data.size(), heart.data.dimension());
}

}  // namespace

int main(int argc, char** argv) try {
  if (argc != 3) {
    fmt::print(stderr, "usage: test_real_data fashion DIRECTORY | heart FILE\n");
    return 2;
  }
  const std::string which = argv[1];
  const std::string where = argv[2];
  if (!std::filesystem::exists(where)) {
    fmt::print("{} is not installed here ({} is missing): skipped; bash .ci/install-deps --data installs it\n", which, where);
    return 77;
  }
  if (which == "fashion") check_fashion(where);
  else if (which == "heart") check_heart(where);
  else return 2;
  return failures == 0 ? 0 : 1;
} catch (const std::exception& error) {
  fmt::print(stderr, "test_real_data: {}\n", error.what());
  return 1;
}
