#include "sequence/attention.hpp"

#include <cmath>
#include <limits>

#include "autograd/grad_mode.hpp"
#include "layers/init.hpp"
#include "layers/dot_product_attention.hpp"
#include "fusion/fused_attention.hpp"
#include "ops/ops.hpp"

namespace kiln::nn {
namespace {

// attn_mask as [Lq, Lk] or [B, H, Lq, Lk]; key_padding_mask as [B, 1, 1, Lk] (Note [Attention masks]).
void shape_masks(const AttentionForwardOptions& opt, bool unbatched, std::int64_t batch, std::int64_t heads,
                 std::int64_t lq, std::int64_t lk, bool cached, Variable& attn_mask, Variable& padding) {
  const char* who = "MultiheadAttention";
  attn_mask = opt.attn_mask_, padding = opt.key_padding_mask_;
  if (attn_mask.defined()) {
    const bool two_d = attn_mask.dim() == 2 && attn_mask.size(0) == lq && attn_mask.size(1) == lk;
    const bool three_d = attn_mask.dim() == 3 && attn_mask.size(0) == batch * heads && attn_mask.size(1) == lq &&
                         attn_mask.size(2) == lk;
    KILN_CHECK(two_d || three_d, "{}: attn_mask must be [{}, {}] or [{}, {}, {}] (batch * num_heads, Lq, Lk), got {}",
               who, lq, lk, batch * heads, lq, lk, attn_mask.shape());
    KILN_CHECK(attn_mask.dtype() == kBool || is_floating(attn_mask.dtype()),
               "{}: attn_mask must be bool (true = masked out) or float (added to the scores), got {}", who,
               attn_mask.dtype());
    if (three_d) attn_mask = reshape(attn_mask, {batch, heads, lq, lk});
  }
  if (padding.defined()) {
    if (unbatched && padding.dim() == 1) padding = unsqueeze(padding, 0);
    KILN_CHECK(padding.dim() == 2 && padding.size(0) == batch && padding.size(1) == lk,
               "{}: key_padding_mask must be [{}, {}] (batch, key length{}), got {}", who, batch, lk,
               cached ? " including cached positions" : "", padding.shape());
    KILN_CHECK(padding.dtype() == kBool || is_floating(padding.dtype()),
               "{}: key_padding_mask must be bool (true = padding) or float (added to the scores), got {}", who,
               padding.dtype());
    padding = reshape(padding, {batch, 1, 1, lk});
  }
}

}  // namespace

// ---- MultiheadAttention -------------------------------------------------------------------------

MultiheadAttention::MultiheadAttention(MultiheadAttentionOptions options)
    : Module("MultiheadAttention"), options_(options) {
  const auto& o = options_;
  KILN_CHECK(o.embed_dim_ > 0 && o.num_heads_ > 0, "MultiheadAttention: embed_dim and num_heads must be positive, got {} and {}",
             o.embed_dim_, o.num_heads_);
  KILN_CHECK(o.embed_dim_ % o.num_heads_ == 0, "MultiheadAttention: embed_dim {} is not divisible by num_heads {}",
             o.embed_dim_, o.num_heads_);
  KILN_CHECK(o.kdim_ >= 0 && o.vdim_ >= 0, "MultiheadAttention: kdim and vdim must be positive, got {} and {}", o.kdim_,
             o.vdim_);
  KILN_CHECK(o.dropout_ >= 0 && o.dropout_ < 1, "MultiheadAttention: dropout must be in [0, 1), got {}", o.dropout_);
  if (options_.kdim_ == 0) options_.kdim_ = o.embed_dim_;
  if (options_.vdim_ == 0) options_.vdim_ = o.embed_dim_;
  reset();
}

bool MultiheadAttention::same_dims() const {
  return options_.kdim_ == options_.embed_dim_ && options_.vdim_ == options_.embed_dim_;
}

void MultiheadAttention::reset() {
  const std::int64_t e = options_.embed_dim_;
  if (same_dims()) {
    in_proj_weight = register_parameter("in_proj_weight", init::xavier_uniform({3 * e, e}));
  } else {
    q_proj_weight = register_parameter("q_proj_weight", init::xavier_uniform({e, e}));
    k_proj_weight = register_parameter("k_proj_weight", init::xavier_uniform({e, options_.kdim_}));
    v_proj_weight = register_parameter("v_proj_weight", init::xavier_uniform({e, options_.vdim_}));
  }
  if (options_.bias_) in_proj_bias = register_parameter("in_proj_bias", init::zeros({3 * e}));
  out_proj = register_module("out_proj", std::make_shared<Linear>(LinearOptions(e, e).bias(options_.bias_)));
  if (options_.bias_) out_proj->bias.set_value(init::zeros({e}));
}

Variable MultiheadAttention::project(const Variable& x, int which) const {
  const std::int64_t e = options_.embed_dim_;
  const Variable& w = same_dims() ? in_proj_weight : which == 0 ? q_proj_weight : which == 1 ? k_proj_weight : v_proj_weight;
  const Variable wi = same_dims() ? narrow(w, 0, which * e, e) : w;
  const Variable bi = in_proj_bias.defined() ? narrow(in_proj_bias, 0, which * e, e) : Variable();
  return linear(x, wi, bi);
}

Variable MultiheadAttention::split_heads(const Variable& x) const {
  return transpose(reshape(x, {x.size(0), x.size(1), options_.num_heads_, head_dim()}), 1, 2);
}

AttentionOutput MultiheadAttention::forward(const Variable& query, const Variable& key, const Variable& value,
                                            const AttentionForwardOptions& opt) {
  const char* who = "MultiheadAttention";
  const auto& o = options_;
  KILN_CHECK(query.defined() && key.defined() && value.defined(), "{}: query, key and value must all be defined", who);
  KILN_CHECK((query.dim() == 3 || query.dim() == 2) && key.dim() == query.dim() && value.dim() == query.dim(),
             "{}: query, key and value must all be 3-D ({}) or all 2-D (unbatched), got {}, {} and {}", who,
             o.batch_first_ ? "[B, L, E]" : "[L, B, E]", query.shape(), key.shape(), value.shape());
  const bool unbatched = query.dim() == 2;
  KILN_CHECK(query.size(-1) == o.embed_dim_ && key.size(-1) == o.kdim_ && value.size(-1) == o.vdim_,
             "{}(embed_dim={}, kdim={}, vdim={}): query {}, key {} and value {} do not end in those sizes", who,
             o.embed_dim_, o.kdim_, o.vdim_, query.shape(), key.shape(), value.shape());
  const int batch_dim = o.batch_first_ ? 0 : 1, len_dim = unbatched ? 0 : 1 - batch_dim;
  KILN_CHECK(unbatched || (key.size(batch_dim) == query.size(batch_dim) && value.size(batch_dim) == query.size(batch_dim)),
             "{}: query {}, key {} and value {} differ in batch size", who, query.shape(), key.shape(), value.shape());
  KILN_CHECK(key.size(len_dim) == value.size(len_dim), "{}: key {} and value {} differ in length", who, key.shape(),
             value.shape());
  AttentionOutput fused;
  if (forward_fused(query, key, value, opt, fused)) return fused;

  auto to_bf = [&](const Variable& x) { return unbatched ? unsqueeze(x, 0) : o.batch_first_ ? x : transpose(x, 0, 1); };
  const Variable q = to_bf(query), k = to_bf(key), v = to_bf(value);
  const std::int64_t batch = q.size(0), lq = q.size(1), heads = o.num_heads_;

  Variable qh, kh, vh;
  KVCache* cache = opt.cache_;
  const bool reuse = cache != nullptr && cache->frozen && cache->keys.defined();
  if (query.is_same(key) && key.is_same(value) && same_dims() && !reuse) {
    // Self-attention: one GEMM for q, k and v.
    const auto qkv = chunk(linear(q, in_proj_weight, in_proj_bias), 3, 2);
    qh = split_heads(qkv[0]), kh = split_heads(qkv[1]), vh = split_heads(qkv[2]);
  } else {
    qh = split_heads(project(q, 0));
    if (!reuse) kh = split_heads(project(k, 1)), vh = split_heads(project(v, 2));
  }
  if (cache != nullptr) {
    if (cache->keys.defined()) {
      KILN_CHECK(cache->keys.size(0) == batch && cache->keys.size(1) == heads && cache->keys.size(3) == head_dim(),
                 "{}: the KV cache holds keys {} but this call has batch {}, {} heads of {}", who, cache->keys.shape(),
                 batch, heads, head_dim());
      if (!reuse) kh = concat({cache->keys, kh}, 2), vh = concat({cache->values, vh}, 2);
      else kh = cache->keys, vh = cache->values;
    }
    cache->keys = kh, cache->values = vh;
  }
  const std::int64_t lk = kh.size(2);

  Variable attn_mask, padding;
  shape_masks(opt, unbatched, batch, heads, lq, lk, cache != nullptr, attn_mask, padding);
  const AttentionOutput a = attend(qh, kh, vh, {{attn_mask, "attn_mask"}, {padding, "key_padding_mask"}}, opt.is_causal_,
                                   o.dropout_, is_training(), std::nullopt, nullptr, who);
  Variable out = out_proj->forward(reshape(transpose(a.output, 1, 2), {batch, lq, o.embed_dim_}));
  out = unbatched ? squeeze(out, 0) : o.batch_first_ ? out : transpose(out, 0, 1);
  Variable weights;
  if (opt.need_weights_) {
    weights = opt.average_attn_weights_ ? mean(a.weights, {1}) : a.weights;
    if (unbatched) weights = squeeze(weights, 0);
  }
  return {out, weights};
}

bool MultiheadAttention::forward_fused(const Variable& query, const Variable& key, const Variable& value,
                                       const AttentionForwardOptions& opt, AttentionOutput& result) {
  const auto& o = options_;
  auto refuse = [&](std::string why) {
    fused_refusal_ = std::move(why);
    KILN_CHECK(o.impl_ != Impl::Fused, "MultiheadAttention: impl Fused, but {}", fused_refusal_);
    return false;
  };
  if (o.impl_ == Impl::Generic) return refuse("impl is Generic");
  const plugins::AttentionKernel* kernel = plugins::Registry::global().attention("sdpa");
  if (kernel == nullptr) return refuse("no plugin provides the attention kernel 'sdpa'");
  if (opt.need_weights_ && grad_enabled())
    return refuse("the attention weights are asked for while gradients are recorded (need_weights(false) lets the "
                  "fused kernel run)");
  for (const Variable* m : {&opt.attn_mask_, &opt.key_padding_mask_})
    if (m->defined() && m->requires_grad()) return refuse("a float mask requires grad");
  const bool unbatched = query.dim() == 2;
  const bool bf = !unbatched && o.batch_first_;
  const bool self = query.is_same(key) && key.is_same(value);
  auto lay = [&](const Variable& x) { return unbatched ? reshape(x, {x.size(0), 1, x.size(1)}) : x; };
  const Variable q_in = lay(query), k_in = lay(key), v_in = lay(value);
  const std::int64_t e = o.embed_dim_, heads = o.num_heads_, d = head_dim();
  const std::int64_t batch = bf ? q_in.size(0) : q_in.size(1), lq = bf ? q_in.size(1) : q_in.size(0);
  using plugins::AttentionView;
  AttentionView qv, kv, vv;
  KVCache* cache = opt.cache_;
  if (self && same_dims() && cache == nullptr) {  // one GEMM for q, k and v; the kernel reads them in place
    const Variable qkv = linear(q_in, in_proj_weight, in_proj_bias);
    qv = AttentionView::heads_of(qkv, bf, 0, heads, d);
    kv = AttentionView::heads_of(qkv, bf, e, heads, d);
    vv = AttentionView::heads_of(qkv, bf, 2 * e, heads, d);
  } else {
    qv = AttentionView::heads_of(project(q_in, 0), bf, 0, heads, d);
    if (cache != nullptr) {
      auto to_bf = [&](const Variable& x) { return bf ? x : transpose(x, 0, 1); };
      Variable kh, vh;
      if (cache->frozen && cache->keys.defined()) {
        kh = cache->keys, vh = cache->values;
      } else {
        kh = split_heads(to_bf(project(k_in, 1))), vh = split_heads(to_bf(project(v_in, 2)));
        if (cache->keys.defined()) {
          KILN_CHECK(cache->keys.size(0) == batch && cache->keys.size(1) == heads && cache->keys.size(3) == d,
                     "MultiheadAttention: the KV cache holds keys {} but this call has batch {}, {} heads of {}",
                     cache->keys.shape(), batch, heads, d);
          kh = concat({cache->keys, kh}, 2), vh = concat({cache->values, vh}, 2);
        }
        cache->keys = kh, cache->values = vh;
      }
      kv = AttentionView::contiguous(kh), vv = AttentionView::contiguous(vh);
    } else if (key.is_same(value) && same_dims()) {
      const Variable kvp = linear(k_in, narrow(in_proj_weight, 0, e, 2 * e),
                                  in_proj_bias.defined() ? narrow(in_proj_bias, 0, e, 2 * e) : Variable());
      kv = AttentionView::heads_of(kvp, bf, 0, heads, d);
      vv = AttentionView::heads_of(kvp, bf, e, heads, d);
    } else {
      kv = AttentionView::heads_of(project(k_in, 1), bf, 0, heads, d);
      vv = AttentionView::heads_of(project(v_in, 2), bf, 0, heads, d);
    }
  }
  const std::int64_t lk = kv.shape[2];
  Variable attn_mask, padding;
  shape_masks(opt, unbatched, batch, heads, lq, lk, cache != nullptr, attn_mask, padding);
  plugins::FusedAttentionOptions fo;
  for (const Variable* m : {&attn_mask, &padding})
    if (m->defined()) fo.masks.push_back(m->dtype() == kBool ? m->value() : m->value().to(query.dtype()));
  KILN_CHECK(!opt.is_causal_ || lq <= lk, "MultiheadAttention: a causal mask needs no more queries ({}) than keys ({})", lq, lk);
  fo.causal = opt.is_causal_;
  fo.scale = 1.0 / std::sqrt(static_cast<double>(d));
  fo.need_weights = opt.need_weights_;
  if (is_training() && o.dropout_ > 0) fo.dropout_p = o.dropout_, fo.seed = default_generator().next_u64();
  if (std::string why = plugins::fused_attention_refusal(*kernel, qv, kv, vv, fo); !why.empty()) return refuse(why);
  const plugins::FusedAttentionOutput r = plugins::run_fused_attention(*kernel, qv, kv, vv, fo, bf);
  Variable out = out_proj->forward(r.out);
  if (unbatched) out = reshape(out, {lq, e});
  Variable weights;
  if (opt.need_weights_) {
    weights = Variable(r.weights);
    if (opt.average_attn_weights_) weights = mean(weights, {1});
    if (unbatched) weights = squeeze(weights, 0);
  }
  fused_refusal_.clear();
  result = {out, weights};
  return true;
}

Variable MultiheadAttention::forward(const Variable& x) {
  return forward(x, x, x, AttentionForwardOptions().need_weights(false)).output;
}

std::string MultiheadAttention::extra_repr() const {
  const auto& o = options_;
  std::string s = fmt::format("embed_dim={}, num_heads={}", o.embed_dim_, o.num_heads_);
  if (o.dropout_ > 0) s += fmt::format(", dropout={}", o.dropout_);
  if (!o.bias_) s += ", bias=false";
  if (!same_dims()) s += fmt::format(", kdim={}, vdim={}", o.kdim_, o.vdim_);
  if (o.batch_first_) s += ", batch_first=true";
  return s;
}

}  // namespace kiln::nn
