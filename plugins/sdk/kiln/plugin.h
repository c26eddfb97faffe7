/* Kiln's plugin interface, version 5: the whole boundary between Kiln and a fused-kernel plugin.
 *
 * Plain C, so a plugin built separately (another compiler, other flags, no xtensor) keeps working:
 * tensors cross as raw buffers with shapes, strides and a dtype; Kiln lends the plugin its GEMM and
 * its thread pool. A plugin is a shared library exporting one function, kiln_plugin_entry, which
 * returns a kiln_plugin describing its kernels. Kiln refuses a library without that symbol, with
 * another abi_version, or whose kernel names are already registered, and goes on without it.
 *
 *   KILN_PLUGIN_EXPORT const kiln_plugin* kiln_plugin_entry(void) { return &my_plugin; }
 *
 * A recurrent kernel runs one layer and one direction of a recurrent network over a whole sequence,
 * forward and backward, in place of the generic graph of the cell it is named after (the cell's
 * kernel_name(), e.g. "lstm", "gru", "gru_reset_before", "rnn_tanh", "rnn_relu").
 *
 * Shapes (T steps, B batch, I input size, H hidden size):
 *   x           [T, B, I]   time-major input
 *   states[s]   [B, H]      initial state; s < state_count (h, then c for LSTM-like cells)
 *   params[p]   the cell's parameters named param_names[p], as the cell holds them (PyTorch's
 *               layouts: weight_ih [G*H, I], weight_hh [G*H, H], bias_ih and bias_hh [G*H]). A bias
 *               the cell does not have arrives with data == NULL and problem->has_bias == 0.
 *   y           [T, B, H]   the output of every step; zero past a sequence's length
 *   final[s]    [B, H]      the state after each sequence's last step
 * Every tensor Kiln passes is contiguous and row-major (strides are given anyway), except y and dy for a
 * kernel that declares KILN_KERNEL_STRIDED_SEQUENCES: their first two dims may then have any strides
 * (a bidirectional layer has each direction write straight into its half of the [T, B, 2H] output).
 * Backward writes (does not accumulate) dx, d_states and d_params; one with data == NULL is not needed.
 * A kernel that declares KILN_KERNEL_BACKWARD_READS_Y gets forward's y back in backward (problem->y), so
 * it need not keep its own copy of the states it output. A kernel that declares KILN_KERNEL_REPORTS_DH may
 * be handed problem->dh in backward, and then writes there dL/dh_t for every step (Kiln's gradient-flow
 * recording); without it, Kiln runs the generic graph while it records.
 * Functions return 0 on success; otherwise they write a message into err (err_size bytes) and
 * return nonzero, and Kiln raises an error naming the plugin, the kernel and the message.
 */
#ifndef KILN_PLUGIN_H
#define KILN_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Version 2 added attention kernels and version 3 kernel_flags (both at the end of kiln_plugin);
 * version 4 KILN_KERNEL_BACKWARD_READS_Y and kiln_recurrent_problem.y (at its end); version 5
 * KILN_KERNEL_REPORTS_DH and kiln_recurrent_problem.dh. Kiln still loads version 1 to 4 plugins. */
#define KILN_PLUGIN_ABI_VERSION 5
#define KILN_PLUGIN_MIN_ABI_VERSION 1
#define KILN_MAX_RANK 8

#if defined(__GNUC__)
#define KILN_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define KILN_PLUGIN_EXPORT
#endif

typedef enum kiln_dtype { KILN_FLOAT32 = 0, KILN_FLOAT64 = 1, KILN_BOOL = 2 /* one byte, nonzero = true */ } kiln_dtype;
typedef enum kiln_phase { KILN_FORWARD = 0, KILN_BACKWARD = 1, KILN_LAST_BACKWARD = 2 } kiln_phase;

/* What a recurrent kernel can take beyond contiguous tensors (kiln_plugin.kernel_flags, version 3). */
typedef enum kiln_kernel_flag {
  KILN_KERNEL_STRIDED_SEQUENCES = 1, /* y and dy [T, B, H]: strides[0] and strides[1] any, strides[2] == 1 */
  KILN_KERNEL_BACKWARD_READS_Y = 2,  /* version 4: Kiln keeps forward's y and passes it to backward as problem->y */
  KILN_KERNEL_REPORTS_DH = 4         /* version 5: backward writes dL/dh_t into problem->dh when it is not NULL */
} kiln_kernel_flag;

typedef struct kiln_tensor {
  void* data;                      /* owned by Kiln; NULL for an absent tensor */
  int32_t dtype;                   /* kiln_dtype */
  int32_t rank;
  int64_t shape[KILN_MAX_RANK];
  int64_t strides[KILN_MAX_RANK];  /* in elements */
} kiln_tensor;

/* One layer and direction over a sequence. */
typedef struct kiln_recurrent_problem {
  int32_t dtype;                   /* kiln_dtype of every tensor */
  int32_t reverse;                 /* 1: walk t = T-1 .. 0 (the backward direction of a bidirectional layer) */
  int32_t has_bias;                /* 0 when the cell has no biases */
  int32_t phase;                   /* KILN_FORWARD, KILN_BACKWARD, or KILN_LAST_BACKWARD: the last backward
                                      of this forward, which may overwrite `saved` as scratch */
  int64_t steps, batch, input_size, hidden_size;
  const int64_t* lengths;          /* [batch], each in [0, steps]; NULL when every sequence has `steps` */
  /* Version 4. In backward, for a kernel declaring KILN_KERNEL_BACKWARD_READS_Y: the y its forward wrote,
   * unchanged (same strides); NULL otherwise. */
  const kiln_tensor* y;
  /* Version 5. In backward, for a kernel declaring KILN_KERNEL_REPORTS_DH, usually NULL: when not, [T, B, H]
   * (any strides for dims 0 and 1), and the kernel writes at [t, b] the whole gradient of the state h after
   * step t of row b: what reaches it from y_t and from step t + 1 (past a row's length, the gradient its
   * held state carries). Kiln's gradient-flow recording (Note [Gradient flow]) asks for it. */
  kiln_tensor* dh;
} kiln_recurrent_problem;

/* What Kiln lends a kernel. GEMMs are row-major, C = alpha op(A) op(B) + beta C (like cblas), and
 * split across Kiln's threads when large. parallel_for calls fn(ctx, begin, end) on disjoint chunks of
 * [0, n), at least `grain` long, on Kiln's threads, and returns when all are done; nested calls run inline. */
typedef struct kiln_host {
  uint32_t abi_version;
  void (*sgemm)(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
                const float* b, int64_t ldb, float beta, float* c, int64_t ldc);
  void (*dgemm)(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, double alpha, const double* a, int64_t lda,
                const double* b, int64_t ldb, double beta, double* c, int64_t ldc);
  void (*parallel_for)(int64_t n, int64_t grain, void (*fn)(void* ctx, int64_t begin, int64_t end), void* ctx);
  int32_t (*num_threads)(void);
} kiln_host;

typedef struct kiln_recurrent_kernel {
  const char* name;                /* the cell it replaces: "lstm", "gru", "mgu", ... */
  const char* description;         /* one line: what it supports */
  int32_t state_count;             /* 1 (h) or 2 (h, c) */
  int32_t param_count;
  const char* const* param_names;  /* matched by name to the cell's parameters; every cell parameter must be named */
  /* 0 when the kernel runs `p`; otherwise the reason in why. */
  int (*supports)(const kiln_recurrent_problem* p, char* why, size_t why_size);
  /* Bytes forward keeps for backward, and bytes of scratch the call in p->phase may use. Kiln allocates
   * both, 64-byte aligned, from its caching allocator, so the pages are reused across calls. */
  size_t (*saved_bytes)(const kiln_recurrent_problem* p);
  size_t (*work_bytes)(const kiln_recurrent_problem* p);
  int (*forward)(const kiln_host* host, const kiln_recurrent_problem* p, const kiln_tensor* x, const kiln_tensor* states,
                 const kiln_tensor* params, kiln_tensor* y, kiln_tensor* final_states, void* saved, void* work,
                 char* err, size_t err_size);
  /* dy [T, B, H] and d_final[s] [B, H] are the gradients of y and final_states. */
  int (*backward)(const kiln_host* host, const kiln_recurrent_problem* p, const kiln_tensor* x,
                  const kiln_tensor* states, const kiln_tensor* params, void* saved, const kiln_tensor* dy,
                  const kiln_tensor* d_final, kiln_tensor* dx, kiln_tensor* d_states, kiln_tensor* d_params, void* work,
                  char* err, size_t err_size);
} kiln_recurrent_kernel;

/* Scaled dot-product attention (version 2), in place of the generic graph softmax(q k^T scale + masks) v.
 * Every operand is 4-D [batch, heads, length, features] and given by strides, so q, k and v can be
 * read straight out of a packed projection ([L, B, 3E] or [B, L, 3E]) and the output written straight
 * into [L, B, E]: no head split or merge copies.
 *   q [B, H, Lq, D], k [B, H, Lk, D], v [B, H, Lk, Dv], out [B, H, Lq, Dv]: any strides.
 *   masks[0], masks[1]: [B, H, Lq, Lk] with broadcast dims of stride 0; KILN_BOOL (nonzero = masked
 *     out: the score becomes the lowest finite float, so a fully masked row attends uniformly) or the
 *     problem's float dtype (added to the scores); data NULL when absent.
 *   causal: query i may not see key j > Lk - Lq + i (the queries are the last Lq positions).
 *   dropout_p > 0 (training): each weight is zeroed with probability dropout_p and the rest scaled by
 *     1 / (1 - dropout_p), with a mask the kernel derives from `seed` alone, so backward recomputes it.
 * Saved and work memory as for recurrent kernels. Backward writes dq, dk, dv (each NULL when not needed)
 * through their strides; Kiln guarantees they do not overlap. */
typedef struct kiln_attention_problem {
  int32_t dtype;                   /* kiln_dtype of q, k, v, out and their gradients */
  int32_t causal;
  int32_t phase;                   /* KILN_FORWARD, KILN_BACKWARD or KILN_LAST_BACKWARD */
  int32_t reserved;
  int64_t batch, heads, q_len, k_len, head_dim, v_dim;
  double scale;                    /* usually 1 / sqrt(head_dim) */
  double dropout_p;
  uint64_t seed;
} kiln_attention_problem;

typedef struct kiln_attention_kernel {
  const char* name;                /* "sdpa" replaces scaled dot-product attention */
  const char* description;
  int (*supports)(const kiln_attention_problem* p, const kiln_tensor* masks, char* why, size_t why_size);
  size_t (*saved_bytes)(const kiln_attention_problem* p);
  size_t (*work_bytes)(const kiln_attention_problem* p);
  /* weights: [B, H, Lq, Lk] contiguous softmax weights (before dropout) to return, or data NULL. */
  int (*forward)(const kiln_host* host, const kiln_attention_problem* p, const kiln_tensor* q, const kiln_tensor* k,
                 const kiln_tensor* v, const kiln_tensor* masks, kiln_tensor* out, kiln_tensor* weights, void* saved,
                 void* work, char* err, size_t err_size);
  int (*backward)(const kiln_host* host, const kiln_attention_problem* p, const kiln_tensor* q, const kiln_tensor* k,
                  const kiln_tensor* v, const kiln_tensor* masks, void* saved, const kiln_tensor* d_out, kiln_tensor* dq,
                  kiln_tensor* dk, kiln_tensor* dv, void* work, char* err, size_t err_size);
} kiln_attention_kernel;

typedef struct kiln_plugin {
  uint32_t abi_version;            /* KILN_PLUGIN_ABI_VERSION */
  const char* name;
  const char* version;
  int32_t kernel_count;
  const kiln_recurrent_kernel* kernels;
  /* Version 2. */
  int32_t attention_kernel_count;
  const kiln_attention_kernel* attention_kernels;
  /* Version 3: kernel_count kiln_kernel_flag bit sets, one per kernel; NULL when none has any. */
  const uint32_t* kernel_flags;
} kiln_plugin;

typedef const kiln_plugin* (*kiln_plugin_entry_fn)(void);
#define KILN_PLUGIN_ENTRY_SYMBOL "kiln_plugin_entry"

#ifdef __cplusplus
}
#endif

#endif /* KILN_PLUGIN_H */
