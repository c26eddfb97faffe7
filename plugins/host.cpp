#include "plugins/host.hpp"

#include "ops/gemm.hpp"
#include "tensor/parallel.hpp"

namespace kiln::plugins {
namespace {

void host_sgemm(int ta, int tb, std::int64_t m, std::int64_t n, std::int64_t k, float alpha, const float* a, std::int64_t lda,
                const float* b, std::int64_t ldb, float beta, float* c, std::int64_t ldc) {
  blas::gemm<float>(ta != 0, tb != 0, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void host_dgemm(int ta, int tb, std::int64_t m, std::int64_t n, std::int64_t k, double alpha, const double* a,
                std::int64_t lda, const double* b, std::int64_t ldb, double beta, double* c, std::int64_t ldc) {
  blas::gemm<double>(ta != 0, tb != 0, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void host_parallel_for(std::int64_t n, std::int64_t grain, void (*fn)(void*, std::int64_t, std::int64_t), void* ctx) {
  parallel_for(n, grain, [&](std::int64_t b, std::int64_t e) { fn(ctx, b, e); });
}

std::int32_t host_num_threads() { return num_threads(); }

}  // namespace

const kiln_host& host_services() {
  static const kiln_host h{KILN_PLUGIN_ABI_VERSION, &host_sgemm, &host_dgemm, &host_parallel_for, &host_num_threads};
  return h;
}

}  // namespace kiln::plugins
