// time_to_target: what local aggregation buys in seconds. An edge-cloud network on a simulated clock
// (hsgd::SimulatedClock): fast local links (1 Gbit/s, 1 ms), a slow global link (100 Mbit/s, 50 ms),
// 10 ms of compute per step, log-normally spread over the workers. On Fashion-MNIST (softmax regression,
// two-class label shards, 100 workers in 10 groups) if installed, else on a synthetic 10-class problem,
// it runs local SGD with period I, H-SGD(I, G) with random groups and local SGD with period G until the
// held-out loss of the global average reaches the target, and prints the simulated time each took,
// split into compute, waiting and communication per level.
//
//   time_to_target && python3 examples/plot_time.py time_to_target.csv time_to_target.png

#include <cstdio>
#include <limits>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/core.h>

#include <hsgd/hsgd.hpp>

#include "cli.hpp"
#include "fashion_data.hpp"
#include "problem.hpp"

namespace {

constexpr std::string_view description =
    "time_to_target: simulated seconds for local SGD with period I, H-SGD(I, G) and local SGD with period G to reach a "
    "held-out loss, on an edge-cloud network with slow global links";

struct Settings : example::RunFlags {
  double target = 0;  // the held-out loss to reach
  hsgd::Index test_every = 10, threads = 2;
  std::string data_directory{};
  hsgd::ClockOptions network{};  // the edge-cloud network: level 1 over the local links, the top level over the global one
  hsgd::StudyOptions study{};

  [[nodiscard]] std::string header() const {
    const hsgd::Link &local = network.levels[0].link, &global = network.levels[1].link;
    return fmt::format("time_to_target: {}; n = {} in {} groups, I = {}, G = {}, gamma = {}, batch = {}, at most {} steps; "
                       "local links {} s + bytes / {:.3g} B/s, global link {} s + bytes / {:.3g} B/s ({}), compute {} s per "
                       "step x log-normal(sigma {}); target held-out loss {}",
                       example::has_fashion_mnist(data_directory) ? "Fashion-MNIST" : "synthetic 10-class mixture (no Fashion-MNIST)",
                       workers, groups, local_period, global_period, learning_rate, batch, steps, local.latency, local.bandwidth,
                       global.latency, global.bandwidth,
                       network.levels[1].pattern == hsgd::RoundPattern::ring_allreduce ? "ring all-reduce" : "parameter server",
                       network.compute.per_step, network.speeds.spread, target);
  }
};

const std::vector<std::string> schemes{"local-sgd-I", "hsgd-random", "local-sgd-G"};
/// A run's results: whether it reached the target, and where the time went.
enum Result : std::size_t { reached, steps, dropped, seconds, compute, waiting, local_comm, global_comm, discarded, loss, accuracy };

/// The network's cost model for a run of `levels` levels: local SGD's one level pays the global link.
hsgd::ClockOptions clock_for(hsgd::ClockOptions network, hsgd::Index levels) {
  network.levels.erase(network.levels.begin(), network.levels.end() - levels);
  network.deadlines.erase(network.deadlines.begin(), network.deadlines.end() - levels);
  return network;
}

/// The data: Fashion-MNIST if installed, else a synthetic 10-class mixture; label shards, two per worker;
/// softmax regression with the held-out set's bare cross-entropy as the loss. Then each scheme until the
/// held-out loss reaches the target, each the study's next run; false when a signal stopped it.
bool run(const Settings& s, hsgd::Study& study) {
  auto [train, test] = example::fashion_mnist_or_mixture(s.data_directory, s.workers);
  const hsgd::Partition partition = hsgd::partition_shards(train, {.workers = s.workers, .shards_per_worker = 2, .seed = 1});
  const auto shards = hsgd::make_softmax_shards(train, partition, 1e-4);
  const hsgd::SoftmaxRegression<double> held_out(std::move(test), 0.0);
  const hsgd::Vector<double> start = hsgd::Vector<double>::Zero(shards.front().dimension());
  const double bytes = static_cast<double>(start.size()) * 8;
  fmt::print("model: {} scalars ({:.1f} KB); a global round of {} workers: {:.3f} s, a local round of {}: {:.4f} s\n",
             start.size(), bytes / 1e3, s.workers, s.network.levels[1].round_seconds(s.workers, bytes),
             s.workers / s.groups, s.network.levels[0].round_seconds(s.workers / s.groups, bytes));
  const auto run = [&](const std::string& scheme, const hsgd::Topology& topology, auto grouping) {
    if (!study.skip_finished()) {
      hsgd::Engine engine(topology, shards, hsgd::UniformSampler(s.batch), s.options(1, s.threads), std::move(grouping),
                          hsgd::SimulatedClock(clock_for(s.network, topology.levels())));
      engine.set_model(start);
      study.set_tags({scheme});
      auto probe = hsgd::make_probe(engine, {.gradient_every = 0, .model_every = 0, .test_every = s.test_every}, study, held_out);
      const auto on_target = [&] { return probe.last().step % s.test_every == 0 && probe.last().test_loss <= s.target; };
      auto stop_at_target = hsgd::every(s.test_every, [&](const auto&) { return on_target(); });
      hsgd::ProgressBar progress(scheme, s.steps);
      if (!study.run(engine, probe, stop_at_target, progress)) return false;
      const hsgd::ClockReading clock = engine.clock().reading();
      const auto& last = probe.last();
      study.finish({on_target() ? 1.0 : 0.0, static_cast<double>(engine.step_count()), static_cast<double>(clock.dropped),
                    clock.seconds, clock.compute, clock.wait, clock.communication.size() > 1 ? clock.communication.front() : 0.0,
                    clock.communication.back(), clock.discarded, last.test_loss, last.test_accuracy});
    }
    const auto& result = study.result(study.next() - 1);
    fmt::print("  {:<12} {} after {} steps, {:.1f} simulated seconds\n", scheme,
               result[reached] > 0 ? "reached the target" : "did not reach the target", static_cast<hsgd::Index>(result[steps]),
               result[seconds]);
    std::fflush(stdout);
    return true;
  };
  return run(schemes[0], hsgd::Topology::local_sgd(s.workers, s.local_period), hsgd::ContiguousGrouping{}) &&
         run(schemes[1], hsgd::Topology::two_level(s.workers, s.groups, s.local_period, s.global_period), hsgd::RandomGrouping{}) &&
         run(schemes[2], hsgd::Topology::local_sgd(s.workers, s.global_period), hsgd::ContiguousGrouping{});
}

void print_table(const Settings& s, const hsgd::Study& study) {
  fmt::print("\n{:<12} {:>7} {:>6} {:>10} {:>9} {:>8} {:>10} {:>10} {:>9} {:>9} {:>9} {:>8}\n", "scheme", "reached",
             "steps", "simulated", "compute", "waiting", "local comm", "global comm", "discarded", "test loss", "accuracy",
             "left out");
  for (std::size_t k = 0; k < study.results().size(); ++k) {
    const auto& o = study.results()[k];
    fmt::print("{:<12} {:>7} {:>6} {:>9.2f}s {:>8.2f}s {:>7.2f}s {:>9.2f}s {:>10.2f}s {:>8.2f}s {:>9.4f} {:>9.4f} {:>8}\n",
               schemes[k], o[reached] > 0 ? "yes" : "no", static_cast<hsgd::Index>(o[steps]), o[seconds], o[compute], o[waiting],
               o[local_comm], o[global_comm], o[discarded], o[loss], o[accuracy], static_cast<hsgd::Index>(o[dropped]));
  }
  fmt::print("(seconds on the simulated clock to a held-out loss of {}, along the critical path: the latest worker's "
             "compute, waiting for slower workers and rounds per level, less the time deadlines discarded)\n",
             s.target);
}

Settings read_settings(example::Flags& flags) {
  Settings s{example::RunFlags::read(flags, example::fashion_run_defaults("time_to_target.csv"))};
  s.data_directory = flags.text("data", example::fashion_mnist_directory,
                                "Fashion-MNIST's directory (a synthetic problem when the files are not there)");
  s.target = flags.real("target", 0.7, "target held-out loss (cross-entropy of the global average)");
  s.test_every = flags.integer("test-every", 10, "steps between held-out evaluations");
  s.threads = flags.integer("threads", 2, "threads per run (results do not depend on it)");
  hsgd::LevelCost local, global;
  local.link.latency = flags.real("local-latency", 1e-3, "seconds per message on a local link");
  local.link.bandwidth = flags.real("local-bandwidth", 1.25e8, "bytes per second of a local link");
  global.link.latency = flags.real("global-latency", 0.05, "seconds per message on the global link");
  global.link.bandwidth = flags.real("global-bandwidth", 1.25e7, "bytes per second of the global link");
  s.network.compute.per_step = flags.real("compute", 0.01, "seconds of compute per local step (median worker)");
  s.network.speeds = hsgd::WorkerSpeeds::log_normal(flags.real("spread", 0.3, "sigma of the workers' log-normal speed factors"));
  const std::string pattern = flags.text("pattern", "server", "server (parameter server) or ring (ring all-reduce)");
  if (pattern != "server" && pattern != "ring")
    throw std::invalid_argument(fmt::format("'--pattern' ({}) must be server or ring", pattern));
  local.pattern = global.pattern = pattern == "ring" ? hsgd::RoundPattern::ring_allreduce : hsgd::RoundPattern::parameter_server;
  s.network.levels = {local, global};
  const double infinity = std::numeric_limits<double>::infinity();
  s.network.deadlines = {
      flags.real("local-deadline", infinity, "seconds a local round waits after its group last met; later workers are left out"),
      flags.real("global-deadline", infinity, "the same for the global round")};
  if (s.test_every <= 0) throw std::invalid_argument(fmt::format("'--test-every' ({}) must be positive", s.test_every));
  s.study = example::study_options(flags, s.csv, {"scheme"}, 2);
  return s;
}

}  // namespace

int main(int argc, char** argv) { return example::main(argc, argv, description, read_settings, run, print_table); }
