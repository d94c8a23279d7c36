#pragma once
// What every example's main does: `--name value` flags, each declared with a default and a help line
// (so `--help` documents them), the checkpoint flags read into the options of its hsgd::Study, the rest.

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/core.h>

#include <hsgd/hsgd.hpp>

namespace example {

class Flags {
 public:
  Flags(int argc, char** argv, std::string_view description) : description_(description) {
    for (int i = 1; i < argc; ++i) {
      std::string_view arg = argv[i];
      if (arg == "--help" || arg == "-h")
        help_ = true;
      else if (!arg.starts_with("--") || i + 1 >= argc)
        throw std::invalid_argument(fmt::format("expected '--flag value', got '{}'", arg));
      else
        given_[std::string(arg.substr(2))] = argv[++i];
    }
  }

  std::int64_t integer(const std::string& name, std::int64_t fallback, std::string_view help) {
    const std::string text = take(name, std::to_string(fallback), help);
    std::size_t used = 0;
    const std::int64_t value = std::stoll(text, &used);
    if (used != text.size()) throw std::invalid_argument(fmt::format("'--{}' expects an integer, got '{}'", name, text));
    return value;
  }

  double real(const std::string& name, double fallback, std::string_view help) {
    const std::string text = take(name, fmt::format("{}", fallback), help);
    std::size_t used = 0;
    const double value = std::stod(text, &used);
    if (used != text.size()) throw std::invalid_argument(fmt::format("'--{}' expects a number, got '{}'", name, text));
    return value;
  }

  std::string text(const std::string& name, const std::string& fallback, std::string_view help) { return take(name, fallback, help); }

  /// A comma-separated subset of `choices`, or all of them (the default): returned in the order of
  /// `choices`; a name that is none of them is refused.
  std::vector<std::string> subset(const std::string& name, const std::vector<std::string>& choices, std::string_view help) {
    const std::string list = take(name, "all", help);
    std::vector<std::string> chosen;
    std::string known;
    for (const auto& choice : choices) {
      if (list == "all" || ("," + list + ",").find("," + choice + ",") != std::string::npos) chosen.push_back(choice);
      known += (known.empty() ? "" : ", ") + choice;
    }
    for (std::size_t start = 0, end = 0; list != "all" && start <= list.size(); start = end + 1) {
      end = std::min(list.find(',', start), list.size());
      if (std::find(choices.begin(), choices.end(), list.substr(start, end - start)) == choices.end())
        throw std::invalid_argument(fmt::format("'--{}' names '{}', which is none of {}", name, list.substr(start, end - start), known));
    }
    return chosen;
  }

  /// Every flag declared so far with its value, except `left_out`: what a checkpoint compares so
  /// that a resume runs the same study.
  [[nodiscard]] std::string configuration(const std::set<std::string>& left_out) const {
    std::string text;
    for (const auto& [name, value] : values_)
      if (!left_out.contains(name)) text += fmt::format("{}--{} {}", text.empty() ? "" : " ", name, value);
    return text;
  }

  /// After all flags are declared: prints help and returns true if asked, rejects unknown flags.
  bool help_requested() const {
    for (const auto& [name, value] : given_)
      if (!values_.contains(name)) throw std::invalid_argument(fmt::format("unknown flag '--{}' (try --help)", name));
    if (help_) {
      fmt::print("{}\n\n", description_);
      for (const auto& line : help_lines_) fmt::print("  {}\n", line);
    }
    return help_;
  }

 private:
  std::string take(const std::string& name, const std::string& fallback, std::string_view help) {
    help_lines_.push_back(fmt::format("--{:<16} {} (default {})", name, help, fallback));
    const auto found = given_.find(name);
    const std::string value = found == given_.end() ? fallback : found->second;
    values_[name] = value;
    return value;
  }

  std::string description_;
  std::map<std::string, std::string> given_;
  std::map<std::string, std::string> values_;  // every declared flag's value
  std::vector<std::string> help_lines_;
  bool help_ = false;
};

/// Reads `--checkpoint FILE --checkpoint-every K --keep K --resume FILE` (declare them last) and
/// returns the study's options: the CSV file `csv` with the tag columns `tags` and `levels`
/// per-level columns, and a resume refused when any flag but these, --csv and --threads differs.
inline hsgd::StudyOptions study_options(Flags& flags, std::string csv, std::vector<std::string> tags, hsgd::Index levels) {
  hsgd::StudyOptions options{.csv = std::move(csv), .tags = std::move(tags), .levels = levels};
  options.checkpoint =
      flags.text("checkpoint", "", "write checkpoints to this file (at the end of every run, and on SIGINT/SIGTERM)");
  options.checkpoint_every = flags.integer("checkpoint-every", 0, "also write the checkpoint every K steps of a run (0: never)");
  options.keep = flags.integer("keep", 1, "checkpoints to keep: FILE, FILE.1, ... (newest first)");
  options.resume = flags.text("resume", "", "continue the example from this checkpoint (same flags otherwise)");
  options.settings = {
      {"example flags", flags.configuration({"checkpoint", "checkpoint-every", "keep", "resume", "threads", "csv"})}};
  return options;
}

/// What every example's main does. `read(flags)` declares every flag (the checkpoint flags last,
/// through study_options) and returns the settings; with --help that is all. Otherwise it prints
/// `settings.header()`, makes the study of `settings.study` (which may say that it resumes), calls
/// `run(settings, study)`, false when a signal stopped the study (the exit status is then 128 + the
/// signal), and ends with `report(settings, study)` and `wrote FILE`. An error is reported as
/// `program: message` on stderr, with status 1.
template <class Read, class Run, class Report>
int main(int argc, char** argv, std::string_view description, Read read, Run run, Report report) {
  try {
    Flags flags(argc, argv, description);
    const auto settings = read(flags);
    if (flags.help_requested()) return 0;
    fmt::print("{}\n", settings.header());
    std::fflush(stdout);
    hsgd::Study study(settings.study);
    if (!run(settings, study)) return study.exit_code();
    report(settings, study);
    if (study.csv() != nullptr) fmt::print("wrote {}\n", study.csv()->path());
    return 0;
  } catch (const std::exception& error) {
    const std::string_view program = argc > 0 ? argv[0] : "example";
    fmt::print(stderr, "{}: {}\n", program.substr(program.find_last_of('/') + 1), error.what());
    return 1;
  }
}

}  // namespace example
