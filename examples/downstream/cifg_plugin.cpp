// The plugin's two entry points: the cell, registered by name, and its fused kernel. Kiln calls both when
// it loads kiln_cifg.so (--load, KILN_PLUGINS or kiln::plugins::load_plugin).

#include <kiln/recurrent_kernel.hpp>

#include "cifg_cell.hpp"

const kiln_recurrent_kernel& cifg_kernel();

KILN_REGISTER_CELLS(registry) {
  registry.add({"cifg", "coupled input-forget gate LSTM: c' = (1 - i) c + i g, h' = o tanh(c')", /*gates=*/3, /*states=*/2,
                [](std::int64_t in, std::int64_t hidden, const kiln::nn::RecurrentOptions& o) {
                  return std::make_shared<CIFGCell>(in, hidden, o.bias_);
                },
                "CIFG"});
}

extern "C" KILN_PLUGIN_EXPORT const kiln_plugin* kiln_plugin_entry(void) {
  static const kiln_recurrent_kernel kernels[] = {cifg_kernel()};
  static const std::uint32_t flags[] = {kiln::sdk::kRecurrentKernelFlags};  // what the SDK skeleton takes and needs
  static const kiln_plugin plugin{KILN_PLUGIN_ABI_VERSION, "cifg_example", "1.0", 1, kernels, 0, nullptr, flags};
  return &plugin;
}
