// OpenBLAS's CBLAS interface (Debian libopenblas-dev), used by the store benchmark to compare cblas_sgemv with the
// store's own scan kernels.
#include <cblas.h>
// Not declared by every cblas.h; OpenBLAS exports it.
void openblas_set_num_threads(int num_threads);
