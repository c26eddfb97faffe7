// `kiln bench` without libtorch: Kiln was built without Debian's libtorch-dev.

#include "bench/bench_model.hpp"

namespace kiln::bench {

std::unique_ptr<Model> make_torch(const std::string&, const Config&, std::string* why) {
  if (why) *why = "Kiln was built without libtorch (apt-get install libtorch-dev, then rebuild)";
  return nullptr;
}

void set_torch_threads(int) {}

std::string torch_version() { return ""; }

}  // namespace kiln::bench
