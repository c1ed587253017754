// Run-time kernel sets (core/kernels.h): every set this CPU supports against the plain double
// reference on awkward shapes (forward, inference forward, backward), the sets against each
// other, the choice logic with injected CPU feature masks (a set the CPU lacks is refused), and
// the CLI refusing MAELRE_KERNELS it cannot honour with exit 2. On an AVX-512 machine all three
// sets run here, so the AVX2 kernels are tested there too.
#include <criterion/criterion.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "core/attention.h"
#include "core/kernels.h"
#include "core/ops.h"
#include "core/status.h"
#include "core/threads.h"
#include "tests/gradcheck.h"

static double max_rel(const float *a, const float *b, size_t n) {
    double worst = 0, scale = 0;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(b[i]));
    for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs(a[i] - b[i]) / (scale + 1e-30));
    return worst;
}

static const size_t NS[] = {1, 7, 65, 300};
// (D, H): d = 32 (fused on avx2/avx512: 1, 2, 3 heads), d = 16 and d = 8 (sgemm path in every set)
static const size_t DH[][2] = {{32, 1}, {64, 2}, {96, 3}, {32, 2}, {16, 2}};
#define NSHAPES (sizeof NS / sizeof *NS * (sizeof DH / sizeof *DH) * 2)

typedef struct {
    float *out, *g;   // forward output (N, D); gradients (N, 3D) for q, k, v
} SetResult;

// One shape under the active set: forward, infer forward (bitwise equal to forward), backward
// (accumulating onto a nonzero start), each against the double reference. Returns the results
// for the cross-set comparison (caller frees).
static SetResult run_shape(KernelSet k, size_t N, size_t D, size_t H, int with_sizes) {
    size_t ld = 3 * D, nt = attn_softmax_save_floats(N, D, H), ni = attn_softmax_infer_save_floats(N, D, H);
    float *qkv = malloc(N * ld * sizeof(float)), *out = malloc(N * D * sizeof(float)), *oi = malloc(N * D * sizeof(float));
    float *ref = malloc(N * D * sizeof(float)), *dout = malloc(N * D * sizeof(float));
    float *st = malloc(nt * sizeof(float)), *si = malloc(ni * sizeof(float)), *ls = malloc(N * sizeof(float));
    float *g = malloc(N * ld * sizeof(float)), *gr = malloc(N * ld * sizeof(float));
    cr_assert(qkv && out && oi && ref && dout && st && si && ls && g && gr);
    uint64_t s = 17 * N + D + (uint64_t)with_sizes;
    gc_fill(qkv, N * ld, &s, 2.0f);
    gc_fill(dout, N * D, &s, 1.0f);
    gc_fill(g, N * ld, &s, 0.5f);
    memcpy(gr, g, N * ld * sizeof(float));
    for (size_t j = 0; j < N; j++) ls[j] = logf(1.0f + (float)(j % 5));
    const float *lsp = with_sizes ? ls : NULL;
    const char *kn = kernels_name(k);
    memset(oi, 0xFF, N * D * sizeof(float));  // NaNs: every output element must be written
    attn_softmax_forward(out, st, qkv, qkv + D, qkv + 2 * D, ld, lsp, N, D, H);
    attn_softmax_forward_infer(oi, si, qkv, qkv + D, qkv + 2 * D, ld, lsp, N, D, H);
    attn_softmax_forward_ref(ref, qkv, qkv + D, qkv + 2 * D, ld, lsp, N, D, H);
    double ef = max_rel(out, ref, N * D);
    cr_expect(ef < 1e-5, "%s N=%zu D=%zu H=%zu sizes=%d: forward rel err %g", kn, N, D, H, with_sizes, ef);
    cr_expect(memcmp(out, oi, N * D * sizeof(float)) == 0, "%s N=%zu D=%zu H=%zu sizes=%d: infer forward differs",
              kn, N, D, H, with_sizes);
    attn_softmax_backward(g, g + D, g + 2 * D, dout, st, qkv, qkv + D, qkv + 2 * D, ld, lsp, N, D, H);
    attn_softmax_backward_ref(gr, gr + D, gr + 2 * D, dout, qkv, qkv + D, qkv + 2 * D, ld, lsp, N, D, H);
    double eb = max_rel(g, gr, N * ld);
    cr_expect(eb < 1e-4, "%s N=%zu D=%zu H=%zu sizes=%d: backward rel err %g", kn, N, D, H, with_sizes, eb);
    free(qkv); free(oi); free(ref); free(dout); free(st); free(si); free(ls); free(gr);
    return (SetResult){out, g};
}

static void set_vs_reference(KernelSet k) {
    unsigned mask = kernels_cpu_mask();
    if (!(mask & (1u << k))) cr_skip_test("this CPU lacks the %s set", kernels_name(k));
    char err[256];
    cr_assert_eq(kernels_force(k, err, sizeof err), MB_OK, "%s", err);
    cr_assert_eq(kernels_active(), k);
    for (int t = 1; t <= 2; t++) {   // 2 threads: forward spreads row blocks over threads
        threads_set(t);
        for (size_t a = 0; a < sizeof NS / sizeof *NS; a++)
            for (size_t b = 0; b < sizeof DH / sizeof *DH; b++)
                for (int sz = 0; sz < 2; sz++) {
                    SetResult r = run_shape(k, NS[a], DH[b][0], DH[b][1], sz);
                    free(r.out); free(r.g);
                }
    }
    threads_set(1);
}

Test(kernels, avx512_matches_reference) { set_vs_reference(KERNELS_AVX512); }
Test(kernels, avx2_matches_reference) { set_vs_reference(KERNELS_AVX2); }
Test(kernels, plain_matches_reference) { set_vs_reference(KERNELS_PLAIN); }

// The sets agree with each other far more closely than with a loose tolerance: same algorithm,
// float rounding only. And the d = 32 save sizes: the fused sets pack K^T, V^T, K, V; plain none.
Test(kernels, sets_agree_with_each_other) {
    unsigned mask = kernels_cpu_mask();
    char err[256];
    SetResult base[NSHAPES] = {{0}};
    int have_base = 0;
    for (int k = KERNELS_COUNT - 1; k >= 0; k--) {
        if (!(mask & (1u << k))) continue;
        cr_assert_eq(kernels_force((KernelSet)k, err, sizeof err), MB_OK, "%s", err);
        size_t i = 0;
        for (size_t a = 0; a < sizeof NS / sizeof *NS; a++)
            for (size_t b = 0; b < sizeof DH / sizeof *DH; b++)
                for (int sz = 0; sz < 2; sz++, i++) {
                    size_t N = NS[a], D = DH[b][0], H = DH[b][1];
                    SetResult r = run_shape((KernelSet)k, N, D, H, sz);
                    if (!have_base) { base[i] = r; continue; }
                    double ef = max_rel(r.out, base[i].out, N * D), eb = max_rel(r.g, base[i].g, N * 3 * D);
                    cr_expect(ef < 2e-6 && eb < 2e-5, "%s vs the widest set, N=%zu D=%zu H=%zu sizes=%d: forward %g, backward %g",
                              kernels_name((KernelSet)k), N, D, H, sz, ef, eb);
                    free(r.out); free(r.g);
                }
        have_base = 1;
        size_t fused_extra = attn_softmax_save_floats(300, 64, 2) - attn_softmax_save_floats(300, 16, 2);
        size_t packed = 4 * 64 * 320;   // K^T, V^T, K, V per head of width 32, N padded to 320
        cr_expect_eq(fused_extra, k == KERNELS_PLAIN ? 0 : packed, "%s: d = 32 save extra %zu floats",
                     kernels_name((KernelSet)k), fused_extra);
    }
    for (size_t i = 0; i < NSHAPES; i++) { free(base[i].out); free(base[i].g); }
}

// The decision with injected feature masks: the widest supported set by default; a named set
// the mask lacks, or an unknown name, refused with MB_ERR_USAGE and a reason naming it.
Test(kernels, choice_and_refusal_with_injected_masks) {
    const unsigned P = 1u << KERNELS_PLAIN, A2 = 1u << KERNELS_AVX2, A5 = 1u << KERNELS_AVX512;
    char err[256];
    KernelSet k;
    cr_assert_eq(kernels_choose(NULL, P, &k, err, sizeof err), MB_OK);
    cr_assert_eq(k, KERNELS_PLAIN);
    cr_assert_eq(kernels_choose("", P | A2, &k, err, sizeof err), MB_OK);
    cr_assert_eq(k, KERNELS_AVX2);
    cr_assert_eq(kernels_choose(NULL, P | A2 | A5, &k, err, sizeof err), MB_OK);
    cr_assert_eq(k, KERNELS_AVX512);
    cr_assert_eq(kernels_choose(NULL, 0, &k, err, sizeof err), MB_OK);   // plain needs nothing
    cr_assert_eq(k, KERNELS_PLAIN);
    // Nehalem-like (no AVX): only plain
    k = KERNELS_COUNT;
    cr_assert_eq(kernels_choose("avx2", P, &k, err, sizeof err), MB_ERR_USAGE);
    cr_assert_eq(k, KERNELS_COUNT, "a refused choice must not set the output");
    cr_assert(strstr(err, "MAELRE_KERNELS=avx2") && strstr(err, "AVX2"), "reason: %s", err);
    cr_assert_eq(kernels_choose("avx512", P, &k, err, sizeof err), MB_ERR_USAGE);
    cr_assert_eq(kernels_choose("plain", P, &k, err, sizeof err), MB_OK);
    cr_assert_eq(k, KERNELS_PLAIN);
    // Haswell-like (AVX2 + FMA, no AVX-512)
    cr_assert_eq(kernels_choose("avx512", P | A2, &k, err, sizeof err), MB_ERR_USAGE);
    cr_assert(strstr(err, "MAELRE_KERNELS=avx512") && strstr(err, "AVX-512") && strstr(err, "avx2"), "reason: %s", err);
    cr_assert_eq(kernels_choose("avx2", P | A2, &k, err, sizeof err), MB_OK);
    cr_assert_eq(k, KERNELS_AVX2);
    // every set on an AVX-512 machine
    for (int i = 0; i < KERNELS_COUNT; i++) {
        cr_assert_eq(kernels_choose(kernels_name((KernelSet)i), P | A2 | A5, &k, err, sizeof err), MB_OK);
        cr_assert_eq(k, (KernelSet)i);
    }
    cr_assert_eq(kernels_choose("AVX2", P | A2 | A5, &k, err, sizeof err), MB_ERR_USAGE);   // names are exact
    cr_assert(strstr(err, "unknown kernel set"), "reason: %s", err);
    cr_assert_eq(kernels_choose("sse", P | A2 | A5, &k, err, sizeof err), MB_ERR_USAGE);
    // the real CPU: plain always; avx512 only with avx2 (the AVX-512 kernels use both)
    unsigned m = kernels_cpu_mask();
    cr_assert(m & P);
    if (m & A5) cr_assert(m & A2);
}

Test(kernels, force_refuses_what_the_cpu_lacks) {
    char err[256];
    unsigned m = kernels_cpu_mask();
    for (int i = 0; i < KERNELS_COUNT; i++) {
        int rc = kernels_force((KernelSet)i, err, sizeof err);
        cr_assert_eq(rc, (m & (1u << i)) ? MB_OK : MB_ERR_USAGE, "%s: rc %d", kernels_name((KernelSet)i), rc);
        if (rc == MB_OK) cr_assert_eq(kernels_active(), (KernelSet)i);
    }
    cr_assert_eq(kernels_force(KERNELS_COUNT, err, sizeof err), MB_ERR_USAGE);
}

// The binary: MAELRE_KERNELS it cannot honour exits 2 with the reason on stderr, before any work.
static int run_cli_args(const char *kernels, const char *const *args, char *errbuf, size_t n) {
    const char *bin = getenv("MAELRE_BIN");
    char path[] = "/tmp/maelre-kernels-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        dup2(fd, 2);
        int nul = open("/dev/null", 1);
        dup2(nul, 1);
        setenv("MAELRE_KERNELS", kernels, 1);
        setenv("OMP_WAIT_POLICY", "passive", 1);
        const char *argv[32] = {bin};
        for (size_t i = 0; args[i] && i < 30; i++) argv[i + 1] = args[i];
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    ssize_t got = pread(fd, errbuf, n - 1, 0);
    errbuf[got > 0 ? got : 0] = 0;
    close(fd);
    unlink(path);
    cr_assert(WIFEXITED(st));
    return WEXITSTATUS(st);
}

static int run_cli(const char *kernels, char *errbuf, size_t n) {
    const char *const args[] = {"list", NULL};
    return run_cli_args(kernels, args, errbuf, n);
}

Test(kernels, cli_refuses_unusable_sets) {
    const char *bin = getenv("MAELRE_BIN");
    if (!bin || !*bin) cr_skip_test("MAELRE_BIN is not set (run through `make test`)");
    char err[1024];
    cr_assert_eq(run_cli("neon", err, sizeof err), MB_ERR_USAGE);
    cr_assert(strstr(err, "MAELRE_KERNELS=neon"), "stderr: %s", err);
    unsigned m = kernels_cpu_mask();
    for (int i = 0; i < KERNELS_COUNT; i++) {
        int rc = run_cli(kernels_name((KernelSet)i), err, sizeof err);
        if (m & (1u << i)) cr_assert_eq(rc, 0, "%s: rc %d, stderr %s", kernels_name((KernelSet)i), rc, err);
        else {
            cr_assert_eq(rc, MB_ERR_USAGE, "%s: rc %d", kernels_name((KernelSet)i), rc);
            cr_assert(strstr(err, "lacks"), "stderr: %s", err);
        }
    }
}

// `profile` records the set that ran, in profile.csv's last column and in profile.json.
Test(kernels, profile_records_the_set) {
    const char *bin = getenv("MAELRE_BIN");
    if (!bin || !*bin) cr_skip_test("MAELRE_BIN is not set (run through `make test`)");
    char dir[] = "/tmp/maelre-kprof-XXXXXX", err[1024], path[300], line[4096];
    cr_assert(mkdtemp(dir));
    unsigned m = kernels_cpu_mask();
    for (int i = 0; i < KERNELS_COUNT; i++) {
        if (!(m & (1u << i))) continue;
        const char *const args[] = {"profile", "--method", "vanilla", "--seq-len", "40", "--batch", "1", "--threads", "1",
                                    "--min-time", "0", "--min-reps", "1", "--out", dir, NULL};
        cr_assert_eq(run_cli_args(kernels_name((KernelSet)i), args, err, sizeof err), 0, "stderr: %s", err);
        snprintf(path, sizeof path, "%s/profile.csv", dir);
        FILE *f = fopen(path, "r");
        cr_assert(f);
        cr_assert(fgets(line, sizeof line, f));
        cr_assert(strstr(line, ",kernels,") || strstr(line, ",kernels\n"), "header: %s", line);
        cr_assert(fgets(line, sizeof line, f));
        fclose(f);
        char want[32];
        snprintf(want, sizeof want, ",%s\n", kernels_name((KernelSet)i));
        size_t L = strlen(line), W = strlen(want);
        cr_assert(L >= W && !strcmp(line + L - W, want), "%s: row %s", kernels_name((KernelSet)i), line);
        cr_assert(strstr(err, kernels_name((KernelSet)i)), "the progress line names the set: %s", err);
        unlink(path);
        snprintf(path, sizeof path, "%s/profile.json", dir);
        unlink(path);
    }
    rmdir(dir);
}

// GELU's per-set copies (core/rows_isa.h) give the plain set's numbers bit for bit, forward and
// backward (accumulating), on lengths around the vector widths and over the OpenMP threshold,
// and match the formula in double.
Test(kernels, gelu_bitwise_equal_across_sets) {
    static const size_t ns[] = {1, 7, 15, 17, 33, 40000};
    unsigned mask = kernels_cpu_mask();
    char err[256];
    threads_set(2);
    for (size_t a = 0; a < sizeof ns / sizeof *ns; a++) {
        size_t n = ns[a];
        float *x = malloc(n * sizeof(float)), *g = malloc(n * sizeof(float)), *ref_o = malloc(n * sizeof(float));
        float *ref_d = malloc(n * sizeof(float)), *o = malloc(n * sizeof(float)), *d = malloc(n * sizeof(float));
        uint64_t s = 11 + n;
        gc_fill(x, n, &s, 6.0f);
        gc_fill(g, n, &s, 1.0f);
        for (int k = 0; k < KERNELS_COUNT; k++) {
            if (!(mask & (1u << k))) continue;
            cr_assert_eq(kernels_force((KernelSet)k, err, sizeof err), MB_OK, "%s", err);
            float *po = k == KERNELS_PLAIN ? ref_o : o, *pd = k == KERNELS_PLAIN ? ref_d : d;
            for (size_t i = 0; i < n; i++) pd[i] = 0.25f;
            gelu_forward(po, x, n);
            gelu_backward(pd, g, x, n);
            if (k == KERNELS_PLAIN) {
                for (size_t i = 0; i < n; i++) {
                    double xd = x[i], u = 0.7978845608028654 * (xd + 0.044715 * xd * xd * xd);
                    double want = 0.5 * xd * (1 + tanh(u));
                    cr_assert(fabs(ref_o[i] - want) <= 1e-6 * (1 + fabs(want)), "n=%zu x=%g: %g vs %g", n, x[i], ref_o[i], want);
                }
                continue;
            }
            cr_assert(!memcmp(o, ref_o, n * sizeof(float)), "%s n=%zu: gelu forward differs from plain", kernels_name((KernelSet)k), n);
            cr_assert(!memcmp(d, ref_d, n * sizeof(float)), "%s n=%zu: gelu backward differs from plain", kernels_name((KernelSet)k), n);
        }
        free(x); free(g); free(ref_o); free(ref_d); free(o); free(d);
    }
    threads_set(1);
}

// The row softmax, its backward rows and the sgemm path's recomputation (core/rows_isa.h) give
// the plain set's numbers bit for bit in every set: ragged widths around 8 and 16, with and
// without log s; and so does the whole sgemm-path attention (d = 16) and the dense kernel.
Test(kernels, softmax_rows_bitwise_equal_across_sets) {
    static const size_t ns[] = {1, 7, 8, 15, 16, 17, 33, 300};
    unsigned mask = kernels_cpu_mask();
    char err[256];
    for (size_t a = 0; a < sizeof ns / sizeof *ns; a++)
        for (int sz = 0; sz < 2; sz++) {
            size_t N = ns[a], nr = 5, ld = N + 3, n = nr * ld;
            float *S0 = malloc(n * sizeof(float)), *ls = malloc(N * sizeof(float)), *dP = malloc(n * sizeof(float));
            float *ref = malloc(n * sizeof(float)), *refds = malloc(n * sizeof(float)), *out = malloc(n * sizeof(float));
            float *ds = malloc(n * sizeof(float)), st[2][5], rst[2][5];
            uint64_t s = 5 + N;
            gc_fill(S0, n, &s, 4.0f);
            gc_fill(dP, n, &s, 1.0f);
            for (size_t j = 0; j < N; j++) ls[j] = logf(1.0f + (float)(j % 3));
            for (int k = 0; k < KERNELS_COUNT; k++) {
                if (!(mask & (1u << k))) continue;
                cr_assert_eq(kernels_force((KernelSet)k, err, sizeof err), MB_OK, "%s", err);
                float *o = k == KERNELS_PLAIN ? ref : out, *d = k == KERNELS_PLAIN ? refds : ds;
                float (*t)[5] = k == KERNELS_PLAIN ? rst : st;
                memcpy(o, S0, n * sizeof(float));
                attn_softmax_rows(o, ld, t[0], t[1], sz ? ls : NULL, nr, N, 1);
                memcpy(d, dP, n * sizeof(float));
                attn_softmax_ds_rows(d, o, ld, nr, N);
                if (k == KERNELS_PLAIN) {   // rows sum to 1; the maximum is the row's
                    for (size_t i = 0; i < nr; i++) {
                        double sum = 0, mx = -INFINITY;
                        for (size_t j = 0; j < N; j++) {
                            sum += o[i * ld + j];
                            mx = fmax(mx, (double)S0[i * ld + j] + (sz ? ls[j] : 0.0f));
                        }
                        cr_assert(fabs(sum - 1) < 1e-5 && t[0][i] == (float)mx, "N=%zu row %zu: sum %g", N, i, sum);
                    }
                    continue;
                }
                for (size_t i = 0; i < nr; i++)
                    cr_assert(!memcmp(o + i * ld, ref + i * ld, N * sizeof(float)) && !memcmp(d + i * ld, refds + i * ld, N * sizeof(float)),
                              "%s N=%zu sizes=%d row %zu differs from plain", kernels_name((KernelSet)k), N, sz, i);
                cr_assert(!memcmp(t, rst, sizeof rst), "%s N=%zu: statistics differ", kernels_name((KernelSet)k), N);
            }
            free(S0); free(ls); free(dP); free(ref); free(refds); free(out); free(ds);
        }
    // whole kernels that use only these rows and OpenBLAS: bitwise across sets
    size_t N = 77, D = 32, H = 2, ld = 3 * D;   // d = 16: the sgemm path in every set
    float *qkv = malloc(N * ld * sizeof(float)), *dout = malloc(N * D * sizeof(float)), *ls = malloc(N * sizeof(float));
    float *o[2], *g[2], *od[2];
    float *save = malloc(attn_softmax_save_floats(N, D, H) * sizeof(float));
    float *dsave = malloc(attn_softmax_dense_save_floats(N, D, H) * sizeof(float));
    float *dwork = malloc(attn_softmax_dense_work_floats(N) * sizeof(float)), *work = malloc(attn_softmax_work_floats(N) * sizeof(float));
    uint64_t s = 3;
    gc_fill(qkv, N * ld, &s, 2.0f);
    gc_fill(dout, N * D, &s, 1.0f);
    for (size_t j = 0; j < N; j++) ls[j] = logf(1.0f + (float)(j % 4));
    for (int i = 0; i < 2; i++) {
        o[i] = malloc(N * D * sizeof(float));
        od[i] = malloc(N * D * sizeof(float));
        g[i] = calloc(N * ld, sizeof(float));
    }
    for (int k = KERNELS_COUNT - 1; k >= 0; k--) {
        if (!(mask & (1u << k))) continue;
        cr_assert_eq(kernels_force((KernelSet)k, err, sizeof err), MB_OK, "%s", err);
        int i = k == KERNELS_PLAIN;
        memset(g[i], 0, N * ld * sizeof(float));
        attn_softmax_forward(o[i], save, qkv, qkv + D, qkv + 2 * D, ld, ls, N, D, H);
        attn_softmax_backward_ws(g[i], g[i] + D, g[i] + 2 * D, dout, save, qkv, qkv + D, qkv + 2 * D, ld, ls, N, D, H, work);
        attn_softmax_dense_forward(od[i], dsave, qkv, qkv + D, qkv + 2 * D, ld, ls, N, D, H);
        if (i)
            cr_assert(!memcmp(o[0], o[1], N * D * sizeof(float)) && !memcmp(g[0], g[1], N * ld * sizeof(float)) &&
                      !memcmp(od[0], od[1], N * D * sizeof(float)), "sgemm-path / dense attention differs between sets");
    }
    for (int i = 0; i < 2; i++) { free(o[i]); free(g[i]); free(od[i]); }
    free(qkv); free(dout); free(ls); free(save); free(dsave); free(dwork); free(work);
}

// Efficient attention's softmax passes take their exp and row softmax from the active set: its
// forward, inference form and backward give the plain set's numbers bit for bit in the avx2 set
// (both call OpenBLAS for the products), and to 1e-5 in the avx512 set, whose products are its
// own kernels (core/gemm.h: FMA chains in another order); with and without sizes, at d = 32 (two
// vectors of 16, four of 8) and d = 13 (tails).
Test(kernels, efficient_attention_equal_across_sets) {
    unsigned mask = kernels_cpu_mask();
    char err[256];
    static const size_t Ds[] = {64, 26};
    for (size_t di = 0; di < 2; di++)
        for (int sz = 0; sz < 2; sz++) {
            size_t N = 301, D = Ds[di], H = 2, ld = 3 * D;
            float *qkv = malloc(N * ld * sizeof(float)), *dout = malloc(N * D * sizeof(float)), *ls = malloc(N * sizeof(float));
            float *save = malloc(attn_efficient_save_floats(N, D, H) * sizeof(float));
            float *iw = malloc(attn_efficient_infer_work_floats(N, D, H) * sizeof(float));
            float *o[KERNELS_COUNT], *oi[KERNELS_COUNT], *g[KERNELS_COUNT];   // per set
            uint64_t s = 17 + D;
            gc_fill(qkv, N * ld, &s, 3.0f);
            gc_fill(dout, N * D, &s, 1.0f);
            for (size_t j = 0; j < N; j++) ls[j] = logf(1.0f + (float)(j % 5));
            for (int k = 0; k < KERNELS_COUNT; k++) {
                o[k] = malloc(N * D * sizeof(float));
                oi[k] = malloc(N * D * sizeof(float));
                g[k] = calloc(N * ld, sizeof(float));
                if (!(mask & (1u << k))) continue;
                cr_assert_eq(kernels_force((KernelSet)k, err, sizeof err), MB_OK, "%s", err);
                const float *l = sz ? ls : NULL;
                attn_efficient_forward(o[k], save, qkv, qkv + D, qkv + 2 * D, ld, l, N, D, H);
                attn_efficient_backward(g[k], g[k] + D, g[k] + 2 * D, dout, save, qkv, qkv + D, qkv + 2 * D, ld, l, N, D, H);
                attn_efficient_forward_infer(oi[k], iw, qkv, qkv + D, qkv + 2 * D, ld, l, N, D, H);
            }
            const int P = KERNELS_PLAIN;
            if (mask & (1u << KERNELS_AVX2))
                cr_assert(!memcmp(o[KERNELS_AVX2], o[P], N * D * sizeof(float)) &&
                          !memcmp(oi[KERNELS_AVX2], oi[P], N * D * sizeof(float)) &&
                          !memcmp(g[KERNELS_AVX2], g[P], N * ld * sizeof(float)),
                          "avx2 D=%zu sizes=%d: efficient attention differs from plain", D, sz);
            if (mask & (1u << KERNELS_AVX512)) {
                const int A = KERNELS_AVX512;
                double eo = 0, ei = 0, eg = 0, so = 0, sg = 0;
                for (size_t e = 0; e < N * D; e++) {
                    eo = fmax(eo, fabs((double)o[A][e] - o[P][e]));
                    ei = fmax(ei, fabs((double)oi[A][e] - oi[P][e]));
                    so = fmax(so, fabs((double)o[P][e]));
                }
                for (size_t e = 0; e < N * ld; e++) {
                    eg = fmax(eg, fabs((double)g[A][e] - g[P][e]));
                    sg = fmax(sg, fabs((double)g[P][e]));
                }
                cr_assert(eo <= 1e-5 * so && ei <= 1e-5 * so && eg <= 1e-5 * sg,
                          "avx512 D=%zu sizes=%d: efficient attention off plain by %g, %g (infer), %g (grad)", D, sz,
                          eo / so, ei / so, eg / sg);
            }
            for (int k = 0; k < KERNELS_COUNT; k++) { free(o[k]); free(oi[k]); free(g[k]); }
            free(qkv); free(dout); free(ls); free(save); free(iw);
        }
}

// LayerNorm's loops are compiled per set (core/rows_isa.h): forward (out, mean, rstd) and the
// backward's input gradient give the plain set's numbers bit for bit, for widths around the
// vector widths and a batch over the OpenMP threshold.
Test(kernels, layernorm_bitwise_equal_across_sets) {
    static const size_t Ds[] = {64, 26, 7, 128};
    static const size_t Ts[] = {37, 2100};
    unsigned mask = kernels_cpu_mask();
    char err[256];
    threads_set(2);
    for (size_t di = 0; di < 4; di++)
        for (size_t ti = 0; ti < 2; ti++) {
            size_t D = Ds[di], T = Ts[ti], n = T * D;
            float *x = malloc(n * sizeof(float)), *dy = malloc(n * sizeof(float)), *gb = malloc(2 * D * sizeof(float));
            float *o[2], *dx[2], *st[2], dgb[2][256];
            uint64_t s = 29 + D + T;
            gc_fill(x, n, &s, 2.0f);
            gc_fill(dy, n, &s, 1.0f);
            gc_fill(gb, 2 * D, &s, 1.0f);
            for (int i = 0; i < 2; i++) {
                o[i] = malloc(n * sizeof(float));
                dx[i] = malloc(n * sizeof(float));
                st[i] = malloc(2 * T * sizeof(float));
            }
            for (int k = KERNELS_COUNT - 1; k >= 0; k--) {
                if (!(mask & (1u << k))) continue;
                cr_assert_eq(kernels_force((KernelSet)k, err, sizeof err), MB_OK, "%s", err);
                int i = k == KERNELS_PLAIN;
                for (size_t e = 0; e < n; e++) dx[i][e] = 0.5f;
                for (size_t e = 0; e < 2 * D; e++) dgb[i][e] = 0.25f;
                layernorm_forward(o[i], st[i], st[i] + T, x, gb, gb + D, T, D, 1e-5f);
                layernorm_backward(dx[i], dgb[i], dgb[i] + D, dy, x, st[i], st[i] + T, gb, T, D);
                if (i)
                    cr_assert(!memcmp(o[0], o[1], n * sizeof(float)) && !memcmp(st[0], st[1], 2 * T * sizeof(float)) &&
                              !memcmp(dx[0], dx[1], n * sizeof(float)) && !memcmp(dgb[0], dgb[1], 2 * D * sizeof(float)),
                              "D=%zu T=%zu: layernorm differs between sets", D, T);
            }
            double mu = 0;   // the plain set's row 0 is normalised
            for (size_t j = 0; j < D; j++) mu += ((double)o[1][j] - gb[D + j]) / gb[j];
            cr_assert(fabs(mu / (double)D) < 1e-4, "D=%zu: mean of x-hat %g", D, mu / (double)D);
            for (int i = 0; i < 2; i++) { free(o[i]); free(dx[i]); free(st[i]); }
            free(x); free(dy); free(gb);
        }
    threads_set(1);
}

// The other row loops compiled per set (core/rows_isa.h): column sums (bias gradients), the
// residual add, and efficient attention's column maxima and exp-with-sums, with and without
// log s, and its query softmax read in place, at 1 and 2 threads: the same bits in every set.
Test(kernels, column_ops_bitwise_equal_across_sets) {
    enum { T = 1500, D = 64, H = 2, d = 32 };
    static float x[T * D], y[T * D], ls[T], out[2][T * D], acc[2][D], mx[2][D], e[2][T * D], sm[2][T * D];
    static double sum[2][D];
    uint64_t s = 41;
    gc_fill(x, T * D, &s, 2.0f);
    gc_fill(y, T * D, &s, 1.0f);
    gc_fill(ls, T, &s, 0.5f);
    unsigned mask = kernels_cpu_mask();
    char err[256];
    for (int th = 1; th <= 2; th++)
        for (int with_ls = 0; with_ls < 2; with_ls++) {
            threads_set(th);
            for (int k = KERNELS_COUNT - 1; k >= 0; k--) {
                if (!(mask & (1u << k))) continue;
                cr_assert_eq(kernels_force((KernelSet)k, err, sizeof err), MB_OK, "%s", err);
                int i = k == KERNELS_PLAIN;
                memcpy(out[i], y, sizeof y);
                residual_forward(out[i], x, T * D);
                for (size_t j = 0; j < D; j++) { acc[i][j] = 0.125f; sum[i][j] = 0.0; }
                ops_column_sums(acc[i], x, T, D);
                ops_col_max(mx[i], x, D, with_ls ? ls : NULL, T, D);
                ops_col_exp_sum(e[i], T * d, d, sum[i], x, D, with_ls ? ls : NULL, mx[i], T, d, H);
                ops_softmax_head_rows(sm[i], T * d, d, x, D, T, d, H);
                if (i)
                    cr_expect(!memcmp(out[0], out[1], sizeof out[0]) && !memcmp(acc[0], acc[1], sizeof acc[0]) &&
                                  !memcmp(mx[0], mx[1], sizeof mx[0]) && !memcmp(e[0], e[1], sizeof e[0]) &&
                                  !memcmp(sum[0], sum[1], sizeof sum[0]) && !memcmp(sm[0], sm[1], sizeof sm[0]),
                              "%s, %d threads, log s %d: differs from plain", kernels_name((KernelSet)k), th, with_ls);
            }
            cr_expect(sum[1][0] > 1.0 && mx[1][0] > 1.0f, "the sums and maxima are real: %g %g", sum[1][0], (double)mx[1][0]);
            float row = 0.0f;   // a softmax row sums to 1
            for (size_t c = 0; c < d; c++) row += sm[1][T * d + 5 * d + c];
            cr_expect(fabsf(row - 1.0f) < 1e-5f, "head 1, row 5 of the query softmax sums to %g", (double)row);
        }
    threads_set(1);
}
