// Partial participation: each round a level-1 server draws some of its workers from its own
// stream; only they step, and the round's average is theirs.

#include <cmath>
#include <map>
#include <set>

#include <catch2/catch.hpp>

#include "support.hpp"

using namespace test;
using Catch::Matchers::Contains;

namespace {

constexpr Index d = 3;

/// Deterministic heterogeneous quadratics F_j(x) = (1/2) sum_i a_ji (x_i - b_ji)^2 (one sample),
/// so a worker's local round can be replayed exactly outside the engine.
std::vector<hsgd::Quadratic<double>> deterministic_quadratics(Index workers) {
  std::vector<hsgd::Quadratic<double>> shards;
  hsgd::Rng rng = hsgd::make_stream(3, hsgd::StreamKind::user, 0);
  for (Index j = 0; j < workers; ++j) {
    Vec curvature(d);
    Vec centre(d);
    for (Index i = 0; i < d; ++i) {
      curvature(i) = 0.5 + rng.uniform();
      centre(i) = 4.0 * rng.normal();
    }
    shards.emplace_back(curvature, centre);
  }
  return shards;
}

/// x after `steps` gradient steps of F from x.
Vec replay(const hsgd::Quadratic<double>& shard, Vec x, Index steps, double learning_rate) {
  Vec g(d);
  for (Index t = 0; t < steps; ++t) {
    shard.gradient(x, g);
    x -= learning_rate * g;
  }
  return x;
}

hsgd::Options partial(double participation, std::uint64_t seed = 4, Index threads = 1) {
  hsgd::Options result = options(seed, 0, 0.1);
  result.participation = participation;
  result.threads = threads;
  return result;
}

}  // namespace

TEST_CASE("Participation: each group draws max(1, floor(p n_i)) of its workers", "[participation]") {
  const auto topology = hsgd::Topology::two_level(std::vector<Index>{3, 5, 8}, 2, 4);
  for (const auto& [fraction, expected] : std::vector<std::pair<double, std::vector<Index>>>{
           {1.0, {3, 5, 8}}, {0.5, {1, 2, 4}}, {0.75, {2, 3, 6}}, {0.1, {1, 1, 1}}}) {
    hsgd::Engine engine(topology, deterministic_quadratics(16), hsgd::FullBatchSampler(), partial(fraction));
    for (Index round = 0; round < 5; ++round) {
      for (Index unit = 0; unit < 3; ++unit) {
        const auto& server = engine.server(1, unit);
        CHECK(static_cast<Index>(server.participants().size()) == expected[static_cast<std::size_t>(unit)]);
        for (const Index j : server.participants()) {
          CHECK(engine.unit_of(j, 1) == unit);
          CHECK(engine.participates(j));
        }
      }
      engine.step();
      engine.step();
    }
  }
}

TEST_CASE("Participation: only participants step, and the group takes their average", "[participation]") {
  // Groups {0..3} and {4..9}, I = 3, half the workers each round. Before each round every member
  // holds its group's model (all start at 0); replaying the participants' I steps outside the
  // engine and averaging them must give what the engine sends to every member.
  const double learning_rate = 0.1;
  const auto shards = deterministic_quadratics(10);
  hsgd::Engine engine(hsgd::Topology::two_level(std::vector<Index>{4, 6}, 3, 12), shards, hsgd::FullBatchSampler(),
                      partial(0.5));
  for (Index round = 0; round < 3; ++round) {  // three local rounds, no global one yet
    const Mat before = engine.models();
    std::vector<std::vector<Index>> participants;
    for (Index unit = 0; unit < 2; ++unit) {
      const auto view = engine.server(1, unit).participants();
      participants.emplace_back(view.begin(), view.end());
    }
    engine.step();
    for (Index j = 0; j < 10; ++j) {  // mid-round: sitting out leaves a model untouched
      if (engine.participates(j)) CHECK(engine.model(j) != before.col(j));
      else CHECK(engine.model(j) == before.col(j));
    }
    engine.step();
    engine.step();
    for (Index unit = 0; unit < 2; ++unit) {
      Vec expected = Vec::Zero(d);
      for (const Index j : participants[static_cast<std::size_t>(unit)])
        expected += replay(shards[static_cast<std::size_t>(j)], before.col(j), 3, learning_rate);
      expected /= double(participants[static_cast<std::size_t>(unit)].size());
      for (const Index j : engine.server(1, unit).members()) CHECK(relative_difference(engine.model(j), expected) < 1e-14);
    }
  }
}

TEST_CASE("Participation: a global round averages the groups' participant averages with weights n_i / n",
          "[participation]") {
  const double learning_rate = 0.1;
  const auto shards = deterministic_quadratics(10);
  const std::vector<Index> sizes{4, 6};
  hsgd::Engine engine(hsgd::Topology::two_level(sizes, 2, 2 * 3), shards, hsgd::FullBatchSampler(), partial(0.5));
  engine.step();
  engine.step();
  engine.step();
  engine.step();  // two local rounds; the third closes at the global level
  const Mat before = engine.models();
  Vec expected = Vec::Zero(d);
  for (Index unit = 0; unit < 2; ++unit) {
    Vec group = Vec::Zero(d);
    const auto participants = engine.server(1, unit).participants();
    for (const Index j : participants) group += replay(shards[static_cast<std::size_t>(j)], before.col(j), 2, learning_rate);
    group /= double(participants.size());
    expected += (double(sizes[static_cast<std::size_t>(unit)]) / 10.0) * group;
  }
  CHECK(engine.step() == 0);
  CHECK(engine.step() == 2);
  for (Index j = 0; j < 10; ++j) CHECK(relative_difference(engine.model(j), expected) < 1e-14);
}

TEST_CASE("Participation: every member is drawn equally often", "[participation]") {
  // One group of 8, 3 drawn per round, 4000 rounds: each member's count is Binomial(4000, 3/8),
  // standard deviation sqrt(4000 * 3/8 * 5/8) ~ 30.6; a 5-sigma margin (153) fails by chance with
  // probability below 1e-5 across the 8 members.
  hsgd::Engine engine(hsgd::Topology::local_sgd(8, 1), still_shards(8, 1),
                      hsgd::FullBatchSampler(), partial(3.0 / 8.0 + 1e-9));
  std::vector<Index> counts(8, 0);
  const Index rounds = 4000;
  for (Index round = 0; round < rounds; ++round) {
    for (const Index j : engine.server(1, 0).participants()) ++counts[static_cast<std::size_t>(j)];
    engine.step();
  }
  for (const Index count : counts) CHECK(std::abs(double(count) - rounds * 3.0 / 8.0) < 5 * std::sqrt(rounds * 3.0 / 8.0 * 5.0 / 8.0));
}

TEST_CASE("Participation: the draw depends on the seed alone, not on the threads", "[participation]") {
  const auto topology = hsgd::Topology::two_level(12, 3, 2, 8);
  auto run = [&](std::uint64_t seed, Index threads) {
    hsgd::Engine engine(topology, noisy_quadratics(12, d, 8), hsgd::UniformSampler(4), partial(0.5, seed, threads));
    std::vector<std::vector<Index>> draws;
    for (Index t = 0; t < 40; ++t) {
      if (t % 2 == 0) {
        for (Index unit = 0; unit < 3; ++unit) {
          const auto view = engine.server(1, unit).participants();
          draws.emplace_back(view.begin(), view.end());
        }
      }
      engine.step();
    }
    return std::pair(draws, Mat(engine.models()));
  };
  const auto reference = run(1, 1);
  CHECK(run(1, 3) == reference);
  CHECK(run(2, 1).first != reference.first);
}

TEST_CASE("Participation: probes count only the participants' messages", "[participation][probe]") {
  // 12 workers in 3 groups of 4, half take part: 6 workers send up and get the model back each round.
  hsgd::Engine engine(hsgd::Topology::two_level(12, 3, 2, 8), still_shards(12, 2), hsgd::FullBatchSampler(), partial(0.5));
  hsgd::MemoryRecorder recorder;
  auto probe = hsgd::make_probe(engine, {.gradient_every = 0, .model_every = 8}, recorder);
  for (Index t = 0; t < 8; ++t) {
    const Index level = engine.step();
    if (level > 0) probe.after_aggregation(engine, level);
    probe.after_step(engine);
  }
  // Three level-1 rounds: 2 x 6 each; one level-2 round: 2 x (6 + 3).
  CHECK(probe.last().messages == 3 * 12 + 18);
}

TEST_CASE("Participation must be above 0 and at most 1; other values are rejected, naming it", "[participation][validation]") {
  for (const double fraction : {0.0, -0.5, 1.5, std::nan("")}) {
    CHECK_THROWS_WITH(partial(fraction).validate(), Contains("'participation'") && Contains("must be in (0, 1]"));
  }
}
