#include "fusion/fused_attention.hpp"

#include <algorithm>
#include <memory>

#include "autograd/tape.hpp"
#include "plugins/boundary.hpp"
#include "plugins/host.hpp"

namespace kiln::plugins {
namespace {

std::int32_t abi_dtype(DType d) { return d == kFloat64 ? KILN_FLOAT64 : d == kBool ? KILN_BOOL : KILN_FLOAT32; }

kiln_tensor abi_view(void* data, DType dtype, std::int64_t offset, const std::array<std::int64_t, 4>& shape,
                     const std::array<std::int64_t, 4>& strides) {
  kiln_tensor t{};
  t.data = data == nullptr ? nullptr : static_cast<char*>(data) + offset * static_cast<std::int64_t>(element_size(dtype));
  t.dtype = abi_dtype(dtype);
  t.rank = 4;
  for (int i = 0; i < 4; ++i) t.shape[i] = shape[i], t.strides[i] = strides[i];
  return t;
}

kiln_tensor abi_view(const AttentionView& v) {
  return abi_view(v.base.value().raw_data(), v.base.dtype(), v.offset, v.shape, v.strides);
}

// A mask broadcast to [B, H, Lq, Lk]: dims it lacks or has as 1 get stride 0.
kiln_tensor abi_mask(const Tensor& m, const std::array<std::int64_t, 4>& full) {
  std::array<std::int64_t, 4> strides{};
  std::int64_t stride = 1;
  for (int i = 3, j = m.dim() - 1; i >= 0; --i, --j) {
    const std::int64_t size = j >= 0 ? m.size(j) : 1;
    strides[static_cast<std::size_t>(i)] = size == 1 ? 0 : stride;
    stride *= size;
  }
  return abi_view(m.raw_data(), m.dtype(), 0, full, strides);
}

std::string describe(const AttentionKernel& k) {
  return fmt::format("fused attention kernel '{}' from plugin '{}' ({})", k.name, k.plugin, k.origin);
}

kiln_attention_problem make_problem(const AttentionView& q, const AttentionView& k, const AttentionView& v,
                                    const FusedAttentionOptions& o) {
  kiln_attention_problem p{};
  p.dtype = abi_dtype(q.base.dtype());
  p.causal = o.causal ? 1 : 0;
  p.phase = KILN_FORWARD;
  p.batch = q.shape[0], p.heads = q.shape[1], p.q_len = q.shape[2], p.k_len = k.shape[2];
  p.head_dim = q.shape[3], p.v_dim = v.shape[3];
  p.scale = o.scale, p.dropout_p = o.dropout_p, p.seed = o.seed;
  return p;
}

// The features a view touches along its base's last dim, [first, last).
std::pair<std::int64_t, std::int64_t> feature_range(const AttentionView& v) {
  return {v.offset, v.offset + (v.shape[1] - 1) * v.strides[1] + v.shape[3]};
}

struct Node {
  const AttentionKernel* kernel;
  kiln_attention_problem problem;
  AttentionView q, k, v;  // bases held as values only (no autograd references)
  std::vector<Tensor> masks;
  Tensor saved;
  std::array<int, 3> input;  // q, k, v -> index among the node's inputs
};

}  // namespace

AttentionView AttentionView::contiguous(const Variable& x) {
  KILN_CHECK(x.dim() == 4, "fused attention: a contiguous view needs a 4-D [B, H, L, D] tensor, got {}", x.shape());
  AttentionView v{x, 0, {x.size(0), x.size(1), x.size(2), x.size(3)}, {}};
  v.strides = {x.size(1) * x.size(2) * x.size(3), x.size(2) * x.size(3), x.size(3), 1};
  return v;
}

AttentionView AttentionView::heads_of(const Variable& x, bool batch_first, std::int64_t offset, std::int64_t heads,
                                      std::int64_t head_dim) {
  KILN_CHECK(x.dim() == 3 && offset + heads * head_dim <= x.size(2),
             "fused attention: {} heads of {} at feature {} do not fit a [.., .., F] tensor {}", heads, head_dim, offset,
             x.shape());
  const std::int64_t f = x.size(2);
  const std::int64_t batch = batch_first ? x.size(0) : x.size(1), len = batch_first ? x.size(1) : x.size(0);
  AttentionView v{x, offset, {batch, heads, len, head_dim}, {}};
  v.strides = batch_first ? std::array<std::int64_t, 4>{len * f, head_dim, f, 1} : std::array<std::int64_t, 4>{f, head_dim, batch * f, 1};
  return v;
}

std::string fused_attention_refusal(const AttentionKernel& kernel, const AttentionView& q, const AttentionView& k,
                                    const AttentionView& v, const FusedAttentionOptions& o) {
  const kiln_attention_problem p = make_problem(q, k, v, o);
  const std::array<std::int64_t, 4> full{p.batch, p.heads, p.q_len, p.k_len};
  kiln_tensor masks[2] = {};
  for (std::size_t i = 0; i < o.masks.size() && i < 2; ++i) masks[i] = abi_mask(o.masks[i], full);
  char why[512] = {};
  if (kernel.abi.supports(&p, masks, why, sizeof why) != 0) return fmt::format("kernel '{}' declines: {}", kernel.name, kernel_text(why, sizeof why));
  return "";
}

FusedAttentionOutput run_fused_attention(const AttentionKernel& kernel, const AttentionView& q, const AttentionView& k,
                                         const AttentionView& v, const FusedAttentionOptions& o, bool out_batch_first) {
  const char* who = "fused attention";
  KILN_CHECK(q.base.dtype() == k.base.dtype() && k.base.dtype() == v.base.dtype() && is_floating(q.base.dtype()),
             "{}: q, k and v must share one float dtype", who);
  KILN_CHECK(q.shape[0] == k.shape[0] && q.shape[0] == v.shape[0] && q.shape[1] == k.shape[1] && q.shape[1] == v.shape[1] &&
                 q.shape[3] == k.shape[3] && k.shape[2] == v.shape[2],
             "{}: q [{}], k [{}] and v [{}] do not agree", who, fmt::join(q.shape, ", "), fmt::join(k.shape, ", "),
             fmt::join(v.shape, ", "));
  KILN_CHECK(o.masks.size() <= 2, "{}: at most 2 masks, got {}", who, o.masks.size());
  const std::array<const AttentionView*, 3> views{&q, &k, &v};
  for (std::size_t a = 0; a < 3; ++a)
    for (std::size_t b = a + 1; b < 3; ++b)
      if (views[a]->base.is_same(views[b]->base)) {
        const auto ra = feature_range(*views[a]), rb = feature_range(*views[b]);
        KILN_CHECK(views[a]->strides[0] == views[b]->strides[0] && views[a]->strides[2] == views[b]->strides[2] &&
                       (ra.second <= rb.first || rb.second <= ra.first),
                   "{}: two operands share a tensor with overlapping features", who);
      }
  const std::string refusal = fused_attention_refusal(kernel, q, k, v, o);
  KILN_CHECK(refusal.empty(), "{}: {}", who, refusal);

  auto node = std::make_shared<Node>();
  node->kernel = &kernel;
  node->problem = make_problem(q, k, v, o);
  const kiln_attention_problem& p = node->problem;
  node->masks = o.masks;
  std::vector<Variable> inputs;
  for (std::size_t a = 0; a < 3; ++a) {
    int index = -1;
    for (std::size_t i = 0; i < inputs.size(); ++i)
      if (inputs[i].is_same(views[a]->base)) index = static_cast<int>(i);
    if (index < 0) index = static_cast<int>(inputs.size()), inputs.push_back(views[a]->base);
    node->input[a] = index;
  }
  node->q = q, node->k = k, node->v = v;
  for (AttentionView* w : {&node->q, &node->k, &node->v}) w->base = Variable(w->base.value());

  const std::array<std::int64_t, 4> full{p.batch, p.heads, p.q_len, p.k_len};
  kiln_tensor masks[2] = {};
  for (std::size_t i = 0; i < o.masks.size(); ++i) masks[i] = abi_mask(o.masks[i], full);
  const DType dt = q.base.dtype();
  const std::int64_t e = p.heads * p.v_dim;
  const Shape out_shape = out_batch_first ? Shape{p.batch, p.q_len, e} : Shape{p.q_len, p.batch, e};
  Tensor out(out_shape, dt);
  const AttentionView out_view = AttentionView::heads_of(Variable(out), out_batch_first, 0, p.heads, p.v_dim);
  kiln_tensor out_abi = abi_view(out_view);
  FusedAttentionOutput result;
  if (o.need_weights) result.weights = Tensor(Shape{p.batch, p.heads, p.q_len, p.k_len}, dt);
  kiln_tensor weights_abi = result.weights.defined() ? abi_view(result.weights.raw_data(), dt, 0, full, {p.heads * p.q_len * p.k_len, p.q_len * p.k_len, p.k_len, 1})
                                                     : kiln_tensor{};
  node->saved = kernel_buffer(kernel.abi.saved_bytes(&p), describe(kernel), "saved_bytes");
  Tensor work = kernel_buffer(kernel.abi.work_bytes(&p), describe(kernel), "work_bytes");
  const kiln_tensor qa = abi_view(q), ka = abi_view(k), va = abi_view(v);
  char err[1024] = {};
  KILN_CHECK(kernel.abi.forward(&host_services(), &p, &qa, &ka, &va, masks, &out_abi, &weights_abi, node->saved.raw_data(),
                                work.raw_data(), err, sizeof err) == 0,
             "{} failed in forward: {}", describe(kernel), kernel_text(err, sizeof err));

  result.out = record(kernel.op.c_str(), out, inputs, [node, out_batch_first](const Tensor& dy, Grads& grads) {
    const AttentionKernel& k = *node->kernel;
    kiln_attention_problem problem = node->problem;
    problem.phase = grads.retains_graph() ? KILN_BACKWARD : KILN_LAST_BACKWARD;
    const std::array<std::int64_t, 4> full{problem.batch, problem.heads, problem.q_len, problem.k_len};
    kiln_tensor masks[2] = {};
    for (std::size_t i = 0; i < node->masks.size(); ++i) masks[i] = abi_mask(node->masks[i], full);
    // One gradient buffer per distinct input; the kernel writes each operand's part through its strides.
    std::vector<Tensor> g(3);
    const std::array<const AttentionView*, 3> views{&node->q, &node->k, &node->v};
    std::array<kiln_tensor, 3> d{};
    for (std::size_t a = 0; a < 3; ++a) {
      const auto idx = static_cast<std::size_t>(node->input[a]);
      if (!grads.needs(idx)) continue;
      if (!g[idx].defined()) g[idx] = zeros(views[a]->base.shape(), dy.dtype());
      d[a] = abi_view(g[idx].raw_data(), dy.dtype(), views[a]->offset, views[a]->shape, views[a]->strides);
    }
    const AttentionView dout = AttentionView::heads_of(Variable(dy), out_batch_first, 0, problem.heads, problem.v_dim);
    const kiln_tensor dya = abi_view(dout);
    const kiln_tensor qa = abi_view(node->q), ka = abi_view(node->k), va = abi_view(node->v);
    Tensor work = kernel_buffer(k.abi.work_bytes(&problem), describe(k), "work_bytes");
    char err[1024] = {};
    KILN_CHECK(k.abi.backward(&host_services(), &problem, &qa, &ka, &va, masks, node->saved.raw_data(), &dya, &d[0], &d[1],
                              &d[2], work.raw_data(), err, sizeof err) == 0,
               "{} failed in backward: {}", describe(k), kernel_text(err, sizeof err));
    for (std::size_t i = 0; i < g.size(); ++i)
      if (g[i].defined()) grads.add(i, std::move(g[i]));
  });
  return result;
}

}  // namespace kiln::plugins
