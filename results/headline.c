// See results/headline.h. "Clearly above" the majority class means more than two standard errors
// of the accuracy above it (the binomial stderr for one seed; std / sqrt(seeds) for several):
// the same error bars the report's tables and plots show.
#include "results/headline.h"
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/status.h"
#include "results/report.h"

typedef struct { char *p; size_t len, used; } Out;

static void put(Out *o, const char *fmt, ...) {
    if (o->used >= o->len) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->p + o->used, o->len - o->used, fmt, ap);
    va_end(ap);
    if (n > 0) o->used += (size_t)n < o->len - o->used ? (size_t)n : o->len - o->used - 1;
}

// "maelre 36.8% (s.e. 0.4, 3 seeds)": the standard error, not the seeds' standard deviation the
// tables show, since the sentence compares the mean with the majority class.
static void acc_words(Out *o, const RunSummary *s) {
    put(o, "%s %.1f%%", s->method, 100 * s->acc);
    if (isfinite(s->acc_err)) put(o, " (s.e. %.1f", 100 * s->acc_err);
    else put(o, " (");
    if (s->runs > 1) put(o, "%s%zu seeds", isfinite(s->acc_err) ? ", " : "", s->runs);
    put(o, ")");
}

int report_headline(const Table *runs, char *buf, size_t len, char *err, size_t errlen) {
    if (!len) return mb_fail(err, errlen, MB_ERR_INTERNAL, "report_headline: no room");
    buf[0] = 0;
    RunSummary *s = NULL;
    size_t n = 0;
    int rc = report_summarize(runs, &s, &n, err, errlen);
    if (rc) return rc;
    Out o = {buf, len, 0};
    for (size_t a = 0; a < n;) {   // summaries are grouped by task
        size_t b = a, best = a;
        while (b < n && !strcmp(s[b].task, s[a].task)) {
            if (isfinite(s[b].acc) && (!isfinite(s[best].acc) || s[b].acc > s[best].acc)) best = b;
            b++;
        }
        double maj = report_task_majority(runs, s[a].task);
        put(&o, "%s: ", s[a].task);
        if (!isfinite(s[best].acc)) {
            put(&o, "no method has a test accuracy.\n");
            a = b;
            continue;
        }
        acc_words(&o, &s[best]);
        put(&o, " is the most accurate");
        if (isfinite(maj)) {
            double z = isfinite(s[best].acc_err) && s[best].acc_err > 0 ? (s[best].acc - maj) / s[best].acc_err : NAN;
            if (isfinite(z) && z > 2)
                put(&o, ", %.1f standard errors above the majority class (%.1f%%)", z, 100 * maj);
            else
                put(&o, ", but not clearly above the majority class (%.1f%%): nothing was learned that "
                        "this test split can show", 100 * maj);
        }
        size_t others = 0;
        for (size_t i = a; i < b; i++) {
            if (i == best || !isfinite(s[i].acc)) continue;
            put(&o, others++ ? ", " : "; then ");
            acc_words(&o, &s[i]);
            if (isfinite(maj) && isfinite(s[i].acc_err) && s[i].acc_err > 0 && s[i].acc - maj <= 2 * s[i].acc_err)
                put(&o, " (at chance)");
        }
        put(&o, ".\n");
        a = b;
    }
    free(s);
    return MB_OK;
}
