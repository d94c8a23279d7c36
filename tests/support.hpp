#pragma once
// Helpers shared by the unit tests.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <numeric>
#include <span>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <hsgd/hsgd.hpp>

// Bad input must throw hsgd::InvalidArgument whose message contains `text`. (Catch2 macros: they
// expand only in the files that include <catch2/catch.hpp> and see Catch::Matchers::Contains.)
#define CHECK_INVALID(expression, text)                 \
  do {                                                  \
    CHECK_THROWS_AS(expression, hsgd::InvalidArgument); \
    CHECK_THROWS_WITH(expression, Contains(text));      \
  } while (false)
#define REQUIRE_INVALID(expression, text)                 \
  do {                                                    \
    REQUIRE_THROWS_AS(expression, hsgd::InvalidArgument); \
    REQUIRE_THROWS_WITH(expression, Contains(text));      \
  } while (false)

namespace test {

using hsgd::Index;

inline constexpr double nan_value = std::numeric_limits<double>::quiet_NaN();
inline constexpr double inf_value = std::numeric_limits<double>::infinity();
inline constexpr double max_double = std::numeric_limits<double>::max();
inline constexpr Index max_index = std::numeric_limits<Index>::max();
inline constexpr Index min_index = std::numeric_limits<Index>::min();

/// A fresh directory for one test's files, removed with everything in it afterwards.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "hsgd-test-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("cannot make a temporary directory");
    path_ = pattern;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  [[nodiscard]] std::string file(const std::string& name) const { return (path_ / name).string(); }
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};
using Vec = hsgd::Vector<double>;
using Mat = hsgd::Matrix<double>;

/// Shards whose gradient is zero everywhere (curvature 0), so local steps leave models where
/// they are and only aggregation moves them. Worker j holds samples[j] samples (default 1).
inline std::vector<hsgd::Quadratic<double>> still_shards(Index workers, Index dimension,
                                                         const std::vector<Index>& samples = {}) {
  std::vector<hsgd::Quadratic<double>> shards;
  for (Index j = 0; j < workers; ++j) {
    const Index count = samples.empty() ? 1 : samples[static_cast<std::size_t>(j)];
    shards.push_back(hsgd::Quadratic<double>::from_samples(Vec::Zero(dimension), Mat::Zero(dimension, count)));
  }
  return shards;
}

/// Non-IID stochastic quadratics: worker j has its own diagonal curvature in [0.5, 1.5], its own
/// centre, and `samples` noisy sample centres (noise sigma), drawn from the stream (seed, user, j).
inline std::vector<hsgd::Quadratic<double>> noisy_quadratics(Index workers, Index dimension, std::uint64_t seed,
                                                             Index samples = 32, double sigma = 1.0) {
  std::vector<hsgd::Quadratic<double>> shards;
  for (Index j = 0; j < workers; ++j) {
    hsgd::Rng rng = hsgd::make_stream(seed, hsgd::StreamKind::user, static_cast<std::uint64_t>(j));
    Vec curvature(dimension);
    Vec centre(dimension);
    for (Index i = 0; i < dimension; ++i) {
      curvature(i) = 0.5 + rng.uniform();
      centre(i) = 3.0 * rng.normal();
    }
    Mat centres(dimension, samples);
    for (Index k = 0; k < samples; ++k) {
      for (Index i = 0; i < dimension; ++i) centres(i, k) = centre(i) + sigma * rng.normal();
    }
    shards.push_back(hsgd::Quadratic<double>::from_samples(curvature, centres));
  }
  return shards;
}

/// A small B1 problem: 12 workers, 64 samples each, dimension d.
inline hsgd::B1Data small_b1(Index dimension = 8) {
  hsgd::B1Data data;
  data.workers = 12;
  data.samples_per_worker = 64;
  data.dimension = dimension;
  return data;
}

/// ||a - b|| / max(||a||, ||b||), 0 when both are 0.
template <class A, class B>
double relative_difference(const A& a, const B& b) {
  const double scale = std::max(a.norm(), b.norm());
  return scale == 0 ? 0.0 : (a - b).norm() / scale;
}

/// The level that should aggregate after step t, computed from the periods alone: the highest
/// l with t mod P_l == 0, or 0.
inline Index expected_level(const std::vector<Index>& periods, Index step) {
  for (Index level = static_cast<Index>(periods.size()); level >= 1; --level) {
    if (step % periods[static_cast<std::size_t>(level - 1)] == 0) return level;
  }
  return 0;
}

/// Gradient noise only: F(x) = (1/m) sum_k xi_k . x with sum_k xi_k = 0, so every minibatch
/// gradient is a draw of the centred xi_k, whatever x is.
struct PureNoise {
  using Scalar = double;
  Mat noise;  // d x m, rows centred

  /// m samples in d coordinates from the stream (seed, user, 0), each row centred and scaled to
  /// variance exactly 1, so a one-sample gradient has variance 1 per coordinate.
  static PureNoise unit_variance(Index dimension, Index samples, std::uint64_t seed) {
    hsgd::Rng rng = hsgd::make_stream(seed, hsgd::StreamKind::user, 0);
    Mat noise(dimension, samples);
    for (Index k = 0; k < samples; ++k) {
      for (Index i = 0; i < dimension; ++i) noise(i, k) = rng.normal();
    }
    noise.colwise() -= noise.rowwise().mean();
    for (Index i = 0; i < dimension; ++i) noise.row(i) /= std::sqrt(noise.row(i).squaredNorm() / double(samples));
    return {noise};
  }
  Index dimension() const { return noise.rows(); }
  Index sample_count() const { return noise.cols(); }
  double value(hsgd::ConstVectorRef<double>) const { return 0; }
  void gradient(hsgd::ConstVectorRef<double>, hsgd::VectorRef<double> g) const { g.setZero(); }
  void batch_gradient(hsgd::ConstVectorRef<double>, std::span<const Index> batch, hsgd::VectorRef<double> g) const {
    g.setZero();
    for (const Index k : batch) g += noise.col(k);
    g /= double(batch.size());
  }
};

/// Options with the given seed and a single thread unless told otherwise.
inline hsgd::Options options(std::uint64_t seed = 1, Index steps = 100, double learning_rate = 0.05) {
  hsgd::Options result;
  result.seed = seed;
  result.steps = steps;
  result.learning_rate = learning_rate;
  result.threads = 1;
  return result;
}

/// A CSV file's lines split at commas (no quoting: the files the tests write have plain cells); a
/// line's trailing empty cell is dropped, as std::getline does, unless `keep_trailing_empty`.
inline std::vector<std::vector<std::string>> read_csv_cells(const std::string& path, bool keep_trailing_empty = false) {
  std::ifstream file(path);
  std::vector<std::vector<std::string>> rows;
  for (std::string line; std::getline(file, line);) {
    std::vector<std::string> cells;
    std::stringstream fields(line);
    for (std::string cell; std::getline(fields, cell, ',');) cells.push_back(cell);
    if (keep_trailing_empty && !line.empty() && line.back() == ',') cells.emplace_back();
    rows.push_back(cells);
  }
  return rows;
}

/// A file's bytes, and a file made of the given bytes (replacing what was there).
inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

/// The same shape and the same bits in every entry (NaNs included).
template <class Derived>
bool same_bits(const Eigen::MatrixBase<Derived>& a, const Eigen::MatrixBase<Derived>& b) {
  using Scalar = typename Derived::Scalar;
  return a.rows() == b.rows() && a.cols() == b.cols() &&
         (a.size() == 0 ||
          std::memcmp(a.derived().data(), b.derived().data(), static_cast<std::size_t>(a.size()) * sizeof(Scalar)) == 0);
}

/// Every part's saved bytes (its checkpoint state): equal exactly when the parts' states, e.g. every
/// field of every record of a MemoryRecorder, are equal bit for bit.
template <class... Parts>
std::vector<char> state_bytes(const Parts&... parts) {
  std::vector<char> bytes;
  for (const std::vector<char>& part : {hsgd::checkpoint_bytes(parts)...}) bytes.insert(bytes.end(), part.begin(), part.end());
  return bytes;
}

/// Steps an engine with its probe until step `until`, calling the probe as Engine::run would.
template <class Engine, class Probe>
void step_to(Engine& engine, Probe& probe, Index until) {
  while (engine.step_count() < until) {
    const Index level = engine.step();
    if (level > 0) probe.after_aggregation(engine, level);
    probe.after_step(engine);
  }
}

/// 0, 1, ..., count - 1: every sample of a shard of `count`.
inline std::vector<Index> all_indices(Index count) {
  std::vector<Index> indices(static_cast<std::size_t>(count));
  std::iota(indices.begin(), indices.end(), Index{0});
  return indices;
}

/// grad f(x), and the mean gradient over `batch`, as new vectors.
template <class Objective>
hsgd::Vector<typename Objective::Scalar> full_gradient(const Objective& f,
                                                       const hsgd::Vector<typename Objective::Scalar>& x) {
  hsgd::Vector<typename Objective::Scalar> g(x.size());
  f.gradient(x, g);
  return g;
}

template <class Objective>
hsgd::Vector<typename Objective::Scalar> batch_gradient(const Objective& f,
                                                        const hsgd::Vector<typename Objective::Scalar>& x,
                                                        const std::vector<Index>& batch) {
  hsgd::Vector<typename Objective::Scalar> g(x.size());
  f.batch_gradient(x, batch, g);
  return g;
}

/// The message of the `Error` that `call` throws, or "" if it throws none (any other exception
/// escapes and fails the test).
template <class Error, class Call>
std::string message_of(Call&& call) {
  try {
    call();
  } catch (const Error& error) {
    return error.what();
  }
  return "";
}

/// Options with seed 5 and learning rate 0.1 (the engine tests' runs).
inline hsgd::Options options_with(Index steps = 20, Index threads = 1) {
  hsgd::Options result = options(5, steps, 0.1);
  result.threads = threads;
  return result;
}

/// Worker j's quadratic has curvature 1 and 8 samples around the centre (j, ..., j) with noise
/// 0.5, from the stream (17, user, j).
inline std::vector<hsgd::Quadratic<double>> quadratics(Index workers, Index dimension = 3) {
  std::vector<hsgd::Quadratic<double>> shards;
  for (Index j = 0; j < workers; ++j) {
    hsgd::Rng rng = hsgd::make_stream(17, hsgd::StreamKind::user, static_cast<std::uint64_t>(j));
    shards.push_back(
        hsgd::Quadratic<double>::isotropic_noisy(1.0, Vec::Constant(dimension, double(j)), 8, 0.5, rng));
  }
  return shards;
}

/// Two levels over 8 workers in 2 groups, I = 2, G = 4, random groups re-drawn at every global round.
inline auto quadratic_engine(Index steps = 20, Index threads = 1) {
  return hsgd::Engine(hsgd::Topology::two_level(8, 2, 2, 4), quadratics(8), hsgd::UniformSampler(2),
                      options_with(steps, threads), hsgd::RandomGrouping{hsgd::RandomGrouping::Redraw::every_global_aggregation});
}

}  // namespace test
