#include "plugins/registry.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "plugins/builtin/builtin.hpp"
#include "tensor/error.hpp"
#include "tensor/warning.hpp"

namespace kiln::plugins {

Registry& Registry::global() {
  static Registry* registry = [] {
    auto* r = new Registry;  // never destroyed: kernels may be used during static destruction
    register_builtin(*r);
    load_plugins_from_env(*r);
    return r;
  }();
  return *registry;
}

namespace {

// Text from a plugin, shown to users: at most `most` characters, control characters as '?'.
std::string printable(const char* text, std::size_t most = 200) {
  if (text == nullptr) return "";
  std::string out(text, ::strnlen(text, most));
  for (char& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  return out;
}

std::string check_kernel(const kiln_recurrent_kernel& k) {
  if (k.name == nullptr || *k.name == '\0') return "a kernel has no name";
  const std::string name = printable(k.name);
  if (const std::string problem = name_problem(k.name); !problem.empty()) return fmt::format("kernel {}", problem);
  if (!k.supports || !k.saved_bytes || !k.work_bytes || !k.forward || !k.backward)
    return fmt::format("kernel '{}' lacks one of supports, saved_bytes, work_bytes, forward, backward", name);
  if (k.state_count != 1 && k.state_count != 2)
    return fmt::format("kernel '{}' has state_count {} (must be 1 or 2)", name, k.state_count);
  if (k.param_count < 0 || k.param_count > 64 || (k.param_count > 0 && k.param_names == nullptr))
    return fmt::format("kernel '{}' has param_count {} without matching param_names", name, k.param_count);
  for (int i = 0; i < k.param_count; ++i)
    if (k.param_names[i] == nullptr) return fmt::format("kernel '{}': param_names[{}] is null", name, i);
  return "";
}

}  // namespace

std::string name_problem(const char* name) {
  if (name == nullptr || *name == '\0') return "name is empty";
  const std::size_t length = ::strnlen(name, kMaxNameLength + 1);
  const auto ok = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.'; };
  const bool letter = std::isalpha(static_cast<unsigned char>(name[0])) != 0;
  if (length <= kMaxNameLength && letter && std::all_of(name, name + length, ok)) return "";
  return fmt::format("name '{}{}' is not a name: {} to {} letters, digits, '_', '-' or '.', starting with a letter",
                     printable(name, 40), length > 40 ? "..." : "", 1, kMaxNameLength);
}

void Registry::add(const kiln_plugin& plugin, const std::string& origin) {
  const std::string who = fmt::format("plugin '{}' ({})", plugin.name ? printable(plugin.name, 64) : "?", origin);
  KILN_CHECK(plugin.abi_version >= KILN_PLUGIN_MIN_ABI_VERSION && plugin.abi_version <= KILN_PLUGIN_ABI_VERSION,
             "{}: built for plugin interface version {}, this Kiln speaks versions {} to {}; rebuild it against this "
             "Kiln's kiln/plugin.h", who, plugin.abi_version, KILN_PLUGIN_MIN_ABI_VERSION, KILN_PLUGIN_ABI_VERSION);
  KILN_CHECK(plugin.name != nullptr && *plugin.name != '\0', "{}: the plugin has no name", who);
  KILN_CHECK(name_problem(plugin.name).empty(), "{}: the plugin's {}", who, name_problem(plugin.name));
  KILN_CHECK(plugin.kernel_count >= 0 && (plugin.kernel_count == 0 || plugin.kernels != nullptr),
             "{}: kernel_count is {} but kernels is {}", who, plugin.kernel_count, plugin.kernels ? "set" : "null");
  std::vector<std::unique_ptr<Kernel>> added;
  for (int i = 0; i < plugin.kernel_count; ++i) {
    const kiln_recurrent_kernel& k = plugin.kernels[i];
    const std::string problem = check_kernel(k);
    KILN_CHECK(problem.empty(), "{}: {}", who, problem);
    const Kernel* taken = get(k.name);
    for (const auto& a : added)
      if (a->name == k.name) taken = a.get();
    KILN_CHECK(taken == nullptr, "{}: kernel '{}' is already registered by plugin '{}' ({})", who, k.name,
               taken ? taken->plugin : "", taken ? taken->origin : "");
    auto kernel = std::make_unique<Kernel>();
    kernel->name = k.name;
    kernel->plugin = plugin.name;
    kernel->origin = origin;
    kernel->description = printable(k.description);
    kernel->op = "fused_" + kernel->name;
    kernel->abi = k;
    for (int p = 0; p < k.param_count; ++p) kernel->param_names.emplace_back(k.param_names[p]);
    // Version 1 and 2 plugins end before kernel_flags; a flag is known from the version that added it.
    if (plugin.abi_version >= 3 && plugin.kernel_flags != nullptr) {
      kernel->flags = plugin.kernel_flags[i];
      const std::uint32_t known = KILN_KERNEL_STRIDED_SEQUENCES | (plugin.abi_version >= 4 ? KILN_KERNEL_BACKWARD_READS_Y : 0u) |
                                  (plugin.abi_version >= 5 ? KILN_KERNEL_REPORTS_DH : 0u);
      KILN_CHECK((kernel->flags & ~known) == 0, "{}: kernel '{}' declares flags {:#x} unknown to interface version {}", who,
                 k.name, kernel->flags & ~known, plugin.abi_version);
    }
    added.push_back(std::move(kernel));
  }
  // Version 1 plugins end before the attention fields.
  std::vector<std::unique_ptr<AttentionKernel>> added_attention;
  const int attention_count = plugin.abi_version >= 2 ? plugin.attention_kernel_count : 0;
  KILN_CHECK(attention_count >= 0 && (attention_count == 0 || plugin.attention_kernels != nullptr),
             "{}: attention_kernel_count is {} but attention_kernels is null", who, attention_count);
  for (int i = 0; i < attention_count; ++i) {
    const kiln_attention_kernel& k = plugin.attention_kernels[i];
    KILN_CHECK(k.name != nullptr && *k.name != '\0', "{}: an attention kernel has no name", who);
    KILN_CHECK(name_problem(k.name).empty(), "{}: attention kernel {}", who, name_problem(k.name));
    KILN_CHECK(k.supports && k.saved_bytes && k.work_bytes && k.forward && k.backward,
               "{}: attention kernel '{}' lacks one of supports, saved_bytes, work_bytes, forward, backward", who, k.name);
    const AttentionKernel* taken = attention(k.name);
    for (const auto& a : added_attention)
      if (a->name == k.name) taken = a.get();
    KILN_CHECK(taken == nullptr, "{}: attention kernel '{}' is already registered by plugin '{}' ({})", who, k.name,
               taken ? taken->plugin : "", taken ? taken->origin : "");
    added_attention.push_back(std::make_unique<AttentionKernel>(
        AttentionKernel{k.name, plugin.name, origin, printable(k.description), std::string("fused_") + k.name, k}));
  }
  for (auto& k : added) kernels_.push_back(std::move(k));
  for (auto& k : added_attention) attention_.push_back(std::move(k));
  ++generation_;
}

const AttentionKernel* Registry::attention(const std::string& name) const {
  for (const auto& k : attention_)
    if (k->name == name) return k.get();
  return nullptr;
}

std::vector<const AttentionKernel*> Registry::attention_kernels() const {
  std::vector<const AttentionKernel*> out;
  for (const auto& k : attention_) out.push_back(k.get());
  return out;
}

const Kernel* Registry::get(const std::string& name) const {
  for (const auto& k : kernels_)
    if (k->name == name) return k.get();
  return nullptr;
}

std::vector<const Kernel*> Registry::kernels() const {
  std::vector<const Kernel*> out;
  for (const auto& k : kernels_) out.push_back(k.get());
  return out;
}

void register_builtin(Registry& registry) { registry.add(builtin::plugin(), "builtin"); }

std::vector<std::string> load_plugins_from_env(Registry& registry) {
  std::vector<std::string> refused;
  const char* env = std::getenv("KILN_PLUGINS");
  if (env == nullptr) return refused;
  std::istringstream list(env);
  for (std::string path; std::getline(list, path, ':');) {
    if (path.empty()) continue;
    try {
      load_plugin(path, registry, /*from_env=*/true);
    } catch (const Error& e) {
      refused.push_back(e.what());
      warn_once(fmt::format("KILN_PLUGINS: {}; going on without it", e.what()));
    }
  }
  return refused;
}

}  // namespace kiln::plugins
