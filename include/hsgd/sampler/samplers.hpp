#pragma once
/// @file
/// Samplers choose which of a worker's samples enter each minibatch.

#include <concepts>
#include <utility>
#include <numeric>
#include <span>
#include <vector>

#include "hsgd/checkpoint/archive.hpp"
#include "hsgd/core/error.hpp"
#include "hsgd/core/random.hpp"
#include "hsgd/core/types.hpp"

namespace hsgd {

namespace sampler_requirements {

template <class S>
concept copyable = std::copy_constructible<S>;

template <class S>
concept has_bind = requires(S& s, Index sample_count) { s.bind(sample_count); };

template <class S>
concept has_next = requires(S& s, Rng& rng) {
  { s.next(rng) } -> std::convertible_to<std::span<const Index>>;
};

}  // namespace sampler_requirements

/// Draws a worker's minibatches. Each worker holds its own copy of the sampler given to the
/// engine and passes it the worker's own random stream.
///
/// - copy constructible: the engine copies the prototype once per worker;
/// - `void bind(Index sample_count)`: called once per copy, before any draw, with the size of the
///   worker's shard; may allocate and must reject a shard it cannot sample (throw InvalidArgument);
/// - `std::span<const Index> next(Rng& rng)`: the next minibatch as sample indices in
///   [0, sample_count); the span stays valid until the next call. It must not allocate.
template <class S>
concept Sampler = sampler_requirements::copyable<S> && sampler_requirements::has_bind<S> &&
                  sampler_requirements::has_next<S>;

/// Compile-time check with readable messages.
template <class S>
consteval bool check_sampler() {
  using namespace sampler_requirements;
  static_assert(copyable<S>, "hsgd Sampler: the type must be copy constructible (one copy per worker)");
  static_assert(has_bind<S>, "hsgd Sampler: missing `void bind(hsgd::Index sample_count)`");
  static_assert(has_next<S>, "hsgd Sampler: missing `std::span<const hsgd::Index> next(hsgd::Rng& rng)`");
  return Sampler<S>;
}

/// Minibatches of `batch_size` indices drawn uniformly with replacement: each index is an
/// independent uniform draw, so the minibatch gradient is unbiased with variance sigma^2 / b.
class UniformSampler {
 public:
  explicit UniformSampler(Index batch_size) : batch_size_(batch_size) {
    detail::require(batch_size > 0, "'batch_size' ({}) must be positive", batch_size);
  }

  void bind(Index sample_count) {
    detail::require(sample_count > 0, "a shard must hold at least one sample to be sampled (it holds {})",
                    sample_count);
    sample_count_ = sample_count;
    batch_.assign(static_cast<std::size_t>(batch_size_), 0);
  }

  std::span<const Index> next(Rng& rng) {
    detail::require(sample_count_ > 0, "UniformSampler: call bind(sample_count) before next()");
    for (Index& index : batch_) index = rng.below(sample_count_);
    return batch_;
  }

  [[nodiscard]] Index batch_size() const { return batch_size_; }

  /// All it draws comes from the worker's stream, so a checkpoint only compares the batch size.
  [[nodiscard]] CheckpointSettings checkpoint_settings() const { return {{"sampler batch size", batch_size_}}; }

 private:
  Index batch_size_;
  Index sample_count_ = 0;
  std::vector<Index> batch_;
};

/// Minibatches without replacement by shuffled epochs: the shard is shuffled, cut into
/// consecutive batches of `batch_size`, and reshuffled when fewer than `batch_size` samples of
/// the epoch remain (those few are dropped for that epoch, so no batch repeats a sample).
class ShuffledSampler {
 public:
  explicit ShuffledSampler(Index batch_size) : batch_size_(batch_size) {
    detail::require(batch_size > 0, "'batch_size' ({}) must be positive", batch_size);
  }

  void bind(Index sample_count) {
    detail::require(batch_size_ <= sample_count,
                    "'batch_size' ({}) must not exceed the shard's sample count ({}) when sampling without "
                    "replacement",
                    batch_size_, sample_count);
    order_.resize(static_cast<std::size_t>(sample_count));
    std::iota(order_.begin(), order_.end(), Index{0});
    position_ = sample_count;  // forces a shuffle before the first batch
  }

  std::span<const Index> next(Rng& rng) {
    detail::require(!order_.empty(), "ShuffledSampler: call bind(sample_count) before next()");
    if (position_ + batch_size_ > static_cast<Index>(order_.size())) {
      rng.shuffle(std::span<Index>(order_));
      position_ = 0;
    }
    const std::span<const Index> batch(order_.data() + position_, static_cast<std::size_t>(batch_size_));
    position_ += batch_size_;
    return batch;
  }

  [[nodiscard]] Index batch_size() const { return batch_size_; }

  /// A checkpoint compares the batch size and keeps the epoch's order and the position in it.
  [[nodiscard]] CheckpointSettings checkpoint_settings() const { return {{"sampler batch size", batch_size_}}; }
  /// A saved order must be a permutation of this shard's samples.
  template <class Archive>
  void checkpoint(Archive& archive) {
    const auto samples = static_cast<Index>(order_.size());
    archive.index("the sampler's position", position_, 0, samples);
    const auto& order = archive.indices("the sampler's epoch order", order_, samples, 0, samples - 1);
    if constexpr (Archive::loading) {
      archive.check(static_cast<Index>(order.size()) == samples,
                    "a sampler's epoch order has {} samples, this worker's shard {}", order.size(), samples);
      std::vector<char> seen(order.size(), 0);
      for (const Index k : order) {
        archive.check(seen[static_cast<std::size_t>(k)] == 0, "a sampler's epoch order lists sample {} twice", k);
        seen[static_cast<std::size_t>(k)] = 1;
      }
    }
  }

 private:
  Index batch_size_;
  Index position_ = 0;
  std::vector<Index> order_;
};

/// Every sample in every step: deterministic full gradients (draws nothing from the stream).
class FullBatchSampler {
 public:
  /// Its list of indices is rebuilt by bind: nothing for a checkpoint to save.
  static constexpr bool checkpoint_stateless = true;

  void bind(Index sample_count) {
    detail::require(sample_count > 0, "a shard must hold at least one sample (it holds {})", sample_count);
    all_.resize(static_cast<std::size_t>(sample_count));
    std::iota(all_.begin(), all_.end(), Index{0});
  }

  std::span<const Index> next(Rng& /*rng*/) const {
    detail::require(!all_.empty(), "FullBatchSampler: call bind(sample_count) before next()");
    return all_;
  }

 private:
  std::vector<Index> all_;
};

}  // namespace hsgd
