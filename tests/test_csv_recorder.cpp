// The CSV recorder: no row lost or corrupted silently (a full disk, a signal or a failed write
// mid-row, very long rows), RFC 4180 quoting of tags, measured NaN told apart from "not
// measured", rejected recorders that leave no trace, and moves.

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <span>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "support.hpp"

using namespace test;
using Catch::Matchers::Contains;

namespace {

/// The file's bytes (support.hpp's read_bytes, by the name the checks below use).
std::string read_all(const std::string& path) { return read_bytes(path); }

/// Splits CSV text into records of fields, honouring RFC 4180 quotes (a quoted field may hold
/// commas, doubled quotes and line breaks). Independent of the recorder's own quoting code.
std::vector<std::vector<std::string>> parse_csv(const std::string& text) {
  std::vector<std::vector<std::string>> records;
  std::vector<std::string> fields;
  std::string field;
  bool quoted = false;
  for (std::size_t k = 0; k < text.size(); ++k) {
    const char c = text[k];
    if (quoted) {
      if (c == '"' && k + 1 < text.size() && text[k + 1] == '"') {
        field.push_back('"');
        ++k;
      } else if (c == '"') {
        quoted = false;
      } else {
        field.push_back(c);
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      fields.push_back(std::move(field));
      field.clear();
    } else if (c == '\n') {
      fields.push_back(std::move(field));
      field.clear();
      records.push_back(std::move(fields));
      fields.clear();
    } else {
      field.push_back(c);
    }
  }
  return records;  // a last line without its newline is dropped: the recorder never writes one
}

std::string join(const std::vector<std::string>& cells) {
  std::string line;
  for (std::size_t k = 0; k < cells.size(); ++k) line += (k == 0 ? "" : ",") + cells[k];
  return line;
}

/// A record with one level, written by hand so every cell of its CSV line is known.
hsgd::ProbeRecord one_level_record() {
  hsgd::ProbeRecord row;
  row.step = 3;
  row.level = 1;
  row.loss = 0.5;
  row.model_terms = {0.25};
  row.c_in = 0.25;
  row.c_up = 0;
  row.c = 0.25;
  row.messages = 7;
  row.level_messages = {7};
  row.scalars = 14;
  return row;
}

const std::string base_header =
    "step,level,loss,grad_norm_sq,d_up,d_down,d_glob,c_in,c_up,c,max_d_up,max_d_down,messages,scalars,d_down_at_groups,"
    "test_loss,test_accuracy,sim_seconds,sim_compute_seconds,sim_wait_seconds,sim_dropped,d_level_0,c_level_0,messages_level_1,"
    "sim_comm_level_1";
// one_level_record() as written: the gradient fields, the test and clock fields and d_level_0 are empty (not measured)
const std::string base_row = join({"3", "1", "0.5", "", "", "", "", "0.25", "0", "0.25", "0", "0", "7", "14", "", "", "",
                                   "", "", "", "", "", "0.25", "7", ""});

#ifdef __linux__
long open_descriptors() {
  long count = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) ++count;
  return count;
}
#endif

/// Training sees zero minibatch gradients, so the run stays finite, but the full gradient and
/// the loss the probe measures are NaN: a measurement that genuinely came out NaN.
struct NanMeasurement {
  using Scalar = double;
  Index dimension() const { return 2; }
  Index sample_count() const { return 4; }
  double value(hsgd::ConstVectorRef<double>) const { return std::numeric_limits<double>::quiet_NaN(); }
  void gradient(hsgd::ConstVectorRef<double>, hsgd::VectorRef<double> g) const {
    g.setConstant(std::numeric_limits<double>::quiet_NaN());
  }
  void batch_gradient(hsgd::ConstVectorRef<double>, std::span<const Index>, hsgd::VectorRef<double> g) const {
    g.setZero();
  }
};

}  // namespace

TEST_CASE("CsvRecorder: a write to a full disk throws, naming the path", "[hardening][csv]") {
  if (::access("/dev/full", W_OK) != 0) {
    WARN("no writable /dev/full on this system: skipped");
    return;
  }
  hsgd::CsvRecorder csv("/dev/full", {"scheme"});
  const auto row = one_level_record();
  // The header goes first and fails; so does every later attempt: no row is dropped silently.
  for (int attempt = 0; attempt < 2; ++attempt) {
    try {
      csv.record(row);
      FAIL("writing to /dev/full did not throw");
    } catch (const std::system_error& error) {
      CHECK_THAT(error.what(), Contains("'/dev/full'"));
      CHECK(error.code() == std::error_code(ENOSPC, std::generic_category()));
    }
  }
}

TEST_CASE("CsvRecorder: tag names and values with commas, quotes and line breaks are quoted as RFC 4180 says",
          "[hardening][csv]") {
  const std::string path = "csv_recorder_quoting.csv";
  const std::vector<std::string> names = {"name, with comma", "plain", "say \"what\""};
  const std::vector<std::vector<std::string>> values = {{"a,b", "say \"hi\"", "x"}, {"line\nbreak", "cr\rhere", ""}};
  {
    hsgd::CsvRecorder csv(path, names);
    for (const auto& tags : values) {
      csv.set_tags(tags);
      csv.record(one_level_record());
    }
  }
  const std::string expected = "\"name, with comma\",plain,\"say \"\"what\"\"\"," + base_header + "\n" +
                               "\"a,b\",\"say \"\"hi\"\"\",x," + base_row + "\n" +  //
                               "\"line\nbreak\",\"cr\rhere\",," + base_row + "\n";
  CHECK(read_all(path) == expected);

  const auto records = parse_csv(read_all(path));
  REQUIRE(records.size() == 3);
  CHECK(std::vector<std::string>(records[0].begin(), records[0].begin() + 3) == names);
  for (std::size_t r = 0; r < values.size(); ++r) {
    REQUIRE(records[r + 1].size() == records[0].size());
    CHECK(std::vector<std::string>(records[r + 1].begin(), records[r + 1].begin() + 3) == values[r]);
  }
  std::remove(path.c_str());
}

TEST_CASE("A measured NaN is told apart from a value not measured, in records and in the CSV", "[hardening][csv]") {
  volatile double zero = 0;
  const double computed_nan = zero / zero;  // the platform's default NaN (negative on x86-64)
  const double library_nan = std::numeric_limits<double>::quiet_NaN();

  // not_measured stays a NaN, so code that tests std::isnan keeps treating it as "no value"
  CHECK(std::isnan(hsgd::ProbeRecord::not_measured));
  CHECK_FALSE(hsgd::is_measured(hsgd::ProbeRecord::not_measured));
  CHECK_FALSE(hsgd::is_measured(-hsgd::ProbeRecord::not_measured));
  CHECK_FALSE(hsgd::is_measured(hsgd::ProbeRecord::not_measured + 1.0));  // arithmetic keeps the marker
  CHECK(hsgd::is_measured(computed_nan));
  CHECK(hsgd::is_measured(library_nan));
  CHECK(hsgd::is_measured(std::sqrt(-zero - 1)));
  CHECK(hsgd::is_measured(0.0));
  CHECK(hsgd::is_measured(std::numeric_limits<double>::infinity()));
  static_assert(!hsgd::is_measured(hsgd::ProbeRecord::not_measured));
  static_assert(hsgd::is_measured(std::numeric_limits<double>::quiet_NaN()));

  SECTION("time_average skips values not measured, but a measured NaN poisons the mean") {
    std::vector<hsgd::ProbeRecord> rows(3);
    rows[0].gradient_norm_squared = 1;
    rows[2].gradient_norm_squared = 3;  // rows[1] not measured
    CHECK(hsgd::time_average(rows, &hsgd::ProbeRecord::gradient_norm_squared) == 2.0);
    CHECK_FALSE(hsgd::is_measured(hsgd::time_average(rows, &hsgd::ProbeRecord::d_up)));  // nothing measured
    rows[1].gradient_norm_squared = computed_nan;
    const double mean = hsgd::time_average(rows, &hsgd::ProbeRecord::gradient_norm_squared);
    CHECK(std::isnan(mean));
    CHECK(hsgd::is_measured(mean));
  }

  SECTION("the CSV writes nan for a measured NaN and an empty cell when not measured") {
    const std::string path = "csv_recorder_nan.csv";
    {
      hsgd::CsvRecorder csv(path, {});
      auto row = one_level_record();
      row.loss = computed_nan;
      row.d_up = library_nan;
      row.gradient_norm_squared = std::numeric_limits<double>::infinity();
      csv.record(row);
    }
    const auto records = parse_csv(read_all(path));
    REQUIRE(records.size() == 2);
    REQUIRE(records[1].size() == 25);
    CHECK(records[1][2] == "nan");  // loss
    CHECK(records[1][3] == "inf");  // grad_norm_sq
    CHECK(records[1][4] == "nan");  // d_up
    CHECK(records[1][5].empty());   // d_down, not measured
    CHECK(records[1][15].empty());  // test_loss, not measured
    CHECK(records[1][21].empty());  // d_level_0, not measured
    std::remove(path.c_str());
  }

  SECTION("a probe marks what it skipped as not measured and keeps a NaN it measured") {
    hsgd::Engine engine(hsgd::Topology::two_level(6, 2, 2, 4), std::vector<NanMeasurement>(6), hsgd::UniformSampler(1),
                        options(1, 4));
    hsgd::MemoryRecorder memory;
    auto probe = hsgd::make_probe(engine, {.gradient_every = 2, .model_every = 1}, memory);
    engine.run(probe);
    REQUIRE(memory.rows.size() == 4);
    const auto& first = memory.rows[0];  // step 1: models only
    CHECK_FALSE(hsgd::is_measured(first.d_up));
    CHECK_FALSE(hsgd::is_measured(first.loss));
    CHECK_FALSE(hsgd::is_measured(first.gradient_terms[0]));
    CHECK(first.c_in == 0);  // the models never move
    const auto& second = memory.rows[1];  // step 2: both spaces, and every full gradient is NaN
    for (const double value : {second.d_glob, second.d_up, second.loss, second.gradient_norm_squared,
                               second.gradient_terms[1], second.max_d_down}) {
      CHECK(std::isnan(value));
      CHECK(hsgd::is_measured(value));
    }
    CHECK(second.c == 0);
    CHECK(std::isnan(memory.rows[3].max_d_up));  // the running maximum does not drop the NaN
    CHECK(hsgd::time_average(memory.rows, &hsgd::ProbeRecord::c) == 0);
  }
}

TEST_CASE("A rejected CsvRecorder leaves an existing file as it was and leaks no descriptor", "[hardening][csv]") {
  const std::string path = "csv_recorder_rejected.csv";
  const std::string content = "an existing file\nwith two lines\n";
  write_bytes(path, content);
#ifdef __linux__
  const long before = open_descriptors();
#endif
  CHECK_THROWS_AS(hsgd::CsvRecorder(path, {"scheme"}, -1), hsgd::InvalidArgument);
  CHECK_THROWS_WITH(hsgd::CsvRecorder(path, {"scheme"}, -1), Contains("'levels' (-1)"));
  CHECK(read_all(path) == content);
  // Unopenable paths: a directory, and a file in a directory that does not exist.
  CHECK_THROWS_WITH(hsgd::CsvRecorder(".", {}), Contains("'path' (.) cannot be opened"));
  CHECK_THROWS_WITH(hsgd::CsvRecorder("no-such-directory/run.csv", {}), Contains("no-such-directory/run.csv"));
  {
    hsgd::CsvRecorder accepted(path, {"scheme"});
    accepted.set_tags({"x"});
    CHECK_THROWS_AS(accepted.set_tags({"x", "y"}), hsgd::InvalidArgument);
  }
#ifdef __linux__
  CHECK(open_descriptors() == before);
#endif
  std::remove(path.c_str());
}

TEST_CASE("CsvRecorder writes a very long row whole: 10 000 tag columns and a 1 MB tag", "[hardening][csv]") {
  const std::string path = "csv_recorder_long.csv";
  std::vector<std::string> names;
  std::vector<std::string> values;
  for (int k = 0; k < 10000; ++k) {
    names.push_back("tag_" + std::to_string(k));
    values.push_back(std::to_string(k));
  }
  const std::string huge(1 << 20, 'x');
  {
    hsgd::CsvRecorder csv(path, names);
    csv.set_tags(values);
    csv.record(one_level_record());
    values.back() = huge;
    csv.set_tags(values);
    csv.record(one_level_record());
  }
  const std::string text = read_all(path);
  REQUIRE_FALSE(text.empty());
  CHECK(text.back() == '\n');
  const auto records = parse_csv(text);
  REQUIRE(records.size() == 3);
  for (const auto& record : records) CHECK(record.size() == 10000 + 25);
  CHECK(records[1][9999] == "9999");
  CHECK(records[2][9999] == huge);
  CHECK(join(std::vector<std::string>(records[2].begin() + 10000, records[2].end())) == base_row);
  std::remove(path.c_str());
}

#ifdef __linux__
TEST_CASE("CsvRecorder: a run stopped by a signal while writing long rows leaves only whole rows",
          "[hardening][csv]") {
  // A child records 256 KB rows as fast as it can and is stopped at an arbitrary moment by a
  // SIGTERM whose handler exits at once (what a run that stops on Ctrl-C or a scheduler's
  // SIGTERM does). With stdio, a row longer than the buffer went out in several write(2) calls
  // and a signal between two of them left a torn last line; one write(2) per row, which Linux
  // completes before it delivers the signal, leaves whole rows only. (SIGKILL is harsher: Linux
  // abandons a write between two pages for it, so no user-space writer can promise whole rows.)
  const std::string path = "csv_recorder_killed.csv";
  const std::string tag(1 << 18, 'k');
  std::remove(path.c_str());  // the size the parent watches must be the child's
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    struct sigaction action {};
    action.sa_handler = [](int) { ::_exit(3); };
    ::sigaction(SIGTERM, &action, nullptr);
    ::alarm(60);  // never outlive a parent that died before stopping it
    try {
      hsgd::CsvRecorder csv(path, {"tag"});
      csv.set_tags({tag});
      for (int row = 0; row < 200; ++row) csv.record(one_level_record());  // bounded: at most 50 MB
      ::pause();
    } catch (...) {
    }
    ::_exit(1);
  }
  // Let it write a few rows, then kill it.
  const auto size = [&] {
    std::error_code error;
    const auto bytes = std::filesystem::file_size(path, error);
    return error ? 0 : bytes;
  };
  for (int wait = 0; wait < 5000 && size() < 4 * tag.size(); ++wait)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ::kill(child, SIGTERM);
  int status = 0;
  ::waitpid(child, &status, 0);
  CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 3));  // stopped by the signal, not by an error
  const std::string text = read_all(path);
  REQUIRE(text.size() > 3 * tag.size());
  CHECK(text.back() == '\n');
  const std::string row = tag + "," + base_row + "\n";
  const std::string header = "tag," + base_header + "\n";
  REQUIRE(text.size() >= header.size());
  CHECK(text.compare(0, header.size(), header) == 0);
  CHECK((text.size() - header.size()) % row.size() == 0);
  std::remove(path.c_str());
}
#endif

TEST_CASE("CsvRecorder: a write that fails halfway through a row is cut back to the last whole row",
          "[hardening][csv]") {
  // A file size limit lets the kernel take half of the second row and refuse the rest (EFBIG), as
  // a disk that fills mid-row would. The limit applies to the whole process, so a child sets it.
  const std::string path = "csv_recorder_cut_back.csv";
  const std::string tag(1000, 't');
  const std::string header = "tag," + base_header + "\n";
  const std::string row = tag + "," + base_row + "\n";
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    int code = 10;
    try {
      ::signal(SIGXFSZ, SIG_IGN);  // get EFBIG back instead of being killed
      rlimit limit{};
      ::getrlimit(RLIMIT_FSIZE, &limit);
      const rlim_t unlimited = limit.rlim_cur;
      limit.rlim_cur = static_cast<rlim_t>(header.size() + row.size() + row.size() / 2);
      ::setrlimit(RLIMIT_FSIZE, &limit);
      hsgd::CsvRecorder csv(path, {"tag"});
      csv.set_tags({tag});
      csv.record(one_level_record());
      try {
        csv.record(one_level_record());
        code = 11;  // the write past the limit did not throw
      } catch (const std::system_error& error) {
        const bool named = std::string(error.what()).find(path) != std::string::npos;
        code = named && error.code() == std::error_code(EFBIG, std::generic_category()) ? 0 : 12;
      }
      limit.rlim_cur = unlimited;
      ::setrlimit(RLIMIT_FSIZE, &limit);
      csv.record(one_level_record());  // the recorder goes on after the failure, on a whole-row boundary
    } catch (...) {
      code = 13;
    }
    ::_exit(code);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);  // 11: no throw, 12: wrong error, 13: something else threw
  CHECK(read_all(path) == header + row + row);
  std::remove(path.c_str());
}

TEST_CASE("CsvRecorder is safely movable, into itself too", "[hardening][csv]") {
  const std::string path = "csv_recorder_moved.csv";
  const std::string other_path = "csv_recorder_moved_other.csv";
  const auto move_assign = [](hsgd::CsvRecorder& to, hsgd::CsvRecorder& from) { to = std::move(from); };
  {
    hsgd::CsvRecorder first(path, {"run"});
    first.set_tags({"a"});
    first.record(one_level_record());
    move_assign(first, first);  // self-move: still the same recorder
    first.record(one_level_record());

    hsgd::CsvRecorder second(std::move(first));
    CHECK_THROWS_WITH(first.record(one_level_record()), Contains("moved from"));  // NOLINT(bugprone-use-after-move)
    second.record(one_level_record());

    hsgd::CsvRecorder third(other_path, {"run"});
    move_assign(third, second);  // third's own file is closed, second's taken over
    CHECK(third.path() == path);
    third.set_tags({"b"});
    third.record(one_level_record());
    third.close();
    CHECK_THROWS_WITH(third.record(one_level_record()), Contains("closed"));
  }
  const std::string row = "," + base_row + "\n";
  CHECK(read_all(path) == "run," + base_header + "\n" + "a" + row + "a" + row + "a" + row + "b" + row);
  CHECK(read_all(other_path).empty());  // truncated at opening, never written
  std::remove(path.c_str());
  std::remove(other_path.c_str());
}
