// load_plugin: a plugin is a shared library exporting kiln_plugin_entry (fused kernels, kiln/plugin.h),
// kiln_register_cells (generic cells, KILN_REGISTER_CELLS in layers/cell_registry.hpp), or both.

#include <dlfcn.h>

#include <algorithm>
#include <exception>
#include <utility>

#include "plugins/registry.hpp"
#include "tensor/error.hpp"

namespace kiln::plugins {
namespace {

std::vector<Library>& libraries() {
  static auto* list = new std::vector<Library>;  // never destroyed: the libraries stay loaded
  return *list;
}

// Which registries already hold a library's kernels, so loading it again adds nothing.
std::vector<std::pair<void*, const Registry*>>& registered() {
  static auto* list = new std::vector<std::pair<void*, const Registry*>>;
  return *list;
}

// Closes the library unless released: an error on the way leaves nothing loaded.
struct Handle {
  void* h;
  ~Handle() {
    if (h != nullptr) dlclose(h);
  }
};

template <class F>
F symbol(void* handle, const char* name) {
  return reinterpret_cast<F>(dlsym(handle, name));
}

}  // namespace

const std::vector<Library>& loaded_libraries() { return libraries(); }

void load_plugin(const std::string& path, Registry& registry, bool from_env) {
  Handle handle{dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL)};
  if (handle.h == nullptr) {
    const char* err = dlerror();
    throw Error(fmt::format("plugin {}: cannot load it: {}", path, err ? err : "unknown dlopen error"));
  }
  const bool known = std::any_of(libraries().begin(), libraries().end(), [&](const Library& l) { return l.handle == handle.h; });
  const bool has_kernels = std::find(registered().begin(), registered().end(), std::make_pair(handle.h, static_cast<const Registry*>(&registry))) !=
                           registered().end();
  if (known && has_kernels) return;  // loaded before: dlclose drops the extra reference
  auto entry = symbol<kiln_plugin_entry_fn>(handle.h, KILN_PLUGIN_ENTRY_SYMBOL);
  auto cells = symbol<void (*)(void*)>(handle.h, "kiln_register_cells");
  auto cells_version = symbol<int (*)()>(handle.h, "kiln_cell_library_version");
  if (entry == nullptr && cells == nullptr)
    throw Error(fmt::format("plugin {}: no entry point: the library exports neither '{}' (fused kernels: declare it with "
                            "KILN_PLUGIN_EXPORT and extern \"C\") nor 'kiln_register_cells' (cells: KILN_REGISTER_CELLS)",
                            path, KILN_PLUGIN_ENTRY_SYMBOL));
  if (cells != nullptr) {
    const int version = cells_version ? cells_version() : 0;
    KILN_CHECK(version == KILN_CELL_LIBRARY_VERSION, "plugin {}: its cells are built for Kiln's cell library interface "
               "version {}, this Kiln speaks version {}; rebuild it against this Kiln", path, version, KILN_CELL_LIBRARY_VERSION);
  }
  if (entry != nullptr) {
    const kiln_plugin* plugin = nullptr;
    try {
      plugin = entry();
    } catch (const std::exception& e) {
      throw Error(fmt::format("plugin {}: {}() threw: {}", path, KILN_PLUGIN_ENTRY_SYMBOL, e.what()));
    } catch (...) {
      throw Error(fmt::format("plugin {}: {}() threw an exception", path, KILN_PLUGIN_ENTRY_SYMBOL));
    }
    KILN_CHECK(plugin != nullptr, "plugin {}: {}() returned null", path, KILN_PLUGIN_ENTRY_SYMBOL);
    registry.add(*plugin, path);
    registered().emplace_back(handle.h, &registry);
  }
  if (!known) {
    libraries().push_back(Library{path, handle.h, from_env, cells});
    handle.h = nullptr;  // stays loaded for the life of the process: its kernels and cells are registered
  }
}

}  // namespace kiln::plugins
