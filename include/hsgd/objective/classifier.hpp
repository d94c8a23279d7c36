#pragma once
/// @file
/// What hsgd's classifiers over a Dataset share: the checks of their data, partition and penalty
/// weight and the shard factory (every classifier, NonconvexLogistic included); affine layers
/// viewed over a flat model, the softmax cross-entropy and accuracy; and the one body of the
/// softmax-output classifiers (SoftmaxClassifier, under SoftmaxRegression and TanhNetwork).

#include <cmath>
#include <cstddef>
#include <ranges>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "hsgd/core/error.hpp"
#include "hsgd/core/types.hpp"
#include "hsgd/data/dataset.hpp"
#include "hsgd/objective/penalty.hpp"

namespace hsgd {
namespace detail {

/// Row-major dense matrix. Viewed over a model it keeps each unit's incoming weights contiguous,
/// so a unit's activation is one dot product and its share of a gradient one axpy.
template <class Scalar>
using RowMajorMatrix = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// An affine layer z = W a + b, W (outputs x inputs), viewed in place over a flat vector laid out
/// as [W row by row; b]. `S` is `const Scalar` to read a model and `Scalar` to write a gradient.
template <class S>
struct AffineView {
  using Scalar = std::remove_const_t<S>;
  template <class T>
  using Constness = std::conditional_t<std::is_const_v<S>, const T, T>;

  /// Coordinates the layer takes in the flat vector: outputs (inputs + 1).
  static constexpr Index size(Index outputs, Index inputs) { return outputs * (inputs + 1); }

  /// The layer whose coordinates start at `first`.
  AffineView(S* first, Index outputs, Index inputs)
      : weights(first, outputs, inputs), bias(first + outputs * inputs, outputs) {}

  /// out = W a + b, into `out` as sized (no allocation).
  template <class Input>
  void apply(const Eigen::MatrixBase<Input>& input, Vector<Scalar>& out) const {
    out = bias;
    out.noalias() += weights * input;
  }

  /// W += delta a^T, b += delta: the layer's share of the gradient of a loss whose gradient in
  /// z is delta, for the input a.
  template <class Delta, class Input>
  void accumulate(const Eigen::MatrixBase<Delta>& delta, const Eigen::MatrixBase<Input>& input) {
    weights.noalias() += delta * input.transpose();
    bias += delta;
  }

  Eigen::Map<Constness<RowMajorMatrix<Scalar>>> weights;  ///< W, outputs x inputs
  Eigen::Map<Constness<Vector<Scalar>>> bias;             ///< b, outputs
};

/// log sum_c exp(z_c), computed as max z + log sum_c exp(z_c - max z) so that no exponential
/// overflows and the largest term is exactly 1.
template <class Derived>
typename Derived::Scalar log_sum_exp(const Eigen::MatrixBase<Derived>& z) {
  const typename Derived::Scalar top = z.maxCoeff();
  return top + std::log((z.array() - top).exp().sum());
}

/// Cross-entropy of logits z against class y, -log softmax(z)_y = logsumexp(z) - z_y. Overwrites
/// z with that loss's gradient in z, softmax(z) - e_y, which is what backpropagation needs next.
template <class Scalar>
Scalar cross_entropy_backward(Vector<Scalar>& z, Index label) {
  const Scalar normaliser = log_sum_exp(z);
  const Scalar loss = normaliser - z(label);
  z.array() = (z.array() - normaliser).exp();
  z(label) -= Scalar(1);
  return loss;
}

/// g = (1/|B|) sum_{k in B} grad l_k(x) + lambda grad R(x): the mean data gradient over the
/// samples B (a repeated index counts each time) plus the deterministic penalty in full, as in
/// NonconvexLogistic. `add_sample(k)` adds grad l_k(x) to g.
template <class Scalar, class Samples, class AddSample>
void penalised_mean_gradient(ConstVectorRef<Scalar> x, Scalar lambda, const Samples& samples,
                             AddSample&& add_sample, VectorRef<Scalar> g) {
  g.setZero();
  Index count = 0;
  for (const Index k : samples) {
    add_sample(k);
    ++count;
  }
  g /= Scalar(count);
  add_nonconvex_penalty_gradient(x, lambda, g);
}

/// (1/|S|) sum_{k in S} [logsumexp(z_k) - (z_k)_{y_k}] over the samples S of `data` (a repeated
/// index counts each time), where `logits(k)` returns z_k.
template <class Scalar, class Samples, class Logits>
Scalar mean_cross_entropy(const Dataset<Scalar>& data, const Samples& samples, Logits&& logits) {
  Scalar total = 0;
  Index count = 0;
  for (const Index k : samples) {
    const Vector<Scalar>& z = logits(k);
    total += log_sum_exp(z) - z(data.labels[static_cast<std::size_t>(k)]);
    ++count;
  }
  return total / Scalar(count);
}

/// Fraction of the samples of `data` whose largest logit `logits(k)` is their class; a tie goes
/// to the lowest class, so a model that cannot tell classes apart predicts class 0.
template <class Scalar, class Logits>
double classification_accuracy(const Dataset<Scalar>& data, Logits&& logits) {
  Index correct = 0;
  for (Index k = 0; k < data.size(); ++k) {
    Index predicted = 0;
    logits(k).maxCoeff(&predicted);
    if (predicted == data.labels[static_cast<std::size_t>(k)]) ++correct;
  }
  return static_cast<double>(correct) / static_cast<double>(data.size());
}

/// Throws InvalidArgument unless `data` can train a classifier: at least two classes, at least
/// one sample of at least one feature, every label a class and every feature finite.
template <class Scalar>
void check_classification_data(const Dataset<Scalar>& data) {
  require(data.classes >= 2, "'classes' ({}) must be at least 2: a classifier tells classes apart", data.classes);
  require(data.size() > 0 && data.dimension() > 0,
          "'features' ({}x{}) must hold at least one sample of at least one feature", data.dimension(),
          data.size());
  data.validate();
}

/// Throws InvalidArgument unless the penalty weight is finite and non-negative.
template <class Scalar>
void check_lambda(Scalar lambda) {
  require(std::isfinite(lambda) && lambda >= 0, "'lambda' ({}) must be finite and non-negative", lambda);
}

/// Throws InvalidArgument unless every worker's part is non-empty and names samples of `data`.
template <class Scalar>
void check_partition(const Dataset<Scalar>& data, const Partition& partition) {
  require(!partition.empty(), "'partition' must give samples to at least one worker");
  for (std::size_t j = 0; j < partition.size(); ++j) {
    require(!partition[j].empty(), "'partition'[{}] is empty: every worker needs at least one sample", j);
    for (std::size_t k = 0; k < partition[j].size(); ++k) {
      const Index sample = partition[j][k];
      require(sample >= 0 && sample < data.size(), "'partition'[{}][{}] ({}) must be in [0, {})", j, k, sample,
              data.size());
    }
  }
}

/// Throws InvalidArgument, naming the worker and the sample, if a sample that `partition` gives a
/// worker has a non-finite feature. The partition's indices must have been checked.
template <class Scalar>
void check_worker_features(const Dataset<Scalar>& data, const Partition& partition) {
  for (std::size_t j = 0; j < partition.size(); ++j) {
    for (std::size_t k = 0; k < partition[j].size(); ++k) {
      const Index sample = partition[j][k];
      const Index i = first_non_finite(data.features.col(sample));
      require(i < 0,
              "worker {} holds sample {} ('partition'[{}][{}]) whose features are not finite: coordinate {} is {}", j,
              sample, j, k, i, i < 0 ? Scalar(0) : data.features(i, sample));
    }
  }
}

/// One Objective per worker: shard j is built from the samples `partition[j]` of `data` (in that
/// order, repeats kept) and the shared `parameters`. The whole dataset is checked first, so an
/// error names a sample by its index in `data`, not in a shard; a non-finite feature is named by
/// the worker that holds it too (one a partition leaves out, by its sample alone).
template <class Objective, class Scalar, class... Parameters>
std::vector<Objective> make_classifier_shards(const Dataset<Scalar>& data, const Partition& partition,
                                              const Parameters&... parameters) {
  check_partition(data, partition);
  check_worker_features(data, partition);
  check_classification_data(data);
  std::vector<Objective> shards;
  shards.reserve(partition.size());
  for (const auto& samples : partition) shards.emplace_back(data.subset(samples), parameters...);
  return shards;
}

/// The body that SoftmaxRegression and TanhNetwork share: a classifier over the m samples
/// (a_k, y_k) of `data` whose model x maps a_k to logits z_k, with
///
///   F(x) = (1/m) sum_k [ logsumexp(z_k) - (z_k)_{y_k} ] + lambda R(x),
///
/// R B1's non-convex penalty over every coordinate of x. A minibatch gradient is the mean data
/// gradient over the batch plus the penalty gradient in full. `Derived` (which befriends this
/// class) supplies the model's shape in three private members:
///
/// - `layers(first)`: its layers viewed over the flat vector at `first`, a `const Scalar*` for a
///   model or a `Scalar*` for a gradient;
/// - `forward(model, a)`: z for the features a, in scratch memory it holds (returned by reference,
///   so that the backward pass can overwrite it);
/// - `backward(model, gradient, a)`: after forward(model, a) and with those logits overwritten by
///   r = softmax(z) - e_y, adds the sample's data gradient to `gradient` (a view from layers).
///
/// Evaluation writes into the derived object's scratch memory, so one object must not be
/// evaluated from two threads at once; distinct objects, copies included, are independent.
template <class Derived, class Scalar>
class SoftmaxClassifier {
 public:
  /// m, the number of samples.
  [[nodiscard]] Index sample_count() const { return data_.size(); }
  /// C, the number of classes.
  [[nodiscard]] Index classes() const { return data_.classes; }
  /// d, the number of features of a sample.
  [[nodiscard]] Index features() const { return data_.dimension(); }
  /// lambda, the penalty weight.
  [[nodiscard]] Scalar lambda() const { return lambda_; }
  /// The samples this objective is built on.
  [[nodiscard]] const Dataset<Scalar>& data() const { return data_; }

  /// F(x) = (1/m) sum_k [logsumexp(z_k) - (z_k)_{y_k}] + lambda R(x).
  [[nodiscard]] Scalar value(ConstVectorRef<Scalar> x) const {
    return mean_value(x, std::views::iota(Index{0}, sample_count()));
  }

  /// The mean loss over the batch plus lambda R(x): an unbiased estimate of value(x).
  [[nodiscard]] Scalar batch_value(ConstVectorRef<Scalar> x, std::span<const Index> batch) const {
    return mean_value(x, batch);
  }

  /// g = grad F(x), over all m samples, plus lambda grad R(x).
  void gradient(ConstVectorRef<Scalar> x, VectorRef<Scalar> g) const {
    mean_gradient(x, std::views::iota(Index{0}, sample_count()), g);
  }

  /// g = (1/|B|) sum_{k in B} grad l_k(x) + lambda grad R(x); a repeated index counts each time.
  void batch_gradient(ConstVectorRef<Scalar> x, std::span<const Index> batch, VectorRef<Scalar> g) const {
    mean_gradient(x, batch, g);
  }

  /// Fraction of the samples whose predicted class argmax_c (z_k)_c is y_k (ties go to the
  /// lowest class).
  [[nodiscard]] double accuracy(ConstVectorRef<Scalar> x) const {
    const auto model = derived().layers(x.data());
    return classification_accuracy(data_, [&](Index k) -> const Vector<Scalar>& { return logits(model, k); });
  }

 protected:
  /// A classifier on `data` with penalty weight `lambda`. Throws InvalidArgument unless `data`
  /// has at least 2 classes, a sample, a feature and valid labels (Derived checks lambda).
  SoftmaxClassifier(Dataset<Scalar> data, Scalar lambda) : data_(std::move(data)), lambda_(lambda) {
    check_classification_data(data_);
  }

 private:
  const Derived& derived() const { return static_cast<const Derived&>(*this); }

  /// z_k, in Derived's scratch memory.
  template <class Model>
  Vector<Scalar>& logits(const Model& model, Index k) const {
    return derived().forward(model, data_.features.col(k));
  }

  template <class Samples>
  [[nodiscard]] Scalar mean_value(ConstVectorRef<Scalar> x, const Samples& samples) const {
    const auto model = derived().layers(x.data());
    return mean_cross_entropy(data_, samples, [&](Index k) -> const Vector<Scalar>& { return logits(model, k); }) +
           lambda_ * nonconvex_penalty(x);
  }

  template <class Samples>
  void mean_gradient(ConstVectorRef<Scalar> x, const Samples& samples, VectorRef<Scalar> g) const {
    const auto model = derived().layers(x.data());
    auto model_gradient = derived().layers(g.data());
    penalised_mean_gradient(
        x, lambda_, samples,
        [&](Index k) {
          Vector<Scalar>& z = logits(model, k);
          cross_entropy_backward(z, data_.labels[static_cast<std::size_t>(k)]);  // z = r_k
          derived().backward(model, model_gradient, data_.features.col(k));
        },
        g);
  }

  Dataset<Scalar> data_;
  Scalar lambda_;
};

}  // namespace detail
}  // namespace hsgd
