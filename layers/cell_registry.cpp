#include "layers/cell_registry.hpp"

#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "layers/greff_cells.hpp"
#include "layers/research_cells.hpp"
#include "plugins/registry.hpp"
#include "tensor/error.hpp"
#include "tensor/names.hpp"
#include "tensor/random.hpp"
#include "tensor/warning.hpp"

namespace kiln::nn {
namespace {

// Makes a small cell of `spec` and checks it against what the spec says.
void check_spec(const CellSpec& spec) {
  // The cell made here draws its weights from the default generator: put it back, so registering cells
  // (the first time the registry is consulted) does not move a program's random numbers.
  const KeepDefaultGenerator keep;
  const std::string who = fmt::format("cell registry: cell '{}'", spec.name);
  KILN_CHECK(spec.make != nullptr, "{} has no factory", who);
  KILN_CHECK(spec.states >= 1 && spec.states <= 16, "{}: states must be 1 to 16, got {}", who, spec.states);
  KILN_CHECK(spec.gates >= 0, "{}: gates must be 0 or more, got {}", who, spec.gates);
  const std::int64_t in = 3, hidden = 5;
  std::shared_ptr<RecurrentCell> cell;
  try {
    cell = spec.make(in, hidden, RecurrentOptions(in, hidden));
  } catch (const std::exception& e) {
    throw Error(fmt::format("{}: its factory failed: {}", who, e.what()));
  }
  KILN_CHECK(cell != nullptr, "{}: the factory returned no cell", who);
  KILN_CHECK(cell->input_size() == in && cell->hidden_size() == hidden,
             "{}: asked for input {} and hidden {}, the factory made a cell of {} and {}", who, in, hidden,
             cell->input_size(), cell->hidden_size());
  KILN_CHECK(cell->state_size() == spec.states, "{}: registered with {} state tensor(s), but {} has {}", who, spec.states,
             cell->type_name(), cell->state_size());
  if (spec.gates == 0) return;
  for (const auto& [name, p] : cell->named_parameters(false)) {
    const Shape want = name == "weight_ih" ? Shape{spec.gates * hidden, in} : name == "weight_hh" ? Shape{spec.gates * hidden, hidden} : Shape{};
    KILN_CHECK(want.rank() == 0 || p.shape() == want, "{}: registered with {} gates, so {} should be {} for input {} and hidden {}, "
               "got {}", who, spec.gates, name, want, in, hidden, p.shape());
  }
}

}  // namespace

std::vector<std::pair<std::string, Shape>> CellSpec::parameter_shapes(std::int64_t input_size, std::int64_t hidden_size) const {
  KILN_CHECK(make != nullptr, "cell '{}' has no factory", name);
  const KeepDefaultGenerator keep;  // a throwaway cell: the program's random numbers stay where they were
  const auto cell = make(input_size, hidden_size, RecurrentOptions(input_size, hidden_size));
  std::vector<std::pair<std::string, Shape>> out;
  for (const auto& [n, p] : cell->named_parameters(false)) out.emplace_back(n, p.shape());
  return out;
}

CellRegistry& CellRegistry::global() {
  static CellRegistry* registry = [] {
    auto* r = new CellRegistry;  // never destroyed, as the kernel registry
    register_builtin_cells(*r);
    return r;
  }();
  // Note [Cell libraries]: a plugin library's cells are registered here, when the registry is next
  // consulted after the library was loaded (the loader sits below the layers and cannot make cells).
  // Loading the kernel registry first loads the libraries listed in KILN_PLUGINS.
  plugins::Registry::global();
  const auto& libraries = plugins::loaded_libraries();
  while (registry->libraries_seen_ < libraries.size()) {
    const plugins::Library& library = libraries[registry->libraries_seen_++];
    if (library.register_cells == nullptr) continue;
    CellRegistry staged;
    try {
      library.register_cells(&staged);
      for (auto& spec : staged.cells_) spec->origin = library.path;
      registry->merge(std::move(staged));
    } catch (...) {  // whatever the library threw, never past here
      std::string what = "an exception that is not a std::exception";
      try {
        throw;
      } catch (const std::exception& e) {
        what = e.what();
      } catch (...) {
      }
      const std::string message = fmt::format("plugin {}: its cells were not registered: {}", library.path, what);
      if (!library.from_env) throw Error(message);
      warn_once(fmt::format("KILN_PLUGINS: {}; going on without them", message));
    }
  }
  return *registry;
}

void CellRegistry::add(CellSpec spec) {
  KILN_CHECK(!spec.name.empty(), "cell registry: a cell needs a name");
  const std::string problem =
      spec.name.find('\0') != std::string::npos ? "name holds a NUL character" : plugins::name_problem(spec.name.c_str());
  KILN_CHECK(problem.empty(), "cell registry: cell {}", problem);
  const CellSpec* taken = get(spec.name);
  KILN_CHECK(taken == nullptr, "cell registry: cell '{}' is already registered (by {})", spec.name, taken ? taken->origin : "");
  check_spec(spec);
  if (spec.layer_name.empty()) spec.layer_name = spec.name;
  cells_.push_back(std::make_unique<CellSpec>(std::move(spec)));
}

const CellSpec* CellRegistry::get(const std::string& name) const {
  for (const auto& c : cells_)
    if (c->name == name) return c.get();
  return nullptr;
}

const CellSpec& CellRegistry::at(const std::string& name) const {
  if (const CellSpec* c = get(name)) return *c;
  std::vector<std::string> names;
  for (const auto& c : cells_) names.push_back(c->name);
  throw Error(fmt::format("unknown cell '{}'{}; registered cells: {} (a plugin library registers more: --load or KILN_PLUGINS)",
                          name, did_you_mean(name, names), fmt::join(names, ", ")));
}

std::vector<const CellSpec*> CellRegistry::cells() const {
  std::vector<const CellSpec*> out;
  for (const auto& c : cells_) out.push_back(c.get());
  return out;
}

void CellRegistry::merge(CellRegistry&& other) {
  for (const auto& c : other.cells_) {
    const CellSpec* taken = get(c->name);
    KILN_CHECK(taken == nullptr, "cell registry: cell '{}' from {} is already registered (by {})", c->name, c->origin,
               taken ? taken->origin : "");
  }
  for (auto& c : other.cells_) cells_.push_back(std::move(c));
  other.cells_.clear();
}

void register_builtin_cells(CellRegistry& r) {
  // The probes made here (Greff's variants' gate counts) draw weights: put the default generator back.
  const KeepDefaultGenerator keep;
  auto rnn = [](Nonlinearity n) {
    return [n](std::int64_t in, std::int64_t h, const RecurrentOptions& o) -> std::shared_ptr<RecurrentCell> {
      return std::make_shared<RNNCell>(RNNCellOptions(in, h).bias(o.bias_).single_bias(o.single_bias_).nonlinearity(n));
    };
  };
  auto gru = [](bool reset_after) {
    return [reset_after](std::int64_t in, std::int64_t h, const RecurrentOptions& o) -> std::shared_ptr<RecurrentCell> {
      return std::make_shared<GRUCell>(GRUCellOptions(in, h).bias(o.bias_).single_bias(o.single_bias_).reset_after(reset_after));
    };
  };
  r.add({"rnn_tanh", "Elman RNN: h' = tanh(W_ih x + b_ih + W_hh h + b_hh)", 1, 1, rnn(Nonlinearity::Tanh), "RNN"});
  r.add({"rnn_relu", "Elman RNN: h' = relu(W_ih x + b_ih + W_hh h + b_hh)", 1, 1, rnn(Nonlinearity::ReLU), "RNN"});
  r.add({"lstm", "LSTM (PyTorch's): gates i, f, g, o; c' = f c + i g, h' = o tanh(c')", 4, 2,
         [](std::int64_t in, std::int64_t h, const RecurrentOptions& o) -> std::shared_ptr<RecurrentCell> {
           return std::make_shared<LSTMCell>(LSTMCellOptions(in, h).bias(o.bias_).single_bias(o.single_bias_));
         },
         "LSTM"});
  r.add({"gru", "GRU (PyTorch's): r, z, n = tanh(x_n + r (W_hn h + b_hn)), h' = (1 - z) n + z h", 3, 1, gru(true), "GRU"});
  r.add({"gru_reset_before", "GRU (Cho et al.): n = tanh(x_n + W_hn (r h) + b_hn)", 3, 1, gru(false), "GRU"});
  r.add({"layer_norm_lstm", "LSTM with layer normalisation of both projections and of c (Ba et al., 2016)", 4, 2,
         [](std::int64_t in, std::int64_t h, const RecurrentOptions&) -> std::shared_ptr<RecurrentCell> {
           return std::make_shared<LayerNormLSTMCell>(in, h);
         },
         "LayerNormLSTM"});
  r.add({"peephole_lstm", "LSTM with peephole connections (Gers & Schmidhuber, 2000)", 4, 2,
         [](std::int64_t in, std::int64_t h, const RecurrentOptions& o) -> std::shared_ptr<RecurrentCell> {
           return std::make_shared<PeepholeLSTMCell>(in, h, o.bias_);
         },
         "PeepholeLSTM"});
  r.add({"mgu", "Minimal gated unit (Zhou et al., 2016): f, n = tanh(x_n + W_hn (f h)), h' = (1 - f) h + f n", 2, 1,
         [](std::int64_t in, std::int64_t h, const RecurrentOptions& o) -> std::shared_ptr<RecurrentCell> {
           return std::make_shared<MGUCell>(in, h, o.bias_);
         },
         "MGU"});
  for (const auto& v : greff_variants()) {
    const GreffLSTMCell probe(v.variant, 1, 1);
    r.add({v.name, v.description, static_cast<std::int64_t>(probe.gate_names().size()), probe.state_size(),
           [variant = v.variant](std::int64_t in, std::int64_t h, const RecurrentOptions& o) -> std::shared_ptr<RecurrentCell> {
             return std::make_shared<GreffLSTMCell>(variant, in, h, o.bias_);
           },
           "GreffLSTM"});
  }
}

}  // namespace kiln::nn
