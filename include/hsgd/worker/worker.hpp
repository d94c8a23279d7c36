#pragma once
/// @file
/// A worker: one participant taking SGD steps on its own data.

#include <span>
#include <utility>

#include "hsgd/checkpoint/archive.hpp"
#include "hsgd/core/error.hpp"
#include "hsgd/core/random.hpp"
#include "hsgd/core/types.hpp"

namespace hsgd {

/// Worker j of an H-SGD run. It owns its sampler copy and its random stream; its model,
/// gradient and optimizer state live in its column of the run's state (see RunState), which a
/// step is given. One local step is
///
///   B ~ sampler(rng_j),   g = (1/|B|) sum_{k in B} grad l_k(x^j),   x^j <- update(x^j, g, state^j, gamma_t).
///
/// A worker touches nothing but its own column and stream, so workers can step in any order or
/// in parallel with the same result.
template <class Objective, class SamplerType>
class Worker {
 public:
  using Scalar = typename Objective::Scalar;

  /// Worker `id` on `shard` (which must outlive it), with its own copy of the sampler, bound to
  /// the shard's samples, and its stream.
  Worker(Index id, const Objective& shard, SamplerType sampler, Rng rng)
      : id_(id), shard_(&shard), sampler_(std::move(sampler)), rng_(rng) {
    sampler_.bind(shard.sample_count());
  }

  /// One local SGD step on the worker's column (`state` empty for a stateless update policy).
  template <class UpdatePolicyType>
  void step(const UpdatePolicyType& update, Scalar learning_rate, VectorRef<Scalar> model, VectorRef<Scalar> gradient,
            VectorRef<Scalar> state) {
    const std::span<const Index> batch = sampler_.next(rng_);
    shard_->batch_gradient(model, batch, gradient);
    update.apply(model, gradient, state, learning_rate);
  }

  [[nodiscard]] Index id() const { return id_; }
  [[nodiscard]] const Objective& shard() const { return *shard_; }
  [[nodiscard]] const Rng& rng() const { return rng_; }
  [[nodiscard]] const SamplerType& sampler() const { return sampler_; }

  /// Its part of a checkpoint: the stream, then the sampler's settings and state.
  template <class Archive>
  void checkpoint(Archive& archive) {
    archive.stream("a worker's stream", rng_);
    detail::visit_plugin(archive, sampler_);
  }

 private:
  Index id_;
  const Objective* shard_;
  SamplerType sampler_;
  Rng rng_;
};

}  // namespace hsgd
