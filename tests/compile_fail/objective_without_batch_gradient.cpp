// Must not compile: the objective has no batch_gradient.
// expect: hsgd Objective: missing `void batch_gradient
#include <hsgd/hsgd.hpp>

struct NoBatchGradient {
  using Scalar = double;
  hsgd::Index dimension() const { return 1; }
  hsgd::Index sample_count() const { return 1; }
  double value(hsgd::ConstVectorRef<double> x) const { return x.squaredNorm(); }
  void gradient(hsgd::ConstVectorRef<double> x, hsgd::VectorRef<double> g) const { g = 2 * x; }
};

int main() {
  hsgd::Engine engine(hsgd::Topology::local_sgd(2, 1), std::vector<NoBatchGradient>(2), hsgd::FullBatchSampler(),
                      hsgd::Options{});
  engine.step();
}
