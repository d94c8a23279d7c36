// Runs a small H-SGD problem through the package and checks it converges.
#include <fmt/core.h>
#include <hsgd/hsgd.hpp>

int main() {
  const hsgd::Matrix<double> curvatures = hsgd::Matrix<double>::Ones(2, 4);
  const hsgd::Matrix<double> centres = hsgd::Matrix<double>::Random(2, 4);
  hsgd::Options options;
  options.steps = 400;
  options.learning_rate = 0.1;
  hsgd::Engine engine(hsgd::Topology::two_level(4, 2, 2, 4), hsgd::heterogeneous_quadratics(curvatures, centres),
                      hsgd::FullBatchSampler(), options);
  const hsgd::Summary summary = engine.run();
  const double error = (engine.global_average() - centres.rowwise().mean()).norm();
  fmt::print("hsgd {} consumer: distance to the minimiser {:.3g}\n", hsgd::version(), error);
  return error < 1e-8 ? 0 : 1;
}
