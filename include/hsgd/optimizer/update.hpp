#pragma once
/// @file
/// Update policies: how a worker turns a minibatch gradient into a step.

#include <cmath>
#include <concepts>
#include <type_traits>

#include "hsgd/checkpoint/archive.hpp"
#include "hsgd/core/error.hpp"
#include "hsgd/core/types.hpp"

namespace hsgd {

/// What happens to a worker's optimizer state (e.g. its momentum buffer) when its model is
/// replaced by an average.
enum class StateAtAggregation {
  keep,     ///< each worker keeps its own state (PyTorch's post-local-SGD optimizers do this)
  average,  ///< the state is averaged over the unit with the same weights as the models
  reset,    ///< the state is set to zero
};

namespace update_requirements {

template <class U>
concept declares_state = requires {
  { U::has_state } -> std::convertible_to<bool>;
};

template <class U, class Scalar>
concept has_apply = requires(const U& u, VectorRef<Scalar> x, ConstVectorRef<Scalar> g, VectorRef<Scalar> state,
                             Scalar learning_rate) { u.apply(x, g, state, learning_rate); };

template <class U>
concept has_state_at_aggregation = requires(const U& u) {
  { u.state_at_aggregation() } -> std::same_as<StateAtAggregation>;
};

template <class U>
concept has_validate = requires(const U& u) { u.validate(); };

}  // namespace update_requirements

/// A worker's update rule for model type Scalar.
///
/// - `static constexpr bool has_state`: whether the policy keeps one state vector per worker
///   (the same size as the model, zero at the start);
/// - `void apply(VectorRef<Scalar> x, ConstVectorRef<Scalar> g, VectorRef<Scalar> state, Scalar learning_rate) const`:
///   one step in place (state is empty when has_state is false); must not allocate;
/// - `StateAtAggregation state_at_aggregation() const`: what an aggregation does to the state;
/// - `void validate() const`: throws InvalidArgument naming a bad parameter.
template <class U, class Scalar>
concept UpdatePolicy = update_requirements::declares_state<U> && update_requirements::has_apply<U, Scalar> &&
                       update_requirements::has_state_at_aggregation<U> && update_requirements::has_validate<U>;

/// Compile-time check with readable messages.
template <class U, class Scalar>
consteval bool check_update_policy() {
  using namespace update_requirements;
  static_assert(declares_state<U>, "hsgd UpdatePolicy: missing `static constexpr bool has_state`");
  static_assert(has_apply<U, Scalar>,
                "hsgd UpdatePolicy: missing `void apply(hsgd::VectorRef<Scalar> x, hsgd::ConstVectorRef<Scalar> g, "
                "hsgd::VectorRef<Scalar> state, Scalar learning_rate) const` for the model's Scalar");
  static_assert(has_state_at_aggregation<U>,
                "hsgd UpdatePolicy: missing `hsgd::StateAtAggregation state_at_aggregation() const`");
  static_assert(has_validate<U>, "hsgd UpdatePolicy: missing `void validate() const`");
  return UpdatePolicy<U, Scalar>;
}

/// Plain SGD: x <- x - gamma g.
struct Sgd {
  static constexpr bool has_state = false;

  template <Real Scalar>
  void apply(VectorRef<Scalar> x, std::type_identity_t<ConstVectorRef<Scalar>> g,
             std::type_identity_t<VectorRef<Scalar>> /*state*/, std::type_identity_t<Scalar> learning_rate) const {
    x.noalias() -= learning_rate * g;
  }
  [[nodiscard]] StateAtAggregation state_at_aggregation() const { return StateAtAggregation::keep; }
  void validate() const {}
};

/// Heavy-ball momentum, as PyTorch's SGD writes it: v <- beta v + g, then x <- x - gamma v
/// (Nesterov: x <- x - gamma (g + beta v)).
struct Momentum {
  static constexpr bool has_state = true;

  double momentum = 0.9;  ///< beta, in [0, 1)
  bool nesterov = false;  ///< use the Nesterov form
  /// What an aggregation does to the momentum buffers. Default keep: each worker's buffer is its
  /// own optimizer state, as in PyTorch's post-local-SGD optimizer.
  StateAtAggregation at_aggregation = StateAtAggregation::keep;

  template <Real Scalar>
  void apply(VectorRef<Scalar> x, std::type_identity_t<ConstVectorRef<Scalar>> g,
             std::type_identity_t<VectorRef<Scalar>> velocity, std::type_identity_t<Scalar> learning_rate) const {
    const auto beta = Scalar(momentum);
    velocity = beta * velocity + g;
    if (nesterov) {
      x -= learning_rate * (g + beta * velocity);
    } else {
      x.noalias() -= learning_rate * velocity;
    }
  }
  [[nodiscard]] StateAtAggregation state_at_aggregation() const { return at_aggregation; }

  /// The buffers live in the run's state; a checkpoint compares these settings.
  [[nodiscard]] CheckpointSettings checkpoint_settings() const {
    return {{"momentum", momentum}, {"nesterov", nesterov}, {"momentum at aggregation", at_aggregation}};
  }

  void validate() const {
    detail::require(std::isfinite(momentum) && momentum >= 0 && momentum < 1, "'momentum' ({}) must be in [0, 1)",
                    momentum);
    detail::require(at_aggregation == StateAtAggregation::keep || at_aggregation == StateAtAggregation::average ||
                        at_aggregation == StateAtAggregation::reset,
                    "'at_aggregation' ({}) must be StateAtAggregation::keep, average or reset",
                    static_cast<int>(at_aggregation));
  }
};

}  // namespace hsgd
