// A plugin library that registers cells (KILN_REGISTER_CELLS), in one good and several bad variants, for
// the loader tests (tests/fusion/loader_test.cpp). Built with kiln_add_plugin(... CELLS ...).

#include <stdexcept>

#include <kiln/kiln.hpp>

namespace {

// h' = tanh(W_ih x + b_ih + W_hh h + b_hh) / 2: a tanh RNN at half scale, so no kernel claims it.
class HalfRNNCell : public kiln::nn::RNNCell {
 public:
  using RNNCell::RNNCell;
  kiln::nn::State step(const kiln::Variable& x, const kiln::nn::State& s) override { return {RNNCell::step(x, s)[0] * 0.5}; }
  std::shared_ptr<Module> clone() const override { return clone_as(*this); }
};

// h' = softmax(tanh(W_ih x + b_ih + W_hh h + b_hh)) over the row: a cell whose step does not compile
// (softmax is a row reduction the step compiler does not know), so it runs on the generic graph.
class SoftmaxRNNCell : public kiln::nn::RNNCell {
 public:
  using RNNCell::RNNCell;
  kiln::nn::State step(const kiln::Variable& x, const kiln::nn::State& s) override {
    return {kiln::softmax(RNNCell::step(x, s)[0], 1)};
  }
  std::shared_ptr<Module> clone() const override { return clone_as(*this); }
};

kiln::nn::CellSpec half_rnn(const char* name) {
  return {name, "a tanh RNN at half scale", 1, 1, [](std::int64_t in, std::int64_t hidden, const kiln::nn::RecurrentOptions& o) {
            return std::make_shared<HalfRNNCell>(kiln::nn::RNNCellOptions(in, hidden).bias(o.bias_));
          }};
}

}  // namespace

#ifdef KILN_BAD_CELL_VERSION
extern "C" KILN_PLUGIN_EXPORT int kiln_cell_library_version(void) { return KILN_CELL_LIBRARY_VERSION + 1; }
extern "C" KILN_PLUGIN_EXPORT void kiln_register_cells(void*) {}
#else
KILN_REGISTER_CELLS(registry) {
#if defined(KILN_BAD_CELL_DUPLICATE)
  registry.add(half_rnn("half_rnn_dup"));
  registry.add(half_rnn("lstm"));  // taken by a built-in cell
#elif defined(KILN_BAD_CELL_THROWS)
  throw std::runtime_error("the library's registration failed on purpose");
#elif defined(KILN_BAD_CELL_THROWS_OTHER)
  throw 42;  // not a std::exception
#elif defined(KILN_BAD_CELL_SPEC)
  auto spec = half_rnn("half_rnn_bad");
  spec.gates = 4;  // its weights are one gate's
  registry.add(spec);
#else
  registry.add(half_rnn("half_rnn"));
  registry.add({"softmax_rnn", "a tanh RNN whose state is the softmax of its row (does not compile)", 1, 1,
                [](std::int64_t in, std::int64_t hidden, const kiln::nn::RecurrentOptions& o) {
                  return std::make_shared<SoftmaxRNNCell>(kiln::nn::RNNCellOptions(in, hidden).bias(o.bias_));
                }});
#endif
}
#endif
