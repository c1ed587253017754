// The vector bodies for core/rows_avx2.c and core/rows_avx512.c (GELU, the row softmax and its
// backward rows, exp, LayerNorm; the other row loops are core/rows_isa.h's plain bodies compiled
// with the set's flags), written once over a small set of macros each file defines (V: the
// vector type, W: its lanes, and the operations). Every operation is the one core/ops.h's
// ops_expf/ops_tanhf and core/rows_isa.h's loops perform, in the same order and without fused
// multiply-adds (ISO C does not contract), so each lane computes exactly the plain scalar result;
// the tail past the last full vector runs the scalar body itself. (GCC does not vectorise the
// scalar loops for AVX2: "control flow in loop".)
// Include after defining: V, W, HMAX(v) (the largest lane), HSUM16(acc) (the RS_PV vectors of
// 16 partial sums combined in rows_sum16's order), SET1(f), LOAD(p), STORE(p, v), ADD, SUB, MUL,
// DIV, MIN, MAX, ABS(v), SIGNSEL(x, t) (t with x's sign: x < 0 ? -t : t), EXP_SCALE(km) (the
// float whose bits are (bits(km) - 0x4B400000 + 127) << 23), MLOAD(p, k) (the first k < W lanes,
// others 0), MSTORE(p, k, v), MLOADF(p, k, f) (others f), and SUFFIX. Tails shorter than 16 in a
// sum run the scalar code itself.
// The softmax rows keep the scalar code's 16 partial sums as 16 / W vectors.
#define RS_CAT2(a, b) a##b
#define RS_CAT(a, b) RS_CAT2(a, b)

static inline V RS_CAT(vexp, SUFFIX)(V x) {
    x = MAX(MIN(x, SET1(88.7f)), SET1(-87.3f));   // the ternary clamps of ops_expf (no NaN here)
    V km = ADD(MUL(x, SET1(1.44269504088896341f)), SET1(12582912.0f));
    V kf = SUB(km, SET1(12582912.0f));
    V r = SUB(x, MUL(kf, SET1(0.693359375f)));
    r = SUB(r, MUL(kf, SET1(-2.12194440e-4f)));
    V p = SET1(1.9875691500e-4f);
    p = ADD(MUL(p, r), SET1(1.3981999507e-3f));
    p = ADD(MUL(p, r), SET1(8.3334519073e-3f));
    p = ADD(MUL(p, r), SET1(4.1665795894e-2f));
    p = ADD(MUL(p, r), SET1(1.6666665459e-1f));
    p = ADD(MUL(p, r), SET1(5.0000001201e-1f));
    V y = ADD(ADD(MUL(MUL(p, r), r), r), SET1(1.0f));
    return MUL(y, EXP_SCALE(km));
}

static inline V RS_CAT(vtanh, SUFFIX)(V x) {
    V e = RS_CAT(vexp, SUFFIX)(MUL(SET1(-2.0f), ABS(x)));
    V t = DIV(SUB(SET1(1.0f), e), ADD(SET1(1.0f), e));
    return SIGNSEL(x, t);
}

// u = C (x + A x x x), as the scalar loop: ((A x) x) x
static inline V RS_CAT(vgelu_u, SUFFIX)(V x) {
    return MUL(SET1(ROWS_GELU_C), ADD(x, MUL(MUL(MUL(SET1(ROWS_GELU_A), x), x), x)));
}

static inline void RS_CAT(gelu_vec_, SUFFIX)(float *out, const float *in, size_t i) {
    V x = LOAD(in + i);
    V th = RS_CAT(vtanh, SUFFIX)(RS_CAT(vgelu_u, SUFFIX)(x));
    STORE(out + i, MUL(MUL(SET1(0.5f), x), ADD(SET1(1.0f), th)));
}

static void RS_CAT(gelu_forward_, SUFFIX)(float *out, const float *in, size_t n) {
    size_t nv = n / W * W;
    if (ROWS_PARALLEL(n >= ROWS_PAR_MIN)) {
        #pragma omp parallel for schedule(static)
        for (size_t i = 0; i < nv; i += W) RS_CAT(gelu_vec_, SUFFIX)(out, in, i);
    } else {
        for (size_t i = 0; i < nv; i += W) RS_CAT(gelu_vec_, SUFFIX)(out, in, i);
    }
    if (nv < n) rows_gelu_forward_body(out + nv, in + nv, n - nv);
}

static void RS_CAT(gelu_backward_, SUFFIX)(float *din, const float *dout, const float *in, size_t n) {
    size_t nv = n / W * W;
    const float a3 = 3.0f * ROWS_GELU_A;   // the scalar loop's 3.0f * GELU_A, folded the same way
    #pragma omp parallel for schedule(static) if (n >= ROWS_PAR_MIN)
    for (size_t i = 0; i < nv; i += W) {
        V x = LOAD(in + i);
        V th = RS_CAT(vtanh, SUFFIX)(RS_CAT(vgelu_u, SUFFIX)(x));
        V t1 = MUL(SET1(0.5f), ADD(SET1(1.0f), th));
        V t2 = MUL(MUL(MUL(MUL(SET1(0.5f), x), SUB(SET1(1.0f), MUL(th, th))), SET1(ROWS_GELU_C)),
                   ADD(SET1(1.0f), MUL(MUL(SET1(a3), x), x)));
        STORE(din + i, MUL(LOAD(dout + i), ADD(t1, t2)));
    }
    if (nv < n) rows_gelu_backward_body(din + nv, dout + nv, in + nv, n - nv);
}

#define RS_PV (16 / W)   // vectors of partial sums

static inline float RS_CAT(rs_row_max, SUFFIX)(const float *r, size_t N) {
    V m = SET1(-INFINITY);
    size_t j = 0;
    for (; j + W <= N; j += W) m = MAX(m, LOAD(r + j));
    if (j < N) m = MAX(m, MLOADF(r + j, N - j, -INFINITY));
    return HMAX(m);   // maxima are exact in any order
}

static inline void RS_CAT(rs_add_log_s, SUFFIX)(float *r, const float *log_s, size_t N) {
    size_t j = 0;
    for (; j + W <= N; j += W) STORE(r + j, ADD(LOAD(r + j), LOAD(log_s + j)));
    if (j < N) MSTORE(r + j, N - j, ADD(MLOAD(r + j, N - j), MLOAD(log_s + j, N - j)));
}

static void RS_CAT(softmax_rows_, SUFFIX)(float *S, size_t lds, float *mx_out, float *inv_out, const float *log_s,
                                          size_t nr, size_t N, int par) {
    #pragma omp parallel for schedule(static) if (par && nr * N >= ROWS_SOFTMAX_PAR_MIN)
    for (size_t i = 0; i < nr; i++) {
        float *r = S + i * lds;
        if (log_s) RS_CAT(rs_add_log_s, SUFFIX)(r, log_s, N);
        float mx = RS_CAT(rs_row_max, SUFFIX)(r, N);
        V m = SET1(mx), acc[RS_PV];
        for (int v = 0; v < RS_PV; v++) acc[v] = SET1(0.0f);
        size_t j = 0;
        for (; j + 16 <= N; j += 16)
            for (int v = 0; v < RS_PV; v++) {
                V e = RS_CAT(vexp, SUFFIX)(SUB(LOAD(r + j + v * W), m));
                STORE(r + j + v * W, e);
                acc[v] = ADD(acc[v], e);
            }
        float inv;
        if (j == N) {   // whole groups of 16 (head width 32): combine in registers
            inv = 1.0f / HSUM16(acc);
        } else {
            float s[16];
            for (int v = 0; v < RS_PV; v++) STORE(s + v * W, acc[v]);
            for (int l = 0; j + (size_t)l < N; l++) { r[j + l] = ops_expf(r[j + l] - mx); s[l] += r[j + l]; }   // scalar tail
            inv = 1.0f / rows_sum16(s);
        }
        V iv = SET1(inv);
        j = 0;
        for (; j + W <= N; j += W) STORE(r + j, MUL(LOAD(r + j), iv));
        if (j < N) MSTORE(r + j, N - j, MUL(MLOAD(r + j, N - j), iv));
        if (mx_out) mx_out[i] = mx;
        if (inv_out) inv_out[i] = inv;
    }
}

// rows_softmax_head_rows_body with the row loaded straight from q (no copy) when d is whole groups
// of 16; the same operations as softmax_rows_ above on the copied row, so the same numbers.
static void RS_CAT(softmax_head_rows_, SUFFIX)(float *p, size_t hs, size_t pl, const float *q, size_t ld, size_t N,
                                               size_t d, size_t H) {
    if (d % 16) { rows_softmax_head_rows_body(p, hs, pl, q, ld, N, d, H); return; }
    for (size_t i = 0; i < N; i++)
        for (size_t h = 0; h < H; h++) {
            float *r = p + h * hs + i * pl;
            const float *x = q + i * ld + h * d;
            V m = SET1(-INFINITY), acc[RS_PV];
            for (size_t j = 0; j < d; j += W) m = MAX(m, LOAD(x + j));
            m = SET1(HMAX(m));
            for (int v = 0; v < RS_PV; v++) acc[v] = SET1(0.0f);
            for (size_t j = 0; j < d; j += 16)
                for (int v = 0; v < RS_PV; v++) {
                    V e = RS_CAT(vexp, SUFFIX)(SUB(LOAD(x + j + v * W), m));
                    STORE(r + j + v * W, e);
                    acc[v] = ADD(acc[v], e);
                }
            V iv = SET1(1.0f / HSUM16(acc));
            for (size_t j = 0; j < d; j += W) STORE(r + j, MUL(LOAD(r + j), iv));
        }
}

static void RS_CAT(softmax_rows_saved_, SUFFIX)(float *S, size_t lds, const float *mx, const float *inv,
                                                const float *log_s, size_t nr, size_t N) {
    #pragma omp parallel for schedule(static) if (nr * N >= ROWS_SOFTMAX_PAR_MIN)
    for (size_t i = 0; i < nr; i++) {
        float *r = S + i * lds;
        if (log_s) RS_CAT(rs_add_log_s, SUFFIX)(r, log_s, N);
        V m = SET1(mx[i]), iv = SET1(inv[i]);
        size_t j = 0;
        for (; j + W <= N; j += W) STORE(r + j, MUL(RS_CAT(vexp, SUFFIX)(SUB(LOAD(r + j), m)), iv));
        if (j < N) MSTORE(r + j, N - j, MUL(RS_CAT(vexp, SUFFIX)(SUB(MLOAD(r + j, N - j), m)), iv));
    }
}

static void RS_CAT(ds_rows_, SUFFIX)(float *dS, const float *P, size_t lds, size_t nr, size_t N) {
    #pragma omp parallel for schedule(static) if (nr * N >= ROWS_SOFTMAX_PAR_MIN)
    for (size_t i = 0; i < nr; i++) {
        const float *p = P + i * lds;
        float *g = dS + i * lds;
        V acc[RS_PV];
        for (int v = 0; v < RS_PV; v++) acc[v] = SET1(0.0f);
        size_t j = 0;
        for (; j + 16 <= N; j += 16)
            for (int v = 0; v < RS_PV; v++) acc[v] = ADD(acc[v], MUL(LOAD(p + j + v * W), LOAD(g + j + v * W)));
        float s[16];
        for (int v = 0; v < RS_PV; v++) STORE(s + v * W, acc[v]);
        for (int l = 0; j + (size_t)l < N; l++) s[l] += p[j + l] * g[j + l];   // the scalar tail
        V dot = SET1(rows_sum16(s));
        j = 0;
        for (; j + W <= N; j += W) STORE(g + j, MUL(LOAD(p + j), SUB(LOAD(g + j), dot)));
        if (j < N) MSTORE(g + j, N - j, MUL(MLOAD(p + j, N - j), SUB(MLOAD(g + j, N - j), dot)));
    }
}

static void RS_CAT(exp_sub_, SUFFIX)(float *out, const float *in, const float *shift, float shift1, size_t n) {
    size_t j = 0;
    V s1 = SET1(shift1);
    for (; j + W <= n; j += W) STORE(out + j, RS_CAT(vexp, SUFFIX)(SUB(LOAD(in + j), shift ? LOAD(shift + j) : s1)));
    if (j < n) rows_exp_sub_body(out + j, in + j, shift ? shift + j : NULL, shift1, n - j);
}

// LayerNorm rows whose width is whole groups of 16 (D = 64 in the default model) keep the row's
// sums in registers (ops_row_sum's 16 partials, combined by HSUM16) instead of a scratch pass;
// every value goes through rows_isa.h's operations in its order. Other widths: the plain body.
#define RS_LN_MAX_V (256 / W)   // widths up to 256 in registers

static inline void RS_CAT(ln_row_, SUFFIX)(float *out, float *mean, float *rstd, const float *in, const float *g,
                                           const float *b, size_t t, size_t D, float eps) {
    size_t nv = D / W;
    const float *x = in + t * D;
    float *y = out + t * D;
    V xv[RS_LN_MAX_V], acc[RS_PV];
    for (int l = 0; l < RS_PV; l++) acc[l] = SET1(0.0f);
    for (size_t v = 0; v < nv; v++) { xv[v] = LOAD(x + v * W); acc[v % RS_PV] = ADD(acc[v % RS_PV], xv[v]); }
    float mu = HSUM16(acc) / (float)D;
    V m = SET1(mu);
    for (int l = 0; l < RS_PV; l++) acc[l] = SET1(0.0f);
    for (size_t v = 0; v < nv; v++) { V c = SUB(xv[v], m); acc[v % RS_PV] = ADD(acc[v % RS_PV], MUL(c, c)); }
    float var = HSUM16(acc) / (float)D;
    float rs = 1.0f / sqrtf(var + eps);
    V r = SET1(rs);
    for (size_t v = 0; v < nv; v++)
        STORE(y + v * W, ADD(MUL(MUL(SUB(xv[v], m), r), LOAD(g + v * W)), LOAD(b + v * W)));
    mean[t] = mu;
    rstd[t] = rs;
}

static void RS_CAT(layernorm_forward_, SUFFIX)(float *out, float *mean, float *rstd, const float *in, const float *g,
                                               const float *b, size_t T, size_t D, float eps) {
    if (D % 16 || D > 256) { rows_layernorm_forward_body(out, mean, rstd, in, g, b, T, D, eps); return; }
    if (ROWS_PARALLEL(T * D >= ROWS_LN_PAR_MIN)) {
        #pragma omp parallel for schedule(static)
        for (size_t t = 0; t < T; t++) RS_CAT(ln_row_, SUFFIX)(out, mean, rstd, in, g, b, t, D, eps);
    } else {
        for (size_t t = 0; t < T; t++) RS_CAT(ln_row_, SUFFIX)(out, mean, rstd, in, g, b, t, D, eps);
    }
}

static void RS_CAT(layernorm_backward_din_, SUFFIX)(float *din, const float *dout, const float *in, const float *mean,
                                                    const float *rstd, const float *g, size_t T, size_t D) {
    if (D % 16 || D > 256) { rows_layernorm_backward_din_body(din, dout, in, mean, rstd, g, T, D); return; }
    size_t nv = D / W;
    #pragma omp parallel for schedule(static) if (T * D >= ROWS_LN_PAR_MIN)
    for (size_t t = 0; t < T; t++) {
        const float *x = in + t * D, *dy = dout + t * D;
        float *dx = din + t * D;
        V m = SET1(mean[t]), r = SET1(rstd[t]), xh[RS_LN_MAX_V], dxh[RS_LN_MAX_V], a1[RS_PV], a2[RS_PV];
        for (int l = 0; l < RS_PV; l++) { a1[l] = SET1(0.0f); a2[l] = SET1(0.0f); }
        for (size_t v = 0; v < nv; v++) {
            xh[v] = MUL(SUB(LOAD(x + v * W), m), r);
            dxh[v] = MUL(LOAD(dy + v * W), LOAD(g + v * W));
            a1[v % RS_PV] = ADD(a1[v % RS_PV], dxh[v]);
            a2[v % RS_PV] = ADD(a2[v % RS_PV], MUL(dxh[v], xh[v]));
        }
        V s1 = SET1(HSUM16(a1) / (float)D), s2 = SET1(HSUM16(a2) / (float)D);
        for (size_t v = 0; v < nv; v++)
            STORE(dx + v * W, ADD(LOAD(dx + v * W), MUL(r, SUB(SUB(dxh[v], s1), MUL(xh[v], s2)))));
    }
}

static void RS_CAT(layernorm_backward_params_, SUFFIX)(float *dg, float *db, const float *dout, const float *in,
                                                       const float *mean, const float *rstd, size_t T, size_t D) {
    rows_layernorm_backward_params_body(dg, db, dout, in, mean, rstd, T, D);
}

static void RS_CAT(column_sums_, SUFFIX)(float *acc, const float *x, size_t T, size_t D) {
    rows_column_sums_body(acc, x, T, D);
}

static void RS_CAT(add_, SUFFIX)(float *out, const float *in, size_t n) { rows_add_body(out, in, n); }

static void RS_CAT(col_max_, SUFFIX)(float *mx, const float *k, size_t ld, const float *log_s, size_t N, size_t D) {
    rows_col_max_body(mx, k, ld, log_s, N, D);
}

static void RS_CAT(col_exp_sum_, SUFFIX)(float *e, size_t hs, size_t el, double *sum, const float *k, size_t ld,
                                         const float *log_s, const float *mx, size_t n, size_t d, size_t H) {
    rows_col_exp_sum_body(e, hs, el, sum, k, ld, log_s, mx, n, d, H, RS_CAT(exp_sub_, SUFFIX));
}
