// Kiln's fused scaled dot-product attention ("sdpa"), written against the C interface of kiln/plugin.h
// like an external plugin. One (batch, head) pair at a time, pairs spread over Kiln's threads:
//   forward:  S = scale q k^T (GEMM), masks, P = softmax(S) row by row (kept for backward),
//             out = dropout(P) v (GEMM), written through out's strides;
//   backward: dP = dropout'(d_out v^T), dS = P (dP - rowsum(dP P)), dq = scale dS k, dk = scale dS^T q,
//             dv = dropout(P)^T d_out (four GEMMs).
// The dropout mask is a hash of (seed, element), so backward recomputes it instead of storing it.

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>

#include "kiln/host_helpers.hpp"
#include "plugins/builtin/builtin.hpp"
#include "kiln/lanes.hpp"

namespace kiln::plugins::builtin {
namespace {

struct Pair {  // one (batch, head) pair's operands
  std::int64_t b, h;
};

template <class T>
T* at(const kiln_tensor& t, std::int64_t b, std::int64_t h) {
  return static_cast<T*>(t.data) + b * t.strides[0] + h * t.strides[1];
}

// splitmix64: a counter-based generator, so the mask of element `index` needs no state.
inline bool dropped(std::uint64_t seed, std::uint64_t index, double p) {
  std::uint64_t z = seed + (index + 1) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return static_cast<double>(z >> 11) * (1.0 / 9007199254740992.0) < p;
}

std::int64_t pair_elems(const kiln_attention_problem* p) { return p->q_len * p->k_len; }

// Dropout applied to the weights of one pair: dst = src * keep / (1 - p).
template <class T>
void drop(const kiln_attention_problem* p, Pair pr, const T* src, T* dst) {
  const T scale = T(1) / T(1 - p->dropout_p);
  const std::uint64_t base = static_cast<std::uint64_t>((pr.b * p->heads + pr.h) * pair_elems(p));
  for (std::int64_t e = 0; e < pair_elems(p); ++e)
    dst[e] = dropped(p->seed, base + static_cast<std::uint64_t>(e), p->dropout_p) ? T(0) : src[e] * scale;
}

struct Call {
  const kiln_host* host;
  const kiln_attention_problem* p;
  const kiln_tensor *q, *k, *v, *masks, *d_out;
  kiln_tensor *out, *weights, *dq, *dk, *dv;
  void *saved, *work;
};

template <class T>
void forward_pair(const Call& c, Pair pr) {
  const auto* p = c.p;
  const std::int64_t lq = p->q_len, lk = p->k_len, n = pair_elems(p);
  const std::int64_t pair = pr.b * p->heads + pr.h;
  T* s = static_cast<T*>(c.saved) + pair * n;
  sdk::gemm<T>(c.host, false, true, lq, lk, p->head_dim, T(p->scale), at<T>(*c.q, pr.b, pr.h), c.q->strides[2], at<T>(*c.k, pr.b, pr.h),
          c.k->strides[2], T(0), s, lk);
  const T lowest = T(std::numeric_limits<float>::lowest());
  // Float masks add first, then bool masks set the lowest value (so a masked score is exactly that).
  for (int pass = 0; pass < 4; ++pass) {
    const kiln_tensor& mask = c.masks[pass % 2];
    if (mask.data == nullptr || (mask.dtype == KILN_BOOL) != (pass >= 2)) continue;
    const std::int64_t off = pr.b * mask.strides[0] + pr.h * mask.strides[1];
    for (std::int64_t i = 0; i < lq; ++i)
      for (std::int64_t j = 0; j < lk; ++j) {
        const std::int64_t e = off + i * mask.strides[2] + j * mask.strides[3];
        if (mask.dtype == KILN_BOOL) {
          if (static_cast<const std::uint8_t*>(mask.data)[e]) s[i * lk + j] = lowest;
        } else {
          s[i * lk + j] += static_cast<const T*>(mask.data)[e];
        }
      }
  }
  if (p->causal)
    for (std::int64_t i = 0; i < lq; ++i)
      for (std::int64_t j = lk - lq + i + 1; j < lk; ++j) s[i * lk + j] = lowest;
  for (std::int64_t i = 0; i < lq; ++i) {  // softmax in place, one row at a time
    T* row = s + i * lk;
    const T mx = *std::max_element(row, row + lk);
    T total = 0;
    sdk::simd::lanes<T>(lk, [&](auto x, std::int64_t j) {
      using V = decltype(x);
      sdk::simd::put(row + j, sdk::simd::exp_of(sdk::simd::load<V>(row + j) - V(mx)));
    });
    for (std::int64_t j = 0; j < lk; ++j) total += row[j];
    const T inv = T(1) / total;
    for (std::int64_t j = 0; j < lk; ++j) row[j] *= inv;
  }
  if (c.weights->data != nullptr) std::memcpy(static_cast<T*>(c.weights->data) + pair * n, s, sizeof(T) * static_cast<std::size_t>(n));
  const T* used = s;
  if (p->dropout_p > 0) {
    T* d = static_cast<T*>(c.work) + pair * n;
    drop<T>(p, pr, s, d);
    used = d;
  }
  sdk::gemm<T>(c.host, false, false, lq, p->v_dim, lk, T(1), used, lk, at<T>(*c.v, pr.b, pr.h), c.v->strides[2], T(0),
          at<T>(*c.out, pr.b, pr.h), c.out->strides[2]);
}

template <class T>
void backward_pair(const Call& c, Pair pr) {
  const auto* p = c.p;
  const std::int64_t lq = p->q_len, lk = p->k_len, n = pair_elems(p);
  const std::int64_t pair = pr.b * p->heads + pr.h;
  const T* w = static_cast<const T*>(c.saved) + pair * n;  // softmax weights P
  T* dp = static_cast<T*>(c.work) + 2 * pair * n;
  T* pd = dp + n;  // dropout(P)
  const bool dropping = p->dropout_p > 0;
  if (dropping) drop<T>(p, pr, w, pd);
  const T* used = dropping ? pd : w;
  const T* dout = at<T>(*c.d_out, pr.b, pr.h);
  if (c.dv->data != nullptr)
    sdk::gemm<T>(c.host, true, false, lk, p->v_dim, lq, T(1), used, lk, dout, c.d_out->strides[2], T(0), at<T>(*c.dv, pr.b, pr.h),
            c.dv->strides[2]);
  if (c.dq->data == nullptr && c.dk->data == nullptr) return;
  sdk::gemm<T>(c.host, false, true, lq, lk, p->v_dim, T(1), dout, c.d_out->strides[2], at<T>(*c.v, pr.b, pr.h), c.v->strides[2], T(0),
          dp, lk);
  if (dropping) {  // through the dropout: dP = dPd * keep / (1 - p)
    const T scale = T(1) / T(1 - p->dropout_p);
    const std::uint64_t base = static_cast<std::uint64_t>(pair * n);
    for (std::int64_t e = 0; e < n; ++e)
      dp[e] = dropped(p->seed, base + static_cast<std::uint64_t>(e), p->dropout_p) ? T(0) : dp[e] * scale;
  }
  for (std::int64_t i = 0; i < lq; ++i) {  // dS = P (dP - rowsum(dP P))
    T* d = dp + i * lk;
    const T* r = w + i * lk;
    T dot = 0;
    for (std::int64_t j = 0; j < lk; ++j) dot += d[j] * r[j];
    for (std::int64_t j = 0; j < lk; ++j) d[j] = r[j] * (d[j] - dot);
  }
  if (c.dq->data != nullptr)
    sdk::gemm<T>(c.host, false, false, lq, p->head_dim, lk, T(p->scale), dp, lk, at<T>(*c.k, pr.b, pr.h), c.k->strides[2], T(0),
            at<T>(*c.dq, pr.b, pr.h), c.dq->strides[2]);
  if (c.dk->data != nullptr)
    sdk::gemm<T>(c.host, true, false, lk, p->head_dim, lq, T(p->scale), dp, lk, at<T>(*c.q, pr.b, pr.h), c.q->strides[2], T(0),
            at<T>(*c.dk, pr.b, pr.h), c.dk->strides[2]);
}

template <class T, bool kForward>
void run_pairs(void* ctx, std::int64_t begin, std::int64_t end) {
  const Call& c = *static_cast<const Call*>(ctx);
  for (std::int64_t i = begin; i < end; ++i) {
    const Pair pr{i / c.p->heads, i % c.p->heads};
    if constexpr (kForward)
      forward_pair<T>(c, pr);
    else
      backward_pair<T>(c, pr);
  }
}

int supports(const kiln_attention_problem* p, const kiln_tensor* masks, char* why, size_t why_size) {
  auto no = [&](const char* reason) {
    sdk::write_message(why, why_size, "%s", reason);
    return 1;
  };
  if (p->dtype != KILN_FLOAT32 && p->dtype != KILN_FLOAT64) return no("only float32 and float64");
  if (p->q_len < 1 || p->k_len < 1 || p->head_dim < 1 || p->v_dim < 1) return no("empty sequences or heads");
  if (p->dropout_p < 0 || p->dropout_p >= 1) return no("dropout must be in [0, 1)");
  for (int m = 0; m < 2; ++m)
    if (masks[m].data != nullptr && masks[m].dtype != KILN_BOOL && masks[m].dtype != p->dtype)
      return no("a float mask must have the operands' dtype");
  return 0;
}

size_t saved_bytes(const kiln_attention_problem* p) {
  return static_cast<size_t>(p->batch * p->heads * pair_elems(p)) * (p->dtype == KILN_FLOAT32 ? 4 : 8);
}

size_t work_bytes(const kiln_attention_problem* p) {
  const size_t pairs = static_cast<size_t>(p->batch * p->heads * pair_elems(p)) * (p->dtype == KILN_FLOAT32 ? 4 : 8);
  if (p->phase == KILN_FORWARD) return p->dropout_p > 0 ? pairs : 0;
  return 2 * pairs;
}

bool unit_stride(const kiln_tensor& t) { return t.data == nullptr || t.strides[3] == 1; }

int forward(const kiln_host* host, const kiln_attention_problem* p, const kiln_tensor* q, const kiln_tensor* k,
            const kiln_tensor* v, const kiln_tensor* masks, kiln_tensor* out, kiln_tensor* weights, void* saved, void* work,
            char* err, size_t err_size) {
  if (!unit_stride(*q) || !unit_stride(*k) || !unit_stride(*v) || !unit_stride(*out)) {
    sdk::write_message(err, err_size, "sdpa: the last dim of q, k, v and out must be contiguous");
    return 1;
  }
  Call c{host, p, q, k, v, masks, nullptr, out, weights, nullptr, nullptr, nullptr, saved, work};
  host->parallel_for(p->batch * p->heads, 1, p->dtype == KILN_FLOAT32 ? run_pairs<float, true> : run_pairs<double, true>, &c);
  return 0;
}

int backward(const kiln_host* host, const kiln_attention_problem* p, const kiln_tensor* q, const kiln_tensor* k,
             const kiln_tensor* v, const kiln_tensor* masks, void* saved, const kiln_tensor* d_out, kiln_tensor* dq,
             kiln_tensor* dk, kiln_tensor* dv, void* work, char* err, size_t err_size) {
  if (!unit_stride(*d_out) || !unit_stride(*dq) || !unit_stride(*dk) || !unit_stride(*dv)) {
    sdk::write_message(err, err_size, "sdpa: the last dim of every gradient must be contiguous");
    return 1;
  }
  kiln_tensor none{};
  Call c{host, p, q, k, v, masks, d_out, &none, &none, dq, dk, dv, saved, work};
  host->parallel_for(p->batch * p->heads, 1, p->dtype == KILN_FLOAT32 ? run_pairs<float, false> : run_pairs<double, false>, &c);
  return 0;
}

}  // namespace

const kiln_attention_kernel& sdpa_kernel() {
  static const kiln_attention_kernel k{
      "sdpa", "scaled dot-product attention: strided q/k/v/out, bool or float masks, causal, dropout; float32/64",
      supports, saved_bytes, work_bytes, forward, backward};
  return k;
}

}  // namespace kiln::plugins::builtin
