// fraudfpga: batch entry point for conifer's C++ emulation of a decision forest (the forest's
// golden model). conifer.h is used untouched; the types are conifer's BDTConfig as its cpp
// backend writes it, given here by -D definitions. Inputs are exact values of input_t
// (integer codes * 2^-frac); rows are split over threads, each calling
// conifer::BDT::decision_function.
#include <algorithm>
#include <memory>
#include <thread>
#include <vector>

#include "ap_fixed.h"
#include "conifer.h"

struct BDTConfig : conifer::ConiferConfiguration {
    typedef FRAUDFPGA_INPUT_T threshold_t;
    typedef FRAUDFPGA_INPUT_T input_t;
    typedef FRAUDFPGA_INPUT_T weight_t;
    typedef FRAUDFPGA_SCORE_T score_t;
    static constexpr bool useAddTree = false;
};

using Forest = conifer::BDT<BDTConfig>;

static void run_rows(const Forest *bdt, const double *x, double *y, long first, long last,
                     int n_in) {
    for (long r = first; r < last; r++) {
        std::vector<BDTConfig::input_t> in(n_in);
        for (int i = 0; i < n_in; i++) in[i] = BDTConfig::input_t(x[r * n_in + i]);
        y[r] = bdt->decision_function(in).at(0).to_double();
    }
}

extern "C" int forest_batch(const char *model_json, const double *x, double *y, long n, int n_in,
                            int threads) {
    std::unique_ptr<Forest> bdt;
    try {
        bdt.reset(new Forest(model_json));
    } catch (...) {
        return 1;
    }
    threads = std::max(1, std::min<int>(threads, (int)std::max(1L, n / 1024)));
    std::vector<std::thread> pool;
    long chunk = (n + threads - 1) / threads;
    for (int t = 0; t < threads; t++) {
        long first = t * chunk, last = std::min(n, first + chunk);
        if (first < last) pool.emplace_back(run_rows, bdt.get(), x, y, first, last, n_in);
    }
    for (auto &worker : pool) worker.join();
    return 0;
}
