#pragma once
// Note [One MPI caller at a time]: MPI is started MPI_THREAD_SERIALIZED (any thread may call it, one at a
// time), and every MPI call Kiln makes holds this lock: DataParallel's progress thread (Note [Gradient
// buckets]) and the thread that trains take turns. Internal to dist/.

#include <mutex>

namespace kiln::dist::detail {

std::unique_lock<std::mutex> lock_mpi();
/// Whether the MPI library granted at least MPI_THREAD_SERIALIZED (else only the main thread calls it).
bool threads_may_call_mpi();

}  // namespace kiln::dist::detail
