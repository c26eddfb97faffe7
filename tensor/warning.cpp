#include "tensor/warning.hpp"

#include <iostream>
#include <mutex>
#include <set>

namespace kiln {

bool warn_once(const std::string& message) {
  static std::mutex mutex;
  static std::set<std::string>* seen = new std::set<std::string>;
  {
    std::lock_guard<std::mutex> lock(mutex);
    if (!seen->insert(message).second) return false;
  }
  std::cerr << "kiln: warning: " << message << "\n";
  return true;
}

}  // namespace kiln
