// Classification objectives: softmax regression and the two-layer tanh network. Gradients against
// central differences and against each other, the batch-mean convention, closed forms at x = 0,
// the softmax shift invariance, training on mixtures, validation (non-finite features too), and a
// short H-SGD run.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include <hsgd/hsgd.hpp>
#include <hsgd/objective/softmax.hpp>
#include <hsgd/objective/tanh_network.hpp>

#include "data_support.hpp"

using namespace test;
using Catch::Matchers::Contains;

static_assert(hsgd::check_objective<hsgd::SoftmaxRegression<double>>());
static_assert(hsgd::check_objective<hsgd::SoftmaxRegression<float>>());
static_assert(hsgd::check_objective<hsgd::TanhNetwork<double>>());
static_assert(hsgd::check_objective<hsgd::TanhNetwork<float>>());

namespace {

using Data = hsgd::Dataset<double>;

/// `per_class` samples of each of `classes` classes in `dimension` >= classes coordinates: class c
/// is N(separation e_c, I). Labels cycle 0, 1, ..., C - 1, so the classes are balanced.
Data gaussian_mixture(Index classes, Index dimension, Index per_class, double separation, std::uint64_t seed) {
  hsgd::Rng rng = hsgd::make_stream(seed, hsgd::StreamKind::user, 0);
  Data data;
  data.classes = classes;
  data.features.resize(dimension, classes * per_class);
  for (Index k = 0; k < data.size(); ++k) {
    const Index label = k % classes;
    for (Index i = 0; i < dimension; ++i) data.features(i, k) = (i == label ? separation : 0.0) + rng.normal();
    data.labels.push_back(label);
  }
  return data;
}

/// Two-class XOR in the plane: class 1 around (2, 2) and (-2, -2), class 0 around (2, -2) and
/// (-2, 2), noise N(0, 0.25 I). Samples come in pairs (a, -a) with the same label, `pairs` of them
/// (even), so the classes are balanced and the set is symmetric under a -> -a.
Data symmetric_xor(Index pairs, std::uint64_t seed) {
  hsgd::Rng rng = hsgd::make_stream(seed, hsgd::StreamKind::user, 1);
  Data data;
  data.classes = 2;
  data.features.resize(2, 2 * pairs);
  for (Index k = 0; k < pairs; ++k) {
    const Index label = k % 2;
    const double first = 2.0 + 0.5 * rng.normal();
    const double second = (label == 1 ? 2.0 : -2.0) + 0.5 * rng.normal();
    data.features.col(2 * k) << first, second;
    data.features.col(2 * k + 1) << -first, -second;
    data.labels.insert(data.labels.end(), {label, label});
  }
  return data;
}

hsgd::Dataset<float> to_float(const Data& data) {
  return {.features = data.features.cast<float>(), .labels = data.labels, .classes = data.classes};
}

template <class Scalar = double>
hsgd::Vector<Scalar> random_point(Index dimension, double scale, std::uint64_t seed) {
  hsgd::Rng rng = hsgd::make_stream(seed, hsgd::StreamKind::user, 2);
  hsgd::Vector<Scalar> x(dimension);
  for (Index i = 0; i < dimension; ++i) x(i) = Scalar(scale * rng.normal());
  return x;
}

// support.hpp's full_gradient, batch_gradient, all_indices and message_of, by the names the
// checks below use.
template <class Objective>
hsgd::Vector<typename Objective::Scalar> gradient_of(const Objective& f,
                                                      const hsgd::Vector<typename Objective::Scalar>& x) {
  return full_gradient(f, x);
}

template <class Objective>
Vec batch_gradient_of(const Objective& f, const Vec& x, const std::vector<Index>& batch) {
  return batch_gradient(f, x, batch);
}

std::vector<Index> all_samples(Index count) { return all_indices(count); }

/// The message of the hsgd::InvalidArgument that `make` throws, or "" if it throws none (any
/// other exception escapes and fails the test).
template <class Make>
std::string error_of(Make&& make) {
  return message_of<hsgd::InvalidArgument>(std::forward<Make>(make));
}

/// (F(x + h e_i) - F(x - h e_i)) / (2 h) for every i. With h = 1e-5 the truncation error
/// h^2 |F'''| / 6 and the rounding error ~ 1e-16 |F| / h are both about 1e-11 for F and its
/// derivatives of order 1, five orders below the 1e-6 the tests allow.
template <class Objective>
Vec central_differences(const Objective& f, const Vec& x) {
  const double h = 1e-5;
  Vec numeric(x.size());
  for (Index i = 0; i < x.size(); ++i) {
    Vec up = x;
    Vec down = x;
    up(i) += h;
    down(i) -= h;
    numeric(i) = (f.value(up) - f.value(down)) / (2 * h);
  }
  return numeric;
}

/// x after `steps` steps of full-gradient descent with rate `rate` from `x`.
template <class Objective>
Vec gradient_descent(const Objective& f, Vec x, double rate, int steps) {
  Vec g(x.size());
  for (int t = 0; t < steps; ++t) {
    f.gradient(x, g);
    x -= rate * g;
  }
  return x;
}

hsgd::Vector<double> tanh_start(const hsgd::TanhNetwork<double>& network, std::uint64_t seed) {
  hsgd::Rng rng = hsgd::make_stream(seed, hsgd::StreamKind::initial_model, 0);
  return network.initial_model(rng);
}

}  // namespace

TEST_CASE("Classifier gradients match central differences at random points", "[classifier]") {
  const Data data = gaussian_mixture(3, 4, 10, 2.0, 1);
  const hsgd::SoftmaxRegression<double> softmax(data, 0.05);  // a penalty large enough to matter
  const hsgd::TanhNetwork<double> network(data, 5, 0.05);
  for (const std::uint64_t seed : {1, 2, 3}) {
    const Vec x = random_point(softmax.dimension(), 0.7, seed);
    CHECK(relative_difference(gradient_of(softmax, x), central_differences(softmax, x)) < 1e-6);
    const Vec y = random_point(network.dimension(), 0.7, seed);
    CHECK(relative_difference(gradient_of(network, y), central_differences(network, y)) < 1e-6);
  }
}

TEST_CASE("Float classifiers agree with double ones", "[classifier]") {
  // Float's unit roundoff is 6e-8; a mean of m = 60 terms of order 1 (each with a few
  // exp/tanh roundings) is off by at most about m * 6e-8 = 4e-6 relative. 1e-4 leaves a wide
  // margin, while a wrong formula in either type would be off by order 1.
  const auto check = [](const auto& f, const auto& f_float, const Vec& x) {
    const Vec g_float = gradient_of(f_float, hsgd::Vector<float>(x.cast<float>())).template cast<double>();
    CHECK(relative_difference(g_float, gradient_of(f, x)) < 1e-4);
    CHECK(f_float.value(x.cast<float>()) == Approx(f.value(x)).epsilon(1e-4));
  };
  const Data data = gaussian_mixture(3, 4, 20, 2.0, 2);
  const hsgd::SoftmaxRegression<double> softmax(data, 0.05);
  check(softmax, hsgd::SoftmaxRegression<float>(to_float(data), 0.05f), random_point(softmax.dimension(), 0.7, 4));
  const hsgd::TanhNetwork<double> network(data, 6, 0.05);
  check(network, hsgd::TanhNetwork<float>(to_float(data), 6, 0.05f), random_point(network.dimension(), 0.7, 5));
}

TEST_CASE("A batch of every sample gives the full gradient", "[classifier]") {
  const Data data = gaussian_mixture(4, 5, 6, 2.0, 3);
  const hsgd::SoftmaxRegression<double> softmax(data);
  const Vec x = random_point(softmax.dimension(), 0.5, 6);
  CHECK(relative_difference(batch_gradient_of(softmax, x, all_samples(data.size())), gradient_of(softmax, x)) < 1e-12);

  const hsgd::TanhNetwork<double> network(data, 4);
  const Vec y = random_point(network.dimension(), 0.5, 7);
  CHECK(relative_difference(batch_gradient_of(network, y, all_samples(data.size())), gradient_of(network, y)) < 1e-12);
}

TEST_CASE("A batch gradient is the mean over the batch, and a repeated index counts each time", "[classifier]") {
  // Each one-sample batch gradient is grad l_k + lambda grad R, so the mean over {3, 7, 7} is
  // (g_3 + 2 g_7) / 3 with the penalty counted once; a sum, or a set without the repeat, differs.
  const Data data = gaussian_mixture(3, 3, 4, 2.0, 4);
  const auto check = [](const auto& f, const Vec& x) {
    const Vec g3 = batch_gradient_of(f, x, {3});
    const Vec g7 = batch_gradient_of(f, x, {7});
    const Vec mean = batch_gradient_of(f, x, {3, 7, 7});
    CHECK(relative_difference(mean, (g3 + 2 * g7) / 3) < 1e-12);
    CHECK(relative_difference(mean, (g3 + g7) / 2) > 1e-3);  // the repeat made a difference
    CHECK(relative_difference(batch_gradient_of(f, x, {7, 3, 7}), mean) < 1e-12);
  };
  const hsgd::SoftmaxRegression<double> softmax(data, 0.01);
  check(softmax, random_point(softmax.dimension(), 0.5, 8));
  const hsgd::TanhNetwork<double> network(data, 3, 0.01);
  check(network, random_point(network.dimension(), 0.5, 9));
}

TEST_CASE("batch_value over every sample is value(), and a batch's value is the mean over it", "[classifier]") {
  // Each one-sample batch value is l_k + lambda R, so the value of {3, 7, 7} is
  // (v_3 + 2 v_7) / 3 with the penalty counted once.
  const Data data = gaussian_mixture(3, 3, 4, 2.0, 5);
  const auto check = [&](const auto& f, const Vec& x) {
    CHECK(f.batch_value(x, all_samples(data.size())) == Approx(f.value(x)).epsilon(1e-13));
    const double v3 = f.batch_value(x, std::vector<Index>{3});
    const double v7 = f.batch_value(x, std::vector<Index>{7});
    REQUIRE(std::abs(v3 - v7) > 1e-6);  // the samples differ, so the weights below matter
    CHECK(f.batch_value(x, std::vector<Index>{3, 7, 7}) == Approx((v3 + 2 * v7) / 3).epsilon(1e-13));
  };
  const hsgd::SoftmaxRegression<double> softmax(data, 0.01);
  check(softmax, random_point(softmax.dimension(), 0.5, 10));
  const hsgd::TanhNetwork<double> network(data, 3, 0.01);
  check(network, random_point(network.dimension(), 0.5, 11));
}

TEST_CASE("At x = 0 every class is equally likely: F(0) = log C", "[classifier]") {
  // All logits are 0, so each sample's loss is -log(1/C); R(0) = 0 whatever lambda.
  for (const Index classes : {2, 3, 7}) {
    const Data data = gaussian_mixture(classes, 7, 3, 1.0, 5);
    const hsgd::SoftmaxRegression<double> softmax(data, 0.5);
    CHECK(softmax.value(Vec::Zero(softmax.dimension())) == Approx(std::log(double(classes))).epsilon(1e-14));
    const hsgd::TanhNetwork<double> network(data, 4, 0.5);
    CHECK(network.value(Vec::Zero(network.dimension())) == Approx(std::log(double(classes))).epsilon(1e-14));
  }
}

TEST_CASE("At x = 0 the tanh network's gradient moves the output bias only", "[classifier]") {
  // h = tanh(0) = 0 and W2 = 0 block every weight's gradient and b1's (grad R(0) = 0 too); b2's
  // is the mean of softmax(0) - e_y = 1/C - (fraction of samples in each class).
  Data data = gaussian_mixture(3, 2, 4, 1.0, 6);
  data.labels[0] = 1;  // unbalance the classes: 3, 5, 4 samples
  const hsgd::TanhNetwork<double> network(data, 5, 0.1);
  const Vec g = gradient_of(network, Vec::Zero(network.dimension()));
  const Index output_bias = network.dimension() - 3;
  CHECK(g.head(output_bias).isZero(0.0));
  CHECK(g.tail(3).isApprox(Vec{{1.0 / 3 - 3.0 / 12, 1.0 / 3 - 5.0 / 12, 1.0 / 3 - 4.0 / 12}}, 1e-14));
}

TEST_CASE("Softmax logits are stable: huge logits give the exact loss and gradient", "[classifier]") {
  // One sample a = 1, W = (0, 1000)^T, b = 0: z = (0, 1000). exp(1000) overflows a double, but
  // the loss is 1000 + log(1 + e^-1000) = 1000 for class 0 and log(1 + e^-1000) = 0 for class 1,
  // and the residual softmax(z) - e_y is (-1, 1) or (0, 0) up to e^-1000. A naive exp would give
  // inf - inf = NaN.
  const Vec x{{0.0, 1000.0, 0.0, 0.0}};
  for (const Index label : {0, 1}) {
    const hsgd::SoftmaxRegression<double> softmax(Data{.features = Vec{{1.0}}, .labels = {label}, .classes = 2}, 0.0);
    CHECK(softmax.value(x) == Approx(label == 0 ? 1000.0 : 0.0).margin(1e-12));
    const Vec expected = label == 0 ? Vec{{-1.0, 1.0, -1.0, 1.0}} : Vec::Zero(4);
    CHECK((gradient_of(softmax, x) - expected).cwiseAbs().maxCoeff() < 1e-12);
  }
}

TEST_CASE("Softmax's data term does not change when every class's weights move together", "[classifier]") {
  // softmax(W a + b) is unchanged by W -> W + 1 v^T, b -> b + s 1: every logit shifts by v.a + s.
  // Consequently the data gradient sums to zero over the classes.
  const Data data = gaussian_mixture(4, 3, 5, 2.0, 7);
  const hsgd::SoftmaxRegression<double> softmax(data, 0.0);
  const Vec x = random_point(softmax.dimension(), 1.0, 10);
  const Vec v = random_point(3, 2.0, 11);
  Vec shifted = x;
  for (Index c = 0; c < 4; ++c) {
    shifted.segment(3 * c, 3) += v;
    shifted(12 + c) += 0.7;
  }
  CHECK(softmax.value(shifted) == Approx(softmax.value(x)).epsilon(1e-12));
  Vec one_class = x;
  one_class.segment(0, 3) += v;
  CHECK(std::abs(softmax.value(one_class) - softmax.value(x)) > 1e-3);  // moving one class does matter

  const Vec g = gradient_of(softmax, x);
  Vec class_sum = Vec::Zero(4);  // sum over classes of (W row c; b_c)
  for (Index c = 0; c < 4; ++c) class_sum += Vec{{g(3 * c), g(3 * c + 1), g(3 * c + 2), g(12 + c)}};
  CHECK(class_sum.norm() < 1e-12 * g.norm());
}

TEST_CASE("Gradient descent learns a separable mixture", "[classifier]") {
  // Centres 6 e_c with unit noise: the best linear rule errs on a sample with probability at most
  // 2 Phi(-6 / sqrt(2)) < 3e-5, so the data are separable in practice and softmax regression can
  // reach 100%. 0.95 leaves room for an unfinished optimisation; x = 0 predicts class 0 (1/3).
  const Data data = gaussian_mixture(3, 3, 50, 6.0, 8);
  const hsgd::SoftmaxRegression<double> softmax(data);
  const Vec start = Vec::Zero(softmax.dimension());
  CHECK(softmax.accuracy(start) == Approx(1.0 / 3));
  const Vec trained = gradient_descent(softmax, start, 0.05, 300);
  CHECK(softmax.accuracy(trained) >= 0.95);
  CHECK(softmax.value(trained) < 0.1 * softmax.value(start));

  const hsgd::TanhNetwork<double> network(data, 6);
  CHECK(network.accuracy(gradient_descent(network, tanh_start(network, 1), 0.2, 300)) >= 0.95);
}

TEST_CASE("The tanh network learns XOR, which no linear classifier can", "[classifier]") {
  // The samples come in pairs (a, -a) with the same label. A linear rule predicts class 1 when
  // w.a + beta > 0: both points of a class-1 pair need beta > |w.a|, both of a class-0 pair need
  // beta <= -|w.a|, so one whole class gets at most one point per pair right, and with balanced
  // classes no linear rule, softmax regression included, exceeds 3/4. The network's rule can
  // follow sign(a_1 a_2), which errs only when the noise (sd 0.5) crosses an axis 2 away
  // (4 sd, probability < 1e-4 per sample), so 0.95 is a bar only a non-linear fit clears.
  const Data data = symmetric_xor(100, 9);
  const hsgd::SoftmaxRegression<double> softmax(data);
  CHECK(softmax.accuracy(gradient_descent(softmax, Vec::Zero(softmax.dimension()), 0.1, 300)) <= 0.75);
  const hsgd::TanhNetwork<double> network(data, 8);
  CHECK(network.accuracy(gradient_descent(network, tanh_start(network, 2), 0.3, 400)) >= 0.95);
}

TEST_CASE("The tanh network's initial model is reproducible Glorot-uniform with zero biases", "[classifier]") {
  const Data data = gaussian_mixture(3, 4, 2, 1.0, 10);
  const hsgd::TanhNetwork<double> network(data, 6);
  const Vec x = tanh_start(network, 3);
  CHECK(x == tanh_start(network, 3));
  CHECK(x != tanh_start(network, 4));
  // Layout [W1 (6 x 4); b1 (6); W2 (3 x 6); b2 (3)].
  const double first_limit = std::sqrt(6.0 / (4 + 6));
  const double second_limit = std::sqrt(6.0 / (6 + 3));
  CHECK(x.segment(0, 24).cwiseAbs().maxCoeff() <= first_limit);
  CHECK(x.segment(0, 24).cwiseAbs().maxCoeff() > first_limit / 2);  // not a squashed range
  CHECK(x.segment(24, 6).isZero(0.0));
  CHECK(x.segment(30, 18).cwiseAbs().maxCoeff() <= second_limit);
  CHECK(x.segment(30, 18).cwiseAbs().maxCoeff() > second_limit / 2);
  CHECK(x.tail(3).isZero(0.0));
  CHECK(gradient_of(network, x).head(24).norm() > 0);  // away from zero the first layer learns
}

TEST_CASE("Classifiers reject bad input, naming the parameter", "[classifier]") {
  using Catch::Matchers::Contains;
  const Data data = gaussian_mixture(3, 3, 2, 1.0, 11);
  Data one_class = data;
  one_class.classes = 1;
  std::fill(one_class.labels.begin(), one_class.labels.end(), Index{0});
  Data empty{.features = hsgd::Matrix<double>(3, 0), .labels = {}, .classes = 3};
  Data bad_label = data;
  bad_label.labels[4] = 3;

  CHECK_THAT(error_of([&] { return hsgd::SoftmaxRegression<double>(one_class); }),
             Contains("'classes' (1) must be at least 2"));
  CHECK_THAT(error_of([&] { return hsgd::TanhNetwork<double>(one_class, 3); }),
             Contains("'classes' (1) must be at least 2"));
  CHECK_THAT(error_of([&] { return hsgd::SoftmaxRegression<double>(empty); }),
             Contains("'features' (3x0) must hold at least one sample"));
  CHECK_THAT(error_of([&] { return hsgd::TanhNetwork<double>(bad_label, 3); }),
             Contains("'labels'[4] (3) must be in [0, 3)"));
  CHECK_THAT(error_of([&] { return hsgd::TanhNetwork<double>(data, 0); }), Contains("'hidden' (0) must be positive"));
  CHECK_THAT(error_of([&] { return hsgd::SoftmaxRegression<double>(data, -1.0); }),
             Contains("'lambda' (-1) must be finite and non-negative"));
  CHECK_THAT(error_of([&] { return hsgd::TanhNetwork<double>(data, 2, std::nan("")); }),
             Contains("'lambda' (nan) must be finite"));

  CHECK_THAT(error_of([&] { return hsgd::make_softmax_shards(data, {{0}, {1, 2, 9}}); }),
             Contains("'partition'[1][2] (9) must be in [0, 6)"));
  CHECK_THAT(error_of([&] { return hsgd::make_tanh_network_shards(data, {{0, 1}, {}}, 3); }),
             Contains("'partition'[1] is empty"));
  CHECK_THAT(error_of([&] { return hsgd::make_softmax_shards(data, {}); }),
             Contains("'partition' must give samples to at least one worker"));
  CHECK_THAT(error_of([&] { return hsgd::make_softmax_shards(bad_label, {{0}, {1}}); }),
             Contains("'labels'[4] (3)"));  // named by its index in the whole dataset
  CHECK_THAT(error_of([&] { return hsgd::make_tanh_network_shards(data, {{0}, {1}}, -2); }),
             Contains("'hidden' (-2) must be positive"));
}

TEST_CASE("Classifier shards refuse non-finite features, naming the worker and the sample", "[hardening][data]") {
  hsgd::Dataset<double> data = dataset_with_silent_feature();
  data.features(2, 7) = nan_value;
  const hsgd::Partition partition{{0, 1, 2, 3}, {4, 5, 6, 7}, {8, 9}};
  REQUIRE_INVALID(hsgd::make_softmax_shards(data, partition),
                  "worker 1 holds sample 7 ('partition'[1][3]) whose features are not finite: coordinate 2 is nan");
  REQUIRE_INVALID(hsgd::make_tanh_network_shards(data, partition, 3), "worker 1 holds sample 7");
  // A sample no worker holds is still refused, by its index in the data set.
  REQUIRE_INVALID(hsgd::make_softmax_shards(data, hsgd::Partition{{0, 1}, {8}}), "'features' sample 7 is not finite");
  data.features(2, 7) = -inf_value;
  REQUIRE_INVALID(hsgd::SoftmaxRegression<double>(data), "'features' sample 7 is not finite: coordinate 2 is -inf");
  REQUIRE_INVALID(hsgd::TanhNetwork<double>(data, 2), "'features' sample 7");
  data.features(2, 7) = 1.0;
  CHECK(hsgd::make_softmax_shards(data, partition).size() == 3);
}

TEST_CASE("Shards hold their part of the data and share one model layout", "[classifier]") {
  const Data data = gaussian_mixture(3, 2, 4, 1.0, 12);
  const hsgd::Partition partition{{0, 3, 6, 9}, {1, 1, 2}, {11}};
  const auto shards = hsgd::make_tanh_network_shards(data, partition, 4, 0.01);
  REQUIRE(shards.size() == 3);
  for (std::size_t j = 0; j < shards.size(); ++j) {
    CHECK(shards[j].dimension() == 4 * 3 + 3 * 5);  // H (d + 1) + C (H + 1) although shard 2 holds one class
    CHECK(shards[j].sample_count() == static_cast<Index>(partition[j].size()));
    CHECK(shards[j].lambda() == 0.01);
    for (std::size_t k = 0; k < partition[j].size(); ++k) {
      CHECK(shards[j].data().features.col(static_cast<Index>(k)) == data.features.col(partition[j][k]));
      CHECK(shards[j].data().labels[k] == data.labels[static_cast<std::size_t>(partition[j][k])]);
    }
  }
  // A float dataset with a double lambda literal still picks the float objective.
  const auto float_shards = hsgd::make_softmax_shards(to_float(data), partition, 0.5);
  CHECK(float_shards[1].lambda() == 0.5f);
  CHECK(float_shards[1].dimension() == 3 * 3);
}

TEST_CASE("H-SGD over two levels trains both classifiers on label-skewed shards", "[classifier]") {
  // 8 workers in 2 groups; 80% of worker j's samples are of class j mod 4 (non-IID). After the
  // run the global average must classify the whole mixture although each worker sees mostly one
  // class; the Bayes error is below 1e-3 (centres 5 sqrt(2) apart, unit noise).
  const Data data = gaussian_mixture(4, 4, 40, 5.0, 13);
  hsgd::Partition partition(8);
  for (Index k = 0; k < data.size(); ++k) {
    const Index label = data.labels[static_cast<std::size_t>(k)];
    const Index worker = k % 5 == 0 ? (k / 5) % 8 : label + 4 * ((k / 4) % 2);  // 80% by label, 20% spread
    partition[static_cast<std::size_t>(worker)].push_back(k);
  }
  const auto topology = hsgd::Topology::two_level(8, 2, 2, 8);
  hsgd::Options options;
  options.seed = 3;
  options.steps = 240;
  options.learning_rate = 0.1;
  options.threads = 1;

  const hsgd::SoftmaxRegression<double> whole_softmax(data);
  hsgd::Engine softmax_run(topology, hsgd::make_softmax_shards(data, partition), hsgd::UniformSampler(8), options);
  const double softmax_start = softmax_run.loss(softmax_run.global_average());
  softmax_run.run();
  const Vec softmax_average = softmax_run.global_average();
  CHECK(softmax_run.loss(softmax_average) < 0.5 * softmax_start);
  CHECK(whole_softmax.accuracy(softmax_average) >= 0.9);

  const hsgd::TanhNetwork<double> whole_network(data, 8);
  hsgd::Engine network_run(topology, hsgd::make_tanh_network_shards(data, partition, 8), hsgd::UniformSampler(8),
                           options);
  network_run.set_model(tanh_start(whole_network, options.seed));
  const double network_start = network_run.loss(network_run.global_average());
  network_run.run();
  const Vec network_average = network_run.global_average();
  CHECK(network_run.loss(network_average) < 0.5 * network_start);
  CHECK(whole_network.accuracy(network_average) >= 0.9);
}
