// Checkpoints: a run stopped after step t and resumed from its checkpoint ends with the same
// bits (models, optimizer states, probe records, CSV bytes) as the run that never stopped, and
// a checkpoint that does not fit is refused without touching the run.

#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "support.hpp"

using namespace test;
using Catch::Matchers::Contains;

namespace {

/// Sends the probe's records to memory and to a CSV file.
struct Tee {
  hsgd::MemoryRecorder memory;
  hsgd::CsvRecorder* csv = nullptr;
  void record(const hsgd::ProbeRecord& row) {
    memory.record(row);
    if (csv != nullptr) csv->record(row);
  }
};

constexpr hsgd::ProbeOptions probe_options{.gradient_every = 3, .model_every = 1, .subsample = 4};

/// What a finished run leaves: models, states, probe records (as bytes) and the CSV file's bytes.
struct Outcome {
  Mat models, states;
  std::vector<char> records;
  std::string csv;
};

/// Runs `make(threads)`'s engine for `total` steps, with a probe and a CSV file.
template <class Make>
Outcome uninterrupted(const Make& make, Index total, const TempDir& dir) {
  auto engine = make(1);
  hsgd::CsvRecorder csv(dir.file("reference.csv"), {"run"}, 3);
  csv.set_tags({"a,b"});
  Tee tee{{}, &csv};
  auto probe = hsgd::make_probe(engine, probe_options, tee);
  step_to(engine, probe, total);
  csv.close();
  return {engine.models(), engine.states(), state_bytes(tee.memory, probe), read_bytes(dir.file("reference.csv"))};
}

/// Stops after `stop` steps on `save_threads` threads, saves, lets the "killed" run write a few
/// more rows and half a line, then resumes on `resume_threads` threads into the same CSV file
/// and runs to `total`: everything must equal the uninterrupted run.
template <class Make>
void check_resume(const Make& make, Index total, Index stop, Index save_threads, Index resume_threads,
                  const Outcome& reference, const TempDir& dir) {
  CAPTURE(stop, save_threads, resume_threads);
  const std::string checkpoint = dir.file("run.ckpt");
  const std::string csv_path = dir.file("run.csv");
  {
    auto engine = make(save_threads);
    hsgd::CsvRecorder csv(csv_path, {"run"}, 3);
    csv.set_tags({"a,b"});
    Tee tee{{}, &csv};
    auto probe = hsgd::make_probe(engine, probe_options, tee);
    step_to(engine, probe, stop);
    hsgd::save_checkpoint(checkpoint, {}, engine, probe, tee.memory, csv);
    step_to(engine, probe, std::min(total, stop + 5));  // the killed run went on a little
  }
  {
    std::ofstream torn(csv_path, std::ios::app);
    torn << "\"a,b\",99,0,0.12";  // and was killed inside a row
  }
  auto engine = make(resume_threads);
  auto csv = hsgd::CsvRecorder::reopen(csv_path, {"run"}, 3);
  Tee tee{{}, &csv};
  auto probe = hsgd::make_probe(engine, probe_options, tee);
  hsgd::load_checkpoint(checkpoint, engine, probe, tee.memory, csv);
  REQUIRE(engine.step_count() == stop);
  step_to(engine, probe, total);
  csv.close();
  CHECK(same_bits(engine.models(), reference.models));
  CHECK(same_bits(engine.states(), reference.states));
  CHECK((state_bytes(tee.memory, probe) == reference.records));
  CHECK(read_bytes(csv_path) == reference.csv);
}

/// The resume check at every stop, on 1 -> 2 and 2 -> 1 threads.
template <class Make>
void check_resumes(const Make& make, Index total, const std::vector<Index>& stops) {
  const TempDir dir;
  const Outcome reference = uninterrupted(make, total, dir);
  for (const Index stop : stops) {
    check_resume(make, total, stop, 1, 2, reference, dir);
    check_resume(make, total, stop, 2, 1, reference, dir);
  }
}

hsgd::Options run_options(Index threads, std::uint64_t seed = 5) {
  hsgd::Options result = options(seed, 0, 0.05);
  result.threads = threads;
  return result;
}

// Unequal groups of 3 and 5, I = 3, G = 12.
const hsgd::Topology two_level = hsgd::Topology::two_level(std::vector<Index>{3, 5}, 3, 12);

}  // namespace

TEST_CASE("checkpoint: resume inside a local period, after a local and after a global aggregation with re-drawn "
          "random groups",
          "[checkpoint]") {
  const auto make = [](Index threads) {
    return hsgd::Engine(two_level, noisy_quadratics(8, 3, 11), hsgd::UniformSampler(2), run_options(threads),
                        hsgd::RandomGrouping{hsgd::RandomGrouping::Redraw::every_global_aggregation});
  };
  // 5: inside a local period; 6: right after a local aggregation; 12 and 24: right after global
  // aggregations that re-drew the groups; 0: before the first step; 40: the end.
  check_resumes(make, 40, {0, 5, 6, 12, 24, 40});
}

TEST_CASE("checkpoint: resume during and right after a warm-up", "[checkpoint]") {
  for (const auto mode : {hsgd::WarmupMode::average_every_step, hsgd::WarmupMode::no_averaging}) {
    const auto make = [mode](Index threads) {
      hsgd::Options settings = run_options(threads);
      settings.warmup_steps = 5;
      settings.warmup_mode = mode;
      return hsgd::Engine(two_level, noisy_quadratics(8, 3, 12), hsgd::UniformSampler(3), settings,
                          hsgd::RandomGrouping{});
    };
    check_resumes(make, 30, {2, 5, 7});
  }
}

TEST_CASE("checkpoint: resume with momentum under each state policy", "[checkpoint]") {
  for (const auto policy : {hsgd::StateAtAggregation::keep, hsgd::StateAtAggregation::average,
                            hsgd::StateAtAggregation::reset}) {
    const auto make = [policy](Index threads) {
      return hsgd::Engine(two_level, noisy_quadratics(8, 3, 13), hsgd::UniformSampler(2), run_options(threads),
                          hsgd::Momentum{.momentum = 0.8, .nesterov = policy == hsgd::StateAtAggregation::reset,
                                         .at_aggregation = policy});
    };
    check_resumes(make, 30, {4, 9, 12});
  }
}

TEST_CASE("checkpoint: resume with partial participation", "[checkpoint]") {
  const auto make = [](Index threads) {
    hsgd::Options settings = run_options(threads);
    settings.participation = 0.5;
    return hsgd::Engine(two_level, noisy_quadratics(8, 3, 14), hsgd::UniformSampler(2), settings,
                        hsgd::RandomGrouping{hsgd::RandomGrouping::Redraw::every_global_aggregation});
  };
  check_resumes(make, 30, {4, 6, 7, 12});
}

TEST_CASE("checkpoint: resume with a ShuffledSampler inside and across epochs", "[checkpoint]") {
  const auto make = [](Index threads) {  // 32 samples in batches of 5: an epoch lasts 6 steps
    return hsgd::Engine(two_level, noisy_quadratics(8, 3, 15), hsgd::ShuffledSampler(5), run_options(threads));
  };
  check_resumes(make, 30, {3, 6, 10});
}

TEST_CASE("checkpoint: resume a three-level run with data-size weights and a step-decay rate", "[checkpoint]") {
  const hsgd::Topology three_level(9, {{2, {2, 3, 4}}, {4, {5, 4}}, {8, {9}}});
  const auto make = [&](Index threads) {
    hsgd::Options settings = run_options(threads);
    settings.weighting = hsgd::Weighting::data_size;
    std::vector<hsgd::Quadratic<double>> shards;
    for (Index j = 0; j < 9; ++j) shards.push_back(noisy_quadratics(1, 3, 20 + static_cast<std::uint64_t>(j), 8 + j).front());
    return hsgd::Engine(three_level, std::move(shards), hsgd::UniformSampler(2), settings,
                        hsgd::StepDecay{.factor = 0.5, .every = 7}, hsgd::RandomGrouping{});
  };
  check_resumes(make, 24, {3, 4, 8, 13});
}

namespace {

/// A user's sampler with state of its own: it walks through the shard in order, one sample per
/// batch, and takes part in checkpoints through the documented hooks.
class CyclingSampler {
 public:
  void bind(Index sample_count) { count_ = sample_count; }
  std::span<const Index> next(hsgd::Rng& /*rng*/) {
    batch_ = position_;
    position_ = (position_ + 1) % count_;
    return {&batch_, 1};
  }
  template <class Archive>
  void checkpoint(Archive& archive) {
    archive.index("the cycle position", position_, 0, count_ - 1);
  }

 private:
  Index count_ = 0;
  Index position_ = 0;
  Index batch_ = 0;
};

}  // namespace

TEST_CASE("checkpoint: a user's sampler with state resumes through its hooks", "[checkpoint]") {
  const auto make = [](Index threads) {
    return hsgd::Engine(two_level, noisy_quadratics(8, 3, 16), CyclingSampler{}, run_options(threads));
  };
  check_resumes(make, 20, {5, 12});
}

// ---- refusals ----------------------------------------------------------------------------------

namespace {

using SgdEngine = hsgd::Engine<hsgd::Quadratic<double>, hsgd::UniformSampler, hsgd::Sgd, hsgd::ConstantRate,
                               hsgd::RandomGrouping>;

SgdEngine make_engine(const hsgd::Topology& topology = two_level, hsgd::Options settings = run_options(1),
                      Index dimension = 3) {
  return SgdEngine(topology, noisy_quadratics(topology.workers(), dimension, 17), hsgd::UniformSampler(2), settings,
                   hsgd::RandomGrouping{});
}

/// A checkpoint of `make_engine()` after 7 steps.
std::string saved_checkpoint(const TempDir& dir) {
  auto engine = make_engine();
  for (int t = 0; t < 7; ++t) engine.step();
  const std::string path = dir.file("saved.ckpt");
  hsgd::save_checkpoint(path, {}, engine);
  return path;
}

/// Loading `path` into `engine` must throw CheckpointError containing `expected` and leave the
/// engine's state exactly as it was.
template <class Engine>
void check_refused(const std::string& path, Engine& engine, const std::string& expected) {
  const auto before = state_bytes(engine);
  REQUIRE_THROWS_AS(hsgd::load_checkpoint(path, engine), hsgd::CheckpointError);
  REQUIRE_THROWS_WITH(hsgd::load_checkpoint(path, engine), Contains(expected));
  CHECK((state_bytes(engine) == before));
}

/// The same file with the CRC recomputed, so only the change made to it is seen.
std::string with_fresh_crc(std::string bytes) {
  const auto crc = hsgd::detail::crc32_of(0, bytes.data(), bytes.size() - 4);
  std::memcpy(bytes.data() + bytes.size() - 4, &crc, 4);
  return bytes;
}

}  // namespace

TEST_CASE("checkpoint: a truncated file is refused and the run is untouched", "[checkpoint]") {
  const TempDir dir;
  const std::string bytes = read_bytes(saved_checkpoint(dir));
  auto engine = make_engine();
  engine.step();
  for (const std::size_t size : {std::size_t{0}, std::size_t{5}, std::size_t{20}, std::size_t{36}, bytes.size() / 2,
                                 bytes.size() - 5, bytes.size() - 1}) {
    CAPTURE(size);
    write_bytes(dir.file("cut.ckpt"), bytes.substr(0, size));
    check_refused(dir.file("cut.ckpt"), engine, size < 8 ? "not an hsgd checkpoint" : "truncated");
  }
}

TEST_CASE("checkpoint: a flipped byte anywhere is refused and the run is untouched", "[checkpoint]") {
  const TempDir dir;
  const std::string bytes = read_bytes(saved_checkpoint(dir));
  auto engine = make_engine();
  // Every byte of the header and trailer, and 200 positions spread over the rest: CRC-32 detects
  // every error confined to 32 consecutive bits, so each of these must be caught.
  std::vector<std::size_t> positions;
  for (std::size_t k = 0; k < 32; ++k) positions.push_back(k);
  for (std::size_t k = 0; k < 200; ++k) positions.push_back(32 + k * (bytes.size() - 36) / 200);
  for (std::size_t k = bytes.size() - 4; k < bytes.size(); ++k) positions.push_back(k);
  for (const std::size_t position : positions) {
    CAPTURE(position);
    std::string damaged = bytes;
    damaged[position] = static_cast<char>(damaged[position] ^ 0x10);
    write_bytes(dir.file("flipped.ckpt"), damaged);
    const auto before = state_bytes(engine);
    CHECK_THROWS_AS(hsgd::load_checkpoint(dir.file("flipped.ckpt"), engine), hsgd::CheckpointError);
    CHECK((state_bytes(engine) == before));
  }
  // Away from the framing fields, the message says what happened.
  std::string damaged = bytes;
  damaged[bytes.size() / 2] ^= 1;
  write_bytes(dir.file("flipped.ckpt"), damaged);
  check_refused(dir.file("flipped.ckpt"), engine, "is damaged: its CRC-32 is");
}

TEST_CASE("checkpoint: a future or past format version and the other byte order are refused by name", "[checkpoint]") {
  const TempDir dir;
  const std::string bytes = read_bytes(saved_checkpoint(dir));
  auto engine = make_engine();
  std::string future = bytes;
  const std::uint32_t version = hsgd::CheckpointFormat::version + 1;
  std::memcpy(future.data() + 12, &version, 4);
  write_bytes(dir.file("future.ckpt"), with_fresh_crc(future));
  check_refused(dir.file("future.ckpt"), engine, fmt::format("has format version {}, newer than this hsgd reads", version));

  // Version 1 had shorter probe records: reading its sections with today's layout would misread them.
  std::string past = bytes;
  const std::uint32_t old_version = hsgd::CheckpointFormat::version - 1;
  std::memcpy(past.data() + 12, &old_version, 4);
  write_bytes(dir.file("past.ckpt"), with_fresh_crc(past));
  check_refused(dir.file("past.ckpt"), engine,
                fmt::format("has format version {}, older than this hsgd reads ({})", old_version,
                            hsgd::CheckpointFormat::version));

  std::string swapped = bytes;
  std::reverse(swapped.begin() + 8, swapped.begin() + 12);
  write_bytes(dir.file("swapped.ckpt"), with_fresh_crc(swapped));
  check_refused(dir.file("swapped.ckpt"), engine, "other byte order");
}

TEST_CASE("checkpoint: a file that cannot be read is a system error naming it", "[checkpoint]") {
  const TempDir dir;
  auto engine = make_engine();
  REQUIRE_THROWS_AS(hsgd::load_checkpoint(dir.file("missing.ckpt"), engine), std::system_error);
  REQUIRE_THROWS_WITH(hsgd::load_checkpoint(dir.file("missing.ckpt"), engine), Contains("missing.ckpt"));
  write_bytes(dir.file("text.ckpt"), "step,level\n1,0\n");
  check_refused(dir.file("text.ckpt"), engine, "is not an hsgd checkpoint");
}

TEST_CASE("checkpoint: a checkpoint of another configuration is refused, naming what differs", "[checkpoint]") {
  const TempDir dir;
  const std::string path = saved_checkpoint(dir);
  SECTION("topology") {
    auto engine = make_engine(hsgd::Topology::two_level(std::vector<Index>{3, 5}, 4, 12));
    check_refused(path, engine, "its engine topology is level 1: period 3");
  }
  SECTION("group sizes") {
    auto engine = make_engine(hsgd::Topology::two_level(std::vector<Index>{4, 4}, 3, 12));
    check_refused(path, engine, "topology");
  }
  SECTION("workers") {
    auto engine = make_engine(hsgd::Topology::two_level(std::vector<Index>{3, 6}, 3, 12));
    check_refused(path, engine, "its engine workers is 8, this run's is 9");
  }
  SECTION("seed") {
    auto engine = make_engine(two_level, run_options(1, 6));
    check_refused(path, engine, "its engine seed is 5, this run's is 6");
  }
  SECTION("learning rate") {
    hsgd::Options settings = run_options(1);
    settings.learning_rate = 0.01;
    auto engine = make_engine(two_level, settings);
    check_refused(path, engine, "learning rate is 0.05, this run's is 0.01");
  }
  SECTION("participation") {
    hsgd::Options settings = run_options(1);
    settings.participation = 0.5;
    auto engine = make_engine(two_level, settings);
    check_refused(path, engine, "participation");
  }
  SECTION("dimension") {
    auto engine = make_engine(two_level, run_options(1), 4);
    check_refused(path, engine, "its engine dimension is 3, this run's is 4");
  }
  SECTION("scalar type") {
    std::vector<hsgd::Quadratic<float>> shards(8, hsgd::Quadratic<float>(hsgd::Vector<float>::Ones(3),
                                                                          hsgd::Vector<float>::Zero(3)));
    hsgd::Engine engine(two_level, shards, hsgd::UniformSampler(2), run_options(1), hsgd::RandomGrouping{});
    check_refused(path, engine, "its engine scalar type is double, this run's is float");
  }
  SECTION("sampler type") {
    hsgd::Engine engine(two_level, noisy_quadratics(8, 3, 17), hsgd::ShuffledSampler(2), run_options(1),
                        hsgd::RandomGrouping{});
    check_refused(path, engine, "its engine sampler is hsgd::UniformSampler, this run's is hsgd::ShuffledSampler");
  }
  SECTION("sampler parameter") {
    hsgd::Engine engine(two_level, noisy_quadratics(8, 3, 17), hsgd::UniformSampler(3), run_options(1),
                        hsgd::RandomGrouping{});
    check_refused(path, engine, "its engine sampler batch size is 2, this run's is 3");
  }
  SECTION("update policy") {
    hsgd::Engine engine(two_level, noisy_quadratics(8, 3, 17), hsgd::UniformSampler(2), run_options(1),
                        hsgd::RandomGrouping{}, hsgd::Momentum{});
    check_refused(path, engine, "its engine update policy is hsgd::Sgd, this run's is hsgd::Momentum");
  }
  SECTION("grouping policy parameter") {
    hsgd::Engine engine(two_level, noisy_quadratics(8, 3, 17), hsgd::UniformSampler(2), run_options(1),
                        hsgd::RandomGrouping{hsgd::RandomGrouping::Redraw::every_global_aggregation});
    check_refused(path, engine, "its engine redraw is 0, this run's is 1");
  }
  SECTION("shard sizes") {
    auto shards = noisy_quadratics(8, 3, 17);
    shards[2] = noisy_quadratics(1, 3, 17, 31).front();
    SgdEngine engine(two_level, shards, hsgd::UniformSampler(2), run_options(1), hsgd::RandomGrouping{});
    check_refused(path, engine, "shard sample counts is [32, 32, 32,");
  }
}

TEST_CASE("checkpoint: plug-in parameters are compared on resume", "[checkpoint]") {
  const TempDir dir;
  const std::string path = dir.file("momentum.ckpt");
  const auto make = [](double beta) {
    return hsgd::Engine(two_level, noisy_quadratics(8, 3, 17), hsgd::UniformSampler(2), run_options(1),
                        hsgd::Momentum{.momentum = beta}, hsgd::StepDecay{.factor = 0.5, .every = 10});
  };
  auto saved = make(0.9);
  saved.step();
  hsgd::save_checkpoint(path, {}, saved);
  auto other = make(0.5);
  check_refused(path, other, "its engine momentum is 0.9, this run's is 0.5");
  auto same = make(0.9);
  hsgd::load_checkpoint(path, same);
  CHECK(same.step_count() == 1);
}

TEST_CASE("checkpoint: a part that refuses leaves every part untouched", "[checkpoint]") {
  const TempDir dir;
  auto engine = make_engine();
  hsgd::MemoryRecorder memory;
  auto probe = hsgd::make_probe(engine, {.gradient_every = 2}, memory);
  step_to(engine, probe, 6);
  hsgd::save_checkpoint(dir.file("run.ckpt"), {}, engine, probe, memory);

  auto fresh = make_engine();
  hsgd::MemoryRecorder fresh_memory;
  auto other_probe = hsgd::make_probe(fresh, {.gradient_every = 3}, fresh_memory);
  const auto before = state_bytes(fresh, other_probe, fresh_memory);
  REQUIRE_THROWS_WITH(hsgd::load_checkpoint(dir.file("run.ckpt"), fresh, other_probe, fresh_memory),
                      Contains("its probe probe options is gradient_every 2") && Contains("this run's is gradient_every 3"));
  CHECK((state_bytes(fresh, other_probe, fresh_memory) == before));

  hsgd::CsvRecorder csv(dir.file("other.csv"), {});
  REQUIRE_THROWS_WITH(hsgd::load_checkpoint(dir.file("run.ckpt"), fresh, csv), Contains("has no section 'csv'"));
  CHECK((state_bytes(fresh) == state_bytes(make_engine())));
}

TEST_CASE("checkpoint: held-out records resume exactly, and another held-out cadence is refused", "[checkpoint][held-out]") {
  const TempDir dir;
  const hsgd::Quadratic<double> held_out = noisy_quadratics(1, 3, 4).front();
  const hsgd::ProbeOptions with_tests{.gradient_every = 2, .test_every = 3};
  auto engine = make_engine();
  hsgd::MemoryRecorder memory;
  auto probe = hsgd::make_probe(engine, with_tests, memory, held_out);
  step_to(engine, probe, 7);
  hsgd::save_checkpoint(dir.file("run.ckpt"), {}, engine, probe, memory);
  step_to(engine, probe, 12);

  auto resumed = make_engine();
  hsgd::MemoryRecorder resumed_memory;
  auto resumed_probe = hsgd::make_probe(resumed, with_tests, resumed_memory, held_out);
  hsgd::load_checkpoint(dir.file("run.ckpt"), resumed, resumed_probe, resumed_memory);
  step_to(resumed, resumed_probe, 12);
  CHECK((state_bytes(resumed_memory, resumed_probe) == state_bytes(memory, probe)));
  CHECK(hsgd::is_measured(resumed_memory.rows.back().test_loss));  // step 12

  auto other = make_engine();
  hsgd::MemoryRecorder other_memory;
  auto other_probe = hsgd::make_probe(other, {.gradient_every = 2, .test_every = 4}, other_memory, held_out);
  REQUIRE_THROWS_WITH(hsgd::load_checkpoint(dir.file("run.ckpt"), other, other_probe, other_memory),
                      Contains("probe held-out set is test_every 3,") && Contains("this run's is test_every 4"));
  hsgd::MemoryRecorder plain_memory;
  auto plain_probe = hsgd::make_probe(other, with_tests, plain_memory);  // no held-out objective at all
  REQUIRE_THROWS_WITH(hsgd::load_checkpoint(dir.file("run.ckpt"), other, plain_probe, plain_memory),
                      Contains("probe held-out set is test_every 3,") && Contains("this run's is none"));
}

TEST_CASE("checkpoint: a CSV file that is not the checkpointed run's is refused", "[checkpoint]") {
  const TempDir dir;
  auto engine = make_engine();
  hsgd::CsvRecorder csv(dir.file("run.csv"), {"tag"});
  auto probe = hsgd::make_probe(engine, {.gradient_every = 2}, csv);
  step_to(engine, probe, 6);
  hsgd::save_checkpoint(dir.file("run.ckpt"), {}, engine, probe, csv);
  const std::string written = read_bytes(dir.file("run.csv"));

  SECTION("shorter") {
    write_bytes(dir.file("short.csv"), written.substr(0, written.size() / 2));
    auto resumed = hsgd::CsvRecorder::reopen(dir.file("short.csv"), {"tag"});
    REQUIRE_THROWS_WITH(hsgd::load_checkpoint(dir.file("run.ckpt"), resumed), Contains("fewer than the"));
    CHECK(read_bytes(dir.file("short.csv")) == written.substr(0, written.size() / 2));
  }
  SECTION("other content") {
    std::string edited = written;
    edited[edited.size() / 2] = edited[edited.size() / 2] == '1' ? '2' : '1';
    write_bytes(dir.file("edited.csv"), edited + "more\n");
    auto resumed = hsgd::CsvRecorder::reopen(dir.file("edited.csv"), {"tag"});
    REQUIRE_THROWS_WITH(hsgd::load_checkpoint(dir.file("run.ckpt"), resumed), Contains("it is not that run's file"));
    CHECK(read_bytes(dir.file("edited.csv")) == edited + "more\n");
    CHECK_THROWS_AS(resumed.record(probe.last()), hsgd::InvalidState);  // still waiting for its checkpoint
  }
  SECTION("other tag columns") {
    auto resumed = hsgd::CsvRecorder::reopen(dir.file("run.csv"), {"scheme"});
    REQUIRE_THROWS_WITH(hsgd::load_checkpoint(dir.file("run.ckpt"), resumed),
                        Contains("its csv tag columns is [\"tag\"], this run's is [\"scheme\"]"));
  }
}

TEST_CASE("checkpoint: a failed engine is not saved", "[checkpoint]") {
  const TempDir dir;
  std::vector<hsgd::Quadratic<double>> shards(2, hsgd::Quadratic<double>(Vec::Constant(1, 1e300), Vec::Zero(1)));
  hsgd::Engine engine(hsgd::Topology::local_sgd(2, 1), shards, hsgd::FullBatchSampler(), options(1, 10, 1.0));
  engine.set_model(Vec::Constant(1, 1e10));
  REQUIRE_THROWS_AS(engine.step(), hsgd::NumericalError);
  REQUIRE_THROWS_AS(hsgd::save_checkpoint(dir.file("failed.ckpt"), {}, engine), hsgd::InvalidState);
  CHECK_FALSE(std::filesystem::exists(dir.file("failed.ckpt")));
}

TEST_CASE("checkpoint: writes are atomic, leave no temporary file, and keep the last k", "[checkpoint]") {
  const TempDir dir;
  auto engine = make_engine();
  const std::string path = dir.file("run.ckpt");
  for (int save = 1; save <= 5; ++save) {
    engine.step();
    hsgd::save_checkpoint(path, {.keep = 3}, engine);
  }
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) names.push_back(entry.path().filename());
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{"run.ckpt", "run.ckpt.1", "run.ckpt.2"});
  // The permissions of any new file of the process (not the 0600 of a temporary file).
  const ::mode_t mask = ::umask(022);
  ::umask(mask);
  struct ::stat status {};
  REQUIRE(::stat(path.c_str(), &status) == 0);
  CHECK((status.st_mode & 0777) == (0666 & ~mask));
  // Newest at the path, then one step older each.
  for (const auto& [name, step] : std::vector<std::pair<std::string, Index>>{{"run.ckpt", 5}, {"run.ckpt.1", 4}, {"run.ckpt.2", 3}}) {
    auto loaded = make_engine();
    hsgd::load_checkpoint(dir.file(name), loaded);
    CHECK(loaded.step_count() == step);
  }
  REQUIRE_THROWS_WITH(hsgd::save_checkpoint(dir.file("no/such/dir/run.ckpt"), {}, engine), Contains("no/such/dir/run.ckpt"));
  REQUIRE_THROWS_WITH(hsgd::save_checkpoint(path, {.keep = 0}, engine), Contains("'keep' (0) must be in [1, 1000]"));
}

TEST_CASE("checkpoint: SIGTERM stops the run at the next step boundary with a checkpoint written", "[checkpoint]") {
  const TempDir dir;
  const std::string path = dir.file("signal.ckpt");
  struct ::sigaction before {};
  ::sigaction(SIGTERM, nullptr, &before);
  Outcome reference;
  {
    auto engine = make_engine(two_level, [] { auto o = run_options(2); o.steps = 40; return o; }());
    engine.run();
    reference.models = engine.models();
  }
  {
    hsgd::StopSignals stop_signals;
    auto engine = make_engine(two_level, [] { auto o = run_options(2); o.steps = 40; return o; }());
    hsgd::MemoryRecorder memory;
    auto probe = hsgd::make_probe(engine, {.gradient_every = 4}, memory);
    // A real signal, raised by the process itself in the middle of step 7's observers.
    auto raise_at_seven = hsgd::every(1, [](const auto& run) {
      if (run.step_count() == 7) std::raise(SIGTERM);
    });
    hsgd::Checkpointer checkpointer(path, {.every = 5}, probe, memory);
    const hsgd::Summary summary = engine.run(probe, raise_at_seven, checkpointer);
    CHECK(summary.stopped_by_observer);
    CHECK(engine.step_count() == 7);
    CHECK(hsgd::StopSignals::received() == SIGTERM);
    CHECK(checkpointer.last_saved_step() == 7);
    CHECK(checkpointer.saves() == 2);  // step 5, then the signal at step 7
  }
  struct ::sigaction after {};
  ::sigaction(SIGTERM, nullptr, &after);
  CHECK(after.sa_handler == before.sa_handler);  // the previous handler is back

  auto engine = make_engine(two_level, [] { auto o = run_options(1); o.steps = 40; return o; }());
  hsgd::MemoryRecorder memory;
  auto probe = hsgd::make_probe(engine, {.gradient_every = 4}, memory);
  hsgd::load_checkpoint(path, engine, probe, memory);
  CHECK(engine.step_count() == 7);
  engine.run(probe);
  CHECK(same_bits(engine.models(), reference.models));
}

