#pragma once
// The registry of fused kernels. Every kernel, Kiln's own included, comes through the C interface of
// kiln/plugin.h, and is named after the cell it claims to equal (nn::CellRegistry). This runtime knows
// nothing of layers: which kernel runs for a cell is decided above it (fusion/kernel_choice.hpp).
//
// Built-in kernels are added by one explicit call, register_builtin(), when the global registry is
// first used (no static initialisers, which linkers drop), followed by the plugins listed in
// KILN_PLUGINS. Others are loaded with load_plugin(path).
//
//   kiln::plugins::load_plugin("build/examples/plugin/kiln_mgu.so");
//   for (const auto* k : kiln::plugins::Registry::global().kernels()) std::cout << k->name << "\n";

#include <memory>
#include <string>
#include <vector>

#include "kiln/plugin.h"

/// The version of the C++ interface a cell library (KILN_REGISTER_CELLS, layers/cell_registry.hpp) is
/// built against; Kiln refuses a library built against another.
#define KILN_CELL_LIBRARY_VERSION 1

namespace kiln::plugins {

/// A registered kernel: the plugin's description of it, and where it came from.
/// A recurrent kernel that runs inside Kiln with state of its own (a compiled cell: fusion/compiled_kernel.hpp):
/// the contract of kiln_recurrent_kernel's functions (kiln/plugin.h), as calls on an object.
class InProcessKernel {
 public:
  virtual ~InProcessKernel() = default;
  virtual int supports(const kiln_recurrent_problem* p, char* why, size_t why_size) const = 0;
  virtual size_t saved_bytes(const kiln_recurrent_problem* p) const = 0;
  virtual size_t work_bytes(const kiln_recurrent_problem* p) const = 0;
  virtual int forward(const kiln_host* host, const kiln_recurrent_problem* p, const kiln_tensor* x, const kiln_tensor* states,
                      const kiln_tensor* params, kiln_tensor* y, kiln_tensor* final_states, void* saved, void* work, char* err,
                      size_t err_size) const = 0;
  virtual int backward(const kiln_host* host, const kiln_recurrent_problem* p, const kiln_tensor* x, const kiln_tensor* states,
                       const kiln_tensor* params, void* saved, const kiln_tensor* dy, const kiln_tensor* d_final, kiln_tensor* dx,
                       kiln_tensor* d_states, kiln_tensor* d_params, void* work, char* err, size_t err_size) const = 0;
};

struct Kernel {
  std::string name;
  std::string plugin;       ///< the plugin's name, e.g. "builtin"
  std::string origin;       ///< "builtin" or the shared library's path
  std::string description;
  std::string op;           ///< the tape op's name, "fused_<name>"
  kiln_recurrent_kernel abi;
  std::vector<std::string> param_names;
  std::uint32_t flags = 0;  ///< kiln_kernel_flag bits (interface version 3; 0 before)
  /// Set for a kernel that runs in Kiln (a compiled cell): called instead of abi's functions.
  std::shared_ptr<const InProcessKernel> in_process;
  int supports(const kiln_recurrent_problem* p, char* why, size_t n) const {
    return in_process ? in_process->supports(p, why, n) : abi.supports(p, why, n);
  }
  size_t saved_bytes(const kiln_recurrent_problem* p) const { return in_process ? in_process->saved_bytes(p) : abi.saved_bytes(p); }
  size_t work_bytes(const kiln_recurrent_problem* p) const { return in_process ? in_process->work_bytes(p) : abi.work_bytes(p); }
  int forward(const kiln_host* host, const kiln_recurrent_problem* p, const kiln_tensor* x, const kiln_tensor* states,
              const kiln_tensor* params, kiln_tensor* y, kiln_tensor* finals, void* saved, void* work, char* err, size_t n) const {
    return in_process ? in_process->forward(host, p, x, states, params, y, finals, saved, work, err, n)
                      : abi.forward(host, p, x, states, params, y, finals, saved, work, err, n);
  }
  int backward(const kiln_host* host, const kiln_recurrent_problem* p, const kiln_tensor* x, const kiln_tensor* states,
               const kiln_tensor* params, void* saved, const kiln_tensor* dy, const kiln_tensor* d_final, kiln_tensor* dx,
               kiln_tensor* d_states, kiln_tensor* d_params, void* work, char* err, size_t n) const {
    return in_process ? in_process->backward(host, p, x, states, params, saved, dy, d_final, dx, d_states, d_params, work, err, n)
                      : abi.backward(host, p, x, states, params, saved, dy, d_final, dx, d_states, d_params, work, err, n);
  }
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
  /// The kernel called `name`, or null.
  const Kernel* get(const std::string& name) const;
  std::vector<const Kernel*> kernels() const;
  /// The attention kernel called `name` ("sdpa" replaces scaled dot-product attention), or null.
  const AttentionKernel* attention(const std::string& name = "sdpa") const;
  std::vector<const AttentionKernel*> attention_kernels() const;
  /// Grows by one with every plugin added: a choice made from the registry is stale when it moved.
  std::uint64_t generation() const { return generation_; }

 private:
  std::uint64_t generation_ = 0;
  std::vector<std::unique_ptr<Kernel>> kernels_;
  std::vector<std::unique_ptr<AttentionKernel>> attention_;
};

/// The longest name a plugin, kernel or cell may have.
constexpr std::size_t kMaxNameLength = 64;
/// Why `name` cannot name a plugin, kernel or cell ("" when it can): 1 to 64 letters, digits, '_', '-'
/// or '.', starting with a letter. Names end up in op names, file names, command lines and configs.
std::string name_problem(const char* name);

/// Registers Kiln's own kernels (lstm, gru, gru_reset_before, rnn_tanh, rnn_relu; attention: sdpa) in `registry`.
void register_builtin(Registry& registry);

/// A plugin library Kiln has opened. Its fused kernels (kiln_plugin_entry) are registered when it is
/// loaded; its cells (kiln_register_cells, from KILN_REGISTER_CELLS) when the cell registry is next
/// consulted (Note [Cell libraries], layers/cell_registry.cpp).
struct Library {
  std::string path;
  void* handle = nullptr;
  bool from_env = false;                       ///< listed in KILN_PLUGINS: refused cells are a warning
  void (*register_cells)(void*) = nullptr;     ///< takes an nn::CellRegistry*; null when it has no cells
};
/// Every library loaded so far, in load order.
const std::vector<Library>& loaded_libraries();

/// Opens a plugin shared library: registers its kernels in `registry` and records it, so its cells are
/// registered too. Loading a library again adds nothing. Throws kiln::Error naming the path and the
/// problem: the file can't be opened, it exports neither kiln_plugin_entry nor kiln_register_cells, its
/// interface version differs, its entry point fails, or one of its kernel names is taken. Nothing is
/// registered then.
void load_plugin(const std::string& path, Registry& registry = Registry::global(), bool from_env = false);

/// Loads each path of the colon-separated list in the KILN_PLUGINS environment variable. A plugin that
/// is refused is reported on stderr and skipped: Kiln goes on with the generic graph. Returns the
/// messages of refused plugins.
std::vector<std::string> load_plugins_from_env(Registry& registry);

}  // namespace kiln::plugins
