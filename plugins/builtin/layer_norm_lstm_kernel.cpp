// Kiln's fused layer-normalised LSTM (Ba, Kiros & Hinton, 2016), the cell DyNet runs ~6x slower than its
// plain LSTM on CPU. Written against the C interface directly: the per-row layer norms of the two
// pre-activations and of c do not fit the recurrent skeleton's pointwise rows.
//
//   forward:  A = X W_ih^T for all steps (one GEMM), normalised row by row; per step R = h W_hh^T (one
//             GEMM), normalised; gates = LN_ih(A) + LN_hh(R) + bias; c' = s(f) c + s(i) tanh(g);
//             h' = s(o) tanh(LN_c(c')).
//   backward: per step the pointwise chain and the three layer-norm backwards, dh_prev = dR W_hh (one
//             GEMM); then dX = dA W_ih, dW_ih = dA^T X, dW_hh = dR^T H_prev (one GEMM each).
// Saved per step: the normalised A and R with their inverse deviations, and c with its mean and inverse
// deviation. Not kept: the gate activations (backward computes them again from A and R, one pointwise
// pass per row, against a quarter of the saved memory), the normalised c (again from c), and the
// previous h and c: h is forward's y, which Kiln hands back (KILN_KERNEL_BACKWARD_READS_Y), and c the
// previous step's saved c (Note [Previous states]). The last backward (KILN_LAST_BACKWARD) writes each
// row's dA and dR over its normalised A and R, so its only large work buffer is gone too (Note
// [Gradients over saved rows]).
// Layer-norm eps is 1e-5 (LayerNormLSTMCell names this kernel only then).

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kiln/host_helpers.hpp"
#include "kiln/packed_gemm.hpp"
#include "plugins/builtin/builtin.hpp"
#include "kiln/lanes.hpp"

namespace kiln::plugins::builtin {
namespace {

using namespace sdk::simd;

constexpr double kEps = 1e-5;
const char* const kParams[] = {"weight_ih",   "weight_hh",    "bias",        "ln_ih_weight", "ln_ih_bias",
                               "ln_hh_weight", "ln_hh_bias", "ln_c_weight", "ln_c_bias"};
enum Param { kWih, kWhh, kBias, kLnIhW, kLnIhB, kLnHhW, kLnHhB, kLnCW, kLnCB };

// Offsets (in elements) of the saved arrays, for T steps, B rows, H hidden.
struct Layout {
  std::int64_t ahat, rstd_a, rhat, rstd_r, c, mean_c, rstd_c, total;
  Layout(std::int64_t t, std::int64_t b, std::int64_t h) {
    const std::int64_t g = 4 * h, n = t * b;
    ahat = 0, rstd_a = ahat + n * g, rhat = rstd_a + n, rstd_r = rhat + n * g;
    c = rstd_r + n, mean_c = c + n * h, rstd_c = mean_c + n, total = rstd_c + n;
  }
};

std::size_t esize(const kiln_recurrent_problem* p) { return p->dtype == KILN_FLOAT32 ? 4 : 8; }

// Backward splits the batch into this many fixed chunks, each with its own parameter-gradient sums added
// in chunk order at the end: the result is the same for any number of threads.
std::int64_t chunks(std::int64_t batch) { return std::min<std::int64_t>(4, batch); }

// A step's rows go to the second thread only when there are enough of them: handing a small step over
// costs more than it saves (configuration (b), 32 rows of 4H = 256, ran slower on 2 threads than on 1).
constexpr std::int64_t kRowElementsPerThread = 32768;
std::int64_t row_grain(std::int64_t g4) { return std::max<std::int64_t>(1, kRowElementsPerThread / g4); }

// Per-chunk scratch in the work buffer: sums of dpre, dpre * a_hat, dpre * r_hat (4H each), of dn * c_hat and
// dn (H each); then for the row at hand dpre (4H), dn (H), the gate activations (4H), dA and dR before
// they are written to their rows (4H each) and the normalised c (H).
std::int64_t chunk_size(std::int64_t hid) { return 3 * 4 * hid + 2 * hid + 4 * hid + hid + 3 * 4 * hid + hid; }

template <class T>
struct Moments {
  T mean, rstd;
};

// The mean and inverse deviation of row x[0..n).
template <class T>
Moments<T> moments(const T* x, std::int64_t n) {
  const T mu = sum_lanes<T>(n, [&](auto v, std::int64_t j) { return load<decltype(v)>(x + j); }) / T(n);
  const T var = sum_lanes<T>(n, [&](auto v, std::int64_t j) {
                  using V = decltype(v);
                  const V d = load<V>(x + j) - V(mu);
                  return d * d;
                }) / T(n);
  return {mu, T(1) / std::sqrt(var + T(kEps))};
}

// out <- (x - mean) * rstd over n elements; out may be x.
template <class T>
void apply_moments(const T* x, Moments<T> m, std::int64_t n, T* out) {
  lanes<T>(n, [&](auto v, std::int64_t j) {
    using V = decltype(v);
    put(out + j, (load<V>(x + j) - V(m.mean)) * V(m.rstd));
  });
}

// Normalises row x[0..n) in place; returns rstd.
template <class T>
T normalise(T* x, std::int64_t n) {
  const Moments<T> m = moments(x, n);
  apply_moments(x, m, n, x);
  return m.rstd;
}

// Layer-norm backward for one row: dx = rstd (dxh - mean(dxh) - xh mean(dxh xh)), written to dx, which may
// be dxh or xh (element j is read before it is written).
template <class T>
void normalise_backward(const T* dxh, const T* xh, T rstd, std::int64_t n, T* dx) {
  const T m1 = sum_lanes<T>(n, [&](auto v, std::int64_t j) { return load<decltype(v)>(dxh + j); }) / T(n);
  const T m2 = sum_lanes<T>(n, [&](auto v, std::int64_t j) {
                 using V = decltype(v);
                 return load<V>(dxh + j) * load<V>(xh + j);
               }) / T(n);
  lanes<T>(n, [&](auto v, std::int64_t j) {
    using V = decltype(v);
    put(dx + j, V(rstd) * (load<V>(dxh + j) - V(m1) - load<V>(xh + j) * V(m2)));
  });
}

// a += b over n elements.
template <class T>
void add_to(T* a, const T* b, std::int64_t n) {
  lanes<T>(n, [&](auto v, std::int64_t j) {
    using V = decltype(v);
    put(a + j, load<V>(a + j) + load<V>(b + j));
  });
}

// The gates of one row from its normalised pre-activations: i, f, o through the sigmoid, g through tanh.
// Forward and backward both call this, so backward sees the activations forward used.
template <class T>
void gate_activations(const T* const* w, const T* bias, const T* ah, const T* rh, std::int64_t hid, T* act) {
  for (std::int64_t q = 0; q < 4; ++q) {
    const std::int64_t off = q * hid;
    lanes<T>(hid, [&](auto v, std::int64_t j) {
      using V = decltype(v);
      const std::int64_t i = off + j;
      const V pre = load<V>(w[kLnIhW] + i) * load<V>(ah + i) + load<V>(w[kLnHhW] + i) * load<V>(rh + i) + load<V>(bias + i);
      put(act + i, q == 2 ? tanh_of(pre) : sigmoid(pre));
    });
  }
}

// The three biases added to every row, summed once.
template <class T>
std::vector<T> summed_bias(const T* const* w, std::int64_t g4) {
  std::vector<T> bias(static_cast<std::size_t>(g4));
  for (std::int64_t j = 0; j < g4; ++j) bias[j] = w[kBias][j] + w[kLnIhB][j] + w[kLnHhB][j];
  return bias;
}

bool active(const kiln_recurrent_problem* p, std::int64_t t, std::int64_t b) {
  return p->lengths == nullptr || t < p->lengths[b];
}

// Note [Previous states]
// Backward needs each active row's h and c from before its step. They are the outputs of the row's
// previous step: forward's y row and the saved c row of step t - 1 (t + 1 running in reverse), or the
// initial state when t is the row's first step (0; its last active step, length - 1, in reverse).
// Returns that previous step, or -1 for the initial state.
std::int64_t previous_step(const kiln_recurrent_problem* p, std::int64_t t, std::int64_t b) {
  if (!p->reverse) return t - 1;
  const std::int64_t length = p->lengths == nullptr ? p->steps : p->lengths[b];
  return t + 1 < length ? t + 1 : -1;
}

template <class T>
int forward_impl(const kiln_host* host, const kiln_recurrent_problem* p, const kiln_tensor* x, const kiln_tensor* states,
                 const kiln_tensor* params, kiln_tensor* y, kiln_tensor* finals, void* saved, void* work) {
  const std::int64_t steps = p->steps, batch = p->batch, in = p->input_size, hid = p->hidden_size, g4 = 4 * hid;
  const Layout L(steps, batch, hid);
  T* s = static_cast<T*>(saved);
  const T* w[9];
  for (int i = 0; i < 9; ++i) w[i] = static_cast<const T*>(params[i].data);
  const std::vector<T> bias = summed_bias(w, g4);
  T* ys = static_cast<T*>(y->data);
  std::memset(ys, 0, sizeof(T) * static_cast<std::size_t>(steps * batch * hid));
  T* h = static_cast<T*>(finals[0].data);
  T* c = static_cast<T*>(finals[1].data);
  sdk::PackedB<T> w_hh(hid, g4, true, static_cast<T*>(work));  // W_hh^T, packed once for every step
  w_hh.pack(w[kWhh], hid);
  T* acts = static_cast<T*>(work) + sdk::packed_elements<T>(hid, g4, true);  // one row of gates per batch row
  std::memcpy(h, states[0].data, sizeof(T) * static_cast<std::size_t>(batch * hid));
  std::memcpy(c, states[1].data, sizeof(T) * static_cast<std::size_t>(batch * hid));
  // A = X W_ih^T for every step at once, then each row normalised in place.
  sdk::gemm_fixed_blocks<T>(host, false, true, steps * batch, g4, in, T(1), static_cast<const T*>(x->data), in, w[kWih],
                            in, T(0), s + L.ahat, g4);
  sdk::parallel_for(host, steps * batch, 16, [&](std::int64_t r0, std::int64_t r1) {
    for (std::int64_t r = r0; r < r1; ++r) s[L.rstd_a + r] = normalise(s + L.ahat + r * g4, g4);
  });
  for (std::int64_t k = 0; k < steps; ++k) {
    const std::int64_t t = p->reverse ? steps - 1 - k : k;
    T* rh = s + L.rhat + t * batch * g4;
    sdk::packed_gemm(host, batch, h, hid, w_hh, false, rh, g4);
    sdk::parallel_for(host, batch, row_grain(g4), [&](std::int64_t b0, std::int64_t b1) {
      for (std::int64_t b = b0; b < b1; ++b) {
        const std::int64_t row = t * batch + b;
        if (!active(p, t, b)) continue;  // backward skips this row: nothing of it is needed
        s[L.rstd_r + row] = normalise(rh + b * g4, g4);
        T* act = acts + b * g4;
        gate_activations(w, bias.data(), s + L.ahat + row * g4, rh + b * g4, hid, act);
        T* cb = c + b * hid;
        T* cs = s + L.c + row * hid;
        lanes<T>(hid, [&](auto v, std::int64_t j) {
          using V = decltype(v);
          const V cn = load<V>(act + hid + j) * load<V>(cb + j) + load<V>(act + j) * load<V>(act + 2 * hid + j);
          put(cb + j, cn), put(cs + j, cn);
        });
        const Moments<T> mc = moments(cs, hid);
        s[L.mean_c + row] = mc.mean, s[L.rstd_c + row] = mc.rstd;
        T* ch = act;  // the normalised c, over the input gate's activations (read for the last time above)
        apply_moments(cs, mc, hid, ch);
        T* hb = h + b * hid;
        lanes<T>(hid, [&](auto v, std::int64_t j) {
          using V = decltype(v);
          put(hb + j, load<V>(act + 3 * hid + j) * tanh_of(load<V>(w[kLnCW] + j) * load<V>(ch + j) + load<V>(w[kLnCB] + j)));
        });
        std::memcpy(ys + row * hid, hb, sizeof(T) * static_cast<std::size_t>(hid));
      }
    });
  }
  return 0;
}

// Note [Gradients over saved rows]
// A row's dA and dR are the layer-norm backwards of its normalised A and R, which nothing reads after them.
// So the last backward writes them over those saved rows (normalise_backward reads element j before it
// writes it), and the row's previous h for dW_hh over its saved c, read for the last time in its step;
// the dX, dW_ih and dW_hh GEMMs then run on the saved memory: no T x B x 9H work buffer, the largest
// allocation of a step. Rows past a sequence's length are written as zeros. An earlier backward
// (retain_graph) must leave the saved memory as it is, and uses a work buffer.

// One row's backward through time step t: reads dh, dc of the row, writes its dA and dR rows (da, dr: rows
// of the work buffer or the saved rows themselves), leaves dc for the previous step in dc and adds to the
// chunk's parameter-gradient sums.
template <class T>
struct RowBackward {
  const kiln_recurrent_problem* p;
  const T* s;
  const T* const* w;
  const T* bias;
  Layout L;
  std::int64_t hid;

  // cp: the row's c before the step (Note [Previous states]).
  void operator()(std::int64_t row, const T* cp, T* dhb, T* dcb, T* da, T* dr, T* chunk) const {
    const std::int64_t g4 = 4 * hid;
    T *g_sum = chunk, *g_ih = g_sum + g4, *g_hh = g_ih + g4, *gc_w = g_hh + g4, *gc_b = gc_w + hid;
    T *dpre = gc_b + hid, *dn = dpre + g4, *act = dn + hid, *da_hat = act + g4, *dr_hat = da_hat + g4, *ch = dr_hat + g4;
    const T* ah = s + L.ahat + row * g4;
    const T* rh = s + L.rhat + row * g4;
    gate_activations(w, bias, ah, rh, hid, act);
    apply_moments(s + L.c + row * hid, Moments<T>{s[L.mean_c + row], s[L.rstd_c + row]}, hid, ch);
    // h = o tanh(n), n = ln_c_w c_hat + ln_c_b
    lanes<T>(hid, [&](auto v, std::int64_t j) {
      using V = decltype(v);
      const V one(T(1)), cw = load<V>(w[kLnCW] + j), chv = load<V>(ch + j);
      const V tn = tanh_of(cw * chv + load<V>(w[kLnCB] + j));
      const V o = load<V>(act + 3 * hid + j), dh = load<V>(dhb + j);
      put(dpre + 3 * hid + j, dh * tn * o * (one - o));
      const V dnv = dh * o * (one - tn * tn);
      put(gc_w + j, load<V>(gc_w + j) + dnv * chv);
      put(gc_b + j, load<V>(gc_b + j) + dnv);
      put(dn + j, dnv * cw);
    });
    normalise_backward(dn, ch, s[L.rstd_c + row], hid, dn);
    lanes<T>(hid, [&](auto v, std::int64_t j) {
      using V = decltype(v);
      const V one(T(1)), dct = load<V>(dcb + j) + load<V>(dn + j);
      const V i = load<V>(act + j), f = load<V>(act + hid + j), gg = load<V>(act + 2 * hid + j);
      put(dpre + j, dct * gg * i * (one - i));
      put(dpre + hid + j, dct * load<V>(cp + j) * f * (one - f));
      put(dpre + 2 * hid + j, dct * i * (one - gg * gg));
      put(dcb + j, dct * f);
    });
    lanes<T>(g4, [&](auto v, std::int64_t j) {
      using V = decltype(v);
      const V d = load<V>(dpre + j);
      put(g_sum + j, load<V>(g_sum + j) + d);
      put(g_ih + j, load<V>(g_ih + j) + d * load<V>(ah + j));
      put(g_hh + j, load<V>(g_hh + j) + d * load<V>(rh + j));
      put(da_hat + j, d * load<V>(w[kLnIhW] + j));
      put(dr_hat + j, d * load<V>(w[kLnHhW] + j));
    });
    normalise_backward(da_hat, ah, s[L.rstd_a + row], g4, da);
    normalise_backward(dr_hat, rh, s[L.rstd_r + row], g4, dr);
  }
};

template <class T>
int backward_impl(const kiln_host* host, const kiln_recurrent_problem* p, const kiln_tensor* x, const kiln_tensor* states,
                  const kiln_tensor* params, void* saved, const kiln_tensor* dy, const kiln_tensor* d_final, kiln_tensor* dx,
                  kiln_tensor* d_states, kiln_tensor* d_params, void* work) {
  const std::int64_t steps = p->steps, batch = p->batch, in = p->input_size, hid = p->hidden_size, g4 = 4 * hid;
  const Layout L(steps, batch, hid);
  T* s = static_cast<T*>(saved);
  const T* w[9];
  for (int i = 0; i < 9; ++i) w[i] = static_cast<const T*>(params[i].data);
  const std::vector<T> bias = summed_bias(w, g4);
  const std::int64_t n = steps * batch;
  // dA, dR and H_prev of every row: over the saved rows no later step reads in the last backward (Note
  // [Gradients over saved rows]), else in work. Every row is written, so none needs clearing first.
  const bool over_saved = p->phase == KILN_LAST_BACKWARD;
  T* const wk = static_cast<T*>(work);
  T* dA = over_saved ? s + L.ahat : wk;
  T* dR = over_saved ? s + L.rhat : wk + n * g4;
  T* h_prev = over_saved ? s + L.c : wk + 2 * n * g4;
  T* dh = over_saved ? wk : wk + n * (2 * g4 + hid);
  T* dc = dh + batch * hid;
  T* dhp = dc + batch * hid;
  T* scratch = dhp + batch * hid;
  const std::int64_t K = chunks(batch), CS = chunk_size(hid);
  sdk::PackedB<T> w_hh(g4, hid, false, scratch + K * CS);  // W_hh as it lies (its last partial panel copied)
  w_hh.pack(w[kWhh], hid);
  std::memset(scratch, 0, sizeof(T) * static_cast<std::size_t>(K * CS));
  std::memcpy(dh, d_final[0].data, sizeof(T) * static_cast<std::size_t>(batch * hid));
  std::memcpy(dc, d_final[1].data, sizeof(T) * static_cast<std::size_t>(batch * hid));
  const T* dys = static_cast<const T*>(dy->data);
  const T* h0 = static_cast<const T*>(states[0].data);
  const T* c0 = static_cast<const T*>(states[1].data);
  const char* y = static_cast<const char*>(p->y->data);
  const std::int64_t y_t = p->y->strides[0] * static_cast<std::int64_t>(sizeof(T));
  const std::int64_t y_b = p->y->strides[1] * static_cast<std::int64_t>(sizeof(T));
  const RowBackward<T> row_backward{p, s, w, bias.data(), L, hid};
  // Chunks, not rows, are shared out; a chunk's sums do not depend on which thread runs it.
  const std::int64_t rows_per_chunk = std::max<std::int64_t>(1, batch / std::max<std::int64_t>(1, K));
  const std::int64_t chunk_grain = (row_grain(g4) + rows_per_chunk - 1) / rows_per_chunk;
  const auto bytes = [](std::int64_t elements) { return sizeof(T) * static_cast<std::size_t>(elements); };
  for (std::int64_t k = steps - 1; k >= 0; --k) {
    const std::int64_t t = p->reverse ? steps - 1 - k : k;
    sdk::parallel_for(host, K, chunk_grain, [&](std::int64_t k0, std::int64_t k1) {
      for (std::int64_t ck = k0; ck < k1; ++ck)
        for (std::int64_t b = ck * batch / K; b < (ck + 1) * batch / K; ++b) {
          const std::int64_t row = t * batch + b;
          if (!active(p, t, b)) {  // the state passed through unchanged: so do its gradients
            std::memset(dA + row * g4, 0, bytes(g4)), std::memset(dR + row * g4, 0, bytes(g4));
            std::memset(h_prev + row * hid, 0, bytes(hid));
            continue;
          }
          add_to(dh + b * hid, dys + row * hid, hid);
          // Note [Previous states]; the row's saved c is read here for the last time, so H_prev may
          // take its place after.
          const std::int64_t before = previous_step(p, t, b);
          const T* cp = before < 0 ? c0 + b * hid : s + L.c + (before * batch + b) * hid;
          row_backward(row, cp, dh + b * hid, dc + b * hid, dA + row * g4, dR + row * g4, scratch + ck * CS);
          const T* hp = before < 0 ? h0 + b * hid : reinterpret_cast<const T*>(y + before * y_t + b * y_b);
          std::memcpy(h_prev + row * hid, hp, bytes(hid));
        }
    });
    // dh_prev = dR_t W_hh for the active rows; inactive rows keep dh as it is.
    sdk::packed_gemm(host, batch, dR + t * batch * g4, g4, w_hh, false, dhp, hid);
    for (std::int64_t b = 0; b < batch; ++b)
      if (active(p, t, b)) std::memcpy(dh + b * hid, dhp + b * hid, sizeof(T) * static_cast<std::size_t>(hid));
  }
  if (d_states[0].data) std::memcpy(d_states[0].data, dh, sizeof(T) * static_cast<std::size_t>(batch * hid));
  if (d_states[1].data) std::memcpy(d_states[1].data, dc, sizeof(T) * static_cast<std::size_t>(batch * hid));
  if (dx->data)
    sdk::gemm_fixed_blocks<T>(host, false, false, n, in, g4, T(1), dA, g4, w[kWih], in, T(0), static_cast<T*>(dx->data), in);
  if (d_params[kWih].data)
    sdk::gemm_fixed_blocks<T>(host, true, false, g4, in, n, T(1), dA, g4, static_cast<const T*>(x->data), in, T(0),
                              static_cast<T*>(d_params[kWih].data), in);
  if (d_params[kWhh].data)
    sdk::gemm_fixed_blocks<T>(host, true, false, g4, hid, n, T(1), dR, g4, h_prev, hid, T(0),
                              static_cast<T*>(d_params[kWhh].data), hid);
  // The chunks' sums, added in chunk order into chunk 0.
  for (std::int64_t ck = 1; ck < K; ++ck) add_to(scratch, scratch + ck * CS, 3 * g4 + 2 * hid);
  const T* g_sum = scratch;
  // The bias and both layer-norm biases all receive the sum of the pre-activation gradients.
  const T* sums[] = {g_sum, g_sum + g4, g_sum, g_sum + 2 * g4, g_sum, g_sum + 3 * g4, g_sum + 3 * g4 + hid};
  const std::int64_t sizes[] = {g4, g4, g4, g4, g4, hid, hid};
  for (int i = 0; i < 7; ++i)
    if (d_params[kBias + i].data) std::memcpy(d_params[kBias + i].data, sums[i], sizeof(T) * static_cast<std::size_t>(sizes[i]));
  return 0;
}

int supports(const kiln_recurrent_problem* p, char* why, size_t why_size) {
  if (p->dtype != KILN_FLOAT32 && p->dtype != KILN_FLOAT64) {
    sdk::write_message(why, why_size, "float32 and float64 only");
    return 1;
  }
  if (!p->has_bias) {
    sdk::write_message(why, why_size, "the layer-normalised LSTM always has its bias");
    return 1;
  }
  return 0;
}

size_t saved_bytes(const kiln_recurrent_problem* p) {
  return static_cast<size_t>(Layout(p->steps, p->batch, p->hidden_size).total) * esize(p);
}

size_t work_bytes(const kiln_recurrent_problem* p) {
  const std::int64_t hid = p->hidden_size, g4 = 4 * hid;
  const bool fwd = p->phase == KILN_FORWARD;
  const std::int64_t k = fwd ? hid : g4, n = fwd ? g4 : hid;  // the per-step GEMM's W_hh operand, packed
  const std::int64_t packed = p->dtype == KILN_FLOAT32 ? sdk::packed_elements<float>(k, n, fwd) : sdk::packed_elements<double>(k, n, fwd);
  if (fwd) return static_cast<size_t>(packed + p->batch * g4) * esize(p);  // and a row of gates per batch row
  // Note [Gradients over saved rows]: only an earlier backward keeps dA, dR and H_prev of every step in work.
  const std::int64_t grads = p->phase == KILN_LAST_BACKWARD ? 0 : p->steps * p->batch * (2 * g4 + hid);  // and H_prev
  return static_cast<size_t>(grads + 3 * p->batch * hid + chunks(p->batch) * chunk_size(hid) + packed) * esize(p);
}

int forward(const kiln_host* host, const kiln_recurrent_problem* p, const kiln_tensor* x, const kiln_tensor* states,
            const kiln_tensor* params, kiln_tensor* y, kiln_tensor* final_states, void* saved, void* work, char*, size_t) {
  return p->dtype == KILN_FLOAT32 ? forward_impl<float>(host, p, x, states, params, y, final_states, saved, work)
                                  : forward_impl<double>(host, p, x, states, params, y, final_states, saved, work);
}

int backward(const kiln_host* host, const kiln_recurrent_problem* p, const kiln_tensor* x, const kiln_tensor* states,
             const kiln_tensor* params, void* saved, const kiln_tensor* dy, const kiln_tensor* d_final, kiln_tensor* dx,
             kiln_tensor* d_states, kiln_tensor* d_params, void* work, char* err, size_t err_size) {
  if (p->y == nullptr || p->y->data == nullptr) {
    sdk::write_message(err, err_size, "layer_norm_lstm: backward needs forward's y (problem->y): declare KILN_KERNEL_BACKWARD_READS_Y");
    return 1;
  }
  return p->dtype == KILN_FLOAT32
             ? backward_impl<float>(host, p, x, states, params, saved, dy, d_final, dx, d_states, d_params, work)
             : backward_impl<double>(host, p, x, states, params, saved, dy, d_final, dx, d_states, d_params, work);
}

}  // namespace

const kiln_recurrent_kernel& layer_norm_lstm_kernel() {
  static const kiln_recurrent_kernel k{"layer_norm_lstm",
                                       "layer-normalised LSTM (Ba et al.): LN on both pre-activations and on c, eps 1e-5; "
                                       "lengths, both directions; float32/64",
                                       2, 9, kParams, supports, saved_bytes, work_bytes, forward, backward};
  return k;
}

}  // namespace kiln::plugins::builtin
