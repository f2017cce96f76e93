// fraudfpga: batch entry point for the hls4ml C simulation (the golden model).
// It includes hls4ml's firmware/myproject.cpp: one translation unit, so g++ parses ap_types and
// nnet_utils once (the tiny run's network: 3.1 s of g++ instead of 5.6 s for myproject.cpp,
// hls4ml's myproject_bridge.cpp, which this library does not call, and this file). Inputs are
// exactly representable values of input_t (integer codes * 2^-frac), so the cast is exact;
// rows are split over threads, each calling the untouched firmware function.
#include <algorithm>
#include <thread>
#include <vector>

#include "firmware/myproject.cpp"

static void run_rows(const double *x, double *y, long first, long last) {
    for (long r = first; r < last; r++) {
        input_t in[FRAUDFPGA_N_IN];
        result_t out[FRAUDFPGA_N_OUT];
        for (int i = 0; i < FRAUDFPGA_N_IN; i++) in[i] = input_t(x[r * FRAUDFPGA_N_IN + i]);
        myproject(in, out);
        for (int j = 0; j < FRAUDFPGA_N_OUT; j++) y[r * FRAUDFPGA_N_OUT + j] = out[j].to_double();
    }
}

extern "C" void fraudfpga_batch(const double *x, double *y, long n, int threads) {
    threads = std::max(1, std::min<int>(threads, (int)std::max(1L, n / 1024)));
    std::vector<std::thread> pool;
    long chunk = (n + threads - 1) / threads;
    for (int t = 0; t < threads; t++) {
        long first = t * chunk, last = std::min(n, first + chunk);
        if (first < last) pool.emplace_back(run_rows, x, y, first, last);
    }
    for (auto &worker : pool) worker.join();
}
