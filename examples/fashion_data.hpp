#pragma once
// Fashion-MNIST as the examples read it: Debian's dataset-fashion-mnist, pixels scaled to [0, 1].

#include <filesystem>
#include <stdexcept>
#include <string>
#include <utility>

#include <fmt/core.h>

#include <hsgd/hsgd.hpp>

#include "problem.hpp"

namespace example {

/// Where Debian's dataset-fashion-mnist puts the four IDX files.
inline const std::string fashion_mnist_directory = "/usr/share/datasets/fashion-mnist";

/// Whether `directory` holds the four files.
inline bool has_fashion_mnist(const std::string& directory) {
  for (const char* name : {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                           "t10k-labels-idx1-ubyte.gz"})
    if (!std::filesystem::exists(directory + "/" + name)) return false;
  return true;
}

/// The run of the Fashion-MNIST examples: 100 workers in 10 groups, I = 4, G = 40, 1500 steps of
/// batch 16 at gamma = 0.3 (the brief's numpy check reached 82.6% with local SGD at I = 4), and its CSV file.
inline RunFlags fashion_run_defaults(std::string csv) {
  return {.workers = 100, .groups = 10, .global_period = 40, .learning_rate = 0.3, .steps = 1500, .csv = std::move(csv)};
}

/// Fashion-MNIST's four files, pixels scaled to [0, 1]. The error names the missing package.
struct FashionMnist {
  hsgd::Dataset<double> train, test;
};

inline FashionMnist read_fashion_mnist(const std::string& directory) {
  fmt::print(stderr, "reading Fashion-MNIST...\n");
  const auto file = [&](const char* name) {
    const std::string path = directory + "/" + name;
    if (!std::filesystem::exists(path))
      throw std::runtime_error(fmt::format("'--data' ({}) has no {}: install Debian's dataset-fashion-mnist (bash "
                                           ".ci/install-deps --data) or give the directory holding the four IDX files",
                                           directory, name));
    return path;
  };
  FashionMnist data{hsgd::read_idx<double>(file("train-images-idx3-ubyte.gz"), file("train-labels-idx1-ubyte.gz")),
                    hsgd::read_idx<double>(file("t10k-images-idx3-ubyte.gz"), file("t10k-labels-idx1-ubyte.gz"))};
  const auto to_unit = hsgd::FeatureScaling<double>::uniform(data.train.dimension(), 1.0 / 255);
  to_unit.apply(data.train);
  to_unit.apply(data.test);
  return data;
}

/// Fashion-MNIST if `directory` holds it, else a synthetic stand-in: a 10-class Gaussian mixture in
/// 200 dimensions, 120 samples per worker, a sixth of them held out.
inline FashionMnist fashion_mnist_or_mixture(const std::string& directory, hsgd::Index workers) {
  if (has_fashion_mnist(directory)) return read_fashion_mnist(directory);
  auto [train, test] = hsgd::train_test_split(hsgd::make_gaussian_mixture<double>({.classes = 10, .dimension = 200,
                                                                                   .samples = workers * 120, .separation = 3,
                                                                                   .proportions = {}, .seed = 1}),
                                              1.0 / 6, 1);
  return {std::move(train), std::move(test)};
}

}  // namespace example
