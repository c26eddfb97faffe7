// load_plugin: a plugin is a shared library exporting kiln_plugin_entry (kiln/plugin.h).

#include <dlfcn.h>

#include "plugins/registry.hpp"
#include "tensor/error.hpp"

namespace kiln::plugins {

void load_plugin(const std::string& path, Registry& registry) {
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* err = dlerror();
    throw Error(fmt::format("plugin {}: cannot load it: {}", path, err ? err : "unknown dlopen error"));
  }
  auto entry = reinterpret_cast<kiln_plugin_entry_fn>(dlsym(handle, KILN_PLUGIN_ENTRY_SYMBOL));
  if (entry == nullptr) {
    dlclose(handle);
    throw Error(fmt::format("plugin {}: no entry point: the library does not export '{}' (declare it with KILN_PLUGIN_EXPORT and "
              "extern \"C\")", path, KILN_PLUGIN_ENTRY_SYMBOL));
  }
  const kiln_plugin* plugin = entry();
  if (plugin == nullptr) {
    dlclose(handle);
    throw Error(fmt::format("plugin {}: {}() returned null", path, KILN_PLUGIN_ENTRY_SYMBOL));
  }
  try {
    registry.add(*plugin, path);
  } catch (...) {
    dlclose(handle);
    throw;
  }
  // The library stays loaded for the life of the process: its kernels are registered.
}

}  // namespace kiln::plugins
