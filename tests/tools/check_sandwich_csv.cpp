// Reads the CSV that `sandwich --csv FILE` wrote and recomputes, from the file alone, the mean
// over seeds of each run's time-averaged grad_norm_sq; exits 0 when
// local-sgd-I <= hsgd-random <= local-sgd-G holds, 1 when it does not, 2 when the file is not
// what the example documents (a missing column, scheme or value).
//
//   check_sandwich_csv sandwich.csv

#include <cmath>
#include <cstddef>
#include <exception>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <fmt/core.h>

#include <hsgd/hsgd.hpp>

namespace {

std::vector<std::string> split_line(const std::string& line) {
  std::vector<std::string> cells;
  std::stringstream stream(line);
  std::string cell;
  while (std::getline(stream, cell, ',')) cells.push_back(cell);
  if (!line.empty() && line.back() == ',') cells.emplace_back();
  return cells;
}

std::size_t column(const std::vector<std::string>& header, const std::string& name) {
  for (std::size_t k = 0; k < header.size(); ++k) {
    if (header[k] == name) return k;
  }
  throw std::runtime_error(fmt::format("the CSV has no column '{}'", name));
}

/// per_run[scheme][seed] = {sum of grad_norm_sq, count} over the rows that measured it.
using Runs = std::map<std::string, std::map<std::string, std::pair<double, int>>>;

Runs read(const std::string& path) {
  std::ifstream file(path);
  if (!file) throw std::runtime_error(fmt::format("cannot open '{}'", path));
  std::string line;
  if (!std::getline(file, line)) throw std::runtime_error("the CSV is empty");
  const auto header = split_line(line);
  for (const char* name : {"scheme", "seed", "step", "loss", "grad_norm_sq", "d_up", "d_down"}) (void)column(header, name);
  const std::size_t scheme = column(header, "scheme"), seed = column(header, "seed"),
                    gradient = column(header, "grad_norm_sq");
  Runs runs;
  while (std::getline(file, line)) {
    const auto cells = split_line(line);
    if (cells.size() != header.size()) throw std::runtime_error(fmt::format("a row has {} cells, the header {}", cells.size(), header.size()));
    if (cells[gradient].empty()) continue;  // a step where only the model space was measured
    auto& run = runs[cells[scheme]][cells[seed]];
    run.first += std::stod(cells[gradient]);
    ++run.second;
  }
  return runs;
}

std::vector<double> per_seed_means(const Runs& runs, const std::string& scheme) {
  const auto found = runs.find(scheme);
  if (found == runs.end()) throw std::runtime_error(fmt::format("the CSV has no rows of scheme '{}'", scheme));
  std::vector<double> means;
  for (const auto& [seed, run] : found->second) means.push_back(run.first / run.second);
  return means;
}

}  // namespace

int main(int argc, char** argv) try {
  if (argc != 2) throw std::runtime_error("usage: check_sandwich_csv FILE.csv");
  const Runs runs = read(argv[1]);
  const auto check = hsgd::check_sandwich(per_seed_means(runs, "local-sgd-I"), per_seed_means(runs, "hsgd-random"),
                                          per_seed_means(runs, "local-sgd-G"));
  fmt::print("{} seeds, from {}: {}\n", per_seed_means(runs, "hsgd-random").size(), argv[1], check);
  return check.holds() ? 0 : 1;
} catch (const std::exception& error) {
  fmt::print(stderr, "check_sandwich_csv: {}\n", error.what());
  return 2;
}
