#pragma once
/// @file
/// A small two-layer tanh network classifier: a genuinely non-convex objective for toy
/// experiments, with benchmark B1's non-convex penalty; a SoftmaxClassifier (classifier.hpp)
/// whose logits come from a hidden tanh layer.

#include <cmath>
#include <type_traits>
#include <utility>
#include <vector>

#include "hsgd/core/error.hpp"
#include "hsgd/core/random.hpp"
#include "hsgd/core/types.hpp"
#include "hsgd/data/dataset.hpp"
#include "hsgd/objective/classifier.hpp"

namespace hsgd {
namespace detail {

/// Both layers of a two-layer network viewed in place over one flat vector laid out as
/// [W1 row by row; b1; W2 row by row; b2]. `S` is `const Scalar` to read a model and `Scalar` to
/// write a gradient.
template <class S>
struct TwoLayerView {
  /// Coordinates of the whole network: H (d + 1) + C (H + 1).
  static constexpr Index size(Index inputs, Index hidden_units, Index classes) {
    return AffineView<S>::size(hidden_units, inputs) + AffineView<S>::size(classes, hidden_units);
  }

  /// The network whose coordinates start at `first`.
  TwoLayerView(S* first, Index inputs, Index hidden_units, Index classes)
      : hidden(first, hidden_units, inputs),
        output(first + AffineView<S>::size(hidden_units, inputs), classes, hidden_units) {}

  AffineView<S> hidden;  ///< W1 (H x d), b1 (H)
  AffineView<S> output;  ///< W2 (C x H), b2 (C)
};

/// Fills `weights` (rows x cols) row by row with Glorot-uniform draws U(-s, s), s = sqrt(6 / (rows + cols)),
/// which keep the variance of activations and of back-propagated gradients about constant
/// across a tanh layer at the start.
template <class Derived>
void fill_glorot_uniform(Eigen::MatrixBase<Derived>& weights, Rng& rng) {
  using Scalar = typename Derived::Scalar;
  const double limit = std::sqrt(6.0 / static_cast<double>(weights.rows() + weights.cols()));
  for (Index row = 0; row < weights.rows(); ++row) {
    for (Index col = 0; col < weights.cols(); ++col) weights(row, col) = Scalar(limit * (2.0 * rng.uniform() - 1.0));
  }
}

}  // namespace detail

/// A two-layer tanh network classifier with benchmark B1's non-convex penalty, over m samples
/// (a_k, y_k), a_k in R^d, y_k in [0, C), with H hidden units:
///
///   h_k = tanh(W1 a_k + b1),   z_k = W2 h_k + b2,
///   F(x) = (1/m) sum_k [ logsumexp(z_k) - (z_k)_{y_k} ] + lambda R(x),
///   R(x) = sum_i x_i^2 / (1 + x_i^2)   over ALL coordinates of x, biases included.
///
/// The gradient is exact backpropagation: with r_k = softmax(z_k) - e_{y_k} and
/// delta_k = (W2^T r_k) .* (1 - h_k .^ 2),
///
///   grad_W2 F = (1/m) sum_k r_k h_k^T,       grad_b2 F = (1/m) sum_k r_k,
///   grad_W1 F = (1/m) sum_k delta_k a_k^T,   grad_b1 F = (1/m) sum_k delta_k,
///   plus lambda 2 x_i / (1 + x_i^2)^2 on every coordinate i.
///
/// Model layout, dimension H (d + 1) + C (H + 1): x = [W1 row by row; b1; W2 row by row; b2], so
/// each unit's incoming weights are contiguous. Do not start at x = 0: there h = 0 and W2 = 0, so
/// the data gradient of every weight vanishes and only b2 would ever move; start from
/// `initial_model()` instead. A minibatch gradient is the mean data gradient over the batch plus
/// the penalty gradient in full.
///
/// Not thread-safe per object: evaluation writes the current sample's activations into scratch
/// memory held by the object (see `hidden_`). Distinct objects, copies included, are independent.
template <Real S = double>
class TanhNetwork : public detail::SoftmaxClassifier<TanhNetwork<S>, S> {
 public:
  using Scalar = S;

  /// A tenth of B1's weight: the penalty counts every weight, and a network has many more of
  /// them than a linear model, so this keeps the penalty a mild non-convexity rather than a pull
  /// towards zero that competes with the data term.
  static constexpr Scalar default_lambda = Scalar(1e-4);

  /// A network with `hidden` tanh units on `data`, penalty weight `lambda`. Throws InvalidArgument
  /// unless `data` has at least 2 classes, a sample, a feature and valid labels, `hidden` is
  /// positive, and `lambda` is finite and non-negative.
  TanhNetwork(Dataset<Scalar> data, Index hidden, Scalar lambda = default_lambda)
      : Base(std::move(data), lambda), hidden_units_(hidden) {
    detail::require(hidden_units_ > 0, "'hidden' ({}) must be positive", hidden_units_);
    detail::check_lambda(this->lambda());
    hidden_.resize(hidden_units_);
    hidden_delta_.resize(hidden_units_);
    logits_.resize(this->classes());
  }

  /// H (d + 1) + C (H + 1), the number of model coordinates.
  [[nodiscard]] Index dimension() const {
    return detail::TwoLayerView<Scalar>::size(this->features(), hidden_units_, this->classes());
  }
  /// H, the number of hidden units.
  [[nodiscard]] Index hidden_units() const { return hidden_units_; }

  // sample_count, classes, features, lambda, data, value, batch_value, gradient (by
  // backpropagation), batch_gradient and accuracy (the predicted class is argmax_c (z_k)_c): see
  // detail::SoftmaxClassifier.

  /// A random starting point: W1 and W2 Glorot-uniform (W ~ U(-s, s), s = sqrt(6 / (fan_in +
  /// fan_out))), b1 = b2 = 0. Random weights break the symmetry between hidden units and
  /// leave x = 0, where every weight's data gradient vanishes. Draws H d + C H uniforms from
  /// `rng`, W1 then W2, row by row; pass a stream such as make_stream(seed,
  /// StreamKind::initial_model, 0).
  [[nodiscard]] Vector<Scalar> initial_model(Rng& rng) const {
    Vector<Scalar> x = Vector<Scalar>::Zero(dimension());
    detail::TwoLayerView<Scalar> network = layers(x.data());
    detail::fill_glorot_uniform(network.hidden.weights, rng);
    detail::fill_glorot_uniform(network.output.weights, rng);
    return x;
  }

 private:
  using Base = detail::SoftmaxClassifier<TanhNetwork<S>, S>;
  friend Base;  // it calls layers, forward and backward

  template <class T>
  detail::TwoLayerView<T> layers(T* first) const {
    return detail::TwoLayerView<T>(first, this->features(), hidden_units_, this->classes());
  }

  /// h = tanh(W1 a + b1) into hidden_ and z = W2 h + b2 into logits_; returns z.
  template <class Input>
  Vector<Scalar>& forward(const detail::TwoLayerView<const Scalar>& network,
                          const Eigen::MatrixBase<Input>& input) const {
    network.hidden.apply(input, hidden_);
    hidden_ = hidden_.array().tanh();
    network.output.apply(hidden_, logits_);
    return logits_;
  }

  /// Backpropagation of r = logits_ through both layers into `network_gradient`.
  template <class Input>
  void backward(const detail::TwoLayerView<const Scalar>& network, detail::TwoLayerView<Scalar>& network_gradient,
                const Eigen::MatrixBase<Input>& input) const {
    network_gradient.output.accumulate(logits_, hidden_);
    hidden_delta_.noalias() = network.output.weights.transpose() * logits_;
    hidden_delta_.array() *= Scalar(1) - hidden_.array().square();  // tanh' = 1 - tanh^2
    network_gradient.hidden.accumulate(hidden_delta_, input);
  }

  Index hidden_units_;
  // Scratch for one sample's forward and backward pass (h_k, delta_k, z_k then r_k), sized at
  // construction so that evaluation allocates nothing. Backpropagation needs h_k and r_k at the
  // same time, so unlike softmax regression there is no cheap way around storing them. hsgd's
  // Engine evaluates a worker's shard on one thread at a time, so the state is safe there; the
  // price is that one object must not be evaluated from two threads at once.
  mutable Vector<Scalar> hidden_;
  mutable Vector<Scalar> hidden_delta_;
  mutable Vector<Scalar> logits_;
};

/// One TanhNetwork per worker: worker j's shard holds the samples `partition[j]` of `data`, all
/// with `hidden` units, penalty weight `lambda` and the same coordinates, whatever classes a shard
/// happens to hold. Throws InvalidArgument on bad data or parameters, an empty part or an index
/// out of range.
template <Real Scalar>
std::vector<TanhNetwork<Scalar>> make_tanh_network_shards(
    const Dataset<Scalar>& data, const Partition& partition, Index hidden,
    std::type_identity_t<Scalar> lambda = TanhNetwork<Scalar>::default_lambda) {
  return detail::make_classifier_shards<TanhNetwork<Scalar>>(data, partition, hidden, lambda);
}

}  // namespace hsgd
