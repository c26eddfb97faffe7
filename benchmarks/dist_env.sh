# Sourced by the MPI benchmarks: one thread per rank on OpenBLAS's AVX-512 kernel, mpirun allowed as
# root, and a scratch folder `out` removed at exit.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
unset OPENBLAS_CORETYPE              # OpenBLAS's AVX-512 kernel (read when the library loads)
export OPENBLAS_NUM_THREADS=1        # one thread per rank, Kiln's and OpenBLAS's
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
