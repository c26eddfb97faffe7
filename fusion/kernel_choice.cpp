#include "fusion/kernel_choice.hpp"

#include <atomic>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <typeindex>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "fusion/check_plugin.hpp"
#include "fusion/compiled_kernel.hpp"
#include "fusion/graph_pass.hpp"
#include "layers/cell_registry.hpp"
#include "tensor/random.hpp"

namespace kiln::plugins {

std::string parameters_mismatch(const Kernel& k, const nn::RecurrentCell& cell, const ParamMap* map) {
  if (static_cast<std::size_t>(k.abi.state_count) != cell.state_size())
    return fmt::format("kernel '{}' keeps {} state tensor(s), {} has {}", k.name, k.abi.state_count, cell.type_name(),
                       cell.state_size());
  const auto params = cell.named_parameters(/*recurse=*/false);
  auto cell_name = [&](const std::string& p) {
    if (map == nullptr) return p;
    const auto it = map->find(p);
    return it == map->end() ? std::string() : it->second;
  };
  for (const auto& p : k.param_names) {
    bool present = p.rfind("bias", 0) == 0;  // biases are optional (problem.has_bias), weights are not
    for (const auto& [param, value] : params) present = present || param == cell_name(p);
    if (!present) return fmt::format("kernel '{}' needs parameter '{}', which {} lacks", k.name, p, cell.type_name());
  }
  for (const auto& [param, value] : params) {
    bool known = false;
    for (const auto& p : k.param_names) known = known || cell_name(p) == param;
    if (!known)
      return fmt::format("kernel '{}' takes parameters {} but {} has '{}'", k.name, fmt::join(k.param_names, ", "),
                         cell.type_name(), param);
  }
  return "";
}

namespace {

std::atomic<bool> compile_cells{true};

struct Proven {
  std::shared_ptr<const Kernel> kernel;
  std::string how, why_not;
};

// What a compiled kernel is called: the registered name of the cell that compiles to the same program
// (lstm_cifg, not the GreffLSTMCell that all eight of Greff's variants share), else the cell's type.
// `key` is a cell's class and program listing (compiled_choice); called under compiled_choice's lock.
std::string compiled_name(const std::string& key, const std::string& type_name) {
  static std::map<std::string, std::string> names;  // key -> registered name
  static std::size_t seen = 0;                     // registered cells already read
  const auto cells = nn::CellRegistry::global().cells();
  for (; seen < cells.size(); ++seen) {
    try {
      const auto cell = cells[seen]->make(3, 4, nn::RecurrentOptions(3, 4));
      const CellProgram program = compile_cell(*cell);
      if (program.ok()) names.emplace(cell->class_name() + "\n" + program.listing(), cells[seen]->name);
    } catch (const std::exception&) {  // a cell that cannot be made at this size names no kernel
    }
  }
  const auto it = names.find(key);
  return it != names.end() ? it->second : type_name;
}

}  // namespace

void set_compiled_kernels(bool on) { compile_cells = on; }
bool compiled_kernels_enabled() { return compile_cells; }

KernelChoice compiled_choice(const nn::RecurrentCell& cell, const CellMaker& make) {
  KernelChoice choice;
  // The cells made here draw their initial weights from the default generator: put it back, so a run's
  // random numbers do not depend on whether a proof ran (Determinism).
  const KeepDefaultGenerator keep;
  // One proof per cell class and program: the program tells apart cells of one class that compute
  // differently (options, variants).
  static std::recursive_mutex mutex;
  static std::map<std::string, Proven> proven;  // kernels live as long as the process: tape records name their op
  std::shared_ptr<nn::RecurrentCell> probe;
  std::string key;
  try {
    probe = make(3, 4, true);
    const CellProgram program = compile_cell(*probe);
    key = probe->class_name() + "\n" + (program.ok() ? program.listing() : program.stopped);
  } catch (const std::exception& e) {
    choice.why_not = fmt::format("no cell to compile: {}", e.what());
    return choice;
  }
  std::lock_guard<std::recursive_mutex> lock(mutex);
  auto it = proven.find(key);
  if (it == proven.end()) {
    Proven p;
    std::string why;
    p.kernel = compiled_kernel(compiled_name(key, cell.type_name()), make, &why);
    if (p.kernel == nullptr) {
      p.why_not = why;
    } else {
      CheckOptions o;
      o.realistic = false;
      const CheckReport r = check_plugin(*p.kernel, o, make);
      if (r.passed()) {
        p.how = fmt::format("{} compiled from its step and proven against its generic graph ({} cases): kernel '{}'", cell.class_name(),
                            r.cases, p.kernel->name);
      } else {
        p.why_not = fmt::format("{} compiled, but the compiled kernel does not match its generic graph: {}", cell.class_name(),
                                r.first_failure());
        p.kernel = nullptr;
      }
    }
    it = proven.emplace(key, std::move(p)).first;
  }
  choice.kernel = it->second.kernel.get();
  choice.how = it->second.how;
  choice.why_not = it->second.why_not;
  return choice;
}

KernelChoice choose_kernel(nn::RecurrentCell& cell, const Registry& registry, const CellMaker& make) {
  KernelChoice choice;
  std::string claim_note;
  if (const nn::KernelClaim claim = cell.kernel_claim()) {
    const Kernel* k = registry.get(claim.kernel);
    const bool trusted = claim.claimed_by == std::type_index(typeid(cell));
    const std::string mismatch = k ? parameters_mismatch(*k, cell) : "";
    if (k == nullptr) {
      claim_note = fmt::format("{} claims kernel '{}', which no plugin provides", cell.type_name(), claim.kernel);
    } else if (!mismatch.empty()) {
      claim_note = mismatch;
    } else if (trusted) {
      choice.kernel = k;
      choice.how = fmt::format("{} claims kernel '{}' from plugin '{}'", cell.type_name(), k->name, k->plugin);
      return choice;
    } else {
      // A subclass inherited the claim: confirm that the kernel computes this class's step.
      const CheckReport r = confirm_kernel(*k, cell);
      if (r.passed()) {
        choice.kernel = k;
        choice.how = fmt::format("{} inherits the claim to kernel '{}' and was confirmed equal to it numerically "
                                 "(outputs and gradients)", cell.class_name(), k->name);
        return choice;
      }
      choice.claim_refused = true;
      claim_note = fmt::format("{} inherits the claim to kernel '{}' but does not compute the same step: {}", cell.class_name(),
                               k->name, r.first_failure());
    }
  }
  // Note [Graph pass]: look for a kernel computing the same step.
  CellMatch match = match_cell(cell, registry);
  if (match.kernel != nullptr) {
    choice.kernel = match.kernel;
    choice.params = std::move(match.params);
    choice.how = match.report;
    return choice;
  }
  choice.why_not = claim_note.empty() ? match.report : claim_note + "; " + match.report;
  if (make && compile_cells) {  // Note [Kernel claims] 4: compiled from the step
    KernelChoice compiled = compiled_choice(cell, make);
    if (compiled.kernel != nullptr) {
      compiled.claim_refused = choice.claim_refused;
      return compiled;
    }
    choice.why_not += "; " + compiled.why_not;
  }
  return choice;
}

}  // namespace kiln::plugins
