// Fuzz target: validation of what a plugin describes (kiln_plugin and its kernels, kiln/plugin.h)
// when Registry::add takes it. The bytes choose every field a plugin sets: versions, names (absent,
// empty, taken, malformed), counts, missing entry points and name arrays, flags. A plugin is either
// registered whole, each kernel as described, or refused with a kiln::Error leaving the registry as it
// was. (Counts are trusted to match the arrays given: a C interface cannot check that.)

#include <cstdint>
#include <deque>
#include <set>
#include <string>
#include <vector>

#include "fuzz/fuzz_target.hpp"
#include "plugins/registry.hpp"
#include "tensor/error.hpp"

namespace {

// Reads the fuzzer's bytes as a stream of choices; zeros once they run out.
class Choices {
 public:
  Choices(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  std::uint8_t byte() { return pos_ < size_ ? data_[pos_++] : 0; }
  std::uint32_t u32() {
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v = v << 8 | byte();
    return v;
  }
  int in(int lo, int hi) { return lo + byte() % (hi - lo + 1); }  // [lo, hi]
  bool one_in(int n) { return byte() % n == 0; }

  // A name: absent, empty, one of a few (so that they collide with each other and the built-ins), or
  // bytes of the input, whatever they hold.
  const char* name() {
    static const char* const kNames[] = {"lstm", "gru", "sdpa", "k0", "k1", "builtin", "a.b-c_9", "9lives", "with space"};
    switch (byte() % 8) {
      case 0: return nullptr;
      case 1: return "";
      case 2: case 3: case 4: return kNames[byte() % (sizeof kNames / sizeof *kNames)];
      default: return text();
    }
  }
  const char* text() {
    const int length = byte() % 80;
    std::string s;
    for (int i = 0; i < length; ++i) s.push_back(static_cast<char>(byte()));
    return strings_.emplace_back(std::move(s)).c_str();
  }

 private:
  const std::uint8_t* data_;
  std::size_t size_, pos_ = 0;
  std::deque<std::string> strings_;  // keeps the names alive: the registry copies them
};

int supports(const kiln_recurrent_problem*, char*, size_t) { return 0; }
size_t no_bytes(const kiln_recurrent_problem*) { return 0; }
int forward(const kiln_host*, const kiln_recurrent_problem*, const kiln_tensor*, const kiln_tensor*, const kiln_tensor*,
            kiln_tensor*, kiln_tensor*, void*, void*, char*, size_t) { return 0; }
int backward(const kiln_host*, const kiln_recurrent_problem*, const kiln_tensor*, const kiln_tensor*, const kiln_tensor*,
             void*, const kiln_tensor*, const kiln_tensor*, kiln_tensor*, kiln_tensor*, kiln_tensor*, void*, char*,
             size_t) { return 0; }
int attention_supports(const kiln_attention_problem*, const kiln_tensor*, char*, size_t) { return 0; }
size_t attention_bytes(const kiln_attention_problem*) { return 0; }
int attention_forward(const kiln_host*, const kiln_attention_problem*, const kiln_tensor*, const kiln_tensor*,
                      const kiln_tensor*, const kiln_tensor*, kiln_tensor*, kiln_tensor*, void*, void*, char*, size_t) {
  return 0;
}
int attention_backward(const kiln_host*, const kiln_attention_problem*, const kiln_tensor*, const kiln_tensor*,
                       const kiln_tensor*, const kiln_tensor*, void*, const kiln_tensor*, kiln_tensor*, kiln_tensor*,
                       kiln_tensor*, void*, char*, size_t) {
  return 0;
}

template <class F>
F maybe(Choices& c, F f) { return c.one_in(8) ? nullptr : f; }

struct Described {
  kiln_plugin plugin{};
  std::vector<kiln_recurrent_kernel> kernels;
  std::vector<std::vector<const char*>> param_names;
  std::vector<std::uint32_t> flags;
  std::vector<kiln_attention_kernel> attention;
};

void describe(Choices& c, Described& d) {
  kiln_plugin& p = d.plugin;
  p.abi_version = c.one_in(16) ? c.u32() : static_cast<std::uint32_t>(c.in(0, KILN_PLUGIN_ABI_VERSION + 1));
  p.name = c.name();
  p.version = c.one_in(4) ? nullptr : c.text();
  p.kernel_count = c.in(-2, 5);
  d.kernels.resize(p.kernel_count > 0 ? static_cast<std::size_t>(p.kernel_count) : 0);
  d.param_names.resize(d.kernels.size());
  for (std::size_t i = 0; i < d.kernels.size(); ++i) {
    kiln_recurrent_kernel& k = d.kernels[i];
    k.name = c.name();
    k.description = c.one_in(4) ? nullptr : c.text();
    k.state_count = c.in(-1, 3);
    k.param_count = c.in(-2, 67);
    for (int n = 0; n < k.param_count; ++n) d.param_names[i].push_back(c.one_in(32) ? nullptr : c.name());
    if (k.param_count > 0 && !c.one_in(8)) k.param_names = d.param_names[i].data();
    k.supports = maybe(c, supports);
    k.saved_bytes = maybe(c, no_bytes);
    k.work_bytes = maybe(c, no_bytes);
    k.forward = maybe(c, forward);
    k.backward = maybe(c, backward);
  }
  p.kernels = c.one_in(8) ? nullptr : d.kernels.data();
  for (std::size_t i = 0; i < d.kernels.size(); ++i) d.flags.push_back(c.one_in(2) ? 0u : c.u32() & 0x7u);
  p.kernel_flags = c.one_in(2) ? nullptr : d.flags.data();
  p.attention_kernel_count = c.in(-2, 3);
  d.attention.resize(p.attention_kernel_count > 0 ? static_cast<std::size_t>(p.attention_kernel_count) : 0);
  for (kiln_attention_kernel& k : d.attention) {
    k.name = c.name();
    k.description = c.one_in(4) ? nullptr : c.text();
    k.supports = maybe(c, attention_supports);
    k.saved_bytes = maybe(c, attention_bytes);
    k.work_bytes = maybe(c, attention_bytes);
    k.forward = maybe(c, attention_forward);
    k.backward = maybe(c, attention_backward);
  }
  p.attention_kernels = c.one_in(8) ? nullptr : d.attention.data();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using kiln::plugins::Registry;
  kiln::fuzz::bound_kiln();
  Choices choices(data, size);
  Registry registry;
  if (choices.one_in(2)) kiln::plugins::register_builtin(registry);
  Described d;
  describe(choices, d);
  const std::size_t kernels = registry.kernels().size(), attention = registry.attention_kernels().size();
  const std::uint64_t generation = registry.generation();
  bool accepted = true;
  try {
    registry.add(d.plugin, "fuzz.so");
  } catch (const kiln::Error&) {
    accepted = false;
  }
  if (!accepted) {
    KILN_FUZZ_EXPECT(registry.kernels().size() == kernels && registry.attention_kernels().size() == attention &&
                         registry.generation() == generation,
                     "a refused plugin changed the registry");
    return 0;
  }
  const std::size_t count = d.plugin.kernel_count > 0 ? static_cast<std::size_t>(d.plugin.kernel_count) : 0;
  const std::size_t attention_count =
      d.plugin.abi_version >= 2 && d.plugin.attention_kernel_count > 0 ? static_cast<std::size_t>(d.plugin.attention_kernel_count) : 0;
  KILN_FUZZ_EXPECT(registry.kernels().size() == kernels + count, "a kernel of an accepted plugin is missing");
  KILN_FUZZ_EXPECT(registry.attention_kernels().size() == attention + attention_count, "an attention kernel is missing");
  KILN_FUZZ_EXPECT(kiln::plugins::name_problem(d.plugin.name).empty(), "a plugin with a malformed name was accepted");
  std::set<std::string> names;
  for (const auto* k : registry.kernels()) {
    KILN_FUZZ_EXPECT(names.insert(k->name).second, "two kernels of one name");
    KILN_FUZZ_EXPECT(kiln::plugins::name_problem(k->name.c_str()).empty(), "a kernel with a malformed name was accepted");
    KILN_FUZZ_EXPECT(k->param_names.size() == static_cast<std::size_t>(k->abi.param_count), "parameter names lost");
    KILN_FUZZ_EXPECT(k->abi.state_count == 1 || k->abi.state_count == 2, "a state count other than 1 or 2");
    KILN_FUZZ_EXPECT(k->abi.supports && k->abi.saved_bytes && k->abi.work_bytes && k->abi.forward && k->abi.backward,
                     "a kernel without one of its entry points");
    for (char ch : k->description) KILN_FUZZ_EXPECT(static_cast<unsigned char>(ch) >= 0x20, "a control character in a description");
  }
  names.clear();
  for (const auto* k : registry.attention_kernels()) {
    KILN_FUZZ_EXPECT(names.insert(k->name).second, "two attention kernels of one name");
    KILN_FUZZ_EXPECT(k->abi.supports && k->abi.saved_bytes && k->abi.work_bytes && k->abi.forward && k->abi.backward,
                     "an attention kernel without one of its entry points");
  }
  return 0;
}
