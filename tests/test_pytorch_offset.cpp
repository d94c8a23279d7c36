// PyTorch's HierarchicalModelAverager counts its steps from 0, so it averages after local steps
// 1, P + 1, 2P + 1, ... where hsgd (1-indexed, as the paper) averages after P, 2P, ... These tests
// show the one-step offset and that the README's recipe reproduces PyTorch's schedule exactly:
// hsgd::Options::warmup_steps = 1 with the default WarmupMode (average_every_step), and, for a
// PyTorch warm-up of W > 0 steps, the mapping of pytorch_warmup_in_hsgd() below.
//
// The reference is a small model of PyTorch's rule written from its documentation, independent of
// hsgd::Schedule: a counter s starts at 0 and is incremented after every average_parameters()
// call (one call after each optimizer step); a call with s >= warmup averages in the group of the
// largest period dividing s, or nowhere. During the warm-up (s < warmup) the averager does
// nothing, but PyTorch's documented set-up (the post-local-SGD communication hook with
// start_localSGD_iter = warmup) all-reduces the gradients of every step over all processes, which
// for SGD from equal models is the same as averaging the models at the top level after each step.

#include <optional>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "support.hpp"

using test::Index;

namespace {

/// PyTorch's averager (with the post-local-SGD hook during the warm-up), level by level: level l
/// is the l-th period of period_group_size_dict (1 = the smallest), 0 means no averaging.
class PyTorchAverager {
 public:
  PyTorchAverager(std::vector<Index> periods, Index warmup_steps)
      : periods_(std::move(periods)), warmup_steps_(warmup_steps) {}

  /// What happens after the next local step (one optimizer.step(), then average_parameters()).
  Index average_parameters() {
    const auto top = static_cast<Index>(periods_.size());
    Index level = 0;
    if (step_ < warmup_steps_) {
      level = top;  // DDP's hook all-reduces the gradients globally: synchronous SGD
    } else {
      for (Index l = top; l >= 1; --l) {
        if (step_ % periods_[static_cast<std::size_t>(l - 1)] == 0) {
          level = l;
          break;
        }
      }
    }
    ++step_;
    return level;
  }

 private:
  std::vector<Index> periods_;
  Index warmup_steps_;
  Index step_ = 0;
};

/// The levels PyTorch averages at after local steps 1..count (index t - 1).
std::vector<Index> pytorch_levels(const std::vector<Index>& periods, Index warmup_steps, Index count) {
  PyTorchAverager averager(periods, warmup_steps);
  std::vector<Index> levels;
  for (Index t = 1; t <= count; ++t) levels.push_back(averager.average_parameters());
  return levels;
}

/// The levels an hsgd::Schedule aggregates at after local steps 1..count.
std::vector<Index> hsgd_levels(const hsgd::Topology& topology, Index warmup_steps, Index count) {
  const hsgd::Schedule schedule(topology, warmup_steps);  // default mode: average_every_step
  std::vector<Index> levels;
  for (Index t = 1; t <= count; ++t) levels.push_back(schedule.level_after(t));
  return levels;
}

/// The README's mapping: hsgd's warmup_steps that reproduces a PyTorch warm-up of W steps (with the
/// post-local-SGD hook), when one does. PyTorch's periods keep counting from its step 0 through
/// the warm-up while hsgd's restart at its end, so the phases agree only if the warm-up ends on a
/// PyTorch step where the top level is due (W a multiple of the top period: hsgd warms up one more
/// step, the one where PyTorch's top level averages; W = 0 is this case, hence warmup_steps = 1),
/// or one step after it (W = 1 mod the top period: the same warm-up).
std::optional<Index> pytorch_warmup_in_hsgd(Index pytorch_warmup, Index top_period) {
  if (pytorch_warmup % top_period == 0) return pytorch_warmup + 1;
  if (pytorch_warmup % top_period == 1) return pytorch_warmup;
  return std::nullopt;
}

/// (step, level) of every aggregation, from a list of levels per step.
std::vector<std::pair<Index, Index>> aggregations(const std::vector<Index>& levels) {
  std::vector<std::pair<Index, Index>> events;
  for (std::size_t k = 0; k < levels.size(); ++k) {
    if (levels[k] > 0) events.emplace_back(static_cast<Index>(k) + 1, levels[k]);
  }
  return events;
}

/// Records (step, level) of every aggregation an Engine run reports.
struct AggregationLog {
  std::vector<std::pair<Index, Index>> events;
  template <class Run>
  void after_aggregation(const Run& run, Index level) {
    events.emplace_back(run.step_count(), level);
  }
};

struct Case {
  Index local_period;
  Index global_period;
  Index pytorch_warmup;
};

// Two levels {I, G} with I < G (with I = G, Topology::two_level is local SGD, one level); the
// PyTorch warm-ups cover residues 0, 1 and others modulo G.
const std::vector<Case> cases{{1, 2, 0},  {1, 4, 0},   {2, 6, 0},   {4, 8, 0},  {4, 32, 0},
                              {3, 12, 0}, {4, 16, 5},  {4, 16, 16}, {4, 16, 17}, {2, 6, 9},
                              {1, 2, 10}, {1, 2, 11},  {4, 12, 14}, {2, 8, 3},  {1, 3, 2},
                              {6, 18, 36}, {6, 18, 19}, {2, 4, 1}};

constexpr Index horizon = 300;  // steps compared

}  // namespace

TEST_CASE("PyTorch offset: the reference model averages after steps 1, P + 1, 2P + 1, ...", "[pytorch][schedule]") {
  // The reference itself, by hand: I = 2, G = 6, no warm-up. PyTorch's step 0 is divisible by
  // every period, so the first call (after local step 1) averages globally.
  const std::vector<std::pair<Index, Index>> expected{{1, 2},  {3, 1},  {5, 1},  {7, 2},
                                                      {9, 1},  {11, 1}, {13, 2}, {15, 1}};
  CHECK(aggregations(pytorch_levels({2, 6}, 0, 15)) == expected);
  // With a warm-up of 3 steps: top level after steps 1..3, then s = 3 (step 4) is no multiple of 2.
  const std::vector<std::pair<Index, Index>> warm{{1, 2}, {2, 2}, {3, 2}, {5, 1}, {7, 2}, {9, 1}};
  CHECK(aggregations(pytorch_levels({2, 6}, 3, 9)) == warm);
}

TEST_CASE("PyTorch offset: hsgd without warm-up aggregates after P, 2P, ..., one step after PyTorch",
          "[pytorch][schedule]") {
  const auto topology = hsgd::Topology::two_level(8, 2, 2, 6);
  const std::vector<std::pair<Index, Index>> expected{{2, 1}, {4, 1}, {6, 2}, {8, 1}, {10, 1}, {12, 2}};
  CHECK(aggregations(hsgd_levels(topology, 0, 12)) == expected);

  for (const Case& c : cases) {
    if (c.pytorch_warmup != 0 || c.global_period == 1) continue;
    INFO("I = " << c.local_period << ", G = " << c.global_period);
    const auto ours = hsgd_levels(hsgd::Topology::two_level(8, 2, c.local_period, c.global_period), 0, horizon);
    const auto theirs = pytorch_levels({c.local_period, c.global_period}, 0, horizon + 1);
    // Not the same schedule: PyTorch averages globally after step 1, hsgd does not.
    CHECK(theirs[0] == 2);
    CHECK(ours[0] == (c.local_period == 1 ? 1 : 0));
    CHECK(ours != std::vector<Index>(theirs.begin(), theirs.begin() + horizon));
    // The same schedule shifted by one step: hsgd's step t is PyTorch's step t + 1.
    CHECK(ours == std::vector<Index>(theirs.begin() + 1, theirs.end()));
  }
}

TEST_CASE("PyTorch offset: warmup_steps = 1 reproduces PyTorch's schedule without warm-up, level by level",
          "[pytorch][schedule]") {
  for (const Case& c : cases) {
    if (c.pytorch_warmup != 0) continue;
    INFO("I = " << c.local_period << ", G = " << c.global_period);
    const auto topology = hsgd::Topology::two_level(8, 2, c.local_period, c.global_period);
    const auto ours = hsgd_levels(topology, 1, horizon);
    REQUIRE(ours == pytorch_levels({c.local_period, c.global_period}, 0, horizon));
    // In words: global after 1, G + 1, 2G + 1, ...; local after the other kI + 1; nothing else.
    for (Index t = 1; t <= horizon; ++t) {
      const Index expected = (t - 1) % c.global_period == 0 ? 2 : ((t - 1) % c.local_period == 0 ? 1 : 0);
      REQUIRE(ours[static_cast<std::size_t>(t - 1)] == expected);
    }
  }
}

TEST_CASE("PyTorch offset: PyTorch's warm-up maps to hsgd's when it ends in phase, and only then",
          "[pytorch][schedule][warmup]") {
  for (const Case& c : cases) {
    INFO("I = " << c.local_period << ", G = " << c.global_period << ", PyTorch warmup_steps = " << c.pytorch_warmup);
    const auto topology = hsgd::Topology::two_level(8, 2, c.local_period, c.global_period);
    const auto theirs = pytorch_levels({c.local_period, c.global_period}, c.pytorch_warmup, horizon);
    // Every hsgd warm-up that could matter (later ones average globally where PyTorch no longer
    // does): exactly the mapped one reproduces PyTorch, or none when the mapping has none.
    std::vector<Index> matching;
    for (Index w = 0; w <= c.pytorch_warmup + 2 * c.global_period; ++w) {
      if (hsgd_levels(topology, w, horizon) == theirs) matching.push_back(w);
    }
    const auto mapped = pytorch_warmup_in_hsgd(c.pytorch_warmup, c.global_period);
    if (mapped) {
      CHECK(matching == std::vector<Index>{*mapped});
    } else {
      CHECK(matching.empty());
    }
  }
  // The mapping by hand, G = 16.
  CHECK(pytorch_warmup_in_hsgd(0, 16) == 1);
  CHECK(pytorch_warmup_in_hsgd(16, 16) == 17);
  CHECK(pytorch_warmup_in_hsgd(17, 16) == 17);
  CHECK_FALSE(pytorch_warmup_in_hsgd(5, 16).has_value());
}

TEST_CASE("PyTorch offset: an Engine with warmup_steps = 1 aggregates when PyTorch averages",
          "[pytorch][engine]") {
  // The Engine's own schedule, seen by an observer, on PyTorch's topology: 8 processes, groups of
  // 4 every I steps and all 8 every G steps (period_group_size_dict {I: 4, G: 8}).
  for (const Case& c : cases) {
    const auto mapped = pytorch_warmup_in_hsgd(c.pytorch_warmup, c.global_period);
    if (!mapped) continue;  // no hsgd warm-up reproduces it (previous test)
    const Index hsgd_warmup = *mapped;
    INFO("I = " << c.local_period << ", G = " << c.global_period << ", hsgd warmup_steps = " << hsgd_warmup);
    hsgd::Options options;
    options.steps = 200;
    options.warmup_steps = hsgd_warmup;
    options.threads = 1;
    hsgd::Engine engine(hsgd::Topology::from_period_group_sizes(8, {{c.local_period, 4}, {c.global_period, 8}}),
                        test::still_shards(8, 2), hsgd::UniformSampler(1), options);
    AggregationLog log;
    engine.run(log);
    REQUIRE(engine.step_count() == 200);
    const auto expected = aggregations(pytorch_levels({c.local_period, c.global_period}, c.pytorch_warmup, 200));
    CHECK(log.events == expected);
    // Groups are PyTorch's contiguous blocks of ranks.
    const std::vector<std::vector<Index>> blocks{{0, 1, 2, 3}, {4, 5, 6, 7}};
    CHECK(engine.units(1) == blocks);
  }
}
