// Must not compile: a held-out objective over float models for a run over double models.
// expect: hsgd DivergenceProbe: the held-out objective must be an hsgd Objective whose Scalar is the run's
#include <hsgd/hsgd.hpp>

int main() {
  std::vector<hsgd::Quadratic<double>> shards(2, hsgd::Quadratic<double>(hsgd::Vector<double>::Ones(1), hsgd::Vector<double>::Zero(1)));
  hsgd::Engine engine(hsgd::Topology::local_sgd(2, 1), shards, hsgd::UniformSampler(1), hsgd::Options{});
  hsgd::MemoryRecorder memory;
  auto probe = hsgd::make_probe(engine, {}, memory, hsgd::Quadratic<float>(hsgd::Vector<float>::Ones(1), hsgd::Vector<float>::Zero(1)));
  engine.run(probe);
}
