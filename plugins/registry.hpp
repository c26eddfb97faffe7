#pragma once
// The registry of fused recurrent kernels. Every kernel, Kiln's own included, comes through the C
// interface of kiln/plugin.h; a recurrent layer with impl Auto (or Fused) asks the registry for the
// kernel named by its cell's kernel_name(), and runs the generic graph when there is none.
//
// Built-in kernels are added by one explicit call, register_builtin(), when the global registry is
// first used (no static initialisers, which linkers drop), followed by the plugins listed in
// KILN_PLUGINS. Others are loaded with load_plugin(path).
//
//   kiln::plugins::load_plugin("build/examples/plugin/libkiln_mgu.so");
//   for (const auto* k : kiln::plugins::Registry::global().kernels()) std::cout << k->name << "\n";

#include <memory>
#include <string>
#include <vector>

#include "kiln/plugin.h"
#include "layers/rnn_cell.hpp"

namespace kiln::plugins {

/// A registered kernel: the plugin's description of it, and where it came from.
struct Kernel {
  std::string name;
  std::string plugin;       ///< the plugin's name, e.g. "builtin"
  std::string origin;       ///< "builtin" or the shared library's path
  std::string description;
  std::string op;           ///< the tape op's name, "fused_<name>"
  kiln_recurrent_kernel abi;
  std::vector<std::string> param_names;
  std::uint32_t flags = 0;  ///< kiln_kernel_flag bits (interface version 3; 0 before)
};

/// A registered attention kernel (interface version 2).
struct AttentionKernel {
  std::string name;         ///< "sdpa": scaled dot-product attention
  std::string plugin, origin, description;
  std::string op;           ///< the tape op's name, "fused_<name>"
  kiln_attention_kernel abi;
};

class Registry {
 public:
  /// The process-wide registry: the built-in kernels, then the plugins in KILN_PLUGINS.
  static Registry& global();

  /// Registers every kernel of `plugin` (all or none). Refuses, naming the plugin and `origin`, a wrong
  /// abi_version, a malformed kernel, or a kernel name already registered.
  void add(const kiln_plugin& plugin, const std::string& origin);
  /// The kernel named cell.kernel_name() if it can take the cell's parameters; otherwise null, with
  /// the reason in *why.
  const Kernel* find(const nn::RecurrentCell& cell, std::string* why = nullptr) const;
  /// The kernel called `name`, or null.
  const Kernel* get(const std::string& name) const;
  std::vector<const Kernel*> kernels() const;
  /// The attention kernel called `name` ("sdpa" replaces scaled dot-product attention), or null.
  const AttentionKernel* attention(const std::string& name = "sdpa") const;
  std::vector<const AttentionKernel*> attention_kernels() const;

 private:
  std::vector<std::unique_ptr<Kernel>> kernels_;
  std::vector<std::unique_ptr<AttentionKernel>> attention_;
};

/// Registers Kiln's own kernels (lstm, gru, gru_reset_before, rnn_tanh, rnn_relu; attention: sdpa) in `registry`.
void register_builtin(Registry& registry);

/// Opens a plugin shared library and registers its kernels. Throws kiln::Error naming the path and
/// the problem: the file can't be opened, it has no kiln_plugin_entry, its interface version differs,
/// or one of its kernel names is taken. The registry is unchanged then.
void load_plugin(const std::string& path, Registry& registry = Registry::global());

/// Loads each path of the colon-separated list in the KILN_PLUGINS environment variable. A plugin that
/// is refused is reported on stderr and skipped: Kiln goes on with the generic graph. Returns the
/// messages of refused plugins.
std::vector<std::string> load_plugins_from_env(Registry& registry);

}  // namespace kiln::plugins
