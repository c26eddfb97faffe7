#pragma once
// Processes working as one (Open MPI): what data-parallel training and distributed sweeps are made of.
//
// Note [Launched or alone]: init() starts MPI only when this process was started by mpirun or a
// cluster's launcher (it finds their environment: OMPI_COMM_WORLD_SIZE, PMIX_RANK, PMI_SIZE); a program
// run on its own is rank 0 of 1 and makes no MPI call, so Kiln never needs an MPI runtime to run alone.
// Every collective is then a no-op (all_reduce leaves the tensor as it is).
//
//   kiln::dist::init();
//   kiln::Tensor g = ...;
//   kiln::dist::all_reduce(g);            // summed over the ranks, in place
//   if (kiln::dist::rank() == 0) save(...);

#include <cstdint>
#include <string>

namespace kiln {
class Tensor;
}

namespace kiln::dist {

/// Starts MPI if launched by it (Note [Launched or alone]); idempotent. Registers finalize at exit.
void init();
/// Whether the environment says a launcher started this process as one of several.
bool launched();
/// This process's rank and the number of ranks (0 and 1 alone).
int rank();
int world_size();
/// True with more than one rank.
inline bool distributed() { return world_size() > 1; }

enum class ReduceOp { Sum, Max, Min };

/// Combines `t` over every rank, in place (float32, float64 or int64; contiguous, any shape, the same on
/// every rank). The reduction order is fixed for a given number of ranks: repeated runs give the same bits.
void all_reduce(Tensor& t, ReduceOp op = ReduceOp::Sum);
/// The same for a number.
double all_reduce(double v, ReduceOp op = ReduceOp::Sum);
/// Replaces `t` on every rank by root's.
void broadcast(Tensor& t, int root = 0);
/// Text from root, on every rank.
std::string broadcast(const std::string& text, int root = 0);
/// Waits for every rank.
void barrier();

/// Point to point, for coordination (a sweep's runs): `text` to rank `to` under `tag` (>= 0).
void send(const std::string& text, int to, int tag);
/// Waits for a message from `from` (-1: any rank) under `tag` (-1: any tag); says who sent it and with
/// which tag.
std::string receive(int from, int tag, int* source = nullptr, int* got_tag = nullptr);
/// Whether a message waits (from any rank, under any tag), without waiting; says whose and which tag.
bool probe(int* source, int* tag);
/// Ends the whole job now with `message` from this rank (on stderr) and exit code `code`: how an error on
/// one rank stops the others instead of leaving them waiting in a collective.
[[noreturn]] void abort(const std::string& message, int code = 1);

}  // namespace kiln::dist
