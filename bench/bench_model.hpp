#pragma once
// What `kiln bench` measures: a recurrent layer of one cell type and configuration, one training
// step at a time, on Kiln's generic graph, Kiln's fused kernel, libtorch or oneDNN (when Kiln was built
// with Debian's libtorch-dev or libdnnl-dev; never needed by the tests).

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace kiln::bench {

struct Config {
  std::string name;  ///< "a" .. "d" (recurrent), "t" (Transformer encoder layer)
  std::int64_t batch, seq, input, hidden, layers;  ///< for "t": input = d_model, hidden = dim_feedforward
  bool bidirectional;
  std::int64_t heads = 0;  ///< "t" only
  /// Whether the input needs a gradient (dX of the first layer). oneDNN's backward computes it always;
  /// Kiln and libtorch skip it when not asked (`kiln bench --no-input-grad`), as for a layer fed by data.
  bool input_grad = true;
  std::string describe() const;
  bool is_transformer() const { return heads > 0; }
};

/// The standard configurations: (a) 64/100/128/256; (b) 32/50/32/64; (c) 64/50/512/1024; (d) 2-layer
/// bidirectional 32/64/128/256 (batch/seq/input/hidden); (t): a Transformer encoder layer, d_model 256,
/// 8 heads, feed-forward 1024, batch 32, seq 64.
const std::vector<Config>& configs();

/// What --config's help says of each configuration.
std::string configs_help();
/// A recurrent configuration from "B,T,I,H[,L[,bidir]]" (named by the string); an error naming what is wrong.
Config parse_shape(const std::string& spec);

/// Gates of a registered cell (nn::CellRegistry); 0 when unknown or not gate-shaped.
int gates(const std::string& cell);

/// Throws, naming the registered cells, unless `cell` is a registered cell or "transformer_encoder".
void check_model(const std::string& cell);
/// Whether `cell` runs on configuration `c` (recurrent cells on a-d, transformer_encoder on t).
bool runs_on(const std::string& cell, const Config& c);

/// GEMM FLOPs of one forward pass: 2 * T * B * G * H * (I_layer + H) per layer and direction; for the
/// Transformer layer 2 N (4 E^2 + 2 E F) + 4 B T^2 E with N = B T tokens. Backward does twice that.
double forward_flops(const std::string& cell, const Config& c);

class Model {
 public:
  virtual ~Model() = default;
  /// Forward with autograd recording, as in training; the result is dropped.
  virtual void forward() = 0;
  /// Forward, sum of the output, backward, zero the gradients.
  virtual void train_step() = 0;
};

/// Kiln's layer for `cell` with impl generic or fused; null (with *why) when it can't run.
/// impl: "generic", "fused" (a hand-written kernel, else the compiled cell) or "compiled" (the cell compiled
/// from its step even when a hand-written kernel exists); null, with *why, when that cannot run.
std::unique_ptr<Model> make_kiln(const std::string& cell, const Config& c, const std::string& impl, std::string* why);

/// libtorch's nn::LSTM / GRU / RNN; null (with *why) when Kiln was built without libtorch or the
/// cell has no libtorch counterpart.
std::unique_ptr<Model> make_torch(const std::string& cell, const Config& c, std::string* why);
void set_torch_threads(int n);
/// "libtorch 1.13.1" or "" when not built in.
std::string torch_version();

/// oneDNN's LSTM, GRU (linear-before-reset) and vanilla RNN primitives, forward in training mode and
/// backward with weight gradients, weights reordered once at construction; null (with *why) when Kiln
/// was built without Debian's libdnnl-dev or the cell has no oneDNN counterpart.
std::unique_ptr<Model> make_onednn(const std::string& cell, const Config& c, std::string* why);
/// oneDNN's threads (its OpenMP runtime's, on the calling thread).
void set_onednn_threads(int n);
/// "oneDNN 2.6.3" or "" when not built in.
std::string onednn_version();

}  // namespace kiln::bench
