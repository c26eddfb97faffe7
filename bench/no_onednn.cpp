// `kiln bench` without oneDNN: Kiln was built without Debian's libdnnl-dev.

#include "bench/bench_model.hpp"

namespace kiln::bench {

std::unique_ptr<Model> make_onednn(const std::string&, const Config&, std::string* why) {
  if (why) *why = "Kiln was built without oneDNN (apt-get install libdnnl-dev, then rebuild)";
  return nullptr;
}

void set_onednn_threads(int) {}

std::string onednn_version() { return ""; }

}  // namespace kiln::bench
