#pragma once
/// @file
/// Library version.

#include <string_view>

namespace hsgd {

inline constexpr int version_major = 0;
inline constexpr int version_minor = 1;
inline constexpr int version_patch = 0;

/// The version as "major.minor.patch".
constexpr std::string_view version() noexcept { return "0.1.0"; }

}  // namespace hsgd
