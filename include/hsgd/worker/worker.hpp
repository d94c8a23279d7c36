#pragma once
/// @file
/// A worker: one participant taking SGD steps on its own data.

#include <span>
#include <utility>

#include "hsgd/core/error.hpp"
#include "hsgd/core/random.hpp"
#include "hsgd/core/types.hpp"

namespace hsgd {

/// Worker j of an H-SGD run. It owns its sampler copy and its random stream, and views its own
/// column of the run's model, gradient and optimizer-state matrices (keeping every model in one
/// block is what makes an aggregation one pass over memory). One local step is
///
///   B ~ sampler(rng_j),   g = (1/|B|) sum_{k in B} grad l_k(x^j),   x^j <- update(x^j, g, state^j, gamma_t).
///
/// A worker touches nothing but its own columns and stream, so workers can step in any order or
/// in parallel with the same result.
template <class Objective, class SamplerType>
class Worker {
 public:
  using Scalar = typename Objective::Scalar;

  Worker(Index id, const Objective& shard, SamplerType sampler, Rng rng, VectorRef<Scalar> model,
         VectorRef<Scalar> gradient, VectorRef<Scalar> state)
      : id_(id),
        shard_(&shard),
        sampler_(std::move(sampler)),
        rng_(rng),
        model_(model),
        gradient_(gradient),
        state_(state) {
    detail::require(model.size() == shard.dimension() && gradient.size() == shard.dimension(),
                    "worker {}: 'model' ({}) and 'gradient' ({}) must have the shard's dimension ({})", id, model.size(),
                    gradient.size(), shard.dimension());
    detail::require(state.size() == 0 || state.size() == shard.dimension(),
                    "worker {}: 'state' ({}) must be empty or have the shard's dimension ({})", id, state.size(),
                    shard.dimension());
    sampler_.bind(shard.sample_count());
  }

  /// One local SGD step with the given update policy and learning rate.
  template <class UpdatePolicyType>
  void step(const UpdatePolicyType& update, Scalar learning_rate) {
    const std::span<const Index> batch = sampler_.next(rng_);
    shard_->batch_gradient(model_, batch, gradient_);
    update.apply(model_, gradient_, state_, learning_rate);
  }

  [[nodiscard]] Index id() const { return id_; }
  [[nodiscard]] const Objective& shard() const { return *shard_; }
  /// x^j, the worker's current model.
  [[nodiscard]] const VectorRef<Scalar>& model() const { return model_; }
  /// The last minibatch gradient.
  [[nodiscard]] const VectorRef<Scalar>& gradient() const { return gradient_; }
  /// The update policy's state (empty for stateless policies).
  [[nodiscard]] const VectorRef<Scalar>& state() const { return state_; }
  [[nodiscard]] const Rng& rng() const { return rng_; }
  [[nodiscard]] const SamplerType& sampler() const { return sampler_; }

  /// Puts back a stream and a (bound) sampler saved from this worker: how a checkpoint resumes.
  void restore(const Rng& rng, SamplerType sampler) {
    rng_ = rng;
    sampler_ = std::move(sampler);
  }

 private:
  Index id_;
  const Objective* shard_;
  SamplerType sampler_;
  Rng rng_;
  VectorRef<Scalar> model_;
  VectorRef<Scalar> gradient_;
  VectorRef<Scalar> state_;
};

}  // namespace hsgd
