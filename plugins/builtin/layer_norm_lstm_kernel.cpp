// Kiln's fused layer-normalised LSTM (Ba, Kiros & Hinton, 2016), the cell DyNet runs ~6x slower than its
// plain LSTM on CPU. Written against the C interface directly: the per-row layer norms of the two
// pre-activations and of c do not fit the recurrent skeleton's pointwise rows.
//
//   forward:  A = X W_ih^T for all steps (one GEMM), normalised row by row; per step R = h W_hh^T (one
//             GEMM), normalised; gates = LN_ih(A) + LN_hh(R) + bias; c' = s(f) c + s(i) tanh(g);
//             h' = s(o) tanh(LN_c(c')).
//   backward: per step the pointwise chain and the three layer-norm backwards, dh_prev = dR W_hh (one
//             GEMM); then dX = dA W_ih, dW_ih = dA^T X, dW_hh = dR^T H_prev (one GEMM each).
// Saved per step: the normalised A, R and c with their inverse deviations, the gate activations, the
// previous c and h. Layer-norm eps is 1e-5 (LayerNormLSTMCell names this kernel only then).

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kiln/host_helpers.hpp"
#include "plugins/builtin/builtin.hpp"

namespace kiln::plugins::builtin {
namespace {

constexpr double kEps = 1e-5;
const char* const kParams[] = {"weight_ih",   "weight_hh",    "bias",        "ln_ih_weight", "ln_ih_bias",
                               "ln_hh_weight", "ln_hh_bias", "ln_c_weight", "ln_c_bias"};
enum Param { kWih, kWhh, kBias, kLnIhW, kLnIhB, kLnHhW, kLnHhB, kLnCW, kLnCB };

// Offsets (in elements) of the saved arrays, for T steps, B rows, H hidden.
struct Layout {
  std::int64_t ahat, rstd_a, rhat, rstd_r, act, cprev, chat, rstd_c, hprev, total;
  Layout(std::int64_t t, std::int64_t b, std::int64_t h) {
    const std::int64_t g = 4 * h, n = t * b;
    ahat = 0, rstd_a = ahat + n * g, rhat = rstd_a + n, rstd_r = rhat + n * g, act = rstd_r + n;
    cprev = act + n * g, chat = cprev + n * h, rstd_c = chat + n * h, hprev = rstd_c + n, total = hprev + n * h;
  }
};

std::size_t esize(const kiln_recurrent_problem* p) { return p->dtype == KILN_FLOAT32 ? 4 : 8; }

template <class T>
T sigm(T v) { return T(1) / (T(1) + std::exp(-v)); }

// Normalises row x[0..n) in place: x <- (x - mean) * rstd; returns rstd.
template <class T>
T normalise(T* x, std::int64_t n) {
  T mu = 0;
  for (std::int64_t i = 0; i < n; ++i) mu += x[i];
  mu /= T(n);
  T var = 0;
  for (std::int64_t i = 0; i < n; ++i) var += (x[i] - mu) * (x[i] - mu);
  const T rstd = T(1) / std::sqrt(var / T(n) + T(kEps));
  for (std::int64_t i = 0; i < n; ++i) x[i] = (x[i] - mu) * rstd;
  return rstd;
}

// Layer-norm backward for one row: dx = rstd (dxh - mean(dxh) - xh mean(dxh xh)), written over dxh.
template <class T>
void normalise_backward(T* dxh, const T* xh, T rstd, std::int64_t n) {
  T m1 = 0, m2 = 0;
  for (std::int64_t i = 0; i < n; ++i) m1 += dxh[i], m2 += dxh[i] * xh[i];
  m1 /= T(n), m2 /= T(n);
  for (std::int64_t i = 0; i < n; ++i) dxh[i] = rstd * (dxh[i] - m1 - xh[i] * m2);
}

bool active(const kiln_recurrent_problem* p, std::int64_t t, std::int64_t b) {
  return p->lengths == nullptr || t < p->lengths[b];
}

template <class T>
int forward_impl(const kiln_host* host, const kiln_recurrent_problem* p, const kiln_tensor* x, const kiln_tensor* states,
                 const kiln_tensor* params, kiln_tensor* y, kiln_tensor* finals, void* saved) {
  const std::int64_t steps = p->steps, batch = p->batch, in = p->input_size, hid = p->hidden_size, g4 = 4 * hid;
  const Layout L(steps, batch, hid);
  T* s = static_cast<T*>(saved);
  const T* w[9];
  for (int i = 0; i < 9; ++i) w[i] = static_cast<const T*>(params[i].data);
  T* ys = static_cast<T*>(y->data);
  std::memset(ys, 0, sizeof(T) * static_cast<std::size_t>(steps * batch * hid));
  T* h = static_cast<T*>(finals[0].data);
  T* c = static_cast<T*>(finals[1].data);
  std::memcpy(h, states[0].data, sizeof(T) * static_cast<std::size_t>(batch * hid));
  std::memcpy(c, states[1].data, sizeof(T) * static_cast<std::size_t>(batch * hid));
  // A = X W_ih^T for every step at once, then each row normalised in place.
  sdk::gemm<T>(host, false, true, steps * batch, g4, in, T(1), static_cast<const T*>(x->data), in, w[kWih], in, T(0),
               s + L.ahat, g4);
  for (std::int64_t r = 0; r < steps * batch; ++r) s[L.rstd_a + r] = normalise(s + L.ahat + r * g4, g4);
  for (std::int64_t k = 0; k < steps; ++k) {
    const std::int64_t t = p->reverse ? steps - 1 - k : k;
    T* rh = s + L.rhat + t * batch * g4;
    std::memcpy(s + L.hprev + t * batch * hid, h, sizeof(T) * static_cast<std::size_t>(batch * hid));
    std::memcpy(s + L.cprev + t * batch * hid, c, sizeof(T) * static_cast<std::size_t>(batch * hid));
    sdk::gemm<T>(host, false, true, batch, g4, hid, T(1), h, hid, w[kWhh], hid, T(0), rh, g4);
    sdk::parallel_for(host, batch, 1, [&](std::int64_t b0, std::int64_t b1) {
      for (std::int64_t b = b0; b < b1; ++b) {
        const std::int64_t row = t * batch + b;
        s[L.rstd_r + row] = normalise(rh + b * g4, g4);
        if (!active(p, t, b)) continue;
        const T* ah = s + L.ahat + row * g4;
        const T* rr = rh + b * g4;
        T* act = s + L.act + row * g4;
        for (std::int64_t j = 0; j < g4; ++j) {
          const T pre = w[kLnIhW][j] * ah[j] + w[kLnIhB][j] + w[kLnHhW][j] * rr[j] + w[kLnHhB][j] + (w[kBias] ? w[kBias][j] : T(0));
          act[j] = j >= 2 * hid && j < 3 * hid ? std::tanh(pre) : sigm(pre);
        }
        T* cb = c + b * hid;
        T* ch = s + L.chat + row * hid;
        for (std::int64_t j = 0; j < hid; ++j) ch[j] = cb[j] = act[hid + j] * cb[j] + act[j] * act[2 * hid + j];
        s[L.rstd_c + row] = normalise(ch, hid);
        T* hb = h + b * hid;
        for (std::int64_t j = 0; j < hid; ++j) hb[j] = act[3 * hid + j] * std::tanh(w[kLnCW][j] * ch[j] + w[kLnCB][j]);
        std::memcpy(ys + row * hid, hb, sizeof(T) * static_cast<std::size_t>(hid));
      }
    });
  }
  return 0;
}

template <class T>
int backward_impl(const kiln_host* host, const kiln_recurrent_problem* p, const kiln_tensor* x, const kiln_tensor* params,
                  void* saved, const kiln_tensor* dy, const kiln_tensor* d_final, kiln_tensor* dx, kiln_tensor* d_states,
                  kiln_tensor* d_params, void* work) {
  const std::int64_t steps = p->steps, batch = p->batch, in = p->input_size, hid = p->hidden_size, g4 = 4 * hid;
  const Layout L(steps, batch, hid);
  const T* s = static_cast<const T*>(saved);
  const T* w[9];
  for (int i = 0; i < 9; ++i) w[i] = static_cast<const T*>(params[i].data);
  T* dA = static_cast<T*>(work);
  T* dR = dA + steps * batch * g4;
  T* dh = dR + steps * batch * g4;
  T* dc = dh + batch * hid;
  T* dhp = dc + batch * hid;
  // Small parameter gradients, accumulated here and copied out (absent outputs are skipped).
  std::vector<T> acc(static_cast<std::size_t>(3 * g4 + 2 * g4 + 2 * hid), T(0));
  T *gb = acc.data(), *gih_w = gb + g4, *gih_b = gih_w + g4, *ghh_w = gih_b + g4, *ghh_b = ghh_w + g4, *gc_w = ghh_b + g4,
    *gc_b = gc_w + hid;
  std::memcpy(dh, d_final[0].data, sizeof(T) * static_cast<std::size_t>(batch * hid));
  std::memcpy(dc, d_final[1].data, sizeof(T) * static_cast<std::size_t>(batch * hid));
  std::memset(dA, 0, sizeof(T) * static_cast<std::size_t>(2 * steps * batch * g4));
  const T* dys = static_cast<const T*>(dy->data);
  std::vector<T> dpre(static_cast<std::size_t>(g4)), dn(static_cast<std::size_t>(hid));
  for (std::int64_t k = steps - 1; k >= 0; --k) {
    const std::int64_t t = p->reverse ? steps - 1 - k : k;
    for (std::int64_t b = 0; b < batch; ++b) {
      const std::int64_t row = t * batch + b;
      if (!active(p, t, b)) continue;  // the state passed through unchanged: so do its gradients
      const T* act = s + L.act + row * g4;
      const T* ch = s + L.chat + row * hid;
      const T* cp = s + L.cprev + row * hid;
      T* dhb = dh + b * hid;
      T* dcb = dc + b * hid;
      for (std::int64_t j = 0; j < hid; ++j) dhb[j] += dys[row * hid + j];
      // h = o tanh(n), n = ln_c_w c_hat + ln_c_b
      for (std::int64_t j = 0; j < hid; ++j) {
        const T tn = std::tanh(w[kLnCW][j] * ch[j] + w[kLnCB][j]);
        const T o = act[3 * hid + j];
        dpre[3 * hid + j] = dhb[j] * tn * o * (T(1) - o);
        dn[j] = dhb[j] * o * (T(1) - tn * tn);
        gc_w[j] += dn[j] * ch[j];
        gc_b[j] += dn[j];
        dn[j] *= w[kLnCW][j];
      }
      normalise_backward(dn.data(), ch, s[L.rstd_c + row], hid);
      for (std::int64_t j = 0; j < hid; ++j) {
        const T dct = dcb[j] + dn[j];
        const T i = act[j], f = act[hid + j], gg = act[2 * hid + j];
        dpre[j] = dct * gg * i * (T(1) - i);
        dpre[hid + j] = dct * cp[j] * f * (T(1) - f);
        dpre[2 * hid + j] = dct * i * (T(1) - gg * gg);
        dcb[j] = dct * f;
      }
      const T* ah = s + L.ahat + row * g4;
      const T* rh = s + L.rhat + row * g4;
      T* da = dA + row * g4;
      T* dr = dR + row * g4;
      for (std::int64_t j = 0; j < g4; ++j) {
        gb[j] += dpre[j];
        gih_w[j] += dpre[j] * ah[j], gih_b[j] += dpre[j];
        ghh_w[j] += dpre[j] * rh[j], ghh_b[j] += dpre[j];
        da[j] = dpre[j] * w[kLnIhW][j];
        dr[j] = dpre[j] * w[kLnHhW][j];
      }
      normalise_backward(da, ah, s[L.rstd_a + row], g4);
      normalise_backward(dr, rh, s[L.rstd_r + row], g4);
    }
    // dh_prev = dR_t W_hh for the active rows; inactive rows keep dh as it is.
    sdk::gemm<T>(host, false, false, batch, hid, g4, T(1), dR + t * batch * g4, g4, w[kWhh], hid, T(0), dhp, hid);
    for (std::int64_t b = 0; b < batch; ++b)
      if (active(p, t, b)) std::memcpy(dh + b * hid, dhp + b * hid, sizeof(T) * static_cast<std::size_t>(hid));
  }
  if (d_states[0].data) std::memcpy(d_states[0].data, dh, sizeof(T) * static_cast<std::size_t>(batch * hid));
  if (d_states[1].data) std::memcpy(d_states[1].data, dc, sizeof(T) * static_cast<std::size_t>(batch * hid));
  const std::int64_t n = steps * batch;
  if (dx->data) sdk::gemm<T>(host, false, false, n, in, g4, T(1), dA, g4, w[kWih], in, T(0), static_cast<T*>(dx->data), in);
  if (d_params[kWih].data)
    sdk::gemm<T>(host, true, false, g4, in, n, T(1), dA, g4, static_cast<const T*>(x->data), in, T(0),
                 static_cast<T*>(d_params[kWih].data), in);
  if (d_params[kWhh].data)
    sdk::gemm<T>(host, true, false, g4, hid, n, T(1), dR, g4, s + L.hprev, hid, T(0), static_cast<T*>(d_params[kWhh].data), hid);
  const T* small[] = {gb, gih_w, gih_b, ghh_w, ghh_b, gc_w, gc_b};
  const std::int64_t sizes[] = {g4, g4, g4, g4, g4, hid, hid};
  for (int i = 0; i < 7; ++i)
    if (d_params[kBias + i].data) std::memcpy(d_params[kBias + i].data, small[i], sizeof(T) * static_cast<std::size_t>(sizes[i]));
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
  if (p->phase == KILN_FORWARD) return 0;
  const std::int64_t g4 = 4 * p->hidden_size;
  return static_cast<size_t>(2 * p->steps * p->batch * g4 + 3 * p->batch * p->hidden_size) * esize(p);
}

int forward(const kiln_host* host, const kiln_recurrent_problem* p, const kiln_tensor* x, const kiln_tensor* states,
            const kiln_tensor* params, kiln_tensor* y, kiln_tensor* final_states, void* saved, void*, char*, size_t) {
  return p->dtype == KILN_FLOAT32 ? forward_impl<float>(host, p, x, states, params, y, final_states, saved)
                                  : forward_impl<double>(host, p, x, states, params, y, final_states, saved);
}

int backward(const kiln_host* host, const kiln_recurrent_problem* p, const kiln_tensor* x, const kiln_tensor*,
             const kiln_tensor* params, void* saved, const kiln_tensor* dy, const kiln_tensor* d_final, kiln_tensor* dx,
             kiln_tensor* d_states, kiln_tensor* d_params, void* work, char*, size_t) {
  return p->dtype == KILN_FLOAT32 ? backward_impl<float>(host, p, x, params, saved, dy, d_final, dx, d_states, d_params, work)
                                  : backward_impl<double>(host, p, x, params, saved, dy, d_final, dx, d_states, d_params, work);
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
