#pragma once
// The plugin SDK's recurrent-kernel skeleton (kiln/recurrent_kernel.hpp), continued: a narrow batch run
// as two groups of rows apart, each a whole problem of its own.
//
// Note [Rows apart]: on these machines a cache line one core has read costs the other core about 20x
// more to write again (benchmarks/RESULTS.md), so two threads sharing one problem's buffers — one making
// the steps, the other the projections or the weight gradients from the same gates — pay for every line
// that crosses. A narrow batch (too narrow for Note [Rows side by side]) is therefore cut into two
// groups of rows, each run as its own problem with its own saved and scratch memory: its steps, its
// projections, its dX and its own partial weight gradients, on one thread from start to end. Only the
// partial weight gradients meet at the end, added in group order. The groups depend on the problem
// alone, not on the thread count (one thread runs them one after the other), so results are the same
// for any thread count.

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "kiln/plugin.h"
#include "kiln/detail/recurrent_backward.hpp"
#include "kiln/detail/recurrent_forward.hpp"
#include "kiln/detail/recurrent_layout.hpp"

namespace kiln::sdk::detail {

// How many groups of rows: two when the batch is narrow, each group keeps at least one register block
// of rows (packed::kMR) and the weights are small (up to 1 MiB: each group beyond the first keeps its
// own weight gradients, and gathers its rows of a block of steps), else one.
inline std::int64_t row_groups(const kiln_recurrent_problem& p, std::int64_t gates) {
  const std::int64_t half = (p.batch + 1) / 2, GH = gates * p.hidden_size;
  const std::int64_t weights = GH * (p.input_size + p.hidden_size) * (p.dtype == KILN_FLOAT64 ? 8 : 4);
  return p.batch >= 2 * packed::kMR && half * GH < kSideBySideElements && weights <= (std::int64_t(1) << 20) ? 2 : 1;
}

// One group's rows, sub-problem and memory (in elements, each region 64-byte aligned).
template <class Cell>
struct Group {
  std::int64_t r0, rows;
  kiln_recurrent_problem p;
  std::int64_t saved, work, gather, partial;  // offsets in the caller's saved and work blocks
};

inline std::int64_t aligned(std::int64_t elements) { return (elements + 15) / 16 * 16; }

// The groups of p and where each one's memory lies; *saved_total and *work_total: the blocks' sizes.
template <class Cell>
int plan_groups(const kiln_recurrent_problem& p, Group<Cell>* g, std::int64_t* saved_total, std::int64_t* work_total) {
  const int n = static_cast<int>(row_groups(p, Cell::gates));
  const std::int64_t GH = Cell::gates * p.hidden_size;
  // one group's gradients of every parameter
  const std::int64_t params = GH * (p.input_size + p.hidden_size) + 2 * GH + Traits<Cell>::extra_vectors() * p.hidden_size;
  std::int64_t saved = 0, work = 0;
  for (int i = 0; i < n; ++i) {
    Group<Cell>& gi = g[i];
    gi.r0 = p.batch * i / n;
    gi.rows = p.batch * (i + 1) / n - gi.r0;
    gi.p = p;
    gi.p.batch = gi.rows;
    gi.p.lengths = p.lengths != nullptr ? p.lengths + gi.r0 : nullptr;
    const Layout<Cell> L(gi.p);
    const std::int64_t rows_per_block = WeightBlocks(L, gi.p, 1, false).steps * gi.rows;
    gi.saved = saved;
    saved += aligned(L.saved);
    gi.work = work;
    work += aligned(p.phase == KILN_FORWARD ? L.fwd_work : L.bwd_work);
    gi.gather = work;
    // x's (or dx's) rows of a block of steps, or h's before them (Note [h from y]), one at a time
    work += n > 1 ? aligned(rows_per_block * std::max({p.input_size, p.hidden_size, std::int64_t(1)})) : 0;
    gi.partial = work;
    work += p.phase != KILN_FORWARD && i > 0 ? aligned(params) : 0;
  }
  *saved_total = saved;
  *work_total = work;
  return n;
}

// Rows [r0, r0 + rows) of dim `dim` of t (the batch dim: 1 of [T, B, n], 0 of [B, n]), strides kept.
inline kiln_tensor row_slice(const kiln_tensor& t, int dim, std::int64_t r0, std::int64_t rows, std::size_t esize) {
  kiln_tensor v = t;
  if (t.data == nullptr) return v;
  v.data = static_cast<char*>(t.data) + r0 * t.strides[dim] * static_cast<std::int64_t>(esize);
  v.shape[dim] = rows;
  return v;
}

inline std::int32_t one_thread() { return 1; }

// Plans p's groups into g and runs part(i, host, rows) for each group i on Kiln's threads (one group per
// thread when there are two), each seeing a host of one thread, so everything it runs stays on the
// thread that runs it; rows(t, dim) is the group's rows of t. Returns the number of groups.
template <class Cell, class T, class F>
int each_group(const kiln_host* host, const kiln_recurrent_problem& p, Group<Cell>* g, F&& part) {
  std::int64_t saved_total, work_total;
  const int n = plan_groups<Cell>(p, g, &saved_total, &work_total);
  kiln_host alone = *host;
  alone.num_threads = &one_thread;
  parallel_for(host, n, 1, [&](std::int64_t i0, std::int64_t i1) {
    for (std::int64_t i = i0; i < i1; ++i) {
      const Group<Cell>& gi = g[i];
      part(static_cast<int>(i), &alone, [&](const kiln_tensor& t, int dim) { return row_slice(t, dim, gi.r0, gi.rows, sizeof(T)); });
    }
  });
  return n;
}

template <class Cell, class T>
void forward_groups(const kiln_host* host, const kiln_recurrent_problem& p, const kiln_tensor* x, const kiln_tensor* states,
                    const kiln_tensor* params, kiln_tensor* y, kiln_tensor* final_states, T* saved, T* work) {
  Group<Cell> g[2];
  each_group<Cell, T>(host, p, g, [&](int i, const kiln_host* alone, auto&& rows) {
    kiln_tensor xs = rows(*x, 1), ys = rows(*y, 1), hs[2], fs[2];
    for (int s = 0; s < Cell::states; ++s) hs[s] = rows(states[s], 0), fs[s] = rows(final_states[s], 0);
    forward<Cell, T>(alone, g[i].p, &xs, hs, params, &ys, fs, saved + g[i].saved, work + g[i].work, work + g[i].gather);
  });
}

template <class Cell, class T>
void backward_groups(const kiln_host* host, const kiln_recurrent_problem& p, const kiln_tensor* x, const kiln_tensor* states,
                     const kiln_tensor* params, T* saved, const kiln_tensor* dy, const kiln_tensor* d_final, kiln_tensor* dx, kiln_tensor* d_states,
                     kiln_tensor* d_params, T* work) {
  Group<Cell> g[2];
  const int n = each_group<Cell, T>(host, p, g, [&](int i, const kiln_host* alone, auto&& rows) {
    kiln_tensor xs = rows(*x, 1), dys = rows(*dy, 1), dxs = rows(*dx, 1), ys = rows(*p.y, 1), hs[2], dfs[2], dss[2],
                dps[Traits<Cell>::param_count];
    for (int s = 0; s < Cell::states; ++s) hs[s] = rows(states[s], 0), dfs[s] = rows(d_final[s], 0), dss[s] = rows(d_states[s], 0);
    kiln_recurrent_problem gp = g[i].p;
    gp.y = &ys;
    kiln_tensor dhs{};
    if (p.dh != nullptr) dhs = rows(*p.dh, 1);
    gp.dh = p.dh != nullptr ? &dhs : nullptr;
    // The first group writes the weight gradients themselves; the others their own partial ones.
    T* partial = work + g[i].partial;
    for (int q = 0; q < Traits<Cell>::param_count; ++q) {
      dps[q] = d_params[q];
      if (i > 0 && dps[q].data != nullptr) {
        dps[q].data = partial;
        partial += param_elements(d_params[q]);
      }
    }
    backward<Cell, T>(alone, gp, &xs, hs, params, saved + g[i].saved, &dys, dfs, &dxs, dss, dps, work + g[i].work,
                      work + g[i].gather);
  });
  for (int i = 1; i < n; ++i) {  // in group order, whatever the thread count
    const T* partial = work + g[i].partial;
    for (int q = 0; q < Traits<Cell>::param_count; ++q) {
      if (d_params[q].data == nullptr) continue;
      const std::int64_t m = param_elements(d_params[q]);
      T* d = ptr<T>(d_params[q]);
      for (std::int64_t k = 0; k < m; ++k) d[k] += partial[k];
      partial += m;
    }
  }
}

}  // namespace kiln::sdk::detail
