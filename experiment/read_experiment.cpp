// read_experiment: the experiment file's sections, each key checked (experiment/experiment.hpp).

#include <filesystem>

#include <fmt/format.h>

#include "experiment/experiment.hpp"
#include "layers/cell_registry.hpp"
#include "tensor/names.hpp"
#include "tensor/parallel.hpp"

namespace kiln::experiment {
namespace {

constexpr std::int64_t kBig = 1'000'000'000;

// data.text: a file or a list of files (default: the fortunes Debian ships).
std::vector<std::string> text_files(Section& s) {
  if (!s.has("text")) return {"/usr/share/games/fortunes/fortunes"};
  std::vector<std::string> files = s.texts("text");
  if (files.empty()) s.error("text", "must name a file or a list of files");
  return files;
}

void read_data(Section s, DataSpec& d) {
  d.task = s.choice("task", std::nullopt, task_names());
  d.batch = s.integer("batch", 32, 1, 65536);
  d.eval_batches = s.integer("eval_batches", 4, 1, 10000);
  if (d.task == "adding") {
    d.length = s.integer("length", 50, 2, 100000);
  } else if (d.task == "copy") {
    d.length = s.integer("delay", 20, 0, 100000);
    d.symbols = s.integer("symbols", 8, 2, 1000);
    d.copy_length = s.integer("copy_length", 10, 1, 10000);
  } else if (d.task == "sentiment") {
    d.length = s.integer("length", 20, 4, 100000);
  } else if (d.task == "digits") {
    d.length = s.integer("max_length", 20, 1, 10000);
    d.min_length = s.integer("min_length", 1, 1, d.length);
    d.reverse = s.flag("reverse", false);
  } else if (d.task == "tagging") {
    d.length = s.integer("length", 16, 4, 100000);
  } else if (d.task == "char_lm") {
    d.length = s.integer("length", 64, 2, 100000);
    d.text = text_files(s);
  } else if (d.task == "word_lm") {
    d.length = s.integer("length", 35, 2, 100000);
    d.text = text_files(s);
    d.vocab = s.integer("vocab", 10000, 2, 10'000'000);
  } else if (d.task == "csv_classification" || d.task == "csv_forecast") {
    d.file = s.text("file", std::nullopt);
    d.eval_fraction = s.number("eval_fraction", d.task == "csv_forecast" ? 0.1 : 0.2, 0.0, 0.9);
    if (d.task == "csv_classification") {
      d.label = s.text("label", std::string("label"));
      d.features = s.integer("features", 1, 1, 100000);
    } else {
      d.length = s.integer("length", 24, 1, 100000);
      d.horizon = s.integer("horizon", 1, 1, 100000);
      d.columns = s.texts("columns");
      d.targets = s.texts("targets");
    }
  }
  s.finish();
}

std::vector<std::string> registered_cells() {
  std::vector<std::string> cells;
  for (const auto* c : nn::CellRegistry::global().cells()) cells.push_back(c->name);
  return cells;
}

// What every Transformer layer has (transformer_encoder, transformer).
void read_transformer_layer(Section& s, LayerSpec& l) {
  l.heads = s.integer("heads", 4, 1, 1024);
  l.feedforward = s.integer("feedforward", 0, 0, 1 << 20);
  l.dropout = s.number("dropout", 0.1, 0.0, 0.99);
  l.norm_first = s.flag("norm_first", false);
  l.activation = s.choice("activation", std::string("relu"), {"relu", "gelu"});
}

void read_layer(const std::string& kind, Section s, LayerSpec& l) {
  l.kind = kind;
  l.path = s.path();
  auto size = [&](const char* key, bool auto_ok) {
    if (auto_ok && s.says(key, "auto")) return std::int64_t{0};  // from the data when the model is built
    return s.integer(key, auto_ok ? std::optional<std::int64_t>(0) : std::nullopt, 1, 1 << 20);
  };
  if (kind == "embedding") {
    l.size = size("dim", false);
    l.vocab = size("vocab", true);
  } else if (kind == "recurrent") {
    l.cell = s.choice("cell", std::string("lstm"), registered_cells());
    l.size = size("hidden", false);
    l.layers = s.integer("layers", 1, 1, 64);
    l.bidirectional = s.flag("bidirectional", false);
    l.dropout = s.number("dropout", 0.0, 0.0, 0.99);
    l.impl = s.choice("impl", std::string("auto"), {"auto", "generic", "fused", "compiled"});
    l.single_bias = s.flag("single_bias", false);
    if (s.has("forget_bias")) l.forget_bias = s.number("forget_bias", 0.0, -100.0, 100.0);
    if (s.has("return_sequences")) l.return_sequences = s.flag("return_sequences", true) ? 1 : 0;
    else s.flag("return_sequences", true);
  } else if (kind == "linear") {
    l.size = size("out", true);
  } else if (kind == "dropout") {
    l.dropout = s.number("p", std::nullopt, 0.0, 0.99);
  } else if (kind == "activation") {
    l.activation = s.choice("name", std::nullopt, {"tanh", "relu", "sigmoid", "gelu"});
  } else if (kind == "positional") {
    l.learned = s.choice("kind", std::string("sinusoidal"), {"sinusoidal", "learned"}) == "learned";
    l.max_len = s.integer("max_len", 512, 1, 1 << 20);
    l.dropout = s.number("dropout", 0.0, 0.0, 0.99);
  } else if (kind == "transformer_encoder") {
    l.layers = s.integer("layers", 2, 1, 64);
    read_transformer_layer(s, l);
  } else if (kind == "pool") {
    l.mode = s.choice("mode", std::string("mean"), {"last", "mean", "max"});
  } else if (kind == "seq2seq") {
    l.cell = s.choice("cell", std::string("lstm"), registered_cells());
    l.size = size("hidden", false);
    l.embedding = s.integer("embedding", 0, 0, 1 << 20);
    l.layers = s.integer("layers", 1, 1, 64);
    l.bidirectional = s.flag("bidirectional_encoder", false);
    l.attention = s.choice("attention", std::string("none"), {"none", "bahdanau", "luong"});
    if (l.attention == "luong") {
      l.score = s.choice("score", std::string("general"), {"dot", "general", "concat"});
      l.input_feeding = s.flag("input_feeding", true);
    }
    l.reverse_source = s.flag("reverse_source", false);
    l.dropout = s.number("dropout", 0.0, 0.0, 0.99);
    l.teacher_forcing = s.number("teacher_forcing", 1.0, 0.0, 1.0);
  } else if (kind == "transformer") {
    l.size = size("d_model", false);
    l.layers = s.integer("encoder_layers", 2, 1, 64);
    l.decoder_layers = s.integer("decoder_layers", 2, 1, 64);
    read_transformer_layer(s, l);
    l.learned = s.choice("positions", std::string("sinusoidal"), {"sinusoidal", "learned"}) == "learned";
    l.max_len = s.integer("max_len", 512, 1, 1 << 20);
  }
  s.finish();
}

void read_train(Section s, TrainSpec& t) {
  const bool by_epochs = s.has("epochs");
  if (by_epochs && s.has("steps")) s.error("epochs", "give steps or epochs, not both");
  t.epochs = s.integer("epochs", by_epochs ? std::nullopt : std::optional<std::int64_t>(0), 1, 1'000'000);  // null: absent
  t.steps = s.integer("steps", by_epochs ? 0 : 1000, by_epochs ? 0 : 1, kBig);
  Section o = s.section("optimizer");
  t.optimizer.name = o.choice("name", std::string("adam"), {"sgd", "adam", "adamw", "rmsprop"});
  t.optimizer.lr = o.number("lr", 1e-3, 0.0, 100.0);
  t.optimizer.weight_decay = o.number("weight_decay", t.optimizer.name == "adamw" ? 1e-2 : 0.0, 0.0, 10.0);
  if (t.optimizer.name == "sgd" || t.optimizer.name == "rmsprop") t.optimizer.momentum = o.number("momentum", 0.0, 0.0, 0.999);
  if (t.optimizer.name == "adam" || t.optimizer.name == "adamw") {
    t.optimizer.beta1 = o.number("beta1", 0.9, 0.0, 0.999999);
    t.optimizer.beta2 = o.number("beta2", 0.999, 0.0, 0.999999);
    t.optimizer.eps = o.number("eps", 1e-8, 0.0, 1.0);
  }
  o.finish();
  Section sc = s.section("schedule");
  t.schedule.name = sc.choice("name", std::string("none"), {"none", "step", "exponential", "cosine", "warmup"});
  if (t.schedule.name == "step") {
    t.schedule.step_size = sc.integer("step_size", 1000, 1, kBig);
    t.schedule.gamma = sc.number("gamma", 0.5, 1e-9, 1.0);
  } else if (t.schedule.name == "exponential") {
    t.schedule.gamma = sc.number("gamma", std::nullopt, 1e-9, 1.0);
  } else if (t.schedule.name == "cosine" || t.schedule.name == "warmup") {
    t.schedule.eta_min = sc.number("eta_min", 0.0, 0.0, 100.0);
    if (t.schedule.name == "warmup")  // with epochs, checked against the steps when the run is made
      t.schedule.warmup_steps = sc.integer("warmup_steps", std::nullopt, 0, by_epochs ? kBig : t.steps - 1);
  }
  sc.finish();
  t.clip_grad_norm = s.number("clip_grad_norm", 0.0, 0.0, 1e6);
  t.eval_every = s.integer("eval_every", by_epochs ? 0 : std::max<std::int64_t>(1, t.steps / 10), 1, kBig);
  t.log_every = s.integer("log_every", 10, 1, kBig);
  t.checkpoint_every = s.integer("checkpoint_every", by_epochs ? 0 : std::max<std::int64_t>(1, t.steps / 4), 1, kBig);
  t.keep_checkpoints = s.integer("keep_checkpoints", 3, 1, 1000);
  s.finish();
}

void read_instruments(Section s, InstrumentSpec& in) {
  in.every = s.says("every", "auto") ? -1 : s.integer("every", -1, -1, kBig);
  in.gradient_flow = s.flag("gradient_flow", true);
  in.spectra = s.flag("spectra", true);
  in.saturation = s.flag("saturation", true);
  in.jacobian_steps = s.integer("jacobian_steps", 4, 1, 64);
  s.finish();
}

Experiment read(ConfigFile file, const std::string& name) {
  Experiment e;
  e.file = name;
  e.resolved_yaml = file.resolved();
  Section root = file.root();
  e.seed = static_cast<std::uint64_t>(root.integer("seed", 0, 0, std::numeric_limits<std::int64_t>::max()));
  e.threads = static_cast<int>(root.integer("threads", 1, 1, kMaxThreads));
  e.dtype = root.choice("dtype", std::string("float32"), {"float32", "float64"}) == "float64" ? kFloat64 : kFloat32;
  e.output_given = root.has("output");
  e.output = root.text("output", "runs/" + std::filesystem::path(name).stem().string());
  read_data(root.section("data"), e.data);
  std::vector<std::string> kinds = layer_kinds();
  kinds.insert(kinds.end(), {"seq2seq", "transformer"});
  for (auto& [kind, section] : root.kinds_list("model", kinds)) {
    LayerSpec l;
    read_layer(kind, section, l);
    e.model.push_back(l);
  }
  read_train(root.section("train"), e.train);
  read_instruments(root.section("instruments"), e.instruments);
  root.finish();
  file.throw_if_errors();
  return e;
}

}  // namespace

const std::vector<std::string>& task_names() {
  static const std::vector<std::string> names{"adding",  "copy",    "sentiment",          "tagging",     "digits",  "date_translation",
                                              "char_lm", "word_lm", "csv_classification", "csv_forecast"};
  return names;
}

const std::vector<std::string>& layer_kinds() {
  static const std::vector<std::string> kinds{"embedding", "recurrent",   "linear",
                                              "dropout",   "layer_norm",  "activation",
                                              "positional", "transformer_encoder", "pool"};
  return kinds;
}

Experiment read_experiment(const std::string& path, const std::vector<std::string>& overrides) {
  return read(ConfigFile::load(path, overrides), path);
}

Experiment parse_experiment(const std::string& text, const std::string& name, const std::vector<std::string>& overrides) {
  return read(ConfigFile::parse(text, name, overrides), name);
}

}  // namespace kiln::experiment
