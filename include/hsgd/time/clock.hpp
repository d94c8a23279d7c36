#pragma once
/// @file
/// Simulated time: what a run would take on a network with given links and worker speeds,
/// computed alongside the run without changing a bit of it.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "hsgd/checkpoint/archive.hpp"
#include "hsgd/core/error.hpp"
#include "hsgd/core/random.hpp"
#include "hsgd/core/types.hpp"
#include "hsgd/topology/topology.hpp"

namespace hsgd {

/// A network link: a message of b bytes takes `latency + b / bandwidth` seconds.
struct Link {
  double latency = 0;                                           ///< seconds per message, >= 0
  double bandwidth = std::numeric_limits<double>::infinity();  ///< bytes per second, > 0 (infinity: free)

  void validate(Index level) const {
    detail::require(std::isfinite(latency) && latency >= 0, "level {}: 'latency' ({}) must be finite and non-negative",
                    level, latency);
    detail::require(bandwidth > 0, "level {}: 'bandwidth' ({}) must be positive (infinity: no transfer time)", level,
                    bandwidth);
  }
};

/// How a unit's round moves the models of its p participants (b bytes each) over its level's link.
enum class RoundPattern {
  /// Every participant uploads to the unit's server and downloads the average, all over the
  /// server's one shared link: `latency + 2 p b / bandwidth` (the brief's parameter server).
  parameter_server,
  /// A ring all-reduce among the participants (reduce-scatter, then all-gather, in chunks of
  /// b / p): `2 (p - 1) (latency + b / (p bandwidth))`, and 0 for p = 1.
  ring_allreduce,
};

/// The cost of one level's rounds.
struct LevelCost {
  Link link;
  RoundPattern pattern = RoundPattern::parameter_server;

  /// Seconds of one round of `participants` models of `bytes` bytes each.
  [[nodiscard]] double round_seconds(Index participants, double bytes) const {
    const auto p = static_cast<double>(participants);
    if (pattern == RoundPattern::ring_allreduce)
      return participants <= 1 ? 0.0 : 2 * (p - 1) * (link.latency + bytes / (p * link.bandwidth));
    return link.latency + 2 * p * bytes / link.bandwidth;
  }
};

/// A worker's compute time per local step, before its speed factor: `per_step + per_sample x B`,
/// B the sampler's batch size.
struct ComputeCost {
  double per_step = 0;    ///< seconds per local step, >= 0
  double per_sample = 0;  ///< seconds per sample of the minibatch, >= 0 (needs a sampler with batch_size())
};

/// The workers' speed factors s_j: worker j's step takes s_j times the nominal compute time (2 is
/// twice as slow).
struct WorkerSpeeds {
  enum class Kind { equal, log_normal, trace };
  Kind kind = Kind::equal;
  double spread = 0;            ///< sigma of log s_j (log_normal)
  std::vector<double> factors;  ///< s_j for every worker (trace)

  /// s_j = 1 for every worker.
  static WorkerSpeeds equal() { return {}; }
  /// s_j = exp(sigma z_j), z_j standard normal from worker j's clock stream (seed,
  /// StreamKind::clock, j): median 1, drawn once; the same for every thread and process count.
  static WorkerSpeeds log_normal(double sigma) { return {Kind::log_normal, sigma, {}}; }
  /// s_j = factors[j]: a device trace.
  static WorkerSpeeds trace(std::vector<double> factors) { return {Kind::trace, 0, std::move(factors)}; }

  /// The n factors of a run with seed `seed`.
  [[nodiscard]] std::vector<double> draw(Index workers, std::uint64_t seed) const {
    std::vector<double> s(static_cast<std::size_t>(workers), 1.0);
    if (kind == Kind::log_normal) {
      for (Index j = 0; j < workers; ++j) {
        Rng rng = make_stream(seed, StreamKind::clock, static_cast<std::uint64_t>(j));
        s[static_cast<std::size_t>(j)] = std::exp(spread * rng.normal());
      }
    } else if (kind == Kind::trace) {
      s = factors;
    }
    return s;
  }

  void validate(Index workers) const {
    detail::require(std::isfinite(spread) && spread >= 0, "'spread' ({}) must be finite and non-negative", spread);
    if (kind != Kind::trace) return;
    detail::require(static_cast<Index>(factors.size()) == workers,
                    "'factors' holds {} speed factors but the run has {} workers", factors.size(), workers);
    for (std::size_t j = 0; j < factors.size(); ++j)
      detail::require(std::isfinite(factors[j]) && factors[j] > 0, "'factors'[{}] ({}) must be finite and positive", j,
                      factors[j]);
  }

  [[nodiscard]] std::string describe() const {
    switch (kind) {
      case Kind::equal: return "equal";
      case Kind::log_normal: return fmt::format("log-normal, sigma {}", spread);
      case Kind::trace: return "trace " + detail::setting_text(factors);
    }
    return "";
  }
};

/// What a SimulatedClock charges, with its defaults: free links and free compute (so a clock
/// with no options reads 0 throughout).
struct ClockOptions {
  ComputeCost compute;
  WorkerSpeeds speeds;
  /// The cost of each level's rounds, level 1 first; empty: free communication. A run with more
  /// levels than costs given is refused.
  std::vector<LevelCost> levels;
  /// Per level, level 1 first, the seconds a unit's round waits after the unit last met: a member
  /// not ready by then is left out of the round's average (and receives it). Empty, or infinity
  /// for a level: no deadline, nothing dropped. Not with partial participation.
  std::vector<double> deadlines;

  void validate() const {
    detail::require(std::isfinite(compute.per_step) && compute.per_step >= 0,
                    "'per_step' ({}) must be finite and non-negative", compute.per_step);
    detail::require(std::isfinite(compute.per_sample) && compute.per_sample >= 0,
                    "'per_sample' ({}) must be finite and non-negative", compute.per_sample);
    for (std::size_t l = 0; l < levels.size(); ++l) levels[l].link.validate(static_cast<Index>(l + 1));
    for (std::size_t l = 0; l < deadlines.size(); ++l)
      detail::require(deadlines[l] > 0, "'deadlines'[{}] ({}) must be positive (infinity: no deadline at level {})", l,
                      deadlines[l], l + 1);
  }
};

/// The simulated time at a step, split along the critical path: the worker whose clock is latest
/// (among equals, the one that waited least, then lost least to deadlines, then the lowest index)
/// spent `compute` seconds on local steps, `wait` seconds waiting for the slowest member of its
/// rounds (or sitting a round out), and `communication[l - 1]` in level-l rounds, of which
/// `discarded` seconds were work that a deadline threw away (the worker was left out of a round and
/// interrupted at its start): seconds = compute + wait + sum communication - discarded (to
/// rounding). Without deadlines `discarded` is 0.
struct ClockReading {
  double seconds = 0;
  double compute = 0;
  double wait = 0;
  std::vector<double> communication;
  double discarded = 0;
  Index dropped = 0;  ///< members left out of rounds by a deadline so far, all levels
};

/// Synchronous H-SGD on a simulated clock, an Engine plug-in (`Engine engine(topology, shards,
/// sampler, options, hsgd::SimulatedClock({...}))`). Every worker j has a clock T_j, from 0:
///
/// - a local step adds worker j's compute time c_j = (per_step + per_sample B) s_j (a worker that
///   sits a round out under partial participation does not step, and its clock stands still);
/// - a level-l round of a unit U starts when its last participant is ready,
///   start = max_{j in P(U)} T_j, takes the level's round time t_l(|P(U)|, d x sizeof(Scalar)),
///   and every member leaves at start + t_l;
/// - units that do not meet run on their own clocks until a higher level joins them. A step's
///   level is the highest due, so a global round replaces the local one;
/// - with a deadline D_l, a level-l round of U closes at O_U + D_l, O_U the time U's members last
///   left a round of level l or higher together: the members ready by then take part (the
///   round starts at the latest of them), the others are left out of its average and interrupted
///   at the round's start (the time they had run past it is discarded with their models, see
///   ClockReading) and receive the average with everyone. If nobody is ready by the deadline,
///   the first ready member is awaited. Without deadlines nothing is dropped.
///
/// With constant compute c, equal speeds and every round of level l taking t_l, T steps of an
/// L-level schedule with periods P_1 | ... | P_L take exactly
///
///   T c + sum_l (floor(T / P_l) - floor(T / P_{l+1})) t_l      (floor(T / P_{L+1}) = 0),
///
/// two levels: T c + (T/I - T/G) t_1 + (T/G) t_2. The clock only reads the run: a run with a
/// clock (without deadlines, or with deadlines nobody misses) has the same bits as one without. Its
/// state (every worker's clock, its split and when it last met each level) is n x (2 L + 4)
/// doubles, updated in O(n) per step with no allocation, kept identically on every rank under the
/// MPI backend, and saved in checkpoints.
class SimulatedClock {
 public:
  static constexpr bool simulates = true;

  explicit SimulatedClock(ClockOptions options = {}) : options_((options.validate(), std::move(options))) {}

  // ---- the Engine's hooks ----

  /// Sizes the clock for a run: its topology, model size in bytes, the sampler's batch size (0
  /// when the sampler has none) and the seed the speeds are drawn from.
  void attach(const Topology& topology, double model_bytes, Index batch, std::uint64_t seed) {
    const Index n = topology.workers();
    levels_ = topology.levels();
    detail::require(options_.levels.empty() || static_cast<Index>(options_.levels.size()) == levels_,
                    "the clock has round costs for {} levels but the topology has {}: give one LevelCost per level",
                    options_.levels.size(), levels_);
    detail::require(options_.compute.per_sample == 0 || batch > 0,
                    "'per_sample' ({}) needs the sampler's batch size, and this sampler has no batch_size()",
                    options_.compute.per_sample);
    options_.speeds.validate(n);
    model_bytes_ = model_bytes;
    const std::vector<double> speeds = options_.speeds.draw(n, seed);
    const double nominal = options_.compute.per_step + options_.compute.per_sample * static_cast<double>(batch);
    step_seconds_.resize(static_cast<std::size_t>(n));
    for (std::size_t j = 0; j < speeds.size(); ++j) step_seconds_[j] = nominal * speeds[j];
    speeds_ = speeds;
    detail::require(options_.deadlines.empty() || static_cast<Index>(options_.deadlines.size()) == levels_,
                    "the clock has deadlines for {} levels but the topology has {}: give one per level (infinity: "
                    "none)",
                    options_.deadlines.size(), levels_);
    clock_.assign(static_cast<std::size_t>(n), 0.0);
    compute_.assign(static_cast<std::size_t>(n), 0.0);
    wait_.assign(static_cast<std::size_t>(n), 0.0);
    communication_.assign(static_cast<std::size_t>(n * levels_), 0.0);
    last_met_.assign(static_cast<std::size_t>(n * levels_), 0.0);
    discarded_.assign(static_cast<std::size_t>(n), 0.0);
    dropped_ = 0;
  }

  /// Whether level `level`'s rounds have a deadline.
  [[nodiscard]] bool has_deadline(Index level) const {
    return !options_.deadlines.empty() && std::isfinite(options_.deadlines[static_cast<std::size_t>(level - 1)]);
  }
  /// Whether any level has one.
  [[nodiscard]] bool has_deadlines() const {
    return std::any_of(options_.deadlines.begin(), options_.deadlines.end(), [](double d) { return std::isfinite(d); });
  }

  /// Before a level-`level` round with a deadline: sets `ready[j]` for the members of `candidates`
  /// (a unit's members) that take part, clears it for those the deadline leaves out.
  void mark_ready(Index level, std::span<const Index> candidates, std::span<char> ready) const {
    const auto l = static_cast<std::size_t>(level - 1);
    double opened = 0;
    double first = std::numeric_limits<double>::infinity();
    for (const Index j : candidates) {
      opened = std::max(opened, last_met_[static_cast<std::size_t>(j) * static_cast<std::size_t>(levels_) + l]);
      first = std::min(first, clock_[static_cast<std::size_t>(j)]);
    }
    const double close = std::max(opened + options_.deadlines[l], first);  // at least the first ready one
    for (const Index j : candidates) ready[static_cast<std::size_t>(j)] = clock_[static_cast<std::size_t>(j)] <= close ? 1 : 0;
  }

  /// After the local steps: `active[j]` says whether worker j stepped.
  void after_local_steps(std::span<const char> active) {
    for (std::size_t j = 0; j < clock_.size(); ++j) {
      if (active[j] == 0) continue;
      clock_[j] += step_seconds_[j];
      compute_[j] += step_seconds_[j];
    }
  }

  /// After a level-`level` round of `servers` (each with participants() and members()).
  template <class Servers>
  void after_round(Index level, const Servers& servers) {
    const auto l = static_cast<std::size_t>(level - 1);
    for (const auto& server : servers) {
      double start = 0;
      for (const Index j : server.participants()) start = std::max(start, clock_[static_cast<std::size_t>(j)]);
      const double round = options_.levels.empty()
                               ? 0.0
                               : options_.levels[l].round_seconds(static_cast<Index>(server.participants().size()),
                                                                  model_bytes_);
      const bool deadline = has_deadline(level);
      if (deadline) dropped_ += static_cast<Index>(server.members().size() - server.participants().size());
      for (const Index j : server.members()) {
        const auto k = static_cast<std::size_t>(j);
        // Left out: interrupted at the round's start. Its work since then (steps, and lower-level
        // rounds a slow group was still holding) is discarded with its model.
        if (deadline && clock_[k] > start) {
          discarded_[k] += clock_[k] - start;
          clock_[k] = start;
        }
        wait_[k] += std::max(0.0, start - clock_[k]);
        communication_[k * static_cast<std::size_t>(levels_) + l] += round;
        clock_[k] = std::max(clock_[k], start) + round;
        for (std::size_t below = 0; below <= l; ++below) last_met_[k * static_cast<std::size_t>(levels_) + below] = clock_[k];
      }
    }
  }

  // ---- readings ----

  /// The simulated time so far: the latest worker clock. With deadlines it can go back at a round
  /// that leaves the latest workers out: the time they had run past its start is discarded.
  [[nodiscard]] double seconds() const {
    return clock_.empty() ? 0.0 : *std::max_element(clock_.begin(), clock_.end());
  }
  /// Worker j's clock.
  [[nodiscard]] double worker_seconds(Index worker) const { return clock_.at(static_cast<std::size_t>(worker)); }
  /// The speed factors s_j drawn at attach.
  [[nodiscard]] std::span<const double> speeds() const { return speeds_; }
  /// The time so far and its split along the critical path (see ClockReading).
  [[nodiscard]] ClockReading reading() const {
    ClockReading r;
    read_into(r);
    return r;
  }
  /// The same into `out`, reusing its storage (allocation-free once sized).
  void read_into(ClockReading& out) const {
    out.communication.resize(static_cast<std::size_t>(levels_));
    if (clock_.empty()) return;
    // The latest clock; among equals, the one that waited least (it held the others up), then the
    // one that lost least to deadlines.
    std::size_t latest = 0;
    const auto before = [&](std::size_t a, std::size_t b) {
      if (clock_[a] != clock_[b]) return clock_[a] > clock_[b];
      if (wait_[a] != wait_[b]) return wait_[a] < wait_[b];
      return discarded_[a] < discarded_[b];
    };
    for (std::size_t j = 1; j < clock_.size(); ++j)
      if (before(j, latest)) latest = j;
    out.seconds = clock_[latest];
    out.compute = compute_[latest];
    out.wait = wait_[latest];
    for (std::size_t l = 0; l < out.communication.size(); ++l)
      out.communication[l] = communication_[latest * static_cast<std::size_t>(levels_) + l];
    out.discarded = discarded_[latest];
    out.dropped = dropped_;
  }
  /// Members left out of rounds by a deadline so far.
  [[nodiscard]] Index dropped() const { return dropped_; }
  [[nodiscard]] const ClockOptions& options() const { return options_; }

  // ---- checkpoints (inside the Engine's section) ----

  /// The cost model, compared on resume.
  [[nodiscard]] std::string describe() const {
    std::string levels;
    for (std::size_t l = 0; l < options_.levels.size(); ++l) {
      const LevelCost& cost = options_.levels[l];
      levels += fmt::format("{}level {}: latency {}, bandwidth {}, {}", l > 0 ? "; " : "", l + 1, cost.link.latency,
                            cost.link.bandwidth,
                            cost.pattern == RoundPattern::ring_allreduce ? "ring all-reduce" : "parameter server");
    }
    return fmt::format("compute {} s per step + {} s per sample; speeds {}; {}; deadlines {}", options_.compute.per_step,
                       options_.compute.per_sample, options_.speeds.describe(),
                       levels.empty() ? "free communication" : levels,
                       options_.deadlines.empty() ? std::string("none") : detail::setting_text(options_.deadlines));
  }

  /// Its part of a checkpoint: every worker's clock and split, the meeting times and the dropped
  /// count (the cost model is compared through describe(), among the Engine's settings).
  template <class Archive>
  void checkpoint(Archive& archive) {
    const auto times = [&](std::vector<double>& values, const char* what) {
      const auto& loaded = archive.reals(what, values, static_cast<Index>(values.size()));
      archive.check(loaded.size() == values.size(), "the clock has {} {} where this run has {}", loaded.size(), what,
                    values.size());
      for (const double value : loaded)
        archive.check(value >= 0 && std::isfinite(value), "the clock holds {} among its {}", value, what);
    };
    times(clock_, "worker clocks");
    times(compute_, "compute times");
    times(wait_, "wait times");
    times(communication_, "communication times");
    times(last_met_, "meeting times");
    times(discarded_, "discarded times");
    archive.index("the dropped count", dropped_, 0, Index{1} << 62);
  }

 private:
  ClockOptions options_;
  Index levels_ = 0;
  double model_bytes_ = 0;
  std::vector<double> speeds_;
  std::vector<double> step_seconds_;   // c_j
  std::vector<double> clock_;          // T_j
  std::vector<double> compute_;        // T_j's parts: local steps,
  std::vector<double> wait_;           // waiting for a round's slowest participant,
  std::vector<double> communication_;  // and rounds, worker j's level l at [j L + l - 1]
  std::vector<double> last_met_;       // [j L + l - 1]: when j last left a round of level >= l
  std::vector<double> discarded_;      // time past a round's start that a deadline threw away
  Index dropped_ = 0;
};

/// The Engine's clock when it is given none: nothing simulated, nothing stored.
struct NoClock {
  static constexpr bool simulates = false;
  void attach(const Topology&, double, Index, std::uint64_t) {}
  void after_local_steps(std::span<const char>) {}
  template <class Servers>
  void after_round(Index, const Servers&) {}
  [[nodiscard]] std::string describe() const { return "none"; }
  [[nodiscard]] bool has_deadline(Index) const { return false; }
  [[nodiscard]] bool has_deadlines() const { return false; }
  void mark_ready(Index, std::span<const Index>, std::span<char>) const {}
};

namespace clock_requirements {

template <class C>
concept has_simulates = requires {
  { C::simulates } -> std::convertible_to<bool>;
};
template <class C>
concept has_hooks = requires(C& clock, const Topology& topology, std::span<const char> stepping) {
  clock.attach(topology, 1.0, Index{1}, std::uint64_t{1});
  clock.after_local_steps(stepping);
};
template <class C>
concept has_deadlines = requires(const C& clock, std::span<const Index> members, std::span<char> ready) {
  { clock.has_deadline(Index{1}) } -> std::convertible_to<bool>;
  { clock.has_deadlines() } -> std::convertible_to<bool>;
  clock.mark_ready(Index{1}, members, ready);
};
template <class C>
concept has_description = requires(const C& clock) {
  { clock.describe() } -> std::convertible_to<std::string>;
};
template <class C>
concept has_readings = !C::simulates || requires(const C& clock) {
  { clock.seconds() } -> std::convertible_to<double>;
  { clock.dropped() } -> std::convertible_to<Index>;
};

}  // namespace clock_requirements

/// What the Engine and the Round call on a clock plug-in (SimulatedClock, NoClock, or your own):
///
/// - `static constexpr bool simulates`;
/// - `void attach(const Topology&, double model_bytes, Index batch_size, std::uint64_t seed)`;
/// - `void after_local_steps(std::span<const char> stepping)` and the template
///   `after_round(Index level, servers)` (the level's servers, with participants() and members());
/// - the question the Round asks: `bool has_deadline(Index level) const`, `bool has_deadlines()
///   const`, `void mark_ready(Index level, std::span<const Index> members, std::span<char> ready)
///   const`;
/// - `std::string describe() const`, the cost model a checkpoint compares;
/// - for a clock that `simulates`: `double seconds() const` and `Index dropped() const`;
/// - and its checkpoint state like any plug-in (see CheckpointablePlugin).
template <class C>
concept Clock = clock_requirements::has_simulates<C> && clock_requirements::has_hooks<C> &&
                clock_requirements::has_deadlines<C> && clock_requirements::has_description<C> &&
                clock_requirements::has_readings<C>;

/// Compile-time check with readable messages.
template <class C>
consteval bool check_clock() {
  using namespace clock_requirements;
  static_assert(has_simulates<C>, "hsgd Clock: missing `static constexpr bool simulates`");
  static_assert(has_hooks<C>, "hsgd Clock: missing `void attach(const hsgd::Topology&, double model_bytes, hsgd::Index "
                              "batch_size, std::uint64_t seed)` or `void after_local_steps(std::span<const char>)`");
  static_assert(has_deadlines<C>, "hsgd Clock: missing `bool has_deadline(hsgd::Index level) const`, `bool "
                                  "has_deadlines() const` or `void mark_ready(hsgd::Index level, std::span<const "
                                  "hsgd::Index> members, std::span<char> ready) const`");
  static_assert(has_description<C>, "hsgd Clock: missing `std::string describe() const`");
  static_assert(has_readings<C>, "hsgd Clock: a clock that simulates needs `double seconds() const` and "
                                 "`hsgd::Index dropped() const`");
  return Clock<C>;
}

}  // namespace hsgd
