// oneDNN's recurrent primitives for `kiln bench`; compiled only when CMake finds Debian's libdnnl-dev.
//
// One training step, as PyTorch 2.x runs LSTM training on CPU: forward in training mode (keeping the
// workspace backward reads), then backward with the weight gradients, dL/dy = 1 (the gradient of a sum,
// as on Kiln's and libtorch's sides) and dX of the first layer (Kiln's side computes it too). The
// weights are reordered once, at construction, into the layouts the forward and the backward primitives
// ask for; the step's own buffers (outputs, workspaces, gradients) are made in the step, as Kiln's and
// libtorch's are, so the peak memory figure counts them. A stacked layer is one primitive per layer (a
// layer's input width differs from the next's); a bidirectional one concatenates its two directions.

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <unordered_map>
#include <variant>

#include <omp.h>

#include <fmt/format.h>
#include <oneapi/dnnl/dnnl.hpp>

#include "bench/bench_model.hpp"
#include "tensor/random.hpp"
#include "tensor/tensor.hpp"

namespace kiln::bench {
namespace {

using dnnl::memory;
using Tag = memory::format_tag;
using Dt = memory::data_type;
using Args = std::unordered_map<int, memory>;

// What differs between oneDNN's cells: the gate count, the extra bias row of linear-before-reset GRU,
// and the descriptors' signatures.
struct CellKind {
  int gates = 1, bias_rows = 1;
  bool lstm = false, gru = false;
  dnnl::algorithm activation = dnnl::algorithm::eltwise_tanh;
};

const std::map<std::string, CellKind>& onednn_cells() {
  static const std::map<std::string, CellKind> m{
      {"lstm", {4, 4, true, false}},
      {"gru", {3, 4, false, true}},  // linear-before-reset: PyTorch's GRU (and Kiln's)
      {"rnn_tanh", {1, 1, false, false, dnnl::algorithm::eltwise_tanh}},
      {"rnn_relu", {1, 1, false, false, dnnl::algorithm::eltwise_relu}}};
  return m;
}

memory::desc md(const memory::dims& d, Tag tag) { return {d, Dt::f32, tag}; }

// One layer (both directions when bidirectional): its primitives, its weights in the forward's and the
// backward's layouts, and the sizes of its buffers.
class Layer {
 public:
  Layer(const dnnl::engine& eng, dnnl::stream& s, const CellKind& k, std::int64_t T, std::int64_t N, std::int64_t in,
        std::int64_t H, bool bidir)
      : eng_(eng) {
    const std::int64_t D = bidir ? 2 : 1, G = k.gates;
    const auto dir = bidir ? dnnl::rnn_direction::bidirectional_concat : dnnl::rnn_direction::unidirectional_left2right;
    const memory::desc src = md({T, N, in}, Tag::tnc), dst = md({T, N, D * H}, Tag::tnc), none;
    const memory::desc wl_any = md({1, D, in, G, H}, Tag::any), wi_any = md({1, D, H, G, H}, Tag::any);
    const memory::desc bias = md({1, D, k.bias_rows, H}, Tag::ldgo);
    using prop = dnnl::prop_kind;
    if (k.lstm) {
      fwd_pd_ = dnnl::lstm_forward::primitive_desc(
          dnnl::lstm_forward::desc(prop::forward_training, dir, src, none, none, wl_any, wi_any, bias, dst, none, none), eng);
      bwd_pd_ = dnnl::lstm_backward::primitive_desc(
          dnnl::lstm_backward::desc(prop::backward, dir, src, none, none, wl_any, wi_any, bias, dst, none, none, src, none, none,
                                    wl_any, wi_any, bias, dst, none, none),
          eng, std::get<dnnl::lstm_forward::primitive_desc>(fwd_pd_));
    } else if (k.gru) {
      fwd_pd_ = dnnl::lbr_gru_forward::primitive_desc(
          dnnl::lbr_gru_forward::desc(prop::forward_training, dir, src, none, wl_any, wi_any, bias, dst, none), eng);
      bwd_pd_ = dnnl::lbr_gru_backward::primitive_desc(
          dnnl::lbr_gru_backward::desc(prop::backward, dir, src, none, wl_any, wi_any, bias, dst, none, src, none, wl_any, wi_any,
                                       bias, dst, none),
          eng, std::get<dnnl::lbr_gru_forward::primitive_desc>(fwd_pd_));
    } else {
      fwd_pd_ = dnnl::vanilla_rnn_forward::primitive_desc(
          dnnl::vanilla_rnn_forward::desc(prop::forward_training, k.activation, dir, src, none, wl_any, wi_any, bias, dst, none),
          eng);
      bwd_pd_ = dnnl::vanilla_rnn_backward::primitive_desc(
          dnnl::vanilla_rnn_backward::desc(prop::backward, k.activation, dir, src, none, wl_any, wi_any, bias, dst, none, src, none,
                                           wl_any, wi_any, bias, dst, none),
          eng, std::get<dnnl::vanilla_rnn_forward::primitive_desc>(fwd_pd_));
    }
    const dnnl::primitive_desc& f = fwd();
    const dnnl::primitive_desc& b = bwd();
    fwd_prim_ = dnnl::primitive(f);
    bwd_prim_ = dnnl::primitive(b);
    src_md_ = src;
    dst_md_ = dst;
    workspace_md_ = f.workspace_desc();
    diff_wl_md_ = b.diff_weights_desc(0);
    diff_wi_md_ = b.diff_weights_desc(1);
    bias_md_ = bias;
    // Weights as a user holds them (ldigo, uniform in +-1/sqrt(H) as PyTorch initialises them), then
    // reordered once into each primitive's layout.
    const float bound = 1.0f / std::sqrt(static_cast<float>(H));
    auto user = [&](const memory::desc& d) {
      memory m(d, eng);
      const Tensor t = uniform({static_cast<std::int64_t>(d.get_size() / sizeof(float))}, -bound, bound);
      std::memcpy(m.get_data_handle(), t.data<float>(), d.get_size());
      return m;
    };
    const memory wl = user(md({1, D, in, G, H}, Tag::ldigo)), wi = user(md({1, D, H, G, H}, Tag::ldigo));
    bias_ = user(bias);
    auto reorder = [&](memory from, const memory::desc& to) {
      memory m(to, eng);
      dnnl::reorder(from, m).execute(s, from, m);
      return m;
    };
    wl_fwd_ = reorder(wl, f.weights_desc(0));
    wi_fwd_ = reorder(wi, f.weights_desc(1));
    wl_bwd_ = reorder(wl, b.weights_desc(0));
    wi_bwd_ = reorder(wi, b.weights_desc(1));
    s.wait();
  }

  const memory::desc& dst_md() const { return dst_md_; }
  const memory::desc& src_md() const { return src_md_; }

  // Forward in training mode: the output and the workspace backward reads.
  std::pair<memory, memory> forward(dnnl::stream& s, const memory& x) const {
    memory y(dst_md_, eng_), workspace(workspace_md_, eng_);
    fwd_prim_.execute(s, Args{{DNNL_ARG_SRC_LAYER, x},
                              {DNNL_ARG_WEIGHTS_LAYER, wl_fwd_},
                              {DNNL_ARG_WEIGHTS_ITER, wi_fwd_},
                              {DNNL_ARG_BIAS, bias_},
                              {DNNL_ARG_DST_LAYER, y},
                              {DNNL_ARG_WORKSPACE, workspace}});
    return {y, workspace};
  }

  // Backward: dX (returned) and the weight gradients, zeroed first (oneDNN adds into them).
  memory backward(dnnl::stream& s, const memory& x, const memory& y, const memory& workspace, const memory& dy) const {
    memory dx(src_md_, eng_), dwl(diff_wl_md_, eng_), dwi(diff_wi_md_, eng_), db(bias_md_, eng_);
    for (const memory* m : {&dwl, &dwi, &db}) std::memset(m->get_data_handle(), 0, m->get_desc().get_size());
    bwd_prim_.execute(s, Args{{DNNL_ARG_SRC_LAYER, x},
                              {DNNL_ARG_WEIGHTS_LAYER, wl_bwd_},
                              {DNNL_ARG_WEIGHTS_ITER, wi_bwd_},
                              {DNNL_ARG_BIAS, bias_},
                              {DNNL_ARG_DST_LAYER, y},
                              {DNNL_ARG_DIFF_DST_LAYER, dy},
                              {DNNL_ARG_WORKSPACE, workspace},
                              {DNNL_ARG_DIFF_SRC_LAYER, dx},
                              {DNNL_ARG_DIFF_WEIGHTS_LAYER, dwl},
                              {DNNL_ARG_DIFF_WEIGHTS_ITER, dwi},
                              {DNNL_ARG_DIFF_BIAS, db}});
    return dx;
  }

 private:
  using FwdPd = std::variant<dnnl::lstm_forward::primitive_desc, dnnl::lbr_gru_forward::primitive_desc,
                             dnnl::vanilla_rnn_forward::primitive_desc>;
  using BwdPd = std::variant<dnnl::lstm_backward::primitive_desc, dnnl::lbr_gru_backward::primitive_desc,
                             dnnl::vanilla_rnn_backward::primitive_desc>;
  const dnnl::primitive_desc& fwd() const {
    return std::visit([](const auto& p) -> const dnnl::primitive_desc& { return p; }, fwd_pd_);
  }
  const dnnl::primitive_desc& bwd() const {
    return std::visit([](const auto& p) -> const dnnl::primitive_desc& { return p; }, bwd_pd_);
  }

  dnnl::engine eng_;
  FwdPd fwd_pd_;
  BwdPd bwd_pd_;
  dnnl::primitive fwd_prim_, bwd_prim_;
  memory::desc src_md_, dst_md_, workspace_md_, diff_wl_md_, diff_wi_md_, bias_md_;
  memory bias_, wl_fwd_, wi_fwd_, wl_bwd_, wi_bwd_;
};

class OnednnModel : public Model {
 public:
  OnednnModel(const CellKind& k, const Config& c) : eng_(dnnl::engine::kind::cpu, 0), s_(eng_) {
    const std::int64_t D = c.bidirectional ? 2 : 1;
    for (std::int64_t l = 0; l < c.layers; ++l)
      layers_.emplace_back(eng_, s_, k, c.seq, c.batch, l == 0 ? c.input : D * c.hidden, c.hidden, c.bidirectional);
    x_ = memory(layers_.front().src_md(), eng_);
    const Tensor x = randn({c.seq, c.batch, c.input});
    std::memcpy(x_.get_data_handle(), x.data<float>(), x_.get_desc().get_size());
  }

  void forward() override {
    memory in = x_;
    for (const Layer& l : layers_) in = l.forward(s_, in).first;
    s_.wait();
  }

  void train_step() override {
    std::vector<memory> ins{x_}, outs, workspaces;
    for (const Layer& l : layers_) {
      auto [y, ws] = l.forward(s_, ins.back());
      outs.push_back(y);
      workspaces.push_back(ws);
      ins.push_back(y);
    }
    // dL/dy of a sum: ones.
    memory dy(layers_.back().dst_md(), eng_);
    float* p = static_cast<float*>(dy.get_data_handle());
    std::fill(p, p + dy.get_desc().get_size() / sizeof(float), 1.0f);
    for (std::size_t i = layers_.size(); i-- > 0;) dy = layers_[i].backward(s_, ins[i], outs[i], workspaces[i], dy);
    s_.wait();
  }

 private:
  dnnl::engine eng_;
  dnnl::stream s_;
  std::vector<Layer> layers_;
  memory x_;
};

}  // namespace

std::unique_ptr<Model> make_onednn(const std::string& cell, const Config& c, std::string* why) {
  const auto& m = onednn_cells();
  const auto it = m.find(cell);
  if (it == m.end()) {
    if (why) *why = "oneDNN has no " + cell;
    return nullptr;
  }
  manual_seed(0);
  try {
    return std::make_unique<OnednnModel>(it->second, c);
  } catch (const dnnl::error& e) {
    if (why) *why = fmt::format("oneDNN refused {} on {}: {}", cell, c.describe(), e.what());
    return nullptr;
  }
}

void set_onednn_threads(int n) { omp_set_num_threads(n); }

std::string onednn_version() {
  const dnnl_version_t* v = dnnl_version();
  return fmt::format("oneDNN {}.{}.{}", v->major, v->minor, v->patch);
}

}  // namespace kiln::bench
