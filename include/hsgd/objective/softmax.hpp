#pragma once
/// @file
/// Multi-class softmax regression with benchmark B1's non-convex penalty: one affine layer on a
/// SoftmaxClassifier (classifier.hpp, the body it shares with the tanh network).

#include <type_traits>
#include <utility>
#include <vector>

#include "hsgd/core/types.hpp"
#include "hsgd/data/dataset.hpp"
#include "hsgd/objective/classifier.hpp"

namespace hsgd {

/// Multi-class softmax (multinomial logistic) regression with benchmark B1's non-convex penalty,
/// over m samples (a_k, y_k), a_k in R^d, y_k in [0, C):
///
///   F(x) = (1/m) sum_k [ logsumexp(W a_k + b) - (W a_k + b)_{y_k} ] + lambda R(x),
///   R(x) = sum_i x_i^2 / (1 + x_i^2)   over ALL coordinates of x, the bias included (as in
///                                      NonconvexLogistic), which makes F non-convex;
///
///   grad_W F = (1/m) sum_k r_k a_k^T,   grad_b F = (1/m) sum_k r_k,   r_k = softmax(W a_k + b) - e_{y_k},
///   plus lambda 2 x_i / (1 + x_i^2)^2 on every coordinate i.
///
/// Model layout, dimension C (d + 1): x = [W row by row; b], i.e. x[c d + i] = W(c, i) and
/// x[C d + c] = b_c, so class c's weight vector is contiguous. At x = 0 every class is equally
/// likely and F(0) = log C; zero is a fine starting point. A minibatch gradient is the mean data
/// gradient over the batch plus the penalty gradient in full.
///
/// Not thread-safe per object: evaluation writes the logits of the current sample into scratch
/// memory held by the object (see `logits_`). Distinct objects, copies included, are independent.
template <Real S = double>
class SoftmaxRegression : public detail::SoftmaxClassifier<SoftmaxRegression<S>, S> {
 public:
  using Scalar = S;

  /// The penalty weight of B1.
  static constexpr Scalar default_lambda = Scalar(1e-3);

  /// Softmax regression on `data` with penalty weight `lambda`. Throws InvalidArgument unless
  /// `data` has at least 2 classes, a sample, a feature and valid labels, and `lambda` is finite
  /// and non-negative.
  explicit SoftmaxRegression(Dataset<Scalar> data, Scalar lambda = default_lambda) : Base(std::move(data), lambda) {
    detail::check_lambda(this->lambda());
    logits_.resize(this->classes());
  }

  /// C (d + 1), the number of model coordinates.
  [[nodiscard]] Index dimension() const {
    return detail::AffineView<Scalar>::size(this->classes(), this->features());
  }

  // sample_count, classes, features, lambda, data, value, batch_value, gradient, batch_gradient
  // and accuracy (the predicted class is argmax_c (W a_k + b)_c): see detail::SoftmaxClassifier.

 private:
  using Base = detail::SoftmaxClassifier<SoftmaxRegression<S>, S>;
  friend Base;  // it calls layers, forward and backward

  /// The layer W, b viewed over the model (or gradient) at `first`.
  template <class T>
  detail::AffineView<T> layers(T* first) const {
    return detail::AffineView<T>(first, this->classes(), this->features());
  }

  /// z = W a + b, in the scratch vector.
  template <class Input>
  Vector<Scalar>& forward(const detail::AffineView<const Scalar>& layer, const Eigen::MatrixBase<Input>& input) const {
    layer.apply(input, logits_);
    return logits_;
  }

  /// grad_W += r a^T, grad_b += r, with r in the scratch vector.
  template <class Input>
  void backward(const detail::AffineView<const Scalar>& /*layer*/, detail::AffineView<Scalar>& layer_gradient,
                const Eigen::MatrixBase<Input>& input) const {
    layer_gradient.accumulate(logits_, input);
  }

  // Scratch for one sample's logits, sized at construction so that evaluation allocates nothing.
  // Recomputing each logit in a second pass instead would avoid the state but double the dot
  // products; hsgd's Engine evaluates a worker's shard on one thread at a time, so the state is
  // safe there. The price is that one object must not be evaluated from two threads at once.
  mutable Vector<Scalar> logits_;
};

/// One SoftmaxRegression per worker: worker j's shard holds the samples `partition[j]` of `data`,
/// all with penalty weight `lambda` and the same C (d + 1) coordinates, whatever classes a shard
/// happens to hold. Throws InvalidArgument on bad data, an empty part or an index out of range.
template <Real Scalar>
std::vector<SoftmaxRegression<Scalar>> make_softmax_shards(
    const Dataset<Scalar>& data, const Partition& partition,
    std::type_identity_t<Scalar> lambda = SoftmaxRegression<Scalar>::default_lambda) {
  return detail::make_classifier_shards<SoftmaxRegression<Scalar>>(data, partition, lambda);
}

}  // namespace hsgd
