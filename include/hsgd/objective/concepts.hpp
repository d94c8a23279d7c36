#pragma once
/// @file
/// What a worker's objective must provide.

#include <concepts>
#include <span>

#include "hsgd/core/random.hpp"
#include "hsgd/core/types.hpp"

namespace hsgd {

/// Requirements an objective must meet, one concept each so a failure names the missing piece.
namespace objective_requirements {

template <class O>
concept names_scalar = requires { typename O::Scalar; } && Real<typename O::Scalar>;

template <class O>
concept has_dimension = requires(const O& f) {
  { f.dimension() } -> std::convertible_to<Index>;
};

template <class O>
concept has_sample_count = requires(const O& f) {
  { f.sample_count() } -> std::convertible_to<Index>;
};

template <class O>
concept has_value = requires(const O& f, ConstVectorRef<typename O::Scalar> x) {
  { f.value(x) } -> std::convertible_to<typename O::Scalar>;
};

template <class O>
concept has_gradient =
    requires(const O& f, ConstVectorRef<typename O::Scalar> x, VectorRef<typename O::Scalar> g) {
      f.gradient(x, g);
    };

template <class O>
concept has_batch_gradient =
    requires(const O& f, ConstVectorRef<typename O::Scalar> x, std::span<const Index> batch,
             VectorRef<typename O::Scalar> g) { f.batch_gradient(x, batch, g); };


/// Optional: `Scalar batch_value(ConstVectorRef<Scalar> x, std::span<const Index> batch) const`,
/// (1/|B|) sum_{k in B} l_k(x) plus any deterministic regulariser in full (the value that goes with
/// batch_gradient). A probe that estimates from a subsample uses it to estimate F_j(x) from the
/// same samples; without it the probe evaluates F_j(x) in full.
template <class O>
concept has_batch_value = requires(const O& f, ConstVectorRef<typename O::Scalar> x, std::span<const Index> batch) {
  { f.batch_value(x, batch) } -> std::convertible_to<typename O::Scalar>;
};

/// Optional: `Vector<Scalar> initial_model(Rng& rng) const`, the objective's own starting point,
/// for objectives where x = 0 is a poor one (a network whose hidden units all start equal sits at
/// a saddle with zero gradient there). The Engine starts every worker from shard 0's
/// initial_model, drawn from the stream (seed, StreamKind::initial_model, 0); without it, from 0.
template <class O>
concept has_initial_model = requires(const O& f, Rng& rng) {
  { f.initial_model(rng) } -> std::convertible_to<Vector<typename O::Scalar>>;
};
/// Optional: `double accuracy(ConstVectorRef<Scalar> x) const`, the fraction of the objective's
/// samples that the model x classifies correctly. A probe with a held-out objective records it as
/// `test_accuracy`; without it that column stays empty. It must not allocate.
template <class O>
concept has_accuracy = requires(const O& f, ConstVectorRef<typename O::Scalar> x) {
  { f.accuracy(x) } -> std::convertible_to<double>;
};
}  // namespace objective_requirements

/// A worker's local objective `F_j`, a finite sum over its `sample_count()` samples:
/// `F_j(x) = (1/m) sum_k l_k(x)`.
///
/// - `using Scalar = double;` (or float): the model's floating-point type;
/// - `Index dimension() const`: the number of coordinates d of x;
/// - `Index sample_count() const`: m, the number of samples the sampler draws indices from;
/// - `Scalar value(ConstVectorRef<Scalar> x) const`: F_j(x);
/// - `void gradient(ConstVectorRef<Scalar> x, VectorRef<Scalar> g) const`: g = grad F_j(x);
/// - `void batch_gradient(ConstVectorRef<Scalar> x, std::span<const Index> batch, VectorRef<Scalar> g) const`:
///   g = (1/|B|) sum_{k in B} grad l_k(x), the MEAN over the batch (never the sum), so the learning
///   rate means the same thing whatever the batch size. Indices may repeat (sampling with
///   replacement) and each occurrence counts. It must not allocate: it runs in the hot loop.
template <class O>
concept Objective = objective_requirements::names_scalar<O> && objective_requirements::has_dimension<O> &&
                    objective_requirements::has_sample_count<O> && objective_requirements::has_value<O> &&
                    objective_requirements::has_gradient<O> && objective_requirements::has_batch_gradient<O>;

/// Compile-time check with messages that read like the documentation above. Returns true so it
/// can sit in a static_assert.
template <class O>
consteval bool check_objective() {
  using namespace objective_requirements;
  static_assert(names_scalar<O>,
                "hsgd Objective: the type must name its floating-point type, e.g. `using Scalar = double;`");
  static_assert(has_dimension<O>,
                "hsgd Objective: missing `Index dimension() const`, the number of model coordinates");
  static_assert(has_sample_count<O>,
                "hsgd Objective: missing `Index sample_count() const`, the number of samples in the shard");
  static_assert(has_value<O>,
                "hsgd Objective: missing `Scalar value(hsgd::ConstVectorRef<Scalar> x) const`");
  static_assert(has_gradient<O>,
                "hsgd Objective: missing `void gradient(hsgd::ConstVectorRef<Scalar> x, "
                "hsgd::VectorRef<Scalar> g) const` writing the full gradient into g");
  static_assert(has_batch_gradient<O>,
                "hsgd Objective: missing `void batch_gradient(hsgd::ConstVectorRef<Scalar> x, "
                "std::span<const hsgd::Index> batch, hsgd::VectorRef<Scalar> g) const` writing the mean "
                "gradient over the batch into g");
  return Objective<O>;
}

}  // namespace hsgd
