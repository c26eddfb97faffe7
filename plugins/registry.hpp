#pragma once
// The registry of fused recurrent kernels. A recurrent layer with impl Auto (or Fused) asks it for a
// kernel that supports its cell; the generic graph runs otherwise.
//
// Built-in kernels are added by one explicit function, register_builtin(), which the global registry
// calls when it is first used (no static initialisers, which linkers drop). External plugins loaded
// from shared libraries will register here too.
//
//   for (const auto* k : kiln::plugins::Registry::global().kernels()) std::cout << k->name << "\n";

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "layers/rnn_cell.hpp"

namespace kiln::plugins {

struct RecurrentKernel {
  std::string name;         ///< e.g. "lstm"
  std::string plugin;       ///< who supplied it, e.g. "builtin"
  std::string description;
  /// Whether the kernel can run this cell (with these options); sets *why when it cannot.
  std::function<bool(const nn::RecurrentCell& cell, std::string* why)> supports;
  /// Runs one layer direction over x [T, B, I] from `state`; returns the output [T, B, H] and puts the
  /// final state in `state`. lengths: one per sequence or empty.
  std::function<Variable(nn::RecurrentCell& cell, const Variable& x, nn::State& state,
                         const std::vector<std::int64_t>& lengths, bool reverse)> run;
};

class Registry {
 public:
  /// The process-wide registry, with the built-in kernels registered.
  static Registry& global();

  /// Adds a kernel; a name already taken is refused with an error naming both plugins.
  void add(RecurrentKernel kernel);
  /// The first kernel that supports `cell`, or null with *why listing each kernel's reason.
  const RecurrentKernel* find(const nn::RecurrentCell& cell, std::string* why = nullptr) const;
  std::vector<const RecurrentKernel*> kernels() const;

 private:
  std::vector<std::unique_ptr<RecurrentKernel>> kernels_;
};

/// Registers Kiln's own kernels (the fused LSTM) in `registry`.
void register_builtin(Registry& registry);

}  // namespace kiln::plugins
