#pragma once
/// @file
/// Formatting helpers shared by hsgd's reports: the fmt::formatter of a type that describes
/// itself in `brief_report()`, and a list joined from fmt::format pieces. Both build text with
/// fmt::format alone (no fmt::format_to, fmt::join or range formatting), which keeps fmt's full
/// formatting machinery out of every translation unit that includes hsgd.

#include <string>
#include <string_view>

#include <fmt/format.h>

namespace hsgd::detail {

/// The elements of `values` as `format_one(value)` writes each, separated by `separator`: what
/// fmt::join(values, separator) gives with the same format for each element, e.g.
/// `joined(v, ", ", [](double x) { return fmt::format("{:.3e}", x); })`.
template <class Values, class FormatOne>
std::string joined(const Values& values, std::string_view separator, FormatOne&& format_one) {
  std::string text;
  bool first = true;
  for (const auto& value : values) {
    if (!first) text += separator;
    first = false;
    text += format_one(value);
  }
  return text;
}

/// A formatter for any T with `std::string brief_report() const`: "{}" gives the brief report
/// (width, fill and alignment apply to it as to a string). For a type of hsgd's:
///
///   template <>
///   struct fmt::formatter<hsgd::Summary> : hsgd::detail::BriefReportFormatter<hsgd::Summary> {};
template <class T>
struct BriefReportFormatter : fmt::formatter<std::string_view> {
  template <class FormatContext>
  auto format(const T& value, FormatContext& context) const {
    return fmt::formatter<std::string_view>::format(value.brief_report(), context);
  }
};

}  // namespace hsgd::detail
