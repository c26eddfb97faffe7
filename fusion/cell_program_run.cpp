// Running a cell program (Note [Cell programs]) over rows, forward and backward. Each instruction works
// on whole vectors of a row, so its inner loop is a plain loop over H values that the compiler
// vectorises; a width-1 operand (a constant) is broadcast.

#include <algorithm>
#include <cmath>

#include "fusion/cell_program.hpp"
#include "kiln/lanes.hpp"

namespace kiln::plugins {
namespace {

using namespace sdk::simd;

// Where registers live: a row's saved values, its scratch values and the shared ones; or, for
// gradients, a row's gradient block and the shared registers' gradients.
template <class T>
struct Block {
  T* row;
  T* shared;
  T* scratch = nullptr;
  bool grads = false;
  // Null when the block does not hold r (a row's scratch value, seen from backward): never offset from null.
  T* at(const Register& r) const {
    T* base = r.shared ? shared : grads || !r.scratch ? row : scratch;
    return base == nullptr ? nullptr : base + (r.shared || !grads ? r.offset : r.grad_offset);
  }
};

// One instruction forward. (Loads are done by the caller.)
template <class T>
void step_forward(const CellProgram& p, const Instr& i, const Block<T>& m) {
  const Register& d = p.regs[static_cast<std::size_t>(i.dst)];
  T* y = m.at(d);
  const std::int64_t n = d.width;
  // f(a, b) on xsimd batches, then the scalar tail (kiln/lanes.hpp); a width-1 operand is broadcast.
  auto binary = [&](auto f) {
    const Register &ra = p.regs[static_cast<std::size_t>(i.a)], &rb = p.regs[static_cast<std::size_t>(i.b)];
    const T* a = m.at(ra);
    const T* b = m.at(rb);
    const bool wa = ra.width == n, wb = rb.width == n;
    lanes<T>(n, [&](auto v, std::int64_t k) {
      using V = decltype(v);
      put(y + k, f(wa ? load<V>(a + k) : V(a[0]), wb ? load<V>(b + k) : V(b[0])));
    });
  };
  auto unary = [&](auto f) {
    const T* a = m.at(p.regs[static_cast<std::size_t>(i.a)]);
    lanes<T>(n, [&](auto v, std::int64_t k) {
      using V = decltype(v);
      put(y + k, f(load<V>(a + k)));
    });
  };
  auto scalar_unary = [&](auto f) {
    const T* a = m.at(p.regs[static_cast<std::size_t>(i.a)]);
    for (std::int64_t k = 0; k < n; ++k) y[k] = f(a[k]);
  };
  switch (i.op) {
    case Opcode::Constant: y[0] = static_cast<T>(i.imm); break;
    case Opcode::Slice: break;  // a view
    case Opcode::Concat: {
      const Register &ra = p.regs[static_cast<std::size_t>(i.a)], &rb = p.regs[static_cast<std::size_t>(i.b)];
      std::copy(m.at(ra), m.at(ra) + ra.width, y);
      std::copy(m.at(rb), m.at(rb) + rb.width, y + ra.width);
      break;
    }
    case Opcode::Add: binary([](auto a, auto b) { return a + b; }); break;
    case Opcode::Sub: binary([](auto a, auto b) { return a - b; }); break;
    case Opcode::Mul: binary([](auto a, auto b) { return a * b; }); break;
    case Opcode::Div: binary([](auto a, auto b) { return a / b; }); break;
    case Opcode::Neg: unary([](auto a) { return -a; }); break;
    case Opcode::Sigmoid: unary([](auto a) { return sigmoid(a); }); break;
    case Opcode::Tanh: unary([](auto a) { return tanh_of(a); }); break;
    case Opcode::Relu: unary([](auto a) { return relu(a); }); break;
    case Opcode::Exp: unary([](auto a) { return exp_of(a); }); break;
    case Opcode::Log: scalar_unary([](T a) { return std::log(a); }); break;
    case Opcode::Sqrt: scalar_unary([](T a) { return std::sqrt(a); }); break;
    case Opcode::Abs: scalar_unary([](T a) { return std::abs(a); }); break;
    case Opcode::Pow: scalar_unary([e = static_cast<T>(i.imm)](T a) { return std::pow(a, e); }); break;
    case Opcode::Clamp: scalar_unary([lo = static_cast<T>(i.imm), hi = static_cast<T>(i.imm2)](T a) { return std::min(std::max(a, lo), hi); }); break;
    case Opcode::Normalize: {  // two passes over the row, as ops/nn.cpp's layer_norm: the mean, then the variance
      const T* a = m.at(p.regs[static_cast<std::size_t>(i.a)]);
      const T mean = sum_lanes<T>(n, [&](auto v, std::int64_t k) { return load<decltype(v)>(a + k); }) / static_cast<T>(n);
      const T var = sum_lanes<T>(n, [&](auto v, std::int64_t k) {
                      using V = decltype(v);
                      const V c = load<V>(a + k) - V(mean);
                      return c * c;
                    }) / static_cast<T>(n);
      const T inv = T(1) / std::sqrt(var + static_cast<T>(i.imm));
      m.at(p.regs[static_cast<std::size_t>(i.b)])[0] = inv;
      lanes<T>(n, [&](auto v, std::int64_t k) {
        using V = decltype(v);
        put(y + k, (load<V>(a + k) - V(mean)) * V(inv));
      });
      break;
    }
    default: break;
  }
}

// One instruction backward: adds dy's share to the operands' gradients in `dm` (values in `m`).
template <class T>
void step_backward(const CellProgram& p, const Instr& i, const Block<T>& m, const Block<T>& dm) {
  const Register& d = p.regs[static_cast<std::size_t>(i.dst)];
  const T* dy = dm.at(d);
  const T* y = m.at(d);
  const std::int64_t n = d.width;
  // Adds g(k) to operand r's gradient, summing over the row when r is broadcast (width 1).
  auto add_to = [&](int r, auto g) {
    const Register& rr = p.regs[static_cast<std::size_t>(r)];
    T* da = dm.at(rr);
    if (rr.width == n) {
      for (std::int64_t k = 0; k < n; ++k) da[k] += g(k);
    } else {
      T s = 0;
      for (std::int64_t k = 0; k < n; ++k) s += g(k);
      da[0] += s;
    }
  };
  auto full = [&](int r) { return p.regs[static_cast<std::size_t>(r)].width == n; };
  auto value = [&](int r) {
    const Register& rr = p.regs[static_cast<std::size_t>(r)];
    const T* v = m.at(rr);
    const bool scalar = rr.width != n;
    return [v, scalar](std::int64_t k) { return scalar ? v[0] : v[k]; };
  };
  switch (i.op) {
    case Opcode::Concat: {
      const Register &ra = p.regs[static_cast<std::size_t>(i.a)], &rb = p.regs[static_cast<std::size_t>(i.b)];
      T* da = dm.at(ra);
      T* db = dm.at(rb);
      for (std::int64_t k = 0; k < ra.width; ++k) da[k] += dy[k];
      for (std::int64_t k = 0; k < rb.width; ++k) db[k] += dy[ra.width + k];
      break;
    }
    case Opcode::Add:
      add_to(i.a, [&](std::int64_t k) { return dy[k]; });
      add_to(i.b, [&](std::int64_t k) { return dy[k]; });
      break;
    case Opcode::Sigmoid:
      if (full(i.a)) {
        T* da = dm.at(p.regs[static_cast<std::size_t>(i.a)]);
        lanes<T>(n, [&](auto v, std::int64_t k) {
          using V = decltype(v);
          const V s = load<V>(y + k);
          put(da + k, load<V>(da + k) + load<V>(dy + k) * s * (V(T(1)) - s));
        });
        break;
      }
      add_to(i.a, [&](std::int64_t k) { return dy[k] * y[k] * (T(1) - y[k]); });
      break;
    case Opcode::Tanh:
      if (full(i.a)) {
        T* da = dm.at(p.regs[static_cast<std::size_t>(i.a)]);
        lanes<T>(n, [&](auto v, std::int64_t k) {
          using V = decltype(v);
          const V t = load<V>(y + k);
          put(da + k, load<V>(da + k) + load<V>(dy + k) * (V(T(1)) - t * t));
        });
        break;
      }
      add_to(i.a, [&](std::int64_t k) { return dy[k] * (T(1) - y[k] * y[k]); });
      break;
    case Opcode::Sub:
      add_to(i.a, [&](std::int64_t k) { return dy[k]; });
      add_to(i.b, [&](std::int64_t k) { return -dy[k]; });
      break;
    case Opcode::Mul: {
      if (full(i.a) && full(i.b) && i.a != i.b) {
        const T* a = m.at(p.regs[static_cast<std::size_t>(i.a)]);
        const T* b = m.at(p.regs[static_cast<std::size_t>(i.b)]);
        T* da = dm.at(p.regs[static_cast<std::size_t>(i.a)]);
        T* db = dm.at(p.regs[static_cast<std::size_t>(i.b)]);
        lanes<T>(n, [&](auto v, std::int64_t k) {
          using V = decltype(v);
          const V g = load<V>(dy + k);
          put(da + k, load<V>(da + k) + g * load<V>(b + k));
          put(db + k, load<V>(db + k) + g * load<V>(a + k));
        });
        break;
      }
      const auto a = value(i.a), b = value(i.b);
      add_to(i.a, [&](std::int64_t k) { return dy[k] * b(k); });
      add_to(i.b, [&](std::int64_t k) { return dy[k] * a(k); });
      break;
    }
    case Opcode::Div: {
      const auto a = value(i.a), b = value(i.b);
      add_to(i.a, [&](std::int64_t k) { return dy[k] / b(k); });
      add_to(i.b, [&](std::int64_t k) { return -dy[k] * a(k) / (b(k) * b(k)); });
      break;
    }
    case Opcode::Neg: add_to(i.a, [&](std::int64_t k) { return -dy[k]; }); break;
    case Opcode::Relu: add_to(i.a, [&](std::int64_t k) { return y[k] > T(0) ? dy[k] : T(0); }); break;
    case Opcode::Exp: add_to(i.a, [&](std::int64_t k) { return dy[k] * y[k]; }); break;
    case Opcode::Log: {
      const auto a = value(i.a);
      add_to(i.a, [&](std::int64_t k) { return dy[k] / a(k); });
      break;
    }
    case Opcode::Sqrt: add_to(i.a, [&](std::int64_t k) { return dy[k] / (T(2) * y[k]); }); break;
    case Opcode::Abs: {
      const auto a = value(i.a);
      add_to(i.a, [&](std::int64_t k) { return a(k) > T(0) ? dy[k] : a(k) < T(0) ? -dy[k] : T(0); });
      break;
    }
    case Opcode::Pow: {
      const auto a = value(i.a);
      const T e = static_cast<T>(i.imm);
      add_to(i.a, [&](std::int64_t k) { return dy[k] * e * std::pow(a(k), e - T(1)); });
      break;
    }
    case Opcode::Clamp: {
      const auto a = value(i.a);
      const T lo = static_cast<T>(i.imm), hi = static_cast<T>(i.imm2);
      add_to(i.a, [&](std::int64_t k) { return a(k) >= lo && a(k) <= hi ? dy[k] : T(0); });
      break;
    }
    case Opcode::Normalize: {  // dx = rstd (dy - mean(dy) - y mean(dy y)), y the normalised row
      const T inv = m.at(p.regs[static_cast<std::size_t>(i.b)])[0];
      const T mean_g = sum_lanes<T>(n, [&](auto v, std::int64_t k) { return load<decltype(v)>(dy + k); }) / static_cast<T>(n);
      const T mean_gy = sum_lanes<T>(n, [&](auto v, std::int64_t k) {
                          using V = decltype(v);
                          return load<V>(dy + k) * load<V>(y + k);
                        }) / static_cast<T>(n);
      T* da = dm.at(p.regs[static_cast<std::size_t>(i.a)]);
      lanes<T>(n, [&](auto v, std::int64_t k) {
        using V = decltype(v);
        put(da + k, load<V>(da + k) + V(inv) * (load<V>(dy + k) - V(mean_g) - load<V>(y + k) * V(mean_gy)));
      });
      break;
    }
    default: break;  // loads and constants are handled by the caller; slices are views
  }
}

}  // namespace

// Note [Instruction by instruction]: the rows run one instruction at a time (each instruction over every
// row, then the next), not one row at a time through the whole program: the same instruction back to
// back keeps the dispatch predictable, which on a small batch's short rows (H = 64: four xsimd batches)
// is much of an instruction's cost. Each row's values are its own (scratch too), so the results are the
// same either way; backward's sums of shared gradients take rows in order for each instruction.
template <class T>
void run_program(const CellProgram& p, std::int64_t rows, const T* const* proj, const std::int64_t* ld_proj, const T* const* state,
                 const T* const* param, T* shared, T* scratch, T* saved, T* const* next, const StageFn<T>& between) {
  const std::int64_t H = p.hidden_size;
  for (std::size_t c = 0; c < p.shared_code; ++c) {
    const Instr& i = p.code[c];
    const Register& d = p.regs[static_cast<std::size_t>(i.dst)];
    if (i.op == Opcode::LoadParam) std::copy(param[i.a], param[i.a] + d.width, shared + d.offset);
    else step_forward<T>(p, i, Block<T>{nullptr, shared});
  }
  auto row = [&](std::int64_t r) { return Block<T>{saved + r * p.row_size, shared, scratch + r * p.scratch_size}; };
  std::size_t first = p.shared_code;
  for (int stage = 0; stage < p.stages; ++stage) {
    std::size_t end = first;
    while (end < p.code.size() && p.code[end].stage == stage) ++end;
    for (std::size_t c = first; c < end; ++c) {
      const Instr& i = p.code[c];
      const Register& d = p.regs[static_cast<std::size_t>(i.dst)];
      if (i.op == Opcode::LoadProjection) {
        for (std::int64_t r = 0; r < rows; ++r) {
          const T* src = proj[i.a] + r * ld_proj[i.a];
          std::copy(src, src + d.width, row(r).at(d));
        }
      } else if (i.op == Opcode::LoadState) {
        for (std::int64_t r = 0; r < rows; ++r) std::copy(state[i.a] + r * H, state[i.a] + (r + 1) * H, row(r).at(d));
      } else if (i.op == Opcode::Slice) {  // a view: nothing to run, unless kept as a copy (Note [Saved slices])
        if (d.copy)
          for (std::int64_t r = 0; r < rows; ++r) {
            const T* src = row(r).at(p.regs[static_cast<std::size_t>(i.a)]) + i.offset;
            std::copy(src, src + d.width, row(r).at(d));
          }
      } else {
        for (std::int64_t r = 0; r < rows; ++r) step_forward<T>(p, i, row(r));
      }
    }
    if (stage + 1 == p.stages)
      for (std::size_t s = 0; s < p.outputs.size(); ++s)
        for (std::int64_t r = 0; r < rows; ++r) {
          const T* out = row(r).at(p.regs[static_cast<std::size_t>(p.outputs[s])]);
          std::copy(out, out + H, next[s] + r * H);
        }
    if (stage + 1 < p.stages && between) between(stage, nullptr);
    first = end;
  }
}

template <class T>
void run_program_backward(const CellProgram& p, std::int64_t rows, const std::int64_t* ld_proj, const T* shared, const T* saved,
                          const T* const* dnext, T* const* dproj, T* const* dstate, T* const* dparam, T* work,
                          const StageFn<T>& between) {
  const std::int64_t H = p.hidden_size;
  T* grads = work;  // every row's gradient block, kept across stages
  T* dshared = work + rows * p.grad_size;
  std::fill(grads, grads + rows * p.grad_size, T(0));
  std::fill(dshared, dshared + p.shared_size, T(0));
  // A projection loaded once has its gradient written at its load, not summed there: nothing is written
  // before (the caller may keep it over the saved values this pass reads: Note [Gradients in saved memory]).
  auto once = [&](std::size_t k) { return k < p.loads.size() && p.loads[k] == 1; };
  for (std::size_t k = 0; k < p.projections.size(); ++k)
    if (!once(k))
      for (std::int64_t r = 0; r < rows; ++r) std::fill(dproj[k] + r * ld_proj[k], dproj[k] + r * ld_proj[k] + p.projections[k].rows, T(0));
  for (std::size_t s = 0; s < p.states; ++s) std::fill(dstate[s], dstate[s] + rows * H, T(0));
  for (std::int64_t r = 0; r < rows; ++r) {
    const Block<T> dm{grads + r * p.grad_size, dshared, nullptr, true};
    for (std::size_t s = 0; s < p.outputs.size(); ++s) {
      T* d = dm.at(p.regs[static_cast<std::size_t>(p.outputs[s])]);
      for (std::int64_t k = 0; k < H; ++k) d[k] += dnext[s][r * H + k];
    }
  }
  std::size_t end = p.code.size();
  for (int stage = p.stages; stage-- > 0;) {
    if (stage + 1 < p.stages && between) between(stage, grads);  // the late projections read in stage + 1
    std::size_t first = end;
    while (first > p.shared_code && p.code[first - 1].stage == stage) --first;
    // Note [Instruction by instruction]
    for (std::size_t c = end; c-- > first;) {
      const Instr& i = p.code[c];
      const Register& d = p.regs[static_cast<std::size_t>(i.dst)];
      if (i.op == Opcode::Slice) continue;  // a view: its gradient is its base's
      for (std::int64_t r = 0; r < rows; ++r) {
        const Block<T> m{const_cast<T*>(saved + r * p.row_size), const_cast<T*>(shared)};
        const Block<T> dm{grads + r * p.grad_size, dshared, nullptr, true};
        if (i.op == Opcode::LoadProjection) {
          const T* g = dm.at(d);
          T* out = dproj[i.a] + r * ld_proj[i.a];
          if (once(static_cast<std::size_t>(i.a)))
            std::copy(g, g + d.width, out);
          else
            for (std::int64_t k = 0; k < d.width; ++k) out[k] += g[k];
        } else if (i.op == Opcode::LoadState) {
          const T* g = dm.at(d);
          for (std::int64_t k = 0; k < H; ++k) dstate[i.a][r * H + k] += g[k];
        } else {
          step_backward<T>(p, i, m, dm);
        }
      }
    }
    end = first;
  }
  // The shared registers' gradients, summed over the rows, back to the parameters.
  const Block<T> m{nullptr, const_cast<T*>(shared)}, dm{nullptr, dshared, nullptr, true};
  for (std::size_t c = p.shared_code; c-- > 0;) {
    const Instr& i = p.code[c];
    const Register& d = p.regs[static_cast<std::size_t>(i.dst)];
    if (i.op == Opcode::LoadParam) {
      for (std::int64_t k = 0; k < d.width; ++k) dparam[i.a][k] += dshared[d.offset + k];
    } else {
      step_backward<T>(p, i, m, dm);
    }
  }
}

template void run_program<float>(const CellProgram&, std::int64_t, const float* const*, const std::int64_t*, const float* const*,
                                 const float* const*, float*, float*, float*, float* const*, const StageFn<float>&);
template void run_program<double>(const CellProgram&, std::int64_t, const double* const*, const std::int64_t*, const double* const*,
                                  const double* const*, double*, double*, double*, double* const*, const StageFn<double>&);
template void run_program_backward<float>(const CellProgram&, std::int64_t, const std::int64_t*, const float*, const float*,
                                          const float* const*, float* const*, float* const*, float* const*, float*,
                                          const StageFn<float>&);
template void run_program_backward<double>(const CellProgram&, std::int64_t, const std::int64_t*, const double*, const double*,
                                           const double* const*, double* const*, double* const*, double* const*, double*,
                                           const StageFn<double>&);

}  // namespace kiln::plugins
