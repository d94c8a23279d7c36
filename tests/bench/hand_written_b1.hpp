#pragma once
// The yardstick of benchmark B1: the same arithmetic as hsgd's B1 run, written by hand over plain
// Eigen with no hsgd types, for speed. hsgd is measured against it in the same process.

#include <cmath>
#include <cstdint>
#include <vector>

#include <Eigen/Core>

namespace bench {

/// Worker data of B1 as plain matrices: features d x m (one sample per column), labels +-1.
struct HandShard {
  Eigen::MatrixXd features;
  Eigen::VectorXd labels;
};

/// H-SGD on B1 with contiguous groups of equal size, uniform weights, minibatches sampled with
/// replacement, plain SGD. Each worker has its own xoshiro256** stream. With `prefetch`, the next
/// sample's cache lines are requested while the current one is processed, as hsgd's
/// NonconvexLogistic does: the stronger yardstick.
class HandWrittenB1 {
 public:
  HandWrittenB1(std::vector<HandShard> shards, int groups, int local_period, int global_period, int batch,
                double learning_rate, double lambda, std::uint64_t seed, bool prefetch = false)
      : shards_(std::move(shards)),
        groups_(groups),
        local_period_(local_period),
        global_period_(global_period),
        batch_(batch),
        learning_rate_(learning_rate),
        lambda_(lambda),
        prefetch_(prefetch),
        models_(Eigen::MatrixXd::Zero(shards_.front().features.rows(), static_cast<Eigen::Index>(shards_.size()))),
        gradient_(shards_.front().features.rows()),
        average_(shards_.front().features.rows()),
        streams_(shards_.size()) {
    for (std::size_t j = 0; j < streams_.size(); ++j) streams_[j].seed(seed * 1000003ULL + j);
  }

  void step() {
    ++step_;
    const Eigen::Index n = models_.cols();
    for (Eigen::Index j = 0; j < n; ++j) local_step(j);
    if (step_ % global_period_ == 0) {
      average(0, n);
    } else if (step_ % local_period_ == 0) {
      const Eigen::Index size = n / groups_;
      for (Eigen::Index first = 0; first < n; first += size) average(first, size);
    }
  }

  [[nodiscard]] const Eigen::MatrixXd& models() const { return models_; }

 private:
  struct Stream {
    std::uint64_t s[4]{};
    void seed(std::uint64_t value) {
      for (auto& word : s) {
        value += 0x9e3779b97f4a7c15ULL;
        std::uint64_t z = value;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        word = z ^ (z >> 31);
      }
    }
    static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
    std::uint64_t next() {
      const std::uint64_t result = rotl(s[1] * 5, 7) * 9;
      const std::uint64_t t = s[1] << 17;
      s[2] ^= s[0];
      s[3] ^= s[1];
      s[1] ^= s[2];
      s[0] ^= s[3];
      s[2] ^= t;
      s[3] = rotl(s[3], 45);
      return result;
    }
    // Multiply-shift to [0, bound); its bias (< bound / 2^64) is immaterial for a yardstick.
    Eigen::Index below(Eigen::Index bound) {
      __extension__ using Wide = unsigned __int128;
      return static_cast<Eigen::Index>((static_cast<Wide>(next()) * static_cast<std::uint64_t>(bound)) >> 64);
    }
  };

  void local_step(Eigen::Index j) {
    const HandShard& shard = shards_[static_cast<std::size_t>(j)];
    auto x = models_.col(j);
    Stream& stream = streams_[static_cast<std::size_t>(j)];
    const Eigen::Index samples = shard.features.cols();
    gradient_.setZero();
    Eigen::Index next = stream.below(samples);
    for (int b = 0; b < batch_; ++b) {
      const Eigen::Index k = next;
      if (b + 1 < batch_) {
        next = stream.below(samples);
        if (prefetch_) prefetch(shard.features.col(next).data(), shard.features.rows());
      }
      const double y = shard.labels(k);
      const double margin = y * shard.features.col(k).dot(x);
      gradient_.noalias() += (-y / (1.0 + std::exp(margin))) * shard.features.col(k);
    }
    gradient_.array() = gradient_.array() / double(batch_) +
                        (2.0 * lambda_) * x.array() / (1.0 + x.array().square()).square();
    x.noalias() -= learning_rate_ * gradient_;
  }

  static void prefetch(const double* column, Eigen::Index size) {
    const auto* bytes = reinterpret_cast<const char*>(column);
    for (std::size_t offset = 0; offset < sizeof(double) * static_cast<std::size_t>(size); offset += 64)
      __builtin_prefetch(bytes + offset);
  }

  void average(Eigen::Index first, Eigen::Index size) {
    average_ = models_.middleCols(first, size).rowwise().sum() / double(size);
    for (Eigen::Index j = first; j < first + size; ++j) models_.col(j) = average_;
  }

  std::vector<HandShard> shards_;
  Eigen::Index groups_;
  int local_period_;
  int global_period_;
  int batch_;
  double learning_rate_;
  double lambda_;
  bool prefetch_;
  Eigen::MatrixXd models_;
  Eigen::VectorXd gradient_;
  Eigen::VectorXd average_;
  std::vector<Stream> streams_;
  long step_ = 0;
};

}  // namespace bench
