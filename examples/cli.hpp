#pragma once
// A tiny command-line reader shared by the examples: `--name value` pairs, each declared with a
// default and a help line, so `--help` documents every flag.

#include <cstdint>
#include <cstdlib>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/core.h>

namespace example {

class Flags {
 public:
  Flags(int argc, char** argv, std::string_view description) : description_(description) {
    for (int i = 1; i < argc; ++i) {
      std::string_view arg = argv[i];
      if (arg == "--help" || arg == "-h") {
        help_ = true;
        continue;
      }
      if (!arg.starts_with("--") || i + 1 >= argc) throw std::invalid_argument(fmt::format("expected '--flag value', got '{}'", arg));
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

  std::string text(const std::string& name, const std::string& fallback, std::string_view help) {
    return take(name, fallback, help);
  }

  /// Every flag declared so far with its value, except `left_out`: what a checkpoint compares so
  /// that a resume runs the same study.
  [[nodiscard]] std::string configuration(const std::set<std::string>& left_out) const {
    std::string text;
    for (const auto& [name, value] : values_) {
      if (!left_out.contains(name)) text += fmt::format("{}--{} {}", text.empty() ? "" : " ", name, value);
    }
    return text;
  }

  /// After all flags are declared: prints help and returns true if asked, rejects unknown flags.
  bool help_requested() const {
    for (const auto& [name, value] : given_) {
      if (!declared_.contains(name)) throw std::invalid_argument(fmt::format("unknown flag '--{}' (try --help)", name));
    }
    if (help_) {
      fmt::print("{}\n\n", description_);
      for (const auto& line : help_lines_) fmt::print("  {}\n", line);
    }
    return help_;
  }

 private:
  std::string take(const std::string& name, const std::string& fallback, std::string_view help) {
    declared_[name] = true;
    help_lines_.push_back(fmt::format("--{:<16} {} (default {})", name, help, fallback));
    const auto found = given_.find(name);
    const std::string value = found == given_.end() ? fallback : found->second;
    values_[name] = value;
    return value;
  }

  std::string description_;
  std::map<std::string, std::string> given_;
  std::map<std::string, bool> declared_;
  std::map<std::string, std::string> values_;  // every declared flag's value
  std::vector<std::string> help_lines_;
  bool help_ = false;
};

}  // namespace example
