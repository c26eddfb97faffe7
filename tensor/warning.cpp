#include "tensor/warning.hpp"

#include <iostream>
#include <mutex>
#include <set>

namespace kiln {

namespace {

bool print_once(const std::string& prefix, const std::string& message) {
  static std::mutex mutex;
  static std::set<std::string>* seen = new std::set<std::string>;
  {
    std::lock_guard<std::mutex> lock(mutex);
    if (!seen->insert(prefix + message).second) return false;
  }
  std::cerr << prefix << message << "\n";
  return true;
}

}  // namespace

bool warn_once(const std::string& message) { return print_once("kiln: warning: ", message); }
bool note_once(const std::string& message) { return print_once("kiln: ", message); }

}  // namespace kiln
