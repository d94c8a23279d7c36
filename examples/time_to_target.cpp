// time_to_target: what local aggregation buys in seconds. An edge-cloud network on a simulated
// clock (hsgd::SimulatedClock): fast local links (1 Gbit/s, 1 ms), a slow global link (100 Mbit/s,
// 50 ms), 10 ms of compute per step with a log-normal spread over the workers. On Fashion-MNIST
// (softmax regression, two-class label shards, 100 workers in 10 groups) when Debian's
// dataset-fashion-mnist is installed, else on a synthetic 10-class problem, it runs local SGD with
// the local period I, H-SGD(I, G) with random groups and local SGD with the global period G until
// the held-out loss of the global average reaches the target, and prints the simulated time each
// took, split into compute, waiting and communication per level.
//
//   time_to_target && python3 examples/plot_time.py time_to_target.csv time_to_target.png

#include <cstdint>
#include <exception>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include <fmt/core.h>

#include <hsgd/hsgd.hpp>

#include "checkpointing.hpp"
#include "cli.hpp"
#include "fashion_data.hpp"
#include "problem.hpp"
#include "progress.hpp"

namespace {

struct Network {
  double local_latency = 1e-3, local_bandwidth = 1.25e8;    // 1 ms, 1 Gbit/s
  double global_latency = 0.05, global_bandwidth = 1.25e7;  // 50 ms, 100 Mbit/s
  double compute = 0.01, spread = 0.3;                      // 10 ms per step, sigma of log speed
  std::string pattern = "server";                           // server | ring
  double local_deadline = std::numeric_limits<double>::infinity();   // seconds after a unit last met
  double global_deadline = std::numeric_limits<double>::infinity();
};

struct Settings : example::RunFlags {
  std::string data_directory;
  Network network;
  double target = 0;
  hsgd::Index test_every = 10;
  hsgd::Index threads = 2;
  example::CheckpointFlags checkpoints;
};

const std::vector<std::string> scheme_names{"local-sgd-I", "hsgd-random", "local-sgd-G"};

/// A scheme's outcome: when it reached the target (or not), and where the time went.
struct Outcome {
  double reached;  // 1 if the target was reached
  hsgd::Index steps, dropped;
  double seconds, compute, wait, local_communication, global_communication, discarded;
  double test_loss, test_accuracy;
};

std::vector<double> numbers(const Outcome& o) {
  return {o.reached, static_cast<double>(o.steps), static_cast<double>(o.dropped), o.seconds, o.compute, o.wait, o.local_communication,
          o.global_communication, o.discarded, o.test_loss, o.test_accuracy};
}
Outcome outcome_from(const std::vector<double>& v) {
  if (v.size() != 11) throw std::invalid_argument("the checkpoint's results are not time_to_target's");
  constexpr hsgd::Index most = std::numeric_limits<hsgd::Index>::max() / 2;
  return {v[0], example::whole(v[1], 0, most), example::whole(v[2], 0, most), v[3], v[4], v[5], v[6], v[7], v[8], v[9],
          v[10]};
}

/// The edge-cloud cost model: level 1 over the local links, the top level over the global one.
hsgd::ClockOptions clock_options(const Network& n, hsgd::Index levels) {
  const auto pattern = n.pattern == "ring" ? hsgd::RoundPattern::ring_allreduce : hsgd::RoundPattern::parameter_server;
  hsgd::ClockOptions clock;
  clock.compute.per_step = n.compute;
  clock.speeds = hsgd::WorkerSpeeds::log_normal(n.spread);
  const hsgd::LevelCost local{{n.local_latency, n.local_bandwidth}, pattern};
  const hsgd::LevelCost global{{n.global_latency, n.global_bandwidth}, pattern};
  clock.levels = levels == 1 ? std::vector<hsgd::LevelCost>{global} : std::vector<hsgd::LevelCost>{local, global};
  clock.deadlines = levels == 1 ? std::vector<double>{n.global_deadline} : std::vector<double>{n.local_deadline, n.global_deadline};
  return clock;
}

/// Runs one scheme until the held-out loss reaches the target; false when a signal stopped it.
template <class Shards, class HeldOut, class Grouping>
bool run_scheme(const Settings& s, example::Study& study, hsgd::Index run, const std::string& scheme,
                const hsgd::Topology& topology, const Shards& shards, const HeldOut& held_out,
                const hsgd::Vector<double>& start, Grouping grouping) {
  hsgd::Engine engine(topology, shards, hsgd::UniformSampler(s.batch), s.options(1, s.threads), hsgd::Sgd{},
                      hsgd::ConstantRate{}, std::move(grouping),
                      hsgd::SimulatedClock(clock_options(s.network, topology.levels())));
  engine.set_model(start);
  if (study.csv() != nullptr) study.csv()->set_tags({scheme});
  example::RunRecorder recorder{study.csv(), {}};
  auto probe = hsgd::make_probe(engine, {.gradient_every = 0, .model_every = 0, .test_every = s.test_every}, recorder,
                                held_out);
  const auto reached = [&] { return probe.last().step % s.test_every == 0 && probe.last().test_loss <= s.target; };
  auto stop_at_target = hsgd::every(s.test_every, [&](const auto&) { return reached(); });
  example::ProgressBar progress(scheme, s.steps);
  if (!study.run(run, engine, std::tie(probe, recorder.memory), probe, stop_at_target, progress)) return false;

  const hsgd::ClockReading clock = engine.clock().reading();
  const auto& last = recorder.memory.rows.back();
  const Outcome outcome{reached() ? 1.0 : 0.0, engine.step_count(), clock.dropped, clock.seconds, clock.compute, clock.wait,
                        clock.communication.size() > 1 ? clock.communication.front() : 0.0, clock.communication.back(),
                        clock.discarded, last.test_loss, last.test_accuracy};
  study.finish(run, numbers(outcome), engine, std::tie(probe, recorder.memory));
  return true;
}

template <class Shards, class HeldOut>
bool run_schemes(const Settings& s, example::Study& study, const Shards& shards, const HeldOut& held_out,
                 const hsgd::Vector<double>& start, std::vector<Outcome>& outcomes) {
  const auto run = [&](std::size_t k, const hsgd::Topology& topology, auto grouping) {
    const auto index = static_cast<hsgd::Index>(k);
    if (!study.finished(index) && !run_scheme(s, study, index, scheme_names[k], topology, shards, held_out, start, grouping))
      return false;
    outcomes.push_back(outcome_from(study.result(index)));
    fmt::print("  {:<12} {} after {} steps, {:.1f} simulated seconds\n", scheme_names[k],
               outcomes.back().reached > 0 ? "reached the target" : "did not reach the target", outcomes.back().steps,
               outcomes.back().seconds);
    std::fflush(stdout);
    return true;
  };
  return run(0, hsgd::Topology::local_sgd(s.workers, s.local_period), hsgd::ContiguousGrouping{}) &&
         run(1, hsgd::Topology::two_level(s.workers, s.groups, s.local_period, s.global_period), hsgd::RandomGrouping{}) &&
         run(2, hsgd::Topology::local_sgd(s.workers, s.global_period), hsgd::ContiguousGrouping{});
}

/// The data: Fashion-MNIST if installed, else a synthetic 10-class mixture; label shards, two per
/// worker; softmax regression with the held-out set's bare cross-entropy as the loss.
bool run_study(const Settings& s, example::Study& study, std::vector<Outcome>& outcomes) {
  hsgd::Dataset<double> train, test;
  if (example::has_fashion_mnist(s.data_directory)) {
    fmt::print(stderr, "reading Fashion-MNIST...\n");
    auto data = example::read_fashion_mnist(s.data_directory);
    train = std::move(data.train);
    test = std::move(data.test);
  } else {
    hsgd::GaussianMixtureOptions mixture;
    mixture.classes = 10;
    mixture.dimension = 200;
    mixture.samples = s.workers * 120;
    mixture.separation = 3;
    mixture.seed = 1;
    std::tie(train, test) = hsgd::train_test_split(hsgd::make_gaussian_mixture<double>(mixture), 1.0 / 6, 1);
  }
  const hsgd::Partition partition = hsgd::partition_shards(train, {.workers = s.workers, .shards_per_worker = 2, .seed = 1});
  const auto shards = hsgd::make_softmax_shards(train, partition, 1e-4);
  const hsgd::Vector<double> start = hsgd::Vector<double>::Zero(shards.front().dimension());
  fmt::print("model: {} scalars ({:.1f} KB); a global round of {} workers: {:.3f} s, a local round of {}: {:.4f} s\n",
             start.size(), static_cast<double>(start.size()) * 8 / 1e3, s.workers,
             clock_options(s.network, 2).levels[1].round_seconds(s.workers, static_cast<double>(start.size()) * 8),
             s.workers / s.groups,
             clock_options(s.network, 2).levels[0].round_seconds(s.workers / s.groups, static_cast<double>(start.size()) * 8));
  return run_schemes(s, study, shards, hsgd::SoftmaxRegression<double>(std::move(test), 0.0), start, outcomes);
}

void print_table(const Settings& s, const std::vector<Outcome>& outcomes) {
  fmt::print("\n{:<12} {:>7} {:>6} {:>10} {:>9} {:>8} {:>10} {:>10} {:>9} {:>9} {:>9} {:>8}\n", "scheme", "reached",
             "steps", "simulated", "compute", "waiting", "local comm", "global comm", "discarded", "test loss", "accuracy",
             "left out");
  for (std::size_t k = 0; k < outcomes.size(); ++k) {
    const Outcome& o = outcomes[k];
    fmt::print("{:<12} {:>7} {:>6} {:>9.2f}s {:>8.2f}s {:>7.2f}s {:>9.2f}s {:>10.2f}s {:>8.2f}s {:>9.4f} {:>9.4f} {:>8}\n",
               scheme_names[k], o.reached > 0 ? "yes" : "no", o.steps, o.seconds, o.compute, o.wait,
               o.local_communication, o.global_communication, o.discarded, o.test_loss, o.test_accuracy, o.dropped);
  }
  fmt::print("(seconds on the simulated clock to a held-out loss of {}, along the critical path: the latest worker's "
             "compute, waiting for slower workers and rounds per level, less the time deadlines discarded)\n",
             s.target);
}

Settings read_settings(example::Flags& flags) {
  Settings s{};
  example::RunFlags defaults = example::fashion_run_defaults();
  defaults.csv = "time_to_target.csv";
  static_cast<example::RunFlags&>(s) = example::RunFlags::read(flags, defaults);
  s.data_directory = flags.text("data", example::fashion_mnist_directory,
                                "Fashion-MNIST's directory (a synthetic problem when the files are not there)");
  s.target = flags.real("target", 0.7, "target held-out loss (cross-entropy of the global average)");
  s.test_every = flags.integer("test-every", 10, "steps between held-out evaluations");
  s.threads = flags.integer("threads", 2, "threads per run (results do not depend on it)");
  Network& n = s.network;
  n.local_latency = flags.real("local-latency", n.local_latency, "seconds per message on a local link");
  n.local_bandwidth = flags.real("local-bandwidth", n.local_bandwidth, "bytes per second of a local link");
  n.global_latency = flags.real("global-latency", n.global_latency, "seconds per message on the global link");
  n.global_bandwidth = flags.real("global-bandwidth", n.global_bandwidth, "bytes per second of the global link");
  n.compute = flags.real("compute", n.compute, "seconds of compute per local step (median worker)");
  n.spread = flags.real("spread", n.spread, "sigma of the workers' log-normal speed factors");
  n.pattern = flags.text("pattern", n.pattern, "server (parameter server) or ring (ring all-reduce)");
  n.local_deadline = flags.real("local-deadline", n.local_deadline,
                                "seconds a local round waits after its group last met; later workers are left out");
  n.global_deadline = flags.real("global-deadline", n.global_deadline, "the same for the global round");
  s.checkpoints = example::CheckpointFlags::read(flags);
  if (n.pattern != "server" && n.pattern != "ring")
    throw std::invalid_argument(fmt::format("'--pattern' ({}) must be server or ring", n.pattern));
  if (s.test_every <= 0) throw std::invalid_argument(fmt::format("'--test-every' ({}) must be positive", s.test_every));
  return s;
}

}  // namespace

int main(int argc, char** argv) try {
  example::Flags flags(argc, argv,
                       "time_to_target: simulated seconds for local SGD with period I, H-SGD(I, G) and local SGD with "
                       "period G to reach a held-out loss, on an edge-cloud network with slow global links");
  const Settings s = read_settings(flags);
  if (flags.help_requested()) return 0;
  const Network& n = s.network;
  fmt::print("time_to_target: {}; n = {} in {} groups, I = {}, G = {}, gamma = {}, batch = {}, at most {} steps; "
             "local links {} s + bytes / {:.3g} B/s, global link {} s + bytes / {:.3g} B/s ({}), compute {} s per step "
             "x log-normal(sigma {}); target held-out loss {}\n",
             example::has_fashion_mnist(s.data_directory) ? "Fashion-MNIST" : "synthetic 10-class mixture (no Fashion-MNIST)",
             s.workers, s.groups, s.local_period, s.global_period, s.learning_rate, s.batch, s.steps, n.local_latency,
             n.local_bandwidth, n.global_latency, n.global_bandwidth,
             n.pattern == "ring" ? "ring all-reduce" : "parameter server", n.compute, n.spread, s.target);
  std::fflush(stdout);
  example::Study study(flags, s.checkpoints, s.csv, {"scheme"}, 2);
  std::vector<Outcome> outcomes;
  if (!run_study(s, study, outcomes)) return study.exit_code();
  print_table(s, outcomes);
  if (study.csv() != nullptr) fmt::print("wrote {}\n", s.csv);
  return 0;
} catch (const std::exception& error) {
  fmt::print(stderr, "time_to_target: {}\n", error.what());
  return 1;
}
