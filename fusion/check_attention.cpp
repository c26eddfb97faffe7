// check_attention_plugin: an attention kernel against the generic scaled_dot_product_attention, over
// layouts (q/k/v packed in one projection, seq-first or batch-first, or separate [B, H, L, D] tensors),
// shapes (one position, odd head sizes, more keys than queries), masks (bool, key padding, float per
// head plus padding) and causal, in float32 and float64: the output and the gradient of every input.

#include <cmath>
#include <limits>
#include <map>

#include "layers/dot_product_attention.hpp"
#include "ops/ops.hpp"
#include "fusion/check_plugin.hpp"
#include "fusion/fused_attention.hpp"
#include "tensor/math.hpp"

namespace kiln::plugins {
namespace {

struct Shape6 {
  std::int64_t b, h, lq, lk, d, dv;
};

enum class Layout { SeqFirst, BatchFirst, Separate };
enum class Masks { None, Bool, Padding, FloatAndPadding };

const char* name(Layout l) { return l == Layout::SeqFirst ? "packed [L, B, F]" : l == Layout::BatchFirst ? "packed [B, L, F]" : "separate"; }
const char* name(Masks m) {
  return m == Masks::None ? "" : m == Masks::Bool ? " bool mask" : m == Masks::Padding ? " key padding" : " float mask + key padding";
}

// The generic graph's [B, H, L, D] view of a packed [L, B, F] or [B, L, F] variable.
Variable heads(const Variable& base, Layout layout, std::int64_t offset, std::int64_t h, std::int64_t d) {
  if (layout == Layout::Separate) return base;
  const Variable part = narrow(base, 2, offset, h * d);
  if (layout == Layout::SeqFirst) return permute(reshape(part, {base.size(0), base.size(1), h, d}), {1, 2, 0, 3});
  return permute(reshape(part, {base.size(0), base.size(1), h, d}), {0, 2, 1, 3});
}

}  // namespace

CheckReport check_attention_plugin(const AttentionKernel& kernel, const CheckOptions& options) {
  CheckReport report;
  report.kernel = kernel.name;
  report.plugin = kernel.plugin;
  std::map<std::pair<std::string, std::string>, TensorCheck> worst;
  std::vector<std::pair<std::string, std::string>> order;
  Generator gen(options.seed);
  const std::vector<Shape6> shapes{{1, 1, 1, 1, 1, 1}, {3, 2, 4, 4, 5, 5}, {2, 3, 3, 7, 4, 6}};
  for (DType dt : {kFloat32, kFloat64})
    for (Layout layout : {Layout::SeqFirst, Layout::BatchFirst, Layout::Separate})
      for (const Shape6& s : shapes)
        for (Masks masks : {Masks::None, Masks::Bool, Masks::Padding, Masks::FloatAndPadding})
          for (bool causal : {false, true}) {
            const bool self = s.lq == s.lk && s.d == s.dv;
            const bool bf = layout == Layout::BatchFirst;
            // Bases and views.
            auto packed = [&](std::int64_t len, std::int64_t features) {
              return uniform(bf ? Shape{s.b, len, features} : Shape{len, s.b, features}, -1, 1, dt, &gen);
            };
            std::vector<Tensor> bases;
            std::array<int, 3> which{};
            std::array<std::int64_t, 3> offsets{};
            if (layout == Layout::Separate) {
              bases = {uniform({s.b, s.h, s.lq, s.d}, -1, 1, dt, &gen), uniform({s.b, s.h, s.lk, s.d}, -1, 1, dt, &gen),
                       uniform({s.b, s.h, s.lk, s.dv}, -1, 1, dt, &gen)};
              which = {0, 1, 2};
            } else if (self) {
              bases = {packed(s.lq, 3 * s.h * s.d)};
              which = {0, 0, 0}, offsets = {0, s.h * s.d, 2 * s.h * s.d};
            } else {
              bases = {packed(s.lq, s.h * s.d), packed(s.lk, s.h * (s.d + s.dv))};
              which = {0, 1, 1}, offsets = {0, 0, s.h * s.d};
            }
            std::vector<Tensor> mask_values;
            if (masks == Masks::Bool) {
              std::vector<bool> m(static_cast<std::size_t>(s.lq * s.lk));
              for (std::size_t i = 0; i < m.size(); ++i) m[i] = i % 3 == 1 && i % static_cast<std::size_t>(s.lk) != 0;
              mask_values.push_back(from_data(m, {s.lq, s.lk}));
            }
            if (masks == Masks::FloatAndPadding) mask_values.push_back(uniform({s.b, s.h, s.lq, s.lk}, -2, 2, dt, &gen));
            if (masks == Masks::Padding || masks == Masks::FloatAndPadding) {
              std::vector<bool> m(static_cast<std::size_t>(s.b * s.lk));
              for (std::int64_t b = 0; b < s.b; ++b)
                for (std::int64_t j = std::max<std::int64_t>(1, s.lk - b); j < s.lk; ++j) m[static_cast<std::size_t>(b * s.lk + j)] = true;
              mask_values.push_back(from_data(m, {s.b, 1, 1, s.lk}));
            }
            const double scale = 1 / std::sqrt(static_cast<double>(s.d));
            const std::string where = fmt::format("{} B={} H={} Lq={} Lk={} D={} Dv={}{}{}", name(layout), s.b, s.h, s.lq, s.lk, s.d,
                                                  s.dv, name(masks), causal ? " causal" : "");
            const Tensor seed = uniform(bf || layout == Layout::Separate ? Shape{s.b, s.lq, s.h * s.dv} : Shape{s.lq, s.b, s.h * s.dv},
                                        -1, 1, dt, &gen);

            auto run = [&](bool fused, std::vector<std::pair<std::string, Tensor>>& out) -> std::string {
              std::vector<Variable> leaves;
              for (const Tensor& t : bases) leaves.emplace_back(t.clone(), true);
              const bool view_bf = layout != Layout::SeqFirst;
              auto view = [&](int a, std::int64_t d) {
                const Variable& base = leaves[static_cast<std::size_t>(which[a])];
                return layout == Layout::Separate ? AttentionView::contiguous(base)
                                                  : AttentionView::heads_of(base, bf, offsets[a], s.h, d);
              };
              Variable y;
              if (fused) {
                FusedAttentionOptions fo;
                fo.masks = mask_values, fo.causal = causal, fo.scale = scale;
                const AttentionView qv = view(0, s.d), kv = view(1, s.d), vv = view(2, s.dv);
                const std::string refusal = fused_attention_refusal(kernel, qv, kv, vv, fo);
                if (!refusal.empty()) return refusal;
                y = run_fused_attention(kernel, qv, kv, vv, fo, view_bf).out;
              } else {
                auto v = [&](int a, std::int64_t d) { return heads(leaves[static_cast<std::size_t>(which[a])], layout, offsets[a], s.h, d); };
                Tensor any_bool, floats;
                for (const Tensor& m : mask_values) {
                  const Tensor full = math::expand(m, {s.b, s.h, s.lq, s.lk});
                  if (m.dtype() == kBool) {
                    if (!any_bool.defined()) any_bool = full.clone();
                    else for (std::int64_t i = 0; i < full.numel(); ++i) any_bool.data<bool>()[i] |= full.data<bool>()[i];
                  } else {
                    floats = full;
                  }
                }
                // softmax(scores + floats) with bool positions at the lowest value, as the kernel (no row is
                // fully masked here, so adding the float mask there too changes nothing).
                Variable mask;
                if (floats.defined() && any_bool.defined())
                  mask = Variable(math::add(floats, masked_fill(Variable(zeros_like(floats)), Variable(any_bool),
                                                                std::numeric_limits<float>::lowest()).value()));
                else
                  mask = floats.defined() ? Variable(floats) : any_bool.defined() ? Variable(any_bool) : Variable();
                const Variable o = nn::scaled_dot_product_attention(v(0, s.d), v(1, s.d), v(2, s.dv), mask, causal, 0, false,
                                                                    scale).output;
                y = reshape(permute(o, view_bf ? std::vector<std::int64_t>{0, 2, 1, 3} : std::vector<std::int64_t>{2, 0, 1, 3}),
                            {seed.size(0), seed.size(1), s.h * s.dv});
              }
              sum(y * Variable(seed)).backward();
              out.emplace_back("output", y.value());
              for (std::size_t i = 0; i < leaves.size(); ++i)
                out.emplace_back(layout == Layout::Separate ? std::string("grad ") + "qkv"[i]
                                 : leaves.size() == 1 ? "grad qkv" : i == 0 ? "grad q" : "grad kv",
                                 leaves[i].grad());
              return "";
            };
            std::vector<std::pair<std::string, Tensor>> fused, generic;
            if (const std::string why = run(true, fused); !why.empty()) {
              report.skipped.push_back(fmt::format("{} {}: {}", where, dtype_name(dt), why));
              continue;
            }
            run(false, generic);
            ++report.cases;
            for (std::size_t i = 0; i < fused.size(); ++i) {
              const auto key = std::make_pair(fused[i].first, std::string(dtype_name(dt)));
              if (!worst.count(key)) {
                order.push_back(key);
                worst[key] = TensorCheck{key.first, key.second, 0, dt == kFloat64 ? options.tolerance_f64 : options.tolerance_f32, ""};
              }
              const double e = relative_error(fused[i].second, generic[i].second);
              if (e > worst[key].worst || worst[key].worst_case.empty()) worst[key].worst = std::max(worst[key].worst, e), worst[key].worst_case = where;
            }
          }
  for (const auto& k : order) report.tensors.push_back(worst[k]);
  return report;
}

}  // namespace kiln::plugins
