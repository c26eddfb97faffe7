// Plugins that Kiln must refuse, one per KILN_BAD_* definition (tests/CMakeLists.txt builds each);
// KILN_BAD_FAILS loads, and its kernel fails when run; KILN_BAD_THROWS's entry point throws.

#include <cstdio>
#include <stdexcept>

#include "kiln/plugin.h"

namespace {

int supports(const kiln_recurrent_problem*, char*, size_t) { return 0; }
size_t bytes(const kiln_recurrent_problem*) { return 0; }
[[maybe_unused]] int forward(const kiln_host*, const kiln_recurrent_problem*, const kiln_tensor*, const kiln_tensor*,
                             const kiln_tensor*, kiln_tensor*, kiln_tensor*, void*, void*, char* err, size_t size) {
  std::snprintf(err, size, "deliberate failure");
  return 1;
}
int backward(const kiln_host*, const kiln_recurrent_problem*, const kiln_tensor*, const kiln_tensor*, const kiln_tensor*,
             void*, const kiln_tensor*, const kiln_tensor*, kiln_tensor*, kiln_tensor*, kiln_tensor*, void*, char*, size_t) {
  return 1;
}
const char* const kNames[] = {"weight_ih", "weight_hh"};

#if defined(KILN_BAD_DUPLICATE)
const char* const kName = "lstm";  // Kiln's built-in kernel has it
#else
const char* const kName = "bad_kernel";
#endif

#if defined(KILN_BAD_MALFORMED)
const kiln_recurrent_kernel kKernels[] = {{kName, "no forward", 1, 2, kNames, supports, bytes, bytes, nullptr, backward}};
#else
const kiln_recurrent_kernel kKernels[] = {{kName, "fails", 1, 2, kNames, supports, bytes, bytes, forward, backward}};
#endif

#if defined(KILN_BAD_VERSION)
const kiln_plugin kPlugin{KILN_PLUGIN_ABI_VERSION + 1, "bad_version", "0", 1, kKernels, 0, nullptr};
#else
const kiln_plugin kPlugin{KILN_PLUGIN_ABI_VERSION, "bad", "0", 1, kKernels, 0, nullptr};
#endif

}  // namespace

#if defined(KILN_BAD_THROWS)
extern "C" KILN_PLUGIN_EXPORT const kiln_plugin* kiln_plugin_entry(void) { throw std::runtime_error("the entry point failed on purpose"); }
#elif !defined(KILN_BAD_NO_ENTRY)
extern "C" KILN_PLUGIN_EXPORT const kiln_plugin* kiln_plugin_entry(void) { return &kPlugin; }
#else
extern "C" KILN_PLUGIN_EXPORT const kiln_plugin* kiln_plugin_entry_misspelt(void) { return &kPlugin; }
#endif
