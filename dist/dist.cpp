#include "dist/dist.hpp"
#include "dist/mpi_lock.hpp"

#include <mpi.h>

#include <cstdio>
#include <cstdlib>
#include <vector>

#include <fmt/format.h>

#include "tensor/error.hpp"
#include "tensor/tensor.hpp"

namespace kiln::dist {
namespace {

bool g_started = false;
int g_rank = 0, g_size = 1;
int g_provided = 0;
std::mutex g_mpi;

void finish() {
  int done = 0;
  MPI_Finalized(&done);
  if (!done) MPI_Finalize();
}

MPI_Op op_of(ReduceOp op) { return op == ReduceOp::Sum ? MPI_SUM : op == ReduceOp::Max ? MPI_MAX : MPI_MIN; }

// MPI's error as text, thrown as a kiln::Error naming the call.
void check(int rc, const char* call) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int n = 0;
  MPI_Error_string(rc, text, &n);
  throw Error(fmt::format("MPI {} failed on rank {}: {}", call, g_rank, std::string(text, static_cast<std::size_t>(n))));
}

}  // namespace

namespace detail {
std::unique_lock<std::mutex> lock_mpi() { return std::unique_lock<std::mutex>(g_mpi); }
bool threads_may_call_mpi() { return g_started && g_provided >= MPI_THREAD_SERIALIZED; }
}  // namespace detail

bool launched() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK"})
    if (std::getenv(v) != nullptr) return true;
  return false;
}

void init() {
  if (g_started || !launched()) return;
  int ready = 0;
  MPI_Initialized(&ready);
  if (!ready) {
    int provided = 0;
    check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided), "Init_thread");
    std::atexit(finish);
  }
  MPI_Query_thread(&g_provided);
  // Errors come back as codes (then kiln::Error), not MPI's default of aborting without a word.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &g_size);
  g_started = true;
}

int rank() { return g_rank; }
int world_size() { return g_size; }

void all_reduce(Tensor& t, ReduceOp op) {
  if (!g_started || g_size == 1 || t.numel() == 0) return;
  MPI_Datatype type = t.dtype() == kFloat32 ? MPI_FLOAT : t.dtype() == kFloat64 ? MPI_DOUBLE : t.dtype() == kInt64 ? MPI_INT64_T : MPI_DATATYPE_NULL;
  KILN_CHECK(type != MPI_DATATYPE_NULL, "all_reduce: {} tensors are not reduced", t.dtype());
  KILN_CHECK(t.numel() <= INT32_MAX, "all_reduce: {} elements at once; reduce in parts", t.numel());
  const auto lock = detail::lock_mpi();
  check(MPI_Allreduce(MPI_IN_PLACE, t.raw_data(), static_cast<int>(t.numel()), type, op_of(op), MPI_COMM_WORLD), "Allreduce");
}

double all_reduce(double v, ReduceOp op) {
  if (!g_started || g_size == 1) return v;
  const auto lock = detail::lock_mpi();
  check(MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_DOUBLE, op_of(op), MPI_COMM_WORLD), "Allreduce");
  return v;
}

void broadcast(Tensor& t, int root) {
  if (!g_started || g_size == 1 || t.numel() == 0) return;
  KILN_CHECK(t.nbytes() <= INT32_MAX, "broadcast: {} bytes at once; send in parts", t.nbytes());
  const auto lock = detail::lock_mpi();
  check(MPI_Bcast(t.raw_data(), static_cast<int>(t.nbytes()), MPI_BYTE, root, MPI_COMM_WORLD), "Bcast");
}

std::string broadcast(const std::string& text, int root) {
  if (!g_started || g_size == 1) return text;
  std::int64_t n = static_cast<std::int64_t>(text.size());
  const auto lock = detail::lock_mpi();
  check(MPI_Bcast(&n, 1, MPI_INT64_T, root, MPI_COMM_WORLD), "Bcast");
  std::string out = g_rank == root ? text : std::string(static_cast<std::size_t>(n), '\0');
  if (n > 0) check(MPI_Bcast(out.data(), static_cast<int>(n), MPI_CHAR, root, MPI_COMM_WORLD), "Bcast");
  return out;
}

void barrier() {
  if (!g_started || g_size == 1) return;
  const auto lock = detail::lock_mpi();
  check(MPI_Barrier(MPI_COMM_WORLD), "Barrier");
}

void send(const std::string& text, int to, int tag) {
  KILN_CHECK(g_started && to >= 0 && to < g_size && tag >= 0, "send: to rank {} of {} under tag {}", to, g_size, tag);
  KILN_CHECK(text.size() <= INT32_MAX, "send: {} bytes at once", text.size());
  const auto lock = detail::lock_mpi();
  check(MPI_Send(text.data(), static_cast<int>(text.size()), MPI_CHAR, to, tag, MPI_COMM_WORLD), "Send");
}

std::string receive(int from, int tag, int* source, int* got_tag) {
  KILN_CHECK(g_started, "receive: not started by mpirun");
  const auto lock = detail::lock_mpi();
  MPI_Status st;
  check(MPI_Probe(from < 0 ? MPI_ANY_SOURCE : from, tag < 0 ? MPI_ANY_TAG : tag, MPI_COMM_WORLD, &st), "Probe");
  int n = 0;
  MPI_Get_count(&st, MPI_CHAR, &n);
  std::string out(static_cast<std::size_t>(n), '\0');
  check(MPI_Recv(out.data(), n, MPI_CHAR, st.MPI_SOURCE, st.MPI_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE), "Recv");
  if (source != nullptr) *source = st.MPI_SOURCE;
  if (got_tag != nullptr) *got_tag = st.MPI_TAG;
  return out;
}

bool probe(int* source, int* tag) {
  if (!g_started) return false;
  int flag = 0;
  const auto lock = detail::lock_mpi();
  MPI_Status st;
  check(MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &st), "Iprobe");
  if (flag != 0) {
    if (source != nullptr) *source = st.MPI_SOURCE;
    if (tag != nullptr) *tag = st.MPI_TAG;
  }
  return flag != 0;
}

void abort(const std::string& message, int code) {
  std::fprintf(stderr, "%s\n", message.c_str());
  std::fflush(stderr);
  if (g_started) MPI_Abort(MPI_COMM_WORLD, code);
  std::exit(code);
}

}  // namespace kiln::dist
