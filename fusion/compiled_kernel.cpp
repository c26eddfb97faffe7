// The compiled cell's kernel: Note [Compiled schedule].

#include "fusion/compiled_kernel.hpp"

#include <algorithm>
#include <cstring>
#include <map>
#include <mutex>
#include <tuple>

#include <fmt/format.h>

#include "fusion/compiled_schedule.hpp"
#include "fusion/saved_layout.hpp"
#include "tensor/random.hpp"

namespace kiln::plugins {
namespace {

using namespace compiled;


class Plan {
 public:
  Plan(CellProgram program, std::vector<std::string> names) : p_(std::move(program)), names_(std::move(names)) {
    auto index = [&](const std::string& n) {
      return n.empty() ? -1 : static_cast<int>(std::find(names_.begin(), names_.end(), n) - names_.begin());
    };
    for (const Projection& pr : p_.projections) {
      weight_.push_back(index(pr.weight)), bias_.push_back(index(pr.bias));
      (pr.source == -1 ? xs_ : pr.source >= 0 ? ss_ : ls_).push_back(static_cast<int>(weight_.size()) - 1);
    }
    for (const auto& n : p_.params) param_.push_back(index(n));
    for (int k : xs_) x_rows_ += p_.projections[static_cast<std::size_t>(k)].rows;
    // Note [Compiled schedule]: the states a projection reads keep their history for backward's weight
    // gradients, except state 0, the output: backward reads it back from y (KILN_KERNEL_BACKWARD_READS_Y),
    // a block of steps at a time (read_states).
    slot_.assign(p_.states, -1);
    for (int k : ss_) {
      const int s = p_.projections[static_cast<std::size_t>(k)].source;
      std::int64_t& slot = slot_[static_cast<std::size_t>(s)];
      if (s == 0) reads_y_ = true;
      else if (slot < 0) slot = slots_++;
    }
    for (int k : ss_) s_rows_ += p_.projections[static_cast<std::size_t>(k)].rows;
    for (int k : ls_) l_rows_ += p_.projections[static_cast<std::size_t>(k)].rows;
  }

  int supports(const kiln_recurrent_problem* p, char* why, size_t n) const {
    if (p->dtype != KILN_FLOAT32 && p->dtype != KILN_FLOAT64) return fail(why, n, "a compiled cell runs float32 and float64");
    if (p->hidden_size != p_.hidden_size || p->input_size != p_.input_size)
      return fail(why, n, fmt::format("compiled for input {} and hidden {}, not {} and {}", p_.input_size, p_.hidden_size,
                                      p->input_size, p->hidden_size));
    return 0;
  }
  size_t saved_bytes(const kiln_recurrent_problem* p) const { return bytes(p, saved_size(p)); }
  size_t work_bytes(const kiln_recurrent_problem* p) const {
    const std::int64_t T = p->steps, B = p->batch, S = static_cast<std::int64_t>(p_.states), H = p_.hidden_size;
    const std::int64_t Kb = std::min<std::int64_t>(kBlock, T);
    std::int64_t params = 0;
    for (std::int64_t n : p_.param_sizes) params += n;
    // (+ the other row groups' shared values and every row's scratch values, forward; their rows' and shared gradients and
    // parameter sums, backward: Note [Compiled schedule])
    const std::int64_t G1 = row_groups(B) - 1;
    const std::int64_t small = p->dtype == KILN_FLOAT64 ? small_scratch<double>(p) : small_scratch<float>(p);
    const std::int64_t fwd = (layout_.x_projections ? 0 : Kb * B * x_rows_) + B * (s_rows_ + l_rows_) + 2 * S * B * H + packed_size(H, true) +
                             G1 * p_.shared_size + B * p_.scratch_size + small;
    const bool in_saved = p->phase == KILN_LAST_BACKWARD && layout_.gradients;  // Note [Gradients in saved memory]
    const std::int64_t bwd = (in_saved ? 0 : Kb * B * (x_rows_ + s_rows_)) + B * l_rows_ + 3 * S * B * H + B * p_.grad_size +
                             (G1 + 1) * p_.shared_size + packed_size(H, false) + G1 * params + small +
                             (reads_y_ ? Kb * B * H : 0);
    return bytes(p, p->phase == KILN_FORWARD ? fwd : bwd);
  }
  int forward(const kiln_host* host, const kiln_recurrent_problem* p, const kiln_tensor* x, const kiln_tensor* states,
              const kiln_tensor* params, kiln_tensor* y, kiln_tensor* finals, void* saved, void* work, char* err,
              size_t n) const {
    if (p->dtype == KILN_FLOAT64) return run_forward<double>(host, p, x, states, params, y, finals, saved, work, err, n);
    return run_forward<float>(host, p, x, states, params, y, finals, saved, work, err, n);
  }
  int backward(const kiln_host* host, const kiln_recurrent_problem* p, const kiln_tensor* x, const kiln_tensor* states,
               const kiln_tensor* params, void* saved, const kiln_tensor* dy, const kiln_tensor* d_final, kiln_tensor* dx,
               kiln_tensor* d_states, kiln_tensor* d_params, void* work, char* err, size_t n) const {
    if (p->dtype == KILN_FLOAT64)
      return run_backward<double>(host, p, x, states, params, saved, dy, d_final, dx, d_states, d_params, work, err, n);
    return run_backward<float>(host, p, x, states, params, saved, dy, d_final, dx, d_states, d_params, work, err, n);
  }

 private:
  // The state projections' weights packed for the per-step products (kiln/packed_gemm.hpp): W^T forward,
  // W backward (only a partial last panel is copied then), at most 64 KiB elements each.
  std::int64_t packed_size(std::int64_t H, bool forward) const {
    std::int64_t n = 0;
    for (int k : ss_) {
      const std::int64_t rows = p_.projections[static_cast<std::size_t>(k)].rows;
      n += forward ? sdk::packed_elements<float>(H, rows, true) : sdk::packed_elements<float>(rows, H, false);
    }
    return n;
  }
  // The packed kernel's scratch for the largest small product either pass makes (gemm_add): the blocks
  // of steps (full ones, and a shorter last one) and the late projections.
  template <class T>
  std::int64_t small_scratch(const kiln_recurrent_problem* p) const {
    const std::int64_t Tn = p->steps, B = p->batch, I = p_.input_size, H = p_.hidden_size;
    const std::int64_t Kb = std::max<std::int64_t>(1, std::min<std::int64_t>(kBlock, Tn));
    std::int64_t s = 0;
    auto need = [&](std::int64_t m, std::int64_t n, std::int64_t k, bool tb) {
      if (m > 0 && n > 0 && k > 0) s = std::max(s, sdk::gemm_small_scratch<T>(m, n, k, tb));
    };
    for (const std::int64_t rows : {Kb * B, Tn % Kb * B}) {
      for (int k : xs_) {
        const std::int64_t r = p_.projections[static_cast<std::size_t>(k)].rows;
        need(rows, r, I, true), need(rows, I, r, false), need(r, I, rows, false);
      }
      for (int k : ss_) need(p_.projections[static_cast<std::size_t>(k)].rows, H, rows, false);
    }
    for (int k : ls_) {
      const Projection& pr = p_.projections[static_cast<std::size_t>(k)];
      const std::int64_t w = p_.regs[static_cast<std::size_t>(pr.source_reg)].width;
      need(B, pr.rows, w, true), need(B, w, pr.rows, false), need(pr.rows, w, B, false);
    }
    return s;
  }
  std::int64_t saved_size(const kiln_recurrent_problem* p) const {
    const std::int64_t T = p->steps, B = p->batch, H = p_.hidden_size;
    return T * B * p_.row_size + p_.shared_size + T * slots_ * B * H;
  }
  static size_t bytes(const kiln_recurrent_problem* p, std::int64_t elements) {
    return static_cast<size_t>(elements) * (p->dtype == KILN_FLOAT64 ? sizeof(double) : sizeof(float));
  }
  static bool live(const kiln_recurrent_problem* p, std::int64_t t, std::int64_t b) { return p->lengths == nullptr || t < p->lengths[b]; }
  // [T, B, H] with unit stride along H (KILN_KERNEL_STRIDED_SEQUENCES: the two directions' ys interleaved).
  static bool rows_unit(const kiln_tensor* t) { return t->rank == 3 && (t->strides[2] == 1 || t->shape[2] == 1); }
  static bool contiguous(const kiln_tensor* t) {
    std::int64_t stride = 1;
    for (int i = t->rank - 1; i >= 0; --i) {
      if (t->shape[i] != 1 && t->strides[i] != stride) return false;
      stride *= t->shape[i];
    }
    return true;
  }

  template <class T>
  int run_forward(const kiln_host* host, const kiln_recurrent_problem* p, const kiln_tensor* x, const kiln_tensor* states,
                  const kiln_tensor* params, kiln_tensor* y, kiln_tensor* finals, void* saved_v, void* work_v, char* err,
                  size_t n) const {
    if (!contiguous(x) || !rows_unit(y)) return fail(err, n, "a compiled cell reads x contiguous and writes y [T, B, H] with unit stride along H");
    const std::int64_t Tn = p->steps, B = p->batch, I = p->input_size, H = p_.hidden_size;
    const std::size_t S = p_.states;
    auto param = [&](int k) { return k < 0 ? static_cast<const T*>(nullptr) : static_cast<const T*>(params[k].data); };
    T* saved = static_cast<T*>(saved_v);
    T* regs = saved;
    T* shared = regs + Tn * B * p_.row_size;
    T* hist = shared + p_.shared_size;
    const std::int64_t Kb = std::min<std::int64_t>(kBlock, Tn);
    T* xproj = static_cast<T*>(work_v);  // a block of steps' projections of x (or in its saved rows: layout_.x_projections)
    T* sproj = xproj + (layout_.x_projections ? 0 : Kb * B * x_rows_);
    T* cur = sproj + B * s_rows_;
    T* next = cur + static_cast<std::int64_t>(S) * B * H;
    std::vector<sdk::PackedB<T>> packed;  // each state projection's W^T, packed once for every step
    T* pack_at = next + static_cast<std::int64_t>(S) * B * H;
    for (int k : ss_) {
      const Projection& pr = p_.projections[static_cast<std::size_t>(k)];
      packed.emplace_back(H, pr.rows, true, pack_at);
      packed.back().pack(param(weight_[static_cast<std::size_t>(k)]) + pr.row0 * H, H);
      pack_at += sdk::packed_elements<T>(H, pr.rows, true);
    }
    T* lproj = pack_at;  // this step's late projections
    T* shared_g = lproj + B * l_rows_;  // the other row groups' shared values, one after another
    T* scratch = shared_g + (row_groups(B) - 1) * p_.shared_size;  // every row's scratch values
    T* small = scratch + B * p_.scratch_size;                       // gemm_add's
    const std::int64_t groups = p_.stages == 1 ? row_groups(B) : 1;
    // Each group's pointers into this step's projections and states, set per step (no allocation in the loop).
    std::vector<const T*> gp(static_cast<std::size_t>(groups) * p_.projections.size()), gs(static_cast<std::size_t>(groups) * S);
    std::vector<T*> gn(static_cast<std::size_t>(groups) * S);
    const T* X = static_cast<const T*>(x->data);
    // A block of steps' projections of x: one GEMM each, the bias folded in.
    std::vector<const T*> proj(p_.projections.size());
    std::vector<std::int64_t> ld(p_.projections.size());
    for (std::size_t k = 0; k < p_.projections.size(); ++k) ld[k] = p_.projections[k].rows;
    // Step t's projection k of x (t_lo: the first step of t's block), ld[k] apart.
    std::vector<std::int64_t> xat(p_.projections.size(), 0);
    {
      std::int64_t at = 0;
      for (int k : xs_) {
        xat[static_cast<std::size_t>(k)] = at, at += p_.projections[static_cast<std::size_t>(k)].rows;
        if (layout_.x_projections) ld[static_cast<std::size_t>(k)] = p_.row_size;
      }
    }
    auto xp = [&](int k, std::int64_t t, std::int64_t t_lo) -> T* {
      const auto kk = static_cast<std::size_t>(k);
      if (layout_.x_projections) return regs + t * B * p_.row_size + xat[kk];
      return xproj + Kb * B * xat[kk] + (t - t_lo) * B * ld[kk];
    };
    auto project_x = [&](std::int64_t t_lo, std::int64_t steps) {
      for (int k : xs_) {
        const Projection& pr = p_.projections[static_cast<std::size_t>(k)];
        T* out = xp(k, t_lo, t_lo);
        const std::int64_t lo = ld[static_cast<std::size_t>(k)];
        const T* b = param(bias_[static_cast<std::size_t>(k)]);
        for (std::int64_t r = 0; r < steps * B; ++r)
          for (std::int64_t j = 0; j < pr.rows; ++j) out[r * lo + j] = b != nullptr ? b[pr.bias0 + j] : T(0);
        gemm_add<T>(host, false, true, steps * B, pr.rows, I, X + t_lo * B * I, I, param(weight_[static_cast<std::size_t>(k)]) + pr.row0 * I, I,
                out, lo, small);
      }
    };
    std::vector<const T*> cur_p(S), param_p;
    std::vector<T*> next_p(S);
    for (std::size_t s = 0; s < S; ++s) {
      std::copy(static_cast<const T*>(states[s].data), static_cast<const T*>(states[s].data) + B * H, cur + static_cast<std::int64_t>(s) * B * H);
      cur_p[s] = cur + static_cast<std::int64_t>(s) * B * H;
      next_p[s] = next + static_cast<std::int64_t>(s) * B * H;
    }
    for (int k : param_) param_p.push_back(param(k));
    T* Y = static_cast<T*>(y->data);
    for (std::int64_t step = 0; step < Tn; ++step) {
      const std::int64_t t = p->reverse ? Tn - 1 - step : step;
      // Blocks of Kb consecutive t, in the order the steps run.
      const std::int64_t q0 = step / Kb * Kb, q1 = std::min(q0 + Kb - 1, Tn - 1);
      const std::int64_t t_lo = p->reverse ? Tn - 1 - q1 : q0;
      if (step == q0) project_x(t_lo, q1 - q0 + 1);
      for (std::size_t s = 0; s < S; ++s)  // [slot][T][B][H]: a projected state's steps side by side, for backward's block GEMMs
        if (slot_[s] >= 0) std::copy(cur_p[s], cur_p[s] + B * H, hist + (slot_[s] * Tn + t) * B * H);
      for (int k : xs_) proj[static_cast<std::size_t>(k)] = xp(k, t, t_lo);
      std::int64_t sat = 0;
      for (const int& k : ss_) {  // this step's projections of the states (k: a reference into ss_)
        const Projection& pr = p_.projections[static_cast<std::size_t>(k)];
        T* out = sproj + B * sat;
        const T* b = param(bias_[static_cast<std::size_t>(k)]);
        for (std::int64_t r = 0; r < B; ++r)
          for (std::int64_t j = 0; j < pr.rows; ++j) out[r * pr.rows + j] = b != nullptr ? b[pr.bias0 + j] : T(0);
        sdk::packed_gemm<T>(host, B, cur_p[static_cast<std::size_t>(pr.source)], H, packed[static_cast<std::size_t>(&k - ss_.data())], true,
                            out, pr.rows);
        proj[static_cast<std::size_t>(k)] = out;
        ld[static_cast<std::size_t>(k)] = pr.rows;
        sat += pr.rows;
      }
      T* regs_t = regs + t * B * p_.row_size;
      std::int64_t lat = 0;
      for (int k : ls_) {
        proj[static_cast<std::size_t>(k)] = lproj + B * lat;
        lat += p_.projections[static_cast<std::size_t>(k)].rows;
      }
      // Between stages: the late projections of what the stage before computed, one GEMM each over the rows.
      const StageFn<T> late = [&](int stage, T*) {
        std::int64_t at2 = 0;
        for (int k : ls_) {
          const Projection& pr = p_.projections[static_cast<std::size_t>(k)];
          T* out = lproj + B * at2;
          at2 += pr.rows;
          if (pr.stage != stage + 1) continue;
          const Register& src = p_.regs[static_cast<std::size_t>(pr.source_reg)];
          const T* b = param(bias_[static_cast<std::size_t>(k)]);
          for (std::int64_t r = 0; r < B; ++r)
            for (std::int64_t j = 0; j < pr.rows; ++j) out[r * pr.rows + j] = b != nullptr ? b[pr.bias0 + j] : T(0);
          gemm_add<T>(host, false, true, B, pr.rows, src.width, regs_t + src.offset, p_.row_size,
                  param(weight_[static_cast<std::size_t>(k)]) + pr.row0 * src.width, src.width, out, pr.rows, small);
        }
      };
      if (groups > 1) {  // Note [Compiled schedule]: fixed groups of rows, shared out over the threads
        sdk::parallel_for(host, groups, 1, [&](std::int64_t g0, std::int64_t g1) {
          for (std::int64_t g = g0; g < g1; ++g) {
            const std::int64_t r0 = group_start(B, groups, g), n = group_start(B, groups, g + 1) - r0;
            const T** gpg = gp.data() + g * static_cast<std::int64_t>(proj.size());
            const T** gsg = gs.data() + g * static_cast<std::int64_t>(S);
            T** gng = gn.data() + g * static_cast<std::int64_t>(S);
            for (std::size_t k = 0; k < proj.size(); ++k) gpg[k] = proj[k] + r0 * ld[k];
            for (std::size_t s = 0; s < S; ++s) gsg[s] = cur_p[s] + r0 * H, gng[s] = next_p[s] + r0 * H;
            T* sh = g == 0 ? shared : shared_g + (g - 1) * p_.shared_size;
            run_program<T>(p_, n, gpg, ld.data(), gsg, param_p.data(), sh, scratch + r0 * p_.scratch_size, regs_t + r0 * p_.row_size, gng);
          }
        });
      } else {
        run_program<T>(p_, B, proj.data(), ld.data(), cur_p.data(), param_p.data(), shared, scratch, regs_t, next_p.data(), late);
      }
      for (std::int64_t b = 0; b < B; ++b) {
        T* yrow = Y + t * y->strides[0] + b * y->strides[1];
        if (live(p, t, b)) {
          std::copy(next + b * H, next + (b + 1) * H, yrow);
        } else {  // past its length: the state holds, the output is zero
          for (std::size_t s = 0; s < S; ++s)
            std::copy(cur_p[s] + b * H, cur_p[s] + (b + 1) * H, next_p[s] + b * H);
          std::fill(yrow, yrow + H, T(0));
        }
      }
      std::swap(cur, next);
      for (std::size_t s = 0; s < S; ++s) {
        cur_p[s] = cur + static_cast<std::int64_t>(s) * B * H;
        next_p[s] = next + static_cast<std::int64_t>(s) * B * H;
      }
    }
    for (std::size_t s = 0; s < S; ++s) std::copy(cur_p[s], cur_p[s] + B * H, static_cast<T*>(finals[s].data));
    return 0;
  }

  template <class T>
  int run_backward(const kiln_host* host, const kiln_recurrent_problem* p, const kiln_tensor* x, const kiln_tensor* states,
                   const kiln_tensor* params, void* saved_v, const kiln_tensor* dy, const kiln_tensor* d_final, kiln_tensor* dx,
                   kiln_tensor* d_states, kiln_tensor* d_params, void* work_v, char* err, size_t n) const {
    if (!rows_unit(dy)) return fail(err, n, "a compiled cell reads dy [T, B, H] with unit stride along H");
    if (reads_y_ && (p->y == nullptr || p->y->data == nullptr || !rows_unit(p->y)))
      return fail(err, n, "a compiled cell reads forward's y in backward (KILN_KERNEL_BACKWARD_READS_Y), [T, B, H] with unit stride along H");
    const std::int64_t Tn = p->steps, B = p->batch, I = p->input_size, H = p_.hidden_size;
    const std::size_t S = p_.states;
    const std::int64_t SBH = static_cast<std::int64_t>(S) * B * H;
    auto param = [&](int k) { return k < 0 ? static_cast<const T*>(nullptr) : static_cast<const T*>(params[k].data); };
    auto dparam = [&](int k) -> T* { return k < 0 ? nullptr : static_cast<T*>(d_params[k].data); };
    for (std::size_t k = 0; k < names_.size(); ++k)
      if (d_params[k].data != nullptr) {
        std::int64_t numel = 1;
        for (int i = 0; i < d_params[k].rank; ++i) numel *= d_params[k].shape[i];
        std::fill(static_cast<T*>(d_params[k].data), static_cast<T*>(d_params[k].data) + numel, T(0));
      }
    const T* saved = static_cast<const T*>(saved_v);
    const T* regs = saved;
    const T* shared = regs + Tn * B * p_.row_size;
    const T* hist = shared + p_.shared_size;
    const std::int64_t Kb = std::min<std::int64_t>(kBlock, Tn);
    // Note [Gradients in saved memory]: a block of steps' projection gradients, in a work buffer or in the
    // block's saved rows; dP(k, t) is step t's, ld[k] apart.
    const bool in_saved = p->phase == KILN_LAST_BACKWARD && layout_.gradients;
    T* dxproj = static_cast<T*>(work_v);
    T* dsproj = dxproj + (in_saved ? 0 : Kb * B * x_rows_);
    T* carry = dsproj + (in_saved ? 0 : Kb * B * s_rows_);
    std::vector<std::int64_t> dbuf(p_.projections.size(), 0);  // work-buffer mode: where projection k's block starts
    {
      std::int64_t at = 0;
      for (int k : xs_) dbuf[static_cast<std::size_t>(k)] = at, at += Kb * B * p_.projections[static_cast<std::size_t>(k)].rows;
      for (int k : ss_) dbuf[static_cast<std::size_t>(k)] = at, at += Kb * B * p_.projections[static_cast<std::size_t>(k)].rows;
    }
    T* dnext = carry + SBH;
    T* dstate = dnext + SBH;
    T* pwork = dstate + SBH;
    std::vector<sdk::PackedB<T>> packed;  // each state projection's W, as panels for every step
    // The row groups' work, one after another: a group's rows' gradient blocks, then its shared gradients.
    const std::int64_t groups = p_.stages == 1 ? row_groups(B) : 1;
    T* pack_at = pwork + B * p_.grad_size + groups * p_.shared_size;
    for (int k : ss_) {
      const Projection& pr = p_.projections[static_cast<std::size_t>(k)];
      packed.emplace_back(pr.rows, H, false, pack_at);
      packed.back().pack(param(weight_[static_cast<std::size_t>(k)]) + pr.row0 * H, H);
      pack_at += sdk::packed_elements<T>(pr.rows, H, false);
    }
    T* dlproj = pack_at;  // this step's late projections' gradients
    // Each row group's work (in pwork) and the other groups' parameter sums.
    std::vector<T*> gwork(static_cast<std::size_t>(groups), pwork), gsums;
    T* small = nullptr;
    {
      T* at = dlproj + B * l_rows_;
      for (std::int64_t g = 1; g < groups; ++g) {
        gwork[static_cast<std::size_t>(g)] = pwork + group_start(B, groups, g) * p_.grad_size + g * p_.shared_size;
        for (std::int64_t n : p_.param_sizes) gsums.push_back(at), at += n;
      }
      small = at;  // gemm_add's
    }
    T* gathered = small + (p->dtype == KILN_FLOAT64 ? small_scratch<double>(p) : small_scratch<float>(p));  // read_states'
    // State 0 as steps [t_lo, t_lo + steps) read it, gathered from y: the step before's output (in the
    // order the steps run), or the initial state for the first step and for a reversed row whose steps
    // so far were all past its length. A row past its length at t has no gradient there, so what it
    // reads does not matter (y's zeros).
    const T* Yf = reads_y_ ? static_cast<const T*>(p->y->data) : nullptr;
    const T* h0 = static_cast<const T*>(states[0].data);
    auto read_states = [&](std::int64_t t_lo, std::int64_t steps) {
      for (std::int64_t t = t_lo; t < t_lo + steps; ++t)
        for (std::int64_t b = 0; b < B; ++b) {
          const std::int64_t prev = p->reverse ? t + 1 : t - 1;
          const bool initial = prev < 0 || prev >= Tn || (p->reverse && !live(p, prev, b));
          const T* src = initial ? h0 + b * H : Yf + prev * p->y->strides[0] + b * p->y->strides[1];
          std::copy(src, src + H, gathered + ((t - t_lo) * B + b) * H);
        }
    };
    const std::size_t np = p_.param_sizes.size();
    std::vector<const T*> gdn(static_cast<std::size_t>(groups) * S);
    std::vector<T*> gdp(static_cast<std::size_t>(groups) * p_.projections.size()), gds(static_cast<std::size_t>(groups) * S);
    for (std::size_t s = 0; s < S; ++s)
      std::copy(static_cast<const T*>(d_final[s].data), static_cast<const T*>(d_final[s].data) + B * H, carry + static_cast<std::int64_t>(s) * B * H);
    // The program's own parameters: their gradient accumulates into the caller's (a sink when unwanted).
    std::vector<T*> dprog;
    std::vector<std::vector<T>> sinks(param_.size());
    for (std::size_t k = 0; k < param_.size(); ++k) {
      T* d = dparam(param_[k]);
      if (d == nullptr) sinks[k].resize(static_cast<std::size_t>(p_.param_sizes[k])), d = sinks[k].data();
      dprog.push_back(d);
    }
    std::vector<T*> dproj(p_.projections.size()), dnext_w(S), dstate_p(S);
    std::vector<const T*> dnext_p(S);
    std::vector<std::int64_t> ld(p_.projections.size());
    for (std::size_t k = 0; k < p_.projections.size(); ++k) ld[k] = in_saved && layout_.dcol[k] >= 0 ? p_.row_size : p_.projections[k].rows;
    // Step t's gradient of x or state projection k (t_lo: the first step of t's block).
    T* saved_rows = static_cast<T*>(saved_v);
    auto dP = [&](int k, std::int64_t t, std::int64_t t_lo) -> T* {
      const auto kk = static_cast<std::size_t>(k);
      if (in_saved) return saved_rows + t * B * p_.row_size + layout_.dcol[kk];
      return dxproj + dbuf[kk] + (t - t_lo) * B * ld[kk];
    };
    for (std::size_t s = 0; s < S; ++s) {
      dnext_w[s] = dnext + static_cast<std::int64_t>(s) * B * H;
      dnext_p[s] = dnext_w[s];
      dstate_p[s] = dstate + static_cast<std::int64_t>(s) * B * H;
    }
    const T* DY = static_cast<const T*>(dy->data);
    // dL/dh_t of every row and step, when Kiln records the gradient flow (problem->dh).
    T* DH = p->dh != nullptr ? static_cast<T*>(p->dh->data) : nullptr;
    const std::int64_t dh0 = DH != nullptr ? p->dh->strides[0] : 0, dh1 = DH != nullptr ? p->dh->strides[1] : 0;
    const T* X = static_cast<const T*>(x->data);
    T* DX = static_cast<T*>(dx->data);
    if (DX != nullptr) std::fill(DX, DX + Tn * B * I, T(0));
    for (std::int64_t step = Tn; step-- > 0;) {
      const std::int64_t t = p->reverse ? Tn - 1 - step : step;
      // Note [Compiled schedule]: the state projections' gradients of a block of kBlock steps (consecutive
      // t) are kept, and their weight gradients made in one GEMM per block.
      const std::int64_t q = Tn - 1 - step, q0 = q / Kb * Kb, q1 = std::min(q0 + Kb - 1, Tn - 1);
      const std::int64_t t_lo = p->reverse ? q0 : Tn - 1 - q1;
      std::copy(carry, carry + SBH, dnext);
      for (std::int64_t b = 0; b < B; ++b) {
        if (live(p, t, b)) {
          for (std::int64_t k = 0; k < H; ++k) dnext[b * H + k] += DY[t * dy->strides[0] + b * dy->strides[1] + k];
        }
        if (DH != nullptr) std::copy(dnext + b * H, dnext + (b + 1) * H, DH + t * dh0 + b * dh1);  // a dead row: its held state's
        if (!live(p, t, b)) {
          for (std::size_t s = 0; s < S; ++s) std::fill(dnext_w[s] + b * H, dnext_w[s] + (b + 1) * H, T(0));
        }
      }
      for (int k : xs_) dproj[static_cast<std::size_t>(k)] = dP(k, t, t_lo);
      for (int k : ss_) dproj[static_cast<std::size_t>(k)] = dP(k, t, t_lo);
      const T* regs_t = regs + t * B * p_.row_size;
      std::int64_t lat = 0;
      for (int k : ls_) {
        dproj[static_cast<std::size_t>(k)] = dlproj + B * lat;
        lat += ld[static_cast<std::size_t>(k)];
      }
      // Between stages, backward: a late projection's input gradient (into the rows' gradient blocks) and
      // its weight's and bias's.
      const StageFn<T> late = [&](int stage, T* grads) {
        for (int k : ls_) {
          const Projection& pr = p_.projections[static_cast<std::size_t>(k)];
          if (pr.stage != stage + 1) continue;
          const Register& src = p_.regs[static_cast<std::size_t>(pr.source_reg)];
          const T* dP = dproj[static_cast<std::size_t>(k)];
          const T* W = param(weight_[static_cast<std::size_t>(k)]) + pr.row0 * src.width;
          gemm_add<T>(host, false, false, B, src.width, pr.rows, dP, pr.rows, W, src.width, grads + src.grad_offset, p_.grad_size, small);
          if (T* dW = dparam(weight_[static_cast<std::size_t>(k)]))
            gemm_add<T>(host, true, false, pr.rows, src.width, B, dP, pr.rows, regs_t + src.offset, p_.row_size, dW + pr.row0 * src.width, src.width, small);
          if (T* db = dparam(bias_[static_cast<std::size_t>(k)]))
            for (std::int64_t r = 0; r < B; ++r)
              for (std::int64_t j = 0; j < pr.rows; ++j) db[pr.bias0 + j] += dP[r * pr.rows + j];
        }
      };
      if (groups > 1) {  // forward's row groups; each group's parameter sums added in group order
        for (std::size_t k = 0; k < gsums.size(); ++k) std::fill(gsums[k], gsums[k] + p_.param_sizes[k % np], T(0));
        sdk::parallel_for(host, groups, 1, [&](std::int64_t g0, std::int64_t g1) {
          for (std::int64_t g = g0; g < g1; ++g) {
            const std::int64_t r0 = group_start(B, groups, g), n = group_start(B, groups, g + 1) - r0;
            const T** gdng = gdn.data() + g * static_cast<std::int64_t>(S);
            T** gdpg = gdp.data() + g * static_cast<std::int64_t>(dproj.size());
            T** gdsg = gds.data() + g * static_cast<std::int64_t>(S);
            for (std::size_t k = 0; k < dproj.size(); ++k) gdpg[k] = dproj[k] + r0 * ld[k];
            for (std::size_t s = 0; s < S; ++s) gdng[s] = dnext_p[s] + r0 * H, gdsg[s] = dstate_p[s] + r0 * H;
            T** sums = g == 0 ? dprog.data() : gsums.data() + (g - 1) * static_cast<std::int64_t>(np);
            run_program_backward<T>(p_, n, ld.data(), shared, regs_t + r0 * p_.row_size, gdng, gdpg, gdsg, sums,
                                    gwork[static_cast<std::size_t>(g)]);
          }
        });
        for (std::size_t k = 0; k < gsums.size(); ++k)
          for (std::int64_t e = 0; e < p_.param_sizes[k % np]; ++e) dprog[k % np][e] += gsums[k][e];
      } else {
        run_program_backward<T>(p_, B, ld.data(), shared, regs_t, dnext_p.data(), dproj.data(), dstate_p.data(), dprog.data(), pwork, late);
      }
      for (std::size_t n = 0; n < ss_.size(); ++n) {  // through the projections of the states: the previous states' gradients
        const Projection& pr = p_.projections[static_cast<std::size_t>(ss_[n])];
        sdk::packed_gemm<T>(host, B, dproj[static_cast<std::size_t>(ss_[n])], ld[static_cast<std::size_t>(ss_[n])], packed[n], true,
                            dstate_p[static_cast<std::size_t>(pr.source)], H);
      }
      if (q == q1) {  // the block is done: dX of its steps, and its weight and bias gradients
        const std::int64_t rows = (q1 - q0 + 1) * B;
        for (int k : xs_) {
          const Projection& pr = p_.projections[static_cast<std::size_t>(k)];
          const T* g = dP(k, t_lo, t_lo);
          const std::int64_t lg = ld[static_cast<std::size_t>(k)];
          const T* W = param(weight_[static_cast<std::size_t>(k)]) + pr.row0 * I;
          if (DX != nullptr) gemm_add<T>(host, false, false, rows, I, pr.rows, g, lg, W, I, DX + t_lo * B * I, I, small);
          if (T* dW = dparam(weight_[static_cast<std::size_t>(k)])) gemm_add<T>(host, true, false, pr.rows, I, rows, g, lg, X + t_lo * B * I, I, dW + pr.row0 * I, I, small);
          if (T* db = dparam(bias_[static_cast<std::size_t>(k)]))
            for (std::int64_t r = 0; r < rows; ++r)
              for (std::int64_t j = 0; j < pr.rows; ++j) db[pr.bias0 + j] += g[r * lg + j];
        }
        if (reads_y_) read_states(t_lo, q1 - q0 + 1);
        for (int k : ss_) {
          const Projection& pr = p_.projections[static_cast<std::size_t>(k)];
          const T* g = dP(k, t_lo, t_lo);
          const std::int64_t lg = ld[static_cast<std::size_t>(k)];
          const T* src = pr.source == 0 ? gathered : hist + (slot_[static_cast<std::size_t>(pr.source)] * Tn + t_lo) * B * H;
          if (T* dW = dparam(weight_[static_cast<std::size_t>(k)])) gemm_add<T>(host, true, false, pr.rows, H, rows, g, lg, src, H, dW + pr.row0 * H, H, small);
          if (T* db = dparam(bias_[static_cast<std::size_t>(k)]))
            for (std::int64_t r = 0; r < rows; ++r)
              for (std::int64_t j = 0; j < pr.rows; ++j) db[pr.bias0 + j] += g[r * lg + j];
        }
      }
      for (std::int64_t b = 0; b < B; ++b)  // a row past its length passed its state through
        for (std::size_t s = 0; s < S; ++s) {
          T* c = carry + static_cast<std::int64_t>(s) * B * H + b * H;
          if (live(p, t, b)) std::copy(dstate_p[s] + b * H, dstate_p[s] + (b + 1) * H, c);
        }
    }
    for (std::size_t s = 0; s < S; ++s)
      if (d_states[s].data != nullptr) std::copy(carry + static_cast<std::int64_t>(s) * B * H, carry + static_cast<std::int64_t>(s + 1) * B * H, static_cast<T*>(d_states[s].data));
    return 0;
  }

  CellProgram p_;
  std::vector<std::string> names_;
  std::vector<int> weight_, bias_, param_, xs_, ss_, ls_;  // projections of x, of states, late
  std::int64_t x_rows_ = 0, s_rows_ = 0, l_rows_ = 0, slots_ = 0;
  bool reads_y_ = false;  // a projection reads state 0: backward gathers it from y
  std::vector<std::int64_t> slot_;
  const SavedLayout layout_ = saved_layout(p_);  // Note [Gradients in saved memory]
};

// The kernel: a plan per size (input, hidden, biases), each compiled from a cell of that size when a
// call first asks for it.
class Compiled : public InProcessKernel {
 public:
  Compiled(CellMaker make, std::vector<std::string> names) : make_(std::move(make)), names_(std::move(names)) {}
  int supports(const kiln_recurrent_problem* p, char* why, size_t n) const override {
    std::string stopped;
    if (plan(p, &stopped) == nullptr) return fail(why, n, stopped);
    return plan(p)->supports(p, why, n);
  }
  size_t saved_bytes(const kiln_recurrent_problem* p) const override { return plan(p)->saved_bytes(p); }
  size_t work_bytes(const kiln_recurrent_problem* p) const override { return plan(p)->work_bytes(p); }
  int forward(const kiln_host* host, const kiln_recurrent_problem* p, const kiln_tensor* x, const kiln_tensor* states,
              const kiln_tensor* params, kiln_tensor* y, kiln_tensor* finals, void* saved, void* work, char* err,
              size_t n) const override {
    return plan(p)->forward(host, p, x, states, params, y, finals, saved, work, err, n);
  }
  int backward(const kiln_host* host, const kiln_recurrent_problem* p, const kiln_tensor* x, const kiln_tensor* states,
               const kiln_tensor* params, void* saved, const kiln_tensor* dy, const kiln_tensor* d_final, kiln_tensor* dx,
               kiln_tensor* d_states, kiln_tensor* d_params, void* work, char* err, size_t n) const override {
    return plan(p)->backward(host, p, x, states, params, saved, dy, d_final, dx, d_states, d_params, work, err, n);
  }

 private:
  // The plan for p's sizes (null, with the reason in *stopped, when that cell does not compile).
  const Plan* plan(const kiln_recurrent_problem* p, std::string* stopped = nullptr) const {
    const auto key = std::make_tuple(p->input_size, p->hidden_size, p->has_bias != 0);
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = plans_.find(key);
    if (it == plans_.end()) {
      std::shared_ptr<Plan> plan;
      std::string why;
      const KeepDefaultGenerator keep;  // the cell made here draws its weights: put the stream back
      try {
        const auto cell = make_(p->input_size, p->hidden_size, p->has_bias != 0);
        CellProgram program = compile_cell(*cell);
        why = program.stopped;
        if (program.ok()) plan = std::make_shared<Plan>(std::move(program), names_);
      } catch (const std::exception& e) {
        why = fmt::format("no cell of input {} and hidden {}: {}", p->input_size, p->hidden_size, e.what());
      }
      it = plans_.emplace(key, std::make_pair(plan, why)).first;
    }
    if (stopped != nullptr) *stopped = it->second.second;
    return it->second.first.get();
  }

  CellMaker make_;
  std::vector<std::string> names_;
  mutable std::mutex mutex_;
  mutable std::map<std::tuple<std::int64_t, std::int64_t, bool>, std::pair<std::shared_ptr<Plan>, std::string>> plans_;
};

}  // namespace

std::shared_ptr<const Kernel> compiled_kernel(const std::string& cell_name, CellMaker make, std::string* why) {
  std::shared_ptr<nn::RecurrentCell> probe;
  try {
    probe = make(3, 4, true);
  } catch (const std::exception& e) {
    if (why != nullptr) *why = fmt::format("compiling {}: its cell could not be made: {}", cell_name, e.what());
    return nullptr;
  }
  const CellProgram program = compile_cell(*probe);
  if (!program.ok()) {
    if (why != nullptr) *why = fmt::format("{} does not compile: {}", program.cell, program.stopped);
    return nullptr;
  }
  auto k = std::make_shared<Kernel>();
  k->name = "compiled:" + cell_name;
  k->plugin = "compiled";
  k->origin = "compiled";
  k->description = fmt::format("{} compiled from its step ({} ops: {} projections, {} program instructions)", program.cell,
                               program.ops, program.projections.size(), program.code.size());
  k->op = "compiled_" + cell_name;
  for (const auto& [name, v] : probe->named_parameters(false)) k->param_names.push_back(name);
  k->abi = kiln_recurrent_kernel{};
  k->abi.name = nullptr;
  k->abi.state_count = static_cast<std::int32_t>(program.states);
  k->in_process = std::make_shared<Compiled>(std::move(make), k->param_names);
  // Note [Compiled schedule]: state 0's history comes from y; dL/dh_t is reported when asked; a bidirectional
  // layer's two directions write their halves of one [T, B, 2H] output (strided sequences).
  k->flags = KILN_KERNEL_BACKWARD_READS_Y | KILN_KERNEL_REPORTS_DH | KILN_KERNEL_STRIDED_SEQUENCES;
  return k;
}

}  // namespace kiln::plugins
