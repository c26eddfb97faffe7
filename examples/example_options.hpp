#pragma once
// What the example programs' command lines share.

#include <string>

#include <CLI/CLI.hpp>

namespace kiln::examples {

/// Refuses a negative --seed, which CLI11 would wrap to 2^64 - 1.
inline CLI::Validator seed_check() {
  return CLI::Validator(
      [](std::string& v) { return v.find('-') == std::string::npos ? std::string() : "a seed is a whole number from 0, not " + v; },
      "SEED");
}

}  // namespace kiln::examples
